import struct
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nandoctor.errors import UnreadableFile
from nandoctor.loaders import discover, load


def table_with_zero_rows() -> np.ndarray:
    table = np.random.default_rng(1).normal(size=(12, 5)).astype("float32")
    table[[2, 7]] = 0.0
    return table


def test_npy_is_read_by_offset_and_its_values_match(tmp_path):
    table = table_with_zero_rows()
    np.save(tmp_path / "t.npy", table)
    with load(str(tmp_path / "t.npy")) as view:
        (weight,) = list(view.weights())
        np.testing.assert_array_equal(weight.read(), table)
        assert weight.stats().zero_rows.tolist() == [2, 7]


def test_fortran_ordered_npy_keeps_its_rows(tmp_path):
    table = np.asfortranarray(table_with_zero_rows())
    np.save(tmp_path / "f.npy", table)
    with load(str(tmp_path / "f.npy")) as view:
        assert next(view.weights()).stats().zero_rows.tolist() == [2, 7]


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_members_become_one_layer_each_stored_or_deflated(tmp_path, compressed):
    table = table_with_zero_rows()
    save = np.savez_compressed if compressed else np.savez
    save(tmp_path / "t.npz", words=table, bias=np.ones(3, "float32"))
    with load(str(tmp_path / "t.npz")) as view:
        assert {layer.name: layer.class_name for layer in view.layers} == {"words": "EmbeddingMatrix", "bias": "Array"}
        np.testing.assert_array_equal(view.layer("words").weights[0].read(), table)
        assert view.layer("words").weights[0].stats().zero_rows.tolist() == [2, 7]


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UnreadableFile, match="never unpickled"):
        load(str(tmp_path / "o.npy"))


def test_npy_header_that_is_not_a_literal_is_refused_in_the_same_line_every_run(tmp_path):
    # ast.literal_eval names the node it refuses with its memory address: a different line on
    # every run, so a cached or parallel report would differ from a serial one.
    path = tmp_path / "t.npy"
    np.save(path, np.zeros((2, 3), np.float32))
    data = path.read_bytes()
    path.write_bytes(data.replace(b"(2, 3)", b"(2* 3)", 1))
    with pytest.raises(UnreadableFile) as refused:
        load(str(path))
    assert (
        str(refused.value) == "t.npy is not a valid .npy array (malformed node or string on line 1: <ast.BinOp object>)"
    )


def write_text(path, words, table, header=True):
    lines = [f"{len(words)} {table.shape[1]}"] if header else []
    lines += [w + " " + " ".join(repr(float(v)) for v in row) for w, row in zip(words, table)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("header", [True, False])
def test_word2vec_text_with_and_without_header(tmp_path, header):
    table = table_with_zero_rows()
    words = [f"w{i}" for i in range(len(table))]
    write_text(tmp_path / "v.vec", words, table, header)
    with load(str(tmp_path / "v.vec")) as view:
        weight = next(view.weights())
        assert weight.shape == table.shape
        np.testing.assert_allclose(weight.read(), table, rtol=1e-6)


def test_word2vec_binary_as_gensim_writes_it(tmp_path):
    table = table_with_zero_rows()
    with open(tmp_path / "v.bin", "wb") as file:
        file.write(b"12 5\n")
        for i, row in enumerate(table):
            file.write(f"word{i} ".encode() + struct.pack("<5f", *row) + b"\n")
    with load(str(tmp_path / "v.bin")) as view:
        np.testing.assert_array_equal(next(view.weights()).read(), table)


def test_word2vec_header_claiming_more_rows_than_the_file_holds_is_refused(tmp_path):
    (tmp_path / "v.vec").write_text("1000000 300\nthe 0.1 0.2\n")
    with pytest.raises(UnreadableFile, match="more than the file can hold"):
        load(str(tmp_path / "v.vec"))


def test_word2vec_row_with_missing_values_names_the_line(tmp_path):
    (tmp_path / "v.vec").write_text("2 3\nthe 0.1 0.2 0.3\nof 0.1 0.2\n")
    with (
        load(str(tmp_path / "v.vec")) as view,
        pytest.raises(UnreadableFile, match="line 3: expected 3 values, found 2"),
    ):
        next(view.weights()).stats()


def test_directories_are_walked_for_model_files_only(tmp_path):
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "a.npy", np.zeros((2, 2), "float32"))
    (tmp_path / "README.txt").write_text("not vectors\n")
    (tmp_path / "vectors.txt").write_text("1 2\nthe 0.5 0.5\n")
    (tmp_path / ".hidden").mkdir()
    np.save(tmp_path / ".hidden" / "b.npy", np.zeros((2, 2), "float32"))
    found = sorted(target.path.removeprefix(str(tmp_path)) for target in discover([str(tmp_path)]))
    assert found == ["/sub/a.npy", "/vectors.txt"]


