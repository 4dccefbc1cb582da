"""A file's result as plain JSON data and back, checked field by field on the way back.

What the cache stores and what scan workers send their parent: data that another process
wrote is read as JSON and checked, never unpickled, so that a worker a hostile file has
subverted can hand its parent nothing but a wrong report.
"""

from __future__ import annotations

from typing import Any

from nandoctor.loaders import Target
from nandoctor.report import Confidence, FileResult, FileStatus, Finding, Severity


def result_to_dict(result: FileResult) -> dict[str, Any]:
    return {
        "format": result.format,
        "status": result.status.value,
        "error": result.error,
        "findings": [finding.to_dict() for finding in result.findings],
        "notes": list(result.notes),
    }


def result_from_dict(data: dict[str, Any], path: str) -> FileResult:
    """A result read back from JSON, checked field by field (a wrong type raises)."""
    findings = [
        Finding(
            _text(f["code"]),
            _text(f["name"]),
            Severity(f["severity"]),
            Confidence(f["confidence"]),
            _optional_text(f["layer"]),
            _text(f["message"]),
            _text(f["fix"]),
            _table(f["details"]),
        )
        for f in data["findings"]
    ]
    notes = [_text(note) for note in data["notes"]]
    return FileResult(
        path,
        _optional_text(data["format"]),
        FileStatus(data["status"]),
        _optional_text(data["error"]),
        findings=findings,
        notes=notes,
    )


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, found {type(value).__name__}")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _table(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a table, found {type(value).__name__}")
    return value


def target_to_dict(target: Target) -> dict[str, Any]:
    return {"path": target.path, "explicit": target.explicit, "error": target.error}


def target_from_dict(data: dict[str, Any]) -> Target:
    if not isinstance(data["explicit"], bool):
        raise TypeError("expected a boolean")
    return Target(_text(data["path"]), data["explicit"], _optional_text(data["error"]))
