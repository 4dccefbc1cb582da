"""A Report as HTML, for notebooks (`Report._repr_html_`): one table, grouped by file, each
group headed by the file's path, then its unreadable reason or its notes, then its findings
coloured by severity. Every value is escaped."""

from __future__ import annotations

from html import escape

from nandoctor.report import FileResult, FileStatus, Finding, Report, Severity

_COLOUR = {Severity.ERROR: "#c62828", Severity.WARNING: "#b26a00", Severity.INFO: "#00695c"}
_HEAD = "<tr><th>code</th><th>severity</th><th>confidence</th><th>layer</th><th>finding</th></tr>"


def render_html(report: Report) -> str:
    from nandoctor.reporters.text import summary_line

    groups = "".join(_file_rows(result) for result in report.files if _worth_showing(result))
    table = f'<table style="text-align:left">{_HEAD}{groups}</table>' if groups else ""
    return f"<div>{table}<p>{escape(summary_line(report))}</p></div>"


def _worth_showing(result: FileResult) -> bool:
    return result.status is not FileStatus.SCANNED or bool(result.findings or result.notes)


def _file_rows(result: FileResult) -> str:
    rows = [f'<tr><th colspan="5" style="text-align:left"><code>{escape(result.path)}</code></th></tr>']
    if result.status is FileStatus.ERROR:
        rows.append(
            _wide_row(f'<span style="color:{_COLOUR[Severity.ERROR]}">unreadable</span>: {escape(result.error or "")}')
        )
    elif result.status is FileStatus.SKIPPED:
        rows.append(_wide_row(f"<i>skipped: {escape(result.error or '')}</i>"))
    rows.extend(_wide_row(f"<i>note: {escape(note)}</i>") for note in result.notes)
    rows.extend(_finding_row(finding) for finding in result.findings)
    return "".join(rows)


def _wide_row(cell: str) -> str:
    return f'<tr><td colspan="5">{cell}</td></tr>'


def _finding_row(finding: Finding) -> str:
    return (
        f"<tr><td><b>{escape(finding.code)}</b></td>"
        f'<td style="color:{_COLOUR[finding.severity]}">{escape(finding.severity.value)}</td>'
        f"<td>{escape(finding.confidence.value)}</td>"
        f"<td><code>{escape(finding.layer or '-')}</code></td>"
        f"<td>{escape(finding.message)}<br><small>fix: {escape(finding.fix)}</small></td></tr>"
    )
