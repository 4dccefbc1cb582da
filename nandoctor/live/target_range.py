"""The targets the user trains on, against the range the output activation can reach.

The file holds the output activation and the loss, never the targets: a sigmoid under mean
squared error is right for pixel intensities and wrong for distances, and ND601 says `info`
from the file alone. Given a batch of the real data (`check(model, sample=(x, y))`), this
check measures it: regression targets outside what the activation can output are errors the
model can never reduce.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nandoctor.analysis.output_activations import ACTIVATION_RANGES, RANGE_BOUNDS, loss_reading, output_activation
from nandoctor.live.live_check import LiveCheck
from nandoctor.report import Evidence, Finding, Severity
from nandoctor.rules.loss_activation_mismatch import LossActivationMismatch

# The losses that compare targets to outputs value by value (regression readings).
_VALUE_BY_VALUE = ("real values", "non-negative values")


class TargetRange(LiveCheck):
    """## What it does
    Compares the targets of the sample given to `check(model, sample=(x, y))` with the range
    of each output's activation, under a regression loss.

    ## Why is this bad?
    A sigmoid cannot exceed 1 nor a relu go below 0: a distance of 12 predicted through a
    sigmoid leaves an error of at least 11 that no weight can reduce, and the gradient through
    the saturated sigmoid vanishes while it tries.
    """

    name = "target-range"
    raises = (LossActivationMismatch,)
    needs_sample = True

    def run(self, model, view) -> Iterator[Finding]:
        if view.compile is None:
            return
        targets = _targets_by_output(self.sample, view.outputs)
        for output, values in targets.items():
            loss = view.compile.losses.get(output)
            resolved = output_activation(view, output)
            if loss is None or loss.custom or resolved is None or values is None:
                continue
            activation, layer = resolved
            reach = RANGE_BOUNDS.get(ACTIVATION_RANGES.get(activation, ""))
            if reach is None or loss_reading(loss.name, loss.from_logits) not in _VALUE_BY_VALUE:
                continue
            low, high = reach
            outside = (values < low) | (values > high)
            if not outside.any():
                continue
            share = float(outside.mean())
            span = f"[{values.min():.4g}, {values.max():.4g}]"
            yield LossActivationMismatch.finding(
                layer.name,
                f"the sample's targets for output '{output}' span {span}: {share:.0%} of them lie outside "
                f"[{low:g}, {high:g}], which activation '{activation}' cannot output, so {loss.name} can never "
                "bring those errors near zero",
                severity=Severity.ERROR,
                evidence=Evidence.MEASURED,
                measured=f"targets of the given sample: {share:.0%} outside the output's range {span}",
                fix="Make the output layer linear (activation=None) for targets outside the activation's range, "
                "or scale the targets into it.",
                details={
                    "activation": activation,
                    "loss": loss.name,
                    "target_span": [float(values.min()), float(values.max())],
                    "outside_share": share,
                },
            )


def _targets_by_output(sample, outputs: list[str]) -> dict[str, np.ndarray | None]:
    """The sample's targets for each output: one array for one output, a dict by output name,
    or a list in the outputs' order."""
    if not isinstance(sample, (tuple, list)) or len(sample) < 2:
        return {}
    y = sample[1]
    if isinstance(y, dict):
        return {name: _as_array(y.get(name)) for name in outputs}
    if isinstance(y, (list, tuple)):
        return {name: _as_array(values) for name, values in zip(outputs, y)}
    return {outputs[0]: _as_array(y)} if len(outputs) == 1 else {}


def _as_array(values) -> np.ndarray | None:
    if values is None:
        return None
    array = np.asarray(values)
    return array.astype(np.float64) if array.dtype.kind in "fiu" and array.size else None
