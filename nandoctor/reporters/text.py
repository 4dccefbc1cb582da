"""The report for people: findings grouped by file, then one summary line.

```
fixtures/broken/seed_c_cosine.keras
  ND101  error    word_emb  1,500 of 5,000 rows (30.0%) are all zero (ids 3, 7, ...); ...
                            fix: Give rows of unknown words small random vectors ...
```
User text (layer names, messages) is printed as plain text, never as rich markup.

Without colour (a file, a pipe, CI) the report is laid out here, line by line, exactly as
rich lays out the coloured one: rich measures and renders each file's table cell by cell,
about a millisecond a file, 30 times what the JSON report costs for a directory of 3,000.
"""

from __future__ import annotations

import io
import re

from rich._wrap import divide_line
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nandoctor.diagnosis import plural
from nandoctor.report import FileResult, FileStatus, Finding, Report, Severity

_SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def render_text(
    report: Report,
    *,
    color: bool = False,
    width: int = 100,
    summary: bool = True,
    diff: bool = False,
    unreadable: bool = True,
) -> str:
    """`unreadable=False` leaves out the files that could not be read, for a caller that has
    already said each on a line of its own (the CLI, on stderr)."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        no_color=not color,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )
    for result in report.files:
        if _nothing_to_say(result, unreadable):
            continue
        plain = _plain_file(result, width) if not color and _plain_text_safe(result) else None
        if plain is not None:
            buffer.write(plain)
            continue
        console.print(Text(result.path, style="bold"), soft_wrap=True)  # a path is never wrapped
        if result.status is FileStatus.ERROR:
            console.print(Text("  unreadable: ", style="bold red") + Text(result.error or ""), soft_wrap=True)
            console.print()
            continue
        if result.status is FileStatus.SKIPPED:
            console.print(Text(f"  skipped: {result.error}", style="dim"))
            continue
        if result.fixed is not None:  # what was done first; notes then say how to use the result
            _print_fixes(console, result, diff)
        for note in result.notes:
            console.print(Text(f"  note: {note}", style="dim"))
        if result.fixed is not None and result.findings:
            console.print(Text("  still found:", style="dim"))
        if result.findings:
            console.print(_findings_table(result.findings, width), Text(""), sep="\n", end="")
        console.print()
    _print_stale_baseline(console, report)
    if summary:
        console.print(Text(summary_line(report)))
    # Table cells are padded to the full width; trailing spaces only get in the way of a diff.
    return "\n".join(line.rstrip() for line in buffer.getvalue().split("\n"))


def _plain_file(result: FileResult, width: int) -> str | None:
    """The lines rich prints for a scanned file without fixes (or an unreadable or skipped
    one), without colour, laid out as rich lays them out; None where its table would not fit
    in `width` with a message column left (rich's narrowing of the other columns is rich's)."""
    lines = [result.path]
    if result.status is FileStatus.ERROR:
        lines += [f"  unreadable: {result.error or ''}", ""]
        return "\n".join(lines) + "\n"
    if result.status is FileStatus.SKIPPED:
        lines += _wrapped(f"  skipped: {result.error}", width)
        return "\n".join(lines) + "\n"
    for note in result.notes:
        lines += _wrapped(f"  note: {note}", width)
    if result.findings:
        table = _plain_findings(result.findings, width)
        if table is None:
            return None
        lines += table
    lines.append("")
    return "\n".join(lines) + "\n"


# Characters rich's Text removes or expands (control codes, tabs): a file whose text holds
# one is left to rich.
_NOT_PLAIN = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def _plain_text_safe(result: FileResult) -> bool:
    if result.fixed is not None or result.unfixed or result.output:
        return False
    texts = [result.path, result.error or "", *result.notes]
    for finding in result.findings:
        texts += [finding.code, finding.layer or "", finding.message, finding.fix, evidence_line(finding)]
    return not any(_NOT_PLAIN.search(text) for text in texts)


def _wrapped(text: str, width: int) -> list[str]:
    """`text` folded to `width` cells as rich folds a Text (breaks between words, a word
    longer than the line cut), each line without its trailing spaces."""
    lines = []
    for line in text.split("\n"):
        if line.isascii():
            breaks = _ascii_breaks(line, width) if len(line) > width else []
        else:
            breaks = divide_line(line, width, fold=True) if cell_len(line) > width else []
        starts = [0, *breaks]
        lines += [line[start:end].rstrip() for start, end in zip(starts, [*breaks, len(line)])]
    return lines


_WORD = re.compile(r"\s*\S+\s*")  # a word with the spaces around it, as rich divides a line


def _ascii_breaks(line: str, width: int) -> list[int]:
    """rich's `divide_line(line, width, fold=True)` for a line of printable ASCII, where a
    character is a cell (rich measures each word's cells; this is a third of its time)."""
    breaks: list[int] = []
    offset = 0
    for match in _WORD.finditer(line):
        start, end = match.span()
        word = match.group()
        length = len(word.rstrip())
        if width - offset >= length:
            offset += end - start
        elif length > width:  # cut into lines of `width`, the last one carried on
            for piece in range(start, end, width):
                if piece:
                    breaks.append(piece)
                offset = min(width, end - piece)
        elif offset and start:
            breaks.append(start)
            offset = end - start
    return breaks


def _plain_findings(findings: list[Finding], width: int) -> list[str] | None:
    """`_findings_table`, laid out as rich lays that table out: each column as wide as its
    widest cell plus one space (the message, the last, without it), the message narrowed
    until the table fits in `width` and wrapped to its column."""
    column = max(12, width // 4)
    rows = []
    for finding in findings:
        layer = finding.layer or "-"
        parts = [finding.message, evidence_line(finding), f"fix: {finding.fix}"]
        if cell_len(layer) > column:
            parts.insert(0, f"layer {layer}")
            layer = ""
        rows.append((finding.code, finding.severity.value, layer, "\n".join(parts)))
    widths = [max(cell_len(row[index]) for row in rows) + 1 for index in range(3)]
    widths[2] = min(widths[2], column + 1)
    message_width = min(max(_longest_line(row[3]) for row in rows), width)
    excess = sum(widths) + message_width - width
    if excess >= message_width:
        return None
    message_width -= max(0, excess)
    lines: list[str] = []
    for index, (code, severity, layer, message) in enumerate(rows):
        if index:
            lines.append("")
        left = [_cell(code, widths[0]), _cell(severity, widths[1]), _cell(layer, widths[2])]
        wrapped = _wrapped(message, message_width)
        if any(not text.isascii() and cell_len(text) > message_width for text in wrapped):
            return None  # a wide character in a column narrower than it: rich crops it
        for number, text in enumerate(wrapped):
            lines.append((("".join(left) if number == 0 else " " * sum(widths)) + text).rstrip())
    return lines


def _cell(text: str, width: int) -> str:
    return text + " " * (width - cell_len(text))


def _longest_line(text: str) -> int:
    return max(cell_len(line) for line in text.split("\n"))


def _print_stale_baseline(console: Console, report: Report) -> None:
    stale = (report.baseline or {}).get("stale") or []
    if not stale:
        return
    console.print(
        Text(
            f"baseline: {len(stale)} {'entry' if len(stale) == 1 else 'entries'} no longer found (fixed, or the "
            "model changed; --write-baseline records today's findings):",
            style="bold",
        )
    )
    for entry in stale:
        console.print(Text(f"  {entry['path']} {entry['code']} {entry['layer'] or '-'}"), soft_wrap=True)
    console.print()


def _nothing_to_say(result: FileResult, unreadable: bool) -> bool:
    if result.status is FileStatus.ERROR:
        return not unreadable
    return (
        result.status is FileStatus.SCANNED
        and not result.findings
        and not result.notes
        and not (result.fixed or result.unfixed)
    )


def _print_fixes(console: Console, result: FileResult, diff: bool) -> None:
    if result.fixed is None:  # no fix was run (a scan, or a dry run); the caller checks this too
        return
    for fix in result.fixed:
        console.print(
            Text("  fixed ", style="bold green")
            + Text(f"{fix.code} ({fix.safety}) ", style="bold")
            + Text(fix.message),
            soft_wrap=True,
        )
        for change in fix.changes if diff else ():
            console.print(Text(f"      ~ {change}", style="dim"), soft_wrap=True)
    for unfixed in result.unfixed:
        console.print(
            Text("  not fixed ", style="yellow")
            + Text(f"{unfixed.code} ", style="bold")
            + Text(f"{unfixed.layer or '-'}: {unfixed.reason}"),
            soft_wrap=True,
        )
    if result.output:
        console.print(Text(f"  wrote {result.output}"), soft_wrap=True)
    elif result.fixed:
        console.print(Text("  nothing written (no --output or --in-place)", style="dim"))


def _findings_table(findings: list[Finding], width: int) -> Table:
    # A layer name is what the reader acts on, so it is never cut: a name too long for its
    # column is printed whole on a line of its own, above the message.
    column = max(12, width // 4)
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("code", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("layer", no_wrap=True, max_width=column)
    table.add_column("message", ratio=1, overflow="fold")
    for index, finding in enumerate(findings):
        if index:
            table.add_row()
        layer = finding.layer or "-"
        message = Text()
        if len(layer) > column:
            message.append(f"layer {layer}\n", style="bold")
            layer = ""
        message.append(finding.message)
        message.append(f"\n{evidence_line(finding)}", style="dim")
        message.append(f"\nfix: {finding.fix}", style="dim")
        table.add_row(
            Text(finding.code, style="bold"),
            Text(finding.severity.value, style=_SEVERITY_STYLE[finding.severity]),
            Text(layer, style="bold"),
            message,
        )
    return table


def evidence_line(finding: Finding) -> str:
    """What the finding rests on: `evidence: measured (what was measured)`."""
    evidence = finding.details.get("evidence", "?")
    measured = finding.details.get("measured")
    return f"evidence: {evidence}" + (f" ({measured})" if measured else "")


def summary_line(report: Report) -> str:
    counts = report.summary()
    fixed = sum(len(r.fixed) for r in report.files if r.fixed is not None)
    if any(r.fixed is not None for r in report.files):
        unfixed = sum(len(r.unfixed) for r in report.files)
        prefix = f"Fixed {plural(fixed, 'finding')}" + (f" ({unfixed} not fixed)" if unfixed else "") + ". "
        return prefix + _scan_summary(report, counts).replace("Found", "Still found", 1)
    return _scan_summary(report, counts)


def _scan_summary(report: Report, counts: dict[str, int]) -> str:
    scanned = sum(1 for r in report.files if r.status is FileStatus.SCANNED)
    if counts["findings"]:
        parts = [
            f"{counts[s.value]} {s.value}{'s' if s is not Severity.INFO and counts[s.value] != 1 else ''}"
            for s in Severity
            if counts[s.value]
        ]
        line = f"Found {plural(counts['findings'], 'finding')} in {plural(scanned, 'file')}: {', '.join(parts)}."
    elif scanned:
        line = f"No findings in {plural(scanned, 'file')}."
    else:
        line = "Nothing was scanned."
    if counts["unreadable"]:
        line += f" {plural(counts['unreadable'], 'file')} could not be read."
    skipped = sum(1 for r in report.files if r.status is FileStatus.SKIPPED)
    if skipped:
        line += f" {skipped} skipped."
    if counts["suppressed"]:
        line += f" {counts['suppressed']} suppressed."
    if report.baseline is not None:
        line += f" {report.baseline['accepted']} in the baseline."
    return line
