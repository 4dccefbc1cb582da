"""Fixing files: scan, apply the prescriptions to a working copy, write it beside its
destination, scan the result, and only then rename it into place.

A fix is kept only if the scan of the fixed file no longer shows its finding and shows
nothing the input did not: otherwise it is left out, the file is rewritten without it, and
the report says why. The input is never modified unless `in_place` is asked for and the
whole write succeeded. One file's failure never stops the run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

from nandoctor.catalogue import Selection
from nandoctor.diagnosis import RunsOn
from nandoctor.engine import Selectors, failed_result, run_rules
from nandoctor.errors import NotAModel, UnreadableFile, first_line
from nandoctor.fix import PRESCRIPTIONS, CannotFix, Safety
from nandoctor.fix.editors import open_editor
from nandoctor.loaders import Target, discover, load
from nandoctor.report import AppliedFix, FileResult, FileStatus, Finding, Report, UnappliedFix

_ATTEMPTS = 3


def fix(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    output: str | None = None,
    in_place: bool = False,
    unsafe_fixes: bool = False,
    select: Selectors = None,
    ignore: Selectors = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    per_file_ignores: Mapping[str, str | Iterable[str]] | None = None,
    seed: int = 0,
) -> Report:
    """Apply the fixes of the selected rules' findings. With neither `output` nor `in_place`
    nothing is written (a dry run: the report says what would change). `output` is a file
    for one input, a folder for several."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if output is not None and in_place:
        raise ValueError("Give an output path or in_place=True, not both.")
    selection = Selection.resolve(select, ignore, per_file_ignores)
    rules = selection.instances(RunsOn.FILE, options)
    targets = list(discover([os.fspath(path) for path in paths]))
    if output is not None and len(targets) > 1 and not os.path.isdir(output):
        raise ValueError(f"With several files to fix, --output must be an existing folder. Received: {output}")
    fixer = _Fixer(rules, selection, unsafe_fixes, seed)
    return Report([fixer.fix_target(target, _destination(target, output, in_place)) for target in targets])


def _destination(target: Target, output: str | None, in_place: bool) -> str | None:
    if in_place:
        return target.path
    if output is None:
        return None
    if os.path.isdir(output) and not os.path.exists(os.path.join(output, "config.json")):
        return os.path.join(output, os.path.basename(os.path.normpath(target.path)))
    return output


