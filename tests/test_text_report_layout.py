"""The text report without colour is laid out by nandoctor, line by line, and is exactly what
rich lays out: for any findings (long, wide or unbreakable words, runs of spaces, long layer
names, several lines), notes, unreadable and skipped files, a stale baseline, at any width.
Laying it out does not import rich."""

import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich._wrap import divide_line

from nandoctor.report import Confidence, FileResult, FileStatus, Finding, Report, Severity
from nandoctor.reporters import text as text_reporter
from nandoctor.reporters.text import render_text

# Words as model files name things: ASCII, accented, wide (CJK) characters, runs of
# characters longer than any line, and runs of spaces (which, joined with one more, also
# lead and end lines).
_words = st.one_of(
    st.text("abcdefghij_/.:()[],'0123456789", min_size=1, max_size=12),
    st.text("éüßøñ", min_size=1, max_size=6),
    st.text("表情词嵌入", min_size=1, max_size=6),
    st.text("x", min_size=40, max_size=130),
    st.text(" ", min_size=1, max_size=6),
)
_lines = st.lists(_words, min_size=1, max_size=25).map(" ".join)
_texts = st.lists(_lines, min_size=1, max_size=3).map("\n".join)
_findings = st.builds(
    Finding,
    code=st.sampled_from(["ND101", "ND301", "ND9"]),
    name=st.just("a-name"),
    severity=st.sampled_from(list(Severity)),
    confidence=st.just(Confidence.HIGH),
    # A name of 7 wide characters is 7 long but 14 cells wide: too wide for the narrowest
    # layer column (12 cells).
    layer=st.one_of(st.none(), _words, st.text("layer_", min_size=20, max_size=60), st.text("表情词嵌入", min_size=7)),
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
_baselines = st.one_of(
    st.none(),
    st.builds(
        lambda stale: {"accepted": 2, "stale": stale},
        st.lists(st.fixed_dictionaries({"path": _lines, "code": st.just("ND101"), "layer": st.none() | _words})),
    ),
)


def rich_layout(report: Report, monkeypatch, **options) -> str:
    with monkeypatch.context() as patched:
        for plain_layout in ("_plain_file", "_plain_stale_baseline", "_plain_summary"):
            patched.setattr(text_reporter, plain_layout, lambda *args: None)
        return render_text(report, **options)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(_files, min_size=1, max_size=4), baseline=_baselines, width=st.integers(1, 160))
def test_the_plain_report_is_exactly_what_rich_lays_out(monkeypatch, files, baseline, width):
    report = Report(files, baseline=baseline)
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


# Lines of printable ASCII as the plain layout folds them: words, words longer than a line,
# and runs of spaces, anywhere (leading, trailing, between).
_ascii_lines = st.lists(
    st.one_of(
        st.text("abc_.:(", min_size=1, max_size=10),
        st.text("y", min_size=1, max_size=90),
        st.text(" ", min_size=1, max_size=12),
    ),
    max_size=30,
).map("".join)


@settings(max_examples=1000)
@given(line=_ascii_lines, width=st.integers(1, 60))
def test_a_line_of_ascii_breaks_where_rich_breaks_it(line, width):
    assert text_reporter._ascii_breaks(line, width) == divide_line(line, width, fold=True)


@settings(max_examples=500)
@given(line=_ascii_lines, data=st.data())
def test_a_line_of_ascii_breaks_where_rich_breaks_it_at_the_end_of_a_word_or_of_the_line(line, data):
    """Widths where a word ends exactly at the edge, a character short of it, or past it."""
    word_ends = [index for index in range(1, len(line) + 1) if line[index - 1] != " "] or [1]
    width = max(1, data.draw(st.sampled_from(word_ends)) + data.draw(st.sampled_from([-1, 0, 1])))
    assert text_reporter._ascii_breaks(line, width) == divide_line(line, width, fold=True)


@pytest.mark.parametrize(
    ("line", "width"),
    [
        ("abcde fghij", 5),  # a word ends exactly at the edge, the next starts the next line
        ("abcde fghij", 11),  # the whole line fits exactly: no break
        ("   abcde", 5),  # the first word's leading spaces count toward it: it is cut
        ("x" * 12 + "     " + "ab", 5),  # a cut word's spaces are cut with it
        ("ab" + " " * 20, 5),  # spaces past the edge hang off the line
        ("ab    cd", 3),  # a run of spaces between words stays on the first line
        ("y" * 10, 1),  # a line a cell wide
    ],
)
def test_the_edges_of_a_line_break_where_rich_breaks_them(line, width):
    assert text_reporter._ascii_breaks(line, width) == divide_line(line, width, fold=True)


def test_a_layer_name_of_wide_characters_too_wide_for_its_column_is_printed_whole(monkeypatch):
    """Seven wide characters are 14 cells, wider than a 12-cell column: the name gets a line of
    its own in both layouts (rich's measured characters, and cut the name)."""
    finding = Finding(
        "ND101",
        "zero-embedding-rows",
        Severity.ERROR,
        Confidence.HIGH,
        "表情词嵌入表情",
        "2 rows are zero",
        "Fix.",
        {"evidence": "certain"},
    )
    report = Report([FileResult("model.keras", "keras", FileStatus.SCANNED, findings=[finding])])
    assert render_text(report, width=48).splitlines()[1:3] == [
        "ND101 error  layer 表情词嵌入表情",
        "             2 rows are zero",
    ]
    assert render_text(report, width=48) == rich_layout(report, monkeypatch, width=48)


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False)


def test_importing_the_text_reporter_does_not_import_rich():
    run = _python(
        """
        import sys
        import nandoctor.reporters.text
        assert "rich" not in sys.modules, sorted(name for name in sys.modules if name.startswith("rich"))
        """
    )
    assert run.returncode == 0, run.stderr


def test_a_plain_ascii_report_is_rendered_without_importing_rich():
    """Every part of a report: a table with a layer name on a line of its own, notes, an
    unreadable and a skipped file, a stale baseline, the summary; then, in colour, rich."""
    run = _python(
        """
        import sys
        from nandoctor.report import Confidence, FileResult, FileStatus, Finding, Report, Severity
        from nandoctor.reporters import render

        finding = Finding(
            "ND101", "zero-embedding-rows", Severity.ERROR, Confidence.HIGH, "word_emb_" * 3,
            "2 of 10 rows are all zero " * 8, "Give rows small random vectors.", {"evidence": "certain"},
        )
        report = Report(
            [
                FileResult("model.keras", "keras", FileStatus.SCANNED, findings=[finding], notes=["weights " * 20]),
                FileResult("broken.keras", "keras", FileStatus.ERROR, error="not a zip file"),
                FileResult("notes.txt", None, FileStatus.SKIPPED, error="not a model file"),
            ],
            baseline={"accepted": 1, "stale": [{"path": "old.keras", "code": "ND301", "layer": None}]},
        )
        text = render(report, "text", width=60)
        assert "rich" not in sys.modules, sorted(name for name in sys.modules if name.startswith("rich"))
        lines = text.splitlines()
        assert "ND101 error  layer word_emb_word_emb_word_emb_" in lines, text
        assert "  old.keras ND301 -" in lines and "Found 1 finding in 1 file: 1 error." in text, text
        render(report, "text", width=60, color=True)
        assert "rich" in sys.modules
        """
    )
    assert run.returncode == 0, run.stderr
