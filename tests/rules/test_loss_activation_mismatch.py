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
    model = tf_keras.Sequential(
        [tf_keras.layers.Dense(5, input_shape=(8,), name="logits"), tf_keras.layers.Activation("relu", name="act")]
    )
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    (finding,) = nandoctor.scan(save(model, "m.h5")).findings
    assert (finding.code, finding.layer, finding.details["units"]) == ("ND601", "act", 5)


def test_an_activation_behind_dropout_is_found(keras, save):
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(5, activation="relu", name="out"), keras.layers.Dropout(0.1)]
    )
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


# The loss/activation table, cell by cell, on real compiled models saved to .keras: (loss, output
# activation, units, the severity expected, or None for a pair that is right).
CELLS = [
    # categorical cross-entropies over one unit: the softmax of one value is 1.0.
    ("sparse_categorical_crossentropy", "sigmoid", 1, Severity.ERROR),
    ("categorical_crossentropy", None, 1, Severity.ERROR),
    ("SparseCategoricalCrossentropy(from_logits=True)", None, 1, Severity.ERROR),
    # from probabilities.
    ("sparse_categorical_crossentropy", "softmax", 5, None),
    ("categorical_focal_crossentropy", "softmax", 5, None),
    ("categorical_crossentropy", "sparsemax", 5, Severity.WARNING),
    ("categorical_focal_crossentropy", "softplus", 5, Severity.ERROR),
    ("categorical_crossentropy", "log_softmax", 5, Severity.ERROR),
    ("sparse_categorical_crossentropy", "gelu", 5, Severity.ERROR),
    ("categorical_crossentropy", "softsign", 5, Severity.ERROR),
    # from logits.
    ("CategoricalCrossentropy(from_logits=True)", "log_softmax", 5, None),
    ("SparseCategoricalCrossentropy(from_logits=True)", "relu", 5, None),
    ("CategoricalFocalCrossentropy(from_logits=True)", "softmax", 5, Severity.WARNING),
    ("SparseCategoricalCrossentropy(from_logits=True)", "tanh", 5, Severity.WARNING),
    ("CategoricalCrossentropy(from_logits=True)", "sigmoid", 5, Severity.WARNING),
    # binary, from probabilities.
    ("binary_crossentropy", "hard_sigmoid", 3, None),
    ("binary_focal_crossentropy", "sigmoid", 3, None),
    ("binary_crossentropy", "softmax", 2, None),
    ("binary_focal_crossentropy", "softmax", 3, Severity.WARNING),
    ("binary_crossentropy", "relu", 3, Severity.ERROR),
    ("binary_focal_crossentropy", "linear", 3, Severity.ERROR),
    ("binary_crossentropy", "log_sigmoid", 3, Severity.ERROR),
    # binary, from logits.
    ("BinaryCrossentropy(from_logits=True)", None, 3, None),
    ("BinaryCrossentropy(from_logits=True)", "relu", 3, Severity.ERROR),
    ("BinaryFocalCrossentropy(from_logits=True)", "softplus", 3, Severity.ERROR),
    ("BinaryCrossentropy(from_logits=True)", "log_sigmoid", 3, Severity.ERROR),
    ("BinaryFocalCrossentropy(from_logits=True)", "sigmoid", 3, Severity.WARNING),
    ("BinaryCrossentropy(from_logits=True)", "tanh", 3, Severity.WARNING),
    # kl_divergence.
    ("kld", "softmax", 5, None),
    ("KLDivergence()", "sigmoid", 5, Severity.ERROR),
    ("kl_divergence", "linear", 5, Severity.ERROR),
    # regression losses.
    ("mse", None, 3, None),
    ("mae", "relu", 3, None),
    ("Huber()", "tanh", 3, None),
    ("mse", "softmax", 5, Severity.WARNING),
    ("MeanAbsoluteError()", "softmax", 5, Severity.WARNING),
    ("log_cosh", "softmax", 5, Severity.WARNING),
    ("mape", "sparsemax", 5, Severity.WARNING),
    ("mse", "sigmoid", 3, Severity.INFO),
    ("mean_absolute_error", "sigmoid", 3, Severity.INFO),
    # mean_squared_logarithmic_error.
    ("msle", "softplus", 3, None),
    ("msle", "linear", 3, Severity.WARNING),
    ("MeanSquaredLogarithmicError()", "tanh", 3, Severity.WARNING),
    ("msle", "log_softmax", 3, Severity.ERROR),
    ("msle", "sigmoid", 3, Severity.INFO),
    # poisson.
    ("poisson", "softplus", 3, None),
    ("Poisson()", "exponential", 3, None),
    ("poisson", "linear", 3, Severity.ERROR),
    ("poisson", "elu", 3, Severity.ERROR),
    ("poisson", "tanh", 3, Severity.ERROR),
    ("poisson", "sigmoid", 3, Severity.INFO),
    # hinge losses.
    ("hinge", "linear", 1, None),
    ("squared_hinge", "tanh", 1, None),
    ("hinge", "sigmoid", 1, Severity.WARNING),
    ("SquaredHinge()", "relu", 3, Severity.WARNING),
    ("hinge", "log_sigmoid", 1, Severity.WARNING),
    ("categorical_hinge", "softmax", 5, None),
    ("categorical_hinge", "linear", 5, None),
    # embeddings.
    ("cosine_similarity", "linear", 8, None),
    ("CosineSimilarity()", "relu", 8, None),
    ("Circle()", "linear", 8, None),
    # overlap losses.
    ("dice", "sigmoid", 4, None),
    ("Tversky()", "softmax", 4, None),
    ("Dice()", "relu", 4, Severity.WARNING),
    ("dice", "linear", 4, Severity.ERROR),
    ("tversky", "tanh", 4, Severity.ERROR),
    # ctc.
    ("ctc", "linear", 6, None),
    ("CTC()", "log_softmax", 6, None),
    ("ctc", "softmax", 6, Severity.WARNING),
    ("ctc", "sigmoid", 6, Severity.WARNING),
]


