"""`scan --statistics`: a count per code instead of each finding, as `ruff --statistics`
prints, most frequent first. Text is one line per code; JSON is the report object with the
counts added under "statistics" (keys only ever added)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from nandoctor.report import Report, Severity


def statistics(report: Report) -> list[dict[str, Any]]:
    """One entry per code that fired: its count, its count at each severity, and in how many files."""
    counts: Counter[str] = Counter()
    by_severity: dict[str, Counter[str]] = defaultdict(Counter)
    files: dict[str, set[str]] = defaultdict(set)
    names: dict[str, str] = {}
    for result in report.files:
        for finding in result.findings:
            counts[finding.code] += 1
            by_severity[finding.code][finding.severity.value] += 1
            files[finding.code].add(result.path)
            names[finding.code] = finding.name
    ordered = sorted(counts, key=lambda code: (-counts[code], code))
    return [
        {
            "code": code,
            "name": names[code],
            "count": counts[code],
            **{severity.value: by_severity[code][severity.value] for severity in Severity},
            "files": len(files[code]),
        }
        for code in ordered
    ]


def render_statistics_text(report: Report, *, summary: bool = True, unreadable: bool = True) -> str:
    from nandoctor.diagnosis import plural
    from nandoctor.reporters.text import summary_line

    rows = statistics(report)
    width = max((len(str(row["count"])) for row in rows), default=1)
    name_width = max((len(row["name"]) for row in rows), default=0)
    lines = [
        f"{row['count']:>{width}}  {row['code']}  {row['name']:<{name_width}}  "
        + ", ".join(f"{row[s.value]} {s.value}" for s in Severity if row[s.value])
        + f" in {plural(row['files'], 'file')}"
        for row in rows
    ]
    if unreadable:
        lines.extend(f"{result.path}: unreadable: {result.error}" for result in report.errors)
    if summary:
        lines.append(summary_line(report))
    return "\n".join(lines) + "\n" if lines else ""


def render_statistics_json(report: Report) -> str:
    return json.dumps({**report.to_dict(), "statistics": statistics(report)}, indent=2)
