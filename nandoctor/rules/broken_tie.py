from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nandoctor.analysis.keras_facts import (
    HAND_WRITTEN_TIE_KEYS,
    MODEL_CLASSES,
    TIE_CONFIG_KEYS,
    TIE_NOT_SAVED_BY,
    TIED_EMBEDDING_CLASSES,
    looks_like_hand_written_tie,
)
from nandoctor.analysis.matrix_comparison import correlation, max_abs_difference
from nandoctor.diagnosis import Rule
from nandoctor.report import Confidence, Evidence, Finding, Severity
from nandoctor.view import Layer, ModelView, Weight

# Independent random matrices correlate near 0; a copy that training moved stays far above this.
_TRAINED_APART = 0.9


class BrokenTie(Rule):
    """## What it does
    Finds weight ties that a model declares but its file does not keep: an output matrix
    stored apart from the embedding it is tied to, with other values, or not stored at all.

    ## Why is this bad?
    The common hand-written tie (field report B) is an output layer that holds a Python
    reference to the embedding layer and multiplies by its transpose. It trains, but the
    reference is not part of the saved config: reloading either fails or builds the layer
    with a fresh matrix of its own, so the model that comes back is not the model that was
    trained, and whatever training follows unties it. A file that stores the shared matrix
    twice with different values has already come apart.

    ## Example
    ```python
    import keras

    @keras.saving.register_keras_serializable(package="example")
    class TiedEmbeddingsTransposed(keras.layers.Layer):
        def __init__(self, tied_to=None, **kwargs):
            super().__init__(**kwargs)
            self.tied_to = tied_to

        def call(self, x):
            return keras.ops.matmul(x, keras.ops.transpose(self.tied_to.embeddings))

        def get_config(self):  # a layer reference cannot be serialized, so it is left out
            return super().get_config()

    tokens = keras.Input((8,), dtype="int32")
    embedding = keras.layers.Embedding(500, 16, name="word_emb")
    logits = TiedEmbeddingsTransposed(tied_to=embedding, name="tied_output")(embedding(tokens))
    model = keras.Model(tokens, logits)
    ```

    ## Use instead
    ```python
    import keras
    import nandoctor.layers

    tokens = keras.Input((8,), dtype="int32")
    embedding = nandoctor.layers.TiedEmbedding(500, 16, name="word_emb")
    model = keras.Model(tokens, embedding(embedding(tokens), reverse=True))
    ```

    ## Known problems
    Hand-written ties are recognised by their class name (`Tied...`, `...Transpose`) or a
    `tied_to`-style config key; a tie written under another name is not seen.

    ## References
    - [Field report B](../field-reports.md); Keras issues on shared weights duplicated or not
      restored on save and load.
    """

    code = "ND402"
    evidence = (
        "the config and the weights (the matrices compared block by block); a hand-written tie known only "
        "by its class name is medium confidence. `check()` proves it with a save, reload and training "
        "step."
    )
    name = "broken-tie"
    severity = Severity.ERROR
    evidence_kinds = (Evidence.CERTAIN, Evidence.MEASURED, Evidence.INFERRED)
    fix = (
        "Tie with nandoctor.layers.TiedEmbedding (keras.layers.ReversibleEmbedding with the tie on): "
        "one matrix in the file, still tied after reloading and further training."
    )
    reads_weights = True

    def check(self, view: ModelView) -> Iterator[Finding]:
        for layer in view.layers:
            if layer.class_name in TIED_EMBEDDING_CLASSES and _declares_tie(layer):
                yield from self._stored_twice(layer)
            elif not layer.is_model and looks_like_hand_written_tie(layer.class_name, layer.module, layer.config):
                yield from self._hand_written(view, layer)
        yield from self._trained_apart(view)
        yield from self._tie_not_saved(view)

    def _tie_not_saved(self, view: ModelView) -> Iterator[Finding]:
        """A tied KerasHub embedding (one matrix stored) inside a backbone whose config does
        not record the tie and whose class rebuilds it untied by default."""
        for layer in view.layers:
            if (
                layer.class_name not in TIED_EMBEDDING_CLASSES
                or len([w for w in layer.weights if len(w.shape) == 2]) != 1
            ):
                continue
            backbone = _enclosing_backbone(view, layer)
            if backbone is None:
                continue
            class_name, config = backbone
            if class_name in TIE_NOT_SAVED_BY and not any(key in config for key in TIE_CONFIG_KEYS):
                yield self.finding(
                    layer.name,
                    f"'{layer.name}' is tied (the file stores one matrix), but {class_name}'s config does not record "
                    "tie_word_embeddings, whose default is False: Keras rebuilds the backbone untied, expects two "
                    "matrices, and cannot load this file back",
                    fix="Save the weights and rebuild the model in code with tie_word_embeddings=True, or untie it "
                    "before saving; the KerasHub class does not save the argument.",
                    details={"backbone": class_name, "stored_matrices": 1},
                )

    def _trained_apart(self, view: ModelView) -> Iterator[Finding]:
        """An output Dense whose kernel is the embedding's transpose in pattern but not in value:
        it was set from the embedding (a tie by copy, or a tie lost on reload), then trained apart."""
        for embedding in view.layers:
            matrix = embedding.embedding_matrix() if embedding.class_name == "Embedding" else None
            if matrix is None or len(matrix.shape) != 2:
                continue
            for projection in view.downstream(embedding.name):
                if projection.class_name != "Dense":
                    continue
                kernel = next((w for w in projection.weights if len(w.shape) == 2), None)
                if kernel is None or tuple(kernel.shape) != tuple(reversed(matrix.shape)):
                    continue
                r = correlation(matrix, kernel, transposed=True)
                if not r > _TRAINED_APART or max_abs_difference(matrix, kernel, transposed=True) == 0:
                    continue
                yield self.finding(
                    projection.name,
                    f"'{projection.name}' {tuple(kernel.shape)} is the transpose of '{embedding.name}' in pattern "
                    f"(correlation {r:.3f}) but not in value: tied once, then trained apart. Two matrices that "
                    "should be one",
                    severity=Severity.WARNING,
                    details={"embedding": embedding.name, "correlation": r},
                )

    def _stored_twice(self, layer: Layer) -> Iterator[Finding]:
        matrices = [w for w in layer.weights if len(w.shape) == 2]
        if len(matrices) < 2:
            return
        first, second = matrices[:2]
        difference = max_abs_difference(first, second, transposed=tuple(second.shape) != tuple(first.shape))
        if difference > 0:
            yield self.finding(
                layer.name,
                f"'{layer.name}' declares its input and output matrices tied, but the file stores two, "
                f"{first.name} {tuple(first.shape)} and {second.name} {tuple(second.shape)}, which differ "
                f"(max |difference| {difference:.3g})",
                details={"weights": [first.name, second.name], "max_abs_difference": difference},
            )

    def _hand_written(self, view: ModelView, layer: Layer) -> Iterator[Finding]:
        embedding = _tie_target(view, layer)
        target = f"'{embedding.name}'" if embedding else "an embedding"
        stored = next((w for w in layer.weights if len(w.shape) == 2), None)
        details: dict[str, Any] = {"class_name": layer.class_name, "embedding": embedding.name if embedding else None}
        if stored is None:
            if not view.has_config:
                # A weights file only: the user's code rebuilds the model, and the reference with
                # it; the one matrix the file holds is the tie.
                return
            # Inside a subclassed model, the model's own code makes the reference again when
            # Keras rebuilds it from the file: whether the tie survives is that code's (the tie
            # probe's round trip settles it). In a functional model, only the config can.
            in_code = _inside_subclassed_model(view, layer)
            yield self.finding(
                layer.name,
                f"'{layer.name}' ({layer.class_name}) ties its output to {target} through a Python reference, "
                + (
                    "which the subclassed model's own code may make again on reload (code the scan cannot see)"
                    if in_code
                    else "which the saved file does not hold: reloading cannot restore the tie"
                ),
                confidence=Confidence.MEDIUM,
                evidence=Evidence.INFERRED if in_code else Evidence.CERTAIN,
                details=details,
            )
            return
        matrix = embedding.embedding_matrix() if embedding else None
        if matrix is None:
            return
        difference = _difference(matrix, stored)
        details["max_abs_difference"] = difference
        if difference > 0:
            yield self.finding(
                layer.name,
                f"'{layer.name}' ({layer.class_name}) declares a tie to {target}, but stores its own matrix "
                f"{tuple(stored.shape)}, which differs from the embedding (max |difference| {difference:.3g})",
                details=details,
            )
        else:
            yield self.finding(
                layer.name,
                f"'{layer.name}' ({layer.class_name}) stores its own copy of {target}'s matrix: equal now, "
                "but reloaded they are two variables that training moves apart",
                severity=Severity.WARNING,
                details=details,
            )


