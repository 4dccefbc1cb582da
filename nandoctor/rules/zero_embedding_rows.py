from __future__ import annotations

from collections.abc import Iterator

from nandoctor.analysis.keras_facts import is_known_class
from nandoctor.diagnosis import Rule, plural
from nandoctor.report import Confidence, Evidence, Finding, Severity
from nandoctor.view import Layer, ModelView

_FIRST_IDS = 10


class ZeroEmbeddingRows(Rule):
    """## What it does
    Counts the rows of every embedding matrix that are exactly zero.

    ## Why is this bad?
    Pretrained tables (gensim, fastText) leave words they never saw as all-zero rows. A
    zero row alone is harmless: the token simply carries no signal. Fed into a
    normalisation or a cosine similarity it is not: the norm of a zero vector is 0, so a
    hand-written `x / norm(x)` returns NaN, and a division clamped at an epsilon returns
    gradients of order 1/epsilon instead (measured on TensorFlow 2.21: 5e6 per component
    through `Dot(normalize=True)`, 1e12 through `UnitNormalization`; on JAX, Keras 3.15's
    `Dot(normalize=True)` takes the norm through a square root at 0 and its gradient is NaN). The weights upstream
    then shrink or blow up step after step until they are NaN, while the loss looks fine.

    The finding is `info` for zero rows alone and `error` when the embedding's output
    reaches a normalisation the scan can see (`Dot(normalize=True)`, `UnitNormalization`),
    or `error` with medium confidence when it reaches a Lambda or custom layer whose code
    may divide. The padding row of an embedding inside a model (its `mask_id`, else id 0,
    Keras's padding convention) is exempt: a zero padding row is what ND303 asks for.

    ## Example
    ```python
    import numpy as np
    import keras

    table = np.random.default_rng(0).normal(size=(100, 8)).astype("float32")
    table[10:40] = 0.0  # words the pretrained vectors did not cover
    query = keras.Input((1,), dtype="int32")
    candidate = keras.Input((1,), dtype="int32")
    embed = keras.layers.Embedding(100, 8, weights=[table], name="word_emb")
    flat = keras.layers.Flatten()
    cosine = keras.layers.Dot(axes=1, normalize=True, name="cosine")([flat(embed(query)), flat(embed(candidate))])
    model = keras.Model([query, candidate], cosine)
    ```

    ## Use instead
    ```python
    import numpy as np
    import keras

    rng = np.random.default_rng(0)
    table = rng.normal(size=(100, 8)).astype("float32")
    missing = np.arange(10, 40)
    table[missing] = rng.normal(scale=0.1, size=(len(missing), 8))  # small random vectors
    query = keras.Input((1,), dtype="int32")
    candidate = keras.Input((1,), dtype="int32")
    embed = keras.layers.Embedding(100, 8, weights=[table], name="word_emb")
    flat = keras.layers.Flatten()
    cosine = keras.layers.Dot(axes=1, normalize=True, name="cosine")([flat(embed(query)), flat(embed(candidate))])
    model = keras.Model([query, candidate], cosine)
    ```

    ## Known problems
    The scan cannot see inside Lambda and custom layers, so a zero row that reaches one is
    reported with medium confidence whether or not that code divides.

    ## References
    - [Field report C](../field-reports.md): weights shrinking to NaN under a hand-written
      cosine over a gensim matrix with zero rows.
    """

    code = "ND101"
    evidence = (
        "the weights (the rows are read from the file). Whether zero rows feed a division is read from "
        "the config; where they feed a Lambda or custom layer, the message says the code is unseen; "
        "`check()` confirms with the NaN probe."
    )
    name = "zero-embedding-rows"
    severity = Severity.INFO
    evidence_kinds = (Evidence.CERTAIN, Evidence.INFERRED)
    fix = (
        "Give rows of unknown words small random vectors instead of zeros, and compute cosine "
        "similarity with nandoctor.layers.SafeCosineSimilarity, whose epsilon sits inside the square root."
    )
    needs_weights = True

    def check(self, view: ModelView) -> Iterator[Finding]:
        for layer in view.embeddings():
            matrix = layer.embedding_matrix()
            if matrix is None or len(matrix.shape) != 2:
                continue
            zero_rows = matrix.stats().zero_rows
            assert zero_rows is not None  # the stats of a 2-D matrix keep its rows
            if not len(zero_rows):  # most tables: no numpy call to drop the padding row from nothing
                continue
            padding_id = padding_row(layer)
            if padding_id is not None:
                zero_rows = zero_rows[zero_rows != padding_id]
            if not len(zero_rows):
                continue
            count, rows = len(zero_rows), matrix.rows
            first_ids = [int(i) for i in zero_rows[:_FIRST_IDS]]
            words = matrix.row_labels(first_ids)
            shown = ", ".join(repr(w) for w in words) if words else ", ".join(map(str, first_ids))
            shown += ", ..." if count > _FIRST_IDS else ""
            message = (
                f"{count:,} of {plural(rows, 'row')} ({count / rows:.1%}) are all zero "
                f"({'words' if words else 'ids'} {shown})"
            )
            details = {
                "count": count,
                "rows": rows,
                "fraction": round(count / rows, 6),
                "first_ids": first_ids,
                "weight": matrix.name,
                "feeds": None,
            }
            if words:
                details["first_words"] = words
            consumer = _normalising_consumer(view, layer)
            if consumer is None:
                yield self.finding(layer.name, message, details=details)
                continue
            feeder, clause, confidence, evidence = consumer
            details["feeds"] = feeder.name
            yield self.finding(
                layer.name,
                f"{message}; {clause}",
                severity=Severity.ERROR,
                confidence=confidence,
                details=details,
                evidence=evidence,
            )


def padding_row(layer: Layer) -> int | None:
    """The row an embedding inside a model keeps for padding: its declared mask id, else
    id 0 (Keras's convention, which ND303 judges by). A bare table has none."""
    if layer.class_name == "EmbeddingMatrix":
        return None
    mask_id = layer.config.get("mask_id")
    return mask_id if isinstance(mask_id, int) else 0


def _normalising_consumer(view: ModelView, embedding: Layer) -> tuple[Layer, str, Confidence, Evidence] | None:
    """The nearest layer downstream that normalises (certain) or may, in code the scan cannot
    see (inferred), with the clause that says what happens to a zero row there."""
    opaque = None
    epsilon_clause = "where a zero row's norm is 0 and its gradient is of order 1/epsilon"
    for layer in view.downstream(embedding.name):
        if layer.class_name == "Dot" and layer.config.get("normalize"):
            return (
                layer,
                f"they feed the normalised dot product '{layer.name}', {epsilon_clause}",
                Confidence.HIGH,
                Evidence.CERTAIN,
            )
        if layer.class_name in ("UnitNormalization", "Normalize"):
            return (
                layer,
                f"they feed the unit normalisation '{layer.name}', {epsilon_clause}",
                Confidence.HIGH,
                Evidence.CERTAIN,
            )
        if opaque is None and not is_known_class(layer.class_name, layer.module):
            opaque = layer
    if opaque is not None:
        kind = "Lambda" if opaque.class_name == "Lambda" else f"custom layer {opaque.class_name}"
        return (
            opaque,
            f"they feed {kind} '{opaque.name}', code the scan cannot see, which may divide by their norm (0)",
            Confidence.MEDIUM,
            Evidence.INFERRED,
        )
    return None
