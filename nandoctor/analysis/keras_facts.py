"""What Keras's, KerasHub's and nandoctor's classes are, known by name: the one home of
every class-name set the rules, the padding walk and the live checks consult.

Which classes in a model config are Keras's own, and so known to nandoctor:

Keras 3 configs name a module (`keras.layers`, `keras.src.ops.numpy`); Keras 2 configs and
Keras 3's legacy `.h5` writer name only the class. The names below are every class in
`keras.layers` and `keras.models` of Keras 3.15 and of tf-keras 2.21 (the Keras 2 API), and
every operation class of Keras 3.15, listed once from those packages so that the static scan
never imports them. `Lambda` is deliberately absent: it is code.
"""

from __future__ import annotations

import re

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

# Keras 3's operations (`keras.ops.*` called on symbolic tensors become graph nodes); the
# legacy `.h5` writer records them without their module. Listed from keras.src.ops of 3.15.
KERAS_OP_NAMES = frozenset(
    {
    "Abs", "Absolute", "AdaptiveAveragePool", "AdaptiveMaxPool", "Add", "AffineTransform",
    "All", "AllClose", "Amax", "Amin", "Angle", "Any", "Append", "Arange", "Arccos",
    "Arccosh", "Arcsin", "Arcsinh", "Arctan", "Arctan2", "Arctanh", "Argmax", "Argmin",
    "Argpartition", "Argsort", "Array", "ArraySplit", "AssociativeScan", "Average",
    "AveragePool", "BatchNorm", "BinaryCrossentropy", "Bincount", "BitwiseAnd",
    "BitwiseInvert", "BitwiseLeftShift", "BitwiseNot", "BitwiseOr", "BitwiseRightShift",
    "BitwiseXor", "BroadcastTo", "CDist", "CTCDecode", "CTCLoss", "Cast",
    "CategoricalCrossentropy", "Cbrt", "Ceil", "Celu", "Cholesky", "CholeskyInverse",
    "Clip", "Concatenate", "Cond", "Conj", "Conjugate", "Conv", "ConvTranspose",
    "ConvertToTensor", "Copy", "Corrcoef", "Correlate", "Cos", "Cosh", "CountNonzero",
    "CropImages", "Cross", "Cumprod", "Cumsum", "Deg2rad", "DepthToSpace", "DepthwiseConv",
    "Det", "Diag", "Diagflat", "Diagonal", "Diff", "Digitize", "Divide", "DivideNoNan",
    "Dot", "DotProductAttention", "Dsplit", "Dstack", "DummyLayer", "Eig", "Eigh", "Einsum",
    "ElasticTransform", "Elu", "EmptyLike", "Equal", "Erf", "Erfc", "Erfinv", "Exp", "Exp2",
    "ExpandDims", "Expm1", "ExtractPatches", "ExtractSequences", "FFT", "FFT2", "Fabs",
    "Flip", "Fliplr", "Flipud", "Floor", "FloorDivide", "Fmax", "Fmin", "Fmod", "Fold",
    "ForiLoop", "Full", "FullLike", "Function", "GaussianBlur", "Gcd", "Gelu", "Geomspace",
    "GetItem", "Glu", "Greater", "GreaterEqual", "HSVToRGB", "HardShrink", "HardSigmoid",
    "HardSilu", "HardTanh", "Heaviside", "Histogram", "Hsplit", "Hstack", "Hypot", "I0",
    "IFFT2", "IRFFT", "ISTFT", "Imag", "InTopK", "Inner", "Inv", "IsIn", "Isclose",
    "Isfinite", "Isinf", "Isnan", "Isneginf", "Isposinf", "Isreal", "JVP", "Kron",
    "LayerNorm", "Lcm", "Ldexp", "LeakyRelu", "LeftShift", "Less", "LessEqual", "Linspace",
    "Log", "Log10", "Log1p", "Log2", "LogSigmoid", "LogSoftmax", "Logaddexp", "Logaddexp2",
    "Logdet", "LogicalAnd", "LogicalNot", "LogicalOr", "LogicalXor", "Logspace",
    "Logsumexp", "Lstsq", "LuFactor", "Map", "MapCoordinates", "Matmul", "MatrixRank",
    "Max", "MaxPool", "Maximum", "Mean", "Median", "Meshgrid", "Min", "Minimum", "Mod",
    "Moments", "Moveaxis", "MultiHot", "Multiply", "NanToNum", "Nanargmax", "Nanargmin",
    "Nancumprod", "Nancumsum", "Nanmax", "Nanmean", "Nanmedian", "Nanmin", "Nanpercentile",
    "Nanprod", "Nanquantile", "Nanstd", "Nansum", "Nanvar", "Ndim", "Negative", "Nextafter",
    "Nonzero", "Norm", "Normalize", "NotEqual", "OneHot", "OnesLike", "Outer", "PSNR",
    "Pad", "PadImages", "Percentile", "PerspectiveTransform", "Pinv", "Polar", "Power",
    "Prod", "Ptp", "Qr", "Quantile", "RFFT", "RGBToGrayscale", "RGBToHSV", "RMSNorm",
    "Rad2deg", "Ravel", "Real", "Rearrange", "Reciprocal", "Relu", "Relu6", "Repeat",
    "Reshape", "Resize", "RightShift", "Roll", "Rot90", "Round", "Rsqrt", "SSIM", "STFT",
    "SVD", "SaturateCast", "ScaleAndTranslate", "Scan", "Scatter", "ScatterUpdate",
    "SearchSorted", "SegmentMax", "SegmentMin", "SegmentProd", "SegmentReduction",
    "SegmentSum", "Select", "Selu", "SeparableConv", "Sigmoid", "Sign", "Signbit", "Silu",
    "Sin", "Sinc", "Sinh", "Size", "Slice", "SliceUpdate", "Slogdet", "SobelEdges",
    "SoftShrink", "Softmax", "Softplus", "Softsign", "Solve", "SolveTriangular", "Sort",
    "SpaceToDepth", "SparseCategoricalCrossentropy", "SparsePlus", "SparseSigmoid",
    "Sparsemax", "Split", "Sqrt", "Square", "Squareplus", "Squeeze", "Stack", "Std",
    "StopGradient", "Subtract", "Sum", "Swapaxes", "Switch", "Take", "TakeAlongAxis", "Tan",
    "Tanh", "TanhShrink", "Tensordot", "Threshold", "Tile", "TopK", "Trace", "Transpose",
    "Trapezoid", "Tril", "Triu", "TrueDivide", "Trunc", "Unfold", "Unique", "UnravelIndex",
    "Unstack", "Vander", "Var", "Vdot", "VectorizedMap", "View", "ViewAsComplex",
    "ViewAsReal", "Vsplit", "Vstack", "Where", "WhileLoop", "ZerosLike",
    }
)

