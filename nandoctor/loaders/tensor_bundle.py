"""TensorFlow checkpoints (`ckpt.index` beside `ckpt.data-NNNNN-of-MMMMM`, also a SavedModel's
`variables/`): the index is a LevelDB-style table, uncompressed, whose keys are tensor names
and whose values are `BundleEntryProto`s (dtype, shape, shard, offset, size) into the data
shards. Read without TensorFlow; the tensors are read by offset like any other weight."""

from __future__ import annotations

import math
import os
import re
import struct
from typing import TYPE_CHECKING

from nandoctor.errors import UnreadableFile
from nandoctor.loaders.protobuf_wire import fields, read_varint

if TYPE_CHECKING:
    from nandoctor.view import Layer, ModelView

# `looks_like_checkpoint` runs on every `.index` file a scan walks: numpy and the view are
# imported when a checkpoint is read.

_MAGIC = 0xDB4775248B80FB57  # the table's footer ends with it (LevelDB's)
_FOOTER = 48
_MAX_INDEX_BYTES = 256 << 20
# tensorflow DataType enum values, as numpy stores them; bfloat16 read as uint16 bits.
_DTYPES = {
    1: "<f4",
    2: "<f8",
    3: "<i4",
    4: "u1",
    5: "<i2",
    6: "i1",
    9: "<i8",
    10: "?",
    14: "<u2",
    17: "<u2",
    19: "<f2",
    22: "<u4",
    23: "<u8",
}
_BFLOAT16 = 14
_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_EMBEDDING_NAME = re.compile(r"embedding", re.IGNORECASE)


def table_entries(data: bytes) -> dict[bytes, bytes]:
    """Every key and value of an uncompressed table."""
    if len(data) < _FOOTER:
        raise UnreadableFile("checkpoint index is too short to hold a table footer")
    footer = data[-_FOOTER:]
    if struct.unpack("<Q", footer[-8:])[0] != _MAGIC:
        raise UnreadableFile("not a TensorFlow checkpoint index (bad table magic)")
    _, position = read_varint(footer, 0)  # the metaindex block handle: unused
    _, position = read_varint(footer, position)
    index_offset, position = read_varint(footer, position)
    index_size, _ = read_varint(footer, position)
    entries: dict[bytes, bytes] = {}
    for _, handle in _block(data, index_offset, index_size):
        offset, position = read_varint(handle, 0)
        size, _ = read_varint(handle, position)
        entries.update(_block(data, offset, size))
    return entries


def _block(data: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    if offset + size + 5 > len(data) or size < 4:
        raise UnreadableFile("checkpoint index block runs past the end of the file")
    if data[offset + size] != 0:  # the block trailer's compression type
        raise UnreadableFile("compressed checkpoint index blocks are not supported")
    block = data[offset : offset + size]
    (restarts,) = struct.unpack("<I", block[-4:])
    end = len(block) - 4 - 4 * restarts
    if end < 0:
        raise UnreadableFile("malformed checkpoint index block (restart array)")
    items, position, key = [], 0, b""
    while position < end:
        shared, position = read_varint(block, position)
        unshared, position = read_varint(block, position)
        length, position = read_varint(block, position)
        if shared > len(key) or position + unshared + length > end:
            raise UnreadableFile("malformed checkpoint index entry")
        key = key[:shared] + block[position : position + unshared]
        position += unshared
        items.append((key, block[position : position + length]))
        position += length
    return items


def _entry(value: bytes) -> dict:
    """A BundleEntryProto: dtype 1, shape 2 (dims 2, size 1), shard_id 3, offset 4, size 5."""
    entry: dict[str, object] = {"dtype": 0, "shard": 0, "offset": 0, "size": 0}
    shape: list[int | bytes] = []
    # A field's value is bytes exactly when its wire type is LENGTH_DELIMITED (`fields`).
    for number, _, field in fields(value):
        if number == 1:
            entry["dtype"] = field
        elif number == 2 and isinstance(field, bytes):
            for dim_number, _, dim in fields(field):
                if dim_number == 2 and isinstance(dim, bytes):
                    shape.append(next((v for n, _, v in fields(dim) if n == 1), 0))
        elif number in (3, 4, 5):
            entry[{3: "shard", 4: "offset", 5: "size"}[number]] = field
    return {**entry, "shape": shape}


def looks_like_checkpoint(path: str) -> bool:
    """An `.index` file ending in the table magic (a directory walk takes only these)."""
    try:
        with open(path, "rb") as file:
            file.seek(-8, os.SEEK_END)
            return struct.unpack("<Q", file.read(8))[0] == _MAGIC
    except (OSError, struct.error):
        return False


def load_checkpoint(path: str) -> ModelView:
    """The tensors of the checkpoint whose index is `path` (`ckpt.index`), named by their keys."""
    from nandoctor.view import ModelView

    return ModelView(path=path, format="tf-checkpoint", layers=checkpoint_layers(path), has_config=False)


def checkpoint_layers(index_path: str) -> list[Layer]:
    import numpy as np

    from nandoctor.view import Layer
    from nandoctor.view.array_sources import FileRegionSource

    size = os.path.getsize(index_path)
    if size > _MAX_INDEX_BYTES:
        raise UnreadableFile(f"checkpoint index is {size} bytes, over the {_MAX_INDEX_BYTES} limit")
    with open(index_path, "rb") as file:
        entries = table_entries(file.read())
    header = entries.pop(b"", None)
    shards = next((v for n, _, v in fields(header) if n == 1), 1) if header else 1
    if not isinstance(shards, int):  # num_shards is a varint; a corrupt header has bytes there
        raise UnreadableFile("malformed checkpoint header (its shard count is not a number)")
    prefix = index_path[: -len(".index")]
    layers = []
    for key, value in sorted(entries.items()):
        name = key.decode("utf-8", "replace")
        if _skipped(name):
            continue
        entry = _entry(value)
        if entry["dtype"] not in _DTYPES:
            continue  # strings (the object graph), resources
        dtype = np.dtype(_DTYPES[entry["dtype"]])
        shape = tuple(int(d) for d in entry["shape"])
        declared = math.prod(shape) * dtype.itemsize
        if declared != entry["size"]:
            raise UnreadableFile(f"tensor {name!r} declares shape {shape} ({declared} bytes) in {entry['size']} bytes")
        shard = f"{prefix}.data-{entry['shard']:05d}-of-{shards:05d}"
        if not os.path.isfile(shard):
            raise UnreadableFile(f"checkpoint shard {os.path.basename(shard)} is missing")
        if entry["offset"] + declared > os.path.getsize(shard):
            raise UnreadableFile(f"tensor {name!r} runs past the end of {os.path.basename(shard)} (truncated)")
        if not declared:
            continue
        source = FileRegionSource(shard, entry["offset"], shape, dtype, bfloat16=entry["dtype"] == _BFLOAT16)
        variable = name.removesuffix(_SUFFIX)
        layers.append(Layer.of_matrix(variable, source, len(shape) == 2 and bool(_EMBEDDING_NAME.search(variable))))
    return layers


def _skipped(name: str) -> bool:
    """The optimizer's slots and counters, and metrics: not the model's weights."""
    return (
        name.startswith(("optimizer/", "keras_api/metrics/", "save_counter/"))
        or "/.OPTIMIZER_SLOT/" in name
        or name == "_CHECKPOINTABLE_OBJECT_GRAPH"
    )
