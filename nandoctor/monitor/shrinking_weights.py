from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from nandoctor.monitor.detector import Check, Detector
from nandoctor.monitor.stats import MAX_ABS, NONFINITE, NORM
from nandoctor.report import Finding, Severity


class ShrinkingWeights(Detector):
    """## What it does
    Watches each variable's norm and reports one that falls geometrically, fast or for long
    enough to collapse before the run ends, with the rate and a forecast of the steps at
    which it falls below a thousandth of its start and its squares underflow (from then on
    a norm of it is 0 and a normalisation 0/0), before either happens.

    ## Why is this bad?
    A weight matrix that loses a fixed fraction of its norm at every step is heading to
    zero: within a predictable number of steps its values become subnormal, then zero, and
    a normalisation or division downstream returns 0/0 = NaN (field report C: the weights
    of Conv1D and Dense shrank step after step until they were NaN). The trend is plain
    long before the failure: the log of the norm falls along a straight line. It need not
    reach underflow to break the model: weight decay that shrinks every kernel leaves the
    biases and the activations' thresholds in charge, and a ReLU feature vector can become
    exactly zero, and its normalisation NaN, while the kernels are still far from 1e-38.

    ## Example
    ```python
    import numpy as np
    import keras
    import nandoctor

    x = np.random.default_rng(0).normal(size=(600, 8)).astype("float32")
    y = np.zeros_like(x)  # nothing to learn but an L2 pull toward zero
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(
        8, use_bias=False, kernel_regularizer=keras.regularizers.L2(0.25), name="shrinking")])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    monitor = nandoctor.Monitor()
    model.fit(x, y, batch_size=1, epochs=1, callbacks=[monitor])  # 600 steps
    ```

    ## Use instead
    ```python
    import numpy as np
    import keras
    import nandoctor

    x = np.random.default_rng(0).normal(size=(600, 8)).astype("float32")
    y = x @ np.random.default_rng(1).normal(size=(8, 8)).astype("float32")  # a real target
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(
        8, use_bias=False, kernel_regularizer=keras.regularizers.L2(1e-4), name="shrinking")])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    monitor = nandoctor.Monitor()
    model.fit(x, y, batch_size=1, epochs=1, callbacks=[monitor])
    ```

    ## Options
    - `window` (default 8): checks over which the trend is fitted (a steady fall: the
      straight line explains at least 95% of the log-norm's variance).
    - `min_drop` (default 10): a fall this many times over the window is reported whatever
      the run's length.
    - `collapse_ratio` (default 1e-3): a slower steady fall is reported when, continued, it
      takes the norm below this fraction of its norm at the start of the run before the run
      ends (`fit` knows its steps), once the norm has at least halved.

    ## Known problems
    A run whose length `fit` does not know (a dataset of unknown size) is judged by
    `min_drop` only. A fall that levels off later (a large initialisation settling) can be
    reported if it is steady over the whole window and projects to a collapse.
    """

    code = "ND701"
    evidence = "training: the Monitor's per-variable statistics over its window."
    name = "shrinking-weights"
    severity = Severity.WARNING
    fix = (
        "Find what pulls the weights toward zero: a loss term that rewards small norms, too much weight "
        "decay, or gradients of order 1/epsilon from a zero vector under a normalisation."
    )
    options: ClassVar[dict[str, Any]] = {"window": 8, "min_drop": 10.0, "collapse_ratio": 1e-3}

    def __init__(self, **options):
        super().__init__(**options)
        self.history: dict[str, deque] = {}
        self.start: dict[str, float] = {}  # each variable's log-norm when the run started
        self.fired: set[str] = set()

    def observe(self, check: Check) -> Iterator[Finding]:
        window = int(self.settings["window"])
        for index, variable in enumerate(check.variables):
            norm, largest = check.stats[index, NORM], check.stats[index, MAX_ABS]
            history = self.history.setdefault(variable, deque(maxlen=window))
            if check.stats[index, NONFINITE] > 0 or not norm > 0:
                history.clear()
                continue
            history.append((check.step, float(np.log(norm)), float(np.log(largest))))
            self.start.setdefault(variable, float(np.log(norm)))
            if variable in self.fired or len(history) < window:
                continue
            finding = self._trend(check, index, history)
            if finding is not None:
                self.fired.add(variable)
                yield finding

    def _trend(self, check: Check, index: int, history) -> Finding | None:
        steps = np.array([h[0] for h in history], dtype=np.float64)
        log_norms = np.array([h[1] for h in history])
        if np.ptp(steps) == 0:
            return None
        slope, intercept = np.polyfit(steps, log_norms, 1)
        fitted = slope * steps + intercept
        residual = np.sum((log_norms - fitted) ** 2)
        total = np.sum((log_norms - log_norms.mean()) ** 2)
        if slope >= 0 or total == 0 or 1 - residual / total < 0.95:
            return None
        variable = check.variables[index]
        start = self.start[variable]
        collapse_level = start + np.log(float(self.settings["collapse_ratio"]))
        collapse_step = int(check.step + (collapse_level - log_norms[-1]) / slope)
        fast = log_norms[0] - log_norms[-1] >= np.log(float(self.settings["min_drop"]))
        collapsing = (
            check.last_step is not None and collapse_step <= check.last_step and start - log_norms[-1] >= np.log(2.0)
        )
        if not (fast or collapsing):
            return None
        rate = float(np.exp(slope))
        log_largest = history[-1][2]
        # Values below the backend's smallest positive float32 become 0 (about 1e-38 where
        # subnormals are flushed, 1e-45 where kept). Below its square root (1e-19 or 4e-23)
        # their squares do, so a norm computed from them is 0 and a normalisation returns
        # 0/0 = NaN: the earliest break, long before the values go.
        log_smallest = np.log(check.smallest_positive)
        squares_step = int(check.step + (log_smallest / 2 - log_largest) / slope)
        values_step = int(check.step + (log_smallest - log_largest) / slope)
        halving = float(np.log(0.5) / slope)
        before_end = f", before the run ends at step {check.last_step}" if collapsing else ""
        return self.finding_at(
            check.step,
            check.layers[index],
            f"{variable} shrinks geometrically: its norm is multiplied by {rate:.4g} per step (halves every "
            f"{halving:.3g} steps), {np.exp(log_norms[0] - log_norms[-1]):.3g}x smaller over the last "
            f"{int(np.ptp(steps))} steps and {np.exp(start - log_norms[-1]):.3g}x since the run started; at this "
            f"rate it falls below {float(self.settings['collapse_ratio']):.3g} of its start at about step "
            f"{collapse_step}{before_end}, its squares underflow at about step {squares_step} (a norm of them "
            f"is 0, a normalisation 0/0 = NaN) and its values at about step {values_step}",
            variable=variable,
            rate_per_step=rate,
            halving_steps=halving,
            collapse_step=collapse_step,
            forecast_step=squares_step,
            underflow_step=values_step,
            norm=float(np.exp(log_norms[-1])),
        )
