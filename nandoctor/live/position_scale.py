"""Settles, on the live layer, what a position table inside custom code adds (ND504).

The scan sees a custom layer holding a table shaped like the positions and infers that the
table is added, unscaled, to the tokens: its call is code the scan cannot read (it may scale
the tokens by sqrt(d), or the table). The live layer is run on a batch of token vectors (or
ids, where it embeds them itself): the mean output at each position over the batch is what
the positions add, the rest is what the tokens carry. Their scales are compared with the
rule's own factor, and the finding is withdrawn or made a measurement.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nandoctor.live.live_check import LiveCheck
from nandoctor.live.model_inputs import to_host
from nandoctor.live.model_layers import every_layer, layer_named
from nandoctor.report import Evidence, Finding
from nandoctor.rules.positional_scale_mismatch import PositionalScaleMismatch

# Enough sequences that the mean over them is the positions' part, not the tokens'.
_BATCH = 64


class PositionScale(LiveCheck):
    """## What it does
    Runs a custom layer that holds a position table on a batch of tokens and measures the
    scale of what the positions add against what the tokens carry.

    ## Why is this bad?
    A position table far larger than the tokens drowns them (field report A: the model
    learns positions, not words); far smaller, it is lost. Only the layer's own call says
    whether it scales either one.
    """

    name = "position-scale"
    raises = (PositionalScaleMismatch,)
    settles = (PositionalScaleMismatch.code,)

    def run(self, model, view) -> Iterator[Finding]:
        return iter(())

    def settle(self, finding: Finding, model) -> Finding | None:
        if finding.details.get("evidence") != Evidence.INFERRED.value or finding.layer is None:
            return finding
        layer = layer_named(model, finding.layer.rsplit("/", 1)[-1])
        if layer is None:
            return finding
        ratio = _measured_ratio(layer, model, finding)
        if ratio is None:
            return finding
        factor = finding.details["factor"]
        if 1 / factor <= ratio <= factor:
            return None  # what its call adds is at the tokens' scale
        effect = "the positions drown the tokens" if ratio > 1 else "the positions vanish beside the tokens"
        return PositionalScaleMismatch.reconsidered(
            finding,
            evidence=Evidence.MEASURED,
            severity=PositionalScaleMismatch.severity,
            message=(
                f"what '{layer.name}' adds at each position has {ratio:.3g}x the norm of what the tokens carry "
                f"through it (measured on the live layer): {effect}"
            ),
            details={
                **finding.details,
                "measured_ratio": ratio,
                "measured": f"on {_BATCH} sequences, the positions' part of the output over the tokens' part",
            },
        )


def _measured_ratio(layer, model, finding: Finding) -> float | None:
    """Median norm of the positions' part of the layer's output over the tokens' part."""
    import keras

    shape = getattr(layer, "input", None)
    shape = tuple(shape.shape) if shape is not None and hasattr(shape, "shape") else None
    rng = np.random.default_rng(0)
    if shape is not None and len(shape) == 3 and None not in shape[1:]:
        tokens = _token_vectors(model, finding, rng, (_BATCH, shape[1]), shape[2])
        if tokens is None:
            return None
        inputs = keras.ops.convert_to_tensor(tokens.astype("float32"))
    elif shape is not None and len(shape) == 2 and shape[1] is not None:
        vocabulary = max((getattr(sub, "input_dim", 0) for sub in every_layer(layer)), default=0)
        if vocabulary < 2:
            return None
        inputs = rng.integers(1, vocabulary, size=(_BATCH, shape[1])).astype("int32")
    else:
        return None
    output = to_host(layer(inputs), np.float64)
    if output.ndim != 3:
        return None
    positions = output.mean(axis=0, keepdims=True)
    tokens_part = np.linalg.norm(output - positions, axis=-1)
    positions_part = np.linalg.norm(positions[0], axis=-1)
    scale = float(np.median(tokens_part))
    return float(np.median(positions_part)) / scale if scale > 0 else None


def _token_vectors(model, finding: Finding, rng, shape: tuple, width: int) -> np.ndarray | None:
    """Rows of the token table the layer's input comes from, drawn at random."""
    import keras

    table = layer_named(model, str(finding.details.get("tokens", "")).rsplit("/", 1)[-1])
    weights = getattr(table, "embeddings", None)
    if weights is None:
        return None
    matrix = keras.ops.convert_to_numpy(weights)
    if matrix.ndim != 2 or matrix.shape[1] != width:
        return None
    return matrix[rng.integers(1, matrix.shape[0], size=shape)]
