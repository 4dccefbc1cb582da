"""`nandoctor.check` in the model's own dtype policy: the probes judge a `mixed_float16` or
`mixed_bfloat16` model as they judge it in float32."""

import contextlib

import keras
import numpy as np
import pytest

import nandoctor
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
