"""Sharded Keras weights: `model.save_weights("m.weights.json", max_shard_size=...)` (Keras
3.10+) writes an index, `m.weights.json`, whose `weight_map` names for each variables group
(`/layers/embedding/vars`) the `m_NNNNN.weights.h5` shard or shards that hold it."""

from __future__ import annotations

import os

import h5py

from nandoctor.errors import UnreadableFile
from nandoctor.loaders.h5_datasets import dataset_source, open_weights_file
from nandoctor.loaders.weight_layouts import (
    class_from_path,
    numeric_key,
    variable_names,
)
from nandoctor.loaders.zip_members import read_json_file
from nandoctor.view import Layer, ModelView, Weight


def load_sharded_weights(path: str) -> ModelView:
    weight_map = _weight_map(path)
    view = ModelView(path=path, format="sharded-weights", has_config=False)
    shards: dict[str, h5py.File] = {}
    try:
        layers: dict[str, Layer] = {}
        for group_path, files in weight_map.items():
            parts = [part for part in group_path.strip("/").split("/") if part]
            if not parts or parts[-1] != "vars":
                continue  # the optimizer's or the model's own variables
            layer_parts = [part for part in parts[:-1] if part != "layers"]
            if not layer_parts:
                continue
            name = "/".join(layer_parts)
            layer = layers.setdefault(name, Layer(name=name, class_name=class_from_path(layer_parts[-1]),
                                                  parent="/".join(layer_parts[:-1]) or None))
            datasets = []
            for shard_name in [files] if isinstance(files, str) else list(files):
                group = _open_shard(path, shard_name, shards, view).get(group_path)
                if isinstance(group, h5py.Group):
                    datasets.extend((key, group[key], shards[shard_name]) for key in group
                                    if isinstance(group[key], h5py.Dataset))
            datasets.sort(key=lambda item: numeric_key(item[0]))
            names = variable_names(layer, len(datasets))
            for variable, (_, dataset, shard) in zip(names, datasets):
                source = dataset_source(dataset, shard.filename, 0, os.path.getsize(shard.filename))
                layer.weights.append(Weight(variable, name, tuple(source.shape), source.logical_dtype, source))
        view.layers = [layer for layer in layers.values() if layer.weights]
    except BaseException:
        view.close()
        raise
    return view


def shard_names(path: str) -> list[str]:
    """The shard files an index names (a directory walk leaves them to the index)."""
    return sorted({name for files in _weight_map(path).values()
                   for name in ([files] if isinstance(files, str) else files) if isinstance(name, str)})


def _weight_map(path: str) -> dict:
    index = read_json_file(path, os.path.basename(path))
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, (str, list)) for v in weight_map.values()):
        raise UnreadableFile("not a Keras shard index (no weight_map of variable groups to shard files)")
    return weight_map


def _open_shard(index_path: str, name: str, shards: dict[str, h5py.File], view: ModelView) -> h5py.File:
    if name in shards:
        return shards[name]
    if not isinstance(name, str) or os.path.basename(name) != name:
        raise UnreadableFile(f"the shard index names {name!r}, not a file beside it")
    path = os.path.join(os.path.dirname(index_path), name)
    if not os.path.isfile(path):
        raise UnreadableFile(f"shard {name} named by the index is missing")
    shards[name] = open_weights_file(path, f"shard {name}", view)
    return shards[name]
