"""A file's result as JSON text and back, checked field by field on the way back.

What scan workers (a scan's processes, a cluster's) send back and what the cache keeps: the
result as the JSON report writes it, less its path. Text that another process wrote is read as
JSON and checked, never unpickled, so that a worker a hostile file has subverted can hand its
parent nothing but a wrong report; the result then keeps its text, which the JSON report
copies rather than writing every finding again (most of what a report of thousands of files
cost). A result read back from the cache is not even read as JSON unless something other than
the JSON report asks for its findings.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from nandoctor.loaders import Target
from nandoctor.report import Confidence, FileResult, FileStatus, Finding, Severity
from nandoctor.reporters.json import result_text


def sent_form(result: FileResult) -> str:
    """What a worker (a scan's process, a cluster's) sends back of an unfiltered result: the
    result as the JSON report writes it, less its path (`result_text`)."""
    return result_text(result)


def received_result(text: str, path: str) -> StoredResult:
    """The result a worker sent as `sent_form`, for the file at `path`: read as JSON and checked
    field by field (anything else raises), then kept with its text, which the JSON report
    copies rather than writing the findings again."""
    data = json.loads("{" + text)
    if not isinstance(data, dict) or data.keys() != _SENT_KEYS or data["suppressed"] != {}:
        raise ValueError("not a file's result")
    return StoredResult(
        path,
        _optional_text(data["format"]),
        _STATUS[data["status"]],
        _optional_text(data["error"]),
        findings=[_finding_from_dict(f) for f in _list(data["findings"])],
        notes=[_text(note) for note in _list(data["notes"])],
        written=text,
    )


_SENT_KEYS = {"format", "status", "error", "findings", "notes", "suppressed"}


def _finding_from_dict(data: dict[str, Any]) -> Finding:
    return Finding(
        _text(data["code"]),
        _text(data["name"]),
        Severity(data["severity"]),
        Confidence(data["confidence"]),
        _optional_text(data["layer"]),
        _text(data["message"]),
        _text(data["fix"]),
        _table(data["details"]),
    )


class StoredResult(FileResult):
    """A result as the cache keeps it: the text the JSON report writes of it (less its path),
    which that report copies, and from which its findings are read (and checked) when anything
    else asks for them. Otherwise a FileResult: built from FileResult's fields (as
    `dataclasses.replace` builds one, giving the findings: then there is no text), and equal
    to a FileResult of the same fields."""

    def __init__(self, *fields: Any, written: str | None = None, counts: dict[str, int] | None = None, **named: Any):
        super().__init__(*fields, **named)
        if written is not None:
            self._written: str | None = written
            # Counted from the findings where they are given (else `counts` must be).
            self._counts = FileResult.severity_counts(self) if counts is None else counts
            if "findings" not in named:
                self._findings: list[Finding] | None = None  # read from the text when asked for

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileResult):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in dataclasses.fields(FileResult))

    @property
    def findings(self) -> list[Finding]:
        if self._findings is None:
            try:
                self._findings = [_finding_from_dict(f) for f in json.loads("{" + (self._written or "}"))["findings"]]
            except (ValueError, KeyError, TypeError) as error:  # written by someone else: never trusted
                raise ValueError(f"the cache's findings for {self.path} are damaged: {error}") from None
        return self._findings

    @findings.setter
    def findings(self, findings: list[Finding]) -> None:
        self._findings, self._written = findings, None

    def written_json(self) -> str | None:
        return self._written

    def severity_counts(self) -> dict[str, int]:
        return super().severity_counts() if self._written is None else dict(self._counts)


def stored_form(result: FileResult) -> tuple[list[Any], str]:
    """What the cache keeps of an unfiltered result: its fields ([format, status, error, notes,
    the findings of each severity]) and the whole as the JSON report writes it, less its path
    (read back by `stored_result`)."""
    written = result.written_json()
    if written is None:
        written = result_text(result)
    counts = result.severity_counts()
    fields = [result.format, result.status.value, result.error, list(result.notes), [counts[s] for s in _SEVERITIES]]
    return fields, written


def stored_result(fields: list[Any], written: str, path: str, findings: list[Finding] | None = None) -> StoredResult:
    """The result whose `stored_form` was (`fields`, `written`), for the file at `path`, its
    fields checked one by one (a wrong shape or type raises); `findings`, where the caller
    has them already, are not read again from `written`."""
    format, status, error, notes, counts = fields
    if type(counts) is not list or len(counts) != len(_SEVERITIES) or any(type(n) is not int for n in counts):
        raise TypeError("expected a count of each severity")
    return StoredResult(
        path,
        _optional_text(format),
        _STATUS[status],
        _optional_text(error),
        notes=[_text(note) for note in _list(notes)],
        written=written,
        counts=dict(zip(_SEVERITIES, counts)),
        **({} if findings is None else {"findings": findings}),
    )


_SEVERITIES = [severity.value for severity in Severity]
_STATUS = {status.value: status for status in FileStatus}


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, found {type(value).__name__}")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, found {type(value).__name__}")
    return value


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
