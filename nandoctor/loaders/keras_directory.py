"""An unzipped Keras model: a directory holding what a `.keras` archive holds
(`keras.saving.save_model(model, "dir", zipped=False)`: `config.json`, `metadata.json`,
`model.weights.h5`). Read as the model it is, never as bare weights. A KerasHub preset is
one too (its `config.json` is the backbone's), with a vocabulary to name the rows by."""

from __future__ import annotations

import os

from nandoctor.errors import UnreadableFile
from nandoctor.loaders.h5_datasets import open_weights_file
from nandoctor.loaders.keras_config import model_view
from nandoctor.loaders.keras_hub_preset import describe_preset, keras_hub_version
from nandoctor.loaders.keras_zip import (
    CONFIG_MEMBER,
    WEIGHTS_MEMBER,
    attach_weights_tree,
)
from nandoctor.loaders.zip_members import read_json_file
from nandoctor.view import ModelView


def is_keras_directory(path: str) -> bool:
    """A directory with a Keras model config beside its weights (or alone)."""
    return os.path.isfile(os.path.join(path, CONFIG_MEMBER)) and (
        os.path.isfile(os.path.join(path, WEIGHTS_MEMBER)) or os.path.isfile(os.path.join(path, "metadata.json")))


def load_keras_directory(path: str) -> ModelView:
    entry = read_json_file(os.path.join(path, CONFIG_MEMBER), CONFIG_MEMBER)
    if not isinstance(entry, dict):
        raise UnreadableFile(f"{CONFIG_MEMBER} is not a JSON object: not a Keras model")
    view, parsed = model_view(entry, entry.get("compile_config"), path=path, format="keras-dir")
    weights = os.path.join(path, WEIGHTS_MEMBER)
    if not os.path.isfile(weights):
        view.notes.append(f"the directory holds no {WEIGHTS_MEMBER}: the config was checked, the weights could not be")
        return view
    try:
        attach_weights_tree(view, parsed, open_weights_file(weights, WEIGHTS_MEMBER, view), weights, 0)
        version = keras_hub_version(path)
        if version is not None:
            describe_preset(view, path, version)
    except BaseException:
        view.close()
        raise
    return view
