from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from nandoctor.monitor.detector import Check, Detector
from nandoctor.monitor.stats import NONFINITE, NORM, UPDATE_NORM
from nandoctor.report import Finding, Severity


class ExplodingUpdates(Detector):
    """## What it does
    Reports a weight matrix whose update between two checks is larger than it was before
    (the update-to-weight ratio, as SageMaker Debugger's WeightUpdateRatio), or any variable
    whose norm grows by a large factor past the largest it had been.

    ## Why is this bad?
    Healthy training moves a weight matrix by a small fraction of its size per step
    (ratios around 1e-3). An update as large as the weights means the optimiser is jumping,
    not descending: a learning rate too large, gradients of order 1/epsilon, or a loss
    without a lower bound. The next stop is usually overflow and NaN.

    ## Example
    ```python
    import numpy as np
    import keras
    import nandoctor

    x = np.random.default_rng(0).normal(size=(400, 8)).astype("float32")
    y = x @ np.ones((8, 1), "float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1.5), "mse")  # past the stable step size (about 1 here)
    monitor = nandoctor.Monitor()
    model.fit(x, y, batch_size=32, epochs=3, callbacks=[monitor])
    ```

    ## Use instead
    ```python
    import numpy as np
    import keras
    import nandoctor

    x = np.random.default_rng(0).normal(size=(400, 8)).astype("float32")
    y = x @ np.ones((8, 1), "float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    monitor = nandoctor.Monitor()
    model.fit(x, y, batch_size=32, epochs=3, callbacks=[monitor])
    ```

    ## Options
    - `max_update_ratio` (default 2.0): largest |update| / |weights| between two checks, for
      weight matrices that did not start at zero (a weight grown from a zero initialiser
      moves by about its own size at first).
    - `max_growth` (default 10): largest factor by which a norm may exceed the largest it
      had been at any earlier check of the run.
    - `min_rms` (default 1e-3): weights whose root mean square was below this at the last
      check (a bias growing from zero) are not judged, and weights below it at the start of
      the run are judged by their growth only.

    ## Known problems
    The first check of a run is at its first step, judged against the starting weights,
    and the first steps are checked one by one: a learning rate that overflows the weights
    is seen at its first or second update. After that, checks are `every_n_steps` apart
    (every step again for a while when a norm grows fast), so an update ratio is over
    several updates.
    """

    code = "ND703"
    evidence = "training: the Monitor's update statistics between two checks."
    name = "exploding-updates"
    severity = Severity.WARNING
    fix = "Lower the learning rate, clip gradients (clipnorm), or guard the divisions that make huge gradients."
    options: ClassVar[dict[str, Any]] = {"max_update_ratio": 2.0, "max_growth": 10.0, "min_rms": 1e-3}

    def __init__(self, **options):
        super().__init__(**options)
        self.previous: dict[str, float] = {}
        self.peak: dict[str, float] = {}  # the largest norm each variable has had in the run
        self.started_at_zero: set[str] = set()
        self.fired: set[str] = set()
        self._rising = False

    def observe(self, check: Check) -> Iterator[Finding]:
        min_rms = float(self.settings["min_rms"])
        self._rising = False
        for index, variable in enumerate(check.variables):
            norm, update = float(check.stats[index, NORM]), float(check.stats[index, UPDATE_NORM])
            size = check.sizes[index] if check.sizes else 1
            previous, peak = self.previous.get(variable), self.peak.get(variable, 0.0)
            self.previous[variable] = norm
            if np.isfinite(norm):
                self.peak[variable] = max(peak, norm)
            if previous is None:
                # The run's starting weights: the baseline of the first interval.
                if norm / np.sqrt(size) < min_rms:
                    self.started_at_zero.add(variable)
                continue
            if variable in self.fired or check.stats[index, NONFINITE] > 0 or not norm > 0:
                continue
            # A weight that starts at zero (a bias) grows from nothing: relative to what it was,
            # its first updates are huge without anything exploding. Judge established weights.
            if not previous or previous / np.sqrt(size) < min_rms:
                continue
            # Against the largest norm it has had: a weight that explodes grows past its own
            # peak, while a bias wandering around zero comes back near values it had.
            growth = norm / peak
            self._rising = self._rising or growth > np.sqrt(float(self.settings["max_growth"]))
            # Against the weights before the update: a collapsing weight's update is large
            # beside what is left of it, which is ND701's business, not an explosion.
            # The ratio is for weight matrices (as SageMaker's rule): a bias whose optimum is
            # zero is noise around nothing, and its relative updates mean nothing.
            is_matrix = not check.ranks or check.ranks[index] >= 2
            judged = update >= 0 and is_matrix and variable not in self.started_at_zero
            ratio = update / previous if judged else None
            if ratio is not None and ratio > float(self.settings["max_update_ratio"]):
                reason = f"its update since the last check is {ratio:.3g} times its norm before it ({previous:.3g})"
            elif growth > float(self.settings["max_growth"]):
                reason = f"its norm grew to {norm:.3g}, {growth:.3g}x the largest it had been"
            else:
                continue
            self.fired.add(variable)
            yield self.finding_at(
                check.step,
                check.layers[index],
                f"{variable}: {reason}",
                variable=variable,
                update_ratio=ratio,
                growth=growth,
                norm=norm,
            )

    def wants_every_step(self) -> bool:
        return self._rising
