"""`.keras` files: a zip holding `config.json` and `model.weights.h5`.

Keras writes the zip uncompressed, so the weights file is a contiguous run of bytes inside
it: h5py reads only its metadata through a window onto those bytes, and tensors are then
read by offset straight from the `.keras` file. A compressed member is first streamed to a
temporary file.
"""

from __future__ import annotations

import os
import zipfile

from nandoctor.analysis.keras_facts import is_known_class
from nandoctor.errors import NotAModel, UnreadableFile
from nandoctor.loaders.h5_datasets import sources_in
from nandoctor.loaders.h5_file_checks import IN_MEMORY_BYTES, open_weights_file
from nandoctor.loaders.h5_structure import StoredGroup
from nandoctor.loaders.keras_config import model_view
from nandoctor.loaders.quantized import dequantize
from nandoctor.loaders.weight_layouts import (
    SourceFactory,
    attach_keras3_weights,
    keras3_layers_from_tree,
    own_weights,
)
from nandoctor.loaders.zip_members import (
    FileWindow,
    extract_member,
    member_data_offset,
    open_archive,
    read_json_member,
)
from nandoctor.view import ModelView

CONFIG_MEMBER = "config.json"
WEIGHTS_MEMBER = "model.weights.h5"


def load_keras(path: str) -> ModelView:
    with open_archive(path) as archive:
        names = set(archive.namelist())
        if CONFIG_MEMBER not in names:
            raise NotAModel("zip archive holds no config.json: not a Keras model")
        entry = read_json_member(archive, CONFIG_MEMBER)
        if not isinstance(entry, dict):
            raise UnreadableFile("config.json is not a JSON object: not a Keras model")
        view, parsed = model_view(entry, entry.get("compile_config"), path=path, format="keras")
        if WEIGHTS_MEMBER in names:
            try:
                root, region_file, base_offset = _open_weights(path, archive, archive.getinfo(WEIGHTS_MEMBER), view)
                attach_weights_tree(view, parsed, root, sources_in(region_file, base_offset))
            except BaseException:
                view.close()
                raise
        else:
            view.notes.append(
                f"the archive holds no {WEIGHTS_MEMBER}: the config was checked, the weights could not be"
            )
    return view


def attach_weights_tree(view: ModelView, parsed, root: StoredGroup, make_source: SourceFactory) -> None:
    """Give the config's layers their weights from a Keras 3 weights tree (the archive's
    member, an unzipped model's file, or its shards)."""
    attach_keras3_weights(view.layers, parsed.h5_paths, root, make_source)
    dequantize(view)
    if _is_subclassed(view, parsed):
        model = view.layers[0]
        library = model.module if model.module and is_known_class(model.class_name, model.module) else None
        model.weights = own_weights(root, model, make_source)
        view.layers.extend(keras3_layers_from_tree(root, make_source, model.name + "/", library))


def _is_subclassed(view: ModelView, parsed) -> bool:
    """A subclassed model has no layer list in its config: one opaque model layer."""
    return len(view.layers) == 1 and view.layers[0].is_model and not parsed.h5_paths.get(view.layers[0].name)


def _read_region(path: str, offset: int, size: int) -> bytes:
    with open(path, "rb") as file:
        file.seek(offset)
        data = file.read(size)
    if len(data) != size:
        raise UnreadableFile(f"{WEIGHTS_MEMBER} runs past the end of the archive (truncated)")
    return data


def _open_weights(path: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo, view: ModelView):
    """Open the weights member for h5py; return (root group, file with its bytes, offset)."""
    target: bytes | FileWindow | str
    # From memory up to IN_MEMORY_BYTES; a larger stored member through a window onto the archive.
    if info.compress_type == zipfile.ZIP_STORED and info.file_size <= IN_MEMORY_BYTES:
        offset = member_data_offset(path, info)
        region_file, base_offset = path, offset
        target = _read_region(path, offset, info.file_size)
    elif info.compress_type == zipfile.ZIP_STORED:
        offset = member_data_offset(path, info)
        window = FileWindow(path, offset, info.file_size)
        view.on_close(window.close)
        region_file, base_offset = path, offset
        target = window
    else:
        region_file = extract_member(archive, info)
        view.on_close(lambda: os.unlink(region_file))
        base_offset = 0
        target = region_file
    return open_weights_file(target, WEIGHTS_MEMBER, view), region_file, base_offset
