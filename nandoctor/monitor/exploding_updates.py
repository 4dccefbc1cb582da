from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nandoctor.monitor.detector import Check, Detector
from nandoctor.monitor.stats import NONFINITE, NORM, UPDATE_NORM
from nandoctor.report import Finding, Severity


class ExplodingUpdates(Detector):
    """## What it does
    Reports a weight matrix whose update between two checks is larger than it was before
    (the update-to-weight ratio, as SageMaker Debugger's WeightUpdateRatio), or any variable
    whose norm grows by a large factor between checks.

    ## Why is this bad?
    Healthy training moves a weight matrix by a small fraction of its size per step
    (ratios around 1e-3). An update as large as the weights means the optimiser is jumping,
    not descending: a learning rate too large, gradients of order 1/epsilon, or a loss
    without a lower bound. The next stop is usually overflow and NaN.

    ## Example
    ```python
    import numpy as np
    import keras

    x = np.random.default_rng(0).normal(size=(400, 8)).astype("float32")
    y = x @ np.ones((8, 1), "float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.3), "mse")  # just past the stable step size (about 0.25)
    ```

    ## Use instead
    ```python
    import numpy as np
    import keras

    x = np.random.default_rng(0).normal(size=(400, 8)).astype("float32")
    y = x @ np.ones((8, 1), "float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    ```

    ## Options
    - `max_update_ratio` (default 2.0): largest |update| / |weights| between checks (a
      weight growing steadily from a zero initialiser reaches about 1).
    - `max_growth` (default 10): largest factor by which a norm may grow between checks.
    - `min_rms` (default 1e-3): weights whose root mean square was below this at the last
      check (a bias growing from zero) are not judged.
    """

    code = "ND703"
    evidence = (
        "training: the Monitor's update statistics between two checks."
    )
    name = "exploding-updates"
    severity = Severity.WARNING
    fix = "Lower the learning rate, clip gradients (clipnorm), or guard the divisions that make huge gradients."
    options = {"max_update_ratio": 2.0, "max_growth": 10.0, "min_rms": 1e-3}

    def __init__(self, **options):
        super().__init__(**options)
        self.previous: dict[str, float] = {}
        self.fired: set[str] = set()

    def observe(self, check: Check) -> Iterator[Finding]:
        for index, variable in enumerate(check.variables):
            norm, update = float(check.stats[index, NORM]), float(check.stats[index, UPDATE_NORM])
            previous = self.previous.get(variable)
            self.previous[variable] = norm
            if variable in self.fired or check.stats[index, NONFINITE] > 0 or not norm > 0:
                continue
            # A weight that starts at zero (a bias) grows from nothing: relative to what it was,
            # its first updates are huge without anything exploding. Judge established weights.
            size = check.sizes[index] if check.sizes else 1
            if not previous or previous / np.sqrt(size) < float(self.settings["min_rms"]):
                continue
            # Against the weights before the update: a collapsing weight's update is large
            # beside what is left of it, which is ND701's business, not an explosion.
            # The ratio is for weight matrices (as SageMaker's rule): a bias whose optimum is
            # zero is noise around nothing, and its relative updates mean nothing.
            is_matrix = not check.ranks or check.ranks[index] >= 2
            ratio = update / previous if update >= 0 and previous and is_matrix else None
            growth = norm / previous if previous else None
            if ratio is not None and ratio > float(self.settings["max_update_ratio"]):
                reason = f"its update since the last check is {ratio:.3g} times its norm before it ({previous:.3g})"
            elif growth is not None and growth > float(self.settings["max_growth"]):
                reason = f"its norm grew {growth:.3g}x since the last check, to {norm:.3g}"
            else:
                continue
            self.fired.add(variable)
            yield self.finding_at(check.step, check.layers[index], f"{variable}: {reason}",
                                  variable=variable, update_ratio=ratio, growth=growth, norm=norm)
