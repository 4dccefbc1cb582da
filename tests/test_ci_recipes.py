"""The recipes of docs/ci.md are well formed, and the commands they run work on real files."""

import re
import shlex

import pytest
import yaml

from tests.conftest import FIXTURES, ROOT, run_cli


def recipe(name: str) -> dict:
    text = (ROOT / "docs" / "ci.md").read_text()
    match = re.search(rf"<!-- recipe: {name} -->\n```yaml\n(.*?)```", text, re.DOTALL)
    return yaml.safe_load(match.group(1))


def test_the_github_workflow_uploads_sarif_to_code_scanning():
    workflow = recipe("github-actions")
    assert workflow.get(True, workflow.get("on")) == ["push", "pull_request"]  # YAML 1.1 reads `on` as True
    assert workflow["permissions"]["security-events"] == "write"
    steps = workflow["jobs"]["scan-models"]["steps"]
    upload = next(step for step in steps if step.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    assert upload["if"] == "always()" and upload["with"]["sarif_file"] == "nandoctor.sarif"
    scans = [step["run"] for step in steps if step.get("run", "").startswith("nandoctor scan")]
    assert any("--format sarif --output nandoctor.sarif" in run for run in scans)


@pytest.mark.parametrize("expected_exit, folder", [(1, "broken"), (0, "clean")])
def test_the_workflow_scan_commands_run(tmp_path, monkeypatch, expected_exit, folder):
    monkeypatch.chdir(tmp_path)
    steps = recipe("github-actions")["jobs"]["scan-models"]["steps"]
    for run in (step["run"] for step in steps if step.get("run", "").startswith("nandoctor scan")):
        args = [str(FIXTURES / folder) if arg == "models/" else arg for arg in shlex.split(run)[1:]]
        exit_zero = "--exit-zero" in args
        run_cli(*args, expected_exit=0 if exit_zero else expected_exit)
    assert (tmp_path / "nandoctor.sarif").exists()


def test_the_pre_commit_recipe_names_the_hook_this_repository_defines():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    config = recipe("pre-commit")
    assert config["repos"][0]["hooks"][0]["id"] == hooks[0]["id"] == "nandoctor-scan"
    assert re.search(hooks[0]["files"], "models/a.keras") and not re.search(hooks[0]["files"], "notes.txt")


def test_the_gitlab_job_keeps_the_report():
    job = recipe("gitlab-ci")["nandoctor"]
    assert job["artifacts"]["when"] == "always" and "nandoctor.json" in job["artifacts"]["paths"]
