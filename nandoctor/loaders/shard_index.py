"""The index of sharded Keras weights (`m.weights.json`): which shard files its `weight_map`
names. A directory walk asks it of every index it meets, to leave the shards to it, so it
imports nothing that reads a shard (h5py, numpy: a scan the cache answers never needs them)."""

from __future__ import annotations

import os

from nandoctor.errors import UnreadableFile
from nandoctor.loaders.zip_members import read_json_file


def shard_names(path: str) -> list[str]:
    """The shard files an index names (a directory walk leaves them to the index)."""
    return sorted(
        {
            name
            for files in _weight_map(path).values()
            for name in ([files] if isinstance(files, str) else files)
            if isinstance(name, str)
        }
    )


def _weight_map(path: str) -> dict:
    index = read_json_file(path, os.path.basename(path))
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, (str, list)) for v in weight_map.values()):
        raise UnreadableFile("not a Keras shard index (no weight_map of variable groups to shard files)")
    return weight_map
