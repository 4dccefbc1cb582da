"""Probe inputs built from the model's own input structure: every model Keras can run gets
probed, or says why not, and the rest of the report stands."""

import keras
import numpy as np
import pytest

import nandoctor
from nandoctor.live.model_inputs import CannotProbe, probe_inputs
from nandoctor.live.model_view import view_of_model


def notes(model):
    report = nandoctor.check(model)
    return report, report.files[0].notes


def test_a_dict_input_model_is_fed_a_dict_with_its_padding_mask(keras_seed):
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")
    x = keras.layers.Embedding(40, 8, name="token_embedding")(token_ids)
    x = keras.layers.MultiHeadAttention(2, 4)(x, x, attention_mask=keras.ops.cast(padding_mask[:, None, :], "bool"))
    model = keras.Model({"token_ids": token_ids, "padding_mask": padding_mask}, keras.layers.Dense(3)(x))
    inputs = probe_inputs(model, view_of_model(model))
    assert {slot.name: slot.role for slot in inputs.slots} == {"padding_mask": "padding_mask", "token_ids": "ids"}
    assert inputs.ids()[0].vocabulary == 40 and set(inputs.typical(np.random.default_rng(0))) == {
        "token_ids",
        "padding_mask",
    }
    _, said = notes(model)
    assert said == []


def test_a_float_input_that_carries_ids_gets_ids_within_the_table():
    tokens = keras.Input((12,))  # keras-io's text classification declares its ids as floats
    model = keras.Model(
        tokens, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(30, 4)(tokens)))
    )
    (slot,) = probe_inputs(model, view_of_model(model)).slots
    assert slot.role == "ids" and slot.vocabulary == 30
    assert notes(model)[1] == []


def test_strided_layers_get_a_sequence_long_enough_for_them():
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(30, 8)(tokens)
    x = keras.layers.Conv1D(8, 7, strides=3, activation="relu")(x)
    x = keras.layers.Conv1D(8, 7, strides=3, activation="relu")(x)
    model = keras.Model(tokens, keras.layers.Dense(1)(keras.layers.GlobalMaxPooling1D()(x)))
    inputs = probe_inputs(model, view_of_model(model))
    assert inputs.length >= 32 and notes(model)[1] == []


class TwoTables(keras.Model):
    """keras-io's collaborative filtering: subclassed, no get_config, two tables by column."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.users, self.items = keras.layers.Embedding(10, 4), keras.layers.Embedding(25, 4)

    def call(self, pairs):
        return keras.ops.sigmoid(keras.ops.sum(self.users(pairs[:, 0]) * self.items(pairs[:, 1]), -1))


def test_a_subclassed_model_without_get_config_is_viewed_and_probed(keras_seed):
    model = TwoTables()
    model(np.zeros((1, 2), "int32"))
    model.compile("adam", "binary_crossentropy")
    view = view_of_model(model)
    assert {layer.class_name for layer in view.layers} >= {"TwoTables", "Embedding"}
    (slot,) = probe_inputs(model, view).slots
    assert slot.shape == (None, 2) and slot.role == "ids" and slot.vocabulary == 10
    assert notes(model)[1] == []


def test_a_model_no_length_can_run_says_so_and_keeps_its_static_findings():
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Conv1D(4, 300)(keras.layers.Embedding(30, 4)(tokens))  # needs 300 steps
    model = keras.Model(tokens, keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling1D()(x)))
    with pytest.raises(CannotProbe, match="no sequence length"):
        probe_inputs(model, view_of_model(model))
    report, said = notes(model)
    assert any(note.startswith("nan-probe could not run: CannotProbe: no sequence length") for note in said)
    assert "ND301" in {f.code for f in report.findings}  # the static rules still report


@keras.saving.register_keras_serializable(package="model_inputs_tests")
class ShortPositions(keras.layers.Layer):
    """Positions looked up for every step of the input, from a table of 16 rows."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.table = keras.layers.Embedding(16, 4)

    def call(self, x):
        return x + self.table(keras.ops.arange(keras.ops.shape(x)[1]))


def test_a_position_lookup_past_the_table_is_the_finding_it_proves():
    tokens = keras.Input((32,), dtype="int32")
    x = ShortPositions(name="positions")(keras.layers.Embedding(30, 4)(tokens))
    model = keras.Model(tokens, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(x)))
    report = nandoctor.check(model)
    (finding,) = [f for f in report.findings if f.code == "ND505"]
    assert finding.details["index"] == 16 and finding.details["rows"] == 16 and finding.confidence == "high"
    assert [note for note in report.files[0].notes if "could not run" in note] == []
