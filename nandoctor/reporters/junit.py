"""JUnit XML, for CI dashboards that read test results (GitLab `artifacts:reports:junit`,
Jenkins, Azure Pipelines): one test suite per file, one test case per finding, as ruff's
`--output-format junit` writes it. A finding at or above `fail_on` is a failure; one below
passes, its text kept in `system-out`; an unreadable file is an error; a clean file is one
passing case."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from nandoctor.report import FileStatus, Finding, Report, Severity, parse_severity


def render_junit(report: Report, *, fail_on: str | Severity = Severity.WARNING) -> str:
    threshold = parse_severity(fail_on)
    suites = ET.Element("testsuites", name="nandoctor")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for result in report.files:
        suite = ET.SubElement(suites, "testsuite", name=result.path)
        counts = {"tests": 0, "failures": 0, "errors": 0}
        if result.status is FileStatus.ERROR:
            case = ET.SubElement(suite, "testcase", name="nandoctor scan", classname=result.path)
            ET.SubElement(case, "error", message=result.error or "unreadable", type="unreadable").text = result.error
            counts.update(tests=1, errors=1)
        elif result.status is FileStatus.SKIPPED:
            case = ET.SubElement(suite, "testcase", name="nandoctor scan", classname=result.path)
            ET.SubElement(case, "skipped", message=result.error or "skipped")
            counts.update(tests=1)
        elif not result.findings:
            ET.SubElement(suite, "testcase", name="no findings", classname=result.path)
            counts.update(tests=1)
        for finding in result.findings:
            counts["tests"] += 1
            counts["failures"] += _finding_case(suite, result.path, finding, threshold)
        suite.attrib.update({key: str(value) for key, value in counts.items()})
        for key in totals:
            totals[key] += counts[key]
    suites.attrib.update({key: str(value) for key, value in totals.items()})
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _finding_case(suite: ET.Element, path: str, finding: Finding, threshold: Severity) -> int:
    """Adds the finding's test case; 1 when it fails."""
    where = f"{path}::{finding.layer}" if finding.layer else path
    case = ET.SubElement(suite, "testcase", name=f"{finding.code} {finding.name}", classname=where)
    text = f"{finding.severity.value}: {finding.message}\nfix: {finding.fix}"
    if finding.severity.rank >= threshold.rank:
        ET.SubElement(case, "failure", message=finding.message, type=finding.severity.value).text = text
        return 1
    ET.SubElement(case, "system-out").text = text
    return 0
