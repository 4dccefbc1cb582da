"""The one-pass statistics equal a plain numpy computation, for any values."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nandoctor.view import array_sources as weight_reading
from nandoctor.view.array_sources import ArrayInMemory, FileRegionSource, widen_bfloat16
from nandoctor.view.weight_stats import compute_stats

special = st.sampled_from([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-45, -1e-40, 1e-30, 3.0e38, 1.0])
floats = st.one_of(st.floats(width=32, allow_nan=True, allow_infinity=True), special)


def reference(matrix: np.ndarray):
    values = matrix.astype(np.float64)
    finite = np.abs(values[np.isfinite(values)])
    return {
        "nan": int(np.isnan(values).sum()),
        "posinf": int(np.isposinf(values).sum()),
        "neginf": int(np.isneginf(values).sum()),
        "zero_rows": np.flatnonzero(~np.any(values != 0, axis=1)).tolist(),
        "finite_max": float(finite.max()) if finite.size else 0.0,
    }


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=9), elements=floats))
def test_stats_match_numpy_for_any_float32_matrix(matrix):
    stats = compute_stats(ArrayInMemory(matrix))
    expected = reference(matrix)
    assert (stats.nan, stats.posinf, stats.neginf) == (expected["nan"], expected["posinf"], expected["neginf"])
    assert stats.zero_rows.tolist() == expected["zero_rows"]
    if stats.nonfinite == 0:
        assert stats.max_abs == expected["finite_max"]
        np.testing.assert_array_equal(
            stats.row_max_abs, np.abs(matrix.astype(np.float64)).max(axis=1) if matrix.shape[1] else 0
        )


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(
        np.float16,
        hnp.array_shapes(min_dims=2, max_dims=3, max_side=6),
        elements=st.floats(width=16, allow_nan=True, allow_infinity=True),
    )
)
def test_stats_match_numpy_for_float16_tensors(tensor):
    matrix = tensor.reshape(tensor.shape[0], -1)
    stats = compute_stats(ArrayInMemory(tensor))
    expected = reference(matrix)
    assert (stats.nan, stats.posinf, stats.neginf) == (expected["nan"], expected["posinf"], expected["neginf"])
    assert stats.zero_rows.tolist() == expected["zero_rows"]


def test_bfloat16_stored_as_uint16_is_widened_before_counting():
    values = np.array([[1.0, -2.0], [0.0, 0.0], [np.nan, np.inf]], np.float32)
    raw = (values.view(np.uint32) >> 16).astype(np.uint16)
    source = ArrayInMemory(raw)
    source.bfloat16 = True
    stats = compute_stats(source)
    assert (stats.nan, stats.posinf, stats.zero_rows.tolist()) == (1, 1, [1])
    np.testing.assert_array_equal(widen_bfloat16(raw)[0], [1.0, -2.0])


def test_vectors_get_no_row_statistics():
    stats = compute_stats(ArrayInMemory(np.array([0.0, 1.0, np.nan], np.float32)))
    assert stats.zero_rows is None and stats.row_max_abs is None and stats.nan == 1


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_file_regions_give_the_same_stats_on_any_number_of_workers(tmp_path, monkeypatch, workers):
    rng = np.random.default_rng(0)
    table = rng.normal(size=(5000, 33)).astype(np.float32)
    table[rng.choice(5000, 700, replace=False)] = 0.0
    table[17, 3] = np.nan
    path = tmp_path / "raw.bin"
    path.write_bytes(b"header!" + table.tobytes())
    monkeypatch.setattr(weight_reading, "_PARALLEL_BYTES", 1)
    monkeypatch.setattr(weight_reading, "_WORKERS", workers)
    monkeypatch.setattr(weight_reading, "BLOCK_BYTES", 4096)
    stats = compute_stats(FileRegionSource(str(path), 7, table.shape, np.float32))
    assert stats.zero_rows.tolist() == reference(table)["zero_rows"]
    assert stats.nan == 1


def test_a_region_past_the_end_of_the_file_is_truncation(tmp_path, monkeypatch):
    from nandoctor.errors import UnreadableFile

    path = tmp_path / "raw.bin"
    path.write_bytes(np.zeros((10, 4), np.float32).tobytes())
    monkeypatch.setattr(weight_reading, "_PARALLEL_BYTES", 1)
    with pytest.raises(UnreadableFile, match="truncated"):
        compute_stats(FileRegionSource(str(path), 0, (20, 4), np.float32))
    monkeypatch.setattr(weight_reading, "_PARALLEL_BYTES", 1 << 40)
    with pytest.raises(UnreadableFile, match="truncated"):
        compute_stats(FileRegionSource(str(path), 0, (20, 4), np.float32))


class _InPieces(ArrayInMemory):
    """A small table handed out in blocks of `piece` rows, as a binary word2vec file's windows
    may hand out one that fits a single block."""

    def __init__(self, array: np.ndarray, piece: int):
        super().__init__(array)
        self.piece = piece

    def blocks(self):
        for start in range(0, self.rows, self.piece):
            yield start, self.array[start : start + self.piece]


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=9), elements=floats),
    st.integers(1, 4),
)
def test_a_table_in_blocks_of_any_size_has_the_stats_of_the_whole(matrix, piece):
    whole, pieces = compute_stats(ArrayInMemory(matrix)), compute_stats(_InPieces(matrix, piece))
    assert (pieces.nan, pieces.posinf, pieces.neginf, pieces.rows) == (
        whole.nan,
        whole.posinf,
        whole.neginf,
        whole.rows,
    )
    assert pieces.zero_rows.tolist() == whole.zero_rows.tolist() == reference(matrix)["zero_rows"]
    np.testing.assert_array_equal(pieces.row_max_abs, whole.row_max_abs)
    assert np.array_equal(pieces.max_abs, whole.max_abs, equal_nan=True)
