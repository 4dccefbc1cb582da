"""The compiled loss traced like the forward pass: what a custom loss does to the outputs."""

import keras
import numpy as np

import nandoctor


def tagger(activation):
    tokens = keras.Input((8,), dtype="int32")
    x = keras.layers.Embedding(30, 8)(tokens)
    return keras.Model(tokens, keras.layers.Dense(5, activation=activation, name="tags")(x))


@keras.saving.register_keras_serializable(package="loss_trace_tests")
class NonPaddingLoss(keras.losses.Loss):
    """keras-io's NER loss: a cross-entropy from logits, masked to the real tokens."""

    def call(self, y_true, y_pred):
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)(y_true, y_pred)
        mask = keras.ops.cast(y_true > 0, "float32")
        return keras.ops.sum(loss * mask) / keras.ops.maximum(keras.ops.sum(mask), 1.0)


def hand_written_cross_entropy(y_true, y_pred):
    return -keras.ops.sum(keras.ops.one_hot(keras.ops.cast(y_true, "int32"), 5) * keras.ops.log(y_pred), axis=-1)


def loss_findings(model, code):
    return [f for f in nandoctor.check(model).findings if f.code == code]


def test_a_softmax_output_under_a_custom_loss_from_logits_is_a_double_softmax(keras_seed):
    model = tagger("softmax")
    model.compile("adam", loss=NonPaddingLoss())
    (finding,) = loss_findings(model, "ND601")
    assert finding.severity == "warning" and finding.confidence == "high"
    assert "from_logits=True" in finding.message and "applied twice" in finding.message


def test_logits_under_the_same_custom_loss_are_fine(keras_seed):
    model = tagger(None)
    model.compile("adam", loss=NonPaddingLoss())
    assert loss_findings(model, "ND601") == []


def test_a_hand_written_log_of_the_softmax_in_the_loss_is_an_unguarded_log(keras_seed):
    model = tagger("softmax")
    model.compile("adam", loss=hand_written_cross_entropy)
    (finding,) = loss_findings(model, "ND203")
    assert "in the loss" in finding.message and finding.details["in"] == "loss"


def test_keras_own_cross_entropy_clips_before_its_log(keras_seed):
    model = tagger("softmax")
    model.compile("adam", loss="sparse_categorical_crossentropy")
    report = nandoctor.check(model)
    assert [f for f in report.findings if f.code in ("ND203", "ND601")] == []
    assert np.isfinite(model.evaluate(np.ones((2, 8)), np.zeros((2, 8)), verbose=0))