class _Fixer:
    def __init__(self, rules, selection: Selection, unsafe_fixes: bool, seed: int):
        self.rules, self.selection, self.unsafe_fixes, self.seed = rules, selection, unsafe_fixes, seed

    def scan(self, path: str, reported_as: str) -> tuple[list[Finding], str]:
        with load(path) as view:
            findings, _ = self.selection.filter(run_rules(view, self.rules), reported_as)
            return findings, view.format

    def fix_target(self, target: Target, destination: str | None) -> FileResult:
        if target.error is not None:
            return failed_result(target, target.error, FileStatus.ERROR if target.explicit else FileStatus.SKIPPED)
        try:
            return self._fix(target.path, destination)
        except NotAModel as reason:
            return failed_result(target, str(reason), FileStatus.ERROR if target.explicit else FileStatus.SKIPPED)
        except (UnreadableFile, OSError) as reason:
            return failed_result(
                target,
                str(reason) if isinstance(reason, UnreadableFile) else f"cannot write: {reason.strerror or reason}",
            )
        except Exception as error:  # as for scan: one line, never a traceback
            if os.environ.get("NANDOCTOR_DEBUG"):
                raise
            return failed_result(target, f"cannot fix: {type(error).__name__}: {first_line(error)}")

    def _fix(self, path: str, destination: str | None) -> FileResult:
        left_out: dict[tuple[str, str | None], str] = {}
        for _ in range(_ATTEMPTS):
            with load(path) as view:
                findings, _ = self.selection.filter(run_rules(view, self.rules), path)
                applied, unfixed, editor = self._apply_all(path, view, findings, left_out)
                result = FileResult(
                    path,
                    view.format,
                    FileStatus.SCANNED,
                    findings=findings,
                    notes=list(view.notes),
                    fixed=[],
                    unfixed=unfixed,
                )
                if not applied:
                    if editor is not None:
                        editor.close()
                    return result
                with editor:
                    written: str | None  # None once moved into place: nothing left to remove
                    written = _scratch_path(path, destination)
                    try:
                        editor.save(written)
                    except BaseException:  # a half-written file is never left beside the destination
                        _remove(written)
                        raise
            try:
                remaining, _ = self.scan(written, path)
                rejected = self._rejected(findings, applied, remaining)
                if not rejected:
                    result.findings, result.fixed = remaining, [fix for _, fix in applied]
                    if destination is not None:
                        _move_into_place(written, destination)
                        written, result.output = None, destination
                    return result
                left_out.update(rejected)
            finally:
                if written is not None:
                    _remove(written)
        raise CannotFix("the fixes did not settle after several attempts")

    def _apply_all(self, path, view, findings, left_out):
        applied: list[tuple[Finding, AppliedFix]] = []
        unfixed: list[UnappliedFix] = []
        editor = None
        for finding in findings:
            candidates = [p for p in PRESCRIPTIONS if p(self.seed).applies_to(finding)]
            if not candidates:
                continue  # a manual fix: the finding stays in the report
            allowed = [p for p in candidates if p.safety is Safety.SAFE or self.unsafe_fixes]
            key = (finding.code, finding.layer)
            if not allowed:
                unfixed.append(
                    UnappliedFix(
                        finding.code,
                        finding.layer,
                        "its fix is unsafe (the model changes and needs training): pass --unsafe-fixes to apply it",
                    )
                )
                continue
            if key in left_out:
                unfixed.append(UnappliedFix(finding.code, finding.layer, left_out[key]))
                continue
            try:
                if editor is None:
                    editor = open_editor(path, view.format)
                applied.append((finding, allowed[0](self.seed).apply(editor, view, finding)))
            except CannotFix as reason:
                unfixed.append(UnappliedFix(finding.code, finding.layer, str(reason)))
        return applied, unfixed, editor

    @staticmethod
    def _rejected(before: list[Finding], applied, after: list[Finding]) -> dict[tuple[str, str | None], str]:
        """The applied fixes to leave out, and why: a finding that is still there, or any
        finding the input did not have (then every fix is suspect)."""
        had = {(f.code, f.layer) for f in before}
        has = {(f.code, f.layer) for f in after}
        new = sorted(has - had, key=str)
        rejected = {}
        for finding, _ in applied:
            key = (finding.code, finding.layer)
            if key in has:
                rejected[key] = "the fixed file still had this finding, so the fix was left out"
            elif new:
                shown = ", ".join(f"{code} on '{layer}'" for code, layer in new)
                rejected[key] = f"the fixed file had a finding the input did not ({shown}), so the fix was left out"
        return rejected


def _scratch_path(path: str, destination: str | None) -> str:
    """A new name beside the destination (so the final rename stays on one filesystem), or in
    the temporary folder for a dry run, ending as the input does so it scans as its format."""
    folder = os.path.dirname(os.path.abspath(destination)) if destination else tempfile.gettempdir()
    base = os.path.basename(os.path.normpath(path))
    handle, scratch = tempfile.mkstemp(prefix=".nandoctor-fix-", suffix="-" + base, dir=folder)
    os.close(handle)
    os.unlink(scratch)
    return scratch


def _move_into_place(written: str, destination: str) -> None:
    if os.path.isdir(written) and os.path.isdir(destination):
        # A folder cannot be renamed over another: the old one steps aside first.
        aside = destination.rstrip(os.sep) + ".nandoctor-old"
        os.replace(destination, aside)
        os.replace(written, destination)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(written, destination)


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.unlink(path)
