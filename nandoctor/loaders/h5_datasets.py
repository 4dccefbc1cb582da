"""Turning an HDF5 dataset into a weight source, after checking what it declares.

A contiguous dataset is read by byte offset (fast, no h5py on the hot path). Hostile
datasets are refused here: external or virtual storage (which would make the scan read
other files; `h5_file_checks` refuses whole files that hold them, this is the last guard),
and shapes that claim more bytes than the file holds.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from nandoctor.errors import UnreadableFile
from nandoctor.view.array_sources import ArraySource, FileRegionSource, SlicedSource

# A chunked dataset may compress well (an all-zero table), but not beyond this ratio.
_MAX_CHUNKED_EXPANSION = 1000


def sources_in(region_file: str, base_offset: int = 0):
    """A source factory for the datasets of an HDF5 file whose bytes start at `base_offset`
    in `region_file` (the file itself, or an archive holding it uncompressed)."""
    file_size = os.path.getsize(region_file)
    return lambda dataset: dataset_source(dataset, region_file, base_offset, file_size)


def dataset_source(dataset: h5py.Dataset, region_file: str, base_offset: int, file_size: int) -> ArraySource:
    """A source for `dataset`; `region_file` and `base_offset` locate the HDF5 bytes on disk."""
    name = dataset.name
    dtype = dataset.dtype
    declared = attribute_text(dataset, "dtype")
    bfloat16 = dtype.kind == "V" and dtype.itemsize == 2 and dtype.fields is None and declared in ("bfloat16", None)
    if bfloat16:
        # Keras writes bfloat16 (ml_dtypes) as an opaque 2-byte type, naming it in a `dtype`
        # attribute in its H5 store and not at all in a legacy .h5 (no other Keras dtype is
        # opaque and 2 bytes wide): the bits of a little-endian uint16, widened on read.
        dtype = np.dtype("<u2")
    if dtype.kind not in "fiub" or dtype.fields is not None:
        raise UnreadableFile(f"weight {name} has unsupported dtype {dtype}")
    # Before the shape: the extent of a virtual dataset is read from the files it maps.
    plist = dataset.id.get_create_plist()
    layout = plist.get_layout()
    if layout == h5py.h5d.VIRTUAL or plist.get_external_count() > 0:
        raise UnreadableFile(f"weight {name} points at data outside the file: refusing to follow it")
    shape = dataset.shape
    if shape is None:
        raise UnreadableFile(f"weight {name} has no shape (a null dataspace)")
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    stored = dataset.id.get_storage_size()
    if layout == h5py.h5d.CONTIGUOUS:
        offset = dataset.id.get_offset()
        if nbytes and (offset is None or stored < nbytes):
            raise UnreadableFile(
                f"weight {name} declares shape {tuple(shape)} ({nbytes} bytes) "
                f"but the file stores {stored} bytes for it"
            )
        if nbytes and base_offset + offset + nbytes > file_size:
            raise UnreadableFile(f"weight {name} runs past the end of the file (truncated)")
        if nbytes:
            return FileRegionSource(region_file, base_offset + offset, shape, dtype, bfloat16)
    elif nbytes > max(_MAX_CHUNKED_EXPANSION * stored, 1 << 20):
        raise UnreadableFile(
            f"weight {name} declares shape {tuple(shape)} ({nbytes} bytes) "
            f"from {stored} stored bytes: refusing an absurd shape"
        )
    return SlicedSource(dataset, bfloat16, dtype)


def attribute_text(obj, key: str) -> str | None:
    # Asked first: h5py's `get` finds a missing attribute through a raised and caught error,
    # five times slower, and most datasets have no `dtype` attribute.
    if not h5py.h5a.exists(obj.id, key.encode()):
        return None
    value = obj.attrs.get(key)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def attribute_strings(obj, key: str) -> list[str]:
    """A string or list-of-strings attribute (Keras writes both bytes and str)."""
    value = obj.attrs.get(key)
    if value is None:
        return []
    if isinstance(value, (bytes, str)):
        value = [value]
    return [item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item) for item in value]
