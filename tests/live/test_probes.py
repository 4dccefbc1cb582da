"""The live probes on real models: evidence when they fire, silence on correct layers, and
no change to the model they examine."""

import subprocess
import sys

import keras
import numpy as np
import pytest

import nandoctor
from nandoctor.layers import CausalSelfAttention, TiedEmbedding
from tests.conftest import ROOT, run_cli
from tests.live.leaky_layers import (
    ForgetfulAttention,
    FutureOnlyAttention,
    language_model,
)


def probe_findings(model, code):
    return [f for f in nandoctor.check(model).findings if f.code == code]


@pytest.mark.parametrize(
    "make",
    [
        lambda: language_model(causal=False),
        lambda: language_model(ForgetfulAttention(name="forgetful")),
        lambda: language_model(FutureOnlyAttention(name="future_only")),
    ],
    ids=["no causal mask", "wrapper drops the flag", "inverted mask"],
)
def test_the_causal_probe_catches_what_sees_the_future(keras_seed, make):
    (finding,) = probe_findings(make(), "ND502")
    assert finding.details["leak"] > 0 and finding.details["first_leaking_position"] == 0
    assert "positions see the future" in finding.message and "random sequences" in finding.details["inputs"]


def test_the_causal_probe_is_silent_on_causal_models(keras_seed):
    assert probe_findings(language_model(causal=True), "ND502") == []
    tokens = keras.Input((8,), dtype="int32")
    embedding = TiedEmbedding(20, 8, mask_zero=True)
    model = keras.Model(tokens, embedding(CausalSelfAttention(2, 16)(embedding(tokens)), reverse=True))
    assert probe_findings(model, "ND502") == []


def hand_written_tie_model():
    from fixtures.build import seed_b_hand_written_tie

    return seed_b_hand_written_tie()


def test_the_tie_probe_proves_a_hand_written_tie_does_not_survive_the_file(keras_seed):
    (finding,) = probe_findings(hand_written_tie_model(), "ND402")  # the static suspicion, confirmed
    assert finding.confidence == "high" and finding.details["probe"]["stage"] == "reload"
    assert "confirmed on the live model: saving and reloading the model fails" in finding.message
    # The embedding variable is shared, not copied: the live model must read as the file does.
    assert finding.severity == "error" and "through a Python reference" in finding.message


@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_the_tie_probe_is_silent_on_tied_embedding(keras_seed, policy):
    """In a mixed policy the reverse projection is rounded to float16 or bfloat16: a tie, not a break."""
    tokens = keras.Input((8,), dtype="int32")
    embedding = TiedEmbedding(30, 64, name="tied", dtype=policy)
    model = keras.Model(tokens, embedding(keras.layers.Dense(64, dtype=policy)(embedding(tokens)), reverse=True))
    assert probe_findings(model, "ND402") == []


def test_probes_change_neither_weights_nor_optimizer_state(keras_seed):
    tokens = keras.Input((8,), dtype="int32")
    embedding = TiedEmbedding(30, 8, name="tied")
    model = keras.Model(
        tokens, embedding(keras.layers.MultiHeadAttention(2, 4)(embedding(tokens), embedding(tokens)), reverse=True)
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).integers(0, 30, size=(16, 8))
    model.fit(x, x, epochs=1, verbose=0)
    before = [keras.ops.convert_to_numpy(v) for v in [*model.weights, *model.optimizer.variables]]
    report = nandoctor.check(model)
    after = [keras.ops.convert_to_numpy(v) for v in [*model.weights, *model.optimizer.variables]]
    assert {f.code for f in report.findings} >= {"ND501", "ND502"}
    assert len(before) == len(after) and all(np.array_equal(a, b) for a, b in zip(before, after))


def test_scan_trust_loads_with_custom_objects_and_probes(keras_seed, tmp_path, monkeypatch):
    path = tmp_path / "forgetful.keras"
    language_model(ForgetfulAttention(name="forgetful")).save(path)
    monkeypatch.chdir(ROOT)
    result = run_cli(
        "scan", "--trust", "--custom-objects", "tests.live.leaky_layers", path, "--format", "json", expected_exit=1
    )
    assert '"ND502"' in result.stdout and '"ND901"' in result.stdout


