from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from nandoctor.analysis.causality import declares_masked_lm, token_vocabularies
from nandoctor.analysis.keras_facts import (
    ATTENTION,
    MASK_CARRIERS,
    QUERY_VALUE_ATTENTION,
    RECURRENT,
    TIED_EMBEDDING_CLASSES,
)
from nandoctor.analysis.output_activations import wrapped_config
from nandoctor.diagnosis import Rule
from nandoctor.report import Evidence, Finding, Severity
from nandoctor.view import Edge, Layer, ModelView

_QUERY, _VALUE = ("0", "query"), ("1", "value")
# Layers after which each position still holds its own prediction.
_PER_POSITION = MASK_CARRIERS | ATTENTION | TIED_EMBEDDING_CLASSES | {"EinsumDense", "Embedding"}
# Layers whose output is next-token logits by construction: the loss is added inside them.
_NEXT_TOKEN_OBJECTIVES = {"AuxiliaryLosses"}


class MissingCausalMask(Rule):
    """## What it does
    Finds self-attention in a next-token model (token ids in, a distribution over the
    vocabulary out at every position) called without a causal mask.

    ## Why is this bad?
    A language model learns to predict the token after each position. Without
    `use_causal_mask=True` (or an explicit `attention_mask`), `MultiHeadAttention` lets
    every position attend to the whole window, the next token included: training loss
    drops to implausibly low values because the model copies the answer, and the model is
    useless for generation, where the future is not there to copy (field report E's
    models rely on this mask).

    ## Example
    ```python
    import keras
    import nandoctor.layers

    tokens = keras.Input((16,), dtype="int32")
    embedding = nandoctor.layers.TiedEmbedding(100, 32, mask_zero=True, name="tokens")
    x = embedding(tokens)
    x = keras.layers.Add()([x, keras.layers.MultiHeadAttention(4, 8, name="attention")(x, x)])
    model = keras.Model(tokens, embedding(x, reverse=True))
    ```

    ## Use instead
    ```python
    import keras
    import nandoctor.layers

    tokens = keras.Input((16,), dtype="int32")
    embedding = nandoctor.layers.TiedEmbedding(100, 32, mask_zero=True, name="tokens")
    x = embedding(tokens)
    attended = keras.layers.MultiHeadAttention(4, 8, name="attention")(x, x, use_causal_mask=True)
    x = keras.layers.Add()([x, attended])
    model = keras.Model(tokens, embedding(x, reverse=True))
    ```

    `nandoctor.layers.CausalSelfAttention` is a whole decoder block whose attention is
    always causal.

    ## Known problems
    Attention written in a custom layer or Lambda is code the scan cannot see (ND901); the
    live causal probe checks it. Encoders that attend both ways and then pool (classifiers)
    are not next-token models and are not reported; neither is the encoder of a translation
    model, whose output reaches the vocabulary only as the keys and values of the decoder's
    cross-attention, nor a model named a masked language model (`BertMaskedLM`, an `mlm`
    head), which predicts masked tokens from both sides by design.

    ## References
    - Vaswani et al., 2017, section 3.2.3 (masking in the decoder).
    - [Field report E](../field-reports.md).
    """

    code = "ND501"
    evidence = (
        "the config: Keras's attention layers, their call arguments, and the path to the outputs. "
        "Attention inside custom layers is unseen (ND901, info); `check()`'s causal probe measures it."
    )
    name = "missing-causal-mask"
    severity = Severity.ERROR
    evidence_kinds = (Evidence.CERTAIN, Evidence.INFERRED, Evidence.MEASURED)
    fix = (
        "Call the attention with use_causal_mask=True, or build the decoder from "
        "nandoctor.layers.CausalSelfAttention, whose attention is always causal."
    )

    def check(self, view: ModelView) -> Iterator[Finding]:
        if declares_masked_lm(view):
            return  # trained to see both ways: every position predicts a masked token
        for layer in view.layers:
            if layer.class_name not in QUERY_VALUE_ATTENTION:
                continue
            edges = view.producers(layer.name)
            if _is_causal(edges) or not _is_self_attention(edges):
                continue
            output = _next_token_output(view, layer)
            if output is None:
                continue
            yield self.finding(
                layer.name,
                f"self-attention '{layer.name}' is called without use_causal_mask=True or an attention_mask, "
                f"in a next-token model: each position sees the tokens after it, including the one that "
                f"output '{output.name}' must predict",
                details={"output": output.name, "call_kwargs": edges[0].call_kwargs if edges else {}},
            )


def _is_causal(edges: list[Edge]) -> bool:
    return any(edge.call_kwargs.get("use_causal_mask") is True or edge.argument == "attention_mask" for edge in edges)


def _is_self_attention(edges: list[Edge]) -> bool:
    query = {edge.source for edge in edges if edge.argument in _QUERY}
    value = {edge.source for edge in edges if edge.argument in _VALUE}
    return bool(query) and query == value


def _next_token_output(view: ModelView, attention: Layer) -> Layer | None:
    """The model output that the attention reaches position by position and that projects
    onto a token vocabulary, if there is one."""
    vocabularies = token_vocabularies(view)
    outputs = set(view.outputs)
    seen = {attention.name}
    queue = deque([attention])
    while queue:
        layer = queue.popleft()
        if layer.name in outputs and layer is not attention:
            units = wrapped_config(layer).get("units")
            is_reverse = layer.class_name in TIED_EMBEDDING_CLASSES
            if is_reverse or units in vocabularies or layer.class_name in _NEXT_TOKEN_OBJECTIVES:
                return layer
        for edge in view.consumers(layer.name):
            following = view.layer(edge.target)
            if following is None or following.name in seen:
                continue
            if following.class_name in QUERY_VALUE_ATTENTION and edge.argument not in _QUERY:
                # Read as the keys and values of a cross-attention (an encoder's output in a
                # translation model): the output's positions are the query's, not these.
                continue
            if following.class_name in _PER_POSITION | _NEXT_TOKEN_OBJECTIVES or (
                following.class_name in RECURRENT and wrapped_config(following).get("return_sequences")
            ):
                seen.add(following.name)
                queue.append(following)
    return None
