"""A Report as an HTML table, for notebooks (`Report._repr_html_`). Every value is escaped."""

from __future__ import annotations

from html import escape

from nandoctor.report import FileStatus, Report, Severity

_COLOUR = {Severity.ERROR: "#c62828", Severity.WARNING: "#b26a00", Severity.INFO: "#00695c"}


def render_html(report: Report) -> str:
    from nandoctor.reporters.text import summary_line

    rows = []
    for result in report.files:
        if result.status is not FileStatus.SCANNED:
            rows.append(f'<tr><td colspan="4"><b>{escape(result.path)}</b></td>'
                        f"<td>{escape(result.status.value)}: {escape(result.error or '')}</td></tr>")
        for note in result.notes:
            rows.append(f'<tr><td colspan="4"><b>{escape(result.path)}</b></td><td><i>note: {escape(note)}</i></td></tr>')
        for finding in result.findings:
            rows.append(
                f"<tr><td><b>{escape(finding.code)}</b></td>"
                f'<td style="color:{_COLOUR[finding.severity]}">{escape(finding.severity.value)}</td>'
                f"<td>{escape(finding.confidence.value)}</td>"
                f"<td><code>{escape(finding.layer or '-')}</code></td>"
                f"<td>{escape(finding.message)}<br><small>fix: {escape(finding.fix)}</small></td></tr>"
            )
    head = "<tr><th>code</th><th>severity</th><th>confidence</th><th>layer</th><th>finding</th></tr>"
    table = f'<table style="text-align:left">{head}{"".join(rows)}</table>' if rows else ""
    return f"<div>{table}<p>{escape(summary_line(report))}</p></div>"
