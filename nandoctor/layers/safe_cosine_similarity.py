"""Cosine similarity whose value and gradient are finite for every input."""

from __future__ import annotations

import keras
from keras import ops

DEFAULT_EPSILON = 1e-6
# The gradient at a zero vector is about 1/epsilon: 1e6 is beyond float16's 65504, so every batch
# holding a zero vector overflows and LossScaleOptimizer skips it. Measured on a ranker with zero
# embedding rows under mixed_float16 (40 batches, Adam): epsilon 1e-6 applied 25 steps and left the
# loss scale at 1; 1e-4 applied 32 (the scale's usual warm-up) and kept it at 128.
FLOAT16_EPSILON = 1e-4
# The dtype the norms are taken in, by the layer's compute dtype: in float16 the squares overflow
# beyond 255 and epsilon**2 (1e-12) is 0, so a zero vector divides 0 by 0.
NORM_DTYPES = {"float16": "float32", "bfloat16": "float32"}


def _downscaled(x, axis):
    """`x` divided by a constant that keeps its squares from overflowing float32.

    Norms of vectors near 3e38 overflow when squared. Dividing by max |x| (when above 1)
    first brings every element into [-1, 1]. The divisor is held constant for the
    gradient (`stop_gradient`): normalisation and cosine are scale-invariant, so the
    gradient stays exact.
    """
    scale = ops.maximum(ops.max(ops.abs(x), axis=axis, keepdims=True), 1.0)
    # Divided twice by its square root: XLA on CPU (JAX) divides by multiplying with the
    # reciprocal, and 1 / 3e38 is a denormal that it flushes to zero (measured: x became 0).
    root = ops.sqrt(ops.stop_gradient(scale))
    return x / root / root


def safe_norm(x, axis=-1, keepdims=False, epsilon=DEFAULT_EPSILON):
    """`sqrt(sum(x**2) + epsilon**2)`: the L2 norm with the epsilon inside the square root.

    The gradient of `sqrt(s)` is `1 / (2 sqrt(s))`, infinite at `s = 0`. Measured on
    TensorFlow 2.21 at a zero vector: `sqrt(sum(x**2))` and `sqrt(sum(x**2)) + epsilon`
    have NaN gradients; the clamp `maximum(sqrt(sum(x**2)), epsilon)` has a zero one, but
    a cosine that divides by it returns gradients of `1 / epsilon` (1e7 for 1e-7), which
    overflow to inf against a large vector. Inside the root, the gradient is
    `x / safe_norm(x)`: at most 1 in size, and 0 at a zero vector. Within `epsilon` of
    the exact norm.
    """
    squares = ops.sum(ops.square(x), axis=axis, keepdims=keepdims)
    return ops.sqrt(squares + epsilon**2)


def safe_l2_normalize(x, axis=-1, epsilon=DEFAULT_EPSILON):
    """`x / safe_norm(x)`: a zero vector maps to zero, with a finite gradient of at most
    about `1 / epsilon` in size (a zero vector's direction is undefined; this is the
    largest gradient the layer can produce). Safe for inputs up to float32's maximum."""
    x = _downscaled(x, axis)
    return x / safe_norm(x, axis=axis, keepdims=True, epsilon=epsilon)


def default_epsilon(compute_dtype: str) -> float:
    """The epsilon a safe norm uses by default in a layer computing in `compute_dtype`."""
    return FLOAT16_EPSILON if compute_dtype == "float16" else DEFAULT_EPSILON


@keras.saving.register_keras_serializable(package="nandoctor")
class SafeCosineSimilarity(keras.layers.Layer):
    """Cosine similarity of two tensors along `axis`, finite in value and gradient for
    every input, zero vectors included.

    An unguarded hand-written cosine returns NaN for a zero vector; the usual guard,
    `sum(a * b) / max(norm(a) * norm(b), epsilon)`, returns gradients of `1 / epsilon`
    (1e7 for a zero vector against a unit one, measured on TensorFlow 2.21) that overflow
    to inf against large vectors, and an epsilon added outside a square root leaves its
    gradient NaN. This layer puts the epsilon inside each square root (`safe_norm`) and
    downscales huge inputs first, so:
    the value is in [-1, 1] and equals the exact cosine for vectors whose norms are well
    above `epsilon`; a zero vector scores 0; the gradient is finite everywhere and bounded
    by about `1 / epsilon`. Under a `mixed_float16` or `mixed_bfloat16` policy the norms are
    taken in float32 (in float16, `epsilon**2` is 0) and the output is in the compute dtype.
    Fixes `ND101` zero rows under a cosine, and `ND201`/`ND202` unguarded divisions and
    square roots (field report C).

    Args:
        axis: the axis holding the vectors. Defaults to `-1`.
        keepdims: whether to keep `axis` with size 1 in the output. Defaults to `False`.
        epsilon: the floor of each norm, inside its square root. Defaults to `None`: `1e-6`,
            or `1e-4` where the layer computes in float16, whose largest value (65504) cannot
            hold the `1/epsilon` gradient of a zero vector.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`, such as `name`.

    Call arguments:
        inputs: a list `[a, b]` of tensors of the same shape, or shapes that broadcast
            (a `(batch, 1, d)` query against `(batch, n, d)` candidates).

    Example:
    ```python
    query = keras.Input((16,))
    candidates = keras.Input((10, 16))
    scores = nandoctor.layers.SafeCosineSimilarity()(
        [keras.layers.Reshape((1, 16))(query), candidates]
    )  # (batch, 10)
    ```

    Reference: [field report C](field-reports.md).
    """

    def __init__(self, axis=-1, keepdims=False, epsilon=None, **kwargs):
        super().__init__(**kwargs)
        if epsilon is not None and not epsilon > 0:
            raise ValueError(f"`epsilon` must be positive. Received: epsilon={epsilon}")
        self.axis = axis
        self.keepdims = keepdims
        self.epsilon = epsilon

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(f"SafeCosineSimilarity takes a list of two tensors. Received: {inputs}")
        # In float16, epsilon**2 (1e-12) is 0 and a zero vector divides 0 by 0: the norms are taken
        # in float32, as Keras's own normalisations do under a mixed policy.
        a, b = (ops.cast(x, NORM_DTYPES.get(self.compute_dtype, self.compute_dtype)) for x in inputs)
        a = safe_l2_normalize(a, axis=self.axis, epsilon=self.resolved_epsilon)
        b = safe_l2_normalize(b, axis=self.axis, epsilon=self.resolved_epsilon)
        return ops.cast(ops.sum(a * b, axis=self.axis, keepdims=self.keepdims), self.compute_dtype)

    @property
    def resolved_epsilon(self) -> float:
        """The epsilon in use: the one given, or the default for the layer's compute dtype."""
        return self.epsilon if self.epsilon is not None else default_epsilon(self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "keepdims": self.keepdims, "epsilon": self.epsilon})
        return config
