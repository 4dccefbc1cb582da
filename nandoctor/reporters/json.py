"""The JSON report: the fixed contract of DESIGN.md, one object on stdout."""

from __future__ import annotations

from nandoctor.report import Report


def render_json(report: Report) -> str:
    return report.to_json(indent=2)
