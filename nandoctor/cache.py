"""The scan's cache, as ruff's: an unchanged file is not read again.

A file's entry holds what its scan found before any ignore was applied, so per-file and
per-layer ignores apply to a cached result exactly as to a fresh one. It is found under a key
made of everything that decides a result: nandoctor's version and its own source files (an
edited checkout is a different nandoctor, and a rule's defaults are in its source), the rules
that run and the options given to them, and the file's path. It is trusted only while the
file still has the size, modification time and metadata digest recorded with it. The digest
reads the file's first and last 4 KiB, where the formats keep what describes them (a zip's
central directory, which carries each member's CRC-32; an HDF5 superblock and root group; an
.npy header), never the weights between. It is a CRC-32 of each end: it is there to catch a
file rewritten at the same size within the same tick of the clock, not an adversary (who
could change the weights between and keep both ends), and it costs a third of what a
cryptographic hash of the same bytes costs. Where the file's format reads files beside it
(a checkpoint's data shards, a sharded index's parts), the files that share its name's stem in
its folder are part of it by size and time.

A file that had settled when its fingerprint was taken (its times two seconds or more in the
past) is not even opened: its `stat` is compared whole, change time and inode included. Any
write to a file moves its change time, which no tool sets back (`touch -d`, `cp -p`, `rsync -t`
and unpacking an archive set the modification time only), so an unchanged `stat` proves the
file unchanged, as git's index reasons. A file that had not settled could have been written
again within the same tick of the file system's clock, leaving every time as it was: it, and
any file whose `stat` moved at the same size and modification time, is checked by its digest,
and where that still agrees its entry is kept and its `stat` recorded afresh.

The entries of one set of rules and options are one index (`index` in their folder), read once
a scan: thousands of unchanged files cost one read, not one open each. Its first line is JSON,
the entries by key; after it come the results' texts, each as the JSON report writes it
(`nandoctor.result_json`), which an entry points to by start, length and CRC-32. A cached
JSON report copies each text rather than reading its findings back and writing them again
(most of what a re-scan of thousands of files did), and JSON need not parse them (text full
of escaped quotes and newlines, a third of the index's parse). A scan that scanned files
writes the index back once, at its end: it reads the index again, drops the entries of files
that no longer exist, adds its own, writes it aside and renames it into place (two scans at
once lose at worst each other's new entries, which are then misses). An index that does not
parse or does not have the expected shape is ignored, never trusted, and replaced; an entry
that does not have the expected shape, records another path, or whose text no longer matches
its checksum is a miss: the file is scanned again and the entry rewritten. The checks are
against damage: whoever can write the cache can make it say anything, checksum or not, as they
could with entries of the right shape. Nothing in the cache is ever unpickled.

The folder is `.nandoctor_cache` beside the project's `pyproject.toml` (else in the current
folder), or `--cache-dir`, `NANDOCTOR_CACHE_DIR`, or `cache-dir` in `[tool.nandoctor]`. It
ignores itself in git (a `.gitignore` of `*`) and is tagged as a cache for backup tools
(CACHEDIR.TAG), as ruff's is.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import os
import stat
import time
import zlib
from collections.abc import Mapping
from typing import Any

from nandoctor.loaders import Target, reads_files_beside

try:  # hashlib's own BLAKE2, without `import hashlib` loading OpenSSL: 2 ms of every cached run
    from _blake2 import blake2b
except ImportError:  # a Python built without it
    from hashlib import blake2b
from nandoctor.report import FileResult
from nandoctor.result_json import StoredResult, stored_form, stored_result

DEFAULT_FOLDER = ".nandoctor_cache"
_SCHEMA = 5  # the layout of the index and its entries; a new layout starts a new folder
INDEX = "index"
_EDGE = 4 << 10  # bytes digested at each end of a file
_SETTLED_NS = 2_000_000_000  # how far in the past a file's times must be for its `stat` to be trusted
_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by nandoctor.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


def default_folder(project_file: str | None) -> str:
    """`.nandoctor_cache` beside the project's pyproject.toml, else in the current folder."""
    return os.path.join(os.path.dirname(project_file) if project_file else os.getcwd(), DEFAULT_FOLDER)


