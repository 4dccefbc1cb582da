"""Finding model files and choosing the loader for each. Static and TF-free.

`FORMATS` is the one table of the formats nandoctor reads: every lookup (the loader for a
file, the suffixes a directory walk takes, the `format` named in reports, the error for an
unsupported file, the pytest plugin's files) reads it. Adding a format is its loader module
plus one row. A file is matched by its suffix, confirmed by its first bytes where the format
has a signature; a file whose suffix says nothing is matched by its signature alone.
"""

from __future__ import annotations

import importlib
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from nandoctor.errors import UnreadableFile, first_line
from nandoctor.view import ModelView

ZIP_SIGNATURE = b"PK\x03\x04"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
NPY_SIGNATURE = b"\x93NUMPY"


@dataclass(frozen=True)
class Format:
    name: str  # as reports name it (`"format"` in JSON)
    suffixes: tuple[str, ...]
    loader: str  # "module:function" in nandoctor.loaders, imported when a file needs it
    signature: bytes | None = None  # the first bytes, where the format has them
    # A directory walk takes these files by suffix; otherwise only when `sniff` says so
    # (a `.txt` or `.bin` is a word-vector file only if its first line looks like one).
    walked: bool = True
    sniff: str | None = None
    holds_model: bool = True  # False for bare matrices, which `scan --trust` has no model to load from
    # A format that is a directory (an unzipped model): "module:function" saying whether one is.
    directory: str | None = None
    # A format whose file names others as its parts (a shard index): "module:function" giving
    # their names, which a directory walk then leaves to it.
    parts: str | None = None

    def load(self) -> Callable[[str], ModelView]:
        return _function(self.loader)

    def claims(self, lowered: str) -> bool:
        return lowered.endswith(self.suffixes)


FORMATS: tuple[Format, ...] = (
    Format("keras", (".keras",), "keras_zip:load_keras", ZIP_SIGNATURE),
    Format("keras-hub-preset", (), "keras_directory:load_keras_directory", directory="keras_hub_preset:is_preset"),
    Format("keras-dir", (), "keras_directory:load_keras_directory", directory="keras_directory:is_keras_directory"),
    Format("savedmodel", (), "saved_model:load_saved_model", directory="saved_model:is_saved_model"),
    Format("npz", (".npz",), "numpy_arrays:load_npz", ZIP_SIGNATURE, holds_model=False),
    Format("weights-h5", (".weights.h5",), "hdf5:load_hdf5", HDF5_SIGNATURE),
    Format(
        "sharded-weights",
        (".weights.json",),
        "sharded_weights:load_sharded_weights",
        parts="sharded_weights:shard_names",
    ),
    Format("h5", (".h5", ".hdf5"), "hdf5:load_hdf5", HDF5_SIGNATURE),
    Format("npy", (".npy",), "numpy_arrays:load_npy", NPY_SIGNATURE, holds_model=False),
    Format("safetensors", (".safetensors",), "safetensors_file:load_safetensors", holds_model=False),
    Format(
        "tf-checkpoint",
        (".index",),
        "tensor_bundle:load_checkpoint",
        walked=False,
        sniff="tensor_bundle:looks_like_checkpoint",
        holds_model=False,
    ),
    Format("word2vec", (".vec",), "word2vec:load_word2vec_text", holds_model=False),
    Format(
        "word2vec",
        (".txt",),
        "word2vec:load_word2vec_text",
        walked=False,
        sniff="word2vec:looks_like_vectors",
        holds_model=False,
    ),
    Format(
        "word2vec",
        (".bin",),
        "word2vec:load_word2vec_binary",
        walked=False,
        sniff="word2vec:looks_like_vectors",
        holds_model=False,
    ),
)
SUFFIXES = tuple(suffix for format_ in FORMATS for suffix in format_.suffixes)
# The files a model-file walk takes by suffix alone (the pytest plugin's too).
MODEL_SUFFIXES = tuple(suffix for format_ in FORMATS if format_.walked for suffix in format_.suffixes)
_SKIPPED_DIRECTORIES = {"__pycache__", "node_modules", "site-packages"}


def _function(reference: str) -> Callable:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(f"nandoctor.loaders.{module}"), name)


