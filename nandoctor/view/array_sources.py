"""Reading stored tensors in row blocks, with bounded memory, without h5py on the hot path.

Every source presents a tensor as a matrix: `shape[0]` rows (token ids for an embedding)
by the product of the remaining axes. `blocks()` yields `(first_row, block)` with blocks
of about `BLOCK_BYTES`, reusing buffers: memory stays bounded whatever the tensor's size.

The fast path, `FileRegionSource`, reads a contiguous tensor straight from its byte offset
in the file (an HDF5 dataset, even inside a stored zip member, or an `.npy` body); large
ones are mapped window by window and shared between worker threads.
"""

from __future__ import annotations

import functools
import io
import mmap
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import BinaryIO, TypeVar

import numpy as np
from numpy.typing import DTypeLike

from nandoctor.errors import UnreadableFile

BLOCK_BYTES = 4 << 20
# Tensors above this size are split between worker threads: numpy releases the GIL in its
# loops, so two cores halve the time of the statistics pass (measured on a 2-core machine).
_PARALLEL_BYTES = 64 << 20
_WORKERS = min(4, os.cpu_count() or 1)
# `rows_at` reads a tensor up to this size whole rather than row by row.
_READ_WHOLE_BYTES = 256 << 10

T = TypeVar("T")


class ArraySource:
    """A stored tensor: its shape, storage dtype, and a way to stream its rows."""

    def __init__(self, shape: tuple[int, ...], dtype: DTypeLike, bfloat16: bool = False):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        # bfloat16 is stored as uint16 (as Keras writes it); values are widened on read.
        self.bfloat16 = bfloat16
        self.rows = self.shape[0] if self.shape else 1
        self.row_len = _row_len(self.shape[1:]) if len(self.shape) > 1 else 1

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @cached_property
    def logical_dtype(self) -> str:
        # Cached: numpy names a dtype anew on each ask (1.4 us), and loaders and the statistics ask per tensor.
        return "bfloat16" if self.bfloat16 else _dtype_name(self.dtype)

    @property
    def rows_per_block(self) -> int:
        return max(1, BLOCK_BYTES // max(1, self.row_len * self.itemsize))

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        buffer = np.empty((min(self.rows_per_block, self.rows), self.row_len), self.dtype)
        for start in range(0, self.rows, self.rows_per_block):
            count = min(self.rows_per_block, self.rows - start)
            self._read_rows(start, buffer[:count])
            yield start, buffer[:count]

    def map_blocks(self, fn: Callable[[int, np.ndarray], T]) -> list[T]:
        """`fn(first_row, block)` for every block, in row order; `fn` may run on threads."""
        return [fn(start, block) for start, block in self.blocks()]

    def _read_rows(self, start: int, out: np.ndarray) -> None:
        raise NotImplementedError

    # Row names given by the loader from beside the tensor (a KerasHub preset's vocabulary).
    labels: list[str] | None = None

    def row_labels(self, rows: list[int]) -> list[str] | None:
        """Names of the given rows (the words of a word2vec file, a preset's tokens), where
        the file or its folder has them."""
        if self.labels is None:
            return None
        return [self.labels[row] if 0 <= row < len(self.labels) else "" for row in rows]

    def rows_at(self, rows: list[int]) -> np.ndarray:
        """The given rows as a `(len(rows), row_len)` array, by one pass over the blocks."""
        wanted = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(wanted), self.row_len), self.dtype)
        for start, block in self.blocks():
            hit = (wanted >= start) & (wanted < start + len(block))
            out[hit] = block[wanted[hit] - start]
        return widen_bfloat16(out) if self.bfloat16 else out

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows `[start, stop)` in one read where the source allows it."""
        out = np.empty((stop - start, self.row_len), self.dtype)
        try:
            self._read_rows(start, out)
        except NotImplementedError:  # a source that can only stream from the start
            return self.rows_at(list(range(start, stop)))
        return widen_bfloat16(out) if self.bfloat16 else out

    def column_block(self, start: int, stop: int) -> np.ndarray:
        """Columns `[start, stop)` of a matrix, all rows, by one pass over the blocks."""
        out = np.empty((self.rows, stop - start), self.dtype)
        for first, block in self.blocks():
            out[first : first + len(block)] = block[:, start:stop]
        return widen_bfloat16(out) if self.bfloat16 else out

    def read(self) -> np.ndarray:
        """The whole tensor in its logical dtype (bfloat16 widened to float32)."""
        out = np.empty((self.rows, self.row_len), self.dtype)
        for start, block in self.blocks():
            out[start : start + len(block)] = block
        values = widen_bfloat16(out) if self.bfloat16 else out
        return values.reshape(self.shape)


# A model's tensors share a few shapes and dtypes: each answer is kept, as numpy's costs
# microseconds a tensor (`np.prod` of a tuple, `dtype.name`).
@functools.lru_cache(maxsize=4096)
def _row_len(trailing_axes: tuple[int, ...]) -> int:
    return int(np.prod(trailing_axes, dtype=np.int64))


@functools.lru_cache(maxsize=256)
def _dtype_name(dtype: np.dtype) -> str:
    return dtype.name


def widen_bfloat16(raw: np.ndarray) -> np.ndarray:
    return (raw.astype(np.uint32) << 16).view(np.float32)


_HAS_PREADV = hasattr(os, "preadv")  # not on Windows


class FileRegionSource(ArraySource):
    """A C-ordered tensor stored as raw bytes at `offset` in the file at `path`; where the
    loader holds those bytes in memory already (`image`, from `image_offset`), rows are
    copied from there (a small model's tensor costs an open and a read of the file else)."""

    def __init__(
        self,
        path: str,
        offset: int,
        shape,
        dtype,
        bfloat16: bool = False,
        image: bytes | None = None,
        image_offset: int = 0,
    ):
        super().__init__(shape, dtype, bfloat16)
        self.path = path
        self.offset = offset
        self.image = image
        self.image_offset = image_offset

    def _read_rows(self, start: int, out: np.ndarray) -> None:
        if self.image is not None:
            begin = self.image_offset + start * self.row_len * self.itemsize
            if begin + out.nbytes > len(self.image):
                raise UnreadableFile("file ends inside a weight tensor (truncated)")
            out.reshape(-1).view(np.uint8)[...] = np.frombuffer(self.image, np.uint8, out.nbytes, begin)
            return
        position = self.offset + start * self.row_len * self.itemsize
        if not _HAS_PREADV:
            with open(self.path, "rb", buffering=0) as file:
                file.seek(position)
                _read_exactly(file, out)
            return
        # os.preadv into the buffer: a small model's tensor is read in about half the time
        # of a file object's open, seek and readinto.
        view = out.reshape(-1).data.cast("B")
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            got = 0
            while got < len(view):
                n = os.preadv(descriptor, [view[got:]], position + got)
                if not n:
                    raise UnreadableFile("file ends inside a weight tensor (truncated)")
                got += n
        finally:
            os.close(descriptor)

    def rows_at(self, rows: list[int]) -> np.ndarray:
        """A small tensor read whole, once (a median of 2,048 row norms on a small model's
        table was 2,048 opens of the file); a large one row by row through one open file."""
        wanted = [int(row) for row in rows]
        row_bytes = self.row_len * self.itemsize
        if all(0 <= row < self.rows for row in wanted) and (
            self.rows * row_bytes <= max(_READ_WHOLE_BYTES, 4 * len(wanted) * row_bytes)
        ):
            whole = np.empty((self.rows, self.row_len), self.dtype)
            self._read_rows(0, whole)
            out = whole[wanted]
        else:
            out = np.empty((len(wanted), self.row_len), self.dtype)
            with open(self.path, "rb", buffering=0) as file:
                for index, row in enumerate(wanted):
                    data = os.pread(file.fileno(), row_bytes, self.offset + row * row_bytes)
                    if len(data) != row_bytes:
                        raise UnreadableFile("file ends inside a weight tensor (truncated)")
                    out[index] = np.frombuffer(data, self.dtype)
        return widen_bfloat16(out) if self.bfloat16 else out

    def column_block(self, start: int, stop: int) -> np.ndarray:
        """One read per row of just the wanted columns: no pass over the whole matrix."""
        out = np.empty((self.rows, stop - start), self.dtype)
        width = (stop - start) * self.itemsize
        with open(self.path, "rb", buffering=0) as file:
            for row in range(self.rows):
                data = os.pread(file.fileno(), width, self.offset + (row * self.row_len + start) * self.itemsize)
                if len(data) != width:
                    raise UnreadableFile("file ends inside a weight tensor (truncated)")
                out[row] = np.frombuffer(data, self.dtype)
        return widen_bfloat16(out) if self.bfloat16 else out

    def map_blocks(self, fn: Callable[[int, np.ndarray], T]) -> list[T]:
        if not parallel_worth_it(self.rows * self.row_len * self.itemsize):
            return super().map_blocks(fn)
        return map_in_threads(list(range(0, self.rows, self.rows_per_block)), lambda share: self._map_mapped(fn, share))

    def _map_mapped(self, fn, starts: list[int]) -> list[tuple[int, T]]:
        """Run `fn` on blocks seen through memory maps of the file, one window at a time.

        A window is unmapped as soon as it is used, so resident memory stays at a few
        blocks, and the values are read from the page cache without being copied.
        """
        row_bytes = self.row_len * self.itemsize
        results = []
        with open(self.path, "rb") as file:
            if self.offset + self.rows * row_bytes > os.fstat(file.fileno()).st_size:
                raise UnreadableFile("file ends inside a weight tensor (truncated)")
            for start in starts:
                count = min(self.rows_per_block, self.rows - start)
                begin = self.offset + start * row_bytes
                aligned = begin - begin % mmap.ALLOCATIONGRANULARITY
                window = map_read_only(file, aligned, begin - aligned + count * row_bytes)
                try:
                    block = np.frombuffer(
                        window, self.dtype, count=count * self.row_len, offset=begin - aligned
                    ).reshape(count, self.row_len)
                    results.append((start, fn(start, block)))
                    del block
                finally:
                    window.close()
        return results


# Pages mapped in one call rather than faulted in one by one; Linux only.
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)


