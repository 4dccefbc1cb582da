"""A baseline: today's findings, accepted, so that a scan fails only on new ones.

`nandoctor scan --write-baseline FILE` records every finding of a run; `--baseline FILE`
removes from a later run's report each finding that matches a recorded one, and names the
recorded ones no longer found (stale). A finding matches an entry with the same path (as the
command line reached it, relative to the current folder), code, layer and fingerprint; each
entry accepts one finding, so a second identical fault in the same layer is new.

The fingerprint hashes what was found, never how it is worded: the code, the layer and the
facts in `details` that a rerun on the same file reproduces exactly (names, counts, ids,
shapes, flags). It leaves out floats (norms and ratios that a different BLAS may round
differently), `evidence` (a judgement that a rule may revise, as it may a severity) and what
only a live run measures (`measured`, `probe`, `step`). A message or a severity may change between
nandoctor versions without making an accepted finding new.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Any

from nandoctor.report import FileResult, Finding, Report

BASELINE_VERSION = 1
# Details that are judgements or live measurements, not facts of the file.
_UNSTABLE_DETAILS = frozenset({"evidence", "measured", "probe", "step"})


@dataclass(frozen=True)
class BaselineEntry:
    path: str
    code: str
    layer: str | None
    fingerprint: str
    message: str = ""  # for the reader of the file; never matched

    @property
    def key(self) -> tuple[str, str, str | None, str]:
        return self.path, self.code, self.layer, self.fingerprint

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "code": self.code,
            "layer": self.layer,
            "fingerprint": self.fingerprint,
            "message": self.message,
        }


def fingerprint(finding: Finding) -> str:
    """A stable hash of what was found: code, layer and the details that reproduce exactly."""
    facts = {
        "code": finding.code,
        "layer": finding.layer,
        "details": _stable({k: v for k, v in finding.details.items() if k not in _UNSTABLE_DETAILS}),
    }
    text = json.dumps(facts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stable(value: Any) -> Any:
    """`value` without its floats, recursively."""
    if isinstance(value, dict):
        return {str(k): _stable(v) for k, v in value.items() if not isinstance(v, float)}
    if isinstance(value, (list, tuple)):
        return [_stable(v) for v in value if not isinstance(v, float)]
    return value


def baseline_path(path: str) -> str:
    """A file's path as a baseline records it: relative to the current folder where it lies
    under it, with forward slashes, so that a baseline works on every runner's checkout."""
    relative = os.path.relpath(path)
    return PurePath(os.path.abspath(path) if relative.startswith("..") else relative).as_posix()


def entries_of(report: Report) -> list[BaselineEntry]:
    return [
        BaselineEntry(baseline_path(result.path), finding.code, finding.layer, fingerprint(finding), finding.message)
        for result in report.files
        for finding in result.findings
    ]


def write_baseline(report: Report, path: str) -> int:
    """Write every finding of `report` to `path`; the number written."""
    from nandoctor import __version__

    entries = entries_of(report)
    data = {
        "nandoctor-baseline": BASELINE_VERSION,
        "nandoctor": __version__,
        "findings": [entry.to_dict() for entry in entries],
    }
    with open(path, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2)
        file.write("\n")
    return len(entries)


def read_baseline(path: str) -> list[BaselineEntry]:
    """The entries of a baseline file. Raises ValueError with a one-line reason."""
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except OSError as error:
        raise ValueError(f"cannot read the baseline {path}: {error.strerror or error}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"the baseline {path} is not JSON: {error}") from None
    if not isinstance(data, dict) or data.get("nandoctor-baseline") != BASELINE_VERSION:
        raise ValueError(
            f'{path} is not a nandoctor baseline (expected "nandoctor-baseline": '
            f"{BASELINE_VERSION}; write one with --write-baseline)"
        )
    try:
        return [
            BaselineEntry(str(e["path"]), str(e["code"]), e["layer"], str(e["fingerprint"]), str(e.get("message", "")))
            for e in data["findings"]
        ]
    except (KeyError, TypeError) as error:
        raise ValueError(f"the baseline {path} has a malformed entry: {error!r}") from None


@dataclass(frozen=True)
class BaselineOutcome:
    report: Report  # the findings the baseline did not accept
    accepted: int
    stale: list[BaselineEntry]  # recorded, no longer found


def apply_baseline(report: Report, entries: list[BaselineEntry]) -> BaselineOutcome:
    """Remove from `report` each finding a baseline entry accepts (one finding per entry).

    An entry of a file that could not be read this time is neither used nor stale: its
    findings were not looked for."""
    remaining = Counter(entry.key for entry in entries)
    unread = {baseline_path(result.path) for result in report.errors}
    files: list[FileResult] = []
    accepted = 0
    for result in report.files:
        path = baseline_path(result.path)
        kept = []
        for finding in result.findings:
            key = (path, finding.code, finding.layer, fingerprint(finding))
            if remaining[key] > 0:
                remaining[key] -= 1
                accepted += 1
            else:
                kept.append(finding)
        files.append(replace(result, findings=kept))
    stale = []
    for entry in entries:
        if remaining[entry.key] > 0 and entry.path not in unread:
            remaining[entry.key] -= 1
            stale.append(entry)
    outcome = Report(files, dict(report.timings))
    outcome.baseline = {"accepted": accepted, "stale": [entry.to_dict() for entry in stale]}
    return BaselineOutcome(outcome, accepted, stale)
