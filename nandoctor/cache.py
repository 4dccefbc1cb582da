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
cryptographic hash of the same bytes costs. Files that share the target's name stem in its
folder (a checkpoint's data shards, a sharded index's parts) are part of it by size and time.

A file that had settled when its fingerprint was taken (its times two seconds or more in the
past) is not even opened: its `stat` is compared whole, change time and inode included. Any
write to a file moves its change time, which no tool sets back (`touch -d`, `cp -p`, `rsync -t`
and unpacking an archive set the modification time only), so an unchanged `stat` proves the
file unchanged, as git's index reasons. A file that had not settled could have been written
again within the same tick of the file system's clock, leaving every time as it was: it, and
any file whose `stat` moved at the same size and modification time, is checked by its digest,
and where that still agrees its entry is kept and its `stat` recorded afresh.

The entries of one set of rules and options are one JSON index (`index.json` in their folder),
read once a scan: thousands of unchanged files cost one read, not one open each. A scan that
scanned files writes the index back once, at its end: it reads the index again, drops the
entries of files that no longer exist, adds its own, writes it aside and renames it into
place (two scans at once lose at worst each other's new entries, which are then misses). An
index that does not parse or does not have the expected shape is ignored, never trusted, and
replaced; an entry that does not have the expected shape or records another path is a miss:
the file is scanned again and the entry rewritten. Nothing in the cache is ever unpickled.

The folder is `.nandoctor_cache` beside the project's `pyproject.toml` (else in the current
folder), or `--cache-dir`, `NANDOCTOR_CACHE_DIR`, or `cache-dir` in `[tool.nandoctor]`. It
ignores itself in git (a `.gitignore` of `*`) and is tagged as a cache for backup tools
(CACHEDIR.TAG), as ruff's is.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import itertools
import json
import os
import stat
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nandoctor.loaders import Target
from nandoctor.report import FileResult
from nandoctor.result_json import result_from_dict, result_to_dict

DEFAULT_FOLDER = ".nandoctor_cache"
_SCHEMA = 4  # the layout of the index and its entries; a new layout starts a new folder
INDEX = "index.json"
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
    """Entries for one set of rules and options, in `<folder>/<version>/<rules key>/index.json`.
    `rules` maps each running rule's code to the options given to it (checked already)."""

    def __init__(self, folder: str | os.PathLike, rules: Mapping[str, Mapping[str, Any]]) -> None:
        from nandoctor import __version__

        self.root = Path(folder)
        self.entries = self.root / f"v{_SCHEMA}-{__version__}" / _rules_key(rules)
        self.index = self.entries / INDEX
        self._listings: dict[str, list[tuple[str, os.DirEntry]]] = {}  # each folder listed once a run
        self._read: dict[str, Any] | None = None  # the index as this scan first read it
        self._new: dict[str, dict[str, Any]] = {}  # entries stored by this scan, written by `save`

    def lookup(self, target: Target) -> tuple[FileResult | None, dict[str, Any] | None]:
        """(the cached unfiltered result or None, the file's fingerprint now to store a new one
        under; None when the file cannot be fingerprinted and so is never cached, or where the
        result came from the cache by its `stat` alone)."""
        absolute = os.path.abspath(target.path)
        key = _entry_key(absolute, target.explicit)
        entry = self._entry(key, absolute, target.explicit)
        if entry is not None and self._unchanged_by_stat(entry["fingerprint"], absolute):
            result = _result_of(entry, target.path)
            if result is not None:
                return result, None
        fingerprint = file_fingerprint(target.path, self._listing, absolute)
        if fingerprint is None or entry is None or not _same_content(entry["fingerprint"], fingerprint):
            return None, fingerprint
        result = _result_of(entry, target.path)
        if result is not None and fingerprint.get("status") != entry["fingerprint"].get("status"):
            self._new[key] = {**entry, "fingerprint": fingerprint}  # its `stat` recorded afresh
        return result, fingerprint

    def _entry(self, key: str, absolute: str, explicit: bool) -> dict[str, Any] | None:
        """The index's entry under `key`, where it has the expected shape and records this file."""
        if self._read is None:
            self._read = self._read_index()
        entry = self._read.get(key)
        if (
            not isinstance(entry, dict)
            or entry.get("path") != absolute
            or entry.get("explicit") != explicit
            or not isinstance(entry.get("fingerprint"), dict)
        ):
            return None
        return entry

    def _unchanged_by_stat(self, recorded: dict[str, Any], absolute: str) -> bool:
        """The file had settled when `recorded` was taken, and its `stat` and the files beside
        it are as they were then."""
        status = recorded.get("status")
        return (
            status is not None
            and status == _settled_status(absolute)
            and recorded.get("beside") == self._beside(absolute)
        )

    def _beside(self, absolute: str) -> list[list[Any]]:
        folder, name = os.path.split(absolute)
        return files_beside(name, self._listing(folder))

    def _listing(self, folder: str) -> list[tuple[str, os.DirEntry]]:
        if folder not in self._listings:
            self._listings[folder] = _list_folder(folder)
        return self._listings[folder]

    def store(self, target: Target, fingerprint: dict[str, Any], result: FileResult) -> None:
        """Keep `result` (unfiltered) for `target`, as it was when `fingerprint` was taken,
        until `save` writes it."""
        path = os.path.abspath(target.path)
        self._new[_entry_key(path, target.explicit)] = {
            "path": path,
            "explicit": target.explicit,
            "fingerprint": fingerprint,
            "result": result_to_dict(result),
        }

    def save(self) -> None:
        """Write the entries stored since the last save into the index, merged with what it
        holds now, less the entries of files that are gone (one `lstat` each, paid only by a
        scan that scanned something). A cache that cannot be written is no cache: the scan goes on."""
        if not self._new:
            return
        kept = {key: entry for key, entry in self._read_index().items() if _still_there(entry)}
        entries = {**kept, **self._new}
        import tempfile  # here: a scan that stores nothing does not import it

        with contextlib.suppress(OSError, ValueError, TypeError):
            self._prepare()
            descriptor, temporary = tempfile.mkstemp(dir=self.entries, suffix=".tmp")
            try:
                with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                    # dumps, not dump: json.dump streams through the pure-Python encoder, 5x slower.
                    file.write(json.dumps({"schema": _SCHEMA, "entries": entries}))
                os.replace(temporary, self.index)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        self._new = {}

    def _read_index(self) -> dict[str, Any]:
        """The index's entries by key; none where it is absent or not an index of this layout."""
        try:
            with open(self.index, "rb") as file:
                index = json.loads(file.read())
        except (OSError, ValueError):
            return {}
        if not isinstance(index, dict) or index.get("schema") != _SCHEMA or not isinstance(index.get("entries"), dict):
            return {}
        return index["entries"]

    def _prepare(self) -> None:
        if self.entries.is_dir():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        for name, text in (
            (".gitignore", "# Automatically created by nandoctor.\n*\n"),
            ("CACHEDIR.TAG", _CACHEDIR_TAG),
        ):
            marker = self.root / name
            if not marker.exists():
                marker.write_text(text, encoding="utf-8")
        self.entries.mkdir(parents=True, exist_ok=True)


