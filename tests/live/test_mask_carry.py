"""A custom layer between a mask and a layer that uses it: unknown to the scan (info), settled
on the live layer by check()."""

import keras
import pytest

import nandoctor


@keras.saving.register_keras_serializable(package="mask_carry_tests")
class KeepsBySupport(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x):
        return x * 2.0


@keras.saving.register_keras_serializable(package="mask_carry_tests")
class KeepsByComputeMask(keras.layers.Layer):
    """keras-io's PositionalEmbedding keeps its mask this way."""

    def call(self, x):
        return x * 2.0

    def compute_mask(self, x, mask=None):
        return mask


@keras.saving.register_keras_serializable(package="mask_carry_tests")
class Drops(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


def classifier(layer):
    tokens = keras.Input((10,), dtype="int32")
    x = layer(keras.layers.Embedding(30, 4, mask_zero=True, name="emb")(tokens))
    return keras.Model(tokens, keras.layers.Dense(2, activation="softmax")(keras.layers.LSTM(4, name="lstm")(x)))


def mask_findings(report):
    return [f for f in report.findings if f.code == "ND302"]


@pytest.mark.parametrize("layer_class", [KeepsBySupport, KeepsByComputeMask, Drops])
def test_the_scan_says_a_custom_layer_mask_is_unknown_at_info(layer_class, save):
    (finding,) = mask_findings(nandoctor.scan(save(classifier(layer_class(name="custom")), "model.keras")))
    assert finding.severity == "info" and finding.confidence == "low" and "cannot see" in finding.message


@pytest.mark.parametrize("layer_class", [KeepsBySupport, KeepsByComputeMask])
def test_check_withdraws_it_for_a_layer_that_keeps_the_mask(layer_class):
    assert mask_findings(nandoctor.check(classifier(layer_class(name="custom")))) == []


def test_check_makes_it_a_warning_for_a_layer_that_drops_the_mask():
    (finding,) = mask_findings(nandoctor.check(classifier(Drops(name="custom"))))
    assert finding.severity == "warning" and finding.confidence == "high"
    assert "neither sets supports_masking nor defines compute_mask" in finding.message