KERAS_MODULE_PREFIXES = ("keras.", "tf_keras.", "keras_hub.", "keras_nlp.", "nandoctor.")
KERAS_MODULES = ("keras", "tf_keras", "keras_hub", "keras_nlp")  # bare packages: the legacy .h5 writer's `package>Class`

MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})


def is_known_class(class_name: str, module: str | None) -> bool:
    """True for Keras's own classes (and nandoctor's), False for user code and Lambdas."""
    if class_name == "Lambda":
        return False
    if module is not None and module != "builtins":
        return module in KERAS_MODULES or module.startswith(KERAS_MODULE_PREFIXES)
    return class_name in KERAS_CLASS_NAMES or class_name in KERAS_OP_NAMES


# Layer classes whose first weight is a lookup table indexed by token id.
EMBEDDING_CLASSES = frozenset({"Embedding", "ReversibleEmbedding", "EmbeddingMatrix", "MaskedEmbedding", "TiedEmbedding"})
# Embeddings that also project back onto the vocabulary with the same matrix (`reverse=True`);
# their `tie_weights` config (default true) says whether the tie is on.
TIED_EMBEDDING_CLASSES = frozenset({"ReversibleEmbedding", "TiedEmbedding"})
# Hand-written tied output layers, as Stack Overflow and NMT-Keras wrote them
# (`TiedEmbeddingsTransposed(tied_to=...)`, `DenseTranspose(dense)`): told by the class name,
# or by a config key naming the layer they are tied to.
HAND_WRITTEN_TIE_NAME = re.compile(r"tied|tying|transpose", re.IGNORECASE)
HAND_WRITTEN_TIE_KEYS = ("tied_to", "tied_layer", "tie_to", "dense")


def looks_like_hand_written_tie(class_name: str, module: str | None, config: dict | None = None) -> bool:
    """A user class (not Keras's, KerasHub's or nandoctor's) that ties an output to an embedding."""
    if is_known_class(class_name, module):
        return False
    return bool(HAND_WRITTEN_TIE_NAME.search(class_name)) or any(key in (config or {}) for key in HAND_WRITTEN_TIE_KEYS)


# KerasHub 0.32 backbones whose constructor takes `tie_word_embeddings` (default False) but
# whose `get_config` does not save it: a tied one is rebuilt untied on load, and its file,
# holding one matrix for two expected, cannot be loaded back. Read from keras_hub's source.
TIE_NOT_SAVED_BY = frozenset({"LlamaBackbone", "Llama3Backbone"})
TIE_CONFIG_KEYS = ("tie_word_embeddings", "tie_embedding_weights")

# Layers whose attention is causal by construction: nandoctor's decoder block, and KerasHub's
# decoder (its `TransformerDecoder` applies a causal mask unless told otherwise).
CAUSAL_CLASSES = frozenset({"CausalSelfAttention", "TransformerDecoder"})