def compiled_loss(keras, loss: str):
    """`"mse"` as the string alias, `"Huber()"` as the class from keras.losses."""
    if loss.endswith(")"):
        name, arguments = loss[:-1].split("(")
        return getattr(keras.losses, name)(**({"from_logits": True} if arguments == "from_logits=True" else {}))
    return loss


@pytest.mark.parametrize(
    "loss, activation, units, expected",
    CELLS,
    ids=[f"{loss}-{activation}-{units}" for loss, activation, units, _ in CELLS],
)
def test_every_cell_of_the_loss_activation_table(keras, save, loss, activation, units, expected):
    path = save(classifier(keras, activation, units=units, loss=compiled_loss(keras, loss)), "m.keras")
    assert [severity for severity, _ in mismatches(path)] == ([expected] if expected else [])


def test_every_keras_loss_and_alias_is_read_by_the_table(keras, save):
    """Each class and string alias of keras.losses, as the file stores it, resolves to a row."""
    from keras.src.losses import ALL_OBJECTS_DICT

    from nandoctor.analysis.output_activations import loss_reading
    from nandoctor.loaders import load

    unread = []
    for alias, loss in sorted(ALL_OBJECTS_DICT.items()):
        if alias in ("Loss", "LossFunctionWrapper"):
            continue
        model = classifier(keras, "relu", units=3, loss=loss() if isinstance(loss, type) else alias)
        (spec,) = load(str(save(model, f"{alias}.keras"))).compile.losses.values()
        if loss_reading(spec.name, spec.from_logits) is None:
            unread.append((alias, spec.name))
    assert unread == []


def test_every_keras_activation_has_a_range(keras):
    from keras.src.activations import ALL_OBJECTS_DICT

    from nandoctor.analysis.output_activations import ACTIVATION_RANGES

    assert sorted(set(ALL_OBJECTS_DICT) - set(ACTIVATION_RANGES)) == []


def test_the_rule_page_shows_the_table_it_reads():
    import inspect

    from nandoctor.analysis.output_activations import table_grid
    from nandoctor.rules.loss_activation_mismatch import LossActivationMismatch

    assert table_grid() in inspect.cleandoc(LossActivationMismatch.__doc__)


def test_a_poisson_loss_on_a_linear_output_is_nan_as_the_table_says(keras):
    """The table's reason, measured: Keras's poisson takes log(y_pred + epsilon) with no clip."""
    import numpy as np

    loss = keras.losses.poisson(np.array([[1.0, 0.0]]), np.array([[-0.5, 0.3]]))
    assert np.isnan(keras.ops.convert_to_numpy(loss)).all()
