"""The JSON report: the fixed contract of DESIGN.md, one object on stdout."""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _quoted
from typing import Any

from nandoctor.report import Report

_STEP = "  "


def render_json(report: Report) -> str:
    return indented_json(report.to_dict())


def indented_json(data: Any) -> str:
    """`json.dumps(data, indent=2)`, character for character, in about half its time: with an
    indent the standard library encodes in Python through a generator per container, and a
    report of thousands of files spent more time there than in its cached scan. Whatever this
    does not write as plain JSON (a key that is not a string, a value of another type) is left
    to `json.dumps`, which then says or writes what it always has."""
    parts: list[str] = []
    try:
        _encode(data, "\n", parts.append)
    except (TypeError, RecursionError):
        return json.dumps(data, indent=2)
    return "".join(parts)


def _encode(value: Any, newline: str, add) -> None:
    """`value` onto `add`, its containers opened on `newline` plus one step of indent."""
    if isinstance(value, str):
        add(_quoted(value))
    elif value is None:
        add("null")
    elif value is True:
        add("true")
    elif value is False:
        add("false")
    elif isinstance(value, int):
        add(int.__repr__(value))
    elif isinstance(value, float):
        add(_float(value))
    elif isinstance(value, (list, tuple)):
        if not value:
            add("[]")
            return
        inner = newline + _STEP
        add("[")
        separator = inner
        for item in value:
            add(separator)
            separator = "," + inner
            _encode(item, inner, add)
        add(newline + "]")
    elif isinstance(value, dict):
        if not value:
            add("{}")
            return
        inner = newline + _STEP
        add("{")
        separator = inner
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("a key that json.dumps converts")
            add(separator + _quoted(key) + ": ")
            separator = "," + inner
            _encode(item, inner, add)
        add(newline + "}")
    else:
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
