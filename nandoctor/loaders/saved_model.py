"""A TensorFlow SavedModel directory (`saved_model.pb`, `variables/`). Written by tf.keras
(`model.save("dir")` in TF 2 with Keras 2), it also holds `keras_metadata.pb`: a protobuf
whose root node carries the Keras model config as JSON, read here without TensorFlow. Its
variables are a checkpoint, read by `tensor_bundle` and named by their keys. The graph in
`saved_model.pb` is never read: it is code."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from nandoctor.errors import UnreadableFile

if TYPE_CHECKING:
    from nandoctor.view import ModelView

# `is_saved_model` runs on every folder a scan walks: the module imports what reads one (numpy,
# through the checkpoint reader) only when one is read.

_MAX_METADATA_BYTES = 256 << 20


def is_saved_model(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "saved_model.pb"))


def load_saved_model(path: str) -> ModelView:
    from nandoctor.loaders.keras_config import model_view
    from nandoctor.loaders.tensor_bundle import checkpoint_layers
    from nandoctor.view import ModelView

    index = os.path.join(path, "variables", "variables.index")
    weights = checkpoint_layers(index) if os.path.isfile(index) else []
    root = _keras_root(os.path.join(path, "keras_metadata.pb"))
    if root is None:
        view = ModelView(path=path, format="savedmodel", layers=weights, has_config=False)
        view.notes.append(
            "no Keras metadata (a model.export() or a non-Keras SavedModel): the weights were checked, "
            "named by their checkpoint keys; the graph is code and was not read"
        )
    else:
        view, _ = model_view(
            root.get("model_config") or root, root.get("training_config"), path=path, format="savedmodel"
        )
        view.layers.extend(weights)
        view.notes.append(
            "a tf.keras SavedModel: the Keras config was read from keras_metadata.pb; its weights are "
            "named by their checkpoint keys (layer_with_weights-N), beside the config's layers"
        )
    if not weights:
        view.notes.append("the SavedModel holds no variables checkpoint: the weights could not be checked")
    return view


def _keras_root(path: str) -> dict | None:
    """The root object's metadata (`SavedMetadata.nodes`, field 1; `SavedObject.node_path` 3
    is "root", its `metadata` 5 the JSON of the model), or None without the file."""
    if not os.path.isfile(path):
        return None
    if os.path.getsize(path) > _MAX_METADATA_BYTES:
        raise UnreadableFile(f"keras_metadata.pb is over the {_MAX_METADATA_BYTES} byte limit")
    with open(path, "rb") as file:
        data = file.read()
    from nandoctor.loaders.protobuf_wire import fields

    # A field's value is bytes exactly when its wire type is LENGTH_DELIMITED (`fields`).
    for number, _, node in fields(data):
        if number != 1 or not isinstance(node, bytes):
            continue
        values = {n: v for n, _, v in fields(node) if isinstance(v, bytes)}
        if values.get(3) == b"root" and 5 in values:
            try:
                metadata = json.loads(values[5])
            except (ValueError, RecursionError):
                raise UnreadableFile("keras_metadata.pb holds a root whose metadata is not JSON") from None
            if not isinstance(metadata, dict):
                raise UnreadableFile("keras_metadata.pb holds a root whose metadata is not an object")
            return metadata
    raise UnreadableFile("keras_metadata.pb has no root object")
