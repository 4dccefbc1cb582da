"""The word2vec text parse (numpy's C reader, with a per-line parse behind it for anything the
reader could read differently) agrees with a plain per-line reference on every table: the same
float32 bits, the same one-line error, the same warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nandoctor.errors import UnreadableFile
from nandoctor.loaders import word2vec
from nandoctor.loaders.word2vec import Word2VecTextSource
from nandoctor.view import array_sources


def parse_line_by_line(path, rows: int, dim: int, skip_header: bool, rows_per_block: int) -> np.ndarray:
    """The loader's parse before it used numpy's reader: one `readline` and one `rsplit` per row,
    the values of each block converted by `np.array`."""
    max_line = word2vec.MAX_LINE
    blocks = []
    with open(path, "rb") as file:
        if skip_header:
            file.readline(max_line)
        line_number = 1 + skip_header
        for start in range(0, rows, rows_per_block):
            first_line = line_number
            values: list[list[bytes]] = []
            for _ in range(min(rows_per_block, rows - start)):
                line = file.readline(max_line)
                if not line:
                    raise UnreadableFile(f"word2vec file ends at row {start + len(values)} of {rows}")
                fields = line.rstrip().rsplit(None, dim)[1:]
                if len(fields) != dim:
                    raise UnreadableFile(f"line {line_number}: expected {dim} values, found {len(fields)}")
                values.append(fields)
                line_number += 1
            try:
                blocks.append(np.array(values, dtype=np.float32))
            except ValueError:
                raise UnreadableFile(word2vec.not_a_number(values, first_line)) from None
    return np.concatenate(blocks)


def outcome(read) -> tuple:
    """What a parse gives: its float32 bits or its error, and the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: object = read().view(np.uint32).tolist()
        except UnreadableFile as error:
            result = str(error)
    return result, sorted((type(w.message).__name__, str(w.message)) for w in caught)


def assert_parses_as_reference(path, rows: int, dim: int, skip_header: bool) -> None:
    source = Word2VecTextSource(str(path), rows, dim, skip_header)
    reference = outcome(lambda: parse_line_by_line(path, rows, dim, skip_header, source.rows_per_block))
    assert outcome(source.read) == reference


words = st.one_of(
    st.from_regex(rb"\A[a-z]{1,6}\Z"),
    # Any bytes but a newline: spaces (the word is all before the last `dim` fields), bytes that
    # numpy's reader would take for spaces (\x1c-\x1f, \x85, \xa0), invalid UTF-8, NUL.
    st.binary(min_size=0, max_size=6).filter(lambda word: b"\n" not in word),
)
finite_values = st.floats(allow_nan=False, allow_infinity=False, width=64)
well_formed_numbers = st.one_of(
    finite_values.map(lambda v: repr(v).encode()),
    finite_values.map(lambda v: b"%.4f" % v),
    finite_values.map(lambda v: b"%.9e" % v),
    st.integers(-(10**20), 10**20).map(lambda v: b"%d" % v),
)
numbers = st.one_of(
    well_formed_numbers,
    st.sampled_from([b"nan", b"-inf", b"Infinity", b"+.5", b"5.", b"1e40", b"-1e-50", b"1_0", b"0x10", b"1.5f"]),
    st.sampled_from([b"3\x85", b"\xa03", b"3\x1c", b"3\x00", b"\xd9\xa1", b"#1", b'"2', b"3j", b"1,5", b""]),
)
separators = st.sampled_from([b" ", b"  ", b"\t", b" \x0b", b"\x0c ", b"\x1c", b"\xa0", b"\x85", b"\r"])
line_ends = st.sampled_from([b"\n", b"\r\n", b" \n", b"\t\n", b"\x85\n", b"\n\n"])


@st.composite
def tables(draw):
    """Half of them well formed (what the reader parses), half with any fault a line can have."""
    rows = draw(st.integers(1, 8))
    dim = draw(st.integers(1, 5))
    header = draw(st.booleans())
    faulty = draw(st.booleans())
    lines = []
    for _ in range(rows + (draw(st.integers(-1, 1)) if faulty else 0)):  # a row short, exact, or one more
        fields = [draw(numbers if faulty else well_formed_numbers) for _ in range(dim)]
        if faulty:
            fields = fields[: dim + draw(st.sampled_from([0, 0, -1]))] + [draw(numbers)] * draw(st.integers(0, 1))
        line = draw(words)
        for field in fields:
            line += draw(separators) if faulty else b" "
            line += field
        lines.append(line + (draw(line_ends) if faulty else b"\n"))
    if lines and draw(st.booleans()):
        lines[-1] = lines[-1].rstrip(b"\n")  # a last line without its newline
    return rows, dim, header, (f"{rows} {dim}\n".encode() if header else b"") + b"".join(lines)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables(), block_rows=st.sampled_from([1, 3, 1000]), max_line=st.sampled_from([word2vec.MAX_LINE, 24]))
