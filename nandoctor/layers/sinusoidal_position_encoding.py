"""The closed-form position encoding of Vaswani et al., added to its input."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nandoctor")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """Adds `PE(pos, 2i) = sin(pos / w**(2i/d))` and `PE(pos, 2i+1) = cos(pos / w**(2i/d))`
    to a `(batch, length, d)` sequence, with `w = max_wavelength` (10000 in the paper).

    Hand-built tables go wrong in quiet ways: `i` instead of `2i` in the exponent,
    pairing the sine of one frequency with the cosine of another, or a table shorter than
    the sequences. This one is computed in closed form for any length and has no weights.
    Dimension `2i` holds the sine and `2i + 1` the cosine of the same frequency. The
    padding mask passes through. Fixes `ND503` malformed-positional-table.

    Args:
        max_wavelength: the longest wavelength, `w`. Defaults to `10000`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`, such as `name`.

    Call arguments:
        inputs: a `(batch, length, hidden)` sequence.

    Example:
    ```python
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(27, 64)(tokens)
    x = nandoctor.layers.SinusoidalPositionEncoding()(x)
    ```

    Reference: [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762), section 3.5.
    """

    def __init__(self, max_wavelength=10000, **kwargs):
        super().__init__(**kwargs)
        if not max_wavelength > 0:
            raise ValueError(f"`max_wavelength` must be positive. Received: max_wavelength={max_wavelength}")
        self.max_wavelength = max_wavelength
        self.supports_masking = True

    def call(self, inputs):
        shape = ops.shape(inputs)
        length, hidden = shape[-2], shape[-1]
        positions = ops.cast(ops.arange(length), "float32")
        dims = ops.arange(hidden)
        pair = ops.cast(dims // 2, "float32")
        rates = ops.power(float(self.max_wavelength), -2.0 * pair / ops.cast(hidden, "float32"))
        angles = ops.expand_dims(positions, -1) * ops.expand_dims(rates, 0)
        table = ops.where(ops.expand_dims(dims % 2 == 0, 0), ops.sin(angles), ops.cos(angles))
        return inputs + ops.cast(table, inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config["max_wavelength"] = self.max_wavelength
        return config
