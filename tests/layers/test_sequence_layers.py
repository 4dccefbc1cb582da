import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nandoctor.layers import (
    CausalSelfAttention,
    MemoryHop,
    PositionEmbedding,
    SinusoidalPositionEncoding,
    TemporalEncoding,
)
from tests.layers.layer_test_case import run_layer_test

# Backend-neutral: `make test` runs these again under KERAS_BACKEND=jax.
pytestmark = pytest.mark.every_backend


def sequence(batch=2, length=5, hidden=8, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, length, hidden)).astype("float32")


def closed_form(length: int, hidden: int, wavelength: float = 10000.0) -> np.ndarray:
    """Vaswani et al. (2017), section 3.5, in float64."""
    table = np.zeros((length, hidden))
    for pos in range(length):
        for i in range(0, hidden, 2):
            angle = pos / wavelength ** (i / hidden)
            table[pos, i] = np.sin(angle)
            if i + 1 < hidden:
                table[pos, i + 1] = np.cos(angle)
    return table


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 64), st.integers(1, 33))
def test_sinusoidal_encoding_equals_the_closed_form(length, hidden):
    zeros = np.zeros((1, length, hidden), np.float32)
    encoded = keras.ops.convert_to_numpy(SinusoidalPositionEncoding()(zeros))[0]
    np.testing.assert_allclose(encoded, closed_form(length, hidden), atol=2e-5)


def test_sinusoidal_encoding_is_added_and_passes_the_mask(tmp_path):
    tokens = keras.Input((5,), dtype="int32")
    x = SinusoidalPositionEncoding()(keras.layers.Embedding(10, 8, mask_zero=True)(tokens))
    assert x._keras_mask is not None
    run_layer_test(SinusoidalPositionEncoding, {}, sequence(), (2, 5, 8), 0, tmp_path)


def test_position_embedding_adds_its_table_and_passes_the_mask(tmp_path):
    layer = run_layer_test(PositionEmbedding, {"sequence_length": 7}, sequence(), (2, 5, 8), 1, tmp_path)
    table = keras.ops.convert_to_numpy(layer.position_embeddings)
    out = keras.ops.convert_to_numpy(layer(sequence()))
    np.testing.assert_allclose(out - sequence(), np.broadcast_to(table[:5], (2, 5, 8)), atol=1e-6)
    tokens = keras.Input((5,), dtype="int32")
    assert PositionEmbedding(5)(keras.layers.Embedding(10, 8, mask_zero=True)(tokens))._keras_mask is not None


def test_position_table_starts_at_the_token_embeddings_scale():
    tokens = keras.layers.Embedding(1000, 64)
    tokens.build()
    positions = PositionEmbedding(512)
    positions.build((None, 512, 64))
    token_std = np.std(keras.ops.convert_to_numpy(tokens.embeddings))
    position_std = np.std(keras.ops.convert_to_numpy(positions.position_embeddings))
    assert 0.9 < position_std / token_std < 1.1


def test_position_embedding_refuses_inputs_longer_than_its_table():
    with pytest.raises(ValueError, match="longer than the position table"):
        PositionEmbedding(4)(sequence(length=5))


def test_temporal_encoding_is_a_position_table_per_memory_slot(tmp_path):
    layer = run_layer_test(TemporalEncoding, {"memory_size": 5}, sequence(), (2, 5, 8), 1, tmp_path)
    assert layer.get_config()["memory_size"] == 5 and "sequence_length" not in layer.get_config()


def test_memory_hop_computes_h_u_plus_the_weighted_read_out(tmp_path):
    rng = np.random.default_rng(0)
    u, m, c = rng.normal(size=(3, 4)), rng.normal(size=(3, 6, 4)), rng.normal(size=(3, 6, 4))
    u, m, c = (x.astype("float32") for x in (u, m, c))
    layer = run_layer_test(MemoryHop, {}, [u, m, c], (3, 4), 1, tmp_path)
    hidden = keras.ops.convert_to_numpy(layer.hidden_kernel)
    scores = np.einsum("bd,bsd->bs", u, m)
    relevance = np.exp(scores - scores.max(-1, keepdims=True))
    relevance /= relevance.sum(-1, keepdims=True)
    expected = u @ hidden + np.einsum("bs,bsd->bd", relevance, c)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer([u, m, c])), expected, rtol=1e-4, atol=1e-5)


