"""Which classes in a model config are Keras's own, and so known to nandoctor.

Keras 3 configs name a module (`keras.layers`, `keras.src.ops.numpy`); Keras 2 configs name
only the class. The names below are every class in `keras.layers` and `keras.models` of
Keras 3.15 and of tf-keras 2.21 (the Keras 2 API), listed once by hand from those packages
so that the static scan never imports them. `Lambda` is deliberately absent: it is code.
"""

from __future__ import annotations

KERAS_CLASS_NAMES = frozenset(
    {
    "AbstractRNNCell", "Activation", "ActivityRegularization", "AdaptiveAveragePooling1D",
    "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D", "AdaptiveMaxPooling1D",
    "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D", "Add", "AdditiveAttention",
    "AlphaDropout", "Attention", "AugMix", "AutoContrast", "Average", "AveragePooling1D",
    "AveragePooling2D", "AveragePooling3D", "AvgPool1D", "AvgPool2D", "AvgPool3D",
    "BatchNormalization", "Bidirectional", "CategoryEncoding", "CenterCrop", "Concatenate",
    "ContrastLimitedAdaptiveHistogramEqualization", "Conv1D", "Conv1DTranspose", "Conv2D",
    "Conv2DTranspose", "Conv3D", "Conv3DTranspose", "ConvLSTM1D", "ConvLSTM2D",
    "ConvLSTM3D", "Convolution1D", "Convolution1DTranspose", "Convolution2D",
    "Convolution2DTranspose", "Convolution3D", "Convolution3DTranspose", "Cropping1D",
    "Cropping2D", "Cropping3D", "CutMix", "Dense", "DenseFeatures", "DepthwiseConv1D",
    "DepthwiseConv2D", "Discretization", "Dot", "Dropout", "ELU", "EinsumDense",
    "Embedding", "Equalization", "Flatten", "FlaxLayer", "Functional", "GRU", "GRUCell",
    "GaussianDropout", "GaussianNoise", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D",
    "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GroupNormalization", "GroupQueryAttention",
    "GroupedQueryAttention", "HashedCrossing", "Hashing", "Identity", "InputLayer",
    "InputSpec", "IntegerLookup", "JaxLayer", "LSTM", "LSTMCell", "Layer",
    "LayerNormalization", "LeakyReLU", "LocallyConnected1D", "LocallyConnected2D",
    "Masking", "MaxNumBoundingBoxes", "MaxPool1D", "MaxPool2D", "MaxPool3D", "MaxPooling1D",
    "MaxPooling2D", "MaxPooling3D", "Maximum", "MelSpectrogram", "Minimum", "MixUp",
    "Model", "MultiHeadAttention", "Multiply", "Normalization", "PReLU", "Permute",
    "Pipeline", "RMSNormalization", "RNN", "RandAugment", "RandomBrightness",
    "RandomColorDegeneration", "RandomColorJitter", "RandomContrast", "RandomCrop",
    "RandomElasticTransform", "RandomErasing", "RandomFlip", "RandomGaussianBlur",
    "RandomGrayscale", "RandomHeight", "RandomHue", "RandomInvert", "RandomPerspective",
    "RandomPosterization", "RandomRotation", "RandomSaturation", "RandomSharpness",
    "RandomShear", "RandomTranslation", "RandomWidth", "RandomZoom", "ReLU", "RepeatVector",
    "Rescaling", "Reshape", "Resizing", "ReversibleEmbedding", "STFTSpectrogram",
    "SeparableConv1D", "SeparableConv2D", "SeparableConvolution1D",
    "SeparableConvolution2D", "Sequential", "SimpleRNN", "SimpleRNNCell", "SlicingOpLambda",
    "Softmax", "Solarization", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "SpectralNormalization", "StackedRNNCells", "StringLookup", "Subtract", "TFOpLambda",
    "TFSMLayer", "TextVectorization", "ThresholdedReLU", "TimeDistributed",
    "TorchModuleWrapper", "UnitNormalization", "UpSampling1D", "UpSampling2D",
    "UpSampling3D", "Wrapper", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
    }
)

KERAS_MODULE_PREFIXES = ("keras.", "tf_keras.", "keras_hub.", "keras_nlp.", "nandoctor.")
KERAS_MODULES = ("keras", "tf_keras")

MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})


def is_known_class(class_name: str, module: str | None) -> bool:
    """True for Keras's own classes (and nandoctor's), False for user code and Lambdas."""
    if class_name == "Lambda":
        return False
    if module is not None and module != "builtins":
        return module in KERAS_MODULES or module.startswith(KERAS_MODULE_PREFIXES)
    return class_name in KERAS_CLASS_NAMES
