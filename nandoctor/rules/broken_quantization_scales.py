from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nandoctor.analysis.precision import FLOAT_FORMATS, layer_policies
from nandoctor.diagnosis import Rule
from nandoctor.report import Finding, Severity
from nandoctor.view import Layer, ModelView
from nandoctor.view.array_sources import DequantizedSource

# The largest magnitude of an int8 value: Keras's abs-max quantization maps max |w| to 127.
_INT8_MAX = 127.0


def quantization_scales(layer: Layer) -> Iterator[tuple[str, np.ndarray]]:
    """`(name, scale)` of each scale a quantized layer holds: the scale the .keras loader folded
    into a dequantized matrix, or a `*_scale` variable of a live model."""
    for weight in layer.weights:
        if isinstance(weight.source, DequantizedSource):
            yield f"{weight.name}_scale", weight.source.scale
        elif weight.name.endswith("scale") and weight.dtype in FLOAT_FORMATS and len(weight.shape) <= 1:
            yield weight.name, np.asarray(weight.read(), np.float64).reshape(-1)


class BrokenQuantizationScales(Rule):
    """## What it does
    Finds int8-quantized layers whose scales are zero, non-finite, or so small that the values they stand for overflow the compute dtype.

    ## Why is this bad?
    `model.quantize("int8")` stores each matrix as int8 values `q` and a float scale per output
    (a Dense's `kernel_scale`, an Embedding's `embeddings_scale`), and the layer computes with
    `q / scale`. A scale of 0 makes that division inf or NaN in every call; an infinite scale
    makes the layer output 0 whatever its input; a NaN scale makes it NaN; and a scale below
    127 divided by the compute dtype's largest value stands for weights the dtype cannot hold,
    which overflow to inf. These come from quantizing a model whose weights were already
    broken, or from editing the scales by hand.

    ## Example
    ```python
    import numpy as np
    import keras

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, name="dense")])
    model.quantize("int8")
    scale = model.get_layer("dense").kernel_scale
    scale.assign(np.full(scale.shape, np.inf, "float32"))
    ```

    ## Use instead
    ```python
    import keras

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, name="dense")])
    model.quantize("int8")
    ```

    ## References
    - Keras quantization guide: https://keras.io/guides/int8_quantization_in_keras/
    """

    code = "ND806"
    name = "broken-quantization-scales"
    severity = Severity.ERROR
    fix = 'Quantize again from the float weights (model.quantize("int8") on a model whose weights are finite).'
    evidence = "the weights and the config: each quantized layer's saved policy and its scales."
    reads_weights = True

    def check(self, view: ModelView) -> Iterator[Finding]:
        for layer, policy in layer_policies(view):
            if policy.quantized is None:
                continue
            dtype = FLOAT_FORMATS[policy.compute]
            smallest_safe = _INT8_MAX / dtype.largest
            for name, scale in quantization_scales(layer):
                scale = np.asarray(scale, np.float64)
                magnitude = np.abs(scale)
                counts = {
                    "zero": int((scale == 0).sum()),
                    "nan": int(np.isnan(scale).sum()),
                    "inf": int(np.isinf(scale).sum()),
                    "overflowing": int(((magnitude > 0) & (magnitude < smallest_safe)).sum()),
                }
                if not any(counts.values()):
                    continue
                said = [f"{count:,} {label}" for label, count in counts.items() if count]
                yield self.finding(
                    layer.name,
                    f"{name} of {policy.quantized} {layer.class_name} {layer.name!r} holds {', '.join(said)} of "
                    f"{scale.size:,} scales (an overflowing one is below {smallest_safe:.3g}, where 127 / scale "
                    f"exceeds {dtype.name}'s {dtype.largest:.4g}): the layer outputs inf, NaN or 0 there",
                    details={"scale": name, "size": int(scale.size), "policy": policy.name, **counts},
                )
