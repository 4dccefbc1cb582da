"""Where padding goes: what Keras layers do to padded positions and to the padding mask.

The facts come from Keras 3.15's source (which layers set `supports_masking`, which take
a `mask` in `call`) and hold for Keras 2 files too. A walk follows an embedding's output
through layers that act on each position alone, and stops at each layer whose result
mixes positions, noting whether the padding mask was still alive there and, if not,
which layer dropped it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from nandoctor.analysis.causality import declares_causality, predicts_its_vocabulary
from nandoctor.analysis.keras_facts import (
    ATTENTION,
    LOCAL_MIXERS,
    MASK_CARRIERS,
    PADDING_SAFE_EMBEDDINGS,
    RECURRENT,
    ZERO_PRESERVING,
    is_known_class,
)
from nandoctor.view import Layer, ModelView

# What each position-mixing layer does with padding that reaches it unmasked.
FLATTEN, AVERAGE, MAXIMUM, SUM, RECURRENCE, ATTENDING, OPAQUE = (
    "flatten",
    "average",
    "maximum",
    "sum",
    "recurrent",
    "attention",
    "opaque",
)
WHY = {
    FLATTEN: "lays every position, padding included, side by side as features of the next layer",
    AVERAGE: "averages over every position, padding included",
    MAXIMUM: "takes its maximum over padded positions too",
    SUM: "adds up every position, padding included",
    RECURRENCE: "runs its state over the padding, so the final state summarises padding",
    ATTENDING: "gives attention weight to padded positions",
    OPAQUE: "is code the scan cannot see, given every position, padding included",
}
# Kinds whose layers would use a live mask correctly.
MASK_USING = frozenset({AVERAGE, RECURRENCE, ATTENDING})


@dataclass(frozen=True)
class PaddingReach:
    """Padding reaches `consumer`, a layer whose result mixes positions, without a live mask."""

    consumer: Layer
    kind: str
    dropped_by: Layer | None = None  # the layer that silently dropped a mask, if there was one
    via: tuple[str, ...] = ()  # local mixers (convolutions) on the way
    zero_padding: bool = False  # the padding vectors were still exactly zero there
    # Code the scan cannot see stands on the way (or is the consumer): it may mask, weight or
    # zero the padded positions itself, so what reaches the consumer is a guess.
    unseen: bool = False

    @property
    def why(self) -> str:
        return WHY[self.kind]

    def describe(self) -> str:
        through = f" (through {', '.join(repr(name) for name in self.via)})" if self.via else ""
        return f"{self.consumer.class_name} '{self.consumer.name}'{through}, which {self.why}"


def mixing_kind(layer: Layer) -> str | None:
    """What kind of position mixing `layer` does, or None for a per-position layer."""
    cls = layer.class_name
    if cls == "Flatten":
        return FLATTEN
    if cls == "GlobalAveragePooling1D":
        return AVERAGE
    if cls == "GlobalMaxPooling1D":
        return MAXIMUM
    if cls in RECURRENT:
        return RECURRENCE
    if cls in ATTENTION:
        return ATTENDING
    if _reduces_time(layer):
        return SUM
    if cls == "Lambda" or not is_known_class(cls, layer.module):
        return OPAQUE
    return None


def _reduces_time(layer: Layer) -> bool:
    """`keras.ops.sum/mean(x, axis=1)` saved as an op (Keras 3), or `tf.reduce_sum` (Keras 2)."""
    config = layer.config
    if layer.class_name in ("Sum", "Mean") and (layer.module or "").startswith("keras"):
        return config.get("axis") in (1, -2, [1], [-2])
    return layer.class_name == "TFOpLambda" and config.get("function") in (
        "math.reduce_sum",
        "math.reduce_mean",
        "reduce_sum",
        "reduce_mean",
    )


def mask_id(layer: Layer) -> int | None:
    """The padding id whose positions the layer masks, or None when it emits no mask."""
    if layer.class_name in PADDING_SAFE_EMBEDDINGS:
        value = layer.config.get("mask_id", 0)
        return value if isinstance(value, int) else 0
    return 0 if layer.config.get("mask_zero") else None


def _returns_sequences(layer: Layer) -> bool:
    config: dict[str, Any] = layer.config
    if layer.class_name == "Bidirectional" and isinstance(config.get("layer"), dict):
        config = config["layer"].get("config") or {}
    return bool(config.get("return_sequences")) or layer.class_name in ATTENTION


def padding_reaches(view: ModelView, embedding: Layer, zero_padding: bool = False) -> tuple[PaddingReach, ...]:
    """Every position-mixing layer that the embedding's padded positions reach unmasked.

    `zero_padding` says the padding vectors are exact zeros (a MaskedEmbedding, or a frozen
    table whose padding row is zero); layers that keep zeros zero are tracked. Walked once per
    view and embedding: ND301, ND302 and ND303 each ask.
    """
    if view.layer(embedding.name) is not embedding:  # a name two layers share: not remembered by it
        return _walk_padding(view, embedding, zero_padding)
    return view.shared(_walk_padding_of_named, embedding.name, zero_padding)


def _walk_padding_of_named(view: ModelView, name: str, zero_padding: bool) -> tuple[PaddingReach, ...]:
    embedding = view.layer(name)
    assert embedding is not None  # `padding_reaches` checked it is the view's
    return _walk_padding(view, embedding, zero_padding)


def _walk_padding(view: ModelView, embedding: Layer, zero_padding: bool) -> tuple[PaddingReach, ...]:
    alive = mask_id(embedding) is not None
    zero = zero_padding or embedding.class_name in PADDING_SAFE_EMBEDDINGS
    reaches: list[PaddingReach] = []
    seen: set[tuple[str, bool]] = set()
    # state: layer name, mask alive, layer that dropped it, local mixers passed, padding still
    # zero, custom code passed
    queue: deque[tuple[str, bool, Layer | None, tuple[str, ...], bool, bool]] = deque(
        [(embedding.name, alive, None, (), zero, False)]
    )
    while queue:
        name, alive, dropped_by, via, zero, unseen = queue.popleft()
        for edge in view.consumers(name):
            layer = view.layer(edge.target)
            if layer is None or (layer.name, alive) in seen:
                continue
            seen.add((layer.name, alive))
            kind = mixing_kind(layer)
            if kind is not None:
                if alive and kind in MASK_USING:
                    if _returns_sequences(layer):  # used the mask, and carries it on
                        queue.append((layer.name, True, None, (), False, unseen))
                    continue
                lost_here = layer if alive else dropped_by
                reaches.append(PaddingReach(layer, kind, lost_here, via, zero, unseen or kind == OPAQUE))
                if kind == OPAQUE:  # assume it acts per position; Keras drops the mask there
                    queue.append((layer.name, False, lost_here, via, False, True))
            elif layer.class_name in LOCAL_MIXERS:
                queue.append((layer.name, False, layer if alive else dropped_by, (*via, layer.name), False, unseen))
            elif layer.class_name == "Masking":
                queue.append((layer.name, True, None, via, zero, unseen))
            elif layer.class_name in MASK_CARRIERS:
                queue.append((layer.name, alive, dropped_by, via, zero and layer.class_name in ZERO_PRESERVING, unseen))
    return tuple(reaches)


# Config keys by which tokenizers and models name their padding id.
_PADDING_KEYS = ("pad_token_id", "padding_idx", "pad_id", "padding_id", "mask_token")


def shows_padding(view: ModelView) -> bool:
    """The config names a padding id, a padding-mask input, or a vectorizer that pads."""
    for layer in view.layers:
        if any(layer.config.get(key) is not None for key in _PADDING_KEYS):
            return True
        if "padding_mask" in layer.name or (
            layer.class_name == "TextVectorization" and layer.config.get("output_sequence_length")
        ):
            return True
    return False


def reads_unpadded_windows(view: ModelView) -> bool:
    """A language model (causal, or predicting its own vocabulary) that shows no padding: it
    reads fixed windows of a stream more often than padded texts, so Keras's convention that
    id 0 is padding is no evidence there. Anywhere else, integer token ids into an embedding
    follow it (`pad_sequences` pads with 0, `TextVectorization` reserves 0, `mask_zero` masks 0)."""
    return (declares_causality(view) or predicts_its_vocabulary(view)) and not shows_padding(view)
