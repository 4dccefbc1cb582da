"""Per-variable health statistics, computed on the device in one compiled function.

Only a small `(variables, STATS)` matrix crosses to the host at each check; the weights
never do. Between checks, `any_nonfinite` reads every weight once more, on the device, and
returns one number: the Monitor looks at every step, so it names the exact step the
weights first go non-finite. Where the squares of the weights would underflow (or overflow),
the norm is computed as `m * ||x / m||` with `m = max |x|`, so that weights shrinking toward
1e-30 do not read as 0 before they are really gone.

The statistics are written once, in `keras.ops`, as functions of the weights' values, and
compiled with the backend's own compiler: `tf.function` on TensorFlow, `jax.jit` on JAX; on
PyTorch they run eagerly under `torch.no_grad`.
"""

from __future__ import annotations

from functools import partial, wraps

import numpy as np

# Columns of the statistics matrix.
NORM, MAX_ABS, NONFINITE, ZERO_FRACTION, ZERO_ROWS, UPDATE_NORM = range(6)
STATS = 6


class StatsKernel:
    """Statistics of `variables`; with `snapshots`, also the norm of the change since the
    last snapshot (the update-to-weight ratio's numerator) and a last-good copy to restore."""

    def __init__(self, variables, embedding: list[bool], snapshots: bool):
        import keras

        self.variables = list(variables)
        self.keeps_snapshots = snapshots
        # Until the first snapshot there is nothing to measure an update against, or to restore.
        self._has_snapshot = False
        self._smallest_positive: float | None = None
        self._backend = keras.backend.backend()
        statistics = partial(_statistics, embedding=tuple(embedding))
        compile_ = _compiler(self._backend)
        if self._backend == "jax":
            # JAX arrays are immutable and the trainer donates the weights' buffers to each
            # step: a snapshot is a compiled copy, and the functions take the values as arguments.
            self._saved = None
            compute, sentinel, copy = compile_(statistics), compile_(_nonfinite_sentinel), compile_(_copies)
            self._compute = lambda: compute(self._values(), self._saved_values())
            self._sentinel = lambda: sentinel(self._values())
            self._copy = lambda: setattr(self, "_saved", copy(self._values()))
        else:
            # Variables on the device (MirroredVariables under a strategy), read inside the
            # compiled (TensorFlow) or no-grad (PyTorch) functions: a snapshot is an assignment
            # in place, never a host copy or a new buffer.
            self._saved = (
                [
                    keras.Variable(keras.ops.zeros(v.shape, v.dtype), trainable=False, name=f"nandoctor_snapshot_{i}")
                    for i, v in enumerate(self.variables)
                ]
                if snapshots
                else None
            )
            self._compute = compile_(lambda: statistics(self._values(), self._saved_values()))
            self._sentinel = compile_(lambda: _nonfinite_sentinel(self._values()))
            self._copy = compile_(self._assign_snapshots)

    @property
    def smallest_positive(self) -> float:
        """The smallest positive float32 this backend's arithmetic keeps: the smallest normal
        number where it flushes subnormal results to zero (TensorFlow and XLA on the CPU),
        the smallest subnormal where it keeps them (PyTorch). Measured once, on the device."""
        if self._smallest_positive is None:
            import keras

            tiny = np.finfo(np.float32).tiny
            half = keras.ops.multiply(
                keras.ops.convert_to_tensor(np.array([tiny], np.float32)),
                keras.ops.convert_to_tensor(np.array([0.5], np.float32)),
            )
            kept = keras_numpy(half)[0] > 0
            self._smallest_positive = float(np.finfo(np.float32).smallest_subnormal if kept else tiny)
        return self._smallest_positive

    def __call__(self) -> np.ndarray:
        stats = np.array(keras_numpy(self._compute()))
        if not self._has_snapshot:
            stats[:, UPDATE_NORM] = -1.0  # as without snapshots: no update measured
        return stats

    def any_nonfinite(self) -> bool:
        """Whether any weight holds a NaN or an infinity: one fused pass, one number back."""
        return not np.isfinite(keras_numpy(self._sentinel()))

    def snapshot(self) -> None:
        """Copy the current weights into the snapshots, on the device."""
        if self.keeps_snapshots:
            self._copy()
            self._has_snapshot = True

    def restore(self) -> bool:
        """Put the last snapshot back into the variables; False when none was taken yet."""
        import keras

        if not self._has_snapshot:
            return False
        for variable, saved in zip(self.variables, self._saved_values() or []):
            # On JAX a copy: the next step donates the buffer it is given.
            variable.assign(keras.ops.copy(saved) if self._backend == "jax" else saved)
        return True

    def _values(self):
        return [variable.value for variable in self.variables]

    def _saved_values(self):
        if self._saved is None:
            return None
        return self._saved if self._backend == "jax" else [saved.value for saved in self._saved]

    def _assign_snapshots(self):
        for variable, saved in zip(self.variables, self._saved):
            saved.assign(variable.value)
        return 0


def keras_numpy(value) -> np.ndarray:
    """A backend tensor on the host (a PyTorch tensor is not an array to numpy)."""
    import keras

    return keras.ops.convert_to_numpy(value)