class ScanCache:
    """Entries for one set of rules and options, in `<folder>/<version>/<rules key>/index`.
    `rules` maps each running rule's code to the options given to it (checked already)."""

    def __init__(self, folder: str | os.PathLike, rules: Mapping[str, Mapping[str, Any]]) -> None:
        from nandoctor import __version__

        # os.path, not pathlib: importing pathlib costs every run of the command 3 ms.
        self.root = os.fspath(folder)
        self.entries = os.path.join(self.root, f"v{_SCHEMA}-{__version__}", _rules_key(rules))
        self.index = os.path.join(self.entries, INDEX)
        self._listings: dict[str, list[tuple[str, os.DirEntry]]] = {}  # each folder listed once a run
        self._read: dict[str, Any] | None = None  # the index as this scan first read it
        self._texts = b""  # and the results' texts its entries point into
        # Entries stored by this scan, written by `save`: their texts, not yet placed.
        self._new: dict[str, list[Any]] = {}

    def lookup(self, target: Target) -> tuple[FileResult | None, dict[str, Any] | None]:
        """(the cached unfiltered result or None, the file's fingerprint now to store a new one
        under; None when the file cannot be fingerprinted and so is never cached, or where the
        result came from the cache by its `stat` alone)."""
        absolute = os.path.abspath(target.path)
        key = _entry_key(absolute, target.explicit)
        entry = self._entry(key, absolute, target.explicit)
        if entry is not None and self._unchanged_by_stat(entry[_FINGERPRINT], absolute):
            result = _result_of(entry, target.path, self._texts)
            if result is not None:
                return result, None
        fingerprint = file_fingerprint(target.path, self._listing, absolute)
        if fingerprint is None or entry is None or not _same_content(entry[_FINGERPRINT], fingerprint):
            return None, fingerprint
        result = _result_of(entry, target.path, self._texts)
        if result is not None and fingerprint.get("status") != entry[_FINGERPRINT].get("status"):
            # Its `stat` recorded afresh (its text goes with it: the index may be another by
            # the time this scan writes it).
            self._new[key] = [absolute, target.explicit, fingerprint, entry[_RESULT], result.written_json()]
        return result, fingerprint

    def _entry(self, key: str, absolute: str, explicit: bool) -> list[Any] | None:
        """The index's entry under `key`, where it has the expected shape and records this file."""
        if self._read is None:
            self._read, self._texts = self._read_index()
        entry = self._read.get(key)
        if (
            type(entry) is not list
            or len(entry) != _FIELDS
            or entry[_PATH] != absolute
            or entry[_EXPLICIT] is not explicit
            or type(entry[_FINGERPRINT]) is not dict
        ):
            return None
        return entry

    def _unchanged_by_stat(self, recorded: dict[str, Any], absolute: str) -> bool:
        """The file had settled when `recorded` was taken, and its `stat` and the files beside
        it are as they were then."""
        status = recorded.get("status")
        if status is None or status != _settled_status(absolute):
            return False
        beside = recorded.get("beside")
        if beside is None:  # its format reads nothing beside it (its name says so, as the key)
            return "beside" in recorded
        folder, name = os.path.split(absolute)
        return beside == files_beside(name, folder, self._listing)

    def _listing(self, folder: str) -> list[tuple[str, os.DirEntry]]:
        if folder not in self._listings:
            self._listings[folder] = _list_folder(folder)
        return self._listings[folder]

    def store(self, target: Target, fingerprint: dict[str, Any], result: FileResult) -> StoredResult:
        """Keep `result` (unfiltered) for `target`, as it was when `fingerprint` was taken,
        until `save` writes it; the same result as the cache holds it (its findings written
        as the JSON report writes them, once for both)."""
        path = os.path.abspath(target.path)
        fields, written = stored_form(result)
        self._new[_entry_key(path, target.explicit)] = [path, target.explicit, fingerprint, fields, written]
        return stored_result(fields, written, result.path, result.findings)

    def save(self) -> None:
        """Write the entries stored since the last save into the index, merged with what it
        holds now, less the entries of files that are gone (one `lstat` each, paid only by a
        scan that scanned something). A cache that cannot be written is no cache: the scan goes on."""
        if not self._new:
            return
        read, texts = self._read_index()
        entries: dict[str, Any] = {}
        written = _Texts()
        for key, entry in read.items():
            if key not in self._new and _still_there(entry):
                with contextlib.suppress(ValueError, IndexError, TypeError):  # a damaged entry is dropped
                    entries[key] = written.placed(entry, _text_of(entry, texts))
        for key, entry in self._new.items():
            entries[key] = written.placed(entry, entry[_TEXT])
        import tempfile  # here: a scan that stores nothing does not import it

        with contextlib.suppress(OSError, ValueError, TypeError):
            self._prepare()
            descriptor, temporary = tempfile.mkstemp(dir=self.entries, suffix=".tmp")
            try:
                with os.fdopen(descriptor, "wb") as file:
                    # dumps, not dump: json.dump streams through the pure-Python encoder, 5x slower.
                    file.write(json.dumps({"schema": _SCHEMA, "entries": entries}).encode() + b"\n")
                    file.write(written.joined())
                os.replace(temporary, self.index)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        self._new = {}

    def _read_index(self) -> tuple[dict[str, Any], bytes]:
        """The index's entries by key, and the results' texts they point into; none where it
        is absent or not an index of this layout."""
        try:
            with open(self.index, "rb") as file:
                whole = file.read()
            header = whole.index(b"\n")  # JSON holds no newline of its own
            index = json.loads(whole[:header])
        except (OSError, ValueError):
            return {}, b""
        if not isinstance(index, dict) or index.get("schema") != _SCHEMA or not isinstance(index.get("entries"), dict):
            return {}, b""
        return index["entries"], whole[header + 1 :]

    def _prepare(self) -> None:
        if os.path.isdir(self.entries):
            return
        os.makedirs(self.root, exist_ok=True)
        for name, text in (
            (".gitignore", "# Automatically created by nandoctor.\n*\n"),
            ("CACHEDIR.TAG", _CACHEDIR_TAG),
        ):
            marker = os.path.join(self.root, name)
            if not os.path.exists(marker):
                with open(marker, "w", encoding="utf-8") as file:
                    file.write(text)
        os.makedirs(self.entries, exist_ok=True)


