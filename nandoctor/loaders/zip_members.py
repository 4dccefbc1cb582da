"""Reading members of zip archives (`.keras`, `.npz`) without trusting what they declare."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import tempfile
import zipfile
from typing import Any

from nandoctor.errors import UnreadableFile, first_line

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
# A deflated member that claims to expand more than this is treated as a zip bomb.
MAX_EXPANSION = 1000
MAX_JSON_BYTES = 64 << 20


def open_archive(path: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise UnreadableFile("not a valid zip archive (truncated or corrupt)") from None
    except (OSError, ValueError, EOFError) as error:
        raise UnreadableFile(f"cannot open as a zip archive: {error}") from None


def member_data_offset(path: str, info: zipfile.ZipInfo) -> int:
    """Byte offset of a member's data in the archive file, checked against the file size."""
    with open(path, "rb") as file:
        file.seek(info.header_offset)
        header = file.read(_LOCAL_HEADER.size)
        size = os.fstat(file.fileno()).st_size
    if len(header) < _LOCAL_HEADER.size or header[:4] != _LOCAL_SIGNATURE:
        raise UnreadableFile(f"zip member {info.filename} has a corrupt local header")
    name_length, extra_length = _LOCAL_HEADER.unpack(header)[-2:]
    offset = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    if offset + info.compress_size > size:
        raise UnreadableFile(f"zip member {info.filename} runs past the end of the file (truncated)")
    return offset


def check_expansion(info: zipfile.ZipInfo) -> None:
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_EXPANSION * max(info.compress_size, 1 << 10):
        raise UnreadableFile(
            f"zip member {info.filename} claims {info.file_size} bytes from "
            f"{info.compress_size} compressed: refusing a likely zip bomb"
        )


def read_json_member(archive: zipfile.ZipFile, name: str) -> Any:
    info = archive.getinfo(name)
    if info.file_size > MAX_JSON_BYTES:
        raise UnreadableFile(f"{name} is {info.file_size} bytes, over the {MAX_JSON_BYTES} limit")
    check_expansion(info)
    try:
        with archive.open(info) as member:
            text = member.read(MAX_JSON_BYTES + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise UnreadableFile(f"cannot read {name}: {error}") from None
    return parse_json(text, name)


def read_json_file(path: str, what: str, limit: int = MAX_JSON_BYTES) -> Any:
    """A JSON file beside a model (an unzipped model's config, a shard index), size-limited."""
    size = os.path.getsize(path)
    if size > limit:
        raise UnreadableFile(f"{what} is {size} bytes, over the {limit} limit")
    with open(path, "rb") as file:
        return parse_json(file.read(), what)


def parse_json(text: bytes | str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise UnreadableFile(f"{what} is not valid JSON ({first_line(error)})") from None


class FileWindow(io.RawIOBase):
    """A read-only file object over bytes `[start, start + size)` of another file.

    h5py reads only the HDF5 metadata through it; tensors are read by offset instead.
    """

    def __init__(self, path: str, start: int, size: int):
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 (owned, closed in close())
        self._start = start
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer) -> int:
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        self._file.seek(self._start + self._position)
        got = self._file.readinto(memoryview(buffer)[:wanted])
        self._position += got
        return got

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


def extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """Stream a compressed member to a temporary file (bounded memory); return its path."""
    check_expansion(info)
    handle, temp_path = tempfile.mkstemp(prefix="nandoctor-", suffix=os.path.basename(info.filename))
    try:
        with os.fdopen(handle, "wb") as out, archive.open(info) as member:
            shutil.copyfileobj(member, out, 1 << 20)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        os.unlink(temp_path)
        raise UnreadableFile(f"cannot decompress {info.filename}: {error}") from None
    return temp_path
