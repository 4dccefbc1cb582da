"""The mean of a sequence over its unmasked steps, finite when every step is masked."""

from __future__ import annotations

import keras
from keras import ops

# The dtype the sum is taken in, by the layer's compute dtype: a float16 sum of a few thousand
# steps of magnitude 10 is beyond 65504.
_SUM_DTYPES = {"float16": "float32", "bfloat16": "float32"}


@keras.saving.register_keras_serializable(package="nandoctor")
class MaskedMeanPooling(keras.layers.Layer):
    """Averages a `(batch, steps, features)` sequence over its unmasked steps; a row whose
    steps are all masked pools to zeros, never NaN, in every dtype policy.

    Keras 3.15's `GlobalAveragePooling1D` divides the masked sum by the number of unmasked
    steps, so an all-padding row (an empty text under `Embedding(mask_zero=True)`) is
    0 / 0 = NaN, on TensorFlow and JAX alike (measured). KerasHub 0.32's Gemma mean poolings
    guard the count with `maximum(count, 1e-9)`, which is 0 in float16: under
    `mixed_float16` the same row is NaN there too. Here the count is floored at 1, exact in
    every float format (a non-empty row's count is at least 1, so its mean is unchanged), and
    the sum is taken in float32 under a `mixed_float16` or `mixed_bfloat16` policy, where a
    long sequence's float16 sum would overflow. The output is in the layer's compute dtype.
    Fixes `ND201` unguarded-division where it is a masked mean over an empty mask.

    Args:
        keepdims: whether to keep the steps axis, with size 1. Defaults to `False`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`, such as `name` and
            `dtype`.

    Call arguments:
        inputs: a `(batch, steps, features)` sequence.
        mask: `(batch, steps)`, true (or 1) at the steps to average. Keras passes the mask
            of the layer before (an `Embedding(mask_zero=True)`, a `Masking`) on its own; a
            KerasHub `padding_mask` can be given here. Without a mask, every step counts.
            The output carries no mask.

    Example:
    ```python
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20000, 64, mask_zero=True)(tokens)
    pooled = nandoctor.layers.MaskedMeanPooling()(x)  # an all-padding row gives zeros
    outputs = keras.layers.Dense(4, activation="softmax")(pooled)
    ```

    Reference: Keras's [`GlobalAveragePooling1D`](https://keras.io/api/layers/pooling_layers/global_average_pooling1d/),
    which this replaces where rows can be empty.
    """

    def __init__(self, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.keepdims = keepdims
        self.supports_masking = True

    def call(self, inputs, mask=None):
        sum_dtype = _SUM_DTYPES.get(self.compute_dtype, self.compute_dtype)
        values = ops.cast(inputs, sum_dtype)
        if mask is None:
            mean = ops.mean(values, axis=1, keepdims=self.keepdims)
        else:
            keep = ops.expand_dims(ops.cast(mask, "bool"), -1)
            # `where`, not a product: a NaN or inf at a padding step must not reach the sum.
            total = ops.sum(ops.where(keep, values, ops.zeros_like(values)), axis=1, keepdims=self.keepdims)
            count = ops.sum(ops.cast(keep, sum_dtype), axis=1, keepdims=self.keepdims)
            mean = total / ops.maximum(count, 1.0)
        return ops.cast(mean, self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        if self.keepdims:
            return (input_shape[0], 1, input_shape[2])
        return (input_shape[0], input_shape[2])

    def get_config(self):
        config = super().get_config()
        config["keepdims"] = self.keepdims
        return config
