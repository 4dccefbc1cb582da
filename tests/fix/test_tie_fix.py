"""ND402, field report B: a tie held by a Python reference, or by a copy that drifted, is
rewritten as one TiedEmbedding; the fixed file stores the matrix once and computes the tie."""

import zipfile

import h5py
import numpy as np

import nandoctor
from tests.conftest import FIXTURES, run_cli
from tests.fix.fresh_process import predict_in_fresh_process


def stored_matrices(path) -> list[tuple[int, ...]]:
    with zipfile.ZipFile(path) as archive, h5py.File(archive.open("model.weights.h5"), "r") as weights:
        shapes = []
        weights.visititems(lambda _, item: shapes.append(item.shape) if isinstance(item, h5py.Dataset) else None)
        return shapes


def test_a_tie_held_by_reference_is_rewritten_and_computes_what_the_live_model_did(keras, tmp_path):
    from fixtures.build import seed_b_hand_written_tie

    model = seed_b_hand_written_tie()
    tokens = np.random.default_rng(0).integers(1, 200, size=(3, 8)).astype("int32")
    live = model.predict(tokens, verbose=0)  # the reference is alive here, lost in the file
    source, fixed = tmp_path / "b.keras", tmp_path / "fixed.keras"
    model.save(source)
    run_cli("fix", source, "-o", fixed, expected_exit=0)
    assert {f.code for f in nandoctor.scan(str(fixed)).findings} == set()
    assert stored_matrices(fixed).count((200, 16)) == 1
    np.testing.assert_allclose(predict_in_fresh_process(fixed, tokens, tmp_path), live, atol=1e-5)


def test_a_drifted_copy_is_dropped_and_the_embedding_projects_the_output(keras, tmp_path):
    from fixtures.build import tied_output_copy_class

    tied_output_copy_class()  # registers the copy's class, to load the original here

    source, fixed = FIXTURES / "broken" / "nd402_tie_copy_diverged.keras", tmp_path / "fixed.keras"
    run_cli("fix", source, "-o", fixed, expected_exit=0)
    assert (16, 200) in stored_matrices(source) and (16, 200) not in stored_matrices(fixed)
    original = keras.saving.load_model(source, compile=False)
    tokens = np.random.default_rng(1).integers(1, 200, size=(3, 8)).astype("int32")
    hidden = keras.Model(original.inputs, original.get_layer("gru").output).predict(tokens, verbose=0)
    table = original.get_layer("word_emb").get_weights()[0]
    np.testing.assert_allclose(predict_in_fresh_process(fixed, tokens, tmp_path), hidden @ table.T, atol=1e-5)
