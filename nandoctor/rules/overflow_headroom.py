from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from nandoctor.analysis.keras_facts import FLOAT32_NORMALIZATIONS
from nandoctor.analysis.precision import FLOAT_FORMATS, layer_policies
from nandoctor.diagnosis import Rule
from nandoctor.report import Evidence, Finding, Severity
from nandoctor.view import ModelView

_FLOAT_DTYPES = frozenset(FLOAT_FORMATS)


class OverflowHeadroom(Rule):
    """## What it does
    Finds weights of a float16 layer, or its activations measured by `check()`, that exceed or come within a small factor of float16's largest value.

    ## Why is this bad?
    A layer under `mixed_float16` keeps its variables in float32 and casts them to float16 each
    time it computes. float16's largest finite value is 65504: a weight above it is `inf` in
    every call, and the first product with it is inf or NaN; a weight within a factor of 16 of
    it overflows as soon as it meets an input above 16, which activations reach easily. Such
    weights come from a model trained in float32 (a large embedding scale, an unnormalised
    output layer) and then switched to float16 for speed. Keras's normalisations read their
    variables in float32 and are not judged.

    On a live model, `check()` also measures each float16 or bfloat16 layer's outputs on typical
    inputs (Hugging Face's `DebugUnderflowOverflow` table: the largest magnitude against the
    dtype's largest value, and the share of values flushed to zero) and names the first layer
    that comes within the factor, or overflows where float32 holds its values; the table is in
    the finding's `details["headroom"]`. A NaN the NaN probe meets that the same inputs do not
    give in float32 is said here too, at its layer, rather than as a division.

    ## Example
    ```python
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, dtype="mixed_float16", name="dense")])
    kernel, bias = model.get_layer("dense").get_weights()
    kernel[0, 0] = 1e5
    model.get_layer("dense").set_weights([kernel, bias])
    ```

    ## Use instead
    ```python
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, dtype="float32", name="dense")])
    kernel, bias = model.get_layer("dense").get_weights()
    kernel[0, 0] = 1e5
    model.get_layer("dense").set_weights([kernel, bias])
    ```

    ## Options
    - `factor` (default `16.0`): a weight above the compute dtype's largest value divided by
      this is reported as a `warning`; above the largest value itself, an `error`.
    """

    code = "ND805"
    name = "overflow-headroom"
    severity = Severity.ERROR
    fix = (
        'Keep this layer in float32 with dtype="float32", or rescale its weights (fold the scale into the '
        "next layer) so that they fit float16's 65504 with room to spare."
    )
    evidence = (
        "the weights and the config: each layer's saved dtype policy and its weights' largest magnitude (certain); "
        "on a live model, `check()` measures each layer's activations on typical inputs in its own policy "
        "(measured), and the NaN probe names the layer where a probe's NaN comes from float16's range."
    )
    evidence_kinds = (Evidence.CERTAIN, Evidence.MEASURED)
    options: ClassVar[dict[str, Any]] = {"factor": 16.0}
    needs_weights = True

    def check(self, view: ModelView) -> Iterator[Finding]:
        factor = float(self.settings["factor"])
        for layer, policy in layer_policies(view):
            if policy.quantized or layer.class_name in FLOAT32_NORMALIZATIONS:
                continue
            dtype = FLOAT_FORMATS[policy.compute]
            if dtype.largest >= FLOAT_FORMATS["float32"].largest / factor:
                continue  # bfloat16's range is float32's
            for weight in layer.weights:
                if weight.dtype not in _FLOAT_DTYPES:
                    continue
                stats = weight.stats()
                if stats.nonfinite or stats.max_abs <= dtype.largest / factor:
                    continue
                over = stats.max_abs > dtype.largest
                yield self.finding(
                    layer.name,
                    f"{weight.name} {tuple(weight.shape)} reaches |w| = {stats.max_abs:.4g} and the layer computes in "
                    f"{dtype.name} (policy {policy.name!r}), whose largest value is {dtype.largest:g}: "
                    + (
                        "it is inf in every call"
                        if over
                        else f"it overflows once an input exceeds {dtype.largest / stats.max_abs:.3g}"
                    ),
                    severity=Severity.ERROR if over else Severity.WARNING,
                    details={
                        "weight": weight.name,
                        "max_abs": stats.max_abs,
                        "largest": dtype.largest,
                        "policy": policy.name,
                        "factor": factor,
                    },
                )
