"""The README's install lines, each run in a fresh virtual environment from this checkout,
give what the README says they give: the scan alone without TensorFlow, check() and the
Monitor with a Keras extra, `nandoctor plot` with matplotlib. Slow (pip installs TensorFlow,
JAX and PyTorch): marked `installs`, so `-m "not installs"` leaves them out."""

from __future__ import annotations

import json
import re
import shlex
import textwrap
import tomllib

import pytest

from tests.fresh_venv import ROOT, fresh_venv, run_in

README_BLOCK = re.compile(r"<!-- install: .*? -->\n```sh\n(.*?)```", re.DOTALL)
# What each extra is for; check() and the Monitor on a live model, on the extra's backend.
LIVE_CHECK = textwrap.dedent(
    """
    import keras, numpy as np, nandoctor
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="softmax", name="single")(inputs))
    model.compile("adam", "binary_crossentropy")
    print("codes", sorted({f.code for f in nandoctor.check(model).findings}))
    monitor = nandoctor.Monitor(every_n_steps=1)
    model.fit(np.ones((8, 4), "float32"), np.ones((8, 1), "float32"), epochs=1, verbose=0, callbacks=[monitor])
    print("backend", keras.backend.backend(), "monitor", type(monitor.report).__name__)
    """
)
PRESENT = (
    "import importlib.util as u, json; "
    "print(json.dumps([m for m in ('tensorflow', 'keras', 'jax', 'torch', 'matplotlib') if u.find_spec(m)]))"
)


def install_lines() -> dict[str, str]:
    """The README's install lines by the extra each installs ('' for the base package)."""
    lines = [
        line.split("#")[0].strip()
        for line in README_BLOCK.search((ROOT / "README.md").read_text()).group(1).splitlines()
    ]
    by_extra = {}
    for line in filter(None, lines):
        target = shlex.split(line)[-1]
        by_extra[re.fullmatch(r"\.(?:\[(\w+)\])?", target).group(1) or ""] = line
    return by_extra


def test_the_readme_has_an_install_line_for_the_package_and_each_user_extra():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    users = {name for name in extras if name not in ("test", "bench")}
    assert set(install_lines()) == {"", *users}


def installed(tmp_path, extra: str):
    bin_dir = fresh_venv(tmp_path / "venv")
    done = run_in(bin_dir, install_lines()[extra], cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return bin_dir


def present(bin_dir, tmp_path) -> list[str]:
    done = run_in(bin_dir, f'python -c "{PRESENT}"', cwd=tmp_path)
    return json.loads(done.stdout)


@pytest.mark.installs
def test_pip_install_dot_gives_a_working_scan_without_tensorflow(tmp_path):
    bin_dir = installed(tmp_path, "")
    assert present(bin_dir, tmp_path) == []
    model = ROOT / "fixtures" / "broken" / "seed_a_memory_network.keras"
    done = run_in(bin_dir, f"nandoctor scan {shlex.quote(str(model))}", cwd=tmp_path)
    assert done.returncode == 1 and "ND601 error next_word" in done.stdout, done.stderr[-2000:]


@pytest.mark.installs
@pytest.mark.parametrize(
    "extra, backend, absent",
    [
        ("keras", "tensorflow", {"jax", "torch"}),
        ("jax", "jax", {"tensorflow", "torch"}),
        ("torch", "torch", {"tensorflow", "jax"}),
    ],
)
def test_each_backend_extra_gives_check_and_the_monitor(tmp_path, extra, backend, absent):
    bin_dir = installed(tmp_path, extra)
    assert not absent & set(present(bin_dir, tmp_path))
    (tmp_path / "live_check.py").write_text(LIVE_CHECK)
    done = run_in(bin_dir, "python live_check.py", cwd=tmp_path, KERAS_BACKEND=backend)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "codes ['ND601']" in done.stdout and f"backend {backend} monitor Report" in done.stdout


@pytest.mark.installs
def test_the_plot_extra_draws_a_health_log(tmp_path, keras):
    import numpy as np

    import nandoctor

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs))
    model.compile("adam", "mse")
    model.fit(
        np.ones((8, 4), "float32"),
        np.ones((8, 2), "float32"),
        epochs=2,
        verbose=0,
        callbacks=[nandoctor.Monitor(every_n_steps=1, log_dir=tmp_path / "health")],
    )
    bin_dir = installed(tmp_path, "plot")
    assert present(bin_dir, tmp_path) == ["matplotlib"]
    done = run_in(bin_dir, "nandoctor plot health -o health.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "health.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.installs
def test_the_cluster_extra_scans_on_a_local_dask_cluster_without_tensorflow(tmp_path):
    bin_dir = installed(tmp_path, "cluster")
    assert present(bin_dir, tmp_path) == []
    (tmp_path / "on_cluster.py").write_text(ON_CLUSTER.format(folder=str(ROOT / "fixtures" / "broken")))
    done = run_in(bin_dir, "python on_cluster.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["same", "as", "the", "serial", "scan"]


ON_CLUSTER = """
from distributed import Client, LocalCluster

import nandoctor
from nandoctor.cluster import scan_on_cluster

if __name__ == "__main__":
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        merged = scan_on_cluster(["{folder}"], client=client)
    serial = nandoctor.scan(["{folder}"])
    assert merged.to_dict(version="x") == serial.to_dict(version="x"), "the merged report differs"
    print("same as the serial scan")
"""
