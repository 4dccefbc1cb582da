from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nandoctor.analysis.keras_facts import TIED_EMBEDDING_CLASSES
from nandoctor.analysis.padding_flow import (
    ATTENDING,
    AVERAGE,
    FLATTEN,
    MAXIMUM,
    RECURRENCE,
    mask_id,
    padding_reaches,
    reads_unpadded_windows,
)
from nandoctor.diagnosis import Rule, plural
from nandoctor.report import Confidence, Evidence, Finding, Severity
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
    A causal model (a causal mask, a causal layer or task) that shows no padding, no mask and
    no padding id in its config, often reads unpadded windows of a stream: there the finding
    is `info`, once per embedding.
    Float inputs (one-hot vectors, features) are not checked, since a zero vector there may be
    a real value. A frozen embedding whose padding row is exactly zero is harmless before
    Flatten and is not reported there.

    ## References
    - [Field report D](../field-reports.md).
    - Keras guide "Understanding masking & padding".
    """

    code = "ND301"
    evidence = (
        "the config (the embedding, its mask and the layers it reaches). The data is not in the file: a "
        "causal model that shows no padding gets `info`, low confidence; `check()`'s padding probe "
        "measures the leak, at `info` when nothing says id 0 is padding."
    )
    name = "padding-not-masked"
    severity = Severity.WARNING
    evidence_kinds = (Evidence.CERTAIN, Evidence.INFERRED, Evidence.MEASURED)
    confidence = Confidence.MEDIUM
    fix = (
        "Use nandoctor.layers.MaskedEmbedding (padding outputs exactly zero, and a mask for the "
        "layers that use one), or Embedding(mask_zero=True) with mask-aware layers after it."
    )
    reads_weights = True

    def check(self, view: ModelView) -> Iterator[Finding]:
        for layer in view.embeddings():
            if mask_id(layer) is not None:
                continue
            length = view.integer_sequence_length(layer)
            if length is False:
                continue
            zero_padding = _frozen_zero_padding_row(layer)
            reaches = [
                reach
                for reach in padding_reaches(view, layer, zero_padding)
                if reach.kind in _POSITION_DEPENDENT and not (reach.zero_padding and reach.kind == FLATTEN)
            ]
            if not reaches:
                continue
            # A causal model reads fixed windows of a stream more often than padded texts: with
            # no sign of padding, that it leaks is a possibility to know of, not a likely cost.
            # Asked only here, where there is a finding (most files have none).
            unsure = view.shared(reads_unpadded_windows)
            sequences = f"sequences of {length} ids" if length else "integer sequences"
            message = f"'{layer.name}' embeds {sequences} without a padding mask (mask_zero=False), and {reaches[0].describe()}"
            if len(reaches) > 1:
                message += f" (and {plural(len(reaches) - 1, 'more layer')} that mix positions)"
            if unsure:
                message += "; the model is causal and shows no padding (no mask, no padding id): if its windows are never padded, nothing leaks"
            # A frozen zero row read by a maximum (directly, or through a convolution,
            # whose bias is the same at every padded position) gives the same value at every
            # padded position: a constant floor, not a leak that varies with the padding.
            constant = zero_padding and all(reach.kind == MAXIMUM for reach in reaches)
            if constant:
                message += (
                    f"; its padding row is exactly zero and frozen, so padding gives the same value at "
                    f"every padded position, a constant that {reaches[0].consumer.class_name} can learn around"
                )
            tied = layer.class_name in TIED_EMBEDDING_CLASSES
            yield self.finding(
                layer.name,
                message,
                # Causal windows that show no padding, or custom code on the way (it may mask
                # the positions itself): a guess. A frozen zero padding row: a constant, known.
                severity=Severity.INFO if unsure or constant else None,
                evidence=Evidence.INFERRED if unsure or reaches[0].unseen else Evidence.CERTAIN,
                confidence=Confidence.LOW if unsure else None,
                fix=_TIED_FIX if tied else None,
                details={
                    "consumer": reaches[0].consumer.name,
                    "kind": reaches[0].kind,
                    "via": list(reaches[0].via),
                    "length": length,
                    "consumers": [reach.consumer.name for reach in reaches],
                },
            )


_TIED_FIX = (
    "Give the tied embedding mask_zero=True (TiedEmbedding(..., mask_zero=True) keeps the tie), with "
    "mask-aware layers after it."
)


def _frozen_zero_padding_row(layer: Layer) -> bool:
    matrix = layer.embedding_matrix()
    if matrix is None or layer.config.get("trainable", True) or len(matrix.shape) != 2:
        return False
    return bool(np.all(matrix.row_norms([0]) == 0))
