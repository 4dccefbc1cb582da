import numpy as np

import nandoctor
from nandoctor.report import Severity


def dense_model(keras, name="m"):
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")], name=name)


def test_nan_and_inf_are_counted_per_tensor(keras, save):
    model = dense_model(keras)
    kernel, bias = model.get_layer("dense").get_weights()
    kernel[0, :2] = np.nan
    bias[1] = -np.inf
    model.get_layer("dense").set_weights([kernel, bias])
    findings = [f for f in nandoctor.scan(save(model, "m.keras")).findings if f.code == "ND102"]
    assert [(f.details["weight"], f.details["nan"], f.details["neginf"]) for f in findings] == [
        ("kernel", 2, 0),
        ("bias", 0, 1),
    ]
    assert findings[0].message == "kernel (4, 3) holds 2 NaN of 12 values (16.7%)"


def test_a_collapsed_tensor_is_an_error_and_names_subnormals(keras, save):
    model = dense_model(keras)
    kernel, bias = model.get_layer("dense").get_weights()
    model.get_layer("dense").set_weights([kernel * 1e-40, bias])
    (finding,) = [f for f in nandoctor.scan(save(model, "m.keras")).findings if f.code == "ND103"]
    assert finding.severity is Severity.ERROR and finding.details["subnormal"] is True
    assert "all subnormal" in finding.message


def test_collapsed_rows_of_an_otherwise_healthy_matrix_are_a_warning(keras, save):
    model = keras.Sequential([keras.Input((2,), dtype="int32"), keras.layers.Embedding(20, 4, name="emb")])
    values = model.get_layer("emb").get_weights()[0]
    values[[5, 6]] *= 1e-24
    model.get_layer("emb").set_weights([values])
    (finding,) = [f for f in nandoctor.scan(save(model, "m.keras")).findings if f.code == "ND103"]
    assert finding.severity is Severity.WARNING and finding.details["first_rows"] == [5, 6]


def test_the_collapse_threshold_is_an_option(keras, save):
    model = dense_model(keras)
    kernel, bias = model.get_layer("dense").get_weights()
    model.get_layer("dense").set_weights([kernel * 1e-25, bias])
    path = save(model, "m.keras")
    assert [f.code for f in nandoctor.scan(path).findings] == ["ND103"]
    assert nandoctor.scan(path, options={"collapsed-weights": {"tiny": 1e-30}}).findings == []


def test_zero_tensors_are_not_collapsed(keras, save):
    model = dense_model(keras)
    kernel, bias = model.get_layer("dense").get_weights()
    model.get_layer("dense").set_weights([kernel, np.zeros_like(bias)])
    assert nandoctor.scan(save(model, "m.keras")).findings == []
