"""A tensor stored in a file gives back exactly the rows asked for, however it reads them."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nandoctor.errors import UnreadableFile
from nandoctor.view import array_sources
from nandoctor.view.array_sources import FileRegionSource, widen_bfloat16


@pytest.mark.parametrize("in_memory", [False, True], ids=["from the file", "from its bytes in memory"])
@pytest.mark.parametrize("read_whole_bytes", [1 << 30, 0], ids=["read whole", "row by row"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(1, 40), width=st.integers(1, 5), data=st.data())
def test_rows_at_gives_the_rows_asked_for_in_their_order(
    tmp_path, monkeypatch, read_whole_bytes, in_memory, rows, width, data
):
    monkeypatch.setattr(array_sources, "_READ_WHOLE_BYTES", read_whole_bytes)
    table = np.arange(rows * width, dtype=np.float32).reshape(rows, width)
    path = tmp_path / "raw.bin"
    path.write_bytes(b"head" + table.tobytes() + b"tail")
    image = path.read_bytes()[1:] if in_memory else None  # the bytes from offset 1 of the file
    source = FileRegionSource(str(path), 4, table.shape, np.float32, image=image, image_offset=3)
    wanted = data.draw(st.lists(st.integers(0, rows - 1), max_size=12))
    got = source.rows_at(wanted)
    assert got.shape == (len(wanted), width) and np.array_equal(got, table[wanted])
    assert np.array_equal(source.read(), table) and np.array_equal(source.read_rows(1, rows), table[1:])


def test_rows_held_in_memory_are_read_from_there_and_a_short_image_is_truncation(tmp_path):
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    path = tmp_path / "raw.bin"
    path.write_bytes(table.tobytes())
    changed = (table + 100).tobytes()
    assert np.array_equal(FileRegionSource(str(path), 0, table.shape, np.float32, image=changed).read(), table + 100)
    with pytest.raises(UnreadableFile, match="truncated"):
        FileRegionSource(str(path), 0, table.shape, np.float32, image=changed[:-4]).read()


def test_rows_at_widens_bfloat16_either_way(tmp_path, monkeypatch):
    raw = np.array([[0x3F80, 0xC000], [0x0000, 0x4040]], np.uint16)  # 1, -2, 0, 3
    path = tmp_path / "raw.bin"
    path.write_bytes(raw.tobytes())
    for read_whole_bytes in (1 << 30, 0):
        monkeypatch.setattr(array_sources, "_READ_WHOLE_BYTES", read_whole_bytes)
        got = FileRegionSource(str(path), 0, raw.shape, np.uint16, bfloat16=True).rows_at([1, 0])
        assert np.array_equal(got, widen_bfloat16(raw[[1, 0]])) and got.tolist() == [[0.0, 3.0], [1.0, -2.0]]


@pytest.mark.parametrize("read_whole_bytes", [1 << 30, 0], ids=["read whole", "row by row"])
def test_rows_of_a_tensor_past_the_end_of_the_file_are_truncation(tmp_path, monkeypatch, read_whole_bytes):
    monkeypatch.setattr(array_sources, "_READ_WHOLE_BYTES", read_whole_bytes)
    path = tmp_path / "raw.bin"
    path.write_bytes(np.zeros((10, 4), np.float32).tobytes())
    with pytest.raises(UnreadableFile, match="truncated"):
        FileRegionSource(str(path), 0, (20, 4), np.float32).rows_at([15])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(0, 60), width=st.integers(1, 4), sample=st.integers(1, 80), seed=st.integers(0, 2**16))
def test_the_median_row_norm_is_that_of_the_rows_spread_over_the_table(tmp_path, rows, width, sample, seed):
    """Every row where the sample covers them all (read in one go), else `sample` rows spread evenly."""
    from nandoctor.view import Weight

    table = np.random.default_rng(seed).standard_normal((rows, width)).astype(np.float32)
    path = tmp_path / "raw.bin"
    path.write_bytes(b"head" + table.tobytes())
    weight = Weight(
        "embeddings", "emb", table.shape, "float32", FileRegionSource(str(path), 4, table.shape, np.float32)
    )
    chosen = np.unique(np.linspace(0, rows - 1, num=min(sample, rows)).astype(np.int64))
    norms = np.sqrt((table[chosen].astype(np.float64) ** 2).sum(axis=1))
    assert weight.median_row_norm(sample) == (float(np.median(norms)) if rows else 0.0)


@pytest.mark.parametrize("preadv", [True, False], ids=["os.preadv", "a file object (no preadv)"])
def test_a_region_is_read_exactly_and_a_short_one_is_truncation(tmp_path, monkeypatch, preadv):
    monkeypatch.setattr(array_sources, "_HAS_PREADV", preadv)
    table = np.arange(40, dtype=np.float32).reshape(10, 4)
    path = tmp_path / "raw.bin"
    path.write_bytes(b"head" + table.tobytes())
    assert np.array_equal(FileRegionSource(str(path), 4, table.shape, np.float32).read_rows(2, 9), table[2:9])
    with pytest.raises(UnreadableFile, match="truncated"):
        FileRegionSource(str(path), 4, (11, 4), np.float32).read_rows(0, 11)