# KerasHub model classes (by name prefix) whose architecture mixes every position, padding
# included, by design: a measured padding leak there is not the user's fault.
UNMASKED_BY_DESIGN = {
    "FNet": "mixes every position with a Fourier transform that takes no padding mask",
    "SigLIP": "runs its text tower over every position with no padding mask",
}

# nandoctor's embedding whose padding rows are exactly zero and masked.
PADDING_SAFE_EMBEDDINGS = frozenset({"MaskedEmbedding"})

# Per-position layers that carry the mask on (supports_masking in Keras 3.15).
MASK_CARRIERS = frozenset(
    {
        "Activation", "ELU", "LeakyReLU", "PReLU", "ReLU", "Dense", "Identity", "Masking",
        "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
        "BatchNormalization", "GroupNormalization", "LayerNormalization", "UnitNormalization",
        "Normalization", "Rescaling", "ActivityRegularization", "AlphaDropout", "Dropout",
        "SpatialDropout1D", "GaussianDropout", "GaussianNoise", "TimeDistributed",
        # nandoctor's own layers that pass the mask through
        "PositionEmbedding", "TemporalEncoding", "SinusoidalPositionEncoding",
    }
)
# Per-position layers that keep a zero padding vector exactly zero.
ZERO_PRESERVING = frozenset({"Dropout", "SpatialDropout1D", "AlphaDropout", "GaussianDropout", "Identity", "ActivityRegularization"})
# Layers that mix neighbouring positions and drop the mask.
LOCAL_MIXERS = frozenset(
    {"Conv1D", "SeparableConv1D", "DepthwiseConv1D", "Conv1DTranspose", "MaxPooling1D", "AveragePooling1D"}
)
RECURRENT = frozenset({"LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D"})
ATTENTION = frozenset({"MultiHeadAttention", "GroupedQueryAttention", "Attention", "AdditiveAttention", "CausalSelfAttention"})
# Attention layers called as (query, value[, key]): self-attention when both are one tensor.
QUERY_VALUE_ATTENTION = frozenset({"MultiHeadAttention", "GroupedQueryAttention"})

# nandoctor's layers that add a learned table per position.
POSITION_LAYERS = frozenset({"PositionEmbedding", "TemporalEncoding"})

# Layers that pass their input's values through unchanged (up to shape).
VALUE_PASSTHROUGH = frozenset(
    {
        "Reshape", "Flatten", "Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout",
        "AlphaDropout", "Permute", "RepeatVector", "Identity", "ActivityRegularization",
    }
)
# Activation layers, by the activation they apply.
ACTIVATION_LAYERS = {"Softmax": "softmax", "ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "PReLU": "prelu"}

# Normalisations that add their epsilon in float32 whatever their policy: Keras 3.15's own
# (`ops.layer_normalization` and `ops.rms_normalization` compute in at least float32, and
# BatchNormalization and GroupNormalization upcast their inputs), and KerasHub 0.32's RMS norms
# that cast to float32 first (read from their `call`). Measured on Keras 3.15 under
# `mixed_float16` with `epsilon=1e-12` and an all-zero row: no NaN from any of them.
FLOAT32_NORMALIZATIONS = frozenset(
    {
        "LayerNormalization", "GroupNormalization", "BatchNormalization", "RMSNormalization",
        "LlamaLayerNorm", "MistralLayerNormalization", "MixtralLayerNormalization", "Phi3LayerNorm",
        "QwenLayerNorm", "Qwen3LayerNorm", "GptOssLayerNormalization",
    }
)
# KerasHub 0.32 norms that add their epsilon in the layer's compute dtype (no cast first):
# under `mixed_float16` an epsilon that float16 rounds to 0 is gone (T5LayerNorm with
# `epsilon=1e-8` and an all-zero row: NaN, measured on Keras 3.15).
COMPUTE_DTYPE_NORMALIZATIONS = frozenset({"T5LayerNorm", "Gemma3nRMSNorm"})
# The config keys that hold a normalisation's epsilon (Gemma3nRMSNorm names it `eps`).
EPSILON_KEYS = ("epsilon", "eps")

# Optimizers that divide the first moment by the root of the second plus an epsilon, with
# bias corrections in `beta_1` and `beta_2` (Keras 3.15 class names; Keras 2 writes the same).
ADAM_FAMILY = frozenset({"Adam", "AdamW", "Adamax", "Nadam", "Lamb"})
# The wrappers that scale the loss for float16 (Keras 3's, and Keras 2's experimental ones).
LOSS_SCALE_OPTIMIZERS = frozenset({"LossScaleOptimizer", "LossScaleOptimizerV1", "LossScaleOptimizerV3", "BaseLossScaleOptimizer"})
