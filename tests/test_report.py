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
        "code", "name", "severity", "confidence", "layer", "message", "fix", "details"
    ]
    assert data["summary"] == {"files": 1, "findings": 1, "error": 1, "warning": 0, "info": 0,
                               "unreadable": 0, "suppressed": 0}


def test_unknown_severity_is_refused_with_what_was_received():
    with pytest.raises(ValueError, match="Received: 'fatal'"):
        parse_severity("fatal")
