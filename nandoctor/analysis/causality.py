"""What a model says about the direction it reads in, from its config alone.

A next-token model must not see the future; a masked language model and an encoder may see
both ways. The config says which where the author said it: a causal mask asked for, a
causal layer or task class, or a masked-LM name (keras-io's `masked_bert_model`, KerasHub's
`BertMaskedLM`, an `mlm_cls` head).
"""

from __future__ import annotations

import re

from nandoctor.analysis.keras_facts import CAUSAL_CLASSES
from nandoctor.view import ModelView

_MASKED_LM = re.compile(r"masked_?(lm|language_?model)|mlm", re.IGNORECASE)


def declares_causality(view: ModelView) -> bool:
    if any(edge.call_kwargs.get("use_causal_mask") is True for edge in view.edges):
        return True
    return any(layer.class_name in CAUSAL_CLASSES or layer.class_name.endswith("CausalLM") for layer in view.layers)


def declares_masked_lm(view: ModelView) -> bool:
    """The model is named a masked language model (its class, its name, or an output's)."""
    names = [view.model_class or "", *(layer.class_name for layer in view.layers if layer.is_model),
             *(layer.name for layer in view.layers if layer.is_model), *view.outputs]
    return any(_MASKED_LM.search(name) for name in names)
