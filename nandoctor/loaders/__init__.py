"""Finding model files and choosing the loader for each. Static and TF-free.

Formats are told by their first bytes where they have a signature (zip, HDF5, .npy), and by
their suffix otherwise (word2vec). A directory is walked for supported files; a `.txt` or
`.bin` in a directory is taken only if its first line looks like word vectors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from nandoctor.errors import UnreadableFile, first_line
from nandoctor.view import ModelView

ZIP_SIGNATURE = b"PK\x03\x04"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
NPY_SIGNATURE = b"\x93NUMPY"

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".npy", ".npz", ".vec")
WORD2VEC_SUFFIXES = (".txt", ".vec", ".bin")
_SKIPPED_DIRECTORIES = {"__pycache__", "node_modules", "site-packages"}


@dataclass(frozen=True)
class Target:
    """A file to scan: where it came from decides whether a non-model is an error."""

    path: str
    explicit: bool
    error: str | None = None


def discover(paths: list[str]) -> Iterator[Target]:
    for path in paths:
        if os.path.isdir(path):
            found = list(_walk(path))
            if not found:
                yield Target(path, True, f"no model files found in directory {path}")
            yield from found
        elif os.path.exists(path):
            yield Target(path, True)
        else:
            yield Target(path, True, f"no such file or directory: {path}")


def _walk(directory: str) -> Iterator[Target]:
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRECTORIES)
        for name in sorted(files):
            path = os.path.join(root, name)
            lowered = name.lower()
            if lowered.endswith(MODEL_SUFFIXES):
                yield Target(path, False)
            elif lowered.endswith((".txt", ".bin")):
                from nandoctor.loaders.word2vec import looks_like_vectors

                if looks_like_vectors(path):
                    yield Target(path, False)


def _signature(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read(8)
    except IsADirectoryError:
        raise UnreadableFile("is a directory") from None
    except OSError as error:
        raise UnreadableFile(f"cannot open: {error.strerror or first_line(error)}") from None


def loader_for(path: str) -> Callable[[str], ModelView]:
    """The loader for `path`, by its signature, then its suffix."""
    head = _signature(path)
    lowered = path.lower()
    if head.startswith(ZIP_SIGNATURE) or lowered.endswith((".keras", ".npz")):
        if lowered.endswith(".npz"):
            from nandoctor.loaders.numpy_arrays import load_npz

            return load_npz
        from nandoctor.loaders.keras_zip import load_keras

        return load_keras
    if head.startswith(HDF5_SIGNATURE) or lowered.endswith((".h5", ".hdf5")):
        from nandoctor.loaders.hdf5 import load_hdf5

        return load_hdf5
    if head.startswith(NPY_SIGNATURE) or lowered.endswith(".npy"):
        from nandoctor.loaders.numpy_arrays import load_npy

        return load_npy
    if lowered.endswith(".bin"):
        from nandoctor.loaders.word2vec import load_word2vec_binary

        return load_word2vec_binary
    if lowered.endswith((".txt", ".vec")):
        from nandoctor.loaders.word2vec import load_word2vec_text

        return load_word2vec_text
    raise UnreadableFile(
        "unsupported file type (expected .keras, .h5, .hdf5, .weights.h5, .npy, .npz, .vec, .txt or .bin)"
    )


def guess_format(path: str) -> str | None:
    """The format a file's name claims, for reporting files that could not be read."""
    lowered = path.lower()
    for suffixes, name in (
        ((".weights.h5",), "weights-h5"),
        ((".keras",), "keras"),
        ((".h5", ".hdf5"), "h5"),
        ((".npy",), "npy"),
        ((".npz",), "npz"),
        (WORD2VEC_SUFFIXES, "word2vec"),
    ):
        if lowered.endswith(suffixes) and os.path.isfile(path):
            return name
    return None


def load(path: str) -> ModelView:
    """A ModelView of the file at `path`. Raises `UnreadableFile` with a one-line reason."""
    return loader_for(path)(path)
