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
from typing import TYPE_CHECKING

from nandoctor.errors import UnreadableFile, first_line

if TYPE_CHECKING:
    from nandoctor.view import ModelView  # a loader's module imports it: numpy, which finding files never needs

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
    # Its loader reads files beside it that share its name's stem (a checkpoint's data shards,
    # a shard index's shards): a cached result of one holds while they are unchanged too.
    reads_beside: bool = False

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
        parts="shard_index:shard_names",
        reads_beside=True,
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
        reads_beside=True,
    ),
    Format("word2vec", (".vec",), "word2vec:load_word2vec_text", holds_model=False),
    Format(
        "word2vec",
        (".txt",),
        "word2vec:load_word2vec_text",
        walked=False,
        sniff="word2vec_header:looks_like_vectors",
        holds_model=False,
    ),
    Format(
        "word2vec",
        (".bin",),
        "word2vec:load_word2vec_binary",
        walked=False,
        sniff="word2vec_header:looks_like_vectors",
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
    return _claimed_by_name(path.lower())


# Every suffix with its format (the first in FORMATS where two claim one), and the most dots
# a suffix has: a name's longest suffix that is here is the one `format_claimed_by` takes
# (`.weights.h5` over `.h5`), found by a lookup per dot rather than a test per suffix, as a
# walk of thousands of files asks for each.
_BY_SUFFIX: dict[str, Format] = {}
for _format in FORMATS:
    for _suffix in _format.suffixes:
        _BY_SUFFIX.setdefault(_suffix, _format)
del _format, _suffix
_MOST_DOTS = max(suffix.count(".") for suffix in _BY_SUFFIX)


def _claimed_by_name(lowered: str) -> Format | None:
    """The format a lowercased file name claims by its suffix alone (nothing on disk is asked)."""
    parts = lowered.split(".")
    for dots in range(min(_MOST_DOTS, len(parts) - 1), 0, -1):
        claimed = _BY_SUFFIX.get("." + ".".join(parts[-dots:]))
        if claimed is not None:
            return claimed
    return None


def reads_files_beside(name: str) -> bool:
    """A file called `name` is of a format whose loader reads files beside it (by its name
    alone: no other format a file's first bytes could claim reads any)."""
    claimed = _claimed_by_name(name.lower())
    return claimed is not None and claimed.reads_beside


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
        for target, real_path in _targets(path):
            if real_path not in seen:
                seen.add(real_path)
                yield target


def _targets(path: str) -> Iterator[tuple[Target, str]]:
    """The targets `path` names, each with its real path (what tells the same file apart)."""
    if os.path.isdir(path) and directory_format(path) is not None:
        yield Target(path, True), os.path.realpath(path)
    elif os.path.isdir(path):
        found = list(_walk(path, os.path.realpath(path)))
        if not found:
            yield Target(path, True, "no model files found in this directory"), os.path.realpath(path)
        yield from found
    elif os.path.exists(path):
        yield Target(path, True, _not_regular(path)), os.path.realpath(path)
    else:
        yield Target(path, True, "no such file or directory"), os.path.realpath(path)


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


def _walk(folder: str, real_folder: str) -> Iterator[tuple[Target, str]]:
    """The model files and model folders under `folder`, top-down, each folder's in name order
    (as `os.walk` gives them), with their real paths. The walk never follows a link into a
    folder, so an entry that is not itself a link has its real path under its folder's: a
    thousand files cost one `realpath` of the folder, not one each (with a `lstat` per part)."""
    try:
        with os.scandir(folder) as listed:
            entries = list(listed)
    except OSError:
        return  # a folder that cannot be listed is passed over, as os.walk does
    folders: list[os.DirEntry] = []
    files: list[os.DirEntry] = []
    for entry in entries:
        (folders if _is_folder(entry) else files).append(entry)
    folders = sorted(
        (entry for entry in folders if not entry.name.startswith(".") and entry.name not in _SKIPPED_DIRECTORIES),
        key=lambda entry: entry.name,
    )
    # A directory that is one model is one target: its files are its parts.
    models = [entry for entry in folders if directory_format(entry.path) is not None]
    yield from ((Target(entry.path, False), _real_path(entry, real_folder)) for entry in models)
    claims = sorted(
        (entry.name, entry, claimed) for entry in files if (claimed := _claimed_by_name(entry.name.lower())) is not None
    )
    parts = {
        part for _, entry, claimed in claims if claimed.parts is not None for part in _parts_of(entry.path, claimed)
    }
    for name, entry, claimed in claims:
        if name in parts:
            continue
        special = None if _is_regular_file(entry) else _not_regular(entry.path)
        if special is not None:
            yield (
                Target(entry.path, False, special),
                _real_path(entry, real_folder),
            )  # reported as skipped, never opened
        elif claimed.walked or (claimed.sniff is not None and _function(claimed.sniff)(entry.path)):
            yield Target(entry.path, False), _real_path(entry, real_folder)
    for entry in folders:
        if entry not in models and not _is_link(entry):
            yield from _walk(entry.path, os.path.join(real_folder, entry.name))


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # a link to a folder too, as os.walk counts it
    except OSError:
        return False


def _is_link(entry: os.DirEntry) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return False


def _is_regular_file(entry: os.DirEntry) -> bool:
    """True for a regular file (or a link to one), from the folder's listing where it says so."""
    try:
        return entry.is_file()
    except OSError:
        return False


def _real_path(entry: os.DirEntry, real_folder: str) -> str:
    return os.path.realpath(entry.path) if _is_link(entry) else os.path.join(real_folder, entry.name)


def _parts_of(path: str, claimed: Format) -> set[str]:
    """The files that the file at `path`, of a format with parts, names as its own."""
    if claimed.parts is None or _not_regular(path) is not None:
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
