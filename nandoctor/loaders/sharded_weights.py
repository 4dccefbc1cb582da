"""Sharded Keras weights: `model.save_weights("m.weights.json", max_shard_size=...)` (Keras
3.10+) writes an index, `m.weights.json`, whose `weight_map` names for each variables group
(`/layers/embedding/vars`) the `m_NNNNN.weights.h5` shard or shards that hold it. Each shard
is a piece of the one tree a single `.weights.h5` would hold, so the shards are read as that
tree (`merged_tree`), by the same code that reads a single file. KerasHub presets shard their
backbone the same way (`model.weights.json`)."""

from __future__ import annotations

import os
import tempfile

import h5py

from nandoctor.errors import UnreadableFile
from nandoctor.loaders.h5_datasets import sources_in
from nandoctor.loaders.h5_file_checks import open_weights_file
from nandoctor.loaders.weight_layouts import keras3_layers_from_tree
from nandoctor.loaders.zip_members import read_json_file
from nandoctor.view import ModelView

def load_sharded_weights(path: str) -> ModelView:
    view = ModelView(path=path, format="sharded-weights", has_config=False)
    try:
        view.layers = keras3_layers_from_tree(merged_tree(path, view), shard_source)
    except BaseException:
        view.close()
        raise
    return view


def shard_names(path: str) -> list[str]:
    """The shard files an index names (a directory walk leaves them to the index)."""
    return sorted({name for files in _weight_map(path).values()
                   for name in ([files] if isinstance(files, str) else files) if isinstance(name, str)})


def merged_tree(index_path: str, view: ModelView) -> h5py.File:
    """One HDF5 tree over every shard the index names, closed with the view: a small file
    holding each shard's groups (with their attributes, where Keras writes a layer's name) and,
    for each dataset, a link to it in its shard, so that a layer whose variables span shards is
    one group again. Read its datasets with `shard_source`. Those links are nandoctor's own,
    to shards that `open_weights_file` has checked (a shard's own link out of its file is
    refused there), so the tree itself is opened unchecked."""
    # On disk, not in memory: HDF5 opens a linked file with the driver and the intent of the
    # file that links to it, so an in-memory tree would load each shard whole, and a
    # writable one would open the shards for writing. The tree holds metadata only.
    handle, tree_path = tempfile.mkstemp(prefix="nandoctor-shards-", suffix=".h5")
    os.close(handle)
    view.on_close(lambda: os.unlink(tree_path))
    with h5py.File(tree_path, "w") as building:
        for name in shard_names(index_path):
            _copy_shard(index_path, name, building, view)
    tree = h5py.File(tree_path, "r")
    view.on_close(tree.close)
    return tree


def _copy_shard(index_path: str, name: str, tree: h5py.File, view: ModelView) -> None:
    """Add one shard's groups and links to its datasets to `tree`."""
    shard = _open_shard(index_path, name, view)
    shard_path = os.path.abspath(shard.filename)
    items: list[tuple[str, h5py.Group | h5py.Dataset]] = []
    try:
        shard.visititems(lambda item_name, item: items.append((item_name, item)))  # hard links only
        for item_name, item in items:
            if isinstance(item, h5py.Group):
                group = tree.require_group(item_name)
                group.attrs.update(item.attrs)
            elif isinstance(item, h5py.Dataset) and item_name not in tree:
                tree[item_name] = h5py.ExternalLink(shard_path, "/" + item_name)
    finally:
        shard.close()  # the tree's links open it again, read-only


def shard_source(dataset: h5py.Dataset):
    """The source of a dataset reached through `merged_tree`, read by offset in its shard."""
    return sources_in(dataset.file.filename)(dataset)


def _weight_map(path: str) -> dict:
    index = read_json_file(path, os.path.basename(path))
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, (str, list)) for v in weight_map.values()):
        raise UnreadableFile("not a Keras shard index (no weight_map of variable groups to shard files)")
    return weight_map


def _open_shard(index_path: str, name: str, view: ModelView) -> h5py.File:
    if os.path.basename(name) != name:
        raise UnreadableFile(f"the shard index names {name!r}, not a file beside it")
    path = os.path.join(os.path.dirname(index_path), name)
    if not os.path.isfile(path):
        raise UnreadableFile(f"shard {name} named by the index is missing")
    return open_weights_file(path, f"shard {name}", view)
