"""Per-variable health statistics, computed on the device in one compiled function.

Only a small `(variables, STATS)` matrix crosses to the host at each check; the weights
never do. Between checks, `any_nonfinite` reads every weight once more, on the device, and
returns one number: the Monitor looks at every step, so it names the exact step the
weights first go non-finite. The norm is computed as `m * ||x / m||` with `m = max |x|`, so that weights
shrinking toward 1e-30 do not underflow before they are really gone (their squares would).
"""

from __future__ import annotations

import numpy as np

# Columns of the statistics matrix.
NORM, MAX_ABS, NONFINITE, ZERO_FRACTION, ZERO_ROWS, UPDATE_NORM = range(6)
STATS = 6


class StatsKernel:
    """Statistics of `variables`; with `snapshots`, also the norm of the change since the
    last snapshot (the update-to-weight ratio's numerator) and a last-good copy to restore."""

    def __init__(self, variables, embedding: list[bool], snapshots: bool):
        import keras
        import tensorflow as tf

        self.variables = list(variables)
        self.embedding = embedding
        # Zeros, then a device copy: `keras.Variable(v.value)` would share the weight's storage.
        self.snapshots = (
            [keras.Variable(keras.ops.zeros(v.shape, v.dtype), trainable=False, name=f"nandoctor_snapshot_{i}")
             for i, v in enumerate(self.variables)]
            if snapshots
            else None
        )
        self._compute = tf.function(self._statistics, autograph=False)
        self._copy = tf.function(self._take_snapshot, autograph=False)
        self._sentinel = tf.function(self._nonfinite_sentinel, autograph=False)

    def __call__(self) -> np.ndarray:
        return np.asarray(self._compute())

    def any_nonfinite(self) -> bool:
        """Whether any weight holds a NaN or an infinity: one fused pass, one number back."""
        return not np.isfinite(np.asarray(self._sentinel()))

    def snapshot(self) -> None:
        """Copy the current weights into the snapshots, on the device."""
        if self.snapshots is not None:
            self._copy()

    def restore(self) -> None:
        """Put the last snapshot back into the variables."""
        for variable, saved in zip(self.variables, self.snapshots or []):
            variable.assign(saved.value)

    def _take_snapshot(self):
        for variable, saved in zip(self.variables, self.snapshots):
            saved.assign(variable.value)
        return 0

    def _nonfinite_sentinel(self):
        from keras import ops

        # x * 0 is 0 for every finite x and NaN for NaN and both infinities; unlike a plain
        # sum, the total cannot overflow, so it is non-finite exactly when a weight is.
        return ops.sum(ops.stack([ops.sum(ops.cast(v.value, "float32") * 0.0) for v in self.variables]))

    def _statistics(self):
        from keras import ops

        rows = []
        for index, variable in enumerate(self.variables):
            x = ops.cast(variable.value, "float32")
            finite = ops.isfinite(x)
            clean = ops.where(finite, x, ops.zeros_like(x))
            nonfinite = ops.sum(ops.cast(ops.logical_not(finite), "float32"))
            zero_fraction = ops.mean(ops.cast(ops.equal(x, 0.0), "float32"))
            if self.embedding[index]:
                zero_rows = ops.sum(ops.cast(ops.all(ops.equal(x, 0.0), axis=1), "float32"))
            else:
                zero_rows = ops.convert_to_tensor(-1.0)
            update = _scaled_norm(clean - ops.cast(self.snapshots[index].value, "float32")) if self.snapshots else ops.convert_to_tensor(-1.0)
            rows.append(ops.stack([_scaled_norm(clean), ops.max(ops.abs(clean)), nonfinite, zero_fraction, zero_rows, update]))
        return ops.stack(rows)


def _scaled_norm(x):
    from keras import ops

    largest = ops.max(ops.abs(x))
    safe = ops.where(largest > 0, largest, ops.ones_like(largest))
    return largest * ops.sqrt(ops.sum(ops.square(x / safe)))
