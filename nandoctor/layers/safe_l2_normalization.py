"""L2 normalisation whose value and gradient are finite for every input."""

from __future__ import annotations

import keras
from keras import ops

from nandoctor.layers.safe_cosine_similarity import NORM_DTYPES, default_epsilon, safe_l2_normalize


@keras.saving.register_keras_serializable(package="nandoctor")
class SafeL2Normalization(keras.layers.Layer):
    """Divides each vector along `axis` by its L2 norm; a zero vector maps to zero, with a
    finite gradient, in every dtype policy.

    `x / norm(x)` written by hand is 0 / 0 = NaN for a zero vector (a padding position, an
    all-zero embedding row, a dead ReLU layer). Keras 3.15's `UnitNormalization` clamps the
    squared norm instead: measured on TensorFlow, a zero vector scores 0 but its gradient is
    of order 1e12 in float32; under `mixed_float16` it is NaN with an infinite gradient, and
    `[300, 400]` normalises to `[0, 0]` (its squares overflow float16). This layer is
    `safe_l2_normalize` as a layer: the epsilon inside the square root, huge inputs
    downscaled first, the norms taken in float32 under a mixed policy and the output in the
    compute dtype, so the gradient is at most about `1 / epsilon`. Fixes `ND201`/`ND202`
    where the division is `x / norm(x)`.

    Args:
        axis: the axis holding the vectors. Defaults to `-1`.
        epsilon: the floor of each norm, inside its square root. Defaults to `None`: `1e-6`,
            or `1e-4` where the layer computes in float16, whose largest value (65504) cannot
            hold the `1/epsilon` gradient of a zero vector.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`, such as `name`.

    Call arguments:
        inputs: a tensor of any shape; the output has the same shape. A mask passes through.

    Example:
    ```python
    tokens = keras.Input((None,), dtype="int32")
    vectors = keras.layers.Embedding(20000, 64)(tokens)
    unit = nandoctor.layers.SafeL2Normalization()(vectors)  # zero rows stay zero, not NaN
    ```

    Reference: Keras's [`UnitNormalization`](https://keras.io/api/layers/normalization_layers/unit_normalization/),
    which this replaces where a vector can be zero.
    """

    def __init__(self, axis=-1, epsilon=None, **kwargs):
        super().__init__(**kwargs)
        if epsilon is not None and not epsilon > 0:
            raise ValueError(f"`epsilon` must be positive. Received: epsilon={epsilon}")
        self.axis = axis
        self.epsilon = epsilon
        self.supports_masking = True

    def call(self, inputs):
        x = ops.cast(inputs, NORM_DTYPES.get(self.compute_dtype, self.compute_dtype))
        return ops.cast(safe_l2_normalize(x, axis=self.axis, epsilon=self.resolved_epsilon), self.compute_dtype)

    @property
    def resolved_epsilon(self) -> float:
        """The epsilon in use: the one given, or the default for the layer's compute dtype."""
        return self.epsilon if self.epsilon is not None else default_epsilon(self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "epsilon": self.epsilon})
        return config
