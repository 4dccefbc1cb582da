"""`nandoctor.check` in the model's own dtype policy: the probes judge a `mixed_float16` or
`mixed_bfloat16` model as they judge it in float32, the headroom table names the first layer
whose activations float16 cannot hold, and a NaN that only float16's range makes is said as
float16 overflow at its layer, never as a division the layer does not do."""

import contextlib

import keras
import numpy as np
import pytest
from keras_hub.src.models.t5.t5_layer_norm import T5LayerNorm

import nandoctor
from nandoctor.live.headroom import computing_in_float32, measure_headroom
from nandoctor.live.model_inputs import is_finite
from nandoctor.live.replay import localize
from tests.live.leaky_layers import language_model
from tests.live.test_probes import padded_classifier

pytestmark = pytest.mark.every_backend

REDUCED = ["mixed_float16", "mixed_bfloat16"]


@contextlib.contextmanager
def global_policy(name):
    """Models built inside take `name`, as the Keras mixed-precision guide sets it."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def findings_of(model):
    report = nandoctor.check(model)
    return report.findings, report.files[0].notes


def stacked_dense(second_scale, second_dtype=None):
    """Two Dense layers of constant weights (30, then `second_scale`): on unit-scale inputs the
    second one's outputs reach about 1,000 x `second_scale`; no weight is near float16's range."""
    features = keras.Input((8,))
    hidden = keras.layers.Dense(16, kernel_initializer=keras.initializers.Constant(30.0), name="first")(features)
    hidden = keras.layers.Dense(
        16, kernel_initializer=keras.initializers.Constant(second_scale), name="second", dtype=second_dtype
    )(hidden)
    return keras.Model(features, keras.layers.Dense(1, dtype="float32", name="out")(hidden))


def zero_row_norm(epsilon, norm_dtype=None, first_zero_row=10):
    """A pretrained table with zero rows (unknown words) into KerasHub's T5LayerNorm, which adds
    its epsilon in the compute dtype."""
    table = np.random.default_rng(0).normal(size=(20, 8)).astype("float32")
    table[first_zero_row:] = 0.0
    tokens = keras.Input((4,), dtype="int32")
    hidden = keras.layers.Embedding(20, 8, weights=[table], name="emb")(tokens)
    hidden = T5LayerNorm(epsilon=epsilon, name="norm", dtype=norm_dtype)(hidden)
    return keras.Model(tokens, keras.layers.Dense(2, dtype="float32", name="out")(keras.layers.Flatten()(hidden)))


# 1. The probes judge in the model's policy as they do in float32.


@pytest.mark.parametrize("policy", REDUCED)
def test_the_probes_catch_the_same_leaks_in_reduced_precision(keras_seed, policy):
    with global_policy(policy):
        causal_leak = language_model(causal=False)
        padding_leak = padded_classifier(keras.layers.Flatten(), keras.layers.Embedding(40, 8, name="emb"))
    (leak,) = [f for f in findings_of(causal_leak)[0] if f.code == "ND502"]
    assert leak.severity == "error" and leak.details["first_leaking_position"] == 0
    (padding,) = [f for f in findings_of(padding_leak)[0] if f.code == "ND301"]
    assert padding.confidence == "high" and padding.details["probe"]["padding_change"] > 0


@pytest.mark.parametrize("policy", REDUCED)
def test_the_probes_are_silent_on_correct_models_in_reduced_precision(keras_seed, policy):
    with global_policy(policy):
        causal = language_model(causal=True)
        masked = padded_classifier(keras.layers.LSTM(4), keras.layers.Embedding(40, 8, mask_zero=True, name="emb"))
    assert [f.code for f in findings_of(causal)[0] if f.code.startswith(("ND2", "ND5", "ND805"))] == []
    assert [f.code for f in findings_of(masked)[0] if f.code.startswith(("ND2", "ND3", "ND8"))] == []


def test_a_bfloat16_inf_is_not_finite():
    assert not is_finite(keras.ops.convert_to_tensor(np.array([1.0, np.inf]), dtype="bfloat16"))
    assert is_finite(keras.ops.convert_to_tensor(np.array([1.0, 2.0]), dtype="bfloat16"))


def test_the_replay_names_the_bfloat16_layer_that_overflows(keras_seed):
    with global_policy("mixed_bfloat16"):
        features = keras.Input((4,))
        grown = keras.layers.Activation("exponential", name="exp")(keras.layers.Dense(4, name="dense")(features))
        model = keras.Model(features, keras.layers.Dense(1, dtype="float32", name="out")(grown))
    where = localize(model, (np.full((2, 4), 300.0, "float32"), np.zeros((2, 1), "float32")))
    assert where.forward_culprit == "exp"


# 2. The headroom table, and ND805 measured.


def test_an_activation_that_overflows_float16_is_named_at_its_layer(keras_seed):
    with global_policy("mixed_float16"):
        model = stacked_dense(30.0)
    findings, _ = findings_of(model)
    (overflow,) = [f for f in findings if f.code == "ND805"]
    assert (overflow.layer, overflow.severity, overflow.details["evidence"]) == ("second", "error", "measured")
    table = {row["layer"]: row for row in overflow.details["headroom"]}
    assert list(table) == ["first", "second"]
    assert table["second"]["nonfinite"] and table["second"]["max_abs_float32"] > 65504
    assert not table["first"]["nonfinite"] and table["first"]["max_abs"] < 65504 / 16
    assert [f.code for f in findings if f.code.startswith("ND2")] == []


def test_activations_within_the_factor_of_float16s_largest_value_are_a_warning(keras_seed):
    with global_policy("mixed_float16"):
        model = stacked_dense(3.0)
    (near,) = [f for f in findings_of(model)[0] if f.code == "ND805"]
    assert (near.layer, near.severity) == ("second", "warning")
    assert 65504 / 16 < near.details["max_abs"] < 65504


@pytest.mark.parametrize(
    "policy, second_dtype",
    [
        ("float32", None),
        ("mixed_bfloat16", None),
        ("mixed_float16", "float32"),
    ],
    ids=["float32", "bfloat16 holds it", "overflowing layer kept in float32"],
)
def test_the_same_activations_where_the_dtype_holds_them_get_nothing(keras_seed, policy, second_dtype):
    with global_policy(policy):
        model = stacked_dense(30.0, second_dtype)
    assert findings_of(model)[0] == []


def test_the_headroom_table_counts_values_float16_flushes_to_zero(keras_seed):
    with global_policy("mixed_float16"):
        logits = keras.Input((8,))
        shrunk = keras.layers.Activation("exponential", name="exp")(
            keras.layers.Dense(8, kernel_initializer=keras.initializers.Constant(-20.0), name="dense")(logits)
        )
        model = keras.Model(logits, shrunk)
    inputs = np.abs(np.random.default_rng(0).normal(size=(4, 8))).astype("float32")
    (dense, exp) = measure_headroom(model, inputs)
    # exp(-20 * a sum of 8 positive values, each sum above 1) is below half float16's smallest subnormal (6e-8).
    assert exp.layer == "exp" and exp.flushed_to_zero == 1.0 and dense.flushed_to_zero == 0.0
    assert exp.max_abs == 0.0 and 0 < exp.max_abs_float32 < 3e-8


def test_computing_in_float32_puts_every_policy_back(keras_seed):
    with global_policy("mixed_float16"):
        model = stacked_dense(30.0)
    with computing_in_float32(model):
        assert {layer.compute_dtype for layer in model.layers[1:]} == {"float32"}
    assert [layer.dtype_policy.name for layer in model.layers[1:]] == ["mixed_float16", "mixed_float16", "float32"]


# 3. A NaN that only float16's range makes.


def test_a_too_small_epsilon_under_float16_is_confirmed_at_its_layer(keras_seed):
    with global_policy("mixed_float16"):
        model = zero_row_norm(1e-12)
    findings, _ = findings_of(model)
    (epsilon,) = [f for f in findings if f.code == "ND801"]
    assert (epsilon.layer, epsilon.severity, epsilon.confidence) == ("norm", "error", "high")
    assert "confirmed on the live model" in epsilon.message and "are inf or NaN" in epsilon.message
    # The NaN is said once, as the epsilon's: no division, no overflow finding beside it.
    assert [f.code for f in findings if f.code.startswith(("ND2", "ND805"))] == []
    assert [f.severity for f in findings if f.code == "ND101"] == ["info"]


# The fix is both of the guide's: epsilon=1e-6 alone still breaks on JAX (its backward pass
# overflows float16: rsqrt's derivative at 1e-6 is 5e8), the norm in float32 alone with 1e-12
# still passes a gradient of 1e6 back into the float16 embedding. Both are measured and reported.
@pytest.mark.parametrize(
    "policy, epsilon, norm_dtype",
    [("float32", 1e-12, None), ("mixed_float16", 1e-6, "float32")],
    ids=["float32", "fixed"],
)
def test_the_same_norm_in_float32_or_fixed_gets_no_precision_finding(keras_seed, policy, epsilon, norm_dtype):
    with global_policy(policy):
        model = zero_row_norm(epsilon, norm_dtype)
    assert [f.code for f in findings_of(model)[0] if f.code.startswith(("ND2", "ND8"))] == []


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.layers.LayerNormalization(epsilon=1e-12, name="norm"),
        lambda: keras.layers.GroupNormalization(groups=2, epsilon=1e-12, name="norm"),
    ],
    ids=["LayerNormalization", "GroupNormalization"],
)
def test_keras_normalizations_compute_in_float32_and_get_nothing(keras_seed, make):
    with global_policy("mixed_float16"):
        features = keras.Input((8,))
        model = keras.Model(features, keras.layers.Dense(2, dtype="float32")(make()(keras.layers.Dense(8)(features))))
    assert findings_of(model)[0] == []


def test_a_float16_input_overflow_is_not_an_unguarded_division(keras_seed):
    with global_policy("mixed_float16"):
        features = keras.Input((8,))
        model = keras.Model(features, keras.layers.Dense(3, name="d")(keras.layers.Dense(8, name="h")(features)))
    findings, notes = findings_of(model)
    assert findings == []
    (note,) = [note for note in notes if "1e12" in note]
    assert "float16 policy at layer 'h'" in note and "not judged" in note


@pytest.mark.parametrize(
    "output_dtype, expected", [(None, ["ND803"]), ("float32", [])], ids=["softmax in float16", "softmax in float32"]
)
def test_a_float16_softmax_output_is_named_at_its_layer(keras_seed, output_dtype, expected):
    with global_policy("mixed_float16"):
        features = keras.Input((8,))
        logits = keras.layers.Dense(10, name="logits")(features)
        model = keras.Model(features, keras.layers.Activation("softmax", dtype=output_dtype, name="probs")(logits))
    findings, _ = findings_of(model)
    assert [(f.code, f.layer) for f in findings] == [(code, "probs") for code in expected]


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_a_real_token_that_breaks_float16_does_not_hide_a_padding_leak(keras_seed, policy):
    """Under float16 the zero row's id makes T5LayerNorm(1e-12) NaN: the padding probe measures
    one real token's effect where the output stays finite, and the unmasked padding still leaks."""
    with global_policy(policy):
        model = zero_row_norm(1e-12, first_zero_row=19)
    findings, _ = findings_of(model)
    assert [f.layer for f in findings if f.code == "ND301" and f.severity != "info"] == ["emb"]
