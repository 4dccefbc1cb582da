from __future__ import annotations

from collections.abc import Iterator

from nandoctor.analysis.output_activations import output_activation, wrapped_config
from nandoctor.diagnosis import Rule
from nandoctor.report import Confidence, Evidence, Finding, Severity
from nandoctor.view import Layer, ModelView


class UntiedEmbeddings(Rule):
    """## What it does
    Finds an input embedding and an output projection over the same vocabulary that keep
    separate matrices where one shared matrix would do.

    ## Why is this bad?
    A language model embeds `V` token ids into `d` dimensions at its input and predicts a
    distribution over the same `V` tokens at its output. Tying the two matrices (Press and
    Wolf, 2016) removes `V x d` parameters, often the largest block of the model, and
    usually lowers perplexity, since each word's vector is trained by both its uses. Untied
    matrices are also a legitimate design (most large open language models ship untied), so
    the finding is a recommendation at `info`, and a `warning` only where the model shows it
    meant to tie them: a tie flag in its config (`tie_word_embeddings`, `tie_weights`) or a
    layer named for the tie, with two matrices all the same.

    ## Example
    ```python
    import keras

    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(2000, 32, mask_zero=True, name="word_emb")(tokens)
    x = keras.layers.GRU(32, return_sequences=True)(x)
    model = keras.Model(tokens, keras.layers.Dense(2000, activation="softmax", name="next_word")(x))
    ```

    ## Use instead
    ```python
    import keras
    import nandoctor.layers

    tokens = keras.Input((None,), dtype="int32")
    embedding = nandoctor.layers.TiedEmbedding(2000, 32, mask_zero=True, name="word_emb")
    x = keras.layers.GRU(32, return_sequences=True)(embedding(tokens))
    model = keras.Model(tokens, embedding(x, reverse=True))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ```

    ## Known problems
    Two layers over the same number of ids are taken to share a vocabulary; a classifier
    with as many classes as its input has tokens would be reported too.

    ## References
    - Press and Wolf, 2016, "Using the Output Embedding to Improve Language Models",
      arXiv 1608.05859.
    - [Field report B](../field-reports.md).
    """

    code = "ND401"
    evidence = (
        "the config and the weights' shapes. A `warning` needs the model's own word that it meant to tie: a "
        "tie flag set in a config, or a layer named for the tie."
    )
    name = "untied-embeddings"
    severity = Severity.INFO
    evidence_kinds = (Evidence.CERTAIN,)
    confidence = Confidence.MEDIUM
    fix = (
        "Share one matrix with nandoctor.layers.TiedEmbedding (built on keras.layers.ReversibleEmbedding): "
        "embed with it, and call it with reverse=True for the logits."
    )

    def check(self, view: ModelView) -> Iterator[Finding]:
        total = None  # every weight's size, summed only for a finding (most models have none)
        for embedding in view.layers:
            if embedding.class_name != "Embedding":
                continue
            vocabulary, width = embedding.config.get("input_dim"), embedding.config.get("output_dim")
            if not isinstance(vocabulary, int) or not isinstance(width, int):
                continue
            for projection in view.downstream(embedding.name):
                if wrapped_config(projection).get("units") != vocabulary or _input_width(projection) != width:
                    continue
                if not _predicts_a_distribution(view, projection):
                    continue
                saved = vocabulary * width
                if total is None:
                    total = sum(weight.size for weight in view.weights())
                share = f" ({saved / total:.0%} of the model's weights)" if total else ""
                per_position = _per_position(projection)
                kind = "a language model: " if per_position else ""
                intent = _intent_to_tie(view, embedding, projection)
                yield self.finding(
                    projection.name,
                    f"{kind}'{embedding.name}' ({vocabulary:,} x {width}) embeds the vocabulary that '{projection.name}' "
                    f"({width} x {vocabulary:,}) predicts{' at every position' if per_position else ''}, each with its "
                    f"own matrix: tying them saves {saved:,} parameters{share}"
                    + (f"; {intent}, yet the matrices are two" if intent else ""),
                    severity=Severity.WARNING if intent else None,
                    details={
                        "embedding": embedding.name,
                        "projection": projection.name,
                        "vocabulary": vocabulary,
                        "width": width,
                        "parameters_saved": saved,
                        "language_model": per_position,
                    },
                )


# Config keys by which models and their builders say the input and output matrices are one.
_TIE_FLAGS = ("tie_word_embeddings", "tie_weights", "tie_embeddings", "tied_embeddings", "share_embeddings")


def _intent_to_tie(view: ModelView, embedding: Layer, projection: Layer) -> str | None:
    """What in the model says it meant to tie these two (a flag set in a config, a layer named
    for the tie), or None: untied is then a design choice, not a slip."""
    for layer in view.layers:
        flag = next((key for key in _TIE_FLAGS if layer.config.get(key) is True), None)
        if flag is not None:
            return f"'{layer.name}' sets {flag}=True"
    for layer in (embedding, projection):
        if "tie" in layer.name.lower():
            return f"'{layer.name}' is named for a tie"
    return None


def _per_position(projection: Layer) -> bool:
    """The projection predicts the vocabulary at every position of a sequence (its input is
    `(batch, time, width)`): a language model, where tying is the known gain (Press & Wolf)."""
    shape = projection.input_shape
    return shape is not None and len(shape) == 3


def _input_width(layer: Layer) -> int | None:
    for weight in layer.weights:
        if weight.name.endswith("kernel") and len(weight.shape) == 2:
            return weight.shape[0]
    shape = layer.input_shape
    return shape[-1] if shape else None


def _predicts_a_distribution(view: ModelView, projection: Layer) -> bool:
    """The projection feeds a softmax, or is an output trained with a logits loss."""
    for output in view.outputs:
        if output != projection.name and view.path_between(projection.name, output) is None:
            continue
        resolved = output_activation(view, output)
        if resolved is None:
            continue
        activation, _ = resolved
        loss = view.compile.losses.get(output) if view.compile else None
        if activation == "softmax" or (activation == "linear" and loss is not None and loss.from_logits):
            return True
    return False
