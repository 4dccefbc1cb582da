"""GitHub Actions workflow commands: one `::error`/`::warning`/`::notice` line per finding,
which GitHub shows as annotations on the run (and on the file, when it is in the diff)."""

from __future__ import annotations

from pathlib import PurePath

from nandoctor.report import Report, Severity

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: Report) -> str:
    lines = []
    for result in report.files:
        file = _escape_property(PurePath(result.path).as_posix())
        if result.error and result.status.value == "error":
            lines.append(
                f"::error file={file},title={_escape_property('nandoctor: unreadable file')}::{_escape_data(result.error)}"
            )
        for finding in result.findings:
            title = _escape_property(
                f"{finding.code} {finding.name}" + (f" ({finding.layer})" if finding.layer else "")
            )
            message = _escape_data(f"{finding.message}. Fix: {finding.fix}")
            lines.append(f"::{_COMMAND[finding.severity]} file={file},title={title}::{message}")
    return "\n".join(lines) + ("\n" if lines else "")
