"""SARIF 2.1.0, for code-scanning dashboards: the rules that fired in `tool.driver.rules`, one
result per finding (with its `ruleIndex`), the layer as a logical location, unreadable files
as tool notifications."""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

from nandoctor.report import Finding, Report, Severity

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _rule_descriptor(rule) -> dict[str, Any]:
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary()},
        "fullDescription": {"text": rule.sections().get("Why is this bad?", rule.summary())},
        "help": {"text": rule.fix, "markdown": rule.documentation()},
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
        "properties": {"tags": [rule.code[:3]]},
    }


def _result(finding: Finding, uri: str, rule_index: dict[str, int]) -> dict[str, Any]:
    location: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": uri}}}
    if finding.layer:
        location["logicalLocations"] = [
            {"name": finding.layer, "fullyQualifiedName": f"{uri}::{finding.layer}", "kind": "module"}
        ]
    return {
        "ruleId": finding.code,
        "ruleIndex": rule_index[finding.code],
        "level": _LEVEL[finding.severity],
        "message": {"text": f"{finding.message}. Fix: {finding.fix}"},
        "locations": [location],
        "properties": {"confidence": finding.confidence.value, "details": finding.details},
    }


def render_sarif(report: Report) -> str:
    from nandoctor import __version__
    from nandoctor.catalogue import DIAGNOSES

    # The rules that fired, in catalogue order: SARIF viewers list every rule a run names.
    fired = {finding.code for finding in report.findings}
    rules = [diagnosis for diagnosis in DIAGNOSES if diagnosis.code in fired]
    rule_index = {rule.code: index for index, rule in enumerate(rules)}
    results = [
        _result(finding, PurePath(file.path).as_posix(), rule_index)
        for file in report.files
        for finding in file.findings
    ]
    notifications = [
        {
            "level": "error",
            "message": {"text": f"{file.path}: {file.error}"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": PurePath(file.path).as_posix()}}}],
        }
        for file in report.errors
    ]
    sarif = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "nandoctor",
                        "version": __version__,
                        "rules": [_rule_descriptor(rule) for rule in rules],
                    }
                },
                "invocations": [
                    {"executionSuccessful": not notifications, "toolExecutionNotifications": notifications}
                ],
                "results": results,
            }
        ],
    }
    return json.dumps(sarif, indent=2)
