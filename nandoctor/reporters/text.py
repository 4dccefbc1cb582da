"""The report for people: findings grouped by file, then one summary line.

```
fixtures/broken/seed_c_cosine.keras
  ND101  error    word_emb  1,500 of 5,000 rows (30.0%) are all zero (ids 3, 7, ...); ...
                            fix: Give rows of unknown words small random vectors ...
```
User text (layer names, messages) is printed as plain text, never as rich markup.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nandoctor.report import FileStatus, Report, Severity

_SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def render_text(report: Report, *, color: bool = False, width: int = 100, summary: bool = True) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, color_system="standard" if color else None,
        force_terminal=color, no_color=not color, highlight=False, emoji=False, soft_wrap=False,
    )
    for result in report.files:
        if result.status is FileStatus.SCANNED and not result.findings:
            continue
        if result.status is FileStatus.ERROR:
            continue  # unreadable files are reported on stderr, one line each
        console.print(Text(result.path, style="bold"), soft_wrap=True)  # a path is never wrapped
        if result.status is FileStatus.SKIPPED:
            console.print(Text(f"  skipped: {result.error}", style="dim"))
            continue
        table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1, 0, 0))
        table.add_column("code", no_wrap=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("layer", no_wrap=True, max_width=max(12, width // 4), overflow="fold")
        table.add_column("message", ratio=1, overflow="fold")
        for index, finding in enumerate(result.findings):
            if index:
                table.add_row()
            message = Text(finding.message)
            message.append(f"\nfix: {finding.fix}", style="dim")
            table.add_row(
                Text(finding.code, style="bold"),
                Text(finding.severity.value, style=_SEVERITY_STYLE[finding.severity]),
                Text(finding.layer or "-", style="bold"),
                message,
            )
        console.print(table, Text(""), sep="\n", end="")
        console.print()
    if summary:
        console.print(Text(summary_line(report)))
    # Table cells are padded to the full width; trailing spaces only get in the way of a diff.
    return "\n".join(line.rstrip() for line in buffer.getvalue().split("\n"))


def summary_line(report: Report) -> str:
    counts = report.summary()
    files = counts["files"]
    noun = "file" if files == 1 else "files"
    if counts["findings"]:
        parts = [f"{counts[s.value]} {s.value}{'s' if s is not Severity.INFO and counts[s.value] != 1 else ''}"
                 for s in Severity if counts[s.value]]
        line = f"Found {counts['findings']} finding{'s' if counts['findings'] != 1 else ''} in {files} {noun}: {', '.join(parts)}."
    else:
        line = f"No findings in {files} {noun}."
    failed = len(report.errors)
    skipped = sum(1 for r in report.files if r.status is FileStatus.SKIPPED)
    if failed:
        line += f" {failed} file{' was' if failed == 1 else 's were'} unreadable."
    if skipped:
        line += f" {skipped} skipped."
    return line
