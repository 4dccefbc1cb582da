"""The JSON report: the fixed contract of DESIGN.md, one object on stdout."""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _quoted
from typing import Any

from nandoctor.report import FileResult, Report

_STEP = "  "
# Where a file's result stands in the report ({"files": [{...}]}): its keys are a step deeper.
_RESULT_NEWLINE = "\n" + _STEP * 2


class WrittenJSON(str):
    """JSON text written already, as the report writes it where it stands: copied as it is."""


def render_json(report: Report) -> str:
    try:
        return _indented(report.to_dict(file_data=_written_where_held))
    except (TypeError, RecursionError):
        return json.dumps(report.to_dict(), indent=2)


def _written_where_held(result: FileResult) -> Any:
    """A result's data, or its text where the result holds it already, with its path."""
    written = result.written_json()
    if written is None:
        return result.to_dict()
    return WrittenJSON(f'{{{_RESULT_NEWLINE}{_STEP}"path": {_quoted(result.path)},{written}')


def result_text(result: FileResult) -> str:
    """The result as the report writes it, less its path (its text from the key after it on),
    which a result read back from the cache holds, to be copied into the next report."""
    data = result.to_dict()
    del data["path"]
    try:
        whole = _indented(data, _RESULT_NEWLINE)
    except (TypeError, RecursionError):  # as json.dumps writes it; a string holds no newline
        whole = json.dumps(data, indent=2).replace("\n", _RESULT_NEWLINE)
    return whole[1:]  # after its opening brace


def indented_json(data: Any) -> str:
    """`json.dumps(data, indent=2)`, character for character, in about 40% of its time: with
    an indent the standard library encodes in Python through a generator per container, and
    a report of thousands of files spent more time there than in its cached scan. Whatever
    this does not write as plain JSON (a key that is not a string, a value of another type) is
    left to `json.dumps`, which then says or writes what it always has."""
    try:
        return _indented(data)
    except (TypeError, RecursionError):
        return json.dumps(data, indent=2)


def _indented(data: Any, newline: str = "\n") -> str:
    """`data` written as `indented_json` writes it, where its first line is `newline` deep."""
    parts: list[str] = []
    if isinstance(data, (list, tuple, dict)):
        _encode_container(data, newline, parts)
    else:
        parts.append(_scalar(data))
    return "".join(parts)


def _encode_container(value: list | tuple | dict, newline: str, parts: list[str]) -> None:
    """`value` onto `parts`, each item on a line of its own, `newline` plus one step of indent.
    A report is nearly all strings, integers, nulls and containers: those are written here,
    each with its separator and key in one f-string, rather than through a call per value and
    a string per piece (a quarter of the time); the loops over a dict and over a list are
    alike for that reason."""
    if not value:
        parts.append("{}" if isinstance(value, dict) else "[]")
        return
    inner = newline + _STEP
    next_item = "," + inner
    add = parts.append
    if isinstance(value, dict):
        separator = "{" + inner
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("a key that json.dumps converts")
            kind = type(item)
            if kind is str:
                add(f"{separator}{_quoted(key)}: {_quoted(item)}")
            elif kind is int:
                add(f"{separator}{_quoted(key)}: {int.__repr__(item)}")
            elif item is None:
                add(f"{separator}{_quoted(key)}: null")
            elif kind is dict or kind is list:
                add(f"{separator}{_quoted(key)}: ")
                _encode_container(item, inner, parts)
            else:
                _encode_other(f"{separator}{_quoted(key)}: ", item, inner, parts)
            separator = next_item
        add(newline + "}")
    else:
        separator = "[" + inner
        for item in value:
            kind = type(item)
            if kind is WrittenJSON:  # a result read back from the cache: thousands, each long
                add(separator)
                add(item)
            elif kind is str:
                add(f"{separator}{_quoted(item)}")
            elif kind is int:
                add(f"{separator}{int.__repr__(item)}")
            elif kind is dict or kind is list:
                add(separator)
                _encode_container(item, inner, parts)
            else:
                _encode_other(separator, item, inner, parts)
            separator = next_item
        add(newline + "]")


def _encode_other(prefix: str, item: Any, newline: str, parts: list[str]) -> None:
    """A value of any other type (None, a bool, a float, a tuple, a subclass) after `prefix`."""
    if type(item) is WrittenJSON:
        parts.append(prefix + item)
    elif isinstance(item, (list, tuple, dict)):
        parts.append(prefix)
        _encode_container(item, newline, parts)
    else:
        parts.append(prefix + _scalar(item))


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return _quoted(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    raise TypeError(f"{type(value).__name__} is for json.dumps to refuse")


def _float(value: float) -> str:
    # As json.dumps writes them (allow_nan is its default).
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "Infinity"
    if value == -float("inf"):
        return "-Infinity"
    return float.__repr__(value)
