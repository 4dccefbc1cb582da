"""safetensors: an 8-byte little-endian header length, a JSON header naming each tensor's
dtype, shape and byte offsets, then the tensors' bytes. The usual home of embedding matrices
shared on model hubs, and what KerasHub's `export_to_transformers` writes. Read by offset;
nothing in the file is executed (the format has nothing to execute)."""

from __future__ import annotations

import math
import os
import re
import struct

import numpy as np

from nandoctor.errors import UnreadableFile
from nandoctor.loaders.zip_members import MAX_JSON_BYTES, parse_json
from nandoctor.view import Layer, ModelView
from nandoctor.view.array_sources import FileRegionSource

# safetensors dtypes as numpy stores them; BF16 is read as uint16 bits and widened.
_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "BOOL": "?",
}
# Names that say a 2-D tensor is a token embedding table (GPT-2's wte, BERT's word_embeddings).
_EMBEDDING_NAME = re.compile(r"embed|(^|[._/])wte([._/]|$)|word_embeddings|token_embedding", re.IGNORECASE)


def load_safetensors(path: str) -> ModelView:
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        head = file.read(8)
        if len(head) < 8:
            raise UnreadableFile("truncated: no safetensors header length")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_JSON_BYTES, size - 8):
            raise UnreadableFile(f"the header length {length} runs past the end of the file ({size} bytes)")
        header = parse_json(file.read(length), "the safetensors header")
    if not isinstance(header, dict):
        raise UnreadableFile("the safetensors header is not a JSON object")
    data_start = 8 + length
    layers = [
        _tensor_layer(path, name, entry, data_start, size) for name, entry in header.items() if name != "__metadata__"
    ]
    return ModelView(path=path, format="safetensors", layers=layers, has_config=False)


def _tensor_layer(path: str, name: str, entry, data_start: int, size: int) -> Layer:
    if not isinstance(entry, dict):
        raise UnreadableFile(f"tensor {name!r} has no dtype, shape and offsets")
    dtype_name, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype_name not in _DTYPES:
        raise UnreadableFile(f"tensor {name!r} has unsupported dtype {dtype_name!r}")
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise UnreadableFile(f"tensor {name!r} has a malformed shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
        raise UnreadableFile(f"tensor {name!r} has malformed data_offsets {offsets!r}")
    dtype = np.dtype(_DTYPES[dtype_name])
    begin, end = offsets
    declared = math.prod(shape) * dtype.itemsize
    if not 0 <= begin <= end or end - begin != declared:
        raise UnreadableFile(f"tensor {name!r} declares shape {tuple(shape)} ({declared} bytes) in {end - begin} bytes")
    if data_start + end > size:
        raise UnreadableFile(f"tensor {name!r} runs past the end of the file (truncated)")
    source = FileRegionSource(path, data_start + begin, tuple(shape), dtype, bfloat16=dtype_name == "BF16")
    return Layer.of_matrix(name, source, len(shape) == 2 and bool(_EMBEDDING_NAME.search(name)))
