"""A KerasHub preset saved by `save_to_preset`: read as its backbone, zero rows named by token."""

import json

from tests.conftest import run_cli


def gpt2_preset(folder):
    import keras_hub

    vocabulary = {"<|endoftext|>": 0, "a": 1, "b": 2, "Ġ": 3, "Ġa": 4, "Ġb": 5, "ab": 6, "ba": 7}
    tokenizer = keras_hub.models.GPT2Tokenizer(vocabulary=vocabulary, merges=["a b", "Ġ a", "Ġ b", "b a"])
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(tokenizer=tokenizer, sequence_length=8)
    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=8, num_layers=1, num_heads=2, hidden_dim=8,
                                             intermediate_dim=16, max_sequence_length=8)
    task = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=preprocessor)
    table = backbone.token_embedding.embeddings.numpy()
    table[[2, 5]] = 0
    backbone.token_embedding.embeddings.assign(table)
    task.save_to_preset(str(folder))
    return folder


def test_a_gpt2_preset_with_zero_rows_names_them_by_token(keras, tmp_path):
    preset = gpt2_preset(tmp_path / "gpt2_preset")
    result = run_cli("scan", "--format", "json", tmp_path)
    (scanned,) = json.loads(result.stdout)["files"]  # one preset, not its weight files one by one
    assert scanned["format"] == "keras-hub-preset" and scanned["path"] == str(preset)
    (zero_rows,) = [f for f in scanned["findings"] if f["code"] == "ND101"]
    assert zero_rows["layer"].endswith("token_embedding") and "words 'b', 'Ġb'" in zero_rows["message"]
    assert any("KerasHub 0.32" in note and "cannot judge" in note for note in scanned["notes"])