def test_without_trust_the_same_file_is_scanned_statically_and_nothing_is_loaded(tmp_path):
    path = tmp_path / "forgetful.keras"
    language_model(ForgetfulAttention(name="forgetful")).save(path)
    probe = (
        "import sys; from nandoctor.cli import main\n"
        "try: main(['scan', sys.argv[1], '--format', 'json'])\n"
        "finally: print('LOADED' if any(m.startswith(('keras', 'tests.live')) for m in sys.modules) else 'STATIC', file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert "STATIC" in result.stderr and '"ND901"' in result.stdout and '"ND502"' not in result.stdout


def test_custom_objects_without_trust_is_a_usage_error(tmp_path):
    run_cli("scan", "--custom-objects", "tests.live.leaky_layers", tmp_path, expected_exit=2)


def padded_classifier(make_middle, embedding):
    tokens = keras.Input((12,), dtype="int32")
    x = make_middle(embedding(tokens))
    return keras.Model(tokens, keras.layers.Dense(3, name="label")(x))


@pytest.mark.parametrize(
    "make, code",
    [
        (lambda: padded_classifier(keras.layers.Flatten(), keras.layers.Embedding(40, 8, name="emb")), "ND301"),
        (
            lambda: padded_classifier(
                lambda x: keras.layers.LSTM(4)(keras.layers.Conv1D(8, 3, padding="same")(x)),
                keras.layers.Embedding(40, 8, mask_zero=True, name="emb"),
            ),
            "ND302",
        ),
    ],
    ids=["no mask into Flatten", "mask dropped by Conv1D"],
)
def test_the_padding_probe_confirms_the_static_finding(keras_seed, make, code):
    (finding,) = [f for f in nandoctor.check(make()).findings if f.code == code]
    assert finding.confidence == "high" and "confirmed on the live model" in finding.message
    assert finding.details["probe"]["padding_change"] > 0


@pytest.mark.parametrize(
    "make",
    [
        lambda: padded_classifier(keras.layers.LSTM(4), keras.layers.Embedding(40, 8, mask_zero=True, name="emb")),
        lambda: padded_classifier(keras.layers.Flatten(), nandoctor.layers.MaskedEmbedding(40, 8, name="emb")),
    ],
    ids=["mask consumed by LSTM", "MaskedEmbedding into Flatten"],
)
def test_the_padding_probe_is_silent_when_padding_is_masked(keras_seed, make):
    assert [f.code for f in nandoctor.check(make()).findings if f.code.startswith("ND30")] == []


def test_trusted_scan_of_the_fixed_field_reports_is_quiet(monkeypatch):
    """Variable-length inputs (report B, fixed) and SafeCosineSimilarity (report C, fixed)
    go through every probe without an error and without a finding at warning or above."""
    from tests.conftest import FIXTURES

    monkeypatch.chdir(ROOT)
    run_cli(
        "scan",
        "--trust",
        FIXTURES / "clean" / "fixed_seed_b_tied_language_model.keras",
        FIXTURES / "clean" / "fixed_seed_c_safe_cosine.keras",
        FIXTURES / "clean" / "fixed_seed_e_causal_transformer.keras",
        expected_exit=0,
    )


def test_an_all_padding_sequence_makes_a_masked_average_nan():
    """A true positive no static rule can see: Keras's masked GlobalAveragePooling1D divides
    by the number of real tokens, 0 for an empty (all-padding) document."""
    from tests.conftest import FIXTURES

    model = keras.models.load_model(FIXTURES / "clean" / "near_miss_classifier_over_tokens.keras")
    (finding,) = [f for f in nandoctor.check(model).findings if f.code == "ND201"]
    assert finding.layer == "mean" and finding.details["recipe"].startswith("all-padding")
