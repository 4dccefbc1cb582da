"""`check(model, sample=(x, y))` measures the targets against the output's range (ND601)."""

import keras
import numpy as np
import pytest

import nandoctor

pytestmark = pytest.mark.every_backend


def regression(activation, loss="mean_absolute_error"):
    features = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(features)
    model = keras.Model(features, keras.layers.Dense(1, activation=activation, name="distance")(hidden))
    model.compile(optimizer="adam", loss=loss)
    return model


def sample(low, high):
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 6)).astype("float32"), rng.uniform(low, high, size=(16, 1)).astype("float32")


def nd601(model, given):
    return [f for f in nandoctor.check(model, sample=given).findings if f.code == "ND601"]


def test_distances_through_a_sigmoid_are_an_error_measured_on_the_sample():
    (finding,) = nd601(regression("sigmoid"), sample(0.0, 30.0))
    assert finding.layer == "distance" and finding.severity == "error"
    assert finding.details["evidence"] == "measured" and finding.details["probe"]["outside_share"] > 0.8
    assert "outside [0, 1]" in finding.message


def test_the_file_alone_leaves_a_sigmoid_regression_at_info():
    (finding,) = nd601(regression("sigmoid"), None)
    assert finding.severity == "info" and finding.details["evidence"] == "certain"


def test_targets_in_the_unit_interval_keep_the_sigmoid_at_info():
    (finding,) = nd601(regression("sigmoid"), sample(0.0, 1.0))
    assert finding.severity == "info"


def test_negative_targets_under_a_relu_output_are_found_though_the_file_says_nothing():
    model = regression("relu", "mean_squared_error")
    assert nd601(model, None) == []
    (finding,) = nd601(model, sample(-5.0, 5.0))
    assert finding.severity == "error" and "outside [0, inf]" in finding.message


def test_a_linear_output_reaches_any_target():
    assert nd601(regression(None), sample(0.0, 30.0)) == []
