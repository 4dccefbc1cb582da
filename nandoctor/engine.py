"""Runs the diagnoses that apply to a file or a live model; knows no diagnosis by its code.

One file's failure never stops the run, and one live check's failure never loses the report:
it becomes a note that says why, and every other check still reports.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from nandoctor.catalogue import Selection, codes_running_on, resolve_options
from nandoctor.diagnosis import Diagnosis, Rule, RunsOn
from nandoctor.errors import NotAModel, UnreadableFile, first_line
from nandoctor.loaders import Target, discover, format_claimed_by, guess_format, load
from nandoctor.parallel import Outcome, ScanJob, scan_in_processes
from nandoctor.report import Confidence, Evidence, FileResult, FileStatus, Finding, Report

Selectors = str | Iterable[str] | None


class Progress(Protocol):
    """What the scan tells a progress display while it reads weights."""

    def start(self, path: str, total_bytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def finish(self) -> None: ...


def scan(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    select: Selectors = None,
    ignore: Selectors = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    per_file_ignores: Mapping[str, str | Iterable[str]] | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
    timeout: float | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Report:
    """Scan model files and directories statically; never imports TensorFlow or Keras.

    `jobs` worker processes share the files (the report is the same, in the same order);
    `timeout` stops a file's scan after so many seconds (it runs in a worker process, even
    with one job, so that it can be killed); `cache_dir` keeps each file's result there and
    reuses it while the file is unchanged (`nandoctor.cache`)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1. Received: {jobs}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds. Received: {timeout}")
    selection = Selection.resolve(select, ignore, per_file_ignores)
    # Checked here, even when every result comes from the cache.
    given = {diagnosis.code: values for diagnosis, values in resolve_options(options).items()}
    targets = list(discover([os.fspath(p) for p in paths]))
    cache = None
    if cache_dir is not None:
        from nandoctor.cache import ScanCache

        running = [code for code in codes_running_on(RunsOn.FILE) if code in selection]
        cache = ScanCache(cache_dir, {code: given.get(code, {}) for code in running})
    results: list[FileResult | None] = [None] * len(targets)
    fingerprints: dict[int, Any] = {}
    to_scan: list[int] = []
    for index, target in enumerate(targets):
        if target.error is not None:
            results[index] = scan_target_unfiltered(target, [])
            continue
        if cache is not None:
            results[index], fingerprints[index] = cache.lookup(target)
        if results[index] is None:
            to_scan.append(index)
    # The rules are built (their modules imported) only for files the cache could not answer.
    rules = selection.instances(RunsOn.FILE, options) if to_scan else []
    scanned = _scan_each(
        [targets[i] for i in to_scan], rules, ScanJob(select, ignore, options), jobs, timeout, progress
    )
    for index, outcome in zip(to_scan, scanned):
        results[index] = outcome.result
        if cache is not None and outcome.finished and fingerprints.get(index) is not None:
            results[index] = cache.store(targets[index], fingerprints[index], outcome.result)
    if cache is not None:
        cache.save()
    return Report([with_ignores(result, selection) for result in results])  # type: ignore[arg-type]


# Fewer files than this per worker are scanned in this process. Measured by bench/many_files.py
# (docs/benchmarks.md, "where workers start to pay"): starting two workers and handing them the
# files costs about 15 ms, five small files' worth; two workers broke even at 16 small files.
MIN_FILES_PER_WORKER = 8


