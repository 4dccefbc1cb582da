from __future__ import annotations

from collections.abc import Iterator

from nandoctor.monitor.detector import Check, Detector
from nandoctor.report import Finding, Severity

# The steps over which "most steps skipped" is judged. A healthy float16 run skips a few
# steps at its start, while the scale falls from 32768 to what its gradients allow (each skip
# halves it), then about one in `dynamic_growth_steps` (2000): more than half of 20 steps
# skipped is a scale below 32 and still falling.
WINDOW = 20
# Below 1 the loss is scaled down: the gradients overflow float16 without any scaling.
COLLAPSED_SCALE = 1.0


class LossScaleCollapse(Detector):
    """## What it does
    Reports a run under a `LossScaleOptimizer` (a `mixed_float16` model) that skips most of its
    steps, or whose loss scale falls below 1, with the step and the scale's fall.

    ## Why is this bad?
    Keras's `LossScaleOptimizer` multiplies the loss by a scale (32768 at first) so that small
    float16 gradients do not underflow; when a gradient is not finite it skips the step and
    halves the scale. A few skips at the start are how it finds its scale. A run that skips
    step after step has gradients that overflow float16 (65504) at any scale: the weights do not
    move, the loss does not fall, and no NaN ever shows, so nothing else says so. Measured on
    Keras 3.15: a `Dense(16)` computing in float16 on inputs of magnitude 300 skipped its first 15
    steps, the scale fell from 32768 to 0.25, and it then applied its updates unscaled.

    ## Example
    ```python
    import numpy as np
    import keras
    import nandoctor

    rng = np.random.default_rng(0)
    x = (300 * rng.normal(size=(96, 8))).astype("float32")  # features left unnormalised
    y = rng.normal(size=(96, 1)).astype("float32")
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, dtype="float32")])
    keras.mixed_precision.set_global_policy("float32")
    model.compile(keras.optimizers.Adam(), "mse")  # compile adds the LossScaleOptimizer
    monitor = nandoctor.Monitor()
    model.fit(x, y, batch_size=4, epochs=1, callbacks=[monitor])
    ```

    ## Use instead
    ```python
    import numpy as np
    import keras
    import nandoctor

    rng = np.random.default_rng(0)
    x = (300 * rng.normal(size=(96, 8))).astype("float32")
    y = rng.normal(size=(96, 1)).astype("float32")
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu", dtype="float32"),
                              keras.layers.Dense(1, dtype="float32")])  # the layer that overflowed, in float32
    keras.mixed_precision.set_global_policy("float32")
    model.compile(keras.optimizers.Adam(), "mse")
    monitor = nandoctor.Monitor()
    model.fit(x, y, batch_size=4, epochs=1, callbacks=[monitor])
    ```

    ## Known problems
    The skips are counted from the optimizer's `iterations` against the batches run, once per
    step; the scale is read at each skip and each check.

    ## References
    - Keras mixed precision guide: https://keras.io/guides/mixed_precision/
    - `keras.optimizers.LossScaleOptimizer`.
    """

    code = "ND807"
    name = "loss-scale-collapse"
    severity = Severity.ERROR
    fix = (
        'Float16 overflow: give the layers whose activations or gradients pass 65504 dtype="float32" (the output '
        'layer and the loss too), or normalise their inputs; or train under "mixed_bfloat16", which has float32\'s '
        "range."
    )
    evidence = "training: the LossScaleOptimizer's loss scale and its applied steps against the batches run."

    def __init__(self, **options):
        super().__init__(**options)
        self.fired = False

    def observe(self, check: Check) -> Iterator[Finding]:
        if self.fired or check.loss_scale is None:
            return
        steps_run = check.step - check.first_step
        window = min(WINDOW, steps_run)
        recent = sum(1 for step in check.skipped_steps if step > check.step - window)
        collapsed = check.loss_scale < COLLAPSED_SCALE
        if not (collapsed or recent > WINDOW // 2):
            return
        self.fired = True
        initial = check.initial_loss_scale
        fall = f"from {initial:g} to {check.loss_scale:g}" if initial is not None else f"to {check.loss_scale:g}"
        message = (
            f"float16 overflow: at step {check.step}, {recent} of the last {window} steps were skipped (their gradients "
            f"were not finite in float16) and the loss scale fell {fall}"
        )
        if collapsed:
            message += ", below 1: the gradients overflow float16 even unscaled"
        message += f"; {check.skipped_count} of the run's {steps_run} steps skipped in all"
        yield self.finding(
            None,
            message,
            details={
                "step": check.step,
                "loss_scale": check.loss_scale,
                "initial_loss_scale": initial,
                "skipped": check.skipped_count,
                "recent_skipped": recent,
                "window": window,
                "first_skipped": check.skipped_steps[0] if check.skipped_steps else None,
            },
            measured=f"the loss scale {check.loss_scale:g}; {check.skipped_count} of {steps_run} steps skipped",
        )
