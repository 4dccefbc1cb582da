"""What a word2vec file's first line says: whether a `.txt` or `.bin` is one, and its
`rows dim` header. A directory walk asks this of every such file, so it imports nothing
(the reader, `word2vec`, imports numpy: a scan the cache answers never needs it)."""

from __future__ import annotations

MAX_LINE = 1 << 20


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
