"""Every way in selects from the one catalogue: live and training codes, families and names are
accepted by `check`, `scan --trust` and `Monitor`, and suppressions are counted, not hidden."""

import json

import keras
import numpy as np
import pytest

import nandoctor
from tests.conftest import run_cli


def norm(t):
    return keras.ops.sqrt(keras.ops.sum(t * t, axis=-1))


def cosine_model():
    """ND201/ND202 in a Lambda (an unguarded cosine), ND502 absent, ND901 on the Lambda."""
    a, b = keras.Input((8,)), keras.Input((8,))
    cosine = keras.layers.Lambda(lambda p: keras.ops.sum(p[0] * p[1], -1) / (norm(p[0]) * norm(p[1])), name="cos")
    return keras.Model([a, b], cosine([a, b]))


@pytest.mark.parametrize("selector", ["ND201", "unguarded-division", "ND20", "ND2"])
def test_check_selects_live_codes_by_code_prefix_and_name(selector):
    report = nandoctor.check(cosine_model(), select=[selector])
    found = {finding.code for finding in report.findings}
    assert "ND201" in found and found <= {"ND201", "ND202", "ND203"}


def test_check_ignores_a_live_family_and_keeps_the_rest():
    report = nandoctor.check(cosine_model(), ignore=["ND2"])
    assert {finding.code for finding in report.findings} == {"ND901"}


def test_check_suppresses_a_code_on_one_layer_and_counts_it():
    report = nandoctor.check(cosine_model(), ignore=["ND201:cos", "ND202:c*"])
    (result,) = report.files
    assert "ND201" not in {f.code for f in result.findings}
    assert result.suppressed.get("ND201") == 1 and result.suppressed.get("ND202", 0) >= 1
    assert report.to_dict()["summary"]["suppressed"] == sum(result.suppressed.values())


def test_scan_trust_ignores_a_live_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tokens = keras.Input((12,), dtype="int32")
    x = keras.layers.Embedding(50, 16)(tokens)
    x = keras.layers.MultiHeadAttention(2, 8)(x, x)
    keras.Model(tokens, keras.layers.Dense(50)(x)).save(tmp_path / "leaky.keras")
    with_leak = json.loads(run_cli("scan", "--trust", "leaky.keras", "--format", "json").stdout)
    assert "ND502" in {f["code"] for f in with_leak["files"][0]["findings"]}
    without = json.loads(run_cli("scan", "--trust", "leaky.keras", "--ignore", "ND502", "--format", "json").stdout)
    assert "ND502" not in {f["code"] for f in without["files"][0]["findings"]}


def nan_run(**monitor_options):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1e30), "mse")
    monitor = nandoctor.Monitor(every_n_steps=1, verbose=0, **monitor_options)
    x = np.ones((64, 4), "float32") * 1e3
    model.fit(x, x[:, :1], epochs=1, batch_size=8, verbose=0, callbacks=[monitor])
    return {finding.code for finding in monitor.report.findings}


@pytest.mark.parametrize("selector", ["ND702", "nonfinite-during-training"])
def test_monitor_selects_by_code_or_name(selector):
    assert nan_run(select=[selector]) == {"ND702"}


def test_monitor_selects_a_family():
    found = nan_run(select=["ND7"])
    assert "ND702" in found and found <= {"ND701", "ND702", "ND703"}


def test_monitor_ignores_by_name_and_refuses_unknown_selectors_and_options():
    assert "ND703" not in nan_run(ignore=["exploding-updates"])
    with pytest.raises(ValueError, match="Received: 'ND799'"):
        nandoctor.Monitor(select=["ND799"])
    with pytest.raises(ValueError, match=r"Expected one of: .*window"):
        nandoctor.Monitor(options={"ND701": {"windw": 3}})


def test_a_probe_that_cannot_run_is_a_note_and_the_report_stands(monkeypatch):
    from nandoctor.live.causal_probe import CausalProbe

    def broken(self, model, view):
        raise RuntimeError("the model refused the probe's input")
        yield

    monkeypatch.setattr(CausalProbe, "run", broken)
    report = nandoctor.check(cosine_model())
    (result,) = report.files
    assert "ND201" in {f.code for f in result.findings}
    assert result.notes == ["causal-probe could not run: RuntimeError: the model refused the probe's input"]


def test_sarif_of_a_live_check_lists_the_rules_that_fired_with_indexes():
    from nandoctor.reporters.sarif import render_sarif

    run = json.loads(render_sarif(nandoctor.check(cosine_model())))["runs"][0]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert "ND201" in rules and rules == sorted({result["ruleId"] for result in run["results"]})
    assert all(rules[result["ruleIndex"]] == result["ruleId"] for result in run["results"])
