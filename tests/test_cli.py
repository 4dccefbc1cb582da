import json

import pytest

from nandoctor.catalogue import DIAGNOSES
from tests.conftest import FIXTURES, ROOT, run_cli

BROKEN = FIXTURES / "broken"
CLEAN = FIXTURES / "clean"
RELU_OUTPUT = BROKEN / "seed_a_memory_network.keras"  # ND601 error + ND901 info


def test_clean_models_exit_0(tmp_path):
    result = run_cli("scan", CLEAN, expected_exit=0)
    assert "warning" not in result.stdout and "error" not in result.stdout


def test_findings_at_or_above_fail_on_exit_1_and_below_exit_0():
    run_cli("scan", RELU_OUTPUT, expected_exit=1)
    run_cli("scan", BROKEN / "entity_tables.npz", expected_exit=0)  # ND101 info only
    run_cli("scan", BROKEN / "entity_tables.npz", "--fail-on", "info", expected_exit=1)
    run_cli("scan", RELU_OUTPUT, "--exit-zero", expected_exit=0)


def test_text_report_groups_by_file_with_code_severity_layer_message_fix_and_summary():
    out = run_cli("scan", RELU_OUTPUT, expected_exit=1).stdout
    assert out.splitlines()[0] == str(RELU_OUTPUT)
    assert "ND601 error next_word" in out and "fix: Use activation='softmax'" in out
    assert out.rstrip().endswith("Found 2 findings in 1 file: 1 error, 1 info.")


def test_json_output_follows_the_contract():
    data = json.loads(run_cli("scan", RELU_OUTPUT, "--format", "json").stdout)
    assert data["summary"] == {
        "files": 1,
        "findings": 2,
        "error": 1,
        "warning": 0,
        "info": 1,
        "unreadable": 0,
        "suppressed": 0,
    }
    (file,) = data["files"]
    assert (file["format"], file["status"], file["error"]) == ("keras", "scanned", None)
    assert {f["code"] for f in file["findings"]} == {"ND601", "ND901"}


def test_sarif_output_has_the_2_1_0_structure():
    sarif = json.loads(run_cli("scan", RELU_OUTPUT, "--format", "sarif").stdout)
    assert sarif["version"] == "2.1.0" and "sarif-2.1.0" in sarif["$schema"]
    run = sarif["runs"][0]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    # The rules that fired, each result pointing at its own.
    assert rule_ids == sorted({r["ruleId"] for r in run["results"]}) and "ND601" in rule_ids
    assert all(rule_ids[r["ruleIndex"]] == r["ruleId"] for r in run["results"])
    result = next(r for r in run["results"] if r["ruleId"] == "ND601")
    assert result["level"] == "error" and result["message"]["text"]
    assert result["locations"][0]["logicalLocations"][0]["name"] == "next_word"
    assert rule_ids[result["ruleIndex"]] == "ND601"


def test_output_option_writes_the_report_to_a_file(tmp_path):
    target = tmp_path / "report.json"
    result = run_cli("scan", RELU_OUTPUT, "--format", "json", "-o", target, expected_exit=1)
    assert result.stdout == "" and json.loads(target.read_text())["summary"]["findings"] == 2


@pytest.mark.parametrize(
    "selector, expected",
    [
        ("ND601", {"ND601"}),
        ("ND9", {"ND901"}),
        ("opaque-code", {"ND901"}),
        ("ND1,ND6", {"ND601"}),
    ],
)
def test_select_by_code_family_or_name(selector, expected):
    data = json.loads(run_cli("scan", RELU_OUTPUT, "--format", "json", "--select", selector).stdout)
    assert {f["code"] for f in data["files"][0]["findings"]} == expected


def test_ignore_removes_rules():
    run_cli("scan", RELU_OUTPUT, "--ignore", "ND6", expected_exit=0)


def test_unknown_selector_is_a_usage_error():
    result = run_cli("scan", RELU_OUTPUT, "--select", "ND999", expected_exit=2)
    assert "Received: 'ND999'" in result.stderr


def test_quiet_drops_the_summary():
    out = run_cli("scan", RELU_OUTPUT, "--quiet").stdout
    assert "Found" not in out and "ND601" in out


def test_settings_come_from_pyproject(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.nandoctor]\nignore = ["ND601"]\nfail-on = "info"\n')
    monkeypatch.chdir(tmp_path)
    result = run_cli("scan", RELU_OUTPUT, "--format", "json", expected_exit=1)  # ND901 info fails on info
    assert {f["code"] for f in json.loads(result.stdout)["files"][0]["findings"]} == {"ND901"}
    run_cli("scan", RELU_OUTPUT, "--fail-on", "warning", expected_exit=0)  # the flag wins


def test_bad_settings_are_a_usage_error(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.nandoctor]\nselekt = ["ND1"]\n')
    monkeypatch.chdir(tmp_path)
    assert "Received: selekt" in run_cli("scan", RELU_OUTPUT, expected_exit=2).stderr


