"""Every floating dtype Keras writes reads as the values it holds: bfloat16 (an opaque 2-byte
type in Keras 3's H5 store), float16 and float64."""

import h5py
import numpy as np
import pytest

import nandoctor
from nandoctor.loaders import load


@pytest.fixture
def dtype_policy(keras):
    """Sets Keras's global dtype policy for one test and puts the default back."""

    def set_policy(name):
        keras.config.set_dtype_policy(name)

    yield set_policy
    keras.config.set_dtype_policy("float32")


def classifier_with_planted_faults(keras):
    tokens = keras.Input((8,), dtype="int32")
    embedding = keras.layers.Embedding(50, 8, name="emb")
    dense = keras.layers.Dense(3, activation="softmax", name="out")
    model = keras.Model(tokens, dense(keras.layers.GlobalAveragePooling1D()(embedding(tokens))))
    table = embedding.get_weights()[0]
    table[5:10] = 0
    embedding.set_weights([table])
    kernel, bias = dense.get_weights()
    kernel[0, 0] = np.nan
    dense.set_weights([kernel, bias])
    return model


@pytest.mark.parametrize("suffix", ["keras", "h5"])
@pytest.mark.parametrize("policy", ["bfloat16", "float16", "float64"])
def test_weights_of_every_float_dtype_are_judged(keras, dtype_policy, save, policy, suffix):
    """Legacy .h5 too, where Keras writes bfloat16 as an opaque 2-byte type with no name at all."""
    dtype_policy(policy)
    model = classifier_with_planted_faults(keras)
    path = save(model, f"{policy}.{suffix}")
    findings = {f.code: f for f in nandoctor.scan(path).findings}
    assert findings["ND101"].details["count"] == 5 and "ND102" in findings
    with load(path) as view:
        weight = view.layer("emb").embedding_matrix()
        assert weight.dtype == policy
        stored = keras.ops.convert_to_numpy(keras.ops.cast(model.get_layer("emb").embeddings, "float64"))
        np.testing.assert_array_equal(weight.read().astype(np.float64), stored)


def test_bfloat16_keras_writes_is_an_opaque_type_named_by_its_attribute(keras, dtype_policy, save, tmp_path):
    """What the loader relies on, as Keras 3.15 writes it."""
    import zipfile

    dtype_policy("bfloat16")
    path = save(classifier_with_planted_faults(keras), "bf16.keras")
    (tmp_path / "weights.h5").write_bytes(zipfile.ZipFile(path).read("model.weights.h5"))
    with h5py.File(tmp_path / "weights.h5") as h5:
        dataset = h5["layers/embedding/vars/0"]
        assert dataset.dtype.kind == "V" and dataset.dtype.itemsize == 2 and dataset.attrs["dtype"] == "bfloat16"


def test_int8_quantized_layers_are_judged_dequantized(keras, save):
    model = classifier_with_planted_faults(keras)
    reference = model.get_layer("emb").get_weights()[0]
    kernel = model.get_layer("out").get_weights()[0]
    kernel[0, 0] = 0.0  # the NaN would not survive quantization
    model.get_layer("out").set_weights([kernel, model.get_layer("out").get_weights()[1]])
    model.quantize("int8")
    path = save(model, "int8.keras")
    report = nandoctor.scan(path)
    findings = {f.code: f for f in report.findings}
    assert findings["ND101"].details["count"] == 5 and "ND102" not in findings
    assert any("int8-quantized layers (emb, out)" in note for note in report.files[0].notes)
    with load(path) as view:
        table = view.layer("emb").embedding_matrix()
        assert table.dtype == "float32" and np.abs(table.read() - reference).max() < 1e-3
