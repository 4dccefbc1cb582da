import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nandoctor.layers import MaskedEmbedding, TiedEmbedding
from tests.layers.layer_test_case import run_layer_test

# Backend-neutral: `make test` runs these again under KERAS_BACKEND=jax.
pytestmark = pytest.mark.every_backend

VOCAB, DIM = 12, 4
ids = hnp.arrays(np.int32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=7), elements=st.integers(0, VOCAB - 1))


@settings(max_examples=60, deadline=None)
@given(ids, st.integers(0, VOCAB - 1))
def test_masked_embedding_output_is_exactly_zero_at_padding_for_any_ids(tokens, mask_id):
    layer = MaskedEmbedding(VOCAB, DIM, mask_id=mask_id, embeddings_initializer="ones")
    vectors = keras.ops.convert_to_numpy(layer(tokens))
    assert (vectors[tokens == mask_id] == 0).all()
    assert (vectors[tokens != mask_id] == 1).all()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.compute_mask(tokens)), tokens != mask_id)


def padded_documents(rng, count=32, length=10):
    tokens = rng.integers(1, VOCAB, size=(count, length)).astype("int32")
    for row, keep in enumerate(rng.integers(2, length, size=count)):
        tokens[row, keep:] = 0
    return tokens


def test_the_padding_row_stays_zero_through_training(keras_seed):
    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [
            keras.Input((10,), dtype="int32"),
            MaskedEmbedding(VOCAB, DIM, name="emb"),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    table_before = model.get_layer("emb").get_weights()[0].copy()
    assert (table_before[0] == 0).all()
    model.fit(padded_documents(rng), rng.normal(size=(32, 1)), epochs=3, verbose=0)
    table_after = model.get_layer("emb").get_weights()[0]
    assert (table_after[0] == 0).all()
    assert not np.array_equal(table_after[1:], table_before[1:])


def test_pretrained_weights_are_taken_as_given_except_the_padding_row():
    """`weights=` is how gensim tables reach an Embedding (field report C)."""
    table = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    layer = MaskedEmbedding(6, 3, weights=[table], mask_id=2)
    np.testing.assert_array_equal(layer.get_weights()[0][[0, 1, 3, 4, 5]], table[[0, 1, 3, 4, 5]])
    np.testing.assert_array_equal(layer.get_weights()[0][2], 0.0)


def test_masked_embedding_contract(tmp_path):
    run_layer_test(
        MaskedEmbedding,
        {"input_dim": VOCAB, "output_dim": DIM},
        padded_documents(np.random.default_rng(1), 4),
        (4, 10, DIM),
        1,
        tmp_path,
    )


def test_masked_embedding_refuses_mask_zero_and_bad_ids():
    with pytest.raises(ValueError, match="Received: mask_zero=True"):
        MaskedEmbedding(VOCAB, DIM, mask_zero=True)
    with pytest.raises(ValueError, match="Received: mask_id=12"):
        MaskedEmbedding(VOCAB, DIM, mask_id=12)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float32, (3, DIM), elements=st.floats(-10, 10, width=32)))
def test_tied_reverse_projection_is_x_times_the_transposed_table(hidden):
    layer = TiedEmbedding(VOCAB, DIM)
    layer.build()
    table = keras.ops.convert_to_numpy(layer.embeddings)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(hidden, reverse=True)), hidden @ table.T, rtol=1e-5, atol=1e-5
    )


def tied_language_model():
    tokens = keras.Input((6,), dtype="int32")
    embedding = TiedEmbedding(VOCAB, DIM, name="tied")
    logits = embedding(keras.layers.Dense(DIM, name="mix")(embedding(tokens)), reverse=True)
    model = keras.Model(tokens, logits)
    model.compile(
        optimizer=keras.optimizers.Adam(0.05), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


def still_tied(model) -> bool:
    layer = model.get_layer("tied")
    hidden = np.random.default_rng(2).normal(size=(2, DIM)).astype("float32")
    table = keras.ops.convert_to_numpy(layer.embeddings)
    projected = keras.ops.convert_to_numpy(layer(hidden, reverse=True))
    return len(layer.weights) == 1 and np.allclose(projected, hidden @ table.T, atol=1e-5)


def test_a_tied_model_reloads_tied_and_stays_tied_after_training(tmp_path, keras_seed):
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, VOCAB, size=(16, 6)), rng.integers(0, VOCAB, size=(16, 6))
    model = tied_language_model()
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "tied.keras")
    reloaded = keras.models.load_model(tmp_path / "tied.keras")
    np.testing.assert_array_equal(reloaded.get_layer("tied").get_weights()[0], model.get_layer("tied").get_weights()[0])
    before = reloaded.get_layer("tied").get_weights()[0].copy()
    reloaded.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(before, reloaded.get_layer("tied").get_weights()[0])
    assert still_tied(reloaded)


def test_the_saved_file_stores_the_tied_matrix_once(tmp_path):
    import nandoctor.loaders

    tied_language_model().save(tmp_path / "tied.keras")
    with nandoctor.loaders.load(str(tmp_path / "tied.keras")) as view:
        assert [w.name for w in view.layer("tied").weights] == ["embeddings"]


def test_tied_embedding_contract(tmp_path):
    run_layer_test(
        TiedEmbedding,
        {"input_dim": VOCAB, "output_dim": DIM},
        np.random.default_rng(4).integers(0, VOCAB, size=(4, 5)).astype("int32"),
        (4, 5, DIM),
        1,
        tmp_path,
    )


def test_tied_embedding_refuses_to_untie():
    with pytest.raises(ValueError, match="tie_weights=False"):
        TiedEmbedding(VOCAB, DIM, tie_weights=False)