def test_memory_hop_gives_padding_slots_no_relevance():
    context = keras.Input((4,), dtype="int32")
    query = keras.Input((8,))
    memory = keras.layers.Embedding(10, 8, mask_zero=True, name="memory")(context)
    model = keras.Model([context, query], MemoryHop()([query, memory, memory]))
    ids = np.array([[3, 4, 0, 0]], "int32")
    changed = ids.copy()
    embedding = model.get_layer("memory")
    before = model.predict([ids, np.ones((1, 8), "float32")], verbose=0)
    table = embedding.get_weights()[0]
    table[0] += 100.0  # the padding row's values must not matter
    embedding.set_weights([table])
    after = model.predict([changed, np.ones((1, 8), "float32")], verbose=0)
    np.testing.assert_allclose(before, after, atol=1e-5)


def causal_model(length=6, vocab=11, hidden=8):
    tokens = keras.Input((length,), dtype="int32")
    x = keras.layers.Embedding(vocab, hidden, mask_zero=True)(tokens)
    x = PositionEmbedding(length)(x)
    x = CausalSelfAttention(num_heads=2, intermediate_dim=16)(x)
    x = CausalSelfAttention(num_heads=2, intermediate_dim=16)(x)
    return keras.Model(tokens, keras.layers.Dense(vocab)(x))


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return causal_model()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 10), min_size=6, max_size=6), st.integers(0, 4), st.integers(1, 10))
def test_causal_attention_output_at_t_ignores_every_input_after_t(model, tokens, t, replacement):
    original = np.array([tokens], "int32")
    changed = original.copy()
    changed[0, t + 1 :] = (changed[0, t + 1 :] + replacement) % 10 + 1
    before, after = model.predict(original, verbose=0), model.predict(changed, verbose=0)
    np.testing.assert_allclose(before[0, : t + 1], after[0, : t + 1], atol=1e-5)


def test_causal_attention_ignores_padding_keys_in_the_past(model):
    """Left padding lies in every later position's past: the mask, not causality, hides it."""
    embedding = model.layers[1]
    padded = np.array([[0, 0, 5, 6, 7, 8]], "int32")
    before = model.predict(padded, verbose=0)
    table = embedding.get_weights()[0]
    embedding.set_weights([np.where(np.arange(len(table))[:, None] == 0, 50.0, table)])
    after = model.predict(padded, verbose=0)
    embedding.set_weights([table])
    np.testing.assert_allclose(before[0, 2:], after[0, 2:], atol=1e-4)
    assert not np.allclose(before[0, :2], after[0, :2])  # the padding positions themselves did change


def test_causal_attention_contract(tmp_path):
    # two layer norms (2 each), attention (query, key, value, output: 8), two dense (2 each)
    run_layer_test(CausalSelfAttention, {"num_heads": 2, "intermediate_dim": 16}, sequence(), (2, 5, 8), 16, tmp_path)


def test_causal_attention_refuses_heads_that_do_not_divide_the_width():
    with pytest.raises(ValueError, match="Received: hidden=8, num_heads=3"):
        CausalSelfAttention(num_heads=3, intermediate_dim=16)(sequence())


def test_causal_attention_applies_a_mask_passed_by_argument():
    """Called directly, no tensor carries a Keras mask: the `mask` argument must do the work."""
    keras.utils.set_random_seed(1)
    layer = CausalSelfAttention(num_heads=2, intermediate_dim=16)
    x = sequence(batch=1, length=6)
    mask = np.array([[False, False, True, True, True, True]])
    altered = x.copy()
    altered[0, :2] += 50.0
    before = keras.ops.convert_to_numpy(layer(x, mask=mask))
    after = keras.ops.convert_to_numpy(layer(altered, mask=mask))
    np.testing.assert_allclose(before[0, 2:], after[0, 2:], atol=1e-4)
