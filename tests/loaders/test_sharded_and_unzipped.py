"""Sharded weights (`save_weights("m.weights.json", max_shard_size=...)`) and unzipped Keras
models (`save_model(model, "dir", zipped=False)`), written by Keras itself."""

import json
import os

import pytest

import nandoctor
from tests.conftest import run_cli
from tests.test_fuzz import check_mutated_part


def classifier_with_zero_rows(keras, rows=4000):
    tokens = keras.Input((8,), dtype="int32")
    embedding = keras.layers.Embedding(rows, 64, name="emb")
    pooled = keras.layers.GlobalAveragePooling1D()(embedding(tokens))
    hidden = keras.layers.Dense(rows // 2, activation="relu", name="hidden")(pooled)  # a second large variable
    model = keras.Model(tokens, keras.layers.Dense(1, activation="softmax", name="out")(hidden))
    table = embedding.get_weights()[0]
    table[10:20] = 0
    embedding.set_weights([table])
    model.compile("adam", "binary_crossentropy")
    return model


def test_sharded_weights_are_read_across_every_shard(keras, tmp_path):
    model = classifier_with_zero_rows(keras)
    model.save_weights(tmp_path / "m.weights.json", max_shard_size=0.0012)  # 1.2 MB: a shard per large variable
    shards = sorted(name for name in os.listdir(tmp_path) if name.endswith(".weights.h5"))
    assert len(shards) >= 2
    result = run_cli("scan", "--format", "json", tmp_path)
    (scanned,) = json.loads(result.stdout)["files"]  # the index, not its shards one by one
    assert scanned["format"] == "sharded-weights" and scanned["path"].endswith("m.weights.json")
    (zero_rows,) = [f for f in scanned["findings"] if f["code"] == "ND101"]
    assert zero_rows["details"]["count"] == 10


def test_a_missing_shard_is_a_one_line_error(keras, tmp_path):
    model = classifier_with_zero_rows(keras)
    model.save_weights(tmp_path / "m.weights.json", max_shard_size=0.0012)
    missing = sorted(name for name in os.listdir(tmp_path) if name.endswith(".weights.h5"))[-1]
    os.remove(tmp_path / missing)
    result = run_cli("scan", tmp_path / "m.weights.json", expected_exit=2)
    assert f"shard {missing} named by the index is missing" in result.stderr + result.stdout


def test_an_unzipped_keras_model_is_read_as_the_model_it_is(keras, tmp_path):
    model = classifier_with_zero_rows(keras, rows=100)
    keras.saving.save_model(model, tmp_path / "unzipped", zipped=False)
    report = nandoctor.scan(tmp_path)
    (result,) = report.files
    assert result.format == "keras-dir" and result.path.endswith("unzipped")
    codes = {f.code for f in report.findings}
    assert {"ND101", "ND601"} <= codes  # the weights, and the config's one-unit softmax


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A sharded index with its shards, and an unzipped model, written once."""
    import keras

    folder = tmp_path_factory.mktemp("written")
    model = classifier_with_zero_rows(keras)
    (folder / "sharded").mkdir()
    model.save_weights(folder / "sharded" / "m.weights.json", max_shard_size=0.0012)
    keras.saving.save_model(classifier_with_zero_rows(keras, rows=100), folder / "unzipped", zipped=False)
    return folder


@pytest.mark.parametrize(
    ("scanned", "part"),
    [
        ("sharded/m.weights.json", "sharded/m.weights.json"),
        ("sharded/m.weights.json", "sharded/m_00001.weights.h5"),
        ("unzipped", "unzipped/config.json"),
        ("unzipped", "unzipped/model.weights.h5"),
    ],
)
def test_mutated_parts_are_scanned_or_refused_in_one_line(written, tmp_path, scanned, part):
    check_mutated_part(written, part, scanned, tmp_path, examples=25)


def test_the_cli_docs_list_every_format_the_table_holds():
    from nandoctor.loaders import FORMATS
    from tests.conftest import ROOT

    table = (ROOT / "docs" / "cli.md").read_text()
    assert all(f"| `{format_.name}` |" in table for format_ in FORMATS)
