"""The static scan never runs code stored in a model, never unpickles or unmarshals, and
never imports TensorFlow or Keras. Checked in fresh processes, as a user runs it."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

# Runs the CLI's scan in this process after installing an audit hook that records every
# unmarshalling and unpickling not done by Python's own import system.
SCAN_UNDER_AUDIT = textwrap.dedent(
    """
    import sys

    def hook(event, args):
        if event in ("marshal.loads", "marshal.load", "pickle.find_class"):
            caller = sys._getframe(1).f_code.co_filename
            if not caller.startswith("<frozen importlib"):
                print("AUDIT", event, caller, file=sys.stderr)

    sys.addaudithook(hook)
    from nandoctor.cli import main
    try:
        main(sys.argv[1:], prog_name="nandoctor")
    finally:
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
        print("IMPORTED", leaked, file=sys.stderr)
    """
)


def scan_in_fresh_process(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCAN_UNDER_AUDIT, "scan", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def hostile_models(keras, tmp_path):
    """A .keras and an .h5 whose Lambda creates a marker file when it runs."""
    marker = tmp_path / "pwned"
    payload = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Lambda(payload, name="payload")(inputs)))
    paths = [tmp_path / "hostile.keras", tmp_path / "hostile.h5"]
    for path in paths:
        model.save(path)
    marker.unlink()  # building the model ran the lambda once
    return marker, paths


def test_scanning_hostile_files_runs_nothing_and_imports_no_framework(hostile_models):
    marker, paths = hostile_models
    result = scan_in_fresh_process(*paths, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert "AUDIT" not in result.stderr
    assert "IMPORTED []" in result.stderr
    assert result.stdout.count('"ND901"') == 2  # the Lambda is named, never run


def test_fixing_hostile_files_runs_nothing_and_imports_no_framework(keras, tmp_path):
    """`nandoctor fix` rewrites the file as the scan reads it: never through Keras."""
    marker = tmp_path / "pwned"
    payload = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")
    table = np.random.default_rng(0).normal(size=(30, 4)).astype("float32")
    table[5:9] = 0.0
    tokens = keras.Input((3,), dtype="int32")
    embedded = keras.layers.Embedding(30, 4, weights=[table], name="emb")(tokens)
    model = keras.Model(tokens, keras.layers.Lambda(payload, name="payload")(embedded))
    paths = [tmp_path / "hostile.keras", tmp_path / "hostile.h5"]
    for path in paths:
        model.save(path)
    marker.unlink()
    out = tmp_path / "fixed"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", SCAN_UNDER_AUDIT, "fix", *map(str, paths), "-o", str(out), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert not marker.exists() and "AUDIT" not in result.stderr and "IMPORTED []" in result.stderr
    assert result.stdout.count('"safety": "safe"') == 2 and sorted(p.name for p in out.iterdir()) == [
        "hostile.h5",
        "hostile.keras",
    ]


def test_the_hostile_files_would_run_code_if_loaded(hostile_models):
    """The control: Keras with safe_mode off runs the payload, so the test above can fail."""
    marker, paths = hostile_models
    loader = "import keras, sys; keras.config.enable_unsafe_deserialization(); keras.models.load_model(sys.argv[1])"
    subprocess.run([sys.executable, "-c", loader, str(paths[0])], check=True, capture_output=True, timeout=300)
    assert marker.exists()


def test_every_fixture_scans_with_no_unmarshalling_and_no_framework(tmp_path):
    from tests.conftest import FIXTURES

    result = scan_in_fresh_process(FIXTURES, "--exit-zero")
    assert result.returncode == 0, result.stderr
    assert "AUDIT" not in result.stderr and "IMPORTED []" in result.stderr


def test_the_audit_hook_does_see_unmarshalling():
    """The hook is not blind: a marshal.loads outside the import system is reported."""
    probe = SCAN_UNDER_AUDIT.replace(
        "from nandoctor.cli import main",
        "import marshal; marshal.loads(marshal.dumps(1))\nfrom nandoctor.cli import main",
    )
    result = subprocess.run([sys.executable, "-c", probe, "rules"], capture_output=True, text=True, timeout=60)
    assert "AUDIT marshal.loads" in result.stderr