def test_any_text_table_parses_as_the_per_line_reference(tmp_path, monkeypatch, table, block_rows, max_line):
    """Any table, read in blocks of 1, 3 or every row, with lines longer than `MAX_LINE` (which
    `readline` cuts in two) or not."""
    rows, dim, header, content = table
    monkeypatch.setattr(array_sources, "BLOCK_BYTES", block_rows * dim * 4)
    monkeypatch.setattr(word2vec, "MAX_LINE", max_line)
    path = tmp_path / "vectors.vec"
    path.write_bytes(content)
    assert_parses_as_reference(path, rows, dim, header)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(finite_values, min_size=64, max_size=64), digits=st.integers(1, 25))
def test_decimals_round_to_the_same_float32_as_np_array(tmp_path, values, digits):
    """Values at every precision, 1 to 25 significant digits: rounded to a double, then to float32,
    bit for bit as `np.array(..., float32)` rounds them."""
    path = tmp_path / "vectors.vec"
    lines = [
        b"w%d " % row + b" ".join(b"%.*g" % (digits, v) for v in values[row * 8 : row * 8 + 8]) for row in range(8)
    ]
    path.write_bytes(b"8 8\n" + b"\n".join(lines) + b"\n")
    assert_parses_as_reference(path, 8, 8, True)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"2 3\nthe 0.1 0.2 0.3\nof 0.1 0.2\n", "line 3: expected 3 values, found 2"),
        (b"2 3\nthe 0.1 0.2 0.3\n\nof 0.1 0.2 0.3\n", "line 3: expected 3 values, found 0"),
        (b"2 3\n \n\t\n", "line 2: expected 3 values, found 0"),
        (b"2 3\nthe 0.1 0.2 0.3\n", "word2vec file ends at row 1 of 2"),
        (b"2 3\nthe 0.1 0.2 0.3\nof 0.1 zero 0.3\n", "line 3: 'zero' is not a number"),
        (b"2 3\nthe 0.1 0.2 0.3\nof 0.1 0.2\xa0 0.3\n", "line 3: '0.2\ufffd' is not a number"),
    ],
)
def test_faults_are_named_as_the_line_by_line_parse_names_them(tmp_path, content, error):
    """And nothing else is said: numpy's reader warns of a block with no data; the scan must not."""
    path = tmp_path / "vectors.vec"
    path.write_bytes(content)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(UnreadableFile, match=f"^{error}$"):
        warnings.simplefilter("always")
        Word2VecTextSource(str(path), 2, 3, skip_header=True).read()
    assert caught == []


def test_words_with_spaces_and_odd_bytes_keep_their_rows(tmp_path):
    path = tmp_path / "vectors.vec"
    path.write_bytes(b"3 2\nnew york 1 2\nroute 66 3 4\n\xff\xa0\x85\x1c 5 6\r\n")
    table = Word2VecTextSource(str(path), 3, 2, skip_header=True).read()
    np.testing.assert_array_equal(table, [[1, 2], [3, 4], [5, 6]])


def test_a_value_too_large_for_float32_warns_as_np_array_warns(tmp_path):
    path = tmp_path / "vectors.vec"
    path.write_bytes(b"1 2\nbig 1e40 nan\n")
    with pytest.warns(RuntimeWarning, match="overflow"):
        table = Word2VecTextSource(str(path), 1, 2, skip_header=True).read()
    assert np.isposinf(table[0, 0]) and np.isnan(table[0, 1])


def test_row_labels_are_the_words_of_the_rows_asked_for_and_empty_past_the_end(tmp_path):
    path = tmp_path / "vectors.vec"
    path.write_bytes(b"3 2\nnew york 1 2\nroute 66 3 4\n\xff 5 6\n")
    source = Word2VecTextSource(str(path), 3, 2, skip_header=True)
    assert source.row_labels([2, 0, 5]) == ["\ufffd", "new york", ""]
