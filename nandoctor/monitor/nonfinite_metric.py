from __future__ import annotations

import math
from collections.abc import Iterator

from nandoctor.monitor.detector import Check, Detector
from nandoctor.monitor.stats import NONFINITE
from nandoctor.report import Finding, Severity


class NonfiniteMetric(Detector):
    """## What it does
    Reports a metric that goes NaN or infinite while the loss and every weight stay finite: the metric's own computation, not the training, broke.

    ## Why is this bad?
    A NaN in the progress bar reads as a diverging run, and users stop training that is fine
    (keras-team/keras#21467). A metric is computed beside the loss and feeds no gradient, so a
    metric that divides by a count that can be 0 (a recall written by hand, on a batch without
    positives) turns NaN while the model trains on; Keras's logs hold each metric's mean over
    the epoch, so one such batch leaves it NaN for the rest of the epoch. The finding names the
    metric and the step, and says the loss and the weights are finite; it is not ND702.

    ## Example
    ```python
    import numpy as np
    import keras
    import nandoctor
    from keras import ops

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = (x[:, :1] > 1.0).astype("float32")  # few positives: some batches have none


    def recall(y_true, y_pred):
        return ops.sum(y_true * ops.round(y_pred)) / ops.sum(y_true)  # 0 / 0 without positives


    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", loss="binary_crossentropy", metrics=[recall])
    monitor = nandoctor.Monitor()
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[monitor])
    ```

    ## Use instead
    ```python
    import numpy as np
    import keras
    import nandoctor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = (x[:, :1] > 1.0).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", loss="binary_crossentropy", metrics=[keras.metrics.Recall()])  # counts over the epoch
    monitor = nandoctor.Monitor()
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[monitor])
    ```

    ## Known problems
    The metrics are those of `fit`'s training logs, read at every step; validation metrics
    are not watched.
    """

    code = "ND810"
    name = "nonfinite-metric"
    severity = Severity.WARNING
    fix = (
        "Guard the metric's division (ops.divide_no_nan, or a denominator of at least epsilon), or use Keras's stateful "
        "metric that counts over the epoch (keras.metrics.Recall, Precision, ...); the training itself is unaffected."
    )
    evidence = "training: the metrics, the loss and the weights at the step the metric turned non-finite."

    def __init__(self, **options):
        super().__init__(**options)
        self.fired = False

    def observe(self, check: Check) -> Iterator[Finding]:
        broken = {name: value for name, value in check.metrics.items() if not math.isfinite(value)}
        if self.fired or not broken:
            return
        self.fired = True
        if (check.loss is not None and not math.isfinite(check.loss)) or (check.stats[:, NONFINITE] > 0).any():
            return  # the training broke: ND702's business, the metric only follows it
        shown = ", ".join(f"'{name}' is {value}" for name, value in broken.items())
        loss = f"the loss ({check.loss:.4g})" if check.loss is not None else "the loss"
        yield self.finding(
            None,
            f"at step {check.step}, metric {shown} while {loss} and every weight are finite: the metric's own "
            "computation is non-finite, not the training",
            details={"step": check.step, "metrics": list(broken), "loss": check.loss},
            measured=f"the logs and the weights at step {check.step}",
        )
