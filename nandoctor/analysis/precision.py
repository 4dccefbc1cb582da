"""What a layer computes in and stores its variables in, read from its saved dtype policy, and
what each float format can hold: the questions every reduced-precision rule asks.

Keras 3.15 saves a layer's policy in its config as `{"class_name": "DTypePolicy", "config":
{"name": "mixed_float16"}}` (a quantized layer: `QuantizedDTypePolicy` with `mode` and
`source_name`), in `.keras` and in its legacy `.h5` alike; Keras 2 saves `"float32"` or
`{"class_name": "Policy", "config": {"name": "mixed_float16"}}`. A `mixed_X` policy computes in
X and keeps its variables in float32; a plain `float16` or `bfloat16` policy keeps both in it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from nandoctor.view import Layer, ModelView

REDUCED_FLOATS = frozenset({"float16", "bfloat16"})


@dataclass(frozen=True)
class FloatFormat:
    """The limits of one float format, as `numpy.finfo` gives them (bfloat16 has no finfo in
    numpy: its numbers are those of ml_dtypes)."""

    name: str
    smallest_subnormal: float
    smallest_normal: float
    resolution: float  # the spacing of values just above 1.0
    largest: float

    def rounds_to_zero(self, value: float) -> bool:
        """Whether `value` becomes 0 when cast to this format (round to nearest: anything
        below half the smallest subnormal)."""
        return 0 < abs(value) <= self.smallest_subnormal / 2

    def rounded(self, value: float) -> float:
        """`value` as this format stores it."""
        if self.name == "bfloat16":
            bits = np.array([value], np.float32).view(np.uint32)
            bits = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
            return float(bits.view(np.float32)[0])
        with np.errstate(over="ignore"):  # beyond the format's range it stores inf, as it should
            return float(np.array([value], dtype=self.name)[0])


FLOAT_FORMATS = {
    "float16": FloatFormat("float16", 2.0**-24, 2.0**-14, 2.0**-10, 65504.0),
    "bfloat16": FloatFormat("bfloat16", 2.0**-133, 2.0**-126, 2.0**-7, 3.3895313892515355e38),
    "float32": FloatFormat("float32", 2.0**-149, 2.0**-126, 2.0**-23, 3.4028234663852886e38),
    "float64": FloatFormat("float64", 2.0**-1074, 2.0**-1022, 2.0**-52, 1.7976931348623157e308),
}


@dataclass(frozen=True)
class Policy:
    """A layer's saved dtype policy: its name, the dtype it computes in, the dtype of its
    variables, and its quantization mode (`int8`), if any."""

    name: str
    compute: str
    variable: str
    quantized: str | None = None

    @property
    def computes_in_reduced_precision(self) -> bool:
        return self.compute in REDUCED_FLOATS

    @property
    def stores_in_reduced_precision(self) -> bool:
        return self.variable in REDUCED_FLOATS


# A model has a few policies and many layers: each Policy is built once (it is immutable). A
# bound, as the names come from the files.
@functools.lru_cache(maxsize=256)
def policy_named(name: str, quantized: str | None = None) -> Policy | None:
    """`mixed_float16` -> compute float16, variables float32; `bfloat16` -> both bfloat16."""
    if name.startswith("mixed_"):
        compute = name.removeprefix("mixed_")
        return Policy(name, compute, "float32", quantized) if compute in FLOAT_FORMATS else None
    if name in FLOAT_FORMATS:
        return Policy(name, name, name, quantized)
    return None


def layer_policy(config: dict[str, Any]) -> Policy | None:
    """The policy a layer's config saves under `dtype`; None where it saves none (Keras 2
    layers of a default policy, nandoctor's bare tensors) or one this module does not know."""
    dtype = config.get("dtype")
    if isinstance(dtype, str):
        return policy_named(dtype)
    if not isinstance(dtype, dict):
        return None
    inner = dtype.get("config")
    inner = inner if isinstance(inner, dict) else {}
    class_name = dtype.get("class_name")
    if class_name in ("DTypePolicy", "FloatDTypePolicy", "Policy") and isinstance(inner.get("name"), str):
        return policy_named(inner["name"])
    if class_name and str(class_name).startswith("Quantized") and isinstance(inner.get("source_name"), str):
        return policy_named(inner["source_name"], quantized=str(inner.get("mode") or "quantized"))
    return None


def layer_policies(view: ModelView) -> tuple[tuple[Layer, Policy], ...]:
    """Each layer of the view that saves a policy `layer_policy` knows, with that policy, in the
    view's order: read once per view, for the five rules that look at every layer's."""
    return view.shared(_read_layer_policies)


def _read_layer_policies(view: ModelView) -> tuple[tuple[Layer, Policy], ...]:
    return tuple((layer, policy) for layer in view.layers if (policy := layer_policy(layer.config)) is not None)
