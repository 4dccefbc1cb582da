"""What an HDF5 file must pass before anything in it is read: the one walk over its structure
(`h5_structure`), which refuses links out of the file and loops, then a check of its global
heaps, then its attributes.

A corrupt global heap would loop libhdf5 forever, inside C, on the first string attribute
read from it; the walk notes where the contiguous tensors lie, so that the heap check reads
only the bytes between them.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterator

import h5py

from nandoctor.errors import UnreadableFile, first_line
from nandoctor.loaders.h5_structure import StoredGroup, read_structure
from nandoctor.view import ModelView


def open_weights_file(target, label: str, view: ModelView) -> StoredGroup:
    """The structure of `target` (a path, a window onto a member's bytes, or those bytes
    themselves), opened by h5py for reading and closed with the view; a file h5py cannot
    open, or that fails `check_hdf5_file`, is refused in one line naming it `label`."""
    try:
        h5 = open_image(target) if isinstance(target, bytes) else h5py.File(target, "r")
    except (OSError, ValueError) as error:
        raise UnreadableFile(f"{label} is not a valid HDF5 file ({first_line(error)})") from None
    view.on_close(h5.close)
    if isinstance(target, bytes):
        return check_hdf5_file(h5, io.BytesIO(target), label, image=target)
    return check_hdf5_file(h5, target, label)


# An HDF5 file, or a `.keras` archive's stored weights member, up to this size is read whole
# and opened from memory (`open_image`): its metadata, heap check and tensors are then read from
# there, not with a read from the disk each (a small model has a dozen tensors). A larger one is
# opened through the disk, so that memory stays bounded; its tensors are read by offset.
IN_MEMORY_BYTES = 8 << 20


def open_image(image: bytes) -> h5py.File:
    """An HDF5 file held in memory, read by libhdf5's core driver: its metadata reads stay in
    C, where a file object makes each one a call into Python (a small model's weights member
    opens and walks in about half the time) and a file on disk each one a read from the disk
    (a small `.h5` opens and walks in seven eighths of the time). Each image is named apart:
    libhdf5 takes a core file opened under the name of one still open for that one, so two
    models' members open at once (two views, two threads) would both read the first."""
    access = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    access.set_fapl_core(backing_store=False)
    access.set_file_image(image)
    name = f"in-memory weights {next(_IMAGE_NUMBERS)}".encode()
    return _ImageFile(h5py.h5f.open(name, h5py.h5f.ACC_RDONLY, fapl=access))


_IMAGE_NUMBERS = itertools.count()


class _ImageFile(h5py.File):
    """An HDF5 file opened from memory by `open_image`."""

    def close(self) -> None:
        """Close the file's own handle, and only that. h5py's `close` first asks libhdf5 for every
        object of the file still open to close it, then sweeps its registry of every object
        alive (30 us of the 1.3 ms a small model's scan takes); the walked tree has no cycles
        (`h5_structure`), so a scanned file's objects are gone by the time its view closes, and
        one still held (a chunked dataset opened to read it) keeps the image in memory until it
        goes, as libhdf5 closes a file by default."""
        if self.id.valid:
            self.id.close()


def check_hdf5_file(h5: h5py.File, target, label: str, image: bytes | None = None) -> StoredGroup:
    """The file's structure (its root group), attributes included, after refusing a file
    whose links or storage lead outside it, or whose global heap would loop libhdf5 forever.
    Call it before any attribute or object of the file is read. `image`: the file's bytes,
    where `h5` was opened from them (its datasets are then read from there)."""
    structure = read_structure(h5, label, image)
    if not isinstance(target, (str, os.PathLike)) or os.path.isfile(target):
        _check_global_heaps(structure.regions, target, label)
    structure.read_attributes()
    return structure.root


_HEAP_SIGNATURE = b"GCOL"
_HEAP_OBJECT_HEADER = 16  # index (2), references (2), reserved (4), size (8)
_WORD = (1 << 64) - 1


def _check_global_heaps(regions: list[tuple[int, int]], target, label: str) -> None:
    """Keras stores its string attributes (a layer's saved name) in a global heap. libhdf5
    reads a heap collection object by object, advancing by each object's declared size; a
    corrupt size of 0 (or one that wraps around) makes it read the same object forever,
    inside C, where no timeout can stop it. So every collection outside the tensors' bytes
    is walked here first, with the library's arithmetic, and a walk that would not advance
    refuses the file."""
    for start, chunk in _bytes_outside(regions, target):
        found = chunk.find(_HEAP_SIGNATURE)
        while found != -1:
            if _endless_heap(chunk, found):
                raise UnreadableFile(f"{label} has a corrupt global heap at byte {start + found} (an object of size 0)")
            found = chunk.find(_HEAP_SIGNATURE, found + 1)


def _endless_heap(chunk: bytes, at: int) -> bool:
    if at + 16 > len(chunk) or chunk[at + 4] != 1:
        return False  # not a collection header (version 1)
    size = int.from_bytes(chunk[at + 8 : at + 16], "little")
    end = min(at + size, len(chunk))
    position = at + 16
    while position < end and position + _HEAP_OBJECT_HEADER <= end:
        index = int.from_bytes(chunk[position : position + 2], "little")
        object_size = int.from_bytes(chunk[position + 8 : position + 16], "little")
        aligned = (((object_size + 7) & _WORD) // 8 * 8) & _WORD
        need = ((_HEAP_OBJECT_HEADER + aligned) & _WORD) if index else object_size
        if need == 0 or need > _WORD >> 1:
            return True
        position += need
    return False


_WINDOW = 8 << 20
_OVERLAP = 1 << 20  # longer than a heap collection Keras writes (4 KiB each)


def _bytes_outside(regions: list[tuple[int, int]], target) -> Iterator[tuple[int, bytes]]:
    """The file's bytes between its contiguous tensors (`regions`), where its metadata and
    heaps live, in windows of at most 8 MiB that overlap, so memory stays bounded whatever
    lies between."""
    opened = not hasattr(target, "read")
    file = open(target, "rb") if opened else target  # noqa: SIM115 (closed below when opened here)
    try:
        size = file.seek(0, os.SEEK_END)
        position = 0
        for begin, end in [*sorted(regions), (size, size)]:
            gap_end = min(begin, size)
            for start in range(position, gap_end, _WINDOW - _OVERLAP):
                file.seek(start)
                yield start, file.read(min(_WINDOW, gap_end - start))
            position = max(position, end)
    finally:
        if opened:
            file.close()
