from __future__ import annotations

from collections.abc import Iterator

from nandoctor.analysis.keras_facts import LOSS_SCALE_OPTIMIZERS
from nandoctor.analysis.precision import layer_policies
from nandoctor.diagnosis import Rule
from nandoctor.report import Evidence, Finding, Severity
from nandoctor.view import ModelView

# Formats whose compile configuration records the optimizer that trained (Keras's legacy .h5
# writer saves the live optimizer, LossScaleOptimizer included); a .keras archive records the
# optimizer the user passed, which Keras wraps again at compile only under a mixed_float16 model.
_OPTIMIZER_AS_IT_RAN = frozenset({"h5"})


def optimizer_class(optimizer: dict) -> str:
    """`Adam` for `{"class_name": "Adam"}` and Keras 2's `Custom>Adam`."""
    return str(optimizer.get("class_name") or "").removeprefix("Custom>")


class MissingLossScaling(Rule):
    """## What it does
    Finds a model that computes in float16 and was compiled with an optimizer that does not scale the loss.

    ## Why is this bad?
    float16 holds no magnitude below 6e-8: the small gradients of a float16 model underflow to
    zero and those layers stop learning, while a large activation overflows 65504 and turns the
    step into inf. Keras's mixed-precision guide prescribes loss scaling for float16 (not for
    bfloat16, whose range is float32's): `LossScaleOptimizer` multiplies the loss before the
    gradients are taken, divides them after, skips a step whose gradients are not finite and
    halves its scale. `model.compile` wraps the optimizer only when the *model's* policy is
    `mixed_float16` and `auto_scale_loss=True`: layers given `dtype="mixed_float16"` one by one
    in a float32 model, or a custom or JAX loop (keras-team/keras#19244), get no loss scaling.
    A legacy `.h5` file saves the optimizer as it ran, so a plain one there is certain. A
    `.keras` archive saves the optimizer the user passed and not the model's policy, and Keras
    wraps it again at load only if the global policy is `mixed_float16` then (measured on Keras
    3.15: a functional `mixed_float16` model reloaded under the default policy trains with a
    plain `Adam`): reported as `info`.

    ## Example
    ```python
    import keras

    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(8, activation="relu", dtype="mixed_float16"),
        keras.layers.Dense(1, dtype="float32"),
    ])
    model.compile(keras.optimizers.Adam(), loss="mse")
    ```

    ## Use instead
    ```python
    import keras

    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(8, activation="relu", dtype="mixed_float16"),
        keras.layers.Dense(1, dtype="float32"),
    ])
    model.compile(keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam()), loss="mse")
    ```

    ## Known problems
    Keras 3.15 does not save `auto_scale_loss` in the compile configuration, so a model
    compiled with `auto_scale_loss=False` looks the same as one compiled with the default.

    ## References
    - Keras mixed precision guide, "Loss scaling": https://keras.io/guides/mixed_precision/
    - `keras.optimizers.LossScaleOptimizer`; keras-team/keras#19244.
    """

    code = "ND802"
    name = "missing-loss-scaling"
    severity = Severity.WARNING
    evidence_kinds = (Evidence.CERTAIN, Evidence.INFERRED)
    fix = (
        "Wrap the optimizer: keras.optimizers.LossScaleOptimizer(optimizer), or set the global policy "
        "to mixed_float16 before building and compiling; in a custom loop, scale with optimizer.scale_loss(loss)."
    )
    evidence = (
        "the config: the layers' saved dtype policies and the compiled optimizer; certain in a legacy .h5, "
        "which saves the optimizer as it ran, inferred in a .keras archive, which does not save the model's policy."
    )

    def check(self, view: ModelView) -> Iterator[Finding]:
        if view.format == "live" or view.compile is None or not view.compile.optimizer:
            return  # a live model's optimizer is wrapped at compile, which its config does not show
        half = [layer.name for layer, policy in layer_policies(view) if policy.compute == "float16"]
        optimizer = view.compile.optimizer
        name = optimizer_class(optimizer)
        config = optimizer.get("config")
        if not isinstance(config, dict):
            config = {}
        if not half or name in LOSS_SCALE_OPTIMIZERS or config.get("loss_scale_factor"):
            return
        shown = ", ".join(half[:5]) + (f" and {len(half) - 5} more" if len(half) > 5 else "")
        details = {"optimizer": name, "float16_layers": len(half), "first_layers": half[:5]}
        if view.format in _OPTIMIZER_AS_IT_RAN:
            yield self.finding(
                half[0],
                f"{len(half)} layer(s) compute in float16 ({shown}) and the optimizer saved with the model is a "
                f"plain {name}, not a LossScaleOptimizer: small gradients underflow to 0 and no step is skipped on overflow",
                details=details,
            )
            return
        yield self.finding(
            half[0],
            f"{len(half)} layer(s) compute in float16 ({shown}) and the compiled optimizer is a plain {name}: Keras "
            "wraps it in a LossScaleOptimizer only when the model's own policy is mixed_float16, which this file "
            "does not record (loaded under the default policy, it trains without loss scaling)",
            evidence=Evidence.INFERRED,
            details=details,
        )
