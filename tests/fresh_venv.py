"""Fresh virtual environments, as a user or a CI runner starts: nandoctor installed from this
checkout by the line under test, nothing of the test suite's own environment visible."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import subprocess
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fresh_venv(folder: Path) -> Path:
    """A new venv without the system's site-packages; its bin folder."""
    venv.create(folder, with_pip=True, system_site_packages=False)
    return folder / "bin"


def clean_env(bin_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a shell in which `bin_dir` comes first and nothing points at this
    checkout or at the suite's own venv."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        TF_CPP_MIN_LOG_LEVEL="3",
        **extra,
    )
    return env


@contextlib.contextmanager
def checkout_build_lock():
    """pip builds this checkout in place (its build/ folder): one build at a time, whichever
    xdist worker runs it."""
    lock_path = ROOT / ".cache" / "pip-install-from-checkout.lock"
    lock_path.parent.mkdir(exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_in(
    bin_dir: Path, command: str, cwd: Path, timeout: int = 1800, **extra_env: str
) -> subprocess.CompletedProcess:
    """`command` in bash with `bin_dir` first on the PATH; a `pip install` of the checkout
    holds the build lock."""
    env = clean_env(bin_dir, **extra_env)
    argv = ["bash", "--noprofile", "--norc", "-c", command]
    installs = shlex.split(command)[:2] == ["pip", "install"]
    with checkout_build_lock() if installs else contextlib.nullcontext():
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
