"""A file `nandoctor fix` wrote nandoctor layers into loads only after `import nandoctor`:
the output says so, and says nothing when the file holds Keras's layers alone."""

import json
import os
import subprocess
import sys

from tests.conftest import FIXTURES, run_cli

PADDING = FIXTURES / "broken" / "seed_d_padding_flatten.keras"  # ND301 (unsafe fix: MaskedEmbedding), ND303


def test_the_fix_that_writes_a_nandoctor_layer_says_to_import_nandoctor_before_loading(tmp_path):
    fixed = tmp_path / "fixed.keras"
    out = run_cli("fix", PADDING, "-o", fixed, "--unsafe-fixes", expected_exit=0).stdout
    note = f"note: {fixed} holds nandoctor layers (MaskedEmbedding): import nandoctor before keras.saving.load_model"
    assert "".join(note.split()) in "".join(out.split())  # however the terminal width wrapped it
    data = json.loads(run_cli("fix", PADDING, "-o", fixed, "--unsafe-fixes", "--format", "json").stdout)
    assert any("import nandoctor before keras.saving.load_model" in note for note in data["files"][0]["notes"])

    # What the note prevents: Keras alone cannot rebuild the file.
    load = "import keras, sys; keras.saving.load_model(sys.argv[1])"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", load, str(fixed)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert done.returncode != 0 and "MaskedEmbedding" in done.stderr


def test_a_fix_that_keeps_keras_layers_says_nothing_about_imports(tmp_path):
    out = run_cli("fix", PADDING, "-o", tmp_path / "fixed.keras", expected_exit=1).stdout  # ND303 only: safe
    assert "import nandoctor" not in out
