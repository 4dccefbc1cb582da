"""A model saved with nandoctor's layers reloads without custom_objects once nandoctor is
imported, before or after Keras: checked in fresh processes, as a user would load it."""

import subprocess
import sys

import keras
import pytest

from nandoctor.layers import MaskedEmbedding, SafeCosineSimilarity, TiedEmbedding

# Backend-neutral: `make test` runs these again under KERAS_BACKEND=jax.
pytestmark = pytest.mark.every_backend


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("registration") / "uses_nandoctor_layers.keras"
    tokens = keras.Input((5,), dtype="int32")
    tied = TiedEmbedding(20, 4)
    x = MaskedEmbedding(20, 4)(tokens)
    score = SafeCosineSimilarity()([x, tied(tokens)])
    keras.Model(tokens, [score, tied(x, reverse=True)]).save(path)
    return path


def load_in_fresh_process(path, imports: str) -> subprocess.CompletedProcess:
    code = f"{imports}; import keras; keras.models.load_model({str(path)!r}); print('LOADED')"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("imports", ["import nandoctor", "import keras; import nandoctor"])
def test_reloads_once_nandoctor_is_imported_in_either_order(saved_model, imports):
    result = load_in_fresh_process(saved_model, imports)
    assert "LOADED" in result.stdout, result.stderr[-2000:]


def test_without_nandoctor_the_classes_are_unknown(saved_model):
    result = load_in_fresh_process(saved_model, "pass")
    assert "LOADED" not in result.stdout and "Could not locate class 'MaskedEmbedding'" in result.stderr
