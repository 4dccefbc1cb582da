"""Adding a diagnosis is one module and one catalogue line, and the scaffold writes both:
every way in (the scan, `nandoctor rules`, the docs) then knows it, with nothing else edited."""

import os
import shutil
import subprocess
import sys

import pytest

from nandoctor import scaffold
from tests.conftest import FIXTURES, ROOT


@pytest.fixture
def package_copy(tmp_path):
    shutil.copytree(ROOT / "nandoctor", tmp_path / "nandoctor", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def run_copy(root, code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=root)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    "kind, code, name, runs_on",
    [
        ("rule", "ND304", "padding-leaks-into-pooling", "file"),
        ("detector", "ND704", "stalled-learning-rate", "training"),
        ("live", "ND204", "unguarded-exp", "live"),
    ],
)
def test_a_scaffolded_diagnosis_is_known_everywhere(package_copy, kind, code, name, runs_on):
    path = scaffold.add(
        kind, code, name, catalogue=package_copy / "nandoctor" / "catalogue.py", package=package_copy / "nandoctor"
    )
    assert path.exists()
    out = run_copy(
        package_copy,
        (
            "from nandoctor.catalogue import DIAGNOSES, find\n"
            "from nandoctor.cli import main\n"
            "from nandoctor.docgen import expected_pages\n"
            f"d = find({code!r}); codes = [x.code for x in DIAGNOSES]\n"
            "assert codes == sorted(codes), codes\n"
            f"assert any(p.name == {name + '.md'!r} for p in expected_pages())\n"
            f"print(d.name, d.runs_on.value)\n"
            f"import nandoctor; r = nandoctor.scan([{str(FIXTURES / 'clean' / 'mlp.keras')!r}], select=[{code!r}])\n"
            "print(len(r.findings))\n"
        ),
    )
    assert out.split() == [name, runs_on, "0"]
    # The static scan still imports nothing of what runs a live model.
    loaded = run_copy(
        package_copy,
        f"import sys, nandoctor; nandoctor.scan([{str(FIXTURES / 'clean' / 'mlp.keras')!r}])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('nandoctor.live', 'nandoctor.monitor'))))\n",
    )
    assert loaded.strip() == "[]"


def test_the_scaffold_refuses_a_taken_code_or_a_malformed_name(package_copy):
    catalogue, package = package_copy / "nandoctor" / "catalogue.py", package_copy / "nandoctor"
    with pytest.raises(ValueError, match="in the catalogue already"):
        scaffold.add("rule", "ND101", "something-new", catalogue=catalogue, package=package)
    with pytest.raises(ValueError, match="lower-case words"):
        scaffold.add("rule", "ND399", "Bad_Name", catalogue=catalogue, package=package)
