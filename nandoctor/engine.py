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
    probes: bool = True,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Report:
    """The rules on a live Keras model's structure and weights, then the probes that run it."""
    import time

    from nandoctor.loaders.live_model import view_of_model

    timings: dict[str, float] = {}
    started = time.perf_counter()
    rules = select_rules(select, ignore, options)
    view = view_of_model(model)
    findings = run_rules(view, rules)
    timings["static rules"] = time.perf_counter() - started
    if probes:
        from nandoctor.probes import PROBES, SUSPICIONS

        findings += run_probes(SUSPICIONS, model, view, select, ignore, timings)
        findings = merge_confirmations(findings, run_probes(PROBES, model, view, select, ignore, timings))
    return Report([FileResult(view.path, view.format, FileStatus.SCANNED, findings=findings)], timings)


def _confirms(probed, static) -> bool:
    """Same code, and the same layer (ND302 names the dropping layer, the probe the embedding)."""
    return probed.code == static.code and probed.layer in (static.layer, static.details.get("mask_from"))


def merge_confirmations(static: list, probed: list) -> list:
    """A probe finding with the same code and layer as a suspicion (a static rule's or a graph
    check's) confirms it: the suspicion rises to high confidence and carries the probe's
    evidence; other probe findings are added."""
    from dataclasses import replace

    from nandoctor.report import Confidence

    merged = list(static)
    for finding in probed:
        index = next((i for i, s in enumerate(merged) if _confirms(finding, s)), None)
        if index is None and finding.code.startswith("ND20"):
            # The NaN probe sees that a layer breaks, not which of its operations: it confirms
            # whichever numerics suspicion the graph checks raised on that layer.
            index = next((i for i, s in enumerate(merged) if s.code.startswith("ND20") and s.layer == finding.layer), None)
        if index is None:
            merged.append(finding)
            continue
        original = merged[index]
        merged[index] = replace(
            original,
            confidence=Confidence.HIGH,
            message=f"{original.message}; confirmed on the live model: {finding.message}",
            details={**original.details, "probe": finding.details},
        )
    return merged


def run_probes(probes: list, model, view, select: Iterable[str] | None, ignore: Iterable[str] | None,
               timings: dict[str, float] | None = None) -> list:
    import time

    from nandoctor.rules import split_selectors

    def wanted(probe) -> bool:
        chosen = split_selectors(select)
        dropped = split_selectors(ignore)
        codes = probe.code.split("/")  # the padding probe confirms ND301 and ND302
        matches = lambda key: any(c.startswith(key.upper()) for c in codes) or key.lower() == probe.name  # noqa: E731
        return (not chosen or any(matches(key) for key in chosen)) and not any(matches(key) for key in dropped)

    found = []
    for probe in probes:
        if not wanted(probe):
            continue
        started = time.perf_counter()
        found += list(probe().run(model, view))
        if timings is not None:
            timings[probe.name] = time.perf_counter() - started
    return found


def scan_trusted(
    paths: Iterable[str],
    *,
    custom_objects: Iterable[str] = (),
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Report:
    """Load each file with Keras (it runs the file's code: only for files you trust), after
    importing the modules that register your classes, then `check` the live model."""
    import importlib

    for module in custom_objects:
        importlib.import_module(module)
    results = []
    for target in discover([os.fspath(p) for p in paths]):
        if target.error is not None:
            results.append(_failed(target, target.error))
            continue
        try:
            model = _load_trusted(target.path)
        except Exception as error:
            results.append(_failed(target, f"cannot load with Keras: {type(error).__name__}: {first_line(error)}"))
            continue
        try:
            (result,) = check_model(model, select=select, ignore=ignore, options=options).files
        except Exception as error:  # the user's own model code failing under a probe: one line
            if os.environ.get("NANDOCTOR_DEBUG"):
                raise
            results.append(_failed(target, f"checking the loaded model failed: {type(error).__name__}: {first_line(error)}"))
            continue
        results.append(FileResult(target.path, guess_format(target.path), FileStatus.SCANNED, findings=result.findings))
    return Report(results)


def _load_trusted(path: str):
    import keras

    if path.lower().endswith((".npy", ".npz", ".vec", ".txt", ".bin")):
        raise ValueError("not a model file: matrices are scanned statically")
    return keras.models.load_model(path, safe_mode=False, compile=True)


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
