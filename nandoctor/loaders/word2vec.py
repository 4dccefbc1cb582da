"""word2vec embedding files, as gensim and the original C tool write them.

Text (`.txt`, `.vec`): an optional `rows dim` header line, then one `word v1 ... vdim` line
per row (GloVe files have no header). Binary (`.bin`): a `rows dim` header line, then per
row the word, a space, and `dim` little-endian float32 values. Both are parsed front to
back in row blocks, so memory stays bounded.
"""

from __future__ import annotations

import functools
import io
import itertools
import mmap
import os
import re
from collections.abc import Callable, Iterator
from typing import NamedTuple, TypeVar

import numpy as np
from numpy.lib.stride_tricks import as_strided

from nandoctor.errors import UnreadableFile
from nandoctor.loaders.word2vec_header import MAX_LINE, sniff_header
from nandoctor.view import Layer, ModelView
from nandoctor.view.array_sources import ArraySource, map_in_threads, map_read_only, parallel_worth_it

MAX_WORD = 1 << 16

T = TypeVar("T")


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
    """Parsing the numbers is what a text file costs, and the rules read a table more than
    once (the statistics, then a row's norm): a table that fits in one block keeps that block
    once parsed (at most `BLOCK_BYTES`); a larger one is parsed again on each pass."""

    def __init__(self, path: str, rows: int, dim: int, skip_header: bool):
        super().__init__((rows, dim), np.float32)
        self.path = path
        self.skip_header = skip_header
        self._only_block: np.ndarray | None = None

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        if self._only_block is not None:
            yield 0, self._only_block
            return
        for start, block in self._parsed_blocks():
            if start == 0 and len(block) == self.rows:
                self._only_block = block
            yield start, block

    def _parsed_blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        dim = self.row_len
        with open(self.path, "rb") as file:
            if self.skip_header:
                file.readline(MAX_LINE)
            first_line = 1 + self.skip_header
            next_line = functools.partial(file.readline, MAX_LINE)
            for start in range(0, self.rows, self.rows_per_block):
                count = min(self.rows_per_block, self.rows - start)
                lines = list(itertools.islice(iter(next_line, b""), count))
                block = _parse_in_c(lines, count, dim)
                if block is None:
                    block = _parse_line_by_line(lines, count, dim, start, self.rows, first_line)
                yield start, block
                first_line += count

    def row_labels(self, rows: list[int]) -> list[str] | None:
        wanted = set(rows)
        words: dict[int, str] = {}
        with open(self.path, "rb") as file:
            if self.skip_header:
                file.readline(MAX_LINE)
            lines = itertools.islice(iter(functools.partial(file.readline, MAX_LINE), b""), max(wanted, default=-1) + 1)
            for row, line in enumerate(lines):
                if row in wanted:
                    words[row] = _decode(line.rstrip().rsplit(None, self.row_len)[0] if line.strip() else b"")
        return [words.get(row, "") for row in rows]


# numpy's text reader decodes bytes as latin-1 and splits on any Unicode space; these six
# bytes are spaces to it but not to `bytes.split`. Mapped to a byte that is neither, they
# stay inside their token, so the reader splits a line exactly where `bytes.split` does.
# Looked for first: finding none costs an eighth of mapping them (44 us against 348 a MiB).
_READER_ONLY_SPACES = (b"\x1c", b"\x1d", b"\x1e", b"\x1f", b"\x85", b"\xa0")
_NOT_SPACE = bytes.maketrans(b"".join(_READER_ONLY_SPACES), b"\x80" * len(_READER_ONLY_SPACES))


def _ignore_word(_field: str) -> float:
    return 0.0


