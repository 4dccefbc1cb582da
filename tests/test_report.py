import json

import pytest

from nandoctor.report import (
    Confidence,
    FileResult,
    FileStatus,
    Finding,
    Report,
    Severity,
    parse_severity,
)


def finding(severity: Severity) -> Finding:
    return Finding("ND101", "zero-embedding-rows", severity, Confidence.HIGH, "emb", "msg", "fix", {"count": 1})


def test_severity_is_a_string_enum_ranked_error_over_warning_over_info():
    assert Severity.ERROR == "error" and Severity.INFO == "info"
    assert Severity.ERROR.rank > Severity.WARNING.rank > Severity.INFO.rank


def test_exit_code_is_1_only_for_findings_at_or_above_the_threshold():
    report = Report([FileResult("a.keras", "keras", FileStatus.SCANNED, findings=[finding(Severity.WARNING)])])
    assert report.exit_code("warning") == 1
    assert report.exit_code("info") == 1
    assert report.exit_code("error") == 0


def test_an_unreadable_file_makes_the_exit_code_2_whatever_the_findings():
    report = Report(
        [
            FileResult("a.keras", "keras", FileStatus.SCANNED, findings=[finding(Severity.ERROR)]),
            FileResult("b.keras", None, FileStatus.ERROR, "truncated"),
        ]
    )
    assert report.exit_code("warning") == 2


def test_json_has_the_contract_keys_in_order_then_only_additions():
    report = Report([FileResult("a.keras", "keras", FileStatus.SCANNED, findings=[finding(Severity.ERROR)])])
    data = json.loads(report.to_json())
    assert list(data) == ["nandoctor", "files", "summary"]
    assert list(data["files"][0]) == ["path", "format", "status", "error", "findings", "notes", "suppressed"]
    assert list(data["files"][0]["findings"][0]) == [
        "code",
        "name",
        "severity",
        "confidence",
        "layer",
        "message",
        "fix",
        "details",
    ]
    assert data["summary"] == {
        "files": 1,
        "findings": 1,
        "error": 1,
        "warning": 0,
        "info": 0,
        "unreadable": 0,
        "suppressed": 0,
    }


def test_unknown_severity_is_refused_with_what_was_received():
    with pytest.raises(ValueError, match="Received: 'fatal'"):
        parse_severity("fatal")


def two_file_report() -> Report:
    """A file with a finding, one that could not be read, one clean but with a note."""
    return Report(
        [
            FileResult("models/a.keras", "keras", FileStatus.SCANNED, findings=[finding(Severity.ERROR)]),
            FileResult("models/b.keras", "keras", FileStatus.ERROR, "not a valid zip archive (truncated or corrupt)"),
            FileResult("models/saved", "savedmodel", FileStatus.SCANNED, notes=["the graph is code and was not read"]),
        ]
    )


def test_the_text_report_names_every_file_with_its_reason_or_its_notes():
    text = str(two_file_report())
    assert "models/a.keras\nND101 error emb" in text
    assert "models/b.keras\n  unreadable: not a valid zip archive (truncated or corrupt)\n" in text
    assert "models/saved\n  note: the graph is code and was not read\n" in text
    assert text.rstrip().endswith("Found 1 finding in 2 files: 1 error. 1 file could not be read.")


def test_the_text_report_can_leave_unreadable_files_to_a_caller_that_said_them():
    from nandoctor.reporters.text import render_text

    assert "models/b.keras" not in render_text(two_file_report(), unreadable=False)


def test_the_notebook_display_groups_by_file_with_reasons_notes_and_severity_colours():
    html = two_file_report()._repr_html_()
    groups = [html.index(f"<code>{path}</code></th>") for path in ("models/a.keras", "models/b.keras", "models/saved")]
    assert groups == sorted(groups)
    assert "unreadable</span>: not a valid zip archive (truncated or corrupt)" in html
    assert "<i>note: the graph is code and was not read</i>" in html
    assert 'style="color:#c62828">error</td>' in html  # the finding's severity, coloured


def test_the_notebook_display_escapes_what_the_file_named():
    report = Report([FileResult("<b>.keras", "keras", FileStatus.ERROR, "layer '<script>' is odd")])
    html = report._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;.keras" in html
