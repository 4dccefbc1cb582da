from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from nandoctor.monitor.detector import Check, Detector
from nandoctor.monitor.stats import NONFINITE
from nandoctor.report import Finding, Severity

FLOAT16_LARGEST = 65504.0
# A loss within this factor of float16's largest value before it turned infinite had been
# overflowing on its way (the factor ND805 warns at).
NEAR_OVERFLOW = 16.0
OVERFLOW_FIX = (
    'Float16 overflow: give the layer that overflows dtype="float32" (and keep the output layer and the loss in '
    "float32), or scale its inputs down; train a float16 policy with loss scaling (the LossScaleOptimizer that "
    'compile() adds to a mixed_float16 model; optimizer.scale_loss in a custom loop), or use "mixed_bfloat16", '
    "which has float32's range."
)


class NonfiniteDuringTraining(Detector):
    """## What it does
    Reports the first step at which a weight or the loss is NaN or infinite, with the
    variables that went non-finite first and their layers.

    ## Why is this bad?
    Once one weight is NaN, every output and gradient it touches follows within a step or
    two, and the run is lost. The loss is a late and unreliable witness: a max-margin loss,
    for one, can stay finite, even fall to zero, with NaN weights (field report C). The
    variables that were first non-finite point at where it started; with
    `Monitor(sample=(x, y))`, a replay from the last good weights names the layer, and the
    fix is the cure for what that layer computes (the graph checks read it: a norm, a masked
    mean over an empty mask, a float16 denominator), or float16's where it overflowed. Under a
    float16 compute policy (`mixed_float16`), a float16 layer whose output passes 65504, or an
    infinite loss after one near it, is reported as float16 overflow, with its cure: that layer
    in float32, loss scaling, or `mixed_bfloat16`.

    ## Example
    ```python
    import numpy as np
    import keras
    import nandoctor

    x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    y = np.zeros((64, 1), "float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="relu", kernel_initializer="zeros")])
    model.compile("sgd", loss=lambda y_true, y_pred: -keras.ops.mean(keras.ops.log(y_pred)))  # log(0)
    monitor = nandoctor.Monitor()
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[monitor])
    ```

    ## Use instead
    ```python
    import numpy as np
    import keras
    import nandoctor

    x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    y = np.zeros((64, 1), "float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile("sgd", loss=keras.losses.BinaryCrossentropy(from_logits=True))
    monitor = nandoctor.Monitor()
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[monitor])
    ```
    """

    code = "ND702"
    evidence = "training: the Monitor's check of every variable and the loss."
    reports_nonfinite = True
    name = "nonfinite-during-training"
    severity = Severity.ERROR
    fix = (
        "Find the layer that made the first non-finite value (an unguarded division or square root, a log "
        "of zero, a learning rate too large); nandoctor.layers.SafeCosineSimilarity guards a cosine."
    )

    def __init__(self, **options):
        super().__init__(**options)
        self.fired = False

    def observe(self, check: Check) -> Iterator[Finding]:
        if self.fired:
            return
        bad = np.flatnonzero(check.stats[:, NONFINITE] > 0)
        loss_bad = check.loss is not None and not math.isfinite(check.loss)
        if not len(bad) and not loss_bad:
            return
        self.fired = True
        replay = check.replay
        if replay is not None and (replay.get("nonfinite_inputs") or replay.get("nonfinite_targets")):
            return  # the data is non-finite: ND809 names it, no layer is the culprit
        variables = [check.variables[i] for i in bad]
        layers = list(dict.fromkeys(check.layers[i] for i in bad))
        counts = {check.variables[i]: int(check.stats[i, NONFINITE]) for i in bad}
        if variables:
            shown = ", ".join(f"{name} ({counts[name]:,} values)" for name in variables[:5])
            more = f" and {len(variables) - 5} more" if len(variables) > 5 else ""
            loss_state = (
                "the loss is non-finite too"
                if loss_bad
                else f"the loss is still finite ({check.loss:.4g})"
                if check.loss is not None
                else ""
            )
            message = f"at step {check.step}, weights went non-finite: {shown}{more}; {loss_state}".rstrip("; ")
        else:
            message = f"at step {check.step}, the loss is {check.loss} while every weight is still finite"
        if check.last_finite_step is not None and check.last_finite_step < check.step:
            message += f" (at step {check.last_finite_step}, every weight and the loss were finite)"
        layer = layers[0] if layers else None
        details = {
            "step": check.step,
            "variables": variables,
            "layers": layers,
            "counts": counts,
            "loss": check.loss,
            "last_finite_step": check.last_finite_step,
        }
        if replay is not None:
            layer = replay.get("forward_culprit") or replay.get("backward_culprit") or layer
            message += f". Replaying the sample from step {check.replayed_from}: {check.replay_text}"
            details["localization"] = replay
        overflow = _float16_overflow(check)
        if overflow is None:
            # The replay's culprit, read by the graph checks, says what divided: its own cure.
            yield self.finding(layer, message, details=details, fix=(replay or {}).get("culprit_fix"))
        elif overflow.certain:
            yield self.finding(
                layer,
                f"float16 overflow: {message}" + (f"; {overflow.why}" if overflow.why else ""),
                fix=OVERFLOW_FIX,
                details=details,
                measured=f"the loss and weights at step {check.step} under a float16 compute policy",
            )
        else:  # a log of 0 is infinite too: the cause is not known, nor is the cure
            yield self.finding(layer, f"{message}; {overflow.why}", details=details)


@dataclass(frozen=True)
class Float16Overflow:
    """Why the first non-finite value is, or may be, a float16 overflow (None: the replay said
    it already), and whether that is certain."""

    why: str | None
    certain: bool


def _float16_overflow(check: Check) -> Float16Overflow | None:
    """Certain where the replay saw a float16 layer's output pass 65504, or the loss came within
    16x of it before it turned infinite; only possible where the loss is infinite under a
    float16 compute policy with neither (a log of 0 is infinite too)."""
    replay = check.replay or {}
    if replay.get("culprit_overflows") and replay.get("culprit_compute_dtype") == "float16":
        return Float16Overflow(None, True)
    if replay.get("forward_culprit") or replay.get("backward_culprit"):
        return None  # the replay found another cause
    if "float16" not in check.compute_dtypes or check.loss is None or not math.isinf(check.loss):
        return None
    largest = check.largest_finite_loss
    if largest is not None and largest >= FLOAT16_LARGEST / NEAR_OVERFLOW:
        return Float16Overflow(
            f"the model computes in float16 and the loss had reached {largest:.4g} before it, "
            f"within {NEAR_OVERFLOW:g}x of float16's largest value ({FLOAT16_LARGEST:g})",
            True,
        )
    return Float16Overflow(
        f"the model computes in float16, whose largest value is {FLOAT16_LARGEST:g}: an overflow "
        "there is infinite too (Monitor(sample=(x, y)) tells which layer made it)",
        False,
    )
