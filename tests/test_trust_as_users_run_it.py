"""`nandoctor scan --trust` as a user runs it: the console command, from the folder that holds
the user's module, on files that may be broken."""

import os
import subprocess
import sys
import textwrap

from tests.conftest import FIXTURES, ROOT, run_cli

MODULE = textwrap.dedent(
    """
    import keras

    @keras.saving.register_keras_serializable(package="users_layers")
    class Doubling(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0
    """
)
# The `nandoctor` console script: its sys.path starts with its bin folder, not the current
# folder; `python -P` (3.11) runs the same entry point with that same path.
CONSOLE_SCRIPT = [sys.executable, "-P", "-c", "import sys; from nandoctor.cli import run; sys.exit(run())"]


def test_custom_objects_are_found_in_the_current_folder_as_python_m_finds_them(keras, tmp_path, monkeypatch):
    (tmp_path / "users_layers.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import users_layers

    inputs = keras.Input((3,))
    keras.Model(inputs, users_layers.Doubling(name="doubling")(inputs)).save(tmp_path / "m.keras")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [*CONSOLE_SCRIPT, "scan", "--trust", "--custom-objects", "users_layers", "m.keras", "--format", "json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    (result,) = json.loads(done.stdout)["files"]
    assert result["status"] == "scanned" and result["error"] is None


def test_a_file_the_static_reader_cannot_open_gets_its_reason_not_keras_s(tmp_path):
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes((FIXTURES / "clean" / "mlp.keras").read_bytes()[:3000])
    result = run_cli("scan", "--trust", truncated, expected_exit=2)
    assert result.stderr.strip() == f"nandoctor: error: {truncated}: not a valid zip archive (truncated or corrupt)"
