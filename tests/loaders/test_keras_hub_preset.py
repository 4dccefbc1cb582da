"""A KerasHub preset saved by `save_to_preset`: read as its backbone, zero rows named by token."""

import json
import os

import pytest

from tests.conftest import run_cli
from tests.test_fuzz import check_mutated_part


def gpt2_preset(folder, max_shard_size=10, sequence_length=8):
    import keras_hub

    vocabulary = {"<|endoftext|>": 0, "a": 1, "b": 2, "Ġ": 3, "Ġa": 4, "Ġb": 5, "ab": 6, "ba": 7}
    tokenizer = keras_hub.models.GPT2Tokenizer(vocabulary=vocabulary, merges=["a b", "Ġ a", "Ġ b", "b a"])
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(tokenizer=tokenizer, sequence_length=sequence_length)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=8, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=8
    )
    task = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=preprocessor)
    table = backbone.token_embedding.embeddings.numpy()
    table[[2, 5]] = 0
    backbone.token_embedding.embeddings.assign(table)
    task.save_to_preset(str(folder), max_shard_size=max_shard_size)
    return folder


def test_a_gpt2_preset_with_zero_rows_names_them_by_token(keras, tmp_path):
    preset = gpt2_preset(tmp_path / "gpt2_preset")
    result = run_cli("scan", "--format", "json", tmp_path)
    (scanned,) = json.loads(result.stdout)["files"]  # one preset, not its weight files one by one
    assert scanned["format"] == "keras-hub-preset" and scanned["path"] == str(preset)
    (zero_rows,) = [f for f in scanned["findings"] if f["code"] == "ND101"]
    assert zero_rows["layer"].endswith("token_embedding") and "words 'b', 'Ġb'" in zero_rows["message"]
    assert any(
        "KerasHub 0.32" in note and "of a GPT2CausalLM" in note and "cannot judge" in note for note in scanned["notes"]
    )
    assert not [f for f in scanned["findings"] if f["code"] == "ND505"]  # the preprocessor feeds 8 of 8


def test_a_preprocessor_feeding_more_positions_than_the_backbone_has_is_an_error(keras, tmp_path):
    gpt2_preset(tmp_path / "gpt2_preset", sequence_length=16)  # the backbone's table has 8 rows
    result = run_cli("scan", "--format", "json", tmp_path, expected_exit=1)
    (scanned,) = json.loads(result.stdout)["files"]
    (too_short,) = [f for f in scanned["findings"] if f["code"] == "ND505"]
    assert too_short["layer"].endswith("position_embedding") and too_short["severity"] == "error"
    assert too_short["details"] == {"rows": 8, "positions": 16, "evidence": "certain"}


def test_a_nan_in_a_classifier_head_saved_beside_the_backbone_is_found(keras, tmp_path):
    import keras_hub
    import numpy as np

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c"]
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer=keras_hub.models.BertTokenizer(vocabulary=vocabulary), sequence_length=8
    )
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=8, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=8
    )
    task = keras_hub.models.BertTextClassifier(backbone=backbone, preprocessor=preprocessor, num_classes=3)
    head = task.output_dense
    kernel = head.kernel.numpy()
    kernel[0, 0] = np.nan
    head.kernel.assign(kernel)
    task.save_to_preset(str(tmp_path / "classifier"))

    result = run_cli("scan", "--format", "json", tmp_path / "classifier", expected_exit=1)
    (scanned,) = json.loads(result.stdout)["files"]
    (nonfinite,) = [f for f in scanned["findings"] if f["code"] == "ND102"]
    assert nonfinite["layer"] == f"{task.name}/{head.name}" and nonfinite["severity"] == "error"


def test_a_corrupt_task_weights_file_is_one_line_and_exit_2(keras, tmp_path):
    preset = gpt2_preset(tmp_path / "gpt2_preset")
    (preset / "task.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    result = run_cli("scan", preset, expected_exit=2)
    (line,) = result.stderr.strip().splitlines()
    assert "task.weights.h5 is not a valid HDF5 file" in line


def test_a_preset_whose_backbone_is_sharded_is_read_across_its_shards(keras, tmp_path):
    preset = gpt2_preset(tmp_path / "gpt2_preset", max_shard_size=0.000001)  # ~1 KB: many shards
    assert not (preset / "model.weights.h5").exists()
    assert len([name for name in os.listdir(preset) if name.startswith("model_")]) >= 2
    result = run_cli("scan", "--format", "json", tmp_path)
    (scanned,) = json.loads(result.stdout)["files"]  # one preset: its shards are its parts
    assert scanned["format"] == "keras-hub-preset" and scanned["status"] == "scanned"
    (zero_rows,) = [f for f in scanned["findings"] if f["code"] == "ND101"]
    assert zero_rows["layer"].endswith("token_embedding") and "words 'b', 'Ġb'" in zero_rows["message"]


def test_a_sharded_preset_missing_a_shard_is_one_line_and_exit_2(keras, tmp_path):
    preset = gpt2_preset(tmp_path / "gpt2_preset", max_shard_size=0.000001)
    missing = sorted(name for name in os.listdir(preset) if name.startswith("model_"))[-1]
    os.remove(preset / missing)
    result = run_cli("scan", preset, expected_exit=2)
    (line,) = result.stderr.strip().splitlines()
    assert f"shard {missing} named by the index is missing" in line


@pytest.fixture(scope="module")
def sharded_preset(tmp_path_factory):
    """A GPT-2 preset whose backbone is cut into many shards, written once."""
    folder = tmp_path_factory.mktemp("written")
    gpt2_preset(folder / "preset", max_shard_size=0.000001)
    return folder


@pytest.mark.parametrize("part", ["preset/model.weights.json", "preset/model_00001.weights.h5"])
def test_a_mutated_sharded_preset_is_scanned_or_refused_in_one_line(sharded_preset, tmp_path, part):
    check_mutated_part(sharded_preset, part, "preset", tmp_path, examples=25)
