import pytest

import nandoctor
from nandoctor.report import Severity


def classifier(keras, activation, units=5, loss="categorical_crossentropy"):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(units, activation=activation, name="out")])
    model.compile(optimizer="sgd", loss=loss)
    return model


def mismatches(path):
    return [(f.severity, f.details.get("activation")) for f in nandoctor.scan(path).findings if f.code == "ND601"]


@pytest.mark.parametrize("activation", ["relu", "linear", "tanh"])
def test_unbounded_outputs_under_categorical_crossentropy_are_errors(keras, save, activation):
    assert mismatches(save(classifier(keras, activation), "m.keras")) == [(Severity.ERROR, activation)]


def test_sigmoid_under_categorical_crossentropy_is_a_warning(keras, save):
    assert mismatches(save(classifier(keras, "sigmoid"), "m.keras")) == [(Severity.WARNING, "sigmoid")]


def test_softmax_over_one_unit_is_an_error_whatever_the_loss(keras, save):
    path = save(classifier(keras, "softmax", units=1, loss="mse"), "m.keras")
    assert mismatches(path) == [(Severity.ERROR, "softmax")]


def test_softmax_over_several_labels_under_binary_crossentropy_is_a_warning(keras, save):
    path = save(classifier(keras, "softmax", units=4, loss="binary_crossentropy"), "m.keras")
    assert mismatches(path) == [(Severity.WARNING, "softmax")]


def test_softmax_output_under_a_from_logits_loss_is_a_warning(keras, save):
    model = classifier(keras, "softmax", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    assert mismatches(save(model, "m.keras")) == [(Severity.WARNING, "softmax")]


@pytest.mark.parametrize(
    "activation, loss",
    [("softmax", "categorical_crossentropy"), ("sigmoid", "binary_crossentropy"), ("linear", "mse")],
)
def test_matching_pairs_are_silent(keras, save, activation, loss):
    assert mismatches(save(classifier(keras, activation, loss=loss), "m.keras")) == []


def test_a_linear_output_under_a_from_logits_loss_is_silent(keras, save):
    model = classifier(keras, None, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert mismatches(save(model, "m.keras")) == []


def test_keras2_separate_activation_layer_is_followed(tf_keras, save):
    model = tf_keras.Sequential([tf_keras.layers.Dense(5, input_shape=(8,), name="logits"),
                                 tf_keras.layers.Activation("relu", name="act")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    (finding,) = nandoctor.scan(save(model, "m.h5")).findings
    assert (finding.code, finding.layer, finding.details["units"]) == ("ND601", "act", 5)


def test_an_activation_behind_dropout_is_found(keras, save):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(5, activation="relu", name="out"),
                              keras.layers.Dropout(0.1)])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    assert mismatches(save(model, "m.keras")) == [(Severity.ERROR, "relu")]


def test_per_output_losses_of_a_two_headed_model(keras, save):
    inputs = keras.Input((8,))
    good = keras.layers.Dense(3, activation="softmax", name="good")(inputs)
    bad = keras.layers.Dense(3, activation="relu", name="bad")(inputs)
    model = keras.Model(inputs, {"good": good, "bad": bad})
    model.compile(optimizer="sgd", loss={"good": "categorical_crossentropy", "bad": "categorical_crossentropy"})
    (finding,) = nandoctor.scan(save(model, "m.keras")).findings
    assert finding.layer == "bad"


def test_a_loss_passed_as_a_function_is_read(keras, save):
    """`loss=keras.losses.categorical_crossentropy` is stored as a function of module builtins."""
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(5, activation="relu", name="out")])
    model.compile("sgd", loss=keras.losses.categorical_crossentropy)
    import nandoctor

    (finding,) = [f for f in nandoctor.scan(save(model, "function_loss.keras")).findings if f.code == "ND601"]
    assert finding.details["loss"] == "categorical_crossentropy"


def test_an_uncompiled_one_unit_softmax_does_not_blame_a_loss(keras, save):
    import nandoctor

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="softmax", name="out")])
    (finding,) = nandoctor.scan(save(model, "uncompiled.keras")).findings
    assert finding.code == "ND601" and "not compiled" in finding.message and "the loss has" not in finding.message