# An entry of the index: [its file's absolute path, whether it was named (else found by a walk),
# the file's fingerprint (`file_fingerprint`), its result's fields (`stored_form`), where its
# result's text is in the index's texts: [start, length, CRC-32]]. Lists, not tables: JSON
# parses a list of thousands of them in half the time.
_PATH, _EXPLICIT, _FINGERPRINT, _RESULT, _TEXT = range(5)
_FIELDS = 5


def _result_of(entry: list[Any], path: str, texts: bytes) -> StoredResult | None:
    """The entry's result, or None where it does not have the shape of one or its text was
    damaged (then the file is scanned again)."""
    try:
        return stored_result(entry[_RESULT], _text_of(entry, texts).decode("ascii"), path)
    except (ValueError, IndexError, KeyError, TypeError, AttributeError):
        return None


def _text_of(entry: list[Any], texts: bytes) -> bytes:
    """The entry's result's text, from where it points into the index's `texts`, where its
    checksum still holds (else ValueError)."""
    start, length, checksum = entry[_TEXT]
    if not (type(start) is int and type(length) is int and start >= 0):
        raise ValueError("not a place in the index's texts")
    text = texts[start : start + length]
    if len(text) != length or zlib.crc32(text) != checksum:
        raise ValueError("the result's text was damaged")
    return text


