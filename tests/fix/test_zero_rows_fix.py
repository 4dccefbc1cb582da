"""Zero rows given small random vectors, in every format that holds a table, the format
kept: the other rows are untouched byte for byte, and the words stay where they were."""

import struct
import zipfile

import numpy as np
import pytest

import nandoctor
from nandoctor.loaders import load
from tests.conftest import run_cli

ROWS, DIM = 50, 6


def table() -> np.ndarray:
    values = np.random.default_rng(0).normal(scale=0.3, size=(ROWS, DIM)).astype("float32")
    values[[3, 17, 31, 49]] = 0.0
    return values


WORDS = [f"w{i}" for i in range(ROWS)]


def write_npy(path, values):
    np.save(path, values)


def write_npz(path, values):
    np.savez_compressed(path, words=values, other=np.arange(5.0))


def write_vec(path, values):
    path.write_text(
        f"{ROWS} {DIM}\n" + "".join(f"{w} " + " ".join(f"{v:.6f}" for v in row) + "\n" for w, row in zip(WORDS, values))
    )


def write_glove(path, values):
    path.write_text("".join(f"{w} " + " ".join(f"{v:.6f}" for v in row) + "\n" for w, row in zip(WORDS, values)))


def write_bin(path, values):
    path.write_bytes(
        f"{ROWS} {DIM}\n".encode()
        + b"".join(w.encode() + b" " + row.astype("<f4").tobytes() + b"\n" for w, row in zip(WORDS, values))
    )


def write_safetensors(path, values):
    from safetensors.numpy import save_file

    save_file({"model.embed_tokens.weight": values, "lm_head.bias": np.zeros(3, "float32")}, str(path))


FORMATS = {
    "t.npy": write_npy,
    "t.npz": write_npz,
    "t.vec": write_vec,
    "glove.txt": write_glove,
    "t.bin": write_bin,
    "t.safetensors": write_safetensors,
}


def read_table(path) -> tuple[np.ndarray, list[str] | None]:
    with load(str(path)) as view:
        (matrix,) = [layer.embedding_matrix() for layer in view.layers if layer.embedding_matrix() is not None]
        return matrix.read(), matrix.row_labels(list(range(ROWS)))


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_zero_rows_get_small_random_vectors_in_every_table_format(tmp_path, name):
    values = table()
    source, fixed = tmp_path / name, tmp_path / f"fixed_{name}"
    FORMATS[name](source, values)
    before = source.read_bytes()
    run_cli("fix", source, "-o", fixed, expected_exit=0)
    assert source.read_bytes() == before
    assert not [f for f in nandoctor.scan(str(fixed)).findings if f.code == "ND101"]
    original, words = read_table(source)
    repaired, repaired_words = read_table(fixed)
    assert repaired_words == words
    zero = ~original.any(axis=1)
    np.testing.assert_array_equal(repaired[~zero], original[~zero])
    norms = np.linalg.norm(repaired[zero], axis=1)
    median = np.median(np.linalg.norm(original[~zero], axis=1))
    np.testing.assert_allclose(norms, 0.1 * median, rtol=1e-3 if name.endswith((".vec", ".txt")) else 1e-5)
    assert len({tuple(row) for row in repaired[zero]}) == zero.sum()  # each row its own vector


def test_other_members_of_an_npz_are_kept(tmp_path):
    source, fixed = tmp_path / "t.npz", tmp_path / "f.npz"
    write_npz(source, table())
    run_cli("fix", source, "-o", fixed, expected_exit=0)
    with np.load(fixed, allow_pickle=False) as arrays:
        np.testing.assert_array_equal(arrays["other"], np.arange(5.0))
    with zipfile.ZipFile(source) as a, zipfile.ZipFile(fixed) as b:
        assert [(i.filename, i.compress_type) for i in a.infolist()] == [
            (i.filename, i.compress_type) for i in b.infolist()
        ]


def test_the_seed_decides_the_new_rows(tmp_path):
    source = tmp_path / "t.npy"
    write_npy(source, table())
    for name, seed in (("a.npy", "0"), ("b.npy", "0"), ("c.npy", "1")):
        run_cli("fix", source, "-o", tmp_path / name, "--seed", seed, expected_exit=0)
    a, b, c = (np.load(tmp_path / n) for n in ("a.npy", "b.npy", "c.npy"))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_bfloat16_embeddings_in_a_keras_file_are_filled_and_stay_bfloat16(keras, tmp_path):
    keras.config.set_dtype_policy("bfloat16")
    try:
        tokens = keras.Input((4,), dtype="int32")
        embedding = keras.layers.Embedding(ROWS, DIM, name="emb")
        model = keras.Model(tokens, keras.layers.GlobalAveragePooling1D()(embedding(tokens)))
        values = table()
        values[0] = 0.0  # the padding row
        embedding.embeddings.assign(values)
        model.save(tmp_path / "bf16.keras")
    finally:
        keras.config.set_dtype_policy("float32")
    run_cli("fix", tmp_path / "bf16.keras", "-o", tmp_path / "fixed.keras", "--select", "ND101", expected_exit=0)
    with load(str(tmp_path / "fixed.keras")) as view:
        matrix = view.layers[1].embedding_matrix()
        assert matrix.dtype == "bfloat16"
        repaired = matrix.read()
    zero = ~table().any(axis=1)
    assert np.all(np.linalg.norm(repaired[zero], axis=1) > 0) and not repaired[0].any()
    loaded = keras.saving.load_model(tmp_path / "fixed.keras")
    np.testing.assert_allclose(loaded.get_layer("emb").get_weights()[0].astype("float32"), repaired)


def test_a_word2vec_binary_keeps_its_record_layout(tmp_path):
    source, fixed = tmp_path / "t.bin", tmp_path / "f.bin"
    write_bin(source, table())
    run_cli("fix", source, "-o", fixed, expected_exit=0)
    a, b = source.read_bytes(), fixed.read_bytes()
    assert len(a) == len(b)
    header = len(f"{ROWS} {DIM}\n")
    record = lambda i: header + sum(len(w) + 1 + 4 * DIM + 1 for w in WORDS[:i])  # noqa: E731
    changed = {i for i in range(ROWS) if a[record(i) : record(i + 1)] != b[record(i) : record(i + 1)]}
    assert changed == {3, 17, 31, 49}
    assert struct.unpack("<f", b[record(3) + 3 : record(3) + 7])[0] != 0.0
