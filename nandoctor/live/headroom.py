"""How close each layer's activations come to the edges of the dtype it computes in, on typical
inputs: the largest magnitude of its outputs against the dtype's largest finite value, and the
share of its non-zero values that the dtype flushes to zero (Hugging Face's
`DebugUnderflowOverflow` records the same per module for PyTorch).

It runs only on a model that computes in float16 or bfloat16 (`mixed_float16`, `mixed_bfloat16`,
or those dtypes throughout): one forward pass in the model's own policy with every layer's
output, and the same pass with every layer switched to float32 for a moment, which says what
the reduced dtype lost (a value it flushed to 0, an inf that float32 holds). The NaN probe
measures it first, on typical inputs and its realistic recipes, and reports the first layer
that comes within ND805's factor of the largest value, or overflows it: float16 holds nothing
above 65504, and an activation within a factor of 16 of it overflows on the first input a
little larger than those measured.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nandoctor.analysis.precision import FLOAT_FORMATS, REDUCED_FLOATS, FloatFormat
from nandoctor.live.model_inputs import input_nest, to_host
from nandoctor.live.model_layers import every_layer
from nandoctor.report import Confidence, Evidence, Finding, Severity
from nandoctor.rules.overflow_headroom import OverflowHeadroom

TYPICAL_INPUTS = (
    "typical inputs and the NaN probe's realistic recipes (zero embedding rows, all-padding texts), one batch"
)


@dataclass(frozen=True)
class LayerHeadroom:
    """One layer's outputs on the measured batch: the dtype it computes in, their largest
    magnitude (inf where one overflowed), whether any is NaN or inf, the same largest
    magnitude computed in float32, and the share of the values non-zero in float32 that the
    layer's dtype made exactly 0 where float32 holds them below its smallest normal (flushed,
    not cancelled by rounding)."""

    layer: str
    dtype: str
    max_abs: float
    nonfinite: bool
    max_abs_float32: float
    flushed_to_zero: float

    @property
    def largest(self) -> float:
        return FLOAT_FORMATS[self.dtype].largest

    def to_dict(self) -> dict[str, Any]:
        # JSON has no inf: a value that overflowed is said by `nonfinite`, its size by float32's.
        return {
            "layer": self.layer,
            "dtype": self.dtype,
            "max_abs": self.max_abs if np.isfinite(self.max_abs) else None,
            "largest": self.largest,
            "fraction_of_largest": self.max_abs / self.largest if np.isfinite(self.max_abs) else None,
            "nonfinite": self.nonfinite,
            "max_abs_float32": self.max_abs_float32 if np.isfinite(self.max_abs_float32) else None,
            "flushed_to_zero": self.flushed_to_zero,
        }


def reduced_compute_dtype(layer) -> str | None:
    """float16 or bfloat16 where the live layer computes in it (quantized layers aside), else None."""
    policy = getattr(layer, "dtype_policy", None)
    if policy is None or getattr(policy, "quantization_mode", None) is not None:
        return None
    compute = getattr(policy, "compute_dtype", None)
    return compute if compute in REDUCED_FLOATS else None


def computes_in_reduced_precision(model) -> bool:
    """Whether any layer of a Keras 3 model computes in float16 or bfloat16. A tf_keras (Keras 2)
    model's policies cannot be switched to float32 here: it is judged as in float32."""
    import keras

    if not isinstance(model, keras.Model):
        return False
    return any(reduced_compute_dtype(layer) is not None for layer in (model, *every_layer(model)))


@contextlib.contextmanager
def computing_in_float32(model) -> Iterator[None]:
    """Every layer of the live model that computes in float16 or bfloat16 computes in float32
    inside, reading the same variables (a `mixed_` policy keeps them in float32; Keras casts
    float16 ones up); each policy is put back after. Keras reads a layer's policy at each call,
    so nothing else changes: no weight, no optimizer state."""
    import keras

    changed = []
    float32 = keras.dtype_policies.get("float32")
    for layer in (model, *every_layer(model)):
        policy = getattr(layer, "_dtype_policy", None)
        # A DTypePolicyMap (a quantized model's per-layer table) is Keras's own: left alone.
        if isinstance(policy, keras.DTypePolicy) and reduced_compute_dtype(layer) is not None:
            changed.append((layer, policy))
            layer._dtype_policy = float32
    try:
        yield
    finally:
        for layer, policy in changed:
            layer._dtype_policy = policy


def measure_headroom(model, inputs) -> list[LayerHeadroom]:
    """Each top-level layer's headroom on `inputs` that computes in float16 or bfloat16, in the
    model's layer order; layers called more than once (shared) are left out, since their
    output is not one tensor."""
    import keras

    measured = [
        (layer, dtype)
        for layer in model.layers
        if type(layer).__name__ != "InputLayer"
        and len(getattr(layer, "_inbound_nodes", ())) == 1
        and (dtype := reduced_compute_dtype(layer)) is not None
    ]
    if not measured:
        return []
    probe = keras.Model(input_nest(model), [layer.output for layer, _ in measured])
    reduced = _flat_outputs(probe(inputs, training=False), len(measured))
    with computing_in_float32(model):
        single = _flat_outputs(probe(inputs, training=False), len(measured))
    return [
        _headroom(layer.name, FLOAT_FORMATS[dtype], low, high)
        for (layer, dtype), low, high in zip(measured, reduced, single)
    ]