class _Texts:
    """The results' texts of an index being written, one after another, each entry pointing
    to its own: [start, length, CRC-32]."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._end = 0

    def placed(self, entry: list[Any], text: str | bytes) -> list[Any]:
        """`entry` pointing to `text`, now placed."""
        data = text.encode("ascii") if isinstance(text, str) else text
        self._parts.append(data)
        where = [self._end, len(data), zlib.crc32(data)]
        self._end += len(data)
        return [*entry[:_TEXT], where]

    def joined(self) -> bytes:
        return b"".join(self._parts)


def _still_there(entry: Any) -> bool:
    try:
        return type(entry) is list and len(entry) == _FIELDS and os.path.lexists(entry[_PATH])
    except (TypeError, ValueError):
        return False  # not an entry: nothing to keep


def _entry_key(absolute: str, explicit: bool) -> str:
    return f"{absolute}\0{'explicit' if explicit else 'found'}"


def _rules_key(rules: Mapping[str, Mapping[str, Any]]) -> str:
    """A digest of what decides a result besides the file: nandoctor's own source (its
    files' sizes and times) and each running rule's code and the options given to it."""
    described = sorted([code, dict(options)] for code, options in rules.items())
    text = json.dumps([_source_stamp(), described], sort_keys=True, default=repr)
    return blake2b(text.encode(), digest_size=12).hexdigest()


_stamp: list | None = None


def _source_stamp() -> list:
    global _stamp
    if _stamp is None:
        package = os.path.dirname(os.path.realpath(__file__))
        stamp = []
        for folder, _, names in os.walk(package):
            for name in names:
                if name.endswith(".py"):
                    status = os.stat(os.path.join(folder, name))
                    where = os.path.relpath(os.path.join(folder, name), package)
                    stamp.append([where, status.st_size, status.st_mtime_ns])
        _stamp = sorted(stamp)
    return _stamp


def file_fingerprint(path: str, listing=None, absolute: str | None = None) -> dict[str, Any] | None:
    """Size, modification time and metadata digest of `path` (of every file in it, for a
    folder that is one model), its whole `stat` where it had settled, and where its format
    reads files beside it, the sizes and times of those (`files_beside`); None when it cannot
    be read.
    `listing(folder)` gives a folder's files as sorted (name, entry) pairs, an `os.DirEntry`
    each, asked for its size and time only where the stem matches; `absolute` is
    `os.path.abspath(path)`, where the caller has it already."""
    try:
        taken = time.time_ns()
        stamped = _stamp_and_digest(path)
        if stamped is None:  # a folder
            files = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names)
            return {"files": [[os.path.relpath(f, path), *_file_stamp_and_digest(f)[:3]] for f in files]}
        size, mtime, digest, status = stamped
        folder, name = os.path.split(absolute or os.path.abspath(path))
        return {
            "size": size,
            "mtime_ns": mtime,
            "digest": digest,
            "beside": files_beside(name, folder, listing or _list_folder),
            "status": _identity(status) if _settled(status, taken) else None,
        }
    except OSError:
        return None


def files_beside(name: str, folder: str, listing) -> list[list[Any]] | None:
    """[name, size, modification time] of each file in `folder` whose name starts with
    `name`'s stem (a checkpoint's data shards, a sharded index's parts), `name` left out;
    None where the file's format reads none. `listing(folder)` lists the folder, only then."""
    if not reads_files_beside(name):
        return None
    stem = name.split(".", 1)[0]
    listed = listing(folder)
    first = bisect.bisect_left(listed, (stem,))  # names that start with the stem sort together
    beside = []
    for entry_name, entry in itertools.islice(listed, first, None):
        if not entry_name.startswith(stem):
            break
        if entry_name != name:
            status = entry.stat()
            beside.append([entry_name, status.st_size, status.st_mtime_ns])
    return beside


def _same_content(recorded: dict[str, Any], now: dict[str, Any]) -> bool:
    """Two fingerprints of one file agree on everything but the `stat` recorded with them."""
    return {**recorded, "status": None} == {**now, "status": None}


def _settled(status: os.stat_result, taken: int) -> bool:
    """Its times are `_SETTLED_NS` before `taken`. Only where the change time is the time of the
    last change (POSIX): Windows gives the creation time there, which a write does not move."""
    return os.name == "posix" and max(status.st_mtime_ns, status.st_ctime_ns) < taken - _SETTLED_NS


def _identity(status: os.stat_result) -> list[int]:
    return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino, status.st_dev]


def _settled_status(path: str) -> list[int] | None:
    """The file's whole `stat`, to compare with one recorded when it had settled; None for
    what is not a regular file, or cannot be asked."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return _identity(status) if stat.S_ISREG(status.st_mode) else None


def _file_stamp_and_digest(path: str) -> tuple[int, int, str, os.stat_result]:
    stamped = _stamp_and_digest(path)
    if stamped is None:
        raise OSError(f"{path} is not a regular file")
    return stamped


def _stamp_and_digest(path: str) -> tuple[int, int, str, os.stat_result] | None:
    """(size, modification time in ns, digest of the first and last 4 KiB, the whole `stat`),
    from one open; None for a folder (one open and one fstat tell it apart, where a stat
    first was one more)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
    except OSError:
        if os.path.isdir(path):  # Windows does not open a folder
            return None
        raise
    try:
        status = os.fstat(descriptor)
        if stat.S_ISDIR(status.st_mode):
            return None
        if not stat.S_ISREG(status.st_mode):
            raise OSError(f"{path} is not a regular file")
        head = zlib.crc32(_read_at(descriptor, 0))
        tail = zlib.crc32(_read_at(descriptor, max(_EDGE, status.st_size - _EDGE))) if status.st_size > _EDGE else 0
    finally:
        os.close(descriptor)
    return status.st_size, status.st_mtime_ns, f"{head:08x}{tail:08x}", status


def _read_at(descriptor: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(descriptor, _EDGE, offset)
    os.lseek(descriptor, offset, os.SEEK_SET)  # Windows has no pread
    return os.read(descriptor, _EDGE)


def _list_folder(folder: str) -> list[tuple[str, os.DirEntry]]:
    """The folder's files by name; each entry's size and time are read (and kept) when asked."""
    with os.scandir(folder) as entries:
        return sorted((entry.name, entry) for entry in entries if entry.is_file())
