from __future__ import annotations

from collections.abc import Iterator

from nandoctor.analysis.output_activations import (
    ACTIVATION_RANGES,
    LOSS_ACTIVATION_TABLE,
    ONE_UNIT_READINGS,
    loss_reading,
    output_activation,
    output_units,
)
from nandoctor.diagnosis import Rule
from nandoctor.report import Confidence, Evidence, Finding, Severity
from nandoctor.view import Layer, LossSpec, ModelView


class LossActivationMismatch(Rule):
    """## What it does
    Checks each output layer's activation against what its compiled Keras loss reads it as.

    ## Why is this bad?
    Keras's cross-entropies read the outputs as probabilities unless `from_logits=True`:
    the categorical ones divide the outputs by their sum and clip them to [1e-7, 1], the
    binary one clips each output. A relu or linear output is not a distribution: its rows
    can sum to zero or hold negatives, so the loss takes the log of clipped garbage and the
    gradients stop carrying information, and the model stalls near chance while training
    runs without an error (field report A: `Dense(V, activation="relu")` under
    `categorical_crossentropy`). The reverse mistake, a softmax output under a loss with
    `from_logits=True`, applies softmax twice and slows learning. A softmax over a single
    unit always outputs 1.0 and has no gradient at all, and so does any output of one unit
    under a loss that normalises over classes (`Dense(1, "sigmoid")` under
    `sparse_categorical_crossentropy`). Beyond the cross-entropies: `poisson` takes
    `log(y_pred + epsilon)` without a clip (NaN for a negative prediction),
    `mean_squared_logarithmic_error` clips predictions below zero (no gradient there),
    `kl_divergence` never renormalises (an unnormalised output is rewarded for being 1
    everywhere), `dice` and `tversky` divide by sums that negative outputs can cancel, hinge
    losses decide by the sign, and `ctc` takes logits.

    Every Keras 3 loss (class or string alias) reads the output as one of the rows below;
    every activation outputs one of the columns (E: error, the model cannot learn or its
    output is meaningless; W: warning, it costs accuracy; i: info; `.`: fine; `*`: fine over
    two units):

    | loss reads the output as | distribution | sparse distribution | unit interval | non-negative | symmetric | log-probabilities | real |
    |---|---|---|---|---|---|---|---|
    | class distribution | . | W | W | E | E | E | E |
    | class logits | W | W | W | . | W | . | . |
    | label probabilities | W* | W* | . | E | E | E | E |
    | label logits | W | W | W | E | W | E | . |
    | distribution compared | . | W | E | E | E | E | E |
    | real values | W | W | i | . | . | . | . |
    | non-negative values | i | i | i | . | W | E | W |
    | positive rates | i | i | i | . | E | E | E |
    | margin scores | W | W | W | W | . | W | . |
    | class scores | . | . | . | . | . | . | . |
    | directions | . | . | . | . | . | . | . |
    | overlap probabilities | . | . | . | W | E | E | E |
    | sequence logits | W | W | W | . | W | . | . |

    Losses by row: class distribution / class logits: `categorical_crossentropy`,
    `sparse_categorical_crossentropy`, `categorical_focal_crossentropy`; label probabilities /
    label logits: `binary_crossentropy`, `binary_focal_crossentropy`; distribution compared:
    `kl_divergence`; real values: `mean_squared_error`, `mean_absolute_error`, `huber`,
    `log_cosh`, `mean_absolute_percentage_error`; non-negative values:
    `mean_squared_logarithmic_error`; positive rates: `poisson`; margin scores: `hinge`,
    `squared_hinge`; class scores: `categorical_hinge`; directions: `cosine_similarity`,
    `circle`; overlap probabilities: `dice`, `tversky`; sequence logits: `ctc`. Activations
    by column: distribution: softmax; sparse distribution: sparsemax; unit interval: sigmoid,
    hard_sigmoid, sparse_sigmoid; non-negative: relu, relu6, softplus, exponential,
    sparse_plus, squareplus; symmetric: tanh, softsign, hard_tanh; log-probabilities:
    log_softmax, log_sigmoid; real: linear and the rest (elu, selu, gelu, silu, mish, ...).

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
    activation the scan cannot see, and are not checked. Custom losses are not checked
    statically (`check()` traces them). The targets are not in the file: a sigmoid under
    `mean_squared_error` is right for pixel intensities and slow for labels, so it is `info`;
    `check(model, sample=(x, y))` measures a batch of the real targets, and those the output
    activation cannot reach (distances through a sigmoid) make it an error.

    ## References
    - [Field report A](../field-reports.md) (memory network language model).
    - Keras documentation of `keras.losses`, and its source (`keras/src/losses/losses.py`) for
      the clips and logs each loss applies.
    """

    code = "ND601"
    evidence = (
        "the config: the output layer's activation and the compiled loss (string, function, class, per "
        "output). A custom loss's code is unseen statically; `check()` traces the loss. An output made by "
        "unseen code is not judged. The targets, given to `check(model, sample=(x, y))`, are measured."
    )
    name = "loss-activation-mismatch"
    severity = Severity.ERROR
    evidence_kinds = (Evidence.CERTAIN, Evidence.MEASURED)
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
                    + (
                        f"{loss.name} has no gradient through it"
                        if loss
                        else "the model is not compiled, and whatever loss trains it will have no gradient through it"
                    ),
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
        """The table's verdict on this loss and activation (analysis/output_activations.py)."""
        reading = loss_reading(loss.name, loss.from_logits)
        details = {
            "activation": activation,
            "units": units,
            "loss": loss.name,
            "from_logits": loss.from_logits,
            "reading": reading,
        }
        logits = " with from_logits=True" if loss.from_logits else ""
        if reading in ONE_UNIT_READINGS and units == 1:
            return self.finding(
                layer.name,
                f"output '{layer.name}' has 1 unit under {loss.name}{logits}, which normalises over classes: the "
                "softmax of one value is 1.0, so the loss has no gradient (a binary task wants binary_crossentropy)",
                fix="Use binary_crossentropy on one sigmoid unit, or give the output one unit per class.",
                details=details,
            )
        output_range = ACTIVATION_RANGES.get(activation)
        if reading is None or output_range is None:  # a loss or an activation the table does not cover
            return None
        verdict = LOSS_ACTIVATION_TABLE.get((reading, output_range))
        if verdict is None or (verdict.quiet_at_units is not None and units == verdict.quiet_at_units):
            return None
        return self.finding(
            layer.name,
            f"output '{layer.name}' uses activation '{activation}' under {loss.name}{logits}, which reads it as "
            f"{reading}: it gives {verdict.why}",
            severity=Severity(verdict.severity),
            confidence=Confidence.HIGH if units or verdict.quiet_at_units is None else Confidence.MEDIUM,
            fix=verdict.fix,
            details=details,
        )