def _result_of(entry: dict[str, Any], path: str) -> FileResult | None:
    """The entry's result, or None where it does not have the shape of one (then the file is
    scanned again)."""
    try:
        return result_from_dict(entry["result"], path)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _still_there(entry: Any) -> bool:
    try:
        return os.path.lexists(entry["path"])
    except (KeyError, TypeError, ValueError):
        return False  # not an entry: nothing to keep


def _entry_key(absolute: str, explicit: bool) -> str:
    return f"{absolute}\0{'explicit' if explicit else 'found'}"


def _rules_key(rules: Mapping[str, Mapping[str, Any]]) -> str:
    """A digest of what decides a result besides the file: nandoctor's own source (its
    files' sizes and times) and each running rule's code and the options given to it."""
    described = sorted([code, dict(options)] for code, options in rules.items())
    text = json.dumps([_source_stamp(), described], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


_stamp: list | None = None


def _source_stamp() -> list:
    global _stamp
    if _stamp is None:
        package = Path(__file__).resolve().parent
        _stamp = sorted(
            [str(path.relative_to(package)), path.stat().st_size, path.stat().st_mtime_ns]
            for path in package.rglob("*.py")
        )
    return _stamp


def file_fingerprint(path: str, listing=None, absolute: str | None = None) -> dict[str, Any] | None:
    """Size, modification time and metadata digest of `path` (of every file in it, for a
    folder that is one model), its whole `stat` where it had settled, and the sizes and times
    of the files beside it that share its name stem; None when it cannot be read.
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
            "beside": files_beside(name, (listing or _list_folder)(folder)),
            "status": _identity(status) if _settled(status, taken) else None,
        }
    except OSError:
        return None


def files_beside(name: str, listed: list[tuple[str, os.DirEntry]]) -> list[list[Any]]:
    """[name, size, modification time] of each file in the folder `listed` whose name starts
    with `name`'s stem (a checkpoint's data shards, a sharded index's parts), `name` left out."""
    stem = name.split(".", 1)[0]
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
