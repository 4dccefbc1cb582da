from __future__ import annotations

from collections.abc import Iterator

from nandoctor.analysis.padding_flow import (
    AVERAGE,
    FLATTEN,
    MAXIMUM,
    SUM,
    mask_id,
    padding_reaches,
)
from nandoctor.diagnosis import Rule
from nandoctor.report import Confidence, Evidence, Finding, Severity
from nandoctor.view import ModelView

# Layers where a zero padding vector would contribute nothing (directly, not through a
# convolution, whose bias makes padding non-zero anyway).
_RELIES_ON_ZERO_PADDING = frozenset({FLATTEN, AVERAGE, MAXIMUM, SUM})


class PaddingRowNotZero(Rule):
    """## What it does
    Finds embeddings whose padding row is not zero while their padded positions reach, with
    no mask, a layer that relies on padding adding nothing: Flatten, a sum or mean over
    time, or global pooling.

    ## Why is this bad?
    Where the mask is absent or lost, a padded position contributes the padding row's
    vector. An `Embedding` initialises that row like any other and trains it, so a
    document padded to 1100 tokens feeds the next layer the same learned vector a thousand
    times (field report D: Embedding into Flatten). A zero padding row contributes nothing
    to sums and flattened features; a non-zero one drowns the real tokens.

    ## Example
    ```python
    import keras

    model = keras.Sequential([
        keras.Input((50,), dtype="int32"),
        keras.layers.Embedding(1000, 16, mask_zero=True, name="embedding"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(2, activation="softmax"),
    ])
    ```

    ## Use instead
    ```python
    import keras
    import nandoctor.layers

    model = keras.Sequential([
        keras.Input((50,), dtype="int32"),
        nandoctor.layers.MaskedEmbedding(1000, 16, name="embedding"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(2, activation="softmax"),
    ])
    ```

    ## Known problems
    For an embedding without `mask_zero`, id 0 is taken to be the padding id (Keras's
    convention); the confidence is then medium. A mean or sum written in a Lambda is code the
    scan cannot see (ND901 names it), so it is not followed here.

    ## References
    - [Field report D](../field-reports.md) ("keep zero-padded values as zeros").
    """

    code = "ND303"
    evidence = (
        "the config and the weights (the padding row's norm). Without weights it is not judged, and the "
        "file's notes say so."
    )
    name = "padding-row-not-zero"
    severity = Severity.WARNING
    evidence_kinds = (Evidence.CERTAIN, Evidence.INFERRED)
    fix = "Use nandoctor.layers.MaskedEmbedding, whose padding row is zero and takes no gradient."
    reads_weights = True

    def check(self, view: ModelView) -> Iterator[Finding]:
        for layer in view.embeddings():
            matrix = layer.embedding_matrix()
            if matrix is None or len(matrix.shape) != 2 or view.integer_sequence_length(layer) is False:
                continue
            padding_id = mask_id(layer)
            declared = padding_id is not None
            padding_id = padding_id or 0
            reaches = [r for r in padding_reaches(view, layer) if r.kind in _RELIES_ON_ZERO_PADDING and not r.via]
            if not reaches or padding_id >= matrix.rows:
                continue
            norm = float(matrix.row_norms([padding_id])[0])
            if norm == 0.0:
                continue
            median = matrix.median_row_norm()
            reach = reaches[0]
            yield self.finding(
                layer.name,
                f"padding row {padding_id} of '{layer.name}' is not zero (norm {norm:.3g}; median row norm "
                f"{median:.3g}) and reaches {reach.describe()}, with no mask: every padded position adds this vector",
                confidence=Confidence.HIGH if declared else Confidence.MEDIUM,
                evidence=Evidence.INFERRED if reach.unseen else Evidence.CERTAIN,
                details={
                    "padding_id": padding_id,
                    "row_norm": norm,
                    "median_row_norm": median,
                    "consumer": reach.consumer.name,
                },
            )
