from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import numpy as np

from nandoctor.monitor.detector import Check, Detector
from nandoctor.monitor.stats import MAX_ABS, NONFINITE, NORM
from nandoctor.report import Finding, Severity

# float32's smallest normal number: below it, values lose precision and soon flush to zero.
UNDERFLOW = float(np.finfo(np.float32).tiny)
# Below its square root (about 1e-19) the squares underflow, so any norm computed from them
# is 0 and a normalisation returns 0/0 = NaN: the earliest break, long before the values go.
SQUARES_UNDERFLOW = float(np.sqrt(UNDERFLOW))


class ShrinkingWeights(Detector):
    """## What it does
    Watches each variable's norm and reports one that falls geometrically, with the rate
    and a forecast of the steps at which its squares underflow (from then on a norm of it is
    0 and a normalisation 0/0) and at which its values do, before either happens.

    ## Why is this bad?
    A weight matrix that loses a fixed fraction of its norm at every step is heading to
    zero: within a predictable number of steps its values become subnormal, then zero, and
    a normalisation or division downstream returns 0/0 = NaN (field report C: the weights
    of Conv1D and Dense shrank step after step until they were NaN). The trend is plain
    long before the failure: the log of the norm falls along a straight line.

    ## Example
    ```python
    import numpy as np
    import keras

    x = np.random.default_rng(0).normal(size=(600, 8)).astype("float32")
    y = np.zeros_like(x)  # nothing to learn but an L2 pull toward zero
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(
        8, use_bias=False, kernel_regularizer=keras.regularizers.L2(0.25), name="shrinking")])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    ```

    ## Use instead
    ```python
    import numpy as np
    import keras

    x = np.random.default_rng(0).normal(size=(600, 8)).astype("float32")
    y = x @ np.random.default_rng(1).normal(size=(8, 8)).astype("float32")  # a real target
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(
        8, use_bias=False, kernel_regularizer=keras.regularizers.L2(1e-4), name="shrinking")])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    ```

    ## Options
    - `window` (default 8): checks over which the trend is fitted.
    - `min_drop` (default 10): how many times smaller the norm must have become over the
      window before the trend is reported.
    """

    code = "ND701"
    evidence = (
        "training: the Monitor's per-variable statistics over its window."
    )
    name = "shrinking-weights"
    severity = Severity.WARNING
    fix = (
        "Find what pulls the weights toward zero: a loss term that rewards small norms, too much weight "
        "decay, or gradients of order 1/epsilon from a zero vector under a normalisation."
    )
    options = {"window": 8, "min_drop": 10.0}

    def __init__(self, **options):
        super().__init__(**options)
        self.history: dict[str, deque] = {}
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
            if variable in self.fired or len(history) < window:
                continue
            finding = self._trend(check, index, history)
            if finding is not None:
                self.fired.add(variable)
                yield finding

    def _trend(self, check: Check, index: int, history) -> Finding | None:
        steps = np.array([h[0] for h in history], dtype=np.float64)
        log_norms = np.array([h[1] for h in history])
        if np.ptp(steps) == 0 or log_norms[0] - log_norms[-1] < np.log(float(self.settings["min_drop"])):
            return None
        slope, intercept = np.polyfit(steps, log_norms, 1)
        fitted = slope * steps + intercept
        residual = np.sum((log_norms - fitted) ** 2)
        total = np.sum((log_norms - log_norms.mean()) ** 2)
        if slope >= 0 or total == 0 or 1 - residual / total < 0.95:
            return None
        rate = float(np.exp(slope))
        log_largest = history[-1][2]
        squares_step = int(check.step + (np.log(SQUARES_UNDERFLOW) - log_largest) / slope)
        values_step = int(check.step + (np.log(UNDERFLOW) - log_largest) / slope)
        halving = float(np.log(0.5) / slope)
        variable = check.variables[index]
        return self.finding_at(
            check.step,
            check.layers[index],
            f"{variable} shrinks geometrically: its norm is multiplied by {rate:.4g} per step (halves every "
            f"{halving:.3g} steps), {np.exp(log_norms[0] - log_norms[-1]):.3g}x smaller over the last "
            f"{int(np.ptp(steps))} steps; at this rate its squares underflow at about step {squares_step} "
            f"(a norm of them is 0, a normalisation 0/0 = NaN) and its values at about step {values_step}",
            variable=variable,
            rate_per_step=rate,
            halving_steps=halving,
            forecast_step=squares_step,
            underflow_step=values_step,
            norm=float(np.exp(log_norms[-1])),
        )
