from __future__ import annotations

from collections.abc import Iterator

from nandoctor.diagnosis import Rule
from nandoctor.report import Finding, Severity
from nandoctor.view import ModelView


class NonfiniteWeights(Rule):
    """## What it does
    Finds NaN and infinite values in any stored weight, and counts them per tensor.

    ## Why is this bad?
    One NaN weight makes every output it touches NaN, and every gradient through it too; an
    infinite weight does the same as soon as it meets a zero (inf * 0) or another infinity
    of the opposite sign. A checkpoint saved after training diverged holds such values even
    when the logged loss looked finite (a max-margin loss is 0 for NaN scores, for example),
    so the model file is the first place the failure can be seen.

    ## Example
    ```python
    import numpy as np
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")])
    kernel, bias = model.get_layer("dense").get_weights()
    kernel[0, 0] = np.nan
    model.get_layer("dense").set_weights([kernel, bias])
    ```

    ## Use instead
    ```python
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")])
    ```

    ## References
    - `keras.callbacks.TerminateOnNaN`, which stops on a NaN loss only.
    """

    code = "ND102"
    evidence = "the weights only. A file without weights (a config-only archive) says so in its notes."
    name = "nonfinite-weights"
    severity = Severity.ERROR
    fix = (
        "Restore the last checkpoint whose weights are finite and train again with "
        "nandoctor.Monitor(sample=(x, y)) in the callbacks: it names the step, the variable and "
        "the layer where the weights first go non-finite."
    )
    needs_weights = True

    def check(self, view: ModelView) -> Iterator[Finding]:
        for weight in view.weights():
            stats = weight.stats()
            if not stats.nonfinite:
                continue
            counts = [
                f"{count:,} {label}"
                for count, label in ((stats.nan, "NaN"), (stats.posinf, "+Inf"), (stats.neginf, "-Inf"))
                if count
            ]
            yield self.finding(
                weight.layer,
                f"{weight.name} {tuple(weight.shape)} holds {' and '.join(counts)} "
                f"of {stats.size:,} values ({stats.nonfinite / stats.size:.1%})",
                details={
                    "weight": weight.name,
                    "shape": list(weight.shape),
                    "nan": stats.nan,
                    "posinf": stats.posinf,
                    "neginf": stats.neginf,
                    "size": stats.size,
                },
            )