def map_read_only(file: BinaryIO, offset: int, length: int) -> mmap.mmap:
    """`length` bytes of `file` from `offset` (a multiple of mmap.ALLOCATIONGRANULARITY)."""
    if _POPULATE and hasattr(mmap, "MAP_SHARED"):
        return mmap.mmap(file.fileno(), length, flags=mmap.MAP_SHARED | _POPULATE, prot=mmap.PROT_READ, offset=offset)
    return mmap.mmap(file.fileno(), length, offset=offset, access=mmap.ACCESS_READ)


U = TypeVar("U")


def map_in_threads(units: list[U], work: Callable[[list[U]], list[tuple[int, T]]]) -> list[T]:
    """`work` on interleaved shares of `units` (row blocks, file windows) in worker threads;
    each share's `(first_row, result)` pairs come back merged in row order."""
    shares = [units[worker::_WORKERS] for worker in range(_WORKERS)]
    with ThreadPoolExecutor(_WORKERS, thread_name_prefix="nandoctor-reader") as pool:
        parts = list(pool.map(work, shares))
    return [result for _, result in sorted((item for part in parts for item in part), key=lambda item: item[0])]


def parallel_worth_it(nbytes: int) -> bool:
    return nbytes >= _PARALLEL_BYTES and _WORKERS >= 2


