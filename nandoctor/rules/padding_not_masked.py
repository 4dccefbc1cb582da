from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nandoctor.analysis.padding_flow import (
    ATTENDING,
    AVERAGE,
    FLATTEN,
    MAXIMUM,
    RECURRENCE,
    mask_id,
    padding_reaches,
)
from nandoctor.diagnosis import Rule
from nandoctor.report import Confidence, Finding, Severity
from nandoctor.view import Layer, ModelView

_POSITION_DEPENDENT = frozenset({FLATTEN, AVERAGE, MAXIMUM, RECURRENCE, ATTENDING})


class PaddingNotMasked(Rule):
    """## What it does
    Finds integer sequences embedded without a padding mask whose padded positions reach a
    layer that mixes positions: Flatten, global pooling, recurrent layers, attention, or a
    convolution followed by one of those.

    ## Why is this bad?
    Sequences are zero-padded to one length, and without `mask_zero` every padded position
    is a real input to the layers after the embedding. Flatten makes padding vectors most of
    the next layer's input, a global average is diluted by them, a recurrent layer's final
    state summarises the padding after the last word, attention spends weight on it. Field
    report D (20 Newsgroups padded to 1100 tokens into Flatten) sat at chance for four
    epochs; masking the padding left chance in the first.

    ## Example
    ```python
    import keras

    model = keras.Sequential([
        keras.Input((50,), dtype="int32"),
        keras.layers.Embedding(1000, 16, name="embedding"),
        keras.layers.LSTM(8, name="lstm"),
        keras.layers.Dense(2, activation="softmax"),
    ])
    ```

    ## Use instead
    ```python
    import keras

    model = keras.Sequential([
        keras.Input((50,), dtype="int32"),
        keras.layers.Embedding(1000, 16, mask_zero=True, name="embedding"),
        keras.layers.LSTM(8, name="lstm"),
        keras.layers.Dense(2, activation="softmax"),
    ])
    ```

    Before Flatten, which drops masks, use `nandoctor.layers.MaskedEmbedding`: its padding
    outputs are exactly zero.

    ## Known problems
    The scan cannot see the data: sequences that are never padded make this a false alarm.
    Float inputs (one-hot vectors, features) are not checked, since a zero vector there may be
    a real value. A frozen embedding whose padding row is exactly zero is harmless before
    Flatten and is not reported there.

    ## References
    - [Field report D](../field-reports.md).
    - Keras guide "Understanding masking & padding".
    """

    code = "ND301"
    name = "padding-not-masked"
    severity = Severity.WARNING
    confidence = Confidence.MEDIUM
    fix = (
        "Use nandoctor.layers.MaskedEmbedding (padding outputs exactly zero, and a mask for the "
        "layers that use one), or Embedding(mask_zero=True) with mask-aware layers after it."
    )
    reads_weights = True

    def check(self, view: ModelView) -> Iterator[Finding]:
        for layer in view.layers:
            if not layer.is_embedding or mask_id(layer) is not None:
                continue
            length = view.integer_sequence_length(layer)
            if length is False:
                continue
            zero_padding = _frozen_zero_padding_row(layer)
            for reach in padding_reaches(view, layer, zero_padding):
                if reach.kind not in _POSITION_DEPENDENT or (reach.zero_padding and reach.kind == FLATTEN):
                    continue
                sequences = f"sequences of {length} ids" if length else "integer sequences"
                yield self.finding(
                    layer.name,
                    f"'{layer.name}' embeds {sequences} without a padding mask (mask_zero=False), "
                    f"and {reach.describe()}",
                    details={"consumer": reach.consumer.name, "kind": reach.kind, "via": list(reach.via), "length": length},
                )


def _frozen_zero_padding_row(layer: Layer) -> bool:
    matrix = layer.embedding_matrix()
    if matrix is None or layer.config.get("trainable", True) or len(matrix.shape) != 2:
        return False
    return bool(np.all(matrix.row_norms([0]) == 0))
