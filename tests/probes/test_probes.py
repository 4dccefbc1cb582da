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
from tests.probes.leaky_layers import (
    ForgetfulAttention,
    FutureOnlyAttention,
    language_model,
)


def probe_findings(model, code):
    return [f for f in nandoctor.check(model).findings if f.code == code]


@pytest.mark.parametrize("make", [
    lambda: language_model(causal=False),
    lambda: language_model(ForgetfulAttention(name="forgetful")),
    lambda: language_model(FutureOnlyAttention(name="future_only")),
], ids=["no causal mask", "wrapper drops the flag", "inverted mask"])
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
    findings = probe_findings(hand_written_tie_model(), "ND402")
    assert any(f.details.get("stage") == "reload" and "saving and reloading the model fails" in f.message for f in findings)


def test_the_tie_probe_is_silent_on_tied_embedding(keras_seed):
    tokens = keras.Input((8,), dtype="int32")
    embedding = TiedEmbedding(30, 8, name="tied")
    model = keras.Model(tokens, embedding(keras.layers.Dense(8)(embedding(tokens)), reverse=True))
    assert probe_findings(model, "ND402") == []


def test_probes_change_neither_weights_nor_optimizer_state(keras_seed):
    tokens = keras.Input((8,), dtype="int32")
    embedding = TiedEmbedding(30, 8, name="tied")
    model = keras.Model(tokens, embedding(keras.layers.MultiHeadAttention(2, 4)(embedding(tokens), embedding(tokens)), reverse=True))
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
    result = run_cli("scan", "--trust", "--custom-objects", "tests.probes.leaky_layers", path, "--format", "json",
                     expected_exit=1)
    assert '"ND502"' in result.stdout and '"ND901"' in result.stdout


def test_without_trust_the_same_file_is_scanned_statically_and_nothing_is_loaded(tmp_path):
    path = tmp_path / "forgetful.keras"
    language_model(ForgetfulAttention(name="forgetful")).save(path)
    probe = ("import sys; from nandoctor.cli import main\n"
             "try: main(['scan', sys.argv[1], '--format', 'json'])\n"
             "finally: print('LOADED' if any(m.startswith(('keras', 'tests.probes')) for m in sys.modules) else 'STATIC', file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "STATIC" in result.stderr and '"ND901"' in result.stdout and '"ND502"' not in result.stdout


def test_custom_objects_without_trust_is_a_usage_error(tmp_path):
    run_cli("scan", "--custom-objects", "tests.probes.leaky_layers", tmp_path, expected_exit=2)
