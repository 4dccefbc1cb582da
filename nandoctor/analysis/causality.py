"""What a model says about the direction it reads in, from its config alone.

A next-token model must not see the future; a masked language model and an encoder may see
both ways. The config says which where the author said it: a causal mask asked for, a
causal layer or task class, or a masked-LM name (keras-io's `masked_bert_model`, KerasHub's
`BertMaskedLM`, an `mlm_cls` head).
"""

from __future__ import annotations

import re

from nandoctor.analysis.keras_facts import CAUSAL_CLASSES, TIED_EMBEDDING_CLASSES
from nandoctor.view import ModelView

_MASKED_LM = re.compile(r"masked_?(lm|language_?model)|mlm", re.IGNORECASE)


def token_vocabularies(view: ModelView) -> frozenset[int]:
    """Sizes of the vocabularies embedded from integer token sequences (found once per view:
    ND301 and ND501 ask)."""
    return view.shared(_find_token_vocabularies)


def _find_token_vocabularies(view: ModelView) -> frozenset[int]:
    return frozenset(
        layer.config["input_dim"]
        for layer in view.embeddings()
        if isinstance(layer.config.get("input_dim"), int) and view.integer_sequence_length(layer) is not False
    )


def predicts_its_vocabulary(view: ModelView) -> bool:
    """An output layer projects onto a vocabulary the model embeds its token ids from: a
    language model (the next word of a window, or a token at every position)."""
    vocabularies = token_vocabularies(view)
    for name in view.outputs:
        layer = view.layer(name)
        if layer is not None and (
            layer.config.get("units") in vocabularies or layer.class_name in TIED_EMBEDDING_CLASSES
        ):
            return True
    return False


# Config keys by which layers (a user's wrapper around attention too) say they are causal.
CAUSAL_FLAGS = ("causal", "use_causal_mask", "is_causal")


def declares_causality(view: ModelView) -> bool:
    if any(edge.call_kwargs.get("use_causal_mask") is True for edge in view.edges):
        return True
    if any(layer.config.get(flag) is True for layer in view.layers for flag in CAUSAL_FLAGS):
        return True
    return any(layer.class_name in CAUSAL_CLASSES or layer.class_name.endswith("CausalLM") for layer in view.layers)


def declares_masked_lm(view: ModelView) -> bool:
    """The model is named a masked language model (its class, its name, or an output's)."""
    names = [
        view.model_class or "",
        view.model_name or "",
        *(layer.class_name for layer in view.layers if layer.is_model),
        *(layer.name for layer in view.layers if layer.is_model),
        *view.outputs,
    ]
    return any(_MASKED_LM.search(name) for name in names)
