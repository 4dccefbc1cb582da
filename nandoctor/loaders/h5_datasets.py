"""Turning an HDF5 dataset into a weight source, after checking what it declares.

A contiguous dataset is read by byte offset (fast, no h5py on the hot path). Hostile files
are refused here: external or virtual storage (which would make the scan read other files),
and shapes that claim more bytes than the file holds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import h5py
import numpy as np

from nandoctor.errors import UnreadableFile, first_line
from nandoctor.view import ModelView
from nandoctor.view.array_sources import ArraySource, FileRegionSource, SlicedSource

# A chunked dataset may compress well (an all-zero table), but not beyond this ratio.
_MAX_CHUNKED_EXPANSION = 1000


def open_weights_file(target, label: str, view: ModelView) -> h5py.File:
    """`target` (a path, or a window onto a member's bytes) opened by h5py for reading and
    closed with the view; a file h5py cannot open is refused in one line naming it `label`,
    and so is one whose global heap would send libhdf5 into an endless loop."""
    try:
        h5 = h5py.File(target, "r")
    except (OSError, ValueError) as error:
        raise UnreadableFile(f"{label} is not a valid HDF5 file ({first_line(error)})") from None
    view.on_close(h5.close)
    if not isinstance(target, (str, os.PathLike)) or os.path.isfile(target):
        check_global_heaps(h5, target, label)
    return h5


_HEAP_SIGNATURE = b"GCOL"
_HEAP_OBJECT_HEADER = 16  # index (2), references (2), reserved (4), size (8)
_WORD = (1 << 64) - 1


def check_global_heaps(h5: h5py.File, target, label: str) -> None:
    """Keras stores its string attributes (a layer's saved name) in a global heap. libhdf5
    reads a heap collection object by object, advancing by each object's declared size; a
    corrupt size of 0 (or one that wraps around) makes it read the same object forever,
    inside C, where no timeout can stop it. So every collection outside the tensors' bytes
    is walked here first, with the library's arithmetic, and a walk that would not advance
    refuses the file."""
    for start, chunk in _bytes_outside_tensors(h5, target):
        found = chunk.find(_HEAP_SIGNATURE)
        while found != -1:
            if _endless_heap(chunk, found):
                raise UnreadableFile(f"{label} has a corrupt global heap at byte {start + found} (an object of size 0)")
            found = chunk.find(_HEAP_SIGNATURE, found + 1)


def _endless_heap(chunk: bytes, at: int) -> bool:
    if at + 16 > len(chunk) or chunk[at + 4] != 1:
        return False  # not a collection header (version 1)
    size = int.from_bytes(chunk[at + 8: at + 16], "little")
    end = min(at + size, len(chunk))
    position = at + 16
    while position < end and position + _HEAP_OBJECT_HEADER <= end:
        index = int.from_bytes(chunk[position: position + 2], "little")
        object_size = int.from_bytes(chunk[position + 8: position + 16], "little")
        aligned = (((object_size + 7) & _WORD) // 8 * 8) & _WORD
        need = ((_HEAP_OBJECT_HEADER + aligned) & _WORD) if index else object_size
        if need == 0 or need > _WORD >> 1:
            return True
        position += need
    return False


_WINDOW = 8 << 20
_OVERLAP = 1 << 20  # longer than a heap collection Keras writes (4 KiB each)


def _bytes_outside_tensors(h5: h5py.File, target) -> Iterator[tuple[int, bytes]]:
    """The file's bytes between its contiguous tensors, where its metadata and heaps live, in
    windows of at most 8 MiB that overlap, so memory stays bounded whatever lies between."""
    regions: list[tuple[int, int]] = []

    def note(_, item):
        if isinstance(item, h5py.Dataset):
            offset = item.id.get_offset()
            if offset is not None:
                regions.append((offset, offset + item.id.get_storage_size()))

    h5.visititems(note)
    opened = not hasattr(target, "read")
    file = open(target, "rb") if opened else target  # noqa: SIM115 (closed below when opened here)
    try:
        size = file.seek(0, os.SEEK_END)
        position = 0
        for begin, end in sorted(regions) + [(size, size)]:
            gap_end = min(begin, size)
            for start in range(position, gap_end, _WINDOW - _OVERLAP):
                file.seek(start)
                yield start, file.read(min(_WINDOW, gap_end - start))
            position = max(position, end)
    finally:
        if opened:
            file.close()


def sources_in(region_file: str, base_offset: int = 0):
    """A source factory for the datasets of an HDF5 file whose bytes start at `base_offset`
    in `region_file` (the file itself, or an archive holding it uncompressed)."""
    file_size = os.path.getsize(region_file)
    return lambda dataset: dataset_source(dataset, region_file, base_offset, file_size)


def dataset_source(dataset: h5py.Dataset, region_file: str, base_offset: int, file_size: int) -> ArraySource:
    """A source for `dataset`; `region_file` and `base_offset` locate the HDF5 bytes on disk."""
    name = dataset.name
    dtype = dataset.dtype
    bfloat16 = attribute_text(dataset, "dtype") == "bfloat16"
    if bfloat16 and dtype.kind == "V" and dtype.itemsize == 2 and dtype.fields is None:
        # Keras 3.15's H5 store writes bfloat16 as an opaque 2-byte type (its `dtype`
        # attribute names it): the bits of a little-endian uint16, widened on read.
        dtype = np.dtype("<u2")
    if dtype.kind not in "fiub" or dtype.fields is not None:
        raise UnreadableFile(f"weight {name} has unsupported dtype {dtype}")
    shape = dataset.shape
    if shape is None:
        raise UnreadableFile(f"weight {name} has no shape (a null dataspace)")
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    plist = dataset.id.get_create_plist()
    layout = plist.get_layout()
    if layout == h5py.h5d.VIRTUAL or plist.get_external_count() > 0:
        raise UnreadableFile(f"weight {name} points at data outside the file: refusing to follow it")
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
