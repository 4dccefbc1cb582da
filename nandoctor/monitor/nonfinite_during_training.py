from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from nandoctor.monitor.detector import Check, Detector
from nandoctor.monitor.stats import NONFINITE
from nandoctor.report import Finding, Severity


class NonfiniteDuringTraining(Detector):
    """## What it does
    Reports the first step at which a weight or the loss is NaN or infinite, with the
    variables that went non-finite first and their layers.

    ## Why is this bad?
    Once one weight is NaN, every output and gradient it touches follows within a step or
    two, and the run is lost. The loss is a late and unreliable witness: a max-margin loss,
    for one, can stay finite, even fall to zero, with NaN weights (field report C). The
    variables that were first non-finite point at where it started; with
    `Monitor(sample=(x, y))`, a replay from the last good weights names the layer.

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
    evidence = (
        "training: the Monitor's check of every variable and the loss."
    )
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
        variables = [check.variables[i] for i in bad]
        layers = list(dict.fromkeys(check.layers[i] for i in bad))
        counts = {check.variables[i]: int(check.stats[i, NONFINITE]) for i in bad}
        if variables:
            shown = ", ".join(f"{name} ({counts[name]:,} values)" for name in variables[:5])
            more = f" and {len(variables) - 5} more" if len(variables) > 5 else ""
            loss_state = "the loss is non-finite too" if loss_bad else f"the loss is still finite ({check.loss:.4g})" if check.loss is not None else ""
            message = f"at step {check.step}, weights went non-finite: {shown}{more}; {loss_state}".rstrip("; ")
        else:
            message = f"at step {check.step}, the loss is {check.loss} while every weight is still finite"
        if check.last_finite_step is not None and check.last_finite_step < check.step:
            message += f" (at step {check.last_finite_step}, every weight and the loss were finite)"
        yield self.finding_at(check.step, layers[0] if layers else None, message, variables=variables,
                              layers=layers, counts=counts, loss=check.loss, last_finite_step=check.last_finite_step)
