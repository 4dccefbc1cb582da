from __future__ import annotations

from collections.abc import Iterator

from nandoctor.analysis.output_activations import output_activation
from nandoctor.analysis.precision import layer_policy
from nandoctor.diagnosis import Rule
from nandoctor.report import Finding, Severity
from nandoctor.view import ModelView

# Activations that turn scores into probabilities: in float16 the small ones are 0 and those
# near 1 are 1 (its spacing there is 4.9e-4), which a cross-entropy then clips.
_PROBABILITY_ACTIVATIONS = frozenset({"softmax", "sigmoid", "log_softmax"})


class HalfPrecisionOutput(Rule):
    """## What it does
    Finds a model output computed in float16: a softmax or sigmoid, or an output a compiled loss reads.

    ## Why is this bad?
    Keras's mixed-precision guide keeps the model's last layers in float32 ("the softmax
    activation in float16 can be numerically unstable"): float16 rounds every probability below
    6e-8 to 0 and every one above 0.9998 to 1, so a cross-entropy clips them, its gradient there
    is 0, and a confident wrong answer stops teaching the model; `log_softmax` in float16 loses
    the tail the loss needs. A linear output that a compiled loss reads is cast to float32 by the
    loss, but its values were already rounded to float16's 3 significant digits and capped at
    65504: reported as `info`. keras-team/keras-hub#2424 (Gemma3 in `mixed_float16`, blank
    output) is this family of failure.

    ## Example
    ```python
    import keras

    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(16, activation="relu", dtype="mixed_float16"),
        keras.layers.Dense(4, activation="softmax", dtype="mixed_float16", name="probabilities"),
    ])
    ```

    ## Use instead
    ```python
    import keras

    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(16, activation="relu", dtype="mixed_float16"),
        keras.layers.Dense(4, dtype="mixed_float16"),
        keras.layers.Activation("softmax", dtype="float32", name="probabilities"),
    ])
    ```

    ## References
    - Keras mixed precision guide, "Building the model": https://keras.io/guides/mixed_precision/
    - keras-team/keras-hub#2424.
    """

    code = "ND803"
    name = "half-precision-output"
    severity = Severity.WARNING
    fix = (
        'Compute the output in float32: end the model with keras.layers.Activation("softmax", dtype="float32") '
        '(or "linear" for logits) after the float16 layers.'
    )
    evidence = "the config: the output layers' saved dtype policies, activations and compiled losses."

    def check(self, view: ModelView) -> Iterator[Finding]:
        losses = view.compile.losses if view.compile else {}
        for output in view.outputs:
            layer = view.layer(output)
            if layer is None:
                continue
            policy = layer_policy(layer.config)
            if policy is None or policy.compute != "float16":
                continue
            found = output_activation(view, output)
            activation, applied_by = found if found else ("unknown", layer)
            applied_policy = layer_policy(applied_by.config)
            if (
                activation in _PROBABILITY_ACTIVATIONS
                and applied_policy is not None
                and applied_policy.compute == "float16"
            ):
                yield self.finding(
                    output,
                    f"output {output!r} applies {activation} in float16 ({applied_by.name!r}, policy {applied_policy.name!r}): "
                    "probabilities below 6e-08 become 0 and those above 0.9998 become 1",
                    details={"activation": activation, "policy": applied_policy.name, "applied_by": applied_by.name},
                )
            elif output in losses:
                yield self.finding(
                    output,
                    f"output {output!r} is computed in float16 (policy {policy.name!r}, activation {activation}) and "
                    f"read by the loss {losses[output].name}: its values are rounded to float16 and capped at 65504",
                    severity=Severity.INFO,
                    details={"activation": activation, "policy": policy.name, "loss": losses[output].name},
                )
