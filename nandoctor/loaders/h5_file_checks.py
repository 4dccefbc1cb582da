"""What an HDF5 file must pass before anything in it is read, in one walk over its links.

An untrusted file never reaches outside itself: an external link, a soft link that leads
nowhere, a virtual dataset (which maps other files) or a dataset stored in external files
would make libhdf5 open whatever path the file names (a FIFO, which blocks forever;
/dev/zero; another model's weights). Nothing may loop forever either: a link back to a
group that holds it (the weights walk would go round it), or a corrupt global heap (libhdf5
would). The walk checks each link's type before anything behind it is opened, and notes
where the contiguous tensors lie, so that the heap check reads only the bytes between them.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import h5py

from nandoctor.errors import UnreadableFile, first_line
from nandoctor.view import ModelView

_SHOWN_TARGET = 200  # characters of a link's target quoted in a refusal


def open_weights_file(target, label: str, view: ModelView) -> h5py.File:
    """`target` (a path, a window onto a member's bytes, or those bytes themselves) opened by
    h5py for reading and closed with the view; a file h5py cannot open, or that fails
    `check_hdf5_file`, is refused in one line naming it `label`."""
    try:
        h5 = _open_image(target) if isinstance(target, bytes) else h5py.File(target, "r")
    except (OSError, ValueError) as error:
        raise UnreadableFile(f"{label} is not a valid HDF5 file ({first_line(error)})") from None
    view.on_close(h5.close)
    check_hdf5_file(h5, io.BytesIO(target) if isinstance(target, bytes) else target, label)
    return h5


def _open_image(image: bytes) -> h5py.File:
    """An HDF5 file held in memory, read by libhdf5's core driver: its metadata reads stay in
    C, where a file object makes each one a call into Python (a small model's weights member
    opens and walks in about half the time)."""
    access = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    access.set_fapl_core(backing_store=False)
    access.set_file_image(image)
    return h5py.File(h5py.h5f.open(b"in-memory weights", h5py.h5f.ACC_RDONLY, fapl=access))


def check_hdf5_file(h5: h5py.File, target, label: str) -> None:
    """Refuse a file whose links or storage lead outside it, or whose global heap would loop
    libhdf5 forever. Call it before any attribute or object of the file is read."""
    regions = _self_contained_regions(h5, label)
    if not isinstance(target, (str, os.PathLike)) or os.path.isfile(target):
        _check_global_heaps(regions, target, label)


def _self_contained_regions(h5: h5py.File, label: str) -> list[tuple[int, int]]:
    """The byte ranges of the file's contiguous datasets, after checking every link reached
    through hard links (which is every link the file can be read through): hard links are
    opened, soft links are resolved once no link out of the file is left, and anything else
    is refused unopened. A group reached twice (a link back to an ancestor) is refused too:
    the weights walk would go round it forever."""
    regions: list[tuple[int, int]] = []
    soft: list[bytes] = []
    refusal: list[str] = []
    groups = {hash(h5py.h5o.open(h5.id, b"/"))}  # by file and object number

    def visit(name: bytes, info) -> bool | None:
        if info.type == h5py.h5l.TYPE_SOFT:
            soft.append(name)
        elif info.type != h5py.h5l.TYPE_HARD:
            refusal.append(_link_out(h5, name, info.type, label))
            return True  # stops the walk: nothing behind this link is opened
        else:
            item = h5py.h5o.open(h5.id, name)  # every part of `name` is a hard link
            if isinstance(item, h5py.h5g.GroupID):
                if hash(item) in groups:
                    refusal.append(f"{label} links /{_text(name)} to a group it already holds: refusing to "
                                   "walk round a loop")
                    return True
                groups.add(hash(item))
            elif isinstance(item, h5py.h5d.DatasetID):
                offset = item.get_offset()
                if offset is not None:
                    regions.append((offset, offset + item.get_storage_size()))
                else:  # contiguous bytes in this file have an offset; virtual and external storage do not
                    reason = _storage_out(item, _text(name), label)
                    if reason is not None:
                        refusal.append(reason)
                        return True
        return None

    h5.id.links.visit(visit, info=True)
    if refusal:
        raise UnreadableFile(refusal[0])
    for name in soft:  # with no link out of the file left, resolving a soft link stays inside it
        target = _shown(_text(h5.id.links.get_val(name)))
        try:
            item = h5py.h5o.open(h5.id, name)
        except (KeyError, RuntimeError, OSError, ValueError):
            raise UnreadableFile(f"{label} has a soft link /{_text(name)} to {target}, which leads to "
                                 "nothing in the file: refusing to follow it") from None
        if isinstance(item, h5py.h5g.GroupID):  # it may lead back to a group that holds it
            raise UnreadableFile(f"{label} has a soft link /{_text(name)} to the group {target}: refusing "
                                 "to walk round a loop")
    return regions


def _link_out(h5: h5py.File, name: bytes, link_type: int, label: str) -> str:
    if link_type == h5py.h5l.TYPE_EXTERNAL:
        file, path = h5.id.links.get_val(name)
        return (f"{label} has an external link /{_text(name)} to {_shown(_text(file))}:{_shown(_text(path))}: "
                "refusing to follow it out of the file")
    return f"{label} has a user-defined link /{_text(name)} (type {link_type}): refusing to follow it"


def _storage_out(dataset: h5py.h5d.DatasetID, name: str, label: str) -> str | None:
    """Why a dataset's values lie outside the file, read from its creation properties
    (its extent is not asked for: for a virtual dataset that opens the files it maps)."""
    plist = dataset.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        source = _text(plist.get_virtual_filename(0)) if plist.get_virtual_count() else "nowhere"
        return (f"{label} has a virtual dataset /{name} mapping data from {_shown(source)}: "
                "refusing to follow it out of the file")
    if plist.get_external_count() > 0:
        return (f"{label} has a dataset /{name} stored in the external file {_shown(_text(plist.get_external(0)[0]))}: "
                "refusing to follow it out of the file")
    return None


def _text(raw) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN_TARGET else text[:_SHOWN_TARGET] + "..."


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


def _bytes_outside(regions: list[tuple[int, int]], target) -> Iterator[tuple[int, bytes]]:
    """The file's bytes between its contiguous tensors (`regions`), where its metadata and
    heaps live, in windows of at most 8 MiB that overlap, so memory stays bounded whatever
    lies between."""
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
