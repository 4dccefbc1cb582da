"""`nandoctor.check` in the model's own dtype policy: the probes judge a `mixed_float16` or
`mixed_bfloat16` model as they judge it in float32, and the headroom table names the first layer
whose activations float16 cannot hold."""

import contextlib

import keras
import numpy as np
import pytest

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
    hidden = keras.layers.Dense(16, kernel_initializer=keras.initializers.Constant(second_scale), name="second",
                                dtype=second_dtype)(hidden)
    return keras.Model(features, keras.layers.Dense(1, dtype="float32", name="out")(hidden))


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


def test_activations_within_the_factor_of_float16s_largest_value_are_a_warning(keras_seed):
    with global_policy("mixed_float16"):
        model = stacked_dense(3.0)
    (near,) = [f for f in findings_of(model)[0] if f.code == "ND805"]
    assert (near.layer, near.severity) == ("second", "warning")
    assert 65504 / 16 < near.details["max_abs"] < 65504


@pytest.mark.parametrize("policy, second_dtype", [
    ("float32", None), ("mixed_bfloat16", None), ("mixed_float16", "float32"),
], ids=["float32", "bfloat16 holds it", "overflowing layer kept in float32"])
def test_the_same_activations_where_the_dtype_holds_them_get_nothing(keras_seed, policy, second_dtype):
    with global_policy(policy):
        model = stacked_dense(30.0, second_dtype)
    assert [f.code for f in findings_of(model)[0] if f.code.startswith("ND8")] == []


def test_the_headroom_table_counts_values_float16_flushes_to_zero(keras_seed):
    with global_policy("mixed_float16"):
        logits = keras.Input((8,))
        shrunk = keras.layers.Activation("exponential", name="exp")(
            keras.layers.Dense(8, kernel_initializer=keras.initializers.Constant(-20.0), name="dense")(logits))
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
