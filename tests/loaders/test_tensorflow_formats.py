"""SavedModels and TensorFlow checkpoints, written by tf.keras, Keras 3's export and
TensorFlow, read by the two small readers (protobuf wire format, tensor-bundle table)."""

import numpy as np
import pytest

import nandoctor
from tests.conftest import run_cli
from tests.test_fuzz import check_mutated_part


def keras2_classifier(tf_keras):
    model = tf_keras.Sequential(
        [
            tf_keras.layers.Embedding(50, 4, input_length=6, name="emb"),
            tf_keras.layers.Flatten(),
            tf_keras.layers.Dense(1, activation="softmax", name="out"),
        ]
    )
    model.compile("adam", "binary_crossentropy")
    table = model.get_layer("emb").get_weights()[0]
    table[3:6] = 0
    model.get_layer("emb").set_weights([table])
    return model


def codes(path):
    report = nandoctor.scan(str(path))
    (result,) = report.files
    assert result.status.value == "scanned", result.error
    return {f.code: f for f in report.findings}, result


def test_a_tf_keras_saved_model_is_read_with_its_keras_config(tf_keras, tmp_path):
    keras2_classifier(tf_keras).save(tmp_path / "saved")
    found, result = codes(tmp_path / "saved")
    assert result.format == "savedmodel"
    assert found["ND101"].layer == "layer_with_weights-0/embeddings" and found["ND101"].details["count"] == 3
    assert {"ND301", "ND601"} <= set(found) and "ND901" not in found  # the config, read from keras_metadata.pb


def test_a_tensorflow_checkpoint_is_read_by_its_index(tf_keras, tmp_path):
    keras2_classifier(tf_keras).save_weights(str(tmp_path / "ckpt"))
    found, result = codes(tmp_path / "ckpt.index")
    assert result.format == "tf-checkpoint" and found["ND101"].details["count"] == 3
    walked = run_cli("scan", "--select", "ND101", tmp_path, expected_exit=0)  # info: exit 0
    assert "ckpt.index" in walked.stdout


def test_an_exported_saved_model_without_keras_metadata_still_gets_the_weight_rules(keras, tmp_path):
    tokens = keras.Input((6,), dtype="int32")
    embedding = keras.layers.Embedding(40, 4, name="emb")
    model = keras.Model(tokens, keras.layers.Dense(2)(keras.layers.Flatten()(embedding(tokens))))
    table = embedding.get_weights()[0]
    table[1, 0] = np.nan
    embedding.set_weights([table])
    model.export(str(tmp_path / "exported"), verbose=False)
    found, result = codes(tmp_path / "exported")
    assert "ND102" in found and any("no Keras metadata" in note for note in result.notes)


def test_a_missing_checkpoint_shard_is_one_line(tf_keras, tmp_path):
    keras2_classifier(tf_keras).save_weights(str(tmp_path / "ckpt"))
    for shard in tmp_path.glob("ckpt.data-*"):
        shard.unlink()
    result = run_cli("scan", tmp_path / "ckpt.index", expected_exit=2)
    assert "checkpoint shard ckpt.data-00000-of-00001 is missing" in result.stderr + result.stdout


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    import tf_keras

    folder = tmp_path_factory.mktemp("saved") / "model"
    keras2_classifier(tf_keras).save(folder)
    return folder


@pytest.mark.parametrize("part", ["keras_metadata.pb", "variables/variables.index"])
def test_mutated_protobuf_and_table_are_scanned_or_refused_in_one_line(saved, tmp_path, part):
    check_mutated_part(saved.parent, f"model/{part}", "model", tmp_path, examples=40)
