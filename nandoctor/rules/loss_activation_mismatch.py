from __future__ import annotations

from collections.abc import Iterator

from nandoctor.analysis.output_activations import BINARY_LOSSES as _BINARY
from nandoctor.analysis.output_activations import CATEGORICAL_LOSSES as _CATEGORICAL
from nandoctor.analysis.output_activations import output_activation, output_units
from nandoctor.diagnosis import Rule
from nandoctor.report import Confidence, Evidence, Finding, Severity
from nandoctor.view import Layer, LossSpec, ModelView



class LossActivationMismatch(Rule):
    """## What it does
    Checks that each output layer's activation matches what its compiled loss expects.

    ## Why is this bad?
    Keras's cross-entropies read the outputs as probabilities unless `from_logits=True`:
    the categorical ones divide the outputs by their sum and clip them to [1e-7, 1], the
    binary one clips each output. A relu or linear output is not a distribution: its rows
    can sum to zero or hold negatives, so the loss takes the log of clipped garbage and the
    gradients stop carrying information, and the model stalls near chance while training
    runs without an error (field report A: `Dense(V, activation="relu")` under
    `categorical_crossentropy`). The reverse mistake, a softmax output under a loss with
    `from_logits=True`, applies softmax twice and slows learning. A softmax over a single
    unit always outputs 1.0 and has no gradient at all.

    ## Example
    ```python
    import keras

    model = keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(10, activation="relu", name="out")]
    )
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    ```

    ## Use instead
    ```python
    import keras

    model = keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(10, activation="softmax", name="out")]
    )
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    ```

    ## Known problems
    Outputs produced by a Lambda, a custom layer or a merge (`Add`, `Concatenate`) have an
    activation the scan cannot see, and are not checked. Custom losses are not checked.

    ## References
    - [Field report A](../field-reports.md) (memory network language model).
    - Keras documentation of `CategoricalCrossentropy` and `BinaryCrossentropy`.
    """

    code = "ND601"
    evidence = (
        "the config: the output layer's activation and the compiled loss (string, function, class, per "
        "output). A custom loss's code is unseen statically; `check()` traces the loss. An output made by "
        "unseen code is not judged."
    )
    name = "loss-activation-mismatch"
    severity = Severity.ERROR
    evidence_kinds = (Evidence.CERTAIN,)
    fix = (
        "Use activation='softmax' on the output layer for a categorical cross-entropy "
        "(sigmoid for a binary one), or keep it linear and compile the loss with from_logits=True."
    )

    def check(self, view: ModelView) -> Iterator[Finding]:
        if view.compile is None:
            return
        for output in view.outputs:
            loss = view.compile.losses.get(output)
            resolved = output_activation(view, output)
            if resolved is None:
                continue
            activation, layer = resolved
            units = output_units(view, layer)
            if activation == "softmax" and units == 1:
                yield self.finding(
                    layer.name,
                    f"output '{layer.name}' applies softmax over 1 unit, which always outputs 1.0: "
                    + (f"{loss.name} has no gradient through it" if loss else
                       "the model is not compiled, and whatever loss trains it will have no gradient through it"),
                    fix="Use activation='sigmoid' for one unit, or give the softmax one unit per class.",
                    details={"activation": activation, "units": 1, "loss": loss.name if loss else None},
                )
                continue
            if loss is None or loss.custom:
                continue
            finding = self._mismatch(layer, activation, units, loss)
            if finding is not None:
                yield finding

    def _mismatch(self, layer: Layer, activation: str, units: int | None, loss: LossSpec) -> Finding | None:
        details = {"activation": activation, "units": units, "loss": loss.name, "from_logits": loss.from_logits}
        received = f"output '{layer.name}' uses activation '{activation}' under {loss.name}"
        if loss.from_logits and loss.name in _CATEGORICAL | _BINARY and activation in ("softmax", "sigmoid"):
            return self.finding(
                layer.name,
                f"{received} with from_logits=True: the loss applies {'softmax' if loss.name in _CATEGORICAL else 'sigmoid'} "
                f"again to outputs that are already probabilities, which flattens the gradients",
                severity=Severity.WARNING,
                fix="Make the output layer linear (activation=None), or compile with from_logits=False.",
                details=details,
            )
        if loss.from_logits:
            return None
        if loss.name in _CATEGORICAL:
            if activation == "softmax":
                return None
            if activation == "sigmoid":
                return self.finding(
                    layer.name,
                    f"{received}: sigmoid outputs are not a distribution over classes; Keras renormalises "
                    "them by their sum, which hides the mismatch and distorts the gradients",
                    severity=Severity.WARNING,
                    details=details,
                )
            return self.finding(
                layer.name,
                f"{received} (from_logits=False): the loss expects probabilities, but {activation} outputs "
                f"{_why_not_probabilities(activation)}, so it takes the log of clipped values and the model stalls",
                details=details,
            )
        if loss.name in _BINARY:
            if activation == "sigmoid":
                return None
            if activation == "softmax":
                if units == 2:
                    return None
                return self.finding(
                    layer.name,
                    f"{received}: softmax makes the {units or 'several'} labels compete for one unit of "
                    "probability, while binary cross-entropy scores each label on its own",
                    severity=Severity.WARNING,
                    confidence=Confidence.HIGH if units else Confidence.MEDIUM,
                    fix="Use activation='sigmoid' for independent labels, or categorical_crossentropy for one class per sample.",
                    details=details,
                )
            return self.finding(
                layer.name,
                f"{received} (from_logits=False): the loss expects probabilities in [0, 1], but {activation} "
                "outputs are not bounded there, so it clips them and the gradients vanish",
                fix="Use activation='sigmoid' on the output layer, or keep it linear and compile with from_logits=True.",
                details=details,
            )
        return None


_NON_NEGATIVE = frozenset({"relu", "relu6", "softplus", "exponential"})


def _why_not_probabilities(activation: str) -> str:
    if activation in _NON_NEGATIVE:
        return "are not normalised and can all be zero"
    return "can be negative and are not normalised"
