"""word2vec embedding files, as gensim and the original C tool write them.

Text (`.txt`, `.vec`): an optional `rows dim` header line, then one `word v1 ... vdim` line
per row (GloVe files have no header). Binary (`.bin`): a `rows dim` header line, then per
row the word, a space, and `dim` little-endian float32 values. Both are parsed front to
back in row blocks, so memory stays bounded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

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
        for first, chunk, spaces in _records(self.path, self.rows, self.row_len):
            # Each row's bytes follow the space after its word: joined in one copy per chunk.
            joined = b"".join([chunk[space + 1 : space + 1 + row_bytes] for space in spaces])
            block = np.frombuffer(joined, self.dtype).reshape(len(spaces), self.row_len)
            for offset in range(0, len(block), self.rows_per_block):
                yield first + offset, block[offset : offset + self.rows_per_block]

    def row_labels(self, rows: list[int]) -> list[str] | None:
        wanted = set(rows)
        row_bytes = self.row_len * 4
        words: dict[int, str] = {}
        for first, chunk, spaces in _records(self.path, max(wanted, default=-1) + 1, self.row_len):
            for index, space in enumerate(spaces):
                if first + index in wanted:
                    start = spaces[index - 1] + 1 + row_bytes if index else 0
                    start += chunk[start:start + 1] == b"\n"
                    words[first + index] = _decode(chunk[start:space])
        return [words.get(row, "") for row in rows]


_CHUNK = 8 << 20


def _records(path: str, rows: int, dim: int) -> Iterator[tuple[int, bytes, list[int]]]:
    """The file after its header, chunk by chunk: (first row, the chunk's bytes, and for each
    whole record in it the space that ends its word; the word starts where the previous
    record's vector ends, after an optional newline). Record boundaries are found with
    `bytes.find`, not a loop over characters; a record cut by the chunk's end begins the next
    chunk."""
    row_bytes = dim * 4
    read_size = max(_CHUNK, row_bytes + 2)
    with open(path, "rb") as file:
        file.readline(MAX_LINE)
        pending = b""
        row = 0
        while row < rows:
            fresh = file.read(read_size)
            chunk = pending + fresh
            spaces: list[int] = []
            append, position, found = spaces.append, 0, 0
            find, size, wanted = chunk.find, len(chunk), rows - row
            # The hot loop of a million-row file: one bytes.find per record.
            while found < wanted:
                start = position + 1 if position < size and chunk[position] == 10 else position  # 10: b"\n"
                space = find(b" ", start + 1, start + MAX_WORD + 1)
                if space < 0:
                    if size - start > MAX_WORD:
                        raise UnreadableFile(f"row {row + found} has no word separator within {MAX_WORD} "
                                             "bytes: corrupt binary")
                    break
                end = space + 1 + row_bytes
                if end > size:
                    break
                append(space)
                position, found = end, found + 1
            if not spaces:
                if not fresh:
                    raise UnreadableFile(f"word2vec file ends inside row {row} of {rows}")
                pending = chunk
                continue
            yield row, chunk, spaces
            row += found
            pending = chunk[position:]


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
