"""Every file Keras writes for a subclassed model reads: each weight is found, under the
layer Keras names it by (`variable.path`), however deep its layer sits in custom layers,
lists, dicts and Sequentials, and the rules that read weights judge it there."""

import numpy as np
import pytest

import nandoctor
from nandoctor.loaders import load
from tests.loaders.subclassed_models import keras_hub_blocks_model, nested_model


def stored_paths(view, model, name: str) -> dict[str, np.ndarray]:
    """The view's weights by the path Keras gives the variable (`net/block_1/dense_3/kernel`);
    a weights-only file has no model layer, so its layers' names lack the model's."""
    prefix = "" if name.endswith(".keras") else f"{model.name}/"
    return {f"{prefix}{weight.layer}/{weight.name}": weight.read() for weight in view.weights()}


def layer_named(variable, name: str) -> str:
    """The layer a finding names for `variable` in the file `name`: its Keras path's, less
    the model's name in a weights-only file."""
    owner = variable.path.rsplit("/", 1)[0]
    return owner if name.endswith(".keras") else owner.split("/", 1)[1]


@pytest.mark.parametrize("name", ["net.weights.h5", "net.keras"])
def test_every_weight_of_nested_layers_is_found_under_its_keras_path(keras, save, name):
    model = nested_model(keras)
    with load(save(model, name)) as view:
        held = stored_paths(view, model, name)
    assert sorted(held) == sorted(weight.path for weight in model.weights)
    for weight in model.weights:
        np.testing.assert_array_equal(held[weight.path], weight.numpy(), err_msg=weight.path)


def test_nested_layers_keep_their_classes_and_their_owners(keras, save):
    model = nested_model(keras)
    sequential = model.blocks[1].inner
    with load(save(model, "net.keras")) as view:
        inner = view.layer(f"net/block_1/{sequential.name}/{sequential.layers[0].name}")
        assert (inner.class_name, inner.parent) == ("Dense", f"net/block_1/{sequential.name}")
        assert view.layer(f"net/block_1/{sequential.name}").is_model
        assert view.layer(layer_named(model.tokens.embedding.embeddings, "net.keras")).is_embedding
        assert view.layer("net/block_1").class_name == "Block"  # a list's members are named for their class


@pytest.mark.parametrize("name", ["encoder.weights.h5", "encoder.keras"])
def test_keras_hub_blocks_in_a_list_are_read_layer_by_layer(keras, save, name):
    """KerasHub's encoder blocks hold their sub-layers in private attributes; each sub-layer's
    variables are found under the sub-layer's own name."""
    model = keras_hub_blocks_model(keras)
    with load(save(model, name)) as view:
        prefix = "" if name.endswith(".keras") else "encoder/"
        held = [(prefix + weight.layer, weight.read()) for weight in view.weights()]
    assert len(held) == len(model.weights)
    for weight in model.weights:
        owner = weight.path.rsplit("/", 1)[0]
        matches = [
            values
            for layer, values in held
            if layer == owner and values.shape == tuple(weight.shape) and np.array_equal(values, weight.numpy())
        ]
        assert matches, weight.path


def test_a_subclassed_model_whose_layers_all_sort_before_layers_is_a_model(keras, save):
    """Keras saves attributes in name order and a model's leftover `layers` last: with every
    layer in `blocks` and `head`, the file has no `layers` group."""

    class Small(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.blocks = [keras.layers.Dense(4), keras.layers.Dense(4)]
            self.head = keras.layers.Dense(2)

        def call(self, x):
            return self.head(self.blocks[1](self.blocks[0](x)))

    model = Small(name="small")
    model(np.zeros((1, 3), "float32"))
    with load(save(model, "small.weights.h5")) as view:
        assert sorted(layer.name for layer in view.layers) == sorted({w.path.split("/")[1] for w in model.weights})


def test_a_subclassed_models_own_variables_are_read(keras, save):
    class Scaled(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.head = keras.layers.Dense(2)

        def build(self, input_shape):
            self.scale = self.add_weight(shape=(2,), initializer="ones", name="scale")

        def call(self, x):
            return self.head(x) * self.scale

    model = Scaled(name="scaled")
    model(np.zeros((1, 3), "float32"))
    model.scale.assign([np.nan, 1.0])
    for name in ("scaled.weights.h5", "scaled.keras"):
        findings = {(f.code, f.layer) for f in nandoctor.scan(save(model, name)).findings if f.code == "ND102"}
        assert findings == {("ND102", "scaled")}, name


@pytest.mark.parametrize("name", ["net.weights.h5", "net.keras"])
def test_nan_in_a_nested_layers_kernel_is_named_by_that_layer(keras, save, name):
    model = nested_model(keras)
    kernel = model.blocks[1].inner.layers[0].kernel
    kernel.assign(np.where(np.eye(*kernel.shape, dtype=bool), np.nan, kernel.numpy()))
    (finding,) = [f for f in nandoctor.scan(save(model, name)).findings if f.code == "ND102"]
    assert finding.layer == layer_named(kernel, name)
    assert finding.details["weight"] == "kernel" and finding.details["nan"] == 8


@pytest.mark.parametrize("name", ["net.weights.h5", "net.keras"])
def test_zero_rows_in_a_nested_embedding_are_found(keras, save, name):
    model = nested_model(keras)
    table = model.tokens.embedding.embeddings
    values = table.numpy()
    values[[3, 7, 11]] = 0.0
    table.assign(values)
    (finding,) = [f for f in nandoctor.scan(save(model, name)).findings if f.code == "ND101"]
    assert finding.layer == layer_named(table, name)
    assert finding.details["first_ids"] == [3, 7, 11]


def test_a_collapsed_kernel_in_a_dict_of_heads_is_found(keras, save):
    model = nested_model(keras)
    kernel = model.heads["slot"].kernel
    kernel.assign(kernel.numpy() * 1e-30)
    (finding,) = [f for f in nandoctor.scan(save(model, "net.weights.h5")).findings if f.code == "ND103"]
    assert finding.layer == layer_named(kernel, "net.weights.h5") and finding.details["weight"] == "kernel"


def test_two_layers_given_one_name_are_told_apart_by_their_attributes(keras, save):
    class Twins(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.a_twin = keras.layers.Dense(2, name="twin")
            self.b_twin = keras.layers.Dense(2, name="twin")

        def call(self, x):
            return self.a_twin(x) + self.b_twin(x)

    model = Twins(name="twins")
    model(np.zeros((1, 3), "float32"))
    with load(save(model, "twins.weights.h5")) as view:
        assert sorted(layer.name for layer in view.layers) == ["b_twin", "twin"]
        assert all(len(layer.weights) == 2 for layer in view.layers)


def test_without_saved_names_layers_are_named_by_their_attribute_paths(keras, save):
    """Keras before 3.15 wrote no layer names: the path of attributes (and of list members,
    named for their class) names each layer, and every weight is still found."""
    import h5py

    model = nested_model(keras)
    path = save(model, "net.weights.h5")
    with h5py.File(path, "r+") as h5:
        groups = []
        h5.visititems(lambda name, item: groups.append(item) if name.endswith("vars") else None)
        for group in groups:
            del group.attrs["name"]
    with load(path) as view:
        weights = list(view.weights())
        assert len(weights) == len(model.weights)
        for weight in weights:  # `/blocks/block_1/inner/layers/dense/vars/0` is layer `blocks/block_1/inner/dense`
            attribute_path = weight.location.strip("/").rsplit("/vars/", 1)[0].replace("layers/", "")
            assert weight.layer == attribute_path
        assert "blocks/block_1/inner" in {layer.name for layer in view.layers if layer.is_model}
