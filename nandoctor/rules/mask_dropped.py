from __future__ import annotations

from collections.abc import Iterator

from nandoctor.analysis.padding_flow import (
    MASK_USING,
    OPAQUE,
    mask_id,
    mixing_kind,
    padding_reaches,
)
from nandoctor.diagnosis import Rule
from nandoctor.report import Confidence, Evidence, Finding, Severity
from nandoctor.view import ModelView


class MaskDropped(Rule):
    """## What it does
    Finds padding masks that a layer silently drops before a layer that would have used
    them.

    ## Why is this bad?
    A mask made by `Embedding(mask_zero=True)` or `Masking` travels only through layers that
    support masking. Flatten, Conv1D, GlobalMaxPooling1D, Reshape, a Lambda without a
    `mask` argument, or a custom layer (a hand-written position embedding, say) without
    `supports_masking = True`, drop it without a word. The recurrent layer, attention or
    global average after it then treats padding as data, although the model was written to
    mask it.

    ## Example
    ```python
    import keras

    model = keras.Sequential([
        keras.Input((50,), dtype="int32"),
        keras.layers.Embedding(1000, 16, mask_zero=True, name="embedding"),
        keras.layers.Conv1D(16, 3, padding="same", name="conv"),
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
        keras.layers.Dense(16, activation="relu", name="per_token"),
        keras.layers.LSTM(8, name="lstm"),
        keras.layers.Dense(2, activation="softmax"),
    ])
    ```

    ## Known problems
    Whether a custom layer or a Lambda keeps the mask (`supports_masking`, its own
    `compute_mask`) is in its code, which the saved config does not record: the scan reports it
    at `info`, low confidence, saying it cannot see; `nandoctor.check` reads the live layer and
    withdraws the finding, or makes it a warning with the evidence.

    ## References
    - Keras guide "Understanding masking & padding".
    """

    code = "ND302"
    evidence = (
        "the config, where every layer on the way is Keras's own. Through a custom layer or Lambda it is "
        "`info`, low confidence, saying the code is unseen; `check()` reads the live layer and withdraws "
        "or confirms it."
    )
    name = "mask-dropped"
    severity = Severity.WARNING
    evidence_kinds = (Evidence.CERTAIN, Evidence.INFERRED, Evidence.MEASURED)
    fix = (
        "Keep mask-aware layers between the embedding and the layer that needs the mask (give "
        "a custom layer supports_masking=True), or use nandoctor.layers.MaskedEmbedding so that "
        "padding is exactly zero even where the mask is lost."
    )

    def check(self, view: ModelView) -> Iterator[Finding]:
        for layer in view.layers:
            if mask_id(layer) is None and layer.class_name != "Masking":
                continue
            for reach in padding_reaches(view, layer):
                if reach.dropped_by is None or reach.kind not in MASK_USING:
                    continue
                dropper = reach.dropped_by
                details = {"mask_from": layer.name, "dropped_by": dropper.name, "consumer": reach.consumer.name}
                if mixing_kind(dropper) == OPAQUE:
                    # Whether custom code keeps the mask (supports_masking, compute_mask) is
                    # not in the file: said at info, and settled by check() on the live layer.
                    yield self.finding(
                        dropper.name,
                        f"{dropper.class_name} '{dropper.name}' is code the scan cannot see: whether it keeps the "
                        f"padding mask of '{layer.name}' for {reach.consumer.class_name} '{reach.consumer.name}' "
                        "(supports_masking, or a compute_mask) is unknown; nandoctor.check on the live model settles it",
                        severity=Severity.INFO,
                        confidence=Confidence.LOW,
                        details={**details, "opaque": True},
                        evidence=Evidence.INFERRED,
                    )
                    continue
                yield self.finding(
                    dropper.name,
                    f"{dropper.class_name} '{dropper.name}' does not support masking and drops the padding "
                    f"mask of '{layer.name}' before {reach.consumer.class_name} '{reach.consumer.name}', "
                    f"which then {reach.why}",
                    details=details,
                )
