from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from nandoctor.diagnosis import Rule, plural
from nandoctor.report import Finding, Severity
from nandoctor.view import ModelView, Weight
from nandoctor.view.weight_stats import WeightStats

_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


class CollapsedWeights(Rule):
    """## What it does
    Finds weight tensors, and rows of weight matrices, whose values have all collapsed
    toward zero without being exactly zero.

    ## Why is this bad?
    A run in which the weights shrink geometrically (an optimiser chasing a loss that
    rewards small norms, or gradients of order 1/epsilon from a zero vector) leaves this
    trace in its checkpoints before the values underflow and turn into NaN: every value of
    a kernel below 1e-20, or only subnormal numbers. Such a layer passes no signal, so the
    model cannot learn, and the next steps produce 0/0 wherever the layer's output is
    normalised. A whole tensor that collapsed is an `error`; rows of a matrix that
    collapsed while others did not are a `warning`.

    ## Example
    ```python
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")])
    kernel, bias = model.get_layer("dense").get_weights()
    model.get_layer("dense").set_weights([kernel * 1e-30, bias])
    ```

    ## Use instead
    ```python
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")])
    ```

    ## Options
    - `tiny` (default `1e-20`): a tensor or row whose largest magnitude is below this, and
      above zero, has collapsed.
    """

    code = "ND103"
    evidence = "the weights only. A file without weights says so in its notes."
    name = "collapsed-weights"
    severity = Severity.ERROR
    fix = (
        "Restore a checkpoint from before the collapse and find what drives the weights down: "
        "a zero vector under a normalisation, a loss that rewards small norms, or too much weight decay. "
        "nandoctor.Monitor() in the callbacks forecasts the collapse while training."
    )
    options: ClassVar[dict[str, Any]] = {"tiny": 1e-20}
    needs_weights = True

    def check(self, view: ModelView) -> Iterator[Finding]:
        tiny = float(self.settings["tiny"])
        for weight in view.weights():
            if weight.dtype not in _FLOAT_DTYPES:
                continue
            stats = weight.stats()
            if stats.nonfinite or stats.all_zero:
                continue
            if stats.max_abs < tiny:
                details = self._details(weight, stats, tiny)
                subnormal = (
                    stats.max_abs < np.finfo(np.dtype("float32" if weight.dtype == "bfloat16" else weight.dtype)).tiny
                )
                yield self.finding(
                    weight.layer,
                    f"every value of {weight.name} {tuple(weight.shape)} is below {tiny:g} in magnitude "
                    f"(max |w| = {stats.max_abs:.3g}{', all subnormal' if subnormal else ''}): the tensor has collapsed",
                    details={**details, "subnormal": bool(subnormal)},
                )
                continue
            row_max_abs = stats.row_max_abs
            if row_max_abs is None:
                continue
            # Every row below `tiny` is exactly zero: one comparison rules out most tensors.
            if stats.zero_rows is not None and np.count_nonzero(row_max_abs < tiny) == len(stats.zero_rows):
                continue
            collapsed = np.flatnonzero((row_max_abs > 0) & (row_max_abs < tiny))
            if len(collapsed):
                details = self._details(weight, stats, tiny)
                yield self.finding(
                    weight.layer,
                    f"{len(collapsed):,} of {plural(stats.rows, 'row')} of {weight.name} have collapsed "
                    f"below {tiny:g} in magnitude without being zero (first: {', '.join(map(str, collapsed[:10]))})",
                    severity=Severity.WARNING,
                    details={**details, "rows": len(collapsed), "first_rows": [int(i) for i in collapsed[:10]]},
                )

    @staticmethod
    def _details(weight: Weight, stats: WeightStats, tiny: float) -> dict[str, Any]:
        return {"weight": weight.name, "shape": list(weight.shape), "max_abs": stats.max_abs, "tiny": tiny}