def _flat_outputs(outputs, count: int) -> list[list[np.ndarray]]:
    """Each layer's float outputs (a layer may return several), in float64."""
    import keras

    per_layer = outputs if isinstance(outputs, list) and len(outputs) == count else [outputs]
    hosted = [[to_host(tensor) for tensor in keras.tree.flatten(output)] for output in per_layer]
    # numpy knows bfloat16 only through ml_dtypes, as a kind of its own ("V").
    return [
        [values.astype(np.float64) for values in layer if values.dtype.kind == "f" or values.dtype.name == "bfloat16"]
        for layer in hosted
    ]


def _headroom(name: str, dtype: FloatFormat, reduced: list[np.ndarray], single: list[np.ndarray]) -> LayerHeadroom:
    low = np.concatenate([v.ravel() for v in reduced]) if reduced else np.zeros(0)
    high = np.concatenate([v.ravel() for v in single]) if single else np.zeros(0)
    nonfinite = not np.isfinite(low).all()
    magnitudes = np.abs(low[~np.isnan(low)])
    max_abs = float(magnitudes.max()) if magnitudes.size else 0.0
    finite_high = np.abs(high[np.isfinite(high)])
    max_abs_float32 = float(np.abs(high).max()) if high.size else 0.0
    flushed = 0.0
    if low.shape == high.shape and finite_high.size:
        held = np.isfinite(high) & (high != 0)
        # Flushed: a value float32 holds that lies below the dtype's smallest normal, made 0.
        # A value that cancels to 0 by rounding (a - b with a close to b) is precision, not range.
        lost = held & (low == 0) & (np.abs(high) < dtype.smallest_normal)
        flushed = float(lost.sum() / held.sum()) if held.any() else 0.0
    return LayerHeadroom(name, dtype.name, max_abs, nonfinite, max_abs_float32, flushed)


def first_overflow(table: list[LayerHeadroom], factor: float) -> LayerHeadroom | None:
    """The first layer whose outputs come within `factor` of its dtype's largest value, or go
    beyond it where float32 holds them (a NaN or inf float32 gives too is not the dtype's)."""
    for row in table:
        if row.nonfinite and np.isfinite(row.max_abs_float32):
            return row
        if not row.nonfinite and row.max_abs > row.largest / factor:
            return row
    return None


def headroom_finding(model, inputs, notes: list[str]) -> Finding | None:
    """ND805, measured, at the first layer of a float16 or bfloat16 model whose outputs on
    `inputs` come within the rule's factor of the dtype's largest value or overflow it where
    float32 holds them, with the whole table in `details["headroom"]`; None where none does,
    and for a model in float32 (nothing is run)."""
    if not computes_in_reduced_precision(model):
        return None
    if input_nest(model) is None:
        notes.append(
            "the headroom table was not measured: it reads each layer's output, and a subclassed model "
            "has no graph of layers"
        )
        return None
    table = measure_headroom(model, inputs)
    factor = float(OverflowHeadroom.options["factor"])
    row = first_overflow(table, factor)
    if row is None:
        return None
    over = row.nonfinite or row.max_abs > row.largest
    reached = (
        f"are inf or NaN, where float32 gives finite values (at most {row.max_abs_float32:.4g})"
        if row.nonfinite
        else f"reach |x| = {row.max_abs:.4g}"
    )
    return OverflowHeadroom.finding(
        row.layer,
        f"on {TYPICAL_INPUTS}, the outputs of layer '{row.layer}', computed in {row.dtype}, {reached}; "
        f"{row.dtype}'s largest value is {row.largest:g}"
        + ("" if over else f": a factor of {row.largest / row.max_abs:.3g} from overflowing"),
        severity=Severity.ERROR if over else Severity.WARNING,
        confidence=Confidence.HIGH,
        evidence=Evidence.MEASURED,
        measured=(
            f"layer '{row.layer}' "
            + ("overflowed" if row.nonfinite else f"reached {row.max_abs:.4g}")
            + f" in {row.dtype} on typical inputs"
        ),
        fix=(
            'Compute this layer in float32 (dtype="float32" on it, or on the layers from it to the next '
            "normalisation), or scale its inputs or weights down so that its outputs stay well inside "
            f"{row.dtype}'s {row.largest:g}."
        ),
        details={
            "max_abs": row.to_dict()["max_abs"],
            "largest": row.largest,
            "factor": factor,
            "compute_dtype": row.dtype,
            "inputs": TYPICAL_INPUTS,
            "headroom": [entry.to_dict() for entry in table],
        },
    )
