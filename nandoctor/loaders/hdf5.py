"""HDF5 files: legacy full models (`.h5`) and weights-only files (`.weights.h5`, `.hdf5`).

Three layouts are recognised, all written by Keras itself:
- a full model (Keras 2, tf.keras, or Keras 3's legacy `model.save("x.h5")`): a
  `model_config` attribute, weights under `model_weights` listed by `layer_names`;
- Keras 2 `save_weights`: `layer_names` at the root;
- Keras 3 `save_weights`: `<attribute or layers/class>/vars/<index>` groups, and no config.
"""

from __future__ import annotations

import io
import os
import stat

import h5py

from nandoctor.errors import NotAModel, UnreadableFile, first_line
from nandoctor.loaders.h5_datasets import attribute_text, sources_in
from nandoctor.loaders.h5_file_checks import IN_MEMORY_BYTES, check_hdf5_file, open_image
from nandoctor.loaders.h5_structure import StoredGroup
from nandoctor.loaders.keras_config import model_view
from nandoctor.loaders.weight_layouts import (
    attach_legacy_weights,
    keras3_layers_from_tree,
    own_weights,
    saved_name,
)
from nandoctor.loaders.zip_members import parse_json
from nandoctor.view import Layer, ModelView

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def load_hdf5(path: str) -> ModelView:
    image = _small_file_bytes(path)
    try:
        h5 = h5py.File(path, "r") if image is None else open_image(image)
    except (OSError, ValueError) as error:
        raise UnreadableFile(f"not a valid HDF5 file ({first_line(error)})") from None
    try:
        target = io.BytesIO(image) if image is not None else path
        view = _read(path, check_hdf5_file(h5, target, "the file", image))  # checked before anything is read
    except BaseException:
        h5.close()
        raise
    view.on_close(h5.close)
    return view


def _small_file_bytes(path: str) -> bytes | None:
    with open(path, "rb") as file:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode) or status.st_size > IN_MEMORY_BYTES:
            return None
        return file.read()


def _read(path: str, root: StoredGroup) -> ModelView:
    make_source = sources_in(path)

    model_config = attribute_text(root, "model_config")
    if model_config is not None:
        training = attribute_text(root, "training_config")
        view, _ = model_view(
            parse_json(model_config, "model_config"),
            parse_json(training, "training_config") if training else None,
            path=path,
            format="h5",
        )
        weights = root.group("model_weights")
        if weights is not None:
            attach_legacy_weights(weights, view.layers, make_source)
        return view
    if root.has_attribute("layer_names"):
        layers = attach_legacy_weights(root, [], make_source)
        return ModelView(path=path, format="weights-h5", layers=layers, has_config=False)
    layers = _keras3_model(root, make_source) + keras3_layers_from_tree(root, make_source)
    if layers or root.group("layers") is not None:
        return ModelView(path=path, format="weights-h5", layers=layers, has_config=False)
    raise NotAModel("HDF5 file holds no Keras model or weights (no model_config, layer_names or layers)")


def _keras3_model(root: StoredGroup, make_source) -> list[Layer]:
    """The model itself, where it holds variables of its own (`self.add_weight` in a
    subclassed model), named as Keras named it."""
    model = Layer(name=saved_name(root) or "model", class_name="Layer", is_model=True)
    model.weights = own_weights(root, model, make_source)
    return [model] if model.weights else []