def _parse_in_c(lines: list[bytes], count: int, dim: int) -> np.ndarray | None:
    """The block's values parsed by numpy's C text reader, 2 to 3 times faster than splitting
    each line in Python; None where the reader could disagree with `_parse_line_by_line`,
    which then decides and names the fault.

    The reader parses each value to a double with the parser Python's `float` uses (less its
    underscores) and rounds it to float32, as `np.array` rounds `float`'s. The word is all
    before the last `dim` fields; the converter on the field before them proves that each
    line has at least `dim + 1`. The reader skips blank lines (the row count then differs),
    and does not warn where a finite value overflows float32, as `np.array` does (a block with
    a value that is not finite goes to the per-line parse). A line that `readline` cut at
    MAX_LINE reads the same both ways: mid-block it joins the next piece (the row count
    differs), last in the block it is one row in both."""
    if len(lines) < count or lines[0].isspace():
        return None  # at the end of the file; a blank first line would make the reader warn of no data
    text = b"".join(lines)
    if any(map(text.__contains__, _READER_ONLY_SPACES)):
        text = text.translate(_NOT_SPACE)
    try:
        table = np.loadtxt(
            io.BytesIO(text),
            dtype=np.float32,
            comments=None,
            usecols=range(-dim - 1, 0),
            converters={-dim - 1: _ignore_word},
            ndmin=2,
            encoding="latin1",
        )
    except ValueError:
        return None
    if table.shape != (count, dim + 1) or not np.isfinite(table).all():
        return None
    return np.ascontiguousarray(table[:, 1:])


def _parse_line_by_line(lines: list[bytes], count: int, dim: int, start: int, rows: int, first_line: int) -> np.ndarray:
    """The reference parse: the last `dim` fields of each line, converted by `np.array`. Every
    fault of a block is found here, in the order a reader front to back meets it."""
    values: list[list[bytes]] = []
    for line_number, line in enumerate(lines, first_line):
        fields = line.rstrip().rsplit(None, dim)[1:]
        if len(fields) != dim:
            raise UnreadableFile(f"line {line_number}: expected {dim} values, found {len(fields)}")
        values.append(fields)
    if len(lines) < count:
        raise UnreadableFile(f"word2vec file ends at row {start + len(lines)} of {rows}")
    try:
        return np.array(values, dtype=np.float32)
    except ValueError:
        raise UnreadableFile(not_a_number(values, first_line)) from None


def not_a_number(values: list[list[bytes]], first_line: int) -> str:
    """The first field of a block that is not a number, with its line: looked for only once
    the block as a whole has failed to parse."""
    for line_number, fields in enumerate(values, first_line):
        for field in fields:
            try:
                np.array(field, dtype=np.float32)
            except ValueError:
                return f"line {line_number}: {_decode(field[:40])!r} is not a number"
    return f"a value near line {first_line + len(values)} is not a number"


