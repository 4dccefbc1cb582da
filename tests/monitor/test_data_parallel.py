"""The Monitor under keras.distribution.DataParallel on JAX, two host devices: the same
finding at the same step as on one device, and the restore lands on every replica. The
device count is fixed before JAX starts, so each run is a fresh process."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

SCRIPT = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, os.getcwd())
    import keras, numpy as np, nandoctor
    from tests.monitor.divergences import learning_rate_overflow
    devices = keras.distribution.list_devices()
    if sys.argv[1] == "data-parallel":
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    keras.utils.set_random_seed(0)
    model, x, y, batch, epochs = learning_rate_overflow()
    monitor = nandoctor.Monitor(verbose=0, on_nonfinite="stop", restore_last_good=True)
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=False, callbacks=[monitor])
    steps = sorted(f.details.get("step") for f in monitor.report.findings if f.code == "ND702")
    kernel = model.get_layer("regression").kernel.value
    replicas = len(kernel.sharding.device_set)
    finite = all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in model.weights)
    print("RESULT", len(devices), replicas, steps, monitor.restored, finite)
    """
)


def run(mode: str) -> str:
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, done.stderr[-3000:]
    return lines[0]


@pytest.mark.skipif(__import__("importlib").util.find_spec("jax") is None, reason="the jax extra is not installed")
def test_data_parallel_on_two_devices_finds_the_same_step_and_restores_every_replica():
    one_device = run("single")
    two_devices = run("data-parallel")
    assert one_device == "RESULT 2 1 [22] True True"
    assert two_devices == "RESULT 2 2 [22] True True"
