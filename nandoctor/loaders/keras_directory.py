"""An unzipped Keras model: a directory holding what a `.keras` archive holds
(`keras.saving.save_model(model, "dir", zipped=False)`: `config.json`, `metadata.json`,
`model.weights.h5`, or its shards under `model.weights.json`). Read as the model it is, never
as bare weights. A KerasHub preset is one too (its `config.json` is the backbone's), with a
vocabulary to name the rows by."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nandoctor.view import ModelView

# The directory check runs on every folder a scan walks: it imports nothing (the loaders below
# import h5py and the config reader only when a directory is read). The members' names are
# those of a `.keras` archive (keras_zip.CONFIG_MEMBER and WEIGHTS_MEMBER).
CONFIG_MEMBER = "config.json"
WEIGHTS_MEMBER = "model.weights.h5"

# What `save_weights(..., max_shard_size=...)` names the index of a sharded model's weights.
SHARDED_WEIGHTS = "model.weights.json"


def is_keras_directory(path: str) -> bool:
    """A directory with a Keras model config beside its weights (or alone)."""
    return os.path.isfile(os.path.join(path, CONFIG_MEMBER)) and any(
        os.path.isfile(os.path.join(path, name)) for name in (WEIGHTS_MEMBER, SHARDED_WEIGHTS, "metadata.json")
    )


def load_keras_directory(path: str) -> ModelView:
    from nandoctor.errors import UnreadableFile
    from nandoctor.loaders.keras_config import model_view
    from nandoctor.loaders.keras_hub_preset import describe_preset, keras_hub_version
    from nandoctor.loaders.keras_zip import attach_weights_tree
    from nandoctor.loaders.zip_members import read_json_file

    entry = read_json_file(os.path.join(path, CONFIG_MEMBER), CONFIG_MEMBER)
    if not isinstance(entry, dict):
        raise UnreadableFile(f"{CONFIG_MEMBER} is not a JSON object: not a Keras model")
    view, parsed = model_view(entry, entry.get("compile_config"), path=path, format="keras-dir")
    try:
        weights = _weights_tree(path, view)
        if weights is None:
            view.notes.append(
                f"the directory holds no {WEIGHTS_MEMBER}: the config was checked, the weights could not be"
            )
            return view
        attach_weights_tree(view, parsed, *weights)
        version = keras_hub_version(path)
        if version is not None:
            describe_preset(view, path, version)
    except BaseException:
        view.close()
        raise
    return view


def _weights_tree(path: str, view: ModelView):
    """The weights tree with the factory of its sources: one file, or the shards its index names
    (a KerasHub preset's backbone over `max_shard_size`); None where there are no weights."""
    from nandoctor.loaders.h5_datasets import sources_in
    from nandoctor.loaders.h5_file_checks import open_weights_file
    from nandoctor.loaders.sharded_weights import merged_tree, shard_source

    single, index = os.path.join(path, WEIGHTS_MEMBER), os.path.join(path, SHARDED_WEIGHTS)
    if os.path.isfile(single):
        return open_weights_file(single, WEIGHTS_MEMBER, view), sources_in(single)
    if os.path.isfile(index):
        return merged_tree(index, view), shard_source
    return None
