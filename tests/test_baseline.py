"""`scan --write-baseline` accepts today's findings; `--baseline` then fails only on new ones."""

import dataclasses
import json
import shutil

from hypothesis import given
from hypothesis import strategies as st

from nandoctor.baseline import BaselineEntry, apply_baseline, fingerprint
from nandoctor.report import Confidence, FileResult, FileStatus, Finding, Report, Severity
from tests.conftest import FIXTURES, run_cli

RELU_OUTPUT = FIXTURES / "broken" / "seed_a_memory_network.keras"  # ND601 error + ND901 info
PADDING = FIXTURES / "broken" / "seed_d_padding_flatten.keras"  # ND301, ND303 warnings


def models_folder(tmp_path, monkeypatch, *models):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    for model in models:
        shutil.copy(model, tmp_path / "models" / model.name)


def test_an_unchanged_model_passes_and_a_new_broken_model_fails_naming_only_its_findings(tmp_path, monkeypatch):
    models_folder(tmp_path, monkeypatch, RELU_OUTPUT)
    written = run_cli("scan", "--write-baseline", "b.json", "models/", expected_exit=0)
    assert "wrote 2 findings to the baseline b.json" in written.stderr
    entries = json.loads((tmp_path / "b.json").read_text())["findings"]
    assert [(e["path"], e["code"], e["layer"]) for e in entries] == [
        ("models/seed_a_memory_network.keras", "ND601", "next_word"),
        ("models/seed_a_memory_network.keras", "ND901", "temporal_a"),
    ]
    assert run_cli("scan", "--baseline", "b.json", "models/", expected_exit=0).stdout.strip() == (
        "No findings in 1 file. 2 in the baseline."
    )

    shutil.copy(PADDING, tmp_path / "models" / PADDING.name)
    data = json.loads(run_cli("scan", "--baseline", "b.json", "models/", "--format", "json", expected_exit=1).stdout)
    found = [(file["path"], finding["code"]) for file in data["files"] for finding in file["findings"]]
    assert found == [("models/seed_d_padding_flatten.keras", "ND301"), ("models/seed_d_padding_flatten.keras", "ND303")]
    assert data["baseline"] == {"accepted": 2, "stale": []}


def test_entries_no_longer_found_are_named_as_stale_without_failing(tmp_path, monkeypatch):
    models_folder(tmp_path, monkeypatch, RELU_OUTPUT)
    run_cli("scan", "--write-baseline", "b.json", "models/", expected_exit=0)
    (tmp_path / "models" / RELU_OUTPUT.name).unlink()
    shutil.copy(FIXTURES / "clean" / "mlp.keras", tmp_path / "models")
    out = run_cli("scan", "--baseline", "b.json", "models/", expected_exit=0).stdout
    assert (
        "baseline: 2 entries no longer found" in out
        and "  models/seed_a_memory_network.keras ND601 next_word\n" in out
        and out.rstrip().endswith("No findings in 1 file. 0 in the baseline.")
    )


def test_a_baseline_that_is_not_one_is_a_usage_error(tmp_path):
    (tmp_path / "b.json").write_text('{"findings": []}')
    assert (
        "not a nandoctor baseline"
        in run_cli("scan", "--baseline", tmp_path / "b.json", RELU_OUTPUT, expected_exit=2).stderr
    )
    assert (
        "cannot read the baseline"
        in run_cli("scan", "--baseline", tmp_path / "none.json", RELU_OUTPUT, expected_exit=2).stderr
    )


def zero_rows(**changes) -> Finding:
    finding = Finding(
        "ND101",
        "zero-embedding-rows",
        Severity.INFO,
        Confidence.HIGH,
        "emb",
        "120 of 300 rows are all zero",
        "Give rows small random vectors.",
        {"count": 120, "rows": 300, "fraction": 0.4, "first_ids": [2, 3], "evidence": "certain"},
    )
    return dataclasses.replace(finding, **changes)


@given(
    message=st.text(),
    severity=st.sampled_from(list(Severity)),
    fraction=st.floats(allow_nan=False),
    evidence=st.sampled_from(["certain", "measured", "inferred", "adversarial"]),
)
def test_the_fingerprint_ignores_wording_severity_evidence_and_floats(message, severity, fraction, evidence):
    changed = zero_rows(
        message=message, severity=severity, details={**zero_rows().details, "fraction": fraction, "evidence": evidence}
    )
    assert fingerprint(changed) == fingerprint(zero_rows())


def test_the_fingerprint_changes_with_code_layer_and_counted_facts():
    base = fingerprint(zero_rows())
    assert fingerprint(zero_rows(code="ND102")) != base
    assert fingerprint(zero_rows(layer="other")) != base
    assert fingerprint(zero_rows(details={**zero_rows().details, "count": 121})) != base
    assert fingerprint(zero_rows(details={**zero_rows().details, "first_ids": [2, 4]})) != base


def test_each_entry_accepts_one_finding_so_a_second_identical_fault_is_new():
    report = Report([FileResult("a.keras", "keras", FileStatus.SCANNED, findings=[zero_rows(), zero_rows()])])
    entry = BaselineEntry("a.keras", "ND101", "emb", fingerprint(zero_rows()))
    outcome = apply_baseline(report, [entry])
    assert (outcome.accepted, len(outcome.report.findings), outcome.stale) == (1, 1, [])


def test_entries_of_an_unreadable_file_are_neither_used_nor_stale():
    report = Report([FileResult("a.keras", "keras", FileStatus.ERROR, "truncated")])
    outcome = apply_baseline(report, [BaselineEntry("a.keras", "ND101", "emb", fingerprint(zero_rows()))])
    assert outcome.stale == [] and report.exit_code() == 2
