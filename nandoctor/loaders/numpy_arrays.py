"""Raw embedding matrices saved by numpy: `.npy` and `.npz`, never unpickled.

Headers are parsed by numpy's own reader (a literal, not code); arrays of Python objects
are refused, since reading them would mean unpickling.
"""

from __future__ import annotations

import contextlib
import math
import os
import tokenize
import zipfile

import numpy as np
from numpy.lib import format as npy_format

from nandoctor.errors import NotAModel, UnreadableFile, first_line
from nandoctor.loaders.zip_members import (
    FileWindow,
    check_expansion,
    member_data_offset,
    open_archive,
)
from nandoctor.view import Layer, ModelView
from nandoctor.view.array_sources import (
    ArraySource,
    FileRegionSource,
    SlicedSource,
    StreamSource,
)


def _read_header(stream, what: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = npy_format.read_magic(stream)
        reader = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, fortran_order, dtype = reader(stream)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, tokenize.TokenError) as error:
        raise UnreadableFile(f"{what} is not a valid .npy array ({first_line(error)})") from None
    if dtype.hasobject or dtype.kind not in "fiub" or dtype.fields is not None:
        raise UnreadableFile(f"{what} holds {dtype} values (Python objects are never unpickled)")
    return tuple(shape), fortran_order, dtype


def _check_size(shape, dtype: np.dtype, available: int, what: str) -> None:
    declared = math.prod(shape) * dtype.itemsize
    if declared > available:
        raise UnreadableFile(
            f"{what} declares shape {shape} ({declared} bytes) but holds {available} bytes (truncated or absurd)"
        )


def load_npy(path: str) -> ModelView:
    name = os.path.splitext(os.path.basename(path))[0]
    with open(path, "rb") as file:
        shape, fortran_order, dtype = _read_header(file, os.path.basename(path))
        offset = file.tell()
        size = os.fstat(file.fileno()).st_size
    _check_size(shape, dtype, size - offset, os.path.basename(path))
    if fortran_order:
        source: ArraySource = SlicedSource(np.load(path, mmap_mode="r", allow_pickle=False))
    else:
        source = FileRegionSource(path, offset, shape, dtype)
    return ModelView(
        path=path, format="npy", layers=[Layer.of_matrix(name, source, len(source.shape) == 2)], has_config=False
    )


def load_npz(path: str) -> ModelView:
    layers = []
    with open_archive(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            source = _member_source(path, archive, info)
            layers.append(Layer.of_matrix(info.filename[: -len(".npy")], source, len(source.shape) == 2))
    if not layers:
        raise NotAModel("zip archive holds no .npy arrays")
    return ModelView(path=path, format="npz", layers=layers, has_config=False)


def _member_source(path: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> ArraySource:
    what = f"{os.path.basename(path)}:{info.filename}"
    if info.compress_type == zipfile.ZIP_STORED:
        offset = member_data_offset(path, info)
        with FileWindow(path, offset, info.file_size) as window:
            shape, fortran_order, dtype = _read_header(window, what)
            header_size = window.tell()
        _check_size(shape, dtype, info.file_size - header_size, what)
        if not fortran_order:
            return FileRegionSource(path, offset + header_size, shape, dtype)
    else:
        check_expansion(info)
        try:
            with archive.open(info) as member:
                shape, fortran_order, dtype = _read_header(member, what)
                header_size = member.tell()
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise UnreadableFile(f"cannot read {what}: {first_line(error)}") from None
        _check_size(shape, dtype, info.file_size - header_size, what)
        if not fortran_order:
            return StreamSource(lambda: _member_body(path, info, header_size), shape, dtype)
    raise UnreadableFile(f"{what} is stored in Fortran order, which nandoctor reads only from .npy files")


@contextlib.contextmanager
def _member_body(path: str, info: zipfile.ZipInfo, header_size: int):
    """The member's stream, positioned after its .npy header."""
    with zipfile.ZipFile(path) as archive, archive.open(info) as member:
        member.read(header_size)
        yield member
