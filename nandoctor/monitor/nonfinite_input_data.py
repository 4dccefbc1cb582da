from __future__ import annotations

import math
from collections.abc import Iterator

from nandoctor.monitor.detector import Check, Detector
from nandoctor.report import Finding, Severity


class NonfiniteInputData(Detector):
    """## What it does
    Reports, at the first non-finite loss or weight, the inputs and targets of `Monitor(sample=...)` that hold NaN or infinity, by name and row.

    ## Why is this bad?
    A NaN in a few rows of the data turns the loss, then every weight it reaches, into NaN, and
    the first layer that reads it looks like the culprit: its output is the first non-finite
    one. No layer is at fault, and no change to the model cures it. On the CPU, TensorFlow's
    fused Dense + ReLU can even turn the NaN into 0, so the loss stays finite while the weights
    go NaN. When the Monitor replays its `sample` at the first non-finite value, it checks the
    sample's inputs and targets first, and names them and their rows instead of a layer (ND702
    then stays silent: the data is the cause).

    ## Example
    ```python
    import numpy as np
    import keras
    import nandoctor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    x[[40, 41], 3] = np.nan  # a few bad rows in the data
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile("sgd", loss="mse")
    monitor = nandoctor.Monitor(sample=(x, y))
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[monitor])
    ```

    ## Use instead
    ```python
    import numpy as np
    import keras
    import nandoctor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    x[[40, 41], 3] = np.nan
    finite = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
    x, y = x[finite], y[finite]  # the bad rows dropped (or imputed) before training
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile("sgd", loss="mse")
    monitor = nandoctor.Monitor(sample=(x, y))
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[monitor])
    ```

    ## Known problems
    Keras does not hand a callback the batch it trained on: only the `sample` is checked, so
    it names the bad rows when the sample holds them (pass the training arrays themselves when
    they fit in memory). A sample whose data is finite is replayed through the layers as
    before (ND702).
    """

    code = "ND809"
    name = "nonfinite-input-data"
    severity = Severity.ERROR
    reports_nonfinite = True
    fix = (
        "Clean the data: drop or impute the rows with NaN or infinity (np.isfinite(x).all(axis=1)) before training, "
        "and check the pipeline that produced them (a division by a zero count, a log of 0, a missing value read as NaN)."
    )
    evidence = "training: the Monitor's sample, checked at the first non-finite loss or weight."

    def __init__(self, **options):
        super().__init__(**options)
        self.fired = False

    def observe(self, check: Check) -> Iterator[Finding]:
        replay = check.replay or {}
        inputs, targets = replay.get("nonfinite_inputs", {}), replay.get("nonfinite_targets", [])
        if self.fired or not (inputs or targets):
            return
        self.fired = True
        broke = "the loss" if check.loss is not None and not math.isfinite(check.loss) else "the weights"
        message = (
            f"at step {check.step}, {broke} went non-finite, and the data holds NaN or infinity: {check.replay_text}"
        )
        yield self.finding(
            None,
            message,
            details={
                "step": check.step,
                "inputs": inputs,
                "targets": targets,
                "rows": replay.get("rows"),
                "loss": check.loss,
            },
            measured=f"the sample's values, at step {check.step}",
        )
