"""The scan's cache, as ruff's: an unchanged file is not read again.

A file's entry holds what its scan found before any ignore was applied, so per-file and
per-layer ignores apply to a cached result exactly as to a fresh one. It is found under a key
made of everything that decides a result: nandoctor's version and its own source files (an
edited checkout is a different nandoctor), the rules that run and their options, and the
file's path. It is trusted only while the file still has the size, modification time and
metadata digest recorded with it. The digest reads the file's first and last 4 KiB, where
the formats keep what describes them (a zip's central directory, which carries each
member's CRC-32; an HDF5 superblock and root group; an .npy header), never the weights between.
Files that share the target's name stem in its folder (a checkpoint's data shards, a sharded
index's parts) are part of it by size and time.

Entries are JSON, one file each, written aside and renamed into place. An entry that does
not parse, does not have the expected shape, or records another path is a miss: the file is
scanned again and the entry rewritten. Nothing in the cache is ever unpickled.

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
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nandoctor.loaders import Target
from nandoctor.report import FileResult
from nandoctor.result_json import result_from_dict, result_to_dict

DEFAULT_FOLDER = ".nandoctor_cache"
_SCHEMA = 1  # the layout of an entry; a new layout starts a new folder
_EDGE = 4 << 10  # bytes digested at each end of a file
_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by nandoctor.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


def default_folder(project_file: str | None) -> str:
    """`.nandoctor_cache` beside the project's pyproject.toml, else in the current folder."""
    return os.path.join(os.path.dirname(project_file) if project_file else os.getcwd(), DEFAULT_FOLDER)


class ScanCache:
    """Entries for one set of rules and options, under `<folder>/<version>/<rules key>/`."""

    def __init__(self, folder: str | os.PathLike, rules: Iterable[Any]) -> None:
        from nandoctor import __version__

        self.root = Path(folder)
        self.entries = self.root / f"v{_SCHEMA}-{__version__}" / _rules_key(rules)
        self._listings: dict[str, list[tuple[str, int, int]]] = {}  # each folder listed once a run

    def lookup(self, target: Target) -> tuple[FileResult | None, dict[str, Any] | None]:
        """(the cached unfiltered result or None, the file's fingerprint now to store a new one
        under; None when the file cannot be fingerprinted and so is never cached)."""
        fingerprint = file_fingerprint(target.path, self._listing)
        if fingerprint is None:
            return None, None
        absolute = os.path.abspath(target.path)
        try:
            with open(self._entry_path(absolute, target.explicit), "rb") as file:
                entry = json.loads(file.read())
            if (
                entry["schema"] != _SCHEMA
                or entry["path"] != absolute
                or entry["explicit"] != target.explicit
                or entry["fingerprint"] != fingerprint
            ):
                return None, fingerprint
            return result_from_dict(entry["result"], target.path), fingerprint
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None, fingerprint  # no entry, or one not trusted: the file is scanned again

    def _listing(self, folder: str) -> list[tuple[str, int, int]]:
        if folder not in self._listings:
            self._listings[folder] = _list_folder(folder)
        return self._listings[folder]

    def store(self, target: Target, fingerprint: dict[str, Any], result: FileResult) -> None:
        """Record `result` (unfiltered) for `target`, as it was when `fingerprint` was taken.
        A cache that cannot be written is no cache: the scan goes on."""
        path = os.path.abspath(target.path)
        entry = {
            "schema": _SCHEMA,
            "path": path,
            "explicit": target.explicit,
            "fingerprint": fingerprint,
            "result": result_to_dict(result),
        }
        with contextlib.suppress(OSError, ValueError, TypeError):
            self._prepare()
            descriptor, temporary = tempfile.mkstemp(dir=self.entries, suffix=".tmp")
            try:
                with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                    json.dump(entry, file)
                os.replace(temporary, self._entry_path(path, target.explicit))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise

    def _entry_path(self, absolute: str, explicit: bool) -> Path:
        key = hashlib.sha256(f"{absolute}\0{explicit}".encode()).hexdigest()
        return self.entries / f"{key[:32]}.json"

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


def _rules_key(rules: Iterable[Any]) -> str:
    """A digest of what decides a result besides the file: nandoctor's own source (its
    files' sizes and times) and each running rule's code and options."""
    described = [[rule.code, _options_of(rule)] for rule in rules]
    text = json.dumps([_source_stamp(), described], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _options_of(rule: Any) -> dict[str, Any]:
    return dict(sorted(rule.settings.items()))


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


def file_fingerprint(path: str, listing=None) -> dict[str, Any] | None:
    """Size, modification time and metadata digest of `path` (of every file in it, for a
    folder that is one model), and of the files beside it that share its name stem; None
    when it cannot be read. `listing(folder)` gives a folder's files as (name, size, mtime)."""
    try:
        if os.path.isdir(path):
            files = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names)
            return {"files": [[os.path.relpath(f, path), *_stamp_and_digest(f)] for f in files]}
        size, mtime, digest = _stamp_and_digest(path)
        folder, name = os.path.split(os.path.abspath(path))
        stem = name.split(".", 1)[0]
        listed = (listing or _list_folder)(folder)
        first = bisect.bisect_left(listed, (stem,))  # names that start with the stem sort together
        beside = []
        for entry in itertools.islice(listed, first, None):
            if not entry[0].startswith(stem):
                break
            if entry[0] != name:
                beside.append(list(entry))
        return {"size": size, "mtime_ns": mtime, "digest": digest, "beside": beside}
    except OSError:
        return None


def _stamp_and_digest(path: str) -> tuple[int, int, str]:
    """(size, modification time in ns, digest of the first and last 4 KiB), from one open."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(f"{path} is not a regular file")
        digest = hashlib.blake2b(_read_at(descriptor, 0), digest_size=16)
        if status.st_size > _EDGE:
            digest.update(_read_at(descriptor, max(_EDGE, status.st_size - _EDGE)))
    finally:
        os.close(descriptor)
    return status.st_size, status.st_mtime_ns, digest.hexdigest()


def _read_at(descriptor: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(descriptor, _EDGE, offset)
    os.lseek(descriptor, offset, os.SEEK_SET)  # Windows has no pread
    return os.read(descriptor, _EDGE)


def _list_folder(folder: str) -> list[tuple[str, int, int]]:
    listed = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file():
                status = entry.stat()
                listed.append((entry.name, status.st_size, status.st_mtime_ns))
    return sorted(listed)
