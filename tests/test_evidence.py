"""Every finding says what it rests on, and one function caps its severity by that evidence:
a guess across unseen code or an unrealistic input is never more than `info`."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import nandoctor
from nandoctor.catalogue import DIAGNOSES
from nandoctor.report import Evidence, Severity, capped
from tests.conftest import FIXTURES, run_cli

EVIDENCE = {kind.value for kind in Evidence}


@given(st.sampled_from(DIAGNOSES), st.sampled_from(list(Severity)), st.data())
def test_a_finding_is_never_above_what_its_evidence_allows(diagnosis, severity, data):
    evidence = data.draw(st.sampled_from(diagnosis.evidence_kinds))
    finding = diagnosis.finding("layer", "message", severity=severity, evidence=evidence)
    assert finding.details["evidence"] == evidence.value
    assert finding.severity.rank <= evidence.ceiling.rank and finding.severity.rank <= severity.rank
    if evidence in (Evidence.INFERRED, Evidence.ADVERSARIAL):
        assert finding.severity is Severity.INFO


@given(st.sampled_from(list(Severity)), st.sampled_from(list(Evidence)))
def test_certain_and_measured_findings_keep_the_severity_their_rule_gives(severity, evidence):
    expected = severity if evidence in (Evidence.CERTAIN, Evidence.MEASURED) else Severity.INFO
    assert capped(severity, evidence) is expected


def test_a_diagnosis_cannot_claim_evidence_it_does_not_declare():
    from nandoctor.rules.nonfinite_weights import NonfiniteWeights

    with pytest.raises(ValueError, match="declares evidence certain"):
        NonfiniteWeights.finding("layer", "message", evidence=Evidence.ADVERSARIAL)


def test_every_diagnosis_declares_the_evidence_its_findings_can_rest_on():
    for diagnosis in DIAGNOSES:
        assert diagnosis.evidence_kinds and set(diagnosis.evidence_kinds) <= set(Evidence), diagnosis.code


def test_every_finding_of_the_scan_carries_its_evidence_in_json():
    result = run_cli("scan", FIXTURES / "broken", "--format", "json")
    findings = [f for file in json.loads(result.stdout)["files"] for f in file["findings"]]
    assert findings and all(f["details"]["evidence"] in EVIDENCE for f in findings)
    assert all(f["severity"] == "info" for f in findings if f["details"]["evidence"] in ("inferred", "adversarial"))


def test_the_text_report_says_what_each_finding_rests_on():
    result = run_cli("scan", FIXTURES / "broken" / "seed_c_zero_rows_cosine.keras", "--select", "ND101")
    assert result.stdout.count("evidence: inferred") == 2


def test_an_adversarial_input_that_breaks_a_model_is_info(keras_seed):
    import keras

    # Nothing divides: 1e12 overflows float16 in the Dense, an input no float16 user feeds.
    features = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu", dtype="mixed_float16")(features)
    model = keras.Model(features, keras.layers.Dense(1, dtype="float32")(hidden))
    report = nandoctor.check(model)
    adversarial = [f for f in report.findings if f.details["evidence"] == "adversarial"]
    assert all(f.severity == "info" for f in adversarial)
    assert [f for f in report.findings if f.severity != "info"] == []


def test_check_findings_carry_evidence_and_a_probe_says_what_it_measured(keras_seed):
    from tests.live.test_causal_probe_undeclared import TransformerBlock, functional_gpt

    report = nandoctor.check(functional_gpt(TransformerBlock(causal=False)))
    assert all(f.details["evidence"] in EVIDENCE for f in report.findings)
    (leak,) = [f for f in report.findings if f.code == "ND502"]
    assert leak.details["evidence"] == "measured" and "moved" in leak.details["measured"]
