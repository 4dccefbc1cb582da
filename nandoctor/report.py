"""Findings and the report that gathers them: the one vocabulary of every way in."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.StrEnum):
    """How bad a finding is; ranked `error` > `warning` > `info`."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class Evidence(enum.StrEnum):
    """What a finding rests on, and so the highest severity it may have (`ceiling`).

    `certain`: the file or the model's structure alone proves it (zero rows that a cosine
    divides by; a softmax over one unit). `measured`: a probe on typical inputs, in the
    model's own dtype policy, states the number. `inferred`: a guess across code the scan
    cannot see (a Lambda, a custom layer). `adversarial`: an input outside any realistic
    range broke it (magnitudes of 1e12, all-zero images into a model at initialisation).
    A guess or an unrealistic input is worth knowing, never evidence that training fails.
    """

    CERTAIN = "certain"
    MEASURED = "measured"
    INFERRED = "inferred"
    ADVERSARIAL = "adversarial"

    @property
    def ceiling(self) -> Severity:
        return Severity.ERROR if self in (Evidence.CERTAIN, Evidence.MEASURED) else Severity.INFO


def capped(severity: Severity, evidence: Evidence) -> Severity:
    """The one place a finding's severity meets its evidence: never above what it rests on."""
    return severity if severity.rank <= evidence.ceiling.rank else evidence.ceiling


class Confidence(enum.StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class Finding:
    """One fault found in one layer. Attributes are exactly the JSON keys."""

    code: str
    name: str
    severity: Severity
    confidence: Confidence
    layer: str | None
    message: str
    fix: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "confidence": self.confidence.value,
            "layer": self.layer,
            "message": self.message,
            "fix": self.fix,
            "details": self.details,
        }


@dataclass(frozen=True)
class AppliedFix:
    """One prescription `nandoctor fix` applied to a file: the finding it cures, whether the
    model still computes the same thing (`safe`) or changed and needs training (`unsafe`),
    what changed in one line, and the changes layer by layer (what `--diff` prints)."""

    code: str
    layer: str | None
    safety: str
    message: str
    changes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "layer": self.layer,
            "safety": self.safety,
            "message": self.message,
            "changes": list(self.changes),
            "details": self.details,
        }


@dataclass(frozen=True)
class UnappliedFix:
    """A finding with a prescription that `nandoctor fix` did not apply, and why."""

    code: str
    layer: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "layer": self.layer, "reason": self.reason}


class FileStatus(enum.StrEnum):
    SCANNED = "scanned"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass
class FileResult:
    """What one scanned file gave: findings, or the one-line reason it could not be read."""

    path: str
    format: str | None
    status: FileStatus
    error: str | None = None
    findings: list[Finding] = field(default_factory=list)
    # What could not be read or judged (weights absent, a live check that could not run).
    notes: list[str] = field(default_factory=list)
    # Findings left out by per-file or per-layer ignores, counted by code.
    suppressed: dict[str, int] = field(default_factory=dict)
    # `nandoctor fix` only: what it applied and what it did not, and where it wrote the
    # result (None for a dry run); `findings` are then those the fixed file still has.
    fixed: list[AppliedFix] | None = None
    unfixed: list[UnappliedFix] = field(default_factory=list)
    output: str | None = None

    def severity_counts(self) -> dict[str, int]:
        """How many findings of each severity, by its value: what the summary and the exit code
        need, which a result read back from the cache answers without reading its findings."""
        counts = {severity.value: 0 for severity in Severity}
        for finding in self.findings:
            counts[finding.severity.value] += 1
        return counts

    def written_json(self) -> str | None:
        """The result as the JSON report writes it, less its path, where this result holds
        that text already (one read back from the cache: `nandoctor.result_json.StoredResult`)."""
        return None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "path": self.path,
            "format": self.format,
            "status": self.status.value,
            "error": self.error,
            "findings": [finding.to_dict() for finding in self.findings],
            # Additions to the contract: keys are only ever added.
            "notes": list(self.notes),
            "suppressed": dict(self.suppressed),
        }
        if self.fixed is not None:
            data.update(
                fixed=[fix.to_dict() for fix in self.fixed],
                unfixed=[fix.to_dict() for fix in self.unfixed],
                output=self.output,
            )
        return data


# Exit codes, shared by the CLI and `Report.exit_code` (fixed contract).
EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_UNUSABLE = 2


def parse_severity(value: str | Severity) -> Severity:
    try:
        return Severity(str(value).lower())
    except ValueError:
        choices = ", ".join(s.value for s in Severity)
        raise ValueError(f"Unknown severity. Expected one of {choices}. Received: {value!r}") from None


@dataclass
class Report:
    """Every file's result from one run, in the order the files were given."""

    files: list[FileResult] = field(default_factory=list)
    # Seconds each live check took (`nandoctor.check`); empty for a static scan.
    timings: dict[str, float] = field(default_factory=dict)
    # `scan --baseline` only: how many findings the baseline accepted (they are not in
    # `files`) and its entries no longer found ("stale"), each {path, code, layer, ...}.
    baseline: dict[str, Any] | None = None

    @property
    def findings(self) -> list[Finding]:
        return [finding for result in self.files for finding in result.findings]

    @property
    def errors(self) -> list[FileResult]:
        return [result for result in self.files if result.status is FileStatus.ERROR]

    def summary(self) -> dict[str, int]:
        counts = {severity.value: 0 for severity in Severity}
        for result in self.files:
            for severity, count in result.severity_counts().items():
                counts[severity] += count
        return {
            "files": len(self.files),
            "findings": sum(counts.values()),
            **counts,
            "unreadable": len(self.errors),
            "suppressed": sum(sum(r.suppressed.values()) for r in self.files),
        }

    def to_dict(
        self, version: str | None = None, file_data: Callable[[FileResult], Any] | None = None
    ) -> dict[str, Any]:
        """The report as JSON data; `file_data` writes each file's result (`FileResult.to_dict`)."""
        if version is None:
            from nandoctor import __version__ as version
        data: dict[str, Any] = {
            "nandoctor": version,
            "files": [(file_data or FileResult.to_dict)(result) for result in self.files],
            "summary": self.summary(),
        }
        if self.timings:  # an addition to the contract: only live checks have it
            data["timings"] = {name: round(seconds, 4) for name, seconds in self.timings.items()}
        if self.baseline is not None:  # an addition: only a run against a baseline has it
            data["baseline"] = self.baseline
        return data

    def __str__(self) -> str:
        """The text report, as `nandoctor scan` prints it (`print(nandoctor.check(model))`)."""
        from nandoctor.reporters.text import render_text

        return render_text(self)

    def _repr_html_(self) -> str:
        """A table of the findings, for Jupyter."""
        from nandoctor.reporters.html import render_html

        return render_html(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def exit_code(self, fail_on: str | Severity = Severity.WARNING) -> int:
        """2 if a file could not be read, 1 if a finding reaches `fail_on`, else 0."""
        if self.errors:
            return EXIT_UNUSABLE
        threshold = parse_severity(fail_on)
        reached = [severity.value for severity in Severity if severity.rank >= threshold.rank]
        for result in self.files:
            counts = result.severity_counts()  # once a result: a plain one counts its findings
            if any(counts[severity] for severity in reached):
                return EXIT_FINDINGS
        return EXIT_CLEAN