def _inside_subclassed_model(view: ModelView, layer: Layer) -> bool:
    parent = view.layer(layer.parent) if layer.parent else None
    return parent is not None and parent.is_model and parent.class_name not in MODEL_CLASSES


def _enclosing_backbone(view: ModelView, layer: Layer) -> tuple[str, dict] | None:
    """(class, config) of the KerasHub backbone holding `layer`: the parent itself (a preset's
    config.json is the backbone's) or the `backbone` a task's config nests."""
    parent = view.layer(layer.parent) if layer.parent else None
    while parent is not None:
        if parent.class_name.endswith("Backbone") and parent.config:
            return parent.class_name, parent.config
        grand = view.layer(parent.parent) if parent.parent else None
        nested = grand.config.get("backbone") if grand is not None else None
        if isinstance(nested, dict) and nested.get("class_name") == parent.class_name:
            config = nested.get("config")
            return parent.class_name, config if isinstance(config, dict) else {}
        parent = grand
    return None


def _declares_tie(layer: Layer) -> bool:
    """`tie_weights` as the config says (Keras writes it; nandoctor's TiedEmbedding is always
    tied). A layer known only from a weight path inside a KerasHub backbone has no config:
    there, a second matrix is `reverse_embeddings`, which Keras creates only when untied
    (Llama, Mistral and Phi3 are untied by design), so two matrices declare nothing."""
    return bool(layer.config.get("tie_weights", bool(layer.config)))


def _tie_target(view: ModelView, layer: Layer) -> Layer | None:
    """The embedding a hand-written tie refers to: named in its config, else the nearest
    embedding upstream."""
    for key in HAND_WRITTEN_TIE_KEYS:
        named = layer.config.get(key)
        if isinstance(named, str) and view.layer(named) is not None:
            return view.layer(named)
    embeddings = [other for other in view.embeddings() if view.path_between(other.name, layer.name)]
    return embeddings[-1] if embeddings else None


def _difference(matrix: Weight, stored: Weight) -> float:
    if tuple(stored.shape) == tuple(matrix.shape):
        return max_abs_difference(matrix, stored)
    return max_abs_difference(matrix, stored, transposed=True)