def _scan_each(
    targets: list[Target], rules: list[Rule], job: ScanJob, jobs: int, timeout: float | None, progress: Progress | None
) -> list[Outcome]:
    """Each target's unfiltered result: in this process, or in workers when there are enough
    files to pay for them, or when a time limit needs a process that can be killed."""
    if not targets:  # every file answered by the cache: nothing to import, no worker to start
        return []
    import multiprocessing

    workers = min(jobs, len(targets) // MIN_FILES_PER_WORKER)
    if timeout is not None and targets:
        workers = max(workers, 1)
    # A daemonic process (a multiprocessing pool's worker) may not start processes of its own.
    if workers >= 1 and (workers > 1 or timeout is not None) and not multiprocessing.current_process().daemon:
        return scan_in_processes(targets, job, workers, timeout)
    return [Outcome(scan_target_unfiltered(target, rules, progress)) for target in targets]


def check_model(
    model,
    *,
    probes: bool = True,
    select: Selectors = None,
    ignore: Selectors = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    sample=None,
) -> Report:
    """The static rules on a live model's structure and weights, then the live checks (given
    `sample`, a batch `(x, y)` of the user's data, where a check can use it)."""
    selection = Selection.resolve(select, ignore)
    timings: dict[str, float] = {}
    result = _check(model, selection, options, probes, timings, sample=sample)
    return Report([result], timings)


def _check(
    model, selection: Selection, options, probes: bool, timings: dict[str, float], path: str | None = None, sample=None
) -> FileResult:
    """One live model's result; `path` is the file it was loaded from, for per-file ignores."""
    with quiet_dependencies():
        return _check_quietly(model, selection, options, probes, timings, path, sample)


def _check_quietly(
    model, selection: Selection, options, probes: bool, timings: dict[str, float], path: str | None, sample=None
) -> FileResult:
    from nandoctor.live.model_view import view_of_model

    started = time.perf_counter()
    rules = selection.instances(RunsOn.FILE, options)
    view = view_of_model(model)
    findings = run_rules(view, rules)
    timings["static rules"] = time.perf_counter() - started
    notes = list(view.notes)
    if probes:
        findings = run_live_checks(model, view, selection, findings, timings, notes, sample)
    kept, suppressed = selection.filter(findings, path)
    return FileResult(
        path or view.path,
        guess_format(path) if path else view.format,
        FileStatus.SCANNED,
        findings=kept,
        notes=notes,
        suppressed=suppressed,
    )


def run_live_checks(
    model, view, selection: Selection, findings: list[Finding], timings: dict[str, float], notes: list[str], sample=None
) -> list[Finding]:
    """Every selected live check in order; a measurement that confirms an earlier finding
    raises it to high confidence with the evidence, other findings are added."""
    from nandoctor.live import LIVE_CHECKS
    from nandoctor.live.failures import finding_proven_by
    from nandoctor.live.live_check import model_backend

    merged = list(findings)
    backend = model_backend(model)
    for check_class in LIVE_CHECKS:
        if not selection.any_of(check_class.raises) or (check_class.needs_sample and sample is None):
            continue
        if check_class.backends is not None and backend not in check_class.backends:
            notes.append(f"{check_class.name} did not run: {check_class.needs}, and this model runs on {backend}")
            continue
        check = check_class(sample)
        started = time.perf_counter()
        try:
            merged = _settle(merged, check, model)
            found = [finding for finding in check.run(model, view) if finding.code in selection]
            notes.extend(check.notes)
        except Exception as error:  # the user's model failing under a probe: the rest still reports
            if os.environ.get("NANDOCTOR_DEBUG"):
                raise
            proven = finding_proven_by(error, model)
            if proven is not None and proven.code in selection:
                # The failure is the diagnosis: said once, however many checks meet it.
                if not any(f.code == proven.code and f.details.get("index") == proven.details["index"] for f in merged):
                    merged.append(proven)
                continue
            notes.append(f"{check.name} could not run: {type(error).__name__}: {first_line(error)}")
            continue
        finally:
            timings[check.name] = time.perf_counter() - started
        merged = _merge(merged, found, check) if check.measures else merged + found
    return merged


def _settle(findings: list[Finding], check, model) -> list[Finding]:
    if not check.settles:
        return findings
    settled = [check.settle(finding, model) if finding.code in check.settles else finding for finding in findings]
    return [finding for finding in settled if finding is not None]


def _merge(findings: list[Finding], measured: list[Finding], check) -> list[Finding]:
    """Each measurement confirms the earlier findings it proves (they rise to the severity it
    supports, with its evidence, and say it in their message); a measurement that proves none
    it may be said as part of (`check.absorbs`) is a finding of its own."""
    merged = list(findings)
    for finding in measured:
        confirmed = [i for i, earlier in enumerate(merged) if check.confirms(finding, earlier)]
        for i in confirmed:
            merged[i] = _confirmed(merged[i], finding)
        if not any(check.absorbs(finding, merged[i]) for i in confirmed):
            merged.append(finding)
    return merged


def _confirmed(original: Finding, measurement: Finding) -> Finding:
    """`original`, proven on the live model by `measurement`: the higher severity of the two,
    resting on the evidence that supports it."""
    stronger = measurement.severity.rank > original.severity.rank or (
        measurement.severity.rank == original.severity.rank
        and Evidence(measurement.details["evidence"]).ceiling.rank > Evidence(original.details["evidence"]).ceiling.rank
    )
    chosen = measurement if stronger else original
    return Diagnosis.reconsidered(
        original,
        evidence=Evidence(chosen.details["evidence"]),
        severity=chosen.severity,
        confidence=Confidence.HIGH,
        message=f"{original.message}; confirmed on the live model: {measurement.message}",
        details={**original.details, "probe": measurement.details},
    )


def scan_trusted(
    paths: Iterable[str],
    *,
    custom_objects: Iterable[str] = (),
    select: Selectors = None,
    ignore: Selectors = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    per_file_ignores: Mapping[str, str | Iterable[str]] | None = None,
) -> Report:
    """Load each file with Keras (it runs the file's code: only for files you trust), after
    importing the modules that register your classes, then `check` the live model.

    The current folder is importable while it runs, as it is under `python -m`, so that
    `--custom-objects my_layers` finds the `my_layers.py` beside the user. A file the static
    reader cannot open gets the static reader's reason, which names what is wrong with the
    bytes, before Keras is asked (Keras says "File not found" of a truncated file)."""
    import sys

    selection = Selection.resolve(select, ignore, per_file_ignores)  # a bad selector fails before any load
    added = os.getcwd() not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())
    try:
        _import_custom_objects(custom_objects)
        return Report(
            [_scan_trusted_target(target, selection, options) for target in discover([os.fspath(p) for p in paths])]
        )
    finally:
        if added:
            sys.path.remove(os.getcwd())