class Word2VecBinarySource(ArraySource):
    """Finding the records is a walk that holds the GIL (the regex engine); gathering their
    vectors and the statistics are numpy, which lets it go. So the walk runs first, once,
    and keeps only where each window's vectors start (4 bytes a row); the passes over the
    values then map those windows again, on worker threads for a large file. Interleaving
    the two on threads was no faster: each numpy call waited for the walk to let go."""

    def __init__(self, path: str, rows: int, dim: int):
        super().__init__((rows, dim), np.dtype("<f4"))
        self.path = path
        self._windows: list[_Window] | None = None

    def windows(self) -> list[_Window]:
        if self._windows is None:
            self._windows = [
                _Window(run.first_row, run.window_start, len(run.buffer), run.vector_starts.astype(np.uint32))
                for run in _records(self.path, self.rows, self.row_len)
            ]
        return self._windows

    def row_offsets(self, rows) -> np.ndarray:
        """Where the given rows' vectors start in the file (`nandoctor fix` rewrites them)."""
        windows = self.windows()
        firsts = np.array([window.first_row for window in windows], np.int64)
        offsets = []
        for row in np.asarray(rows, np.int64):
            window = windows[int(np.searchsorted(firsts, row, side="right")) - 1]
            offsets.append(window.offset + int(window.vector_starts[row - window.first_row]))
        return np.array(offsets, np.int64)

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        with open(self.path, "rb") as file:
            for window in self.windows():
                yield from self._window_blocks(file, window)

    def map_blocks(self, fn: Callable[[int, np.ndarray], T]) -> list[T]:
        windows = self.windows()
        if not parallel_worth_it(self.rows * self.row_len * self.itemsize):
            return super().map_blocks(fn)

        def work(share: list[_Window]) -> list[tuple[int, T]]:
            with open(self.path, "rb") as file:
                return [
                    (start, fn(start, block)) for window in share for start, block in self._window_blocks(file, window)
                ]

        return map_in_threads(windows, work)

    def _window_blocks(self, file, window: _Window) -> Iterator[tuple[int, np.ndarray]]:
        row_bytes = self.row_len * 4
        mapped = map_read_only(file, window.offset, window.length)
        # Every byte offset of the window seen as the start of a row: indexing that view with
        # the vectors' offsets gathers them in one copy, in C; block by block, so the
        # statistics read the copy while it is still in the cache.
        as_bytes = np.frombuffer(mapped, np.uint8, int(window.vector_starts[-1]) + row_bytes)
        every_offset = as_strided(as_bytes, (len(as_bytes) - row_bytes + 1, row_bytes), (1, 1))
        for offset in range(0, len(window.vector_starts), self.rows_per_block):
            starts = window.vector_starts[offset : offset + self.rows_per_block]
            yield window.first_row + offset, every_offset[starts].view(self.dtype)

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
    """The whole records of one window of the file: their words (each with the newline that
    may precede it) and the offsets of their vectors in `buffer`, the window mapped from
    `window_start` in the file."""

    first_row: int
    window_start: int
    buffer: mmap.mmap
    words: list[bytes]
    vector_starts: np.ndarray


class _Window(NamedTuple):
    """Where a run of records lies: the file region to map and its vectors' offsets in it."""

    first_row: int
    offset: int
    length: int
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
    """The file after its header as runs of whole records, one mapped window at a time.
    The run of contiguous records is matched first, so bytes that are not a record stop
    the walk instead of being skipped; the next window starts where the run stopped. The
    regex reads the page cache through the map: nothing is copied, and no thread is needed
    to read ahead (one that did spent its time waiting for the regex to let go of the GIL)."""
    row_bytes = dim * 4
    if row_bytes > _MAX_ROW_BYTES:
        raise UnreadableFile(f"word2vec header declares {dim} values per row, more than nandoctor reads")
    words_of_records, contiguous_records = _record_patterns(row_bytes)
    longest_record = 1 + MAX_WORD + 1 + row_bytes
    with open(path, "rb") as file:
        file.readline(MAX_LINE)
        position, file_size = file.tell(), os.fstat(file.fileno()).st_size
        row = 0
        while row < rows:
            if position >= file_size:
                raise UnreadableFile(f"word2vec file ends at row {row} of {rows}")
            window_start = position - position % mmap.ALLOCATIONGRANULARITY
            window_end = min(file_size, position + _CHUNK + longest_record)
            # Unmapped once the run and every block gathered from it are gone.
            window = map_read_only(file, window_start, window_end - window_start)
            start, size = position - window_start, window_end - window_start
            records = contiguous_records.match(window, start, size)
            assert records is not None  # a possessive `*+` matches, if only the empty string
            end = records.end()
            words = words_of_records.findall(window, start, end)[: rows - row]
            if size - end >= longest_record and row + len(words) < rows:
                raise UnreadableFile(
                    f"row {row + len(words)} is not a word, a space and {dim} float32 values: corrupt binary"
                )
            if not words:
                raise UnreadableFile(f"word2vec file ends inside row {row} of {rows}")
            record_ends = np.cumsum(np.fromiter(map(len, words), np.int64, len(words)) + (1 + row_bytes))
            yield _RecordRun(row, window_start, window, words, start + record_ends - row_bytes)
            row += len(words)
            position = window_start + end


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
