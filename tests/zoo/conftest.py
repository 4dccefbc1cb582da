"""The zoo, built once into a cache and shared by every zoo test (and every later run of them).

The cache key is the zoo's source, what it builds from in nandoctor (the reference layers, and
the rule pages whose `Use instead` it saves), and the versions of the packages that write its
files: editing any of them or upgrading Keras rebuilds it; nothing else does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import ROOT

ZOO_SOURCE = ROOT / "fixtures" / "zoo"
CACHE = Path(os.environ.get("NANDOCTOR_ZOO_CACHE", ROOT / ".cache" / "zoo"))


BUILT_FROM = [ZOO_SOURCE, ROOT / "nandoctor" / "layers", ROOT / "nandoctor" / "rules", ROOT / "nandoctor" / "live"]


def cache_key() -> str:
    digest = hashlib.sha256()
    for path in sorted(path for folder in BUILT_FROM for path in folder.rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + path.read_bytes())
    for package in ("keras", "keras-hub", "tf-keras", "tensorflow"):
        digest.update(f"{package}=={metadata.version(package)}".encode())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def zoo_dir() -> Path:
    built = CACHE / cache_key()
    if not (built / "manifest.json").exists():
        partial = built.with_name(built.name + f".partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(
            [sys.executable, str(ZOO_SOURCE / "build.py"), str(partial)],
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=ROOT,
        )
        try:
            partial.rename(built)  # atomic: a second worker that built it too keeps the first
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
    return built


@pytest.fixture(scope="session")
def manifest(zoo_dir) -> dict:
    return {entry["id"]: entry for entry in json.loads((zoo_dir / "manifest.json").read_text())["models"]}
