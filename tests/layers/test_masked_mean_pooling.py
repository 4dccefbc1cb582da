"""MaskedMeanPooling averages over the unmasked steps exactly, and an all-padding row pools to
zeros where Keras's GlobalAveragePooling1D gives NaN (measured here, so the test says when Keras
changes), in float32 and in both mixed policies."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nandoctor.layers import MaskedMeanPooling
from tests.layers.layer_test_case import run_layer_test

# Backend-neutral: `make test` runs these again under KERAS_BACKEND=jax.
pytestmark = pytest.mark.every_backend

STEPS, FEATURES = 6, 3


def pooled_text_model(pooling, vocabulary=10, dtype=None):
    tokens = keras.Input((STEPS,), dtype="int32")
    x = keras.layers.Embedding(vocabulary, FEATURES, mask_zero=True, dtype=dtype, name="emb")(tokens)
    return keras.Model(tokens, pooling(x))


def padded(rows):
    return np.array([row + [0] * (STEPS - len(row)) for row in rows], "int32")


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(np.float32, (3, STEPS, FEATURES), elements=st.floats(-100, 100, width=32)),
    hnp.arrays(np.bool_, (3, STEPS)),
)
def test_equals_the_mean_of_the_unmasked_steps_and_zero_for_an_empty_row(values, mask):
    pooled = keras.ops.convert_to_numpy(MaskedMeanPooling()(values, mask=mask))
    for row in range(3):
        expected = values[row][mask[row]].mean(0) if mask[row].any() else np.zeros(FEATURES)
        np.testing.assert_allclose(pooled[row], expected, rtol=1e-5, atol=1e-4)


def test_keras_global_average_pooling_gives_nan_for_an_all_padding_row(keras_seed):
    """Keras 3.15's own layer divides by the number of unmasked steps: 0 / 0 for an empty text."""
    keras_pooled = pooled_text_model(keras.layers.GlobalAveragePooling1D()).predict(padded([[3, 4], []]), verbose=0)
    assert np.isfinite(keras_pooled[0]).all() and np.isnan(keras_pooled[1]).all()


@pytest.mark.parametrize("dtype", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_an_all_padding_row_pools_to_zeros_in_every_policy(dtype, keras_seed):
    model = pooled_text_model(MaskedMeanPooling(dtype=dtype, name="pool"), dtype=dtype)
    pooled = model.predict(padded([[3, 4], []]), verbose=0)
    assert keras.backend.standardize_dtype(pooled.dtype) == keras.DTypePolicy(dtype).compute_dtype
    assert np.asarray(pooled[1], "float32").tolist() == [0.0] * FEATURES
    table = keras.ops.convert_to_numpy(model.get_layer("emb").embeddings)
    np.testing.assert_allclose(np.asarray(pooled[0], "float32"), table[[3, 4]].mean(0), rtol=1e-2, atol=1e-3)


def test_a_float16_sum_that_would_overflow_is_taken_in_float32():
    """4000 steps of 20: the float16 sum, 80000, is beyond 65504; the mean, 20, is not."""
    values = np.full((1, 4000, 2), 20.0, np.float32)
    pooled = MaskedMeanPooling(dtype="mixed_float16")(values, mask=np.ones((1, 4000), bool))
    assert np.asarray(keras.ops.convert_to_numpy(pooled), "float32").tolist() == [[20.0, 20.0]]


def test_a_model_with_empty_texts_trains(keras_seed):
    model = keras.Sequential([pooled_text_model(MaskedMeanPooling()), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    tokens = padded([[1, 2, 3], [], [4], [], [5, 6, 7, 8, 9, 1], [2, 2]] * 4)
    history = model.fit(tokens, np.linspace(-1, 1, len(tokens)), epochs=5, verbose=0)
    assert np.isfinite(history.history["loss"]).all() and history.history["loss"][-1] < history.history["loss"][0]
    table = model.layers[0].get_layer("emb").embeddings
    assert np.isfinite(keras.ops.convert_to_numpy(table)).all()


def test_without_a_mask_it_is_the_plain_mean():
    values = np.random.default_rng(0).normal(size=(2, STEPS, FEATURES)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(MaskedMeanPooling()(values)), values.mean(1), rtol=1e-5)


def test_masked_mean_pooling_contract(tmp_path):
    values = np.random.default_rng(1).normal(size=(4, STEPS, FEATURES)).astype("float32")
    run_layer_test(MaskedMeanPooling, {}, values, (4, FEATURES), 0, tmp_path)
    run_layer_test(MaskedMeanPooling, {"keepdims": True}, values, (4, 1, FEATURES), 0, tmp_path)
