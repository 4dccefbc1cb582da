"""Safe fixes on the field reports' files: the finding is gone, nothing new appears, and the
fixed file loads in a fresh process and computes what the original did, except where the
fix meant it to differ."""

import json
import shutil

import numpy as np
import pytest

import nandoctor
from nandoctor.fix.runner import fix
from tests.conftest import FIXTURES, run_cli
from tests.fix.fresh_process import predict_in_fresh_process

BROKEN = FIXTURES / "broken"


def findings_of(path) -> set[tuple[str, str]]:
    return {(finding.code, finding.layer) for finding in nandoctor.scan(str(path)).findings}


@pytest.mark.parametrize(
    "name, api",
    [
        ("seed_d_padding_flatten.keras", "keras"),
        ("seed_d_padding_flatten.h5", "keras"),
        ("seed_d_padding_flatten_keras2.h5", "tf_keras"),
    ],
)
def test_the_padding_row_is_zeroed_and_only_padded_inputs_change(keras, tf_keras, tmp_path, name, api):
    source, fixed = BROKEN / name, tmp_path / name
    result = run_cli("fix", source, "-o", fixed, "--format", "json", expected_exit=1)
    (report,) = json.loads(result.stdout)["files"]
    assert [(f["code"], f["layer"], f["safety"]) for f in report["fixed"]] == [("ND303", "embedding", "safe")]
    assert findings_of(fixed) == findings_of(source) - {("ND303", "embedding")}
    loader = tf_keras.models.load_model if api == "tf_keras" else keras.saving.load_model
    original = loader(str(source), compile=False)
    vocabulary = original.get_layer("embedding").get_weights()[0].shape[0]
    rng = np.random.default_rng(0)
    words = rng.integers(1, vocabulary, size=(8, 60)).astype("int32")
    padded = words.copy()
    padded[:, 40:] = 0
    inputs = np.concatenate([words, padded])
    outputs = predict_in_fresh_process(fixed, inputs, tmp_path, api)
    expected = original.predict(inputs, verbose=0)
    np.testing.assert_allclose(outputs[:8], expected[:8], atol=1e-6)
    assert not np.allclose(outputs[8:], expected[8:], atol=1e-4)
    assert not np.any(loader(str(fixed), compile=False).get_layer("embedding").get_weights()[0][0])


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_softmax_over_one_unit_becomes_the_sigmoid_it_stood_for(keras, tmp_path, suffix):
    features = keras.Input((6,))
    model = keras.Model(
        features,
        keras.layers.Dense(1, activation="softmax", name="is_spam")(
            keras.layers.Dense(8, activation="relu", name="hidden")(features)
        ),
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    source, fixed = tmp_path / f"spam{suffix}", tmp_path / f"fixed{suffix}"
    model.save(source)
    run_cli("fix", source, "-o", fixed, expected_exit=0)
    assert findings_of(source) == {("ND601", "is_spam")} and findings_of(fixed) == set()
    inputs = np.random.default_rng(1).normal(size=(16, 6)).astype("float32")
    assert np.all(model.predict(inputs, verbose=0) == 1.0)
    kernel, bias = model.get_layer("is_spam").get_weights()
    hidden = keras.Model(features, model.get_layer("hidden").output).predict(inputs, verbose=0)
    expected = 1 / (1 + np.exp(-(hidden @ kernel + bias)))
    np.testing.assert_allclose(predict_in_fresh_process(fixed, inputs, tmp_path), expected, rtol=1e-5, atol=1e-6)


def test_a_keras2_softmax_over_one_unit_is_fixed_in_the_legacy_file(tmp_path):
    fixed = tmp_path / "fixed.h5"
    run_cli("fix", BROKEN / "softmax_single_unit_keras2.h5", "-o", fixed, expected_exit=0)
    assert findings_of(fixed) == set()
    inputs = np.random.default_rng(2).normal(size=(4, 6)).astype("float32")
    outputs = predict_in_fresh_process(fixed, inputs, tmp_path, api="tf_keras")
    assert np.all((outputs > 0) & (outputs < 1)) and len(np.unique(outputs)) > 1


def test_the_input_is_untouched_unless_in_place(tmp_path):
    source = tmp_path / "d.keras"
    shutil.copyfile(BROKEN / "seed_d_padding_flatten.keras", source)
    before = source.read_bytes()
    run_cli("fix", source, "--diff", expected_exit=1)
    assert source.read_bytes() == before
    run_cli("fix", source, "--in-place", expected_exit=1)
    assert source.read_bytes() != before
    assert ("ND303", "embedding") not in findings_of(source)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.keras"]  # no scratch file left behind


def test_a_fix_whose_finding_survives_the_rescan_is_left_out_and_nothing_is_written(tmp_path):
    """Conv1D drops the mask whatever the embedding: MaskedEmbedding does not cure ND302 there."""
    out = tmp_path / "fixed.keras"
    report = fix(str(BROKEN / "nd302_mask_dropped_by_conv.keras"), output=str(out), unsafe_fixes=True)
    (result,) = report.files
    assert result.fixed == [] and not out.exists()
    assert [(u.code, "still had this finding" in u.reason) for u in result.unfixed] == [("ND302", True)]


def test_unsafe_fixes_wait_for_their_flag(tmp_path):
    source = BROKEN / "nd501_transformer_without_causal_mask.keras"
    (result,) = fix(str(source), output=str(tmp_path / "a.keras")).files
    assert result.fixed == [] and {u.code for u in result.unfixed} == {"ND501"}
    assert all("--unsafe-fixes" in u.reason for u in result.unfixed)
    assert not (tmp_path / "a.keras").exists()


def test_the_reports_list_what_was_fixed_and_the_summary_says_so(tmp_path):
    source = BROKEN / "seed_c_zero_rows_cosine.keras"
    text = run_cli("fix", source, "-o", tmp_path / "c.keras", expected_exit=1).stdout
    assert "fixed ND101 (safe) gave 120 zero rows of 'word_emb'" in " ".join(text.split())
    assert text.strip().splitlines()[-1].startswith("Fixed 2 findings (1 not fixed). Still found 4 findings")
    data = json.loads(run_cli("fix", source, "--diff", "--format", "json", expected_exit=1).stdout)
    (report,) = data["files"]
    assert [(f["code"], f["layer"]) for f in report["fixed"]] == [("ND101", "word_emb"), ("ND101", "entity_emb")]
    assert len(report["fixed"][0]["details"]["rows"]) == 120 and report["output"] is None
    assert [u["code"] for u in report["unfixed"]] == ["ND301"]
