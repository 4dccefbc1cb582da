"""Shared test helpers. Tests pin NO_COLOR and COLUMNS so rendered text is stable."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["NO_COLOR"] = "1"
os.environ["COLUMNS"] = "80"

from pathlib import Path

import pytest
from click.testing import CliRunner

from nandoctor.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture(scope="session")
def keras():
    import keras

    keras.utils.set_random_seed(0)
    return keras


@pytest.fixture(scope="session")
def tf_keras():
    import tf_keras

    return tf_keras


@pytest.fixture
def save(tmp_path):
    """`save(model, "name.keras")` saves a real Keras model and returns its path as str."""

    def _save(model, name: str) -> str:
        path = tmp_path / name
        if name.endswith(".weights.h5") or name.endswith("_weights.h5"):
            model.save_weights(path)
        else:
            model.save(path)
        return str(path)

    return _save


def run_cli(*args: str, expected_exit: int | None = None):
    """Invoke `nandoctor` in-process; assert the exit code when one is expected."""
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    if expected_exit is not None:
        assert result.exit_code == expected_exit, (result.exit_code, result.stdout, result.stderr)
    return result


def codes(report) -> list[str]:
    return sorted(finding.code for finding in report.findings)


@pytest.fixture
def keras_seed(keras):
    """Seeds Keras, numpy and Python for a test that trains."""
    keras.utils.set_random_seed(0)


pytest_plugins = ["pytester"]
