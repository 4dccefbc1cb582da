"""The JSON report is what `json.dumps(report, indent=2)` writes, character for character."""

from __future__ import annotations

import enum
import json
from collections import OrderedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nandoctor.engine import scan
from nandoctor.report import Confidence, FileResult, FileStatus, Finding, Report, Severity
from nandoctor.reporters import render
from nandoctor.reporters.json import indented_json
from nandoctor.result_json import stored_form, stored_result
from tests.conftest import FIXTURES

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
KEYS = st.text() | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none()
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(VALUES)
def test_any_json_value_is_written_as_json_dumps_with_indent_2_writes_it(value):
    assert indented_json(value) == json.dumps(value, indent=2)


class _Level(enum.IntEnum):
    LOW = 1


class _Name(str):
    pass


# What a rule may put in its details besides plain JSON types: enum members (Severity is a
# StrEnum), subclasses of str, int and dict, and tuples.
SUBCLASSED = st.recursive(
    SCALARS | st.sampled_from(list(Severity)) | st.just(_Level.LOW) | st.text().map(_Name),
    lambda inner: (
        st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3).map(OrderedDict)
    ),
    max_leaves=12,
)


@given(SUBCLASSED)
def test_subclasses_of_json_types_are_written_as_json_dumps_writes_them(value):
    assert indented_json({"details": value, "items": [value]}) == json.dumps(
        {"details": value, "items": [value]}, indent=2
    )


@given(st.dictionaries(KEYS, SCALARS, min_size=1, max_size=4))
def test_keys_that_are_not_strings_are_converted_as_json_dumps_converts_them(value):
    assert indented_json({"details": value}) == json.dumps({"details": value}, indent=2)


@pytest.mark.parametrize("value", [{"a": {1, 2}}, [object()], {"x": b"bytes"}])
def test_a_value_json_cannot_write_is_refused_as_json_dumps_refuses_it(value):
    with pytest.raises(TypeError) as ours:
        indented_json(value)
    with pytest.raises(TypeError) as theirs:
        json.dumps(value, indent=2)
    assert str(ours.value) == str(theirs.value)


def test_a_circular_value_is_refused_as_json_dumps_refuses_it():
    looped: list = []
    looped.append(looped)
    with pytest.raises(ValueError, match="Circular reference detected"):
        indented_json(looped)


FINDINGS = st.lists(
    st.builds(
        Finding,
        code=st.just("ND101"),
        name=st.just("zero-embedding-rows"),
        severity=st.sampled_from(list(Severity)),
        confidence=st.sampled_from(list(Confidence)),
        layer=st.none() | st.text(max_size=8),
        message=st.text(max_size=20),
        fix=st.text(max_size=20),
        details=st.dictionaries(KEYS, SUBCLASSED, max_size=3),
    ),
    max_size=4,
)


@given(FINDINGS)
def test_a_result_as_the_cache_keeps_it_renders_as_the_result_it_was(findings):
    fresh = FileResult("m.keras", "keras", FileStatus.SCANNED, findings=findings, notes=["weights absent"])
    fields, written = stored_form(fresh)
    kept = stored_result(json.loads(json.dumps(fields)), written, "m.keras")
    assert render(Report([kept]), "json") == render(Report([fresh]), "json")
    assert Report([kept]).summary() == Report([fresh]).summary()
    assert [f.severity for f in kept.findings] == [f.severity for f in findings]


def test_the_fixtures_report_renders_as_json_dumps_writes_it():
    report = scan([FIXTURES])
    rendered = render(report, "json")
    assert rendered == json.dumps(report.to_dict(), indent=2)
    assert json.loads(rendered)["summary"]["findings"] == len(report.findings) > 0
