from __future__ import annotations

import math
from collections.abc import Iterator

from nandoctor.analysis.precision import FLOAT_FORMATS, REDUCED_FLOATS
from nandoctor.monitor.detector import Check, Detector
from nandoctor.monitor.stats import NONFINITE, UPDATE_NORM
from nandoctor.report import Finding, Severity
from nandoctor.rules.frozen_low_precision_updates import FrozenLowPrecisionUpdates

# Applied optimizer updates a variable must have gone through without any of its values
# changing. A value whose gradient is not 0 moves at nearly every float32 Adam or SGD step;
# one that stays put for this many, in all of its values, is below its dtype's spacing.
MIN_FROZEN_UPDATES = 20
# A loss this close to 0 has converged: its gradients, and so its updates, may be 0.
CONVERGED_LOSS = 1e-6


class FrozenUpdates(Detector):
    """## What it does
    Reports trainable variables stored in float16 or bfloat16 that none of the optimizer's updates change, while the loss has not converged.

    ## Why is this bad?
    A value moves only when its update is more than half the spacing between the dtype's
    numbers at that value: in bfloat16, 1/256 of it. Adam's steps are about the learning rate,
    and under a `"bfloat16"` policy (not `"mixed_bfloat16"`) Adam computes in bfloat16, where
    `beta_2=0.999` rounds to 1.0 and its step is exactly 0 (keras-team/keras#22559,
    keras-team/keras-hub#2629). The run looks healthy: no NaN, no error, and the loss the same
    epoch after epoch. Measured on Keras 3.15: a `Dense(1, dtype="bfloat16")` under `Adam()`
    changed none of its values in 24 steps. This is the measured counterpart of ND804, which
    reads the same fault from the policies and optimizer in a saved model.

    ## Example
    ```python
    import numpy as np
    import keras
    import nandoctor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1)) + 3).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, dtype="bfloat16")])
    model.compile(keras.optimizers.Adam(), loss="mse")
    monitor = nandoctor.Monitor()
    model.fit(x, y, batch_size=8, epochs=3, callbacks=[monitor])
    ```

    ## Use instead
    ```python
    import numpy as np
    import keras
    import nandoctor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1)) + 3).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, dtype="mixed_bfloat16")])  # float32 weights
    model.compile(keras.optimizers.Adam(), loss="mse")
    monitor = nandoctor.Monitor()
    model.fit(x, y, batch_size=8, epochs=3, callbacks=[monitor])
    ```

    ## Known problems
    The updates are measured between the Monitor's checks (every `every_n_steps`), over whole
    variables: a variable some of whose values still move is not reported, and one frozen for
    fewer than 20 updates is not judged yet. It needs `snapshots` (on by default below 50
    million values).

    ## References
    - Keras mixed precision guide: https://keras.io/guides/mixed_precision/
    - keras-team/keras#22559, keras-team/keras-hub#2629.
    """

    code = "ND808"
    name = "frozen-updates"
    severity = Severity.ERROR
    fix = FrozenLowPrecisionUpdates.fix  # the cure of the static finding it measures
    evidence = "training: the Monitor's update statistics between two checks, and the variables' dtypes."

    def __init__(self, **options):
        super().__init__(**options)
        self.fired = False
        self.frozen_for: dict[str, int] = {}  # variable -> applied updates that left it unchanged
        self.updates_before: int | None = None

    def observe(self, check: Check) -> Iterator[Finding]:
        updates = check.applied_steps if check.applied_steps is not None else check.step
        applied = updates - self.updates_before if self.updates_before is not None else 0
        self.updates_before = updates
        if self.fired or not check.dtypes:
            return
        for index, variable in enumerate(check.variables):
            unchanged = (
                check.dtypes[index] in REDUCED_FLOATS
                and check.stats[index, UPDATE_NORM] == 0
                and check.stats[index, NONFINITE] == 0
            )
            self.frozen_for[variable] = self.frozen_for.get(variable, 0) + applied if unchanged else 0
        frozen = [i for i, name in enumerate(check.variables) if self.frozen_for.get(name, 0) >= MIN_FROZEN_UPDATES]
        converged = check.loss is None or not math.isfinite(check.loss) or abs(check.loss) <= CONVERGED_LOSS
        if not frozen or converged:
            return
        self.fired = True
        names = [check.variables[i] for i in frozen]
        layers = list(dict.fromkeys(check.layers[i] for i in frozen))
        dtypes = sorted({check.dtypes[i] for i in frozen})
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        message = (
            f"at step {check.step}, {len(names)} variable(s) stored in {' and '.join(dtypes)} have not changed in "
            f"{min(self.frozen_for[n] for n in names)} updates while the loss is {check.loss:.4g}: {shown}"
        )
        cause = _cause(check.optimizer, dtypes)
        if cause:
            message += f"; {cause}"
        yield self.finding(
            layers[0],
            message,
            details={
                "step": check.step,
                "variables": names,
                "layers": layers,
                "dtypes": dtypes,
                "frozen_updates": {n: self.frozen_for[n] for n in names},
                "loss": check.loss,
            },
            measured=f"every value of {len(names)} variable(s) unchanged over {MIN_FROZEN_UPDATES}+ applied updates",
        )


def _cause(optimizer: dict, dtypes: list[str]) -> str | None:
    """The optimizer constant the variables' dtype cannot hold, where one is the reason."""
    for dtype_name in dtypes:
        dtype = FLOAT_FORMATS[dtype_name]
        for key in ("beta_1", "beta_2"):
            value = optimizer.get(key)
            if isinstance(value, float) and value < 1 and dtype.rounded(value) >= 1.0:
                return (
                    f"{optimizer.get('class', 'the optimizer')}'s {key}={value:g} is 1.0 in {dtype_name}, so its "
                    "bias correction is 0 and every step is exactly 0"
                )
        rate = optimizer.get("learning_rate")
        if isinstance(rate, float) and rate > 0:
            return (
                f"a step of about learning_rate={rate:g} is below half the {dtype_name} spacing of values above "
                f"{2 * rate / dtype.resolution:.3g}"
            )
    return None
