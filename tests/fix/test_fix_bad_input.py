"""Bad input for fix, as for scan: one line and exit 2, the other files still fixed, and the
input never modified unless --in-place was asked for and the write succeeded."""

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES, run_cli

SEED_D = FIXTURES / "broken" / "seed_d_padding_flatten.keras"


def zero_row_table(path):
    table = np.ones((10, 3), "float32")
    table[4] = 0.0
    np.save(path, table)


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "give --output OUT or --in-place"),
        (("--in-place", "-o", "x.keras"), "not both"),
    ],
)
def test_fix_needs_to_know_where_to_write(tmp_path, args, message):
    result = run_cli("fix", SEED_D, *args, expected_exit=2)
    assert message in result.stderr


def test_an_unreadable_file_is_one_line_and_the_others_are_still_fixed(tmp_path):
    good, missing, truncated = tmp_path / "t.npy", tmp_path / "missing.npy", tmp_path / "cut.keras"
    zero_row_table(good)
    truncated.write_bytes(SEED_D.read_bytes()[:5000])
    before = truncated.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli("fix", missing, truncated, good, "-o", out, expected_exit=2)
    errors = [line for line in result.stderr.splitlines() if line.startswith("nandoctor: error:")]
    assert len(errors) == 2 and "Traceback" not in result.stderr
    assert (out / "t.npy").exists() and not (out / "cut.keras").exists()
    assert truncated.read_bytes() == before


def test_a_destination_that_cannot_be_written_is_one_line_and_leaves_the_input(tmp_path):
    source = tmp_path / "d.keras"
    shutil.copyfile(SEED_D, source)
    result = run_cli("fix", source, "-o", tmp_path / "no" / "such" / "folder.keras", expected_exit=2)
    assert "cannot write" in result.stderr and source.read_bytes() == SEED_D.read_bytes()


def test_several_inputs_need_an_output_folder(tmp_path):
    zero_row_table(tmp_path / "a.npy")
    zero_row_table(tmp_path / "b.npy")
    result = run_cli("fix", tmp_path / "a.npy", tmp_path / "b.npy", "-o", tmp_path / "c.npy", expected_exit=2)
    assert "must be an existing folder" in result.stderr


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(min_value=0, max_value=len(SEED_D.read_bytes())),
    flips=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(SEED_D.read_bytes()) - 1), st.integers(min_value=0, max_value=255)
        ),
        max_size=8,
    ),
)
def test_mutated_files_never_crash_fix_nor_change_the_input(tmp_path_factory, cut, flips):
    folder = tmp_path_factory.mktemp("mutated")
    data = bytearray(SEED_D.read_bytes())
    for offset, value in flips:
        data[offset] = value
    source = folder / "m.keras"
    source.write_bytes(bytes(data[: max(cut, 1)]) if cut < len(data) else bytes(data))
    before = source.read_bytes()
    result = run_cli("fix", source, "-o", folder / "out.keras")  # an exception would fail here
    assert result.exit_code in (0, 1, 2)
    assert source.read_bytes() == before
    if result.exit_code == 2:
        assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".nandoctor-fix")) == []
