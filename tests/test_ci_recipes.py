"""The recipes of docs/ci.md are well formed, and the commands they run work on real files."""

import contextlib
import re
import shlex

import pytest
import yaml

from tests.conftest import FIXTURES, ROOT, run_cli
from tests.fresh_venv import checkout_build_lock


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


def test_the_gitlab_job_keeps_the_report_and_gives_junit_to_the_test_report():
    job = recipe("gitlab-ci")["nandoctor"]
    assert job["artifacts"]["when"] == "always" and "nandoctor.json" in job["artifacts"]["paths"]
    assert job["artifacts"]["reports"]["junit"] == "nandoctor.xml"
    # GitLab stops at the first failing line: only the last scan may fail.
    assert all("--exit-zero" in line for line in job["script"][1:-1])


def action() -> dict:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def test_the_action_is_composite_and_writes_the_sarif_file_it_names():
    definition = action()
    assert definition["runs"]["using"] == "composite"
    assert all(step["shell"] == "bash" for step in definition["runs"]["steps"])  # composite run steps need one
    assert definition["outputs"]["sarif-file"]["value"] == "${{ inputs.sarif-file }}"
    assert set(definition["inputs"]) == {"paths", "fail-on", "args", "sarif-file"}
    install = definition["runs"]["steps"][0]["run"]
    assert '"$GITHUB_ACTION_PATH"' in install  # nandoctor from the action's own folder


def test_the_action_recipe_uses_the_action_and_uploads_its_sarif():
    workflow = recipe("github-action")
    assert workflow["permissions"]["security-events"] == "write"
    steps = workflow["jobs"]["scan-models"]["steps"]
    (scan,) = [step for step in steps if step.get("uses", "").startswith("OWNER/nandoctor@")]
    assert set(scan["with"]) <= set(action()["inputs"])
    upload = steps[steps.index(scan) + 1]
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@") and upload["if"] == "always()"
    assert upload["with"]["sarif_file"] == action()["inputs"]["sarif-file"]["default"]


@pytest.fixture(scope="module")
def fresh_runner(tmp_path_factory):
    """A fresh virtual environment, as a CI runner starts: no nandoctor, no numpy."""
    import venv

    folder = tmp_path_factory.mktemp("runner")
    venv.create(folder / "venv", with_pip=True)
    return folder / "venv" / "bin"


def run_steps(commands: list[str], bin_dir, models, cwd) -> list[int]:
    """Each recipe line in bash, as the runner would, with NANDOCTOR at this checkout and
    `models/` holding the given models; the exit code of each."""
    import os
    import shutil
    import subprocess

    shutil.copytree(models, cwd / "models")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "NANDOCTOR": str(ROOT),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.pop("PYTHONPATH", None)
    codes = []
    for command in commands:
        with checkout_build_lock() if "pip install" in command else contextlib.nullcontext():
            done = subprocess.run(
                ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
            )
        assert done.returncode in (0, 1), f"{command}: {done.stderr[-2000:]}"
        codes.append(done.returncode)
    return codes


def action_steps(inputs: dict[str, str], runner_temp) -> list[tuple[str, dict[str, str]]]:
    """The action's steps as GitHub runs them: each script, and its environment with the
    `${{ inputs.NAME }}` expressions replaced by the given inputs or their defaults."""
    definition = action()
    values = {name: inputs.get(name, spec.get("default", "")) for name, spec in definition["inputs"].items()}

    def expand(text: str) -> str:
        return re.sub(r"\$\{\{ inputs\.([a-z-]+) \}\}", lambda m: values[m.group(1)], text)

    base = {"GITHUB_ACTION_PATH": str(ROOT), "RUNNER_TEMP": str(runner_temp)}
    return [
        (step["run"], {**base, **{k: expand(v) for k, v in step.get("env", {}).items()}})
        for step in definition["runs"]["steps"]
    ]


@pytest.mark.installs
def test_the_action_runs_on_a_fresh_runner(fresh_runner, tmp_path):
    import os
    import shutil
    import subprocess

    for folder, expected_exit in (("broken", 1), ("clean", 0)):
        cwd = tmp_path / folder
        shutil.copytree(FIXTURES / folder, cwd / "models")
        exits = []
        for script, step_env in action_steps({"paths": "models/"}, tmp_path / "runner-temp"):
            env = {**os.environ, **step_env, "PATH": f"{fresh_runner}{os.pathsep}{os.environ['PATH']}"}
            env.pop("PYTHONPATH", None)
            # As GitHub runs a bash step: bash --noprofile --norc -eo pipefail
            with checkout_build_lock() if "pip install" in script else contextlib.nullcontext():
                done = subprocess.run(
                    ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                    cwd=cwd,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
            exits.append(done.returncode)
        assert exits == [0, expected_exit], done.stderr[-2000:]
        sarif = (cwd / "nandoctor.sarif").read_text()
        assert ('"ruleId": "ND301"' in sarif) == (folder == "broken")
        assert ("::warning file=models/seed_d_padding_flatten.keras" in done.stdout) == (folder == "broken")


@pytest.mark.installs
def test_the_github_workflow_runs_on_a_fresh_runner(fresh_runner, tmp_path):
    steps = recipe("github-actions")["jobs"]["scan-models"]["steps"]
    commands = [step["run"] for step in steps if "run" in step]
    assert commands[0].startswith("pip install")
    for folder, expected in (("broken", [0, 1, 0]), ("clean", [0, 0, 0])):
        cwd = tmp_path / folder
        cwd.mkdir()
        assert run_steps(commands, fresh_runner, FIXTURES / folder, cwd) == expected
        assert (cwd / "nandoctor.sarif").exists()


@pytest.mark.installs
def test_the_gitlab_job_runs_on_a_fresh_runner(fresh_runner, tmp_path):
    import json
    import xml.etree.ElementTree as ET

    job = recipe("gitlab-ci")["nandoctor"]
    assert run_steps(job["script"], fresh_runner, FIXTURES / "broken", tmp_path) == [0, 0, 1]
    report = json.loads((tmp_path / "nandoctor.json").read_text())
    assert report["summary"]["findings"] > 0
    junit = ET.parse(tmp_path / "nandoctor.xml").getroot()
    assert int(junit.get("failures")) == report["summary"]["error"] + report["summary"]["warning"]
