"""The NaN probe meets the input that breaks a model and confirms the graph check's suspicion."""

import keras
import numpy as np
import pytest

import nandoctor


def cosine_model(function=None):
    table = np.random.default_rng(0).normal(size=(30, 4)).astype("float32")
    table[5:15] = 0.0  # words missing from the pretrained table
    query, candidate = keras.Input((1,), dtype="int32"), keras.Input((1,), dtype="int32")
    embed, flat = keras.layers.Embedding(30, 4, weights=[table], name="emb"), keras.layers.Flatten()
    pair = [flat(embed(query)), flat(embed(candidate))]
    layer = keras.layers.Lambda(function, name="cos") if function else nandoctor.layers.SafeCosineSimilarity(name="cos")
    return keras.Model([query, candidate], layer(pair))


def norm(t):
    return keras.ops.sqrt(keras.ops.sum(t * t, -1))


def confirmed(model, code):
    return [f for f in nandoctor.check(model).findings if f.code == code and f.confidence == "high"]


def test_zero_rows_make_the_unguarded_cosine_nan_and_the_probe_names_its_layer():
    (finding,) = confirmed(cosine_model(lambda p: keras.ops.sum(p[0] * p[1], -1) / (norm(p[0]) * norm(p[1]))), "ND201")
    probe = finding.details["probe"]
    assert finding.layer == "cos" and probe["kind"] == "non-finite output"
    assert probe["localization"]["forward_culprit"] == "cos" and "all-zero embedding rows" in probe["recipe"]


def test_a_zero_row_against_a_real_one_gives_the_clamped_cosine_an_absurd_gradient():
    (finding,) = confirmed(
        cosine_model(lambda p: keras.ops.sum(p[0] * p[1], -1) / keras.ops.maximum(norm(p[0]) * norm(p[1]), 1e-7)),
        "ND202",
    )
    assert finding.details["probe"]["kind"] == "absurd gradient"
    assert finding.details["probe"]["recipe"].startswith("a zero embedding row in input 'input_layer")


def test_safe_cosine_similarity_survives_every_recipe():
    report = nandoctor.check(cosine_model())
    assert [f.code for f in report.findings if f.code.startswith("ND2")] == []


def test_float_inputs_are_probed_with_zeros():
    features = keras.Input((4,))
    normalised = keras.layers.Lambda(lambda t: t / norm(t)[:, None], name="normalise")(features)
    model = keras.Model(features, keras.layers.Dense(2)(normalised))
    (finding,) = [f for f in nandoctor.check(model).findings if f.code == "ND201"]
    assert finding.confidence == "high" and finding.details["probe"]["recipe"] == "all-zero inputs"


def test_a_model_whose_weights_are_already_nan_is_left_to_nd102():
    from tests.conftest import FIXTURES

    model = keras.models.load_model(FIXTURES / "broken" / "diverged_checkpoint.keras")
    codes = {f.code for f in nandoctor.check(model).findings}
    assert "ND102" in codes and not codes & {"ND201", "ND202"}


def test_each_id_input_is_probed_within_the_table_it_feeds():
    """Report C's shape: a words input over a large table, an entity input over a small one
    with zero rows. Ids from one table fed to the other would be out of range."""
    rng = np.random.default_rng(0)
    word_table = rng.normal(size=(400, 4)).astype("float32")
    word_table[300:] = 0.0  # rare words, past the end of the entity table
    entity_table = rng.normal(size=(12, 4)).astype("float32")
    entity_table[3:6] = 0.0
    words, entity = keras.Input((5,), dtype="int32"), keras.Input((1,), dtype="int32")
    text = keras.layers.GlobalAveragePooling1D()(
        keras.layers.Embedding(400, 4, weights=[word_table], name="word_emb")(words)
    )
    candidate = keras.layers.Flatten()(keras.layers.Embedding(12, 4, weights=[entity_table], name="entity_emb")(entity))
    cosine = keras.layers.Lambda(lambda p: keras.ops.sum(p[0] * p[1], -1) / (norm(p[0]) * norm(p[1])), name="cos")
    (finding,) = confirmed(keras.Model([words, entity], cosine([text, candidate])), "ND201")
    assert finding.layer == "cos" and finding.details["probe"]["kind"] == "non-finite output"


@pytest.mark.every_backend
def test_zero_rows_reaching_a_root_clamped_outside_are_an_error_on_every_backend():
    """Field report C's hand-written cosine, `dot / maximum(norm_a * norm_b, eps)`, fed an entity
    table's zero rows. JAX and PyTorch make the root's gradient NaN; TensorFlow passes 0 through
    it (the clamp chose eps), and the probe measures the zero vectors reaching the root instead."""
    rng = np.random.default_rng(0)
    entity_table = rng.normal(size=(12, 4)).astype("float32")
    entity_table[3:6] = 0.0
    words, entity = keras.Input((5,), dtype="int32"), keras.Input((1,), dtype="int32")
    text = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(40, 4, name="word_emb")(words))
    text = keras.layers.Dense(4, activation="tanh")(text)
    candidate = keras.layers.Flatten()(keras.layers.Embedding(12, 4, weights=[entity_table], name="entity_emb")(entity))
    cosine = keras.layers.Lambda(
        lambda p: keras.ops.sum(p[0] * p[1], -1) / keras.ops.maximum(norm(p[0]) * norm(p[1]), 1e-3), name="cos"
    )
    findings = nandoctor.check(keras.Model([words, entity], cosine([text, candidate]))).findings
    (zero_rows,) = [f for f in findings if f.code == "ND101"]
    assert zero_rows.layer == "entity_emb" and zero_rows.severity == "error"
    assert zero_rows.details["evidence"] == "measured" and "all-zero embedding rows" in zero_rows.message
    (singular,) = [f for f in findings if f.code == "ND202"]
    assert singular.layer == "cos" and singular.severity == "error"


def test_the_root_guarded_inside_leaves_zero_rows_at_info():
    rng = np.random.default_rng(0)
    entity_table = rng.normal(size=(12, 4)).astype("float32")
    entity_table[3:6] = 0.0
    words, entity = keras.Input((5,), dtype="int32"), keras.Input((1,), dtype="int32")
    text = keras.layers.Dense(4, activation="tanh")(
        keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(40, 4, name="word_emb")(words))
    )
    candidate = keras.layers.Flatten()(keras.layers.Embedding(12, 4, weights=[entity_table], name="entity_emb")(entity))
    safe_norm = lambda t: keras.ops.sqrt(keras.ops.sum(t * t, -1) + 1e-6)  # noqa: E731
    cosine = keras.layers.Lambda(
        lambda p: keras.ops.sum(p[0] * p[1], -1) / (safe_norm(p[0]) * safe_norm(p[1])), name="cos"
    )
    findings = nandoctor.check(keras.Model([words, entity], cosine([text, candidate]))).findings
    assert [f.severity for f in findings if f.code == "ND101"] == ["info"]
    assert not [f for f in findings if f.code.startswith("ND2")]