def format_claimed_by(path: str) -> Format | None:
    """The format a file's name claims (the longest suffix wins: `.weights.h5` over `.h5`),
    or the directory format a directory is."""
    if os.path.isdir(path):
        return directory_format(path)
    lowered = path.lower()
    claimed = [f for f in FORMATS if f.claims(lowered)]
    return max(claimed, key=lambda f: max(len(s) for s in f.suffixes if lowered.endswith(s)), default=None)


def directory_format(path: str) -> Format | None:
    """The format of a directory that is one model (an unzipped `.keras`), or None."""
    return next((f for f in FORMATS if f.directory is not None and _function(f.directory)(path)), None)


@dataclass(frozen=True)
class Target:
    """A file to scan: where it came from decides whether a non-model is an error."""

    path: str
    explicit: bool
    error: str | None = None


def discover(paths: list[str]) -> Iterator[Target]:
    """Each file to scan once, in the order given, however often it is named or reached."""
    seen: set[str] = set()
    for path in paths:
        for target in _targets(path):
            key = os.path.realpath(target.path)
            if key not in seen:
                seen.add(key)
                yield target


def _targets(path: str) -> Iterator[Target]:
    if os.path.isdir(path) and directory_format(path) is not None:
        yield Target(path, True)
    elif os.path.isdir(path):
        found = list(_walk(path))
        if not found:
            yield Target(path, True, "no model files found in this directory")
        yield from found
    elif os.path.exists(path):
        yield Target(path, True, _not_regular(path))
    else:
        yield Target(path, True, "no such file or directory")


def _not_regular(path: str) -> str | None:
    """Why `path` cannot be read as a file (a FIFO would block the read forever), or None."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return f"cannot open: {error.strerror or first_line(error)}"
    if stat.S_ISREG(mode):
        return None
    kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
    return f"is {kind}, not a regular file"


def _walk(directory: str) -> Iterator[Target]:
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRECTORIES)
        # A directory that is one model is one target: its files are its parts.
        models = [d for d in dirs if directory_format(os.path.join(root, d)) is not None]
        yield from (Target(os.path.join(root, d), False) for d in models)
        dirs[:] = [d for d in dirs if d not in models]
        parts = {part for name in files for part in _parts_of(os.path.join(root, name))}
        for name in sorted(files):
            path = os.path.join(root, name)
            claimed = format_claimed_by(name)
            if claimed is None or name in parts:
                continue
            special = _not_regular(path)
            if special is not None:
                yield Target(path, False, special)  # reported as skipped, never opened
            elif claimed.walked or (claimed.sniff is not None and _function(claimed.sniff)(path)):
                yield Target(path, False)


def _parts_of(path: str) -> set[str]:
    claimed = format_claimed_by(os.path.basename(path))
    if claimed is None or claimed.parts is None or _not_regular(path) is not None:
        return set()
    try:
        return set(_function(claimed.parts)(path))
    except UnreadableFile:
        return set()  # the index itself is reported when it is scanned


def _signature(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read(8)
    except IsADirectoryError:
        raise UnreadableFile("is a directory") from None
    except OSError as error:
        raise UnreadableFile(f"cannot open: {error.strerror or first_line(error)}") from None


def loader_for(path: str) -> Callable[[str], ModelView]:
    """The loader for `path`: its suffix's format, confirmed by the first bytes where the
    format has a signature; otherwise the format whose signature the bytes carry."""
    if os.path.isdir(path):
        found = directory_format(path)
        if found is None:
            raise UnreadableFile("is a directory")
        return found.load()
    head = _signature(path)
    claimed = format_claimed_by(path)
    if claimed is not None and (claimed.signature is None or head.startswith(claimed.signature)):
        return claimed.load()
    by_signature = next((f for f in FORMATS if f.signature is not None and head.startswith(f.signature)), None)
    if by_signature is not None:
        return by_signature.load()
    if claimed is not None:  # the suffix's loader says what is wrong with the bytes
        return claimed.load()
    raise UnreadableFile(f"unsupported file type (expected {', '.join(SUFFIXES[:-1])} or {SUFFIXES[-1]})")


def guess_format(path: str) -> str | None:
    """The format a file's name claims, for reporting files that could not be read."""
    claimed = format_claimed_by(path)
    return claimed.name if claimed is not None and (os.path.isfile(path) or claimed.directory) else None


def load(path: str) -> ModelView:
    """A ModelView of the file at `path`. Raises `UnreadableFile` with a one-line reason."""
    return loader_for(path)(path)
