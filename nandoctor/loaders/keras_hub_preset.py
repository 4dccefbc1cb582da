"""What a KerasHub preset directory adds to an unzipped model (`task.save_to_preset(dir)`):
`metadata.json` naming the KerasHub version, the backbone's `config.json` and weights, the
task's `task.json` (its class) and `task.weights.h5` (its head), the preprocessor's
`preprocessor.json` (the sequence length it feeds), and the tokenizer's vocabulary in
`assets/tokenizer/`, which names the rows of the token embedding (so zero rows are told by
their tokens, as in word2vec files). Read as data only: JSON and plain text files, size-limited."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from nandoctor.errors import UnreadableFile

if TYPE_CHECKING:
    from nandoctor.view import ModelView

# `is_preset` runs on every folder a scan walks: the view (numpy) is imported when a preset is read.

# `is_preset` runs on every folder a scan walks: what reads weights (h5py) is imported only
# when a preset is described.
_MAX_VOCABULARY_BYTES = 256 << 20
_TASK_CONFIG, _TASK_WEIGHTS, _PREPROCESSOR_CONFIG = "task.json", "task.weights.h5", "preprocessor.json"
# The vocabulary files KerasHub tokenizers save: BPE's token -> id map, WordPiece's lines.
_VOCABULARY_FILES = ("assets/tokenizer/vocabulary.json", "assets/tokenizer/vocabulary.txt")


def is_preset(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "config.json")) and keras_hub_version(path) is not None


def keras_hub_version(path: str) -> str | None:
    """The KerasHub version a preset directory's metadata.json names, or None."""
    metadata = _small_json(os.path.join(path, "metadata.json"))
    version = metadata.get("keras_hub_version") if isinstance(metadata, dict) else None
    return version if isinstance(version, str) else None


def describe_preset(view: ModelView, path: str, version: str) -> None:
    """Name the token embedding's rows by the vocabulary, and say what the scan cannot judge."""
    view.format = "keras-hub-preset"
    tokens = _vocabulary(path)
    table = _token_table(view, len(tokens) if tokens else None)
    if tokens and table is not None:
        table.source.labels = tokens
    elif not tokens:
        view.notes.append(
            "the tokenizer's vocabulary is not a plain file here (a SentencePiece model?): "
            "zero rows are named by id only"
        )
    _attach_task(view, path)
    view.fed_sequence_length = _preprocessed_length(path)
    task = f" of a {view.model_class}" if view.model_class else ""
    view.notes.append(
        f"a KerasHub {version} preset{task}: its backbone's layers are KerasHub's code, read from "
        "their weights; rules that follow the graph (masks, causal masks) cannot judge inside it, "
        "and `nandoctor.check` on the loaded model can"
    )


def _attach_task(view: ModelView, path: str) -> None:
    """The task (`task.json`: its class says what the model is for, a `GPT2CausalLM` a
    next-token model) as the model holding the backbone, and the task's own layers (a
    classifier's head, in `task.weights.h5`) under it, so that the weight-level rules read them."""
    from nandoctor.view import Layer

    task = _small_json(os.path.join(path, _TASK_CONFIG))
    class_name = task.get("class_name") if isinstance(task, dict) else None
    config = task.get("config") if isinstance(task, dict) else None
    name = config.get("name") if isinstance(config, dict) else None
    task_name = name if isinstance(name, str) and name else "task"
    if isinstance(class_name, str) and class_name:
        module = task.get("module")
        view.layers.insert(
            0,
            Layer(
                name=task_name,
                class_name=class_name,
                is_model=True,
                module=module if isinstance(module, str) else "keras_hub",
            ),
        )
        view.model_class = class_name
    weights = os.path.join(path, _TASK_WEIGHTS)
    if os.path.isfile(weights):
        from nandoctor.loaders.h5_datasets import sources_in
        from nandoctor.loaders.h5_file_checks import open_weights_file
        from nandoctor.loaders.weight_layouts import keras3_layers_from_tree

        root = open_weights_file(weights, _TASK_WEIGHTS, view)
        layers = keras3_layers_from_tree(root, sources_in(weights), task_name + "/", "keras_hub")
        view.layers.extend(layer for layer in layers if layer.weights)


def _preprocessed_length(path: str) -> int | None:
    """The `sequence_length` the preset's preprocessor pads and cuts every input to."""
    preprocessor = _small_json(os.path.join(path, _PREPROCESSOR_CONFIG))
    config = preprocessor.get("config") if isinstance(preprocessor, dict) else None
    length = config.get("sequence_length") if isinstance(config, dict) else None
    return length if isinstance(length, int) and not isinstance(length, bool) and length > 0 else None


def _token_table(view: ModelView, vocabulary: int | None):
    matrices = [
        weight
        for layer in view.layers
        for weight in layer.weights
        if len(weight.shape) == 2 and "token_embedding" in layer.name and weight is layer.weights[0]
    ]
    matching = [weight for weight in matrices if vocabulary is None or weight.shape[0] == vocabulary]
    return matching[0] if matching else None


def _vocabulary(path: str) -> list[str] | None:
    for name in _VOCABULARY_FILES:
        file = os.path.join(path, name)
        if not os.path.isfile(file) or os.path.getsize(file) > _MAX_VOCABULARY_BYTES:
            continue  # the text vocabulary is read whole below; the JSON one by its own limit
        if name.endswith(".json"):
            mapping = _small_json(file, _MAX_VOCABULARY_BYTES)
            if isinstance(mapping, dict) and all(isinstance(i, int) for i in mapping.values()) and mapping:
                tokens = [""] * (max(mapping.values()) + 1)
                for token, index in mapping.items():
                    if index >= 0:
                        tokens[index] = token
                return tokens
        else:
            with open(file, encoding="utf-8", errors="replace") as text:
                return [line.rstrip("\n") for line in text]
    return None


def _small_json(path: str, limit: int = 1 << 20):
    """The file's JSON, or None where it is absent, too large or not JSON: a preset's extras
    are read where they can be, and the model is scanned either way."""
    if not os.path.isfile(path):
        return None
    from nandoctor.loaders.zip_members import read_json_file

    try:
        return read_json_file(path, os.path.basename(path), limit)
    except (UnreadableFile, OSError):
        return None
