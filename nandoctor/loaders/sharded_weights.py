"""Sharded Keras weights: `model.save_weights("m.weights.json", max_shard_size=...)` (Keras
3.10+) writes an index, `m.weights.json`, whose `weight_map` names for each variables group
(`/layers/embedding/vars`) the `m_NNNNN.weights.h5` shard or shards that hold it. Each shard
is a piece of the one tree a single `.weights.h5` would hold, so the shards are read as that
tree (`merged_tree`), by the same code that reads a single file. KerasHub presets shard their
backbone the same way (`model.weights.json`)."""

from __future__ import annotations

import os

from nandoctor.errors import UnreadableFile
from nandoctor.loaders.h5_datasets import sources_in
from nandoctor.loaders.h5_file_checks import open_weights_file
from nandoctor.loaders.h5_structure import StoredDataset, StoredGroup
from nandoctor.loaders.shard_index import shard_names
from nandoctor.loaders.weight_layouts import keras3_layers_from_tree
from nandoctor.view import ModelView


def load_sharded_weights(path: str) -> ModelView:
    view = ModelView(path=path, format="sharded-weights", has_config=False)
    try:
        view.layers = keras3_layers_from_tree(merged_tree(path, view), shard_source)
    except BaseException:
        view.close()
        raise
    return view


def merged_tree(index_path: str, view: ModelView) -> StoredGroup:
    """One tree over every shard the index names, their files closed with the view: each
    shard's groups merged (a layer whose variables span shards is one group again, with the
    attributes every shard gave it, where Keras writes a layer's name), each dataset where
    its shard put it (the first shard's, where two hold one). Every shard is checked by
    `open_weights_file` as it is walked. Read its datasets with `shard_source`."""
    tree = StoredGroup("/")
    for name in shard_names(index_path):
        _merge(tree, _open_shard(index_path, name, view), name)
    _sort_members(tree)
    return tree


def _merge(into: StoredGroup, shard_group: StoredGroup, shard: str) -> None:
    for key, member in shard_group.members.items():
        present = into.members.get(key)
        if isinstance(member, StoredGroup):
            if present is None:
                present = into.members[key] = StoredGroup(member.name, root=into.file_root or into)
            elif not isinstance(present, StoredGroup):
                raise UnreadableFile(f"shard {shard} holds a group {member.name} where another shard holds a dataset")
            present.attributes.update(member.attributes)
            present.unreadable.update(member.unreadable)
            _merge(present, member, shard)
        elif present is None:
            into.members[key] = member


def _sort_members(group: StoredGroup) -> None:
    """Members in name order, the order a group of one file is iterated in."""
    group.members = {
        key: group.members[key] for key in sorted(group.members, key=lambda key: key.encode("utf-8", "surrogateescape"))
    }
    for member in group.members.values():
        if isinstance(member, StoredGroup):
            _sort_members(member)


def shard_source(dataset: StoredDataset):
    """The source of a dataset reached through `merged_tree`, read by offset in its shard."""
    return sources_in(dataset.file.filename)(dataset)


def _open_shard(index_path: str, name: str, view: ModelView) -> StoredGroup:
    if os.path.basename(name) != name:
        raise UnreadableFile(f"the shard index names {name!r}, not a file beside it")
    path = os.path.join(os.path.dirname(index_path), name)
    if not os.path.isfile(path):
        raise UnreadableFile(f"shard {name} named by the index is missing")
    return open_weights_file(path, f"shard {name}", view)
