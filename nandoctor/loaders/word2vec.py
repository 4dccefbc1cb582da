"""word2vec embedding files, as gensim and the original C tool write them.

Text (`.txt`, `.vec`): an optional `rows dim` header line, then one `word v1 ... vdim` line
per row (GloVe files have no header). Binary (`.bin`): a `rows dim` header line, then per
row the word, a space, and `dim` little-endian float32 values. Both are parsed front to
back in row blocks, so memory stays bounded.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from nandoctor.errors import UnreadableFile
from nandoctor.view import Layer, ModelView
from nandoctor.view.array_sources import ArraySource

MAX_LINE = 1 << 20
MAX_WORD = 1 << 16


def sniff_header(path: str) -> tuple[int, int] | None:
    """`(rows, dim)` when the file starts with a word2vec header line, else None."""
    try:
        with open(path, "rb") as file:
            first = file.readline(256)
    except OSError:
        return None
    parts = first.split()
    if len(parts) == 2 and all(part.isdigit() for part in parts):
        return int(parts[0]), int(parts[1])
    return None


def looks_like_vectors(path: str) -> bool:
    """A `rows dim` header, or a GloVe-style first line: a word then at least two numbers."""
    if sniff_header(path) is not None:
        return True
    try:
        with open(path, "rb") as file:
            fields = file.readline(MAX_LINE).split()
        if len(fields) < 3:
            return False
        [float(field) for field in fields[1:]]
    except (OSError, ValueError):
        return False
    return True


def _checked_header(path: str, header: tuple[int, int] | None, min_bytes_per_value: int) -> tuple[int, int]:
    if header is None:
        raise UnreadableFile("no `rows dim` header line: not a word2vec file")
    rows, dim = header
    if dim <= 0:
        raise UnreadableFile(f"word2vec header declares dimension {dim}")
    if rows * dim * min_bytes_per_value > os.path.getsize(path):
        raise UnreadableFile(
            f"word2vec header declares {rows} x {dim} values, more than the file can hold (truncated or absurd)"
        )
    return rows, dim


class Word2VecTextSource(ArraySource):
    def __init__(self, path: str, rows: int, dim: int, skip_header: bool):
        super().__init__((rows, dim), np.float32)
        self.path = path
        self.skip_header = skip_header

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        dim = self.row_len
        with open(self.path, "rb") as file:
            if self.skip_header:
                file.readline(MAX_LINE)
            line_number = 1 + self.skip_header
            for start in range(0, self.rows, self.rows_per_block):
                count = min(self.rows_per_block, self.rows - start)
                values = []
                for _ in range(count):
                    line = file.readline(MAX_LINE)
                    if not line:
                        raise UnreadableFile(f"word2vec file ends at row {start + len(values)} of {self.rows}")
                    fields = line.rstrip().rsplit(None, dim)[1:]
                    if len(fields) != dim:
                        raise UnreadableFile(f"line {line_number}: expected {dim} values, found {len(fields)}")
                    values.append(fields)
                    line_number += 1
                try:
                    block = np.array(values, dtype=np.float32)
                except ValueError:
                    raise UnreadableFile(f"a value near line {line_number} is not a number") from None
                yield start, block

    def row_labels(self, rows: list[int]) -> list[str] | None:
        wanted = set(rows)
        words: dict[int, str] = {}
        with open(self.path, "rb") as file:
            if self.skip_header:
                file.readline(MAX_LINE)
            for row in range(max(wanted, default=-1) + 1):
                line = file.readline(MAX_LINE)
                if row in wanted:
                    words[row] = _decode(line.rstrip().rsplit(None, self.row_len)[0] if line.strip() else b"")
        return [words.get(row, "") for row in rows]


class Word2VecBinarySource(ArraySource):
    def __init__(self, path: str, rows: int, dim: int):
        super().__init__((rows, dim), np.dtype("<f4"))
        self.path = path

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        row_bytes = self.row_len * 4
        for run in _records(self.path, self.rows, self.row_len):
            # Every byte offset of the buffer seen as the start of a row: indexing that view
            # with the vectors' offsets gathers them in one copy, in C.
            as_bytes = np.frombuffer(run.buffer, np.uint8, int(run.vector_starts[-1]) + row_bytes)
            every_offset = as_strided(as_bytes, (len(as_bytes) - row_bytes + 1, row_bytes), (1, 1))
            block = every_offset[run.vector_starts].view(self.dtype)
            for offset in range(0, len(block), self.rows_per_block):
                yield run.first_row + offset, block[offset : offset + self.rows_per_block]

    def row_labels(self, rows: list[int]) -> list[str] | None:
        wanted = set(rows)
        words: dict[int, str] = {}
        for run in _records(self.path, max(wanted, default=-1) + 1, self.row_len):
            for index, word in enumerate(run.words):
                if run.first_row + index in wanted:
                    words[run.first_row + index] = _decode(word[1:] if word[:1] == b"\n" and len(word) > 1 else word)
        return [words.get(row, "") for row in rows]


_CHUNK = 8 << 20
_MAX_ROW_BYTES = 1 << 30  # a bound for the regex's repeat count: 268M float32 per row


class _RecordRun(NamedTuple):
    """The whole records of one chunk: their words (each with the newline that may precede
    it) and the offsets of their vectors in `buffer`, which is reused for a later chunk."""

    first_row: int
    buffer: bytearray
    words: list[bytes]
    vector_starts: np.ndarray


@functools.lru_cache(maxsize=8)
def _record_patterns(row_bytes: int) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """One record (an optional newline, the word, a space, then exactly `row_bytes` bytes of
    any value) capturing its word, and a possessive run of contiguous records. `.{n}` under
    DOTALL advances n bytes without looking at them, so the regex engine walks the records
    in C and `findall` hands back only the short words."""
    record = rb"(\n?[^ ]{1,%d}) .{%d}" % (MAX_WORD, row_bytes)
    return re.compile(record, re.DOTALL), re.compile(rb"(?:%s)*+" % record.replace(b"(", b"(?:"), re.DOTALL)


def _records(path: str, rows: int, dim: int) -> Iterator[_RecordRun]:
    """The file after its header as runs of whole records, chunk by chunk. The run of
    contiguous records is matched first, so bytes that are not a record stop the walk
    instead of being skipped; a record cut by the chunk's end is put in front of the next
    chunk. Two buffers take turns: the next chunk is read in a thread (file reads release
    the GIL) while the caller consumes this one."""
    row_bytes = dim * 4
    if row_bytes > _MAX_ROW_BYTES:
        raise UnreadableFile(f"word2vec header declares {dim} values per row, more than nandoctor reads")
    words_of_records, contiguous_records = _record_patterns(row_bytes)
    longest_record = 1 + MAX_WORD + 1 + row_bytes
    # Each buffer keeps room in front for the cut record carried over from the other.
    buffers = (bytearray(longest_record + _CHUNK), bytearray(longest_record + _CHUNK))
    with open(path, "rb") as file, ThreadPoolExecutor(1) as reader:
        file.readline(MAX_LINE)

        def read_chunk(buffer: bytearray) -> int:
            return file.readinto(memoryview(buffer)[longest_record:])

        pending = reader.submit(read_chunk, buffers[0])
        row, cut_record = 0, b""
        for turn in itertools.cycle((0, 1)):
            if row >= rows:
                return
            buffer, fresh = buffers[turn], pending.result()
            # The other buffer's records were consumed before this generator resumed.
            pending = reader.submit(read_chunk, buffers[1 - turn])
            start, size = longest_record - len(cut_record), longest_record + fresh
            buffer[start:longest_record] = cut_record
            end = contiguous_records.match(buffer, start, size).end()
            words = words_of_records.findall(buffer, start, end)[: rows - row]
            if size - end >= longest_record and row + len(words) < rows:
                raise UnreadableFile(f"row {row + len(words)} is not a word, a space and {dim} float32 values: "
                                     "corrupt binary")
            if not words and not fresh:
                raise UnreadableFile(f"word2vec file ends inside row {row} of {rows}")
            cut_record = bytes(buffer[end:size])
            if words:
                record_ends = np.cumsum(np.fromiter(map(len, words), np.int64, len(words)) + (1 + row_bytes))
                yield _RecordRun(row, buffer, words, start + record_ends - row_bytes)
                row += len(words)


def _decode(word: bytes) -> str:
    return word.decode("utf-8", "replace")


def _view(path: str, source: ArraySource) -> ModelView:
    name = os.path.splitext(os.path.basename(path))[0]
    return ModelView(path=path, format="word2vec", layers=[Layer.of_matrix(name, source, True)], has_config=False)


def load_word2vec_text(path: str) -> ModelView:
    header = sniff_header(path)
    if header is not None:
        rows, dim = _checked_header(path, header, 2)
        return _view(path, Word2VecTextSource(path, rows, dim, skip_header=True))
    rows, dim = _count_headerless(path)
    return _view(path, Word2VecTextSource(path, rows, dim, skip_header=False))


def _count_headerless(path: str) -> tuple[int, int]:
    """GloVe-style text: the dimension from the first line, the rows by counting lines."""
    with open(path, "rb") as file:
        first = file.readline(MAX_LINE)
        dim = len(first.split()) - 1
        if dim <= 0:
            raise UnreadableFile("first line is not `word value...`: not a word2vec text file")
        rows = 1
        last = b"\n"
        for chunk in iter(lambda: file.read(1 << 20), b""):
            rows += chunk.count(b"\n")
            last = chunk[-1:]
        if last != b"\n":  # a last line without its newline
            rows += 1
    return rows, dim


def load_word2vec_binary(path: str) -> ModelView:
    rows, dim = _checked_header(path, sniff_header(path), 4)
    return _view(path, Word2VecBinarySource(path, rows, dim))
