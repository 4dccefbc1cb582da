"""The text report without colour is laid out by nandoctor, line by line, and is exactly what
rich lays out: for any findings (long, wide or unbreakable words, long layer names, several
lines), notes, unreadable and skipped files, at any width."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nandoctor.report import Confidence, FileResult, FileStatus, Finding, Report, Severity
from nandoctor.reporters import text as text_reporter
from nandoctor.reporters.text import render_text

# Words as model files name things: ASCII, accented, wide (CJK) characters, and runs of
# characters longer than any line.
_words = st.one_of(
    st.text("abcdefghij_/.:()[],'0123456789", min_size=1, max_size=12),
    st.text("éüßøñ", min_size=1, max_size=6),
    st.text("表情词嵌入", min_size=1, max_size=6),
    st.text("x", min_size=40, max_size=130),
)
_lines = st.lists(_words, min_size=1, max_size=25).map(" ".join)
_texts = st.lists(_lines, min_size=1, max_size=3).map("\n".join)
_findings = st.builds(
    Finding,
    code=st.sampled_from(["ND101", "ND301", "ND9"]),
    name=st.just("a-name"),
    severity=st.sampled_from(list(Severity)),
    confidence=st.just(Confidence.HIGH),
    layer=st.one_of(st.none(), _words, st.text("layer_", min_size=20, max_size=60)),
    message=_texts,
    fix=_lines,
    details=st.fixed_dictionaries(
        {"evidence": st.sampled_from(["certain", "inferred"])}, optional={"measured": _lines}
    ),
)
_files = st.builds(
    FileResult,
    path=_lines,
    format=st.just("keras"),
    status=st.sampled_from([FileStatus.SCANNED, FileStatus.SCANNED, FileStatus.ERROR, FileStatus.SKIPPED]),
    error=st.one_of(st.none(), _lines),
    findings=st.lists(_findings, max_size=3),
    notes=st.lists(_lines, max_size=2),
)


def rich_layout(report: Report, monkeypatch, **options) -> str:
    with monkeypatch.context() as patched:
        patched.setattr(text_reporter, "_plain_file", lambda result, width: None)
        return render_text(report, **options)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(_files, min_size=1, max_size=4), width=st.integers(20, 160))
def test_the_plain_report_is_exactly_what_rich_lays_out(monkeypatch, files, width):
    report = Report(files)
    assert render_text(report, width=width) == rich_layout(report, monkeypatch, width=width)


def test_at_every_width_a_word_that_just_fits_stays_on_its_line_as_in_rich(monkeypatch):
    words = "the padding row 0 of word_emb (30, 8) is not zero: max |value| 0.0432 at column 5 " * 3
    finding = Finding(
        "ND303",
        "padding-row-not-zero",
        Severity.WARNING,
        Confidence.HIGH,
        "word_emb",
        words,
        "Zero the row " + "x" * 70,
        {"evidence": "certain", "measured": words},
    )
    report = Report(
        [FileResult("model.keras", "keras", FileStatus.SCANNED, findings=[finding, finding], notes=[words])]
    )
    for width in range(20, 161):
        assert render_text(report, width=width) == rich_layout(report, monkeypatch, width=width), width


def test_the_plain_layout_is_what_a_report_is_printed_with(monkeypatch):
    """Not rich under another name: the plain path is taken (and rich is not) for a plain file."""
    finding = Finding(
        "ND101",
        "zero-embedding-rows",
        Severity.ERROR,
        Confidence.HIGH,
        "word_emb",
        "2 of 10 rows are all zero",
        "Give rows small random vectors.",
        {"evidence": "certain"},
    )
    report = Report([FileResult("model.keras", "keras", FileStatus.SCANNED, findings=[finding])])
    monkeypatch.setattr(text_reporter, "_findings_table", lambda *args: pytest.fail("rich laid it out"))
    assert render_text(report).splitlines()[:4] == [
        "model.keras",
        "ND101 error word_emb 2 of 10 rows are all zero",
        "                     evidence: certain",
        "                     fix: Give rows small random vectors.",
    ]
