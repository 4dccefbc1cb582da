"""`nandoctor.check` on a live model agrees with `scan` of the same model saved, and
`assert_healthy` fails a test with the report as its message."""

import numpy as np
import pytest

import nandoctor
from tests.conftest import FIXTURES


def models(keras):
    ids = keras.Input((30,), dtype="int32")
    x = keras.layers.Embedding(80, 8, name="embedding")(ids)
    padded = keras.Model(ids, keras.layers.Dense(3, activation="relu", name="out")(keras.layers.Flatten()(x)))
    padded.compile("sgd", "categorical_crossentropy")

    tokens = keras.Input((16,), dtype="int32")
    h = keras.layers.Embedding(40, 16, mask_zero=True)(tokens)
    h = keras.layers.Add()([h, keras.layers.MultiHeadAttention(2, 8, name="attention")(h, h)])
    leaky = keras.Model(tokens, keras.layers.Dense(40, name="next")(h))

    inner = keras.Sequential([keras.layers.Dense(4, name="inner_dense")], name="inner")
    features = keras.Input((6,))
    nested = keras.Model(features, inner(features))
    kernel, bias = inner.get_layer("inner_dense").get_weights()
    kernel[0, 0] = np.nan
    inner.get_layer("inner_dense").set_weights([kernel, bias])
    return {"padded": padded, "leaky": leaky, "nested": nested}


@pytest.mark.parametrize("name", ["padded", "leaky", "nested"])
def test_check_of_a_live_model_equals_scan_of_the_saved_file(keras, tmp_path, name):
    """The static part of check: the probes add what only running the model shows."""
    model = models(keras)[name]
    model.save(tmp_path / "model.keras")
    live = sorted((f.code, f.layer) for f in nandoctor.check(model, probes=False).findings)
    saved = sorted((f.code, f.layer) for f in nandoctor.scan(str(tmp_path / "model.keras")).findings)
    assert live == saved and live


def test_check_reports_the_live_model_as_its_file():
    import keras

    report = nandoctor.check(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)], name="tiny"))
    assert report.files[0].path == "<model tiny>" and report.files[0].format == "live"


def test_assert_healthy_on_a_path_names_codes_layers_and_fixes():
    with pytest.raises(AssertionError) as failure:
        nandoctor.assert_healthy(str(FIXTURES / "broken" / "seed_d_padding_flatten.keras"))
    message = str(failure.value)
    assert (
        "ND301" in message
        and "ND303" in message
        and "embedding" in message
        and "fix: Use nandoctor.layers.MaskedEmbedding" in message
    )


def test_assert_healthy_passes_clean_files_and_respects_fail_on():
    nandoctor.assert_healthy(str(FIXTURES / "clean" / "mlp.keras"))
    nandoctor.assert_healthy(str(FIXTURES / "broken" / "entity_tables.npz"))  # info only
    with pytest.raises(AssertionError, match="ND101"):
        nandoctor.assert_healthy(str(FIXTURES / "broken" / "entity_tables.npz"), fail_on="info")


def test_assert_healthy_on_a_live_model(keras):
    with pytest.raises(AssertionError, match="ND501"):
        nandoctor.assert_healthy(models(keras)["leaky"])


def test_assert_healthy_fails_on_an_unreadable_file(tmp_path):
    (tmp_path / "broken.keras").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(AssertionError, match="not a valid zip archive"):
        nandoctor.assert_healthy(str(tmp_path / "broken.keras"))


def test_each_live_check_reports_its_own_time(keras):
    model = keras.Sequential([keras.Input((6,), dtype="int32"), keras.layers.Embedding(20, 4), keras.layers.Flatten()])
    report = nandoctor.check(model)
    assert set(report.timings) == {
        "static rules",
        "mask-carry",
        "position-scale",
        "graph-checks",
        "loss-trace",
        "nan-probe",
        "padding-probe",
        "tie-probe",
        "causal-probe",
    }
    assert all(seconds >= 0 for seconds in report.timings.values())
    assert "timings" in report.to_dict() and "timings" not in nandoctor.scan([]).to_dict()