def test_a_zip_without_config_is_not_a_model(tmp_path):
    with zipfile.ZipFile(tmp_path / "x.keras", "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(UnreadableFile, match=r"no config\.json"):
        load(str(tmp_path / "x.keras"))


@pytest.mark.parametrize("newline", [True, False])
def test_word2vec_binary_records_cut_by_chunk_ends_are_read_whole(tmp_path, monkeypatch, newline):
    """Records are found chunk by chunk; a chunk of 257 bytes cuts nearly every one."""
    from nandoctor.loaders import word2vec

    monkeypatch.setattr(word2vec, "_CHUNK", 257)
    rng = np.random.default_rng(0)
    table = rng.normal(size=(40, 5)).astype("<f4")
    table[[3, 31]] = 0
    words = [f"w{'x' * (i % 7)}{i}" for i in range(40)]
    path = tmp_path / "vectors.bin"
    with open(path, "wb") as file:
        file.write(b"40 5\n")
        for word, row in zip(words, table):
            file.write(word.encode() + b" " + row.tobytes() + (b"\n" if newline else b""))
    with load(str(path)) as view:
        (layer,) = view.layers
        matrix = layer.embedding_matrix()
        np.testing.assert_array_equal(matrix.read(), table)
        assert matrix.row_labels([3, 31, 39]) == [words[3], words[31], words[39]]


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_word2vec_binary_statistics_on_worker_threads_match_the_rows(tmp_path, monkeypatch, workers):
    """The windows of records found first, then mapped again on threads: every zero row
    and the NaN are where the table has them, whatever the number of workers."""
    from nandoctor.loaders import word2vec
    from nandoctor.view import array_sources

    monkeypatch.setattr(word2vec, "_CHUNK", 4096)
    monkeypatch.setattr(array_sources, "_PARALLEL_BYTES", 1)
    monkeypatch.setattr(array_sources, "_WORKERS", workers)
    monkeypatch.setattr(array_sources, "BLOCK_BYTES", 1000)
    rng = np.random.default_rng(3)
    table = rng.normal(size=(900, 7)).astype("<f4")
    zero_rows = sorted(rng.choice(900, 60, replace=False).tolist())
    table[zero_rows] = 0.0
    table[411, 2] = np.nan
    path = tmp_path / "vectors.bin"
    with open(path, "wb") as file:
        file.write(b"900 7\n")
        for index, row in enumerate(table):
            file.write(b"w" * (1 + index % 13) + b"%d " % index + row.tobytes() + b"\n")
    with load(str(path)) as view:
        stats = view.layers[0].embedding_matrix().stats()
        assert stats.zero_rows.tolist() == zero_rows
        assert stats.nan == 1 and stats.rows == 900


words_without_spaces = st.binary(min_size=1, max_size=12).filter(lambda word: b" " not in word and word[:1] != b"\n")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(st.tuples(words_without_spaces, st.binary(min_size=12, max_size=12)), min_size=1, max_size=30),
    chunk=st.integers(min_value=1, max_value=200),
    newline=st.booleans(),
)
def test_word2vec_binary_reads_any_words_and_any_vector_bytes(tmp_path, monkeypatch, records, chunk, newline):
    """Vector bytes may hold spaces and newlines (0x20, 0x0A) anywhere; words may be any bytes
    but a space. Every record comes back whole, whatever the chunk size."""
    from nandoctor.loaders import word2vec

    monkeypatch.setattr(word2vec, "_CHUNK", chunk)
    path = tmp_path / "vectors.bin"
    path.write_bytes(
        f"{len(records)} 3\n".encode()
        + b"".join(word + b" " + vector + (b"\n" if newline else b"") for word, vector in records)
    )
    expected = np.frombuffer(b"".join(vector for _, vector in records), "<f4").reshape(-1, 3)
    with load(str(path)) as view:
        matrix = view.layers[0].embedding_matrix()
        np.testing.assert_array_equal(matrix.read(), expected)
        assert matrix.row_labels([len(records) - 1]) == [records[-1][0].decode("utf-8", "replace")]


def test_word2vec_binary_stops_at_bytes_that_are_not_a_record(tmp_path, monkeypatch):
    """A run of bytes with no space where a word should be is refused, never skipped over."""
    from nandoctor.loaders import word2vec

    monkeypatch.setattr(word2vec, "MAX_WORD", 16)
    word2vec._record_patterns.cache_clear()
    row = np.ones(3, "<f4").tobytes()
    path = tmp_path / "vectors.bin"
    path.write_bytes(b"3 3\n" + b"a " + row + b"\n" + b"x" * 40 + b" " + row + b"\n" + b"c " + row + b"\n")
    with load(str(path)) as view, pytest.raises(UnreadableFile, match="row 1 is not a word, a space and 3 float32"):
        view.layers[0].embedding_matrix().read()
    word2vec._record_patterns.cache_clear()


def _write_vectors(path, table) -> None:
    path.write_text(
        f"{len(table)} {table.shape[1]}\n"
        + "".join(f"w{i} " + " ".join(f"{v:.3f}" for v in row) + "\n" for i, row in enumerate(table))
    )


def test_word2vec_text_that_fits_one_block_is_parsed_once(tmp_path):
    path = tmp_path / "vectors.vec"
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    _write_vectors(path, table)
    with load(str(path)) as view:
        weight = view.layers[0].weights[0]
        assert np.array_equal(weight.read(), table)
        _write_vectors(path, table + 100)  # a second parse would read these
        assert np.array_equal(weight.source.rows_at([2, 0]), table[[2, 0]])


def test_word2vec_text_larger_than_a_block_is_parsed_again_not_kept(tmp_path, monkeypatch):
    from nandoctor.view import array_sources

    monkeypatch.setattr(array_sources, "BLOCK_BYTES", 24)  # two rows of three float32 a block
    path = tmp_path / "vectors.vec"
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    _write_vectors(path, table)
    with load(str(path)) as view:
        weight = view.layers[0].weights[0]
        assert np.array_equal(weight.read(), table)
        _write_vectors(path, table + 100)
        assert np.array_equal(weight.source.rows_at([2, 0]), table[[2, 0]] + 100)
