"""Every reference layer under `mixed_float16` and `mixed_bfloat16`, the policies most Keras
fine-tuning runs in: outputs finite and in the compute dtype, the model file reloads, training
steps move the weights, and the inputs that break a layer in float16 (a zero vector under a
cosine, memories that are all padding) stay finite. The policy is set globally, as the Keras
mixed-precision guide does, and restored after each test."""

import keras
import numpy as np
import pytest

import nandoctor
from nandoctor.analysis.precision import FLOAT_FORMATS
from nandoctor.layers import (
    AuxiliaryLosses,
    AuxiliaryLossSchedule,
    CausalSelfAttention,
    MaskedEmbedding,
    MaskedMeanPooling,
    MemoryHop,
    PositionEmbedding,
    SafeCosineSimilarity,
    SafeL2Normalization,
    SinusoidalPositionEncoding,
    TemporalEncoding,
    TiedEmbedding,
)
from tests.layers.layer_test_case import run_layer_test

# Backend-neutral: `make test` runs these again under KERAS_BACKEND=jax.
pytestmark = pytest.mark.every_backend

VOCAB = 12


@pytest.fixture(params=["mixed_float16", "mixed_bfloat16"])
def policy(request):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(request.param)
    keras.utils.set_random_seed(0)
    yield keras.DTypePolicy(request.param)
    keras.config.set_dtype_policy(previous)


def sequence(batch=4, length=5, hidden=8, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, length, hidden)).astype("float32")


def token_ids(batch=4, length=10, seed=1):
    ids = np.random.default_rng(seed).integers(1, VOCAB, size=(batch, length)).astype("int32")
    ids[:, 7:] = 0  # padding
    return ids


# (class, constructor arguments, input, output shape, trainable weights): the same contracts
# the float32 tests check, run again in each mixed policy.
CONTRACTS = {
    "MaskedEmbedding": (MaskedEmbedding, {"input_dim": VOCAB, "output_dim": 4}, token_ids(), (4, 10, 4), 1),
    "TiedEmbedding": (TiedEmbedding, {"input_dim": VOCAB, "output_dim": 4}, token_ids(), (4, 10, 4), 1),
    "SafeCosineSimilarity": (
        SafeCosineSimilarity,
        {},
        [sequence(length=1, hidden=6), sequence(hidden=6, seed=1)],
        (4, 5),
        0,
    ),
    "PositionEmbedding": (PositionEmbedding, {"sequence_length": 7}, sequence(), (4, 5, 8), 1),
    "SinusoidalPositionEncoding": (SinusoidalPositionEncoding, {}, sequence(length=300), (4, 300, 8), 0),
    "TemporalEncoding": (TemporalEncoding, {"memory_size": 5}, sequence(), (4, 5, 8), 1),
    "MemoryHop": (MemoryHop, {}, [sequence()[:, 0], sequence(seed=1), sequence(seed=2)], (4, 8), 1),
    "CausalSelfAttention": (CausalSelfAttention, {"num_heads": 2, "intermediate_dim": 16}, sequence(), (4, 5, 8), 16),
    "MaskedMeanPooling": (MaskedMeanPooling, {}, sequence(), (4, 8), 0),
    "SafeL2Normalization": (SafeL2Normalization, {}, sequence(), (4, 5, 8), 0),
}


def skip_where_keras_attention_cannot_run(policy):
    """Keras 3.15's MultiHeadAttention neither predicts nor trains in float16 on JAX's CPU backend
    (XLA: "The precision 'F16_F16_F32' is not supported by dot_general on CPU"); a Dense does."""
    if keras.backend.backend() == "jax" and policy.compute_dtype == "float16":
        import jax

        if jax.default_backend() == "cpu":
            pytest.skip("Keras's MultiHeadAttention cannot run in float16 on JAX's CPU backend")


@pytest.mark.parametrize("name", CONTRACTS)
def test_layer_contract_holds_in_the_policy(name, policy, tmp_path):
    cls, kwargs, data, shape, trainable = CONTRACTS[name]
    if cls is CausalSelfAttention:
        skip_where_keras_attention_cannot_run(policy)
    layer = run_layer_test(cls, kwargs, data, shape, trainable, tmp_path)
    assert layer.compute_dtype == policy.compute_dtype and layer.variable_dtype == "float32"


@pytest.mark.parametrize("name", CONTRACTS)
def test_every_epsilon_is_resolvable_in_the_compute_dtype(name, policy, tmp_path):
    """What ND801 reports on other layers must not hold of ours: an epsilon in the config that
    the compute dtype rounds to 0, and nandoctor's own scan of the saved file agrees."""
    cls, kwargs, data, _, _ = CONTRACTS[name]
    layer = cls(**kwargs)
    layer(data)
    resolution = FLOAT_FORMATS[policy.compute_dtype]
    for key, value in layer.get_config().items():
        if "epsilon" in key and value is not None:
            assert not resolution.rounds_to_zero(value), (key, value)
    inputs = [keras.Input(x.shape[1:], dtype=str(x.dtype)) for x in (data if isinstance(data, list) else [data])]
    model = keras.Model(inputs, cls(**kwargs)(inputs if len(inputs) > 1 else inputs[0]))
    model.save(tmp_path / "model.keras")
    precision = [f for f in nandoctor.scan(tmp_path / "model.keras").findings if f.code.startswith("ND8")]
    assert precision == []


