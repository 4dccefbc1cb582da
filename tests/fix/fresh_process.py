"""Loading a fixed file as a user would: in a fresh Python, with Keras (or tf_keras for a
Keras 2 file) and nandoctor's layers registered, then predicting on given inputs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

_PREDICT = textwrap.dedent(
    """
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    api, model_path, inputs_path, out_path = sys.argv[1:]
    if api == "tf_keras":
        import tf_keras as keras
        model = keras.models.load_model(model_path, compile=False)
    else:
        import keras
        import nandoctor.layers  # registers the reference layers a fix may write
        model = keras.saving.load_model(model_path, compile=False, safe_mode=False)
    inputs = np.load(inputs_path)
    np.save(out_path, np.asarray(model.predict(inputs, verbose=0)))
    """
)


def predict_in_fresh_process(model_path, inputs: np.ndarray, tmp_path: Path, api: str = "keras") -> np.ndarray:
    inputs_path, out_path = tmp_path / "inputs.npy", tmp_path / "outputs.npy"
    np.save(inputs_path, inputs)
    done = subprocess.run(
        [sys.executable, "-c", _PREDICT, api, str(model_path), str(inputs_path), str(out_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return np.load(out_path)
