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
from nandoctor.view import Layer, ModelView, Weight
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
        buffer = np.empty((min(self.rows_per_block, self.rows), self.row_len), self.dtype)
        with open(self.path, "rb") as file:
            file.readline(MAX_LINE)
            for start in range(0, self.rows, self.rows_per_block):
                count = min(self.rows_per_block, self.rows - start)
                for row in range(count):
                    _read_word(file, start + row)
                    data = file.read(row_bytes)
                    if len(data) != row_bytes:
                        raise UnreadableFile(f"word2vec file ends inside row {start + row} of {self.rows}")
                    buffer[row] = np.frombuffer(data, self.dtype)
                yield start, buffer[:count]

    def row_labels(self, rows: list[int]) -> list[str] | None:
        wanted = set(rows)
        words: dict[int, str] = {}
        with open(self.path, "rb") as file:
            file.readline(MAX_LINE)
            for row in range(max(wanted, default=-1) + 1):
                word = _read_word(file, row)
                file.seek(self.row_len * 4, os.SEEK_CUR)
                if row in wanted:
                    words[row] = _decode(word)
        return [words.get(row, "") for row in rows]


def _read_word(file, row: int) -> bytes:
    """Consume and return `word ` (skipping the newline some writers put before it)."""
    word = bytearray()
    while True:
        char = file.read(1)
        if not char:
            raise UnreadableFile(f"word2vec file ends before row {row}")
        if char == b" " and word:
            return bytes(word)
        if char != b"\n":
            word += char
        if len(word) > MAX_WORD:
            raise UnreadableFile(f"row {row} has no word separator within {MAX_WORD} bytes: corrupt binary")


def _decode(word: bytes) -> str:
    return word.decode("utf-8", "replace")


def _view(path: str, source: ArraySource) -> ModelView:
    name = os.path.splitext(os.path.basename(path))[0]
    layer = Layer(name=name, class_name="EmbeddingMatrix")
    layer.weights = [Weight("embeddings", name, source.shape, source.logical_dtype, source)]
    return ModelView(path=path, format="word2vec", layers=[layer], has_config=False)


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
