"""A quick run (`--quick`, what the tests and a curious user run) writes to a scratch folder
git ignores, never over the committed results of the full runs that the docs quote."""

import hashlib
import os
import subprocess
import sys

import pytest

from examples import runner
from tests.conftest import ROOT

SCRIPTS = sorted(path for path in (ROOT / "examples").glob("*/*.py") if "runner.arguments(" in path.read_text())


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: f"{path.parent.name}.{path.stem}")
def test_a_quick_run_writes_under_the_ignored_cache_and_a_full_run_to_results(script):
    quick = runner.arguments(str(script), "doc", ["--quick"]).out
    assert quick == ROOT / ".cache" / "examples" / script.parent.name
    ignored = subprocess.run(["git", "check-ignore", "-q", str(quick / "broken.json")], cwd=ROOT)
    assert ignored.returncode == 0
    assert runner.arguments(str(script), "doc", []).out == script.parent / "results"


def digests(folder):
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.iterdir() if path.is_file()}


def test_a_quick_run_as_a_user_types_it_leaves_the_committed_results_as_they_were():
    results = ROOT / "examples" / "c_cosine" / "results"
    before = digests(results)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-m", "examples.c_cosine.broken", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert digests(results) == before
    assert f"results: {ROOT / '.cache' / 'examples' / 'c_cosine' / 'broken.json'}" in done.stderr