def _read_exactly(file: io.RawIOBase | io.BufferedIOBase, out: np.ndarray) -> None:
    view = out.reshape(-1).data.cast("B")
    got = 0
    while got < len(view):
        n = file.readinto(view[got:])
        if not n:
            raise UnreadableFile("file ends inside a weight tensor (truncated)")
        got += n


class SlicedSource(ArraySource):
    """An array-like read by slicing rows: a chunked or compressed HDF5 dataset, a memmap."""

    def __init__(self, array, bfloat16: bool = False, dtype: np.dtype | None = None):
        # `dtype` reinterprets what the array holds (an opaque 2-byte bfloat16 as uint16).
        super().__init__(array.shape, dtype if dtype is not None else array.dtype, bfloat16)
        self.array = array

    def _slice(self, index) -> np.ndarray:
        values = np.asarray(self.array[index])
        return values.view(self.dtype) if values.dtype.kind == "V" else values

    def _read_rows(self, start: int, out: np.ndarray) -> None:
        count = len(out)
        if not self.shape:
            out[...] = self._slice(())
        else:
            out[...] = self._slice(slice(start, start + count)).reshape(count, self.row_len)

    def column_block(self, start: int, stop: int) -> np.ndarray:
        if len(self.shape) != 2:
            return super().column_block(start, stop)
        values = self._slice((slice(None), slice(start, stop)))
        return widen_bfloat16(values) if self.bfloat16 else values


class StreamSource(ArraySource):
    """A tensor read front to back from a stream that cannot seek (a deflated zip member)."""

    def __init__(self, open_stream, shape, dtype):
        super().__init__(shape, dtype)
        self.open_stream = open_stream

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        buffer = np.empty((min(self.rows_per_block, self.rows), self.row_len), self.dtype)
        with self.open_stream() as stream:
            for start in range(0, self.rows, self.rows_per_block):
                count = min(self.rows_per_block, self.rows - start)
                _read_exactly(stream, buffer[:count])
                yield start, buffer[:count]


class ArrayInMemory(ArraySource):
    """A small tensor already in memory (a word2vec text block, a test)."""

    def __init__(self, array: np.ndarray):
        super().__init__(array.shape, array.dtype)
        self.array = array.reshape(self.rows, self.row_len)

    def _read_rows(self, start: int, out: np.ndarray) -> None:
        out[...] = self.array[start : start + len(out)]


class DequantizedSource(ArraySource):
    """An int8-quantized matrix as the float values it stands for: `q / scale`, the scale per
    row (an Embedding's `embeddings_scale`) or per column (a Dense's `kernel_scale`), as Keras
    dequantizes them."""

    def __init__(self, quantized: ArraySource, scale: np.ndarray, per_row: bool):
        super().__init__(quantized.shape, np.dtype(np.float32))
        self.quantized = quantized
        self.scale = np.asarray(scale, dtype=np.float32).reshape(-1)
        self.per_row = per_row

    def _read_rows(self, start: int, out: np.ndarray) -> None:
        values = self.quantized.read_rows(start, start + len(out)).astype(np.float32)
        scale = self.scale[start : start + len(out), None] if self.per_row else self.scale[None, :]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a broken scale is ND806's to say
            np.divide(values, scale, out=out)
