"""Unsafe fixes change what the model computes, on purpose: applied only with
`--unsafe-fixes`, and the fixed file loads in a fresh process and does what was prescribed."""

import json
import zipfile

import numpy as np

import nandoctor
from tests.conftest import FIXTURES, run_cli
from tests.fix.fresh_process import predict_in_fresh_process

BROKEN = FIXTURES / "broken"


def codes_of(path) -> set[str]:
    return {finding.code for finding in nandoctor.scan(str(path)).findings}


def test_self_attention_gets_a_causal_mask_and_no_position_sees_the_future(keras, tmp_path):
    source, fixed = BROKEN / "nd501_transformer_without_causal_mask.keras", tmp_path / "causal.keras"
    run_cli("fix", source, "-o", fixed, "--select", "ND501", "--unsafe-fixes", expected_exit=0)
    assert "ND501" in codes_of(source) and "ND501" not in codes_of(fixed)
    tokens = np.random.default_rng(0).integers(1, 28, size=(2, 32)).astype("int32")
    changed = tokens.copy()
    changed[:, -1] = (changed[:, -1] % 27) + 1  # another token at the last position only
    outputs = predict_in_fresh_process(fixed, np.concatenate([tokens, changed]), tmp_path)
    np.testing.assert_allclose(outputs[:2, :-1], outputs[2:, :-1], atol=1e-5)
    original = keras.saving.load_model(source, compile=False)
    leaked = original.predict(np.concatenate([tokens, changed]), verbose=0)
    assert not np.allclose(leaked[:2, :-1], leaked[2:, :-1], atol=1e-5)  # the fault the fix removes


def test_a_plain_embedding_becomes_a_masked_embedding_with_its_table(keras, tmp_path):
    source, fixed = BROKEN / "seed_d_padding_flatten.keras", tmp_path / "masked.keras"
    result = run_cli("fix", source, "-o", fixed, "--unsafe-fixes", "--format", "json", expected_exit=0)
    (report,) = json.loads(result.stdout)["files"]
    assert sorted((f["code"], f["safety"]) for f in report["fixed"]) == [("ND301", "unsafe"), ("ND303", "safe")]
    assert codes_of(fixed) == set()
    with zipfile.ZipFile(fixed) as archive:
        assert '"class_name": "MaskedEmbedding"' in archive.read("config.json").decode()
    original = keras.saving.load_model(source, compile=False)
    vocabulary = original.get_layer("embedding").get_weights()[0].shape[0]
    words = np.random.default_rng(1).integers(1, vocabulary, size=(6, 60)).astype("int32")
    np.testing.assert_allclose(
        predict_in_fresh_process(fixed, words, tmp_path), original.predict(words, verbose=0), atol=1e-6
    )


def test_a_relu_output_under_cross_entropy_becomes_softmax_when_asked(keras, tmp_path):
    """Field report A's output, with the scan narrowed to ND601: the softmax output then
    also makes the model a language model whose tie ND401 would suggest."""
    source, fixed = BROKEN / "seed_a_memory_network.keras", tmp_path / "a.keras"
    (report,) = json.loads(run_cli("fix", source, "-o", fixed, "--format", "json", expected_exit=1).stdout)["files"]
    assert "--unsafe-fixes" in report["unfixed"][0]["reason"] and not fixed.exists()
    run_cli("fix", source, "-o", fixed, "--unsafe-fixes", "--select", "ND601", expected_exit=0)
    assert "ND601" not in codes_of(fixed)
    with zipfile.ZipFile(fixed) as archive:
        config = json.loads(archive.read("config.json"))
    (output,) = [entry for entry in config["config"]["layers"] if entry["config"]["name"] == "next_word"]
    assert output["config"]["activation"] == "softmax"


def test_a_position_table_is_brought_to_the_tokens_scale(keras, tmp_path):
    source, fixed = BROKEN / "nd504_position_scale_mismatch.keras", tmp_path / "scaled.keras"
    run_cli("fix", source, "-o", fixed, expected_exit=1)  # unsafe: not applied, the finding stays
    assert not fixed.exists()
    run_cli("fix", source, "-o", fixed, "--unsafe-fixes", expected_exit=0)
    assert "ND504" not in codes_of(fixed)
    original, repaired = (keras.saving.load_model(path, compile=False) for path in (source, fixed))
    median = lambda table: np.median(np.linalg.norm(table, axis=1))  # noqa: E731
    tokens = original.get_layer("token_emb").get_weights()[0]
    before, after = (model.get_layer("position_emb").get_weights()[0] for model in (original, repaired))
    np.testing.assert_allclose(after, before * (median(tokens) / median(before)), rtol=1e-5)
    ids, positions = np.random.default_rng(2).integers(1, 10, size=(2, 32)), np.tile(np.arange(32), (2, 1))
    assert np.isfinite(repaired.predict([ids.astype("int32"), positions.astype("int32")], verbose=0)).all()