def test_rules_lists_every_rule():
    out = run_cli("rules", expected_exit=0).stdout
    for rule in DIAGNOSES:
        assert rule.code in out and rule.name in out
    assert "training" in out and "live" in out and "file" in out


def test_rule_prints_the_same_page_as_the_docs():
    from nandoctor.docgen import DOCS

    out = run_cli("rule", "ND101", expected_exit=0).stdout
    assert out.startswith("# zero-embedding-rows (ND101)")
    assert out in (DOCS / "zero-embedding-rows.md").read_text()
    run_cli("rule", "ND999", expected_exit=2)


def test_github_format_writes_one_annotation_per_finding_escaped():
    out = run_cli("scan", RELU_OUTPUT, BROKEN / "entity_tables.npz", "--format", "github", expected_exit=1).stdout
    lines = out.splitlines()
    assert len(lines) == 3  # ND601 and one ND901 (two layers of one class), ND101 of the npz
    assert lines[0].startswith(
        f"::error file={RELU_OUTPUT.as_posix()},title=ND601 loss-activation-mismatch (next_word)::"
    )
    assert any(line.startswith("::notice ") and "(20.0%25)" in line for line in lines)  # % escaped


def test_github_format_reports_an_unreadable_file(tmp_path):
    out = run_cli("scan", tmp_path / "missing.keras", "--format", "github", expected_exit=2).stdout
    assert out.startswith("::error file=") and "unreadable file::no such file" in out


def test_scan_help_names_every_format_family_of_the_table():
    from nandoctor.loaders import FORMATS

    # Without spaces: the help wraps where it likes, inside "tf-checkpoint" too.
    help_text = "".join(run_cli("scan", "--help", expected_exit=0).stdout.split())
    for format_ in FORMATS:
        assert f"{format_.name}(" in help_text, format_.name
        for suffix in format_.suffixes:
            assert suffix in help_text, suffix


def test_the_pre_commit_hook_takes_exactly_the_suffixes_the_table_walks():
    import re

    import yaml

    from nandoctor.loaders import FORMATS, MODEL_SUFFIXES

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    generated = r"(?i)\.(" + "|".join(sorted({re.escape(suffix[1:]) for suffix in MODEL_SUFFIXES})) + ")$"
    assert hook["files"] == generated
    for format_ in FORMATS:
        for suffix in format_.suffixes:
            taken = re.search(hook["files"], f"models/model{suffix.upper()}") is not None
            assert taken == format_.walked, suffix


def test_statistics_count_each_code_most_frequent_first():
    out = run_cli(
        "scan",
        RELU_OUTPUT,
        BROKEN / "entity_tables.npz",
        BROKEN / "seed_c_zero_rows_cosine.keras",
        "--statistics",
        "--select",
        "ND1,ND6",
        expected_exit=1,
    ).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["3", "ND101", "zero-embedding-rows", "3", "info", "in", "2", "files"]
    assert lines[1].split()[:3] == ["1", "ND601", "loss-activation-mismatch"]
    assert lines[-1] == "Found 4 findings in 3 files: 1 error, 3 info."


def test_statistics_in_json_add_the_counts_to_the_report_object():
    data = json.loads(run_cli("scan", RELU_OUTPUT, "--statistics", "--format", "json").stdout)
    assert data["summary"]["findings"] == 2 and len(data["files"][0]["findings"]) == 2
    assert {row["code"]: (row["count"], row["error"], row["info"], row["files"]) for row in data["statistics"]} == {
        "ND601": (1, 1, 0, 1),
        "ND901": (1, 0, 1, 1),
    }
    assert (
        "--statistics prints text or json"
        in run_cli("scan", RELU_OUTPUT, "--statistics", "--format", "sarif", expected_exit=2).stderr
    )


def test_junit_has_a_failure_per_finding_at_fail_on_and_an_error_per_unreadable_file(tmp_path):
    import xml.etree.ElementTree as ET

    missing = tmp_path / "missing.keras"
    out = run_cli("scan", RELU_OUTPUT, CLEAN / "mlp.keras", missing, "--format", "junit", expected_exit=2).stdout
    suites = ET.fromstring(out)
    assert (suites.get("tests"), suites.get("failures"), suites.get("errors")) == ("4", "1", "1")
    by_file = {suite.get("name"): suite for suite in suites}
    cases = {case.get("name"): case for case in by_file[str(RELU_OUTPUT)]}
    assert cases["ND601 loss-activation-mismatch"].find("failure").get("type") == "error"
    assert cases["ND601 loss-activation-mismatch"].get("classname") == f"{RELU_OUTPUT}::next_word"
    assert cases["ND901 opaque-code"].find("failure") is None  # info, below --fail-on warning: passes
    assert [case.get("name") for case in by_file[str(CLEAN / "mlp.keras")]] == ["no findings"]
    assert by_file[str(missing)].find("testcase/error").get("message") == "no such file or directory"
    info_fails = ET.fromstring(run_cli("scan", RELU_OUTPUT, "--format", "junit", "--fail-on", "info").stdout)
    assert info_fails.get("failures") == "2"