def value_and_gradient(cosine, a, b):
    """`cosine([a, b])` and the gradient of its sum with respect to `a`, on this backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        value = cosine([a, b])
        gradient = jax.grad(lambda x: keras.ops.sum(keras.ops.cast(cosine([x, b]), "float32")))(a)
        return keras.ops.convert_to_numpy(value), np.asarray(gradient)
    if backend == "torch":
        import torch

        x = torch.tensor(a, requires_grad=True)
        value = cosine([x, b])
        (gradient,) = torch.autograd.grad(keras.ops.sum(keras.ops.cast(value, "float32")), [x])
        return keras.ops.convert_to_numpy(value), gradient.numpy()
    import tensorflow as tf

    x = tf.Variable(a)
    with tf.GradientTape() as tape:
        value = cosine([x, b])
        total = tf.reduce_sum(tf.cast(value, "float32"))
    return value.numpy(), tape.gradient(total, x).numpy()


def test_a_zero_vector_scores_zero_with_a_gradient_the_compute_dtype_holds(policy):
    """Before the norms were taken in float32, epsilon**2 = 1e-12 was 0 in float16 and a zero
    vector gave NaN (value and gradient); with epsilon 1e-6 its gradient, 4e5, is beyond
    float16's 65504, so under mixed_float16 the default epsilon is 1e-4."""
    a = np.zeros((2, 6), np.float16 if policy.compute_dtype == "float16" else np.float32)
    b = np.ones((2, 6), a.dtype)
    cosine = SafeCosineSimilarity()
    value, gradient = value_and_gradient(cosine, a, b)
    assert keras.backend.standardize_dtype(value.dtype) == policy.compute_dtype
    assert np.asarray(value, "float32").tolist() == [0.0, 0.0]
    largest = float(np.max(np.abs(np.asarray(gradient, "float32"))))
    assert np.isfinite(largest) and 0 < largest <= 1.01 / cosine.resolved_epsilon
    assert largest < FLOAT_FORMATS[policy.compute_dtype].largest


def test_the_float16_epsilon_default_is_said_in_the_config_as_none(policy):
    """A model saved in float32 and reloaded under mixed_float16 takes the float16 default."""
    layer = SafeCosineSimilarity()
    assert layer.get_config()["epsilon"] is None
    assert layer.resolved_epsilon == (1e-4 if policy.compute_dtype == "float16" else 1e-6)
    assert SafeCosineSimilarity(epsilon=1e-5).resolved_epsilon == 1e-5


def test_memories_that_are_all_padding_give_a_finite_read_out(policy):
    """In float16 the -1e9 that masks a slot was -inf, and an empty story gave NaN."""
    context = keras.Input((4,), dtype="int32")
    query = keras.Input((8,))
    memory = keras.layers.Embedding(10, 8, mask_zero=True)(context)
    model = keras.Model([context, query], MemoryHop()([query, memory, memory]))
    out = model.predict([np.array([[0, 0, 0, 0], [3, 4, 0, 0]], "int32"), np.ones((2, 8), "float32")], verbose=0)
    assert keras.backend.standardize_dtype(out.dtype) == policy.compute_dtype
    assert np.isfinite(np.asarray(out, "float32")).all()


def test_causal_attention_over_left_padding_is_finite(policy):
    """Position 0 of a left-padded row sees only itself, and it is padding: an all-masked row."""
    skip_where_keras_attention_cannot_run(policy)
    tokens = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, 8, mask_zero=True)(tokens)
    model = keras.Model(tokens, CausalSelfAttention(num_heads=2, intermediate_dim=16)(x))
    out = model.predict(np.array([[0, 0, 5, 6, 7, 8], [0, 0, 0, 0, 0, 0]], "int32"), verbose=0)
    assert np.isfinite(np.asarray(out, "float32")).all()


def test_auxiliary_losses_train_in_the_policy(policy):
    skip_where_keras_attention_cannot_run(policy)
    length, horizon, blocks = 5, 2, 2
    window = keras.Input((length + horizon,), dtype="int32")
    x = keras.layers.Embedding(7, 8)(window[:, :length])
    predictions = []
    for _ in range(blocks):
        x = CausalSelfAttention(num_heads=2, intermediate_dim=16)(x)
        predictions.append([keras.layers.Dense(7)(x) for _ in range(horizon)])
    logits = AuxiliaryLosses(num_blocks=blocks, horizon=horizon)([window[:, 1:], predictions])
    model = keras.Model(window, logits)
    optimizer = keras.optimizers.Adam(1e-2)
    if policy.compute_dtype == "float16":
        # At the default starting scale (32768) the embedding's scaled gradient overflows float16,
        # and Keras 3.15's LossScaleOptimizer applies it on TensorFlow: its isfinite densifies the
        # IndexedSlices with tensor_scatter_nd_update, and a repeated id's finite row overwrites the
        # inf one. The embedding turns NaN after one step; a smaller starting scale avoids it.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=2.0**10)
    model.compile(optimizer=optimizer)
    windows = np.random.default_rng(1).integers(0, 7, size=(16, length + horizon)).astype("int32")
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    history = model.fit(windows, epochs=3, batch_size=8, verbose=0, callbacks=[AuxiliaryLossSchedule()])
    assert np.isfinite(history.history["loss"]).all()
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert any(not np.array_equal(b, a) for b, a in zip(before, after))
    assert keras.backend.standardize_dtype(model.predict(windows, verbose=0).dtype) == policy.compute_dtype
