from __future__ import annotations

import math
from collections.abc import Iterator

from nandoctor.analysis.keras_facts import ADAM_FAMILY, LOSS_SCALE_OPTIMIZERS
from nandoctor.analysis.precision import FLOAT_FORMATS, layer_policies
from nandoctor.diagnosis import Rule
from nandoctor.report import Finding, Severity
from nandoctor.rules.missing_loss_scaling import optimizer_class
from nandoctor.view import ModelView

# Keras 3.15's Adam defaults, used where the saved config leaves one out.
_ADAM_DEFAULTS = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}


class FrozenLowPrecisionUpdates(Rule):
    """## What it does
    Finds trainable variables stored in float16 or bfloat16 under an Adam-family optimizer whose constants or steps that dtype cannot hold.

    ## Why is this bad?
    A `"bfloat16"` or `"float16"` policy (not `"mixed_..."`) stores the variables, and the
    optimizer's moments, in that dtype, and Adam computes its step there. In bfloat16,
    `beta_2=0.999` rounds to 1.0, so Adam's bias correction `sqrt(1 - beta_2**t)` is 0 and every
    step is exactly 0 (keras-team/keras#22559, keras-team/keras-hub#2629). Measured on Keras
    3.15: a `Dense(1, dtype="bfloat16")` under `Adam()` for 24 steps changed 0 of its 8 kernel
    values and the loss was 9.5468 in each of 3 epochs, against 8 of 8 changed and a falling
    loss under `mixed_bfloat16`. In float16, `epsilon=1e-8` is 0, so a value whose gradient is 0
    divides 0 by 0: measured, a float16 Dense with one all-zero input column had NaN in all 8
    kernel values after the first epoch (`epsilon=1e-7`, which float16 keeps, gave none). Even
    with constants it can hold, Adam moves each value by about the learning rate, and a value
    moves only if that exceeds half its spacing: in bfloat16 at `learning_rate=1e-3` no value
    above 0.5 in magnitude can change (measured with `beta_2=0.99`: the 5 of 8 kernel values below
    0.5 moved, the 3 above did not). Such a step is reported when a value of 1 (a normalisation's
    scale) cannot move.

    ## Example
    ```python
    import keras

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, dtype="bfloat16", name="dense")])
    model.compile(keras.optimizers.Adam(), loss="mse")
    ```

    ## Use instead
    ```python
    import keras

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, dtype="mixed_bfloat16", name="dense")])
    model.compile(keras.optimizers.Adam(), loss="mse")
    ```

    ## Known problems
    A learning-rate schedule saved as a config is not read: only the constants are judged then.

    ## References
    - Keras mixed precision guide: https://keras.io/guides/mixed_precision/
    - keras-team/keras#22559, keras-team/keras-hub#2629.
    """

    code = "ND804"
    name = "frozen-low-precision-updates"
    severity = Severity.ERROR
    fix = (
        'Keep float32 master weights: use the "mixed_bfloat16" (or "mixed_float16") policy instead of '
        '"bfloat16" ("float16"), so the variables and Adam\'s moments stay in float32.'
    )
    evidence = "the config: the layers' saved dtype policies and the compiled optimizer's class and constants."

    def check(self, view: ModelView) -> Iterator[Finding]:
        if view.compile is None or not view.compile.optimizer:
            return
        optimizer = view.compile.optimizer
        if optimizer_class(optimizer) in LOSS_SCALE_OPTIMIZERS:
            inner = (optimizer.get("config") or {}).get("inner_optimizer")
            optimizer = inner if isinstance(inner, dict) else {}
        name = optimizer_class(optimizer)
        if name not in ADAM_FAMILY:
            return
        config = {**_ADAM_DEFAULTS, **{k: v for k, v in (optimizer.get("config") or {}).items() if v is not None}}
        by_dtype: dict[str, list[str]] = {}
        for layer, policy in layer_policies(view):
            if (
                not policy.stores_in_reduced_precision
                or layer.config.get("trainable") is False
                or (view.has_config and layer.weights == [] and any(view.weights()))
            ):
                continue
            by_dtype.setdefault(policy.variable, []).append(layer.name)
        for dtype_name, layers in by_dtype.items():
            yield from self._judge(name, config, FLOAT_FORMATS[dtype_name], layers)

    def _judge(self, optimizer: str, config: dict, dtype, layers: list[str]) -> Iterator[Finding]:
        shown = ", ".join(layers[:5]) + (f" and {len(layers) - 5} more" if len(layers) > 5 else "")
        where = f"{len(layers)} layer(s) keep their variables in {dtype.name} ({shown}) under {optimizer}"
        details = {
            "optimizer": optimizer,
            "variable_dtype": dtype.name,
            "layers": len(layers),
            "first_layers": layers[:5],
        }
        for key in ("beta_1", "beta_2"):
            value = config.get(key)
            if isinstance(value, (int, float)) and value < 1 and dtype.rounded(float(value)) >= 1.0:
                yield self.finding(
                    layers[0],
                    f"{where}: {key}={value:g} is 1.0 in {dtype.name}, so Adam's bias correction is 0 and every step is exactly 0",
                    details={**details, key: float(value), "rounded": 1.0},
                )
                return
        epsilon = config.get("epsilon")
        if isinstance(epsilon, (int, float)) and dtype.rounds_to_zero(float(epsilon)):
            yield self.finding(
                layers[0],
                f"{where}: epsilon={epsilon:g} is 0 in {dtype.name}, so a value whose gradient is 0 divides 0 by 0 (NaN)",
                details={**details, "epsilon": float(epsilon)},
            )
            return
        rate = config.get("learning_rate")
        if isinstance(rate, (int, float)) and rate > 0:
            # Above a power of two P the spacing is at least P * resolution, so a step of at most
            # the learning rate rounds away once P * resolution / 2 >= learning_rate.
            frozen_above = 2.0 ** math.ceil(math.log2(2 * float(rate) / dtype.resolution))
            if frozen_above <= 0.5:
                yield self.finding(
                    layers[0],
                    f"{where}: Adam's step of at most about learning_rate={rate:g} is below half the {dtype.name} "
                    f"spacing of every value above {frozen_above:g} in magnitude, so those values (a normalisation's "
                    "scale of 1 among them) never change",
                    severity=Severity.WARNING,
                    details={**details, "learning_rate": float(rate), "frozen_above": frozen_above},
                )
