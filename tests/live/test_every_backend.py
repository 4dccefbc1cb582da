"""`nandoctor.check` on the backend the user trains on: the static rules and the probes that run
the model measure the same on TensorFlow and JAX, and what cannot run on a backend (the checks
that read TensorFlow graphs) is said in the report's notes, never a crash."""

import keras
import pytest

import nandoctor
from tests.live.leaky_layers import language_model
from tests.live.test_probes import padded_classifier

pytestmark = pytest.mark.every_backend

GRAPH_READERS = ("graph-checks", "loss-trace", "nan-probe")


def checked(model):
    report = nandoctor.check(model)
    (result,) = report.files
    return report.findings, result.notes


def test_a_padding_leak_is_measured_by_the_probe(keras_seed):
    model = padded_classifier(keras.layers.Flatten(), keras.layers.Embedding(40, 8, name="emb"))
    findings, _ = checked(model)
    (leak,) = [f for f in findings if f.code == "ND301"]
    assert leak.confidence == "high" and leak.details["probe"]["padding_change"] > 0


def test_a_causal_model_without_its_mask_is_caught_seeing_the_future(keras_seed):
    findings, _ = checked(language_model(causal=False))
    (leak,) = [f for f in findings if f.code == "ND502"]
    assert leak.severity == "error" and leak.details["leak"] > 0


def test_a_correct_causal_model_is_not_said_to_see_the_future(keras_seed):
    findings, _ = checked(language_model(causal=True))
    assert [f.code for f in findings if f.code.startswith("ND5")] == []


def test_what_cannot_run_on_this_backend_is_said_in_the_notes(keras_seed):
    _, notes = checked(language_model(causal=True))
    skipped = [note for note in notes if "did not run" in note]
    if keras.backend.backend() == "tensorflow":
        assert skipped == []
    else:
        assert sorted(note.split()[0] for note in skipped) == sorted(GRAPH_READERS)
        assert all(f"this model runs on {keras.backend.backend()}" in note for note in skipped)
