"""`nandoctor.check` on the backend the user trains on: the static rules, the graph checks (a
TensorFlow graph or a jaxpr) and the probes that run the model judge the same on TensorFlow,
JAX and PyTorch, and what cannot run on a backend (the checks that read a graph it does not
give) is said in the report's notes, never a crash."""

import keras
import pytest

import nandoctor
from tests.live.leaky_layers import language_model
from tests.live.test_probes import padded_classifier

pytestmark = pytest.mark.every_backend

# The checks that read a graph this backend cannot give: on JAX graph-checks reads the jaxpr
# (the loss trace reads TensorFlow's graph only); PyTorch gives neither.
GRAPH_READERS = {"jax": ("loss-trace",), "torch": ("graph-checks", "loss-trace")}


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
        assert sorted(note.split()[0] for note in skipped) == sorted(GRAPH_READERS[keras.backend.backend()])
        assert all(f"this model runs on {keras.backend.backend()}" in note for note in skipped)


# Zoo models that build in seconds on either backend, each with what its entry expects.
ZOO_ON_EVERY_BACKEND = (
    "nandoctor_memory_network",
    "nandoctor_tied_language_model",
    "nandoctor_safe_cosine_ranker",
    "nandoctor_masked_topic_classifier",
    "nandoctor_docs_nd201_use_instead",
    "keras_io_text_generation_with_miniature_gpt",
    "keras_io_masked_language_modeling",
    "keras_io_ner_transformers",
    "keras_hub_phi3_causal_lm",
)


@pytest.mark.parametrize("entry_id", ZOO_ON_EVERY_BACKEND)
def test_check_on_zoo_models_says_what_it_must_and_nothing_more(keras_seed, entry_id):
    from fixtures.zoo import ZOO
    from tests.zoo.test_zoo import serious_codes

    (entry,) = [entry for entry in ZOO if entry.id == entry_id]
    findings, notes = checked(entry.build())
    assert [note for note in notes if "could not run" in note] == []
    found = serious_codes(findings)
    assert found <= set(entry.expected) | set(entry.allowed), [(f.code, f.layer, f.message) for f in findings]
    assert set(entry.expected) - found_only_elsewhere(entry) <= found


def found_only_elsewhere(entry) -> set[str]:
    """Codes the entry expects from the live checks that cannot run on this backend (on JAX,
    the loss trace: keras-io's NER softmax under a custom from-logits loss)."""
    from nandoctor.live import LIVE_CHECKS

    backend = keras.backend.backend()
    here = {
        rule.code
        for check in LIVE_CHECKS
        if (check.backends is None or backend in check.backends) and not check.needs_sample  # no sample is given
        for rule in check.raises
    }
    return set(entry.live_only) - here
