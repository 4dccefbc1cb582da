"""Field report C, fixed in the file: its gensim tables' zero rows given random vectors,
the hand-written cosine left as it was, and the example's own training check passes."""

import argparse
import time

import numpy as np

from nandoctor.fix.runner import fix


def test_the_fixed_tables_train_without_nan_under_the_hand_written_cosine(keras, keras_seed, tmp_path):
    from examples.c_cosine import broken, ranking

    inputs, word_table, entity_table = ranking.dataset()
    source, fixed = tmp_path / "c.keras", tmp_path / "fixed.keras"
    broken.ranking_model(word_table, entity_table).save(source)
    (result,) = fix(str(source), output=str(fixed), select=["ND101"]).files
    assert {f.layer for f in result.fixed} == {"word_emb", "entity_emb"} and not result.findings
    args = argparse.Namespace(quick=True, out=tmp_path, started=time.monotonic())
    runs = {}
    for name, path in (("as saved", source), ("fixed", fixed)):
        model = keras.saving.load_model(
            path,
            compile=False,
            safe_mode=False,
            custom_objects={"hand_written_cosine": broken.hand_written_cosine, "max_margin": ranking.max_margin},
        )
        model.compile(optimizer="adam", loss=ranking.output_is_the_loss)
        runs[name] = ranking.train(args, name.replace(" ", "_"), model, inputs)
    assert not runs["as saved"]["weights_finite_at_end"]
    assert runs["fixed"]["weights_finite_at_end"] and np.isfinite(runs["fixed"]["loss"]).all()