def _import_custom_objects(modules: Iterable[str]) -> None:
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:
            raise ValueError(
                f"cannot import the --custom-objects module {module!r}: {type(error).__name__}: {first_line(error)}"
            ) from None


def _scan_trusted_target(target: Target, selection: Selection, options) -> FileResult:
    if target.error is not None:
        return failed_result(target, target.error)
    unreadable = _static_reason(target.path)
    if unreadable is not None:
        return failed_result(target, unreadable)
    try:
        model = _load_trusted(target.path)
    except Exception as error:
        return failed_result(target, f"cannot load with Keras: {type(error).__name__}: {first_line(error)}")
    try:
        return _check(model, selection, options, True, {}, target.path)
    except Exception as error:  # the user's own model code failing: one line
        if os.environ.get("NANDOCTOR_DEBUG"):
            raise
        return failed_result(target, f"checking the loaded model failed: {type(error).__name__}: {first_line(error)}")


def _static_reason(path: str) -> str | None:
    """Why the static reader cannot open `path`, or None when it can (or fails in a way
    Keras may not: then Keras is asked)."""
    try:
        with load(path):
            return None
    except (UnreadableFile, NotAModel) as reason:
        return str(reason)
    except Exception:
        return None


# The loggers through which TensorFlow, Keras (absl), JAX and PyTorch speak to the user.
_DEPENDENCY_LOGGERS = ("absl", "tensorflow", "keras", "jax", "torch")


@contextlib.contextmanager
def quiet_dependencies() -> Iterator[None]:
    """Keep what Keras and its backends say about nandoctor's own work off the user's output.

    The probes save, reload and run the model on crafted inputs, and Keras warns about each:
    "`compile()` was not called as part of model loading" for a model with a custom
    `compile` (KerasHub tasks), numpy's copy-keyword deprecation on a TensorFlow tensor. None
    is about the user's model; what is, nandoctor reports as a finding or a note. Warnings and
    the dependencies' log lines below ERROR are silenced inside, and restored after."""
    import logging  # here: the static scan, which has no dependency to quiet, does not import it

    loggers = [logging.getLogger(name) for name in _DEPENDENCY_LOGGERS]
    levels = [logger.level for logger in loggers]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for logger in loggers:
                logger.setLevel(max(logger.getEffectiveLevel(), logging.ERROR))
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _load_trusted(path: str):
    import keras

    claimed = format_claimed_by(path)
    if claimed is not None and not claimed.holds_model:
        raise ValueError("not a model file: matrices are scanned statically")
    with quiet_dependencies():
        return keras.models.load_model(path, safe_mode=False, compile=True)


def run_rules(view, rules: list[Rule], progress: Progress | None = None) -> list[Finding]:
    if any(rule.needs_weights for rule in rules):
        _read_weights(view, progress)
    return [finding for rule in rules for finding in rule.check(view)]


def scan_target(
    target: Target, rules: list[Rule], selection: Selection, progress: Progress | None = None
) -> FileResult:
    return with_ignores(scan_target_unfiltered(target, rules, progress), selection)


def scan_target_unfiltered(target: Target, rules: list[Rule], progress: Progress | None = None) -> FileResult:
    """Every finding of `rules` on one target, before any ignore (what the cache keeps)."""
    if target.error is not None:
        return failed_result(target, target.error, FileStatus.ERROR if target.explicit else FileStatus.SKIPPED)
    try:
        with load(target.path) as view:
            return FileResult(
                target.path,
                view.format,
                FileStatus.SCANNED,
                findings=run_rules(view, rules, progress),
                notes=list(view.notes),
            )
    except NotAModel as reason:
        return failed_result(target, str(reason), FileStatus.ERROR if target.explicit else FileStatus.SKIPPED)
    except UnreadableFile as reason:
        return failed_result(target, str(reason))
    except Exception as error:
        # Hostile or corrupt files make h5py, numpy and zipfile fail in ways too many to
        # list; the promise is one line per file and no traceback. NANDOCTOR_DEBUG=1 shows it.
        if os.environ.get("NANDOCTOR_DEBUG"):
            raise
        return failed_result(target, f"cannot read: {type(error).__name__}: {first_line(error)}")


def with_ignores(result: FileResult, selection: Selection) -> FileResult:
    """`result` with the selection's per-file and per-layer ignores applied to its findings."""
    # Where no ignore applies to the file, its findings need not be read (a cached re-scan of
    # thousands of files does not read them back from the cache).
    if result.status is not FileStatus.SCANNED or not selection.suppresses_in(result.path):
        return result
    kept, suppressed = selection.filter(result.findings, result.path)
    return FileResult(
        result.path,
        result.format,
        result.status,
        result.error,
        findings=kept,
        notes=result.notes,
        suppressed=suppressed,
    )


def failed_result(target: Target, reason: str, status: FileStatus = FileStatus.ERROR) -> FileResult:
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