def _compiler(backend: str):
    if backend == "tensorflow":
        import tensorflow as tf

        return lambda function: tf.function(function, autograph=False)
    if backend == "jax":
        import jax

        return jax.jit
    if backend == "torch":
        return _eager_without_autograd
    return lambda function: function


def _eager_without_autograd(function):
    """PyTorch: eager, as Keras's own torch trainer runs by default, and outside autograd, or
    every statistic of a weight would be recorded for a backward pass that never comes."""
    import warnings

    import torch

    @wraps(function)
    def run(*args):
        with torch.no_grad(), warnings.catch_warnings():
            # Keras's count_nonzero transposes its 0-D result, which PyTorch warns about; a
            # count over all axes is the one that is a single pass (with an axis, 14x slower).
            warnings.filterwarnings("ignore", message="Tensor.T is deprecated on 0-D tensors", category=UserWarning)
            return function(*args)

    return run


def _statistics(values, saved, embedding: tuple[bool, ...]):
    from keras import ops

    rows = []
    for index, value in enumerate(values):
        x = ops.cast(value, "float32")
        previous = ops.cast(saved[index], "float32") if saved is not None else None
        zero_rows = _zero_rows(x) if embedding[index] else ops.convert_to_tensor(-1.0)
        # Weights are finite at almost every check: then the statistics need no cleaning pass
        # and no count. The sum is non-finite whenever a weight is (and, rarely, when finite
        # weights near float32's limit overflow it: the cleaning pass is exact then too).
        rows.append(
            _branch(
                ops.isfinite(ops.sum(x)),
                lambda x=x, previous=previous, zero_rows=zero_rows: _row(x, previous, zero_rows, 0.0),
                lambda x=x, previous=previous, zero_rows=zero_rows: _cleaned_row(x, previous, zero_rows),
            )
        )
    return ops.stack(rows)


# Every statistic of a large variable is a reduction over the weights, with no intermediate
# array the size of the weights where one can be avoided: an eager backend (PyTorch) allocates
# each one, and for a large matrix the allocation costs more than the arithmetic. A small
# variable takes the fewest operations instead: there each one's dispatch is the cost.
LARGE = 1_000_000


def _row(x, previous, zero_rows, nonfinite):
    from keras import ops

    largest = _largest(x)
    zero_fraction = 1.0 - ops.cast(ops.count_nonzero(x), "float32") / float(max(int(np.prod(x.shape)), 1))
    if previous is not None:
        update = x - previous
        update_norm = _norm(update, _largest(update))
    else:
        update_norm = ops.convert_to_tensor(-1.0)
    return ops.stack(
        [_norm(x, largest), largest, ops.convert_to_tensor(nonfinite, "float32"), zero_fraction, zero_rows, update_norm]
    )


def _cleaned_row(x, previous, zero_rows):
    """The statistics of the finite values, and the count of the others."""
    from keras import ops

    finite = ops.isfinite(x)
    nonfinite = ops.sum(ops.cast(ops.logical_not(finite), "float32"))
    return _row(ops.where(finite, x, ops.zeros_like(x)), previous, zero_rows, nonfinite)


def _zero_rows(x):
    from keras import ops

    return ops.sum(ops.cast(ops.all(ops.equal(x, 0.0), axis=1), "float32"))


def _nonfinite_sentinel(values):
    from keras import ops

    # Non-finite whenever a weight is: a NaN or an infinity carries through a sum. Finite
    # weights near float32's limit can overflow it too, which only costs the Monitor one
    # full check (that counts exactly) at that step.
    return ops.sum(ops.stack([ops.sum(ops.cast(value, "float32")) for value in values]))


def _copies(values):
    from keras import ops

    return [ops.copy(value) for value in values]


def _branch(predicate, if_true, if_false):
    """`ops.cond`; on PyTorch, where the statistics run eagerly, a plain `if`: Keras builds an
    Operation object for every eager cond, which costs more than a small variable's statistics."""
    import keras

    if keras.backend.backend() == "torch":
        return if_true() if bool(predicate) else if_false()
    return keras.ops.cond(predicate, if_true, if_false)


def _largest(x):
    from keras import ops

    if int(np.prod(x.shape)) < LARGE:
        return ops.max(ops.abs(x))
    return ops.maximum(ops.max(x), ops.negative(ops.min(x)))  # two passes, no |x| array


# Where the largest value lies between these, the squares of every value that matters are
# normal float32 numbers and their sum cannot overflow (below 3e12 values): the norm is one
# pass over the squares. Outside, it is m * ||x / m|| with m the largest value, so that weights
# shrinking toward 1e-30 do not read as 0 before they really are (their squares would).
_PLAIN_NORM_RANGE = (1e-15, 1e13)


def _norm(x, largest):
    from keras import ops

    low, high = _PLAIN_NORM_RANGE
    return _branch(
        ops.logical_and(largest > low, largest < high),
        lambda: ops.norm(ops.reshape(x, (-1,))),
        lambda: _scaled_norm(x, largest),
    )


def _scaled_norm(x, largest):
    from keras import ops

    safe = ops.where(largest > 0, largest, ops.ones_like(largest))
    return largest * ops.sqrt(ops.sum(ops.square(x / safe)))
