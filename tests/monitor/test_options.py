"""The Monitor's detectors take their options, select and ignore from the caller and from the
project's `[tool.nandoctor]`, as the scan does; each is proven by what a diverging run reports."""

import keras
import pytest

from nandoctor.monitor import Monitor
from tests.monitor.divergences import DIVERGENCES

# Backend-neutral: `make test` runs these again under KERAS_BACKEND=jax.
pytestmark = pytest.mark.every_backend

QUIET_ND703 = {"max_update_ratio": 1e9, "max_growth": 1e9}


def codes(monitor: Monitor, name: str = "learning_rate_overflow") -> set[str]:
    keras.utils.set_random_seed(0)
    model, x, y, batch_size, epochs = DIVERGENCES[name]()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0, callbacks=[monitor])
    return {finding.code for finding in monitor.report.findings}


def project(folder, monkeypatch, table: str) -> None:
    (folder / "pyproject.toml").write_text(table)
    monkeypatch.chdir(folder)


def test_options_by_code_or_name_reach_the_detectors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no project settings
    assert codes(Monitor(verbose=0)) == {"ND702", "ND703"}
    assert codes(Monitor(verbose=0, options={"exploding-updates": QUIET_ND703})) == {"ND702"}
    assert codes(Monitor(verbose=0, options={"ND703": QUIET_ND703})) == {"ND702"}


def test_options_from_the_project_and_the_callers_own_over_them(tmp_path, monkeypatch):
    project(tmp_path, monkeypatch, "[tool.nandoctor.options.ND703]\nmax_update_ratio = 1e9\nmax_growth = 1e9\n")
    assert codes(Monitor(verbose=0)) == {"ND702"}
    caller = {"exploding-updates": {"max_update_ratio": 2.0, "max_growth": 10.0}}
    assert codes(Monitor(verbose=0, options=caller)) == {"ND702", "ND703"}


def test_select_and_ignore_from_the_project_and_the_caller(tmp_path, monkeypatch):
    project(tmp_path, monkeypatch, '[tool.nandoctor]\nselect = ["ND7"]\nignore = ["exploding-updates"]\n')
    assert codes(Monitor(verbose=0)) == {"ND702"}
    assert codes(Monitor(verbose=0, select=["ND703"])) == set()  # the project's ignore still holds
    assert codes(Monitor(verbose=0, ignore="ND702")) == set()


def test_unknown_options_are_refused_with_the_accepted_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"Expected one of: collapse_ratio, min_drop, window\. Received: windw"):
        Monitor(options={"ND701": {"windw": 50}})
    with pytest.raises(ValueError, match=r"must be int, like its default 8\. Received: window='50'"):
        Monitor(options={"shrinking-weights": {"window": "50"}})
    project(tmp_path, monkeypatch, "[tool.nandoctor.options.ND799]\nwindow = 5\n")
    with pytest.raises(ValueError, match=r"unknown rule.*'ND799'"):
        Monitor()
