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
rich is imported only for what is left to it (colour, fixes, control codes, measuring text
that is not ASCII), so a plain report neither waits for its import nor pays for it.
"""

from __future__ import annotations

import functools
import io
import re
from typing import TYPE_CHECKING

from nandoctor.diagnosis import plural
from nandoctor.report import FileResult, FileStatus, Finding, Report, Severity

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

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
    output = _Output(width, color)
    for result in report.files:
        if _nothing_to_say(result, unreadable):
            continue
        plain = None if color else _plain_file(result, width)
        if plain is None:
            _print_file(output.console(), result, width, diff)
        else:
            output.write(plain)
    stale = (report.baseline or {}).get("stale") or []
    if stale:
        plain = None if color else _plain_stale_baseline(stale, width)
        if plain is None:
            _print_stale_baseline(output.console(), stale)
        else:
            output.write(plain)
    if summary:
        line = summary_line(report)
        plain = None if color else _plain_summary(line, width)
        if plain is None:
            from rich.text import Text

            output.console().print(Text(line))
        else:
            output.write(plain)
    return output.text()


class _Output:
    """The report's lines, from the plain layout or from a rich Console made on first use.
    Table cells are padded to the full width and trailing spaces only get in the way of a
    diff, so no line ends in a space: the plain layout writes none, and what rich prints is
    stripped of them as it is taken."""

    def __init__(self, width: int, color: bool) -> None:
        self._width = width
        self._color = color
        self._lines: list[str] = []
        self._buffer = io.StringIO()
        self._console: Console | None = None

    def write(self, lines: list[str]) -> None:
        """Lines without trailing spaces."""
        self._take_printed()
        self._lines += lines

    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(
                file=self._buffer,
                width=self._width,
                color_system="standard" if self._color else None,
                force_terminal=self._color,
                no_color=not self._color,
                highlight=False,
                emoji=False,
                soft_wrap=False,
            )
        return self._console

    def text(self) -> str:
        self._take_printed()
        return "\n".join([*self._lines, ""])

    def _take_printed(self) -> None:
        printed = self._buffer.getvalue()
        if printed:  # whole lines: rich ends each print with a newline
            self._lines += [line.rstrip() for line in printed.removesuffix("\n").split("\n")]
            self._buffer.seek(0)
            self._buffer.truncate()


def _plain_file(result: FileResult, width: int) -> list[str] | None:
    """The lines rich prints for a scanned file without fixes (or an unreadable or skipped
    one), without colour, laid out as rich lays them out; None where a text holds what rich
    removes or expands, where a wide character is wider than its line, or where its table
    would not fit in `width` with a message column left (rich's narrowing of the other
    columns is rich's)."""
    if result.fixed is not None or result.unfixed or result.output:
        return None
    rows = [_finding_row(finding) for finding in result.findings]
    texts = "".join([result.path, result.error or "", *result.notes, *(text for row in rows for text in row)])
    if _NOT_PLAIN.search(texts):
        return None
    ascii = texts.isascii()
    lines = _unwrapped(result.path)  # a path is never wrapped
    if result.status is FileStatus.ERROR:
        return [*lines, *_unwrapped(f"  unreadable: {result.error or ''}"), ""]
    if result.status is FileStatus.SKIPPED:
        said = _wrapped(f"  skipped: {result.error}", width, ascii)
    else:
        said = [line for note in result.notes for line in _wrapped(f"  note: {note}", width, ascii)]
    if not ascii and not _fit(said, width):
        return None
    if result.status is FileStatus.SKIPPED:
        return lines + said
    lines += said
    if rows:
        table = _plain_findings(rows, width, ascii)
        if table is None:
            return None
        lines += table
    lines.append("")
    return lines


def _plain_stale_baseline(stale: list[dict], width: int) -> list[str] | None:
    """`_print_stale_baseline`, laid out as rich lays it out."""
    entries = [f"  {entry['path']} {entry['code']} {entry['layer'] or '-'}" for entry in stale]
    heading = _stale_baseline_heading(stale)
    if _NOT_PLAIN.search("".join(entries)):
        return None
    lines = _wrapped(heading, width, ascii=False)  # each line is measured
    for entry in entries:
        lines += _unwrapped(entry)
    lines.append("")
    return lines


def _plain_summary(line: str, width: int) -> list[str] | None:
    return _wrapped(line, width, ascii=True) if _printable_ascii(line) else None


# Characters rich's Text removes or expands (control codes, tabs): text holding one is left
# to rich. Without them, in ASCII text a character is a cell and the space the only white
# space (within a line), and the layout below takes a shorter way.
_NOT_PLAIN = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def _printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _cell_len(text: str) -> int:
    if _printable_ascii(text):
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def _unwrapped(text: str) -> list[str]:
    """`text` printed as is (rich's soft wrap), each line without its trailing spaces."""
    return [line.rstrip() for line in text.split("\n")]


def _wrapped(text: str, width: int, ascii: bool) -> list[str]:
    """`text` folded to `width` cells as rich folds a Text (breaks between words, a word
    longer than the line cut), each line without its trailing spaces; `ascii`: `text` is
    ASCII without control codes."""
    return _folded(text.split("\n"), width, ascii)


def _folded(text_lines: list[str], width: int, ascii: bool) -> list[str]:
    lines: list[str] = []
    for line in text_lines:
        if ascii or _printable_ascii(line):
            if len(line) <= width:
                lines.append(line.rstrip())
            else:
                lines += _ascii_folded(line, width)
            continue
        from rich._wrap import divide_line
        from rich.cells import cell_len

        lines += _divided(line, divide_line(line, width, fold=True) if cell_len(line) > width else [])
    return lines


# A rule's fix, and many of its messages, are the same words in every file it is found in:
# each is folded once.
@functools.lru_cache(maxsize=1024)
def _ascii_folded(line: str, width: int) -> tuple[str, ...]:
    return _divided(line, _ascii_breaks(line, width))


def _divided(line: str, breaks: list[int]) -> tuple[str, ...]:
    starts = [0, *breaks]
    return tuple(line[start:end].rstrip() for start, end in zip(starts, [*breaks, len(line)]))


_NOT_SPACE = re.compile(r"[^ ]")


def _ascii_breaks(line: str, width: int) -> list[int]:
    """rich's `divide_line(line, width, fold=True)` for a line of printable ASCII, a line at a
    time rather than rich's word by word.

    rich divides a line into words, each with the spaces after it (the first with those
    before it too), and starts a new line at a word that would end past `width`; a word
    longer than `width` is cut every `width` characters from where it starts, its spaces
    included, and the line goes on after its last piece. So a line starting at `start` holds
    every word that ends by `start + width`, and the first that does not is the word holding
    the first character there or after it that is not a space."""
    breaks: list[int] = []
    length = len(line)
    first_word = _NOT_SPACE.search(line) if line.startswith(" ") else None
    first_word_text = first_word.start() if first_word else 0  # where its characters start
    start = 0
    while start + width < length:
        limit = start + width
        if line[limit] == " ":
            after = _NOT_SPACE.search(line, limit)
            if after is None:  # only spaces left: they hang off the end of this line
                break
            limit = after.start()
        word_text = line.rfind(" ", 0, limit) + 1
        word_start = 0 if word_text == first_word_text else word_text
        word_end = line.find(" ", limit)
        if word_end < 0:
            word_end = length
        if word_end - word_start <= width:
            breaks.append(word_start)
            start = word_start
            continue
        spaces_end = _NOT_SPACE.search(line, word_end)
        end = length if spaces_end is None else spaces_end.start()
        pieces = range(word_start, end, width)
        breaks += pieces[1:] if word_start == 0 else pieces
        start = pieces[-1]
    return breaks


def _finding_row(finding: Finding) -> tuple[str, str, str, str]:
    """A row of `_findings_table`: code, severity, layer, message."""
    message = f"{finding.message}\n{evidence_line(finding)}\nfix: {finding.fix}"
    return finding.code, finding.severity.value, finding.layer or "-", message


def _plain_findings(rows: list[tuple[str, str, str, str]], width: int, ascii: bool) -> list[str] | None:
    """`_findings_table`, laid out as rich lays that table out: each column as wide as its
    widest cell plus one space (the message, the last, without it), the message narrowed
    until the table fits in `width` and wrapped to its column."""
    measure = len if ascii else _cell_len
    column = max(12, width // 4)
    lefts, messages = [], []
    for code, severity, layer, message in rows:
        if measure(layer) > column:
            message = f"layer {layer}\n{message}"
            layer = ""
        lefts.append((code, severity, layer))
        messages.append(message.split("\n"))
    widths = [max(map(measure, cells)) + 1 for cells in zip(*lefts)]
    widths[2] = min(widths[2], column + 1)
    message_width = min(max(max(map(measure, message_lines)) for message_lines in messages), width)
    excess = sum(widths) + message_width - width
    if excess >= message_width:
        return None
    message_width -= max(0, excess)
    pad = str.ljust if ascii else _padded
    indent = " " * sum(widths)
    lines: list[str] = []
    for (code, severity, layer), message_lines in zip(lefts, messages):
        if lines:
            lines.append("")
        wrapped = _folded(message_lines, message_width, ascii)
        if not ascii and not _fit(wrapped, message_width):
            return None
        left = pad(code, widths[0]) + pad(severity, widths[1]) + pad(layer, widths[2])
        lines.append((left + wrapped[0]).rstrip())
        lines += [indent + text if text else "" for text in wrapped[1:]]
    return lines


def _fit(lines: list[str], width: int) -> bool:
    """False where a wide character is in a line narrower than it: rich crops such a line."""
    return not any(not _printable_ascii(line) and _cell_len(line) > width for line in lines)


def _padded(text: str, width: int) -> str:
    return text + " " * (width - _cell_len(text))


def _print_file(console: Console, result: FileResult, width: int, diff: bool) -> None:
    from rich.text import Text

    console.print(Text(result.path, style="bold"), soft_wrap=True)  # a path is never wrapped
    if result.status is FileStatus.ERROR:
        console.print(Text("  unreadable: ", style="bold red") + Text(result.error or ""), soft_wrap=True)
        console.print()
        return
    if result.status is FileStatus.SKIPPED:
        console.print(Text(f"  skipped: {result.error}", style="dim"))
        return
    if result.fixed is not None:  # what was done first; notes then say how to use the result
        _print_fixes(console, result, diff)
    for note in result.notes:
        console.print(Text(f"  note: {note}", style="dim"))
    if result.fixed is not None and result.findings:
        console.print(Text("  still found:", style="dim"))
    if result.findings:
        console.print(_findings_table(result.findings, width), Text(""), sep="\n", end="")
    console.print()


def _print_stale_baseline(console: Console, stale: list[dict]) -> None:
    from rich.text import Text

    console.print(Text(_stale_baseline_heading(stale), style="bold"))
    for entry in stale:
        console.print(Text(f"  {entry['path']} {entry['code']} {entry['layer'] or '-'}"), soft_wrap=True)
    console.print()


def _stale_baseline_heading(stale: list[dict]) -> str:
    return (
        f"baseline: {len(stale)} {'entry' if len(stale) == 1 else 'entries'} no longer found (fixed, or the "
        "model changed; --write-baseline records today's findings):"
    )


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
    from rich.text import Text

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
    # column is printed whole on a line of its own, above the message (measured in cells: a
    # name of wide characters is twice as wide as it is long).
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

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
        if cell_len(layer) > column:
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
