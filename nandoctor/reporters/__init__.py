"""Pure functions from a Report to text: one module per output format."""

from __future__ import annotations

from nandoctor.report import Report

FORMATS = ("text", "json", "sarif", "github", "junit")


def render(report: Report, output_format: str, **options) -> str:
    """`options` go to the format that takes them: the text report's layout, junit's `fail_on`."""
    if output_format == "json":
        from nandoctor.reporters.json import render_json

        return render_json(report)
    if output_format == "sarif":
        from nandoctor.reporters.sarif import render_sarif

        return render_sarif(report)
    if output_format == "github":
        from nandoctor.reporters.github import render_github

        return render_github(report)
    if output_format == "junit":
        from nandoctor.reporters.junit import render_junit

        return render_junit(report, **options)
    if output_format == "text":
        from nandoctor.reporters.text import render_text

        return render_text(report, **options)
    raise ValueError(f"Unknown format. Expected one of {', '.join(FORMATS)}. Received: {output_format!r}")
