"""Running the rules over files: one file's failure never stops the run."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from nandoctor.errors import NotAModel, UnreadableFile, first_line
from nandoctor.loaders import Target, discover, guess_format, load
from nandoctor.report import FileResult, FileStatus, Report
from nandoctor.rule import Rule
from nandoctor.rules import select_rules


class Progress(Protocol):
    """What the scan tells a progress display while it reads weights."""

    def start(self, path: str, total_bytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def finish(self) -> None: ...


def scan(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Progress | None = None,
) -> Report:
    """Scan model files and directories statically; never imports TensorFlow or Keras."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    rules = select_rules(select, ignore, options)
    return Report([scan_target(target, rules, progress) for target in discover([os.fspath(p) for p in paths])])


def check_model(
    model,
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Report:
    """The rules on a live Keras model's structure and weights (the live probes are added
    by the live-analysis work; see `nandoctor.check`)."""
    from nandoctor.loaders.live_model import view_of_model

    rules = select_rules(select, ignore, options)
    view = view_of_model(model)
    return Report([FileResult(view.path, view.format, FileStatus.SCANNED, findings=run_rules(view, rules))])


def run_rules(view, rules: list[Rule], progress: Progress | None = None) -> list:
    if any(rule.needs_weights for rule in rules):
        _read_weights(view, progress)
    return [finding for rule in rules for finding in rule.check(view)]


def scan_target(target: Target, rules: list[Rule], progress: Progress | None = None) -> FileResult:
    if target.error is not None:
        return _failed(target, target.error)
    try:
        with load(target.path) as view:
            findings = run_rules(view, rules, progress)
            return FileResult(target.path, view.format, FileStatus.SCANNED, findings=findings)
    except NotAModel as reason:
        return _failed(target, str(reason), FileStatus.ERROR if target.explicit else FileStatus.SKIPPED)
    except UnreadableFile as reason:
        return _failed(target, str(reason))
    except Exception as error:
        # Hostile or corrupt files make h5py, numpy and zipfile fail in ways too many to
        # list; the promise is one line per file and no traceback. NANDOCTOR_DEBUG=1 shows it.
        if os.environ.get("NANDOCTOR_DEBUG"):
            raise
        return _failed(target, f"cannot read: {type(error).__name__}: {first_line(error)}")


def _failed(target: Target, reason: str, status: FileStatus = FileStatus.ERROR) -> FileResult:
    # Reasons may quote names from the file itself, which may hold newlines: one line it is.
    return FileResult(target.path, guess_format(target.path), status, " ".join(reason.split()))


def _read_weights(view, progress: Progress | None) -> None:
    if progress is None:
        view.compute_weight_stats()
        return
    progress.start(view.path, view.weight_bytes())
    try:
        view.compute_weight_stats(progress.advance)
    finally:
        progress.finish()
