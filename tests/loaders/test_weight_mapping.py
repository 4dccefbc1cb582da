"""Every stored tensor is mapped to the layer Keras names, with the values Keras holds."""

import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from nandoctor.loaders import load


def keras3_model(keras):
    ids = keras.Input((6,), dtype="int32", name="ids")
    x = keras.layers.Embedding(30, 8, name="word_emb")(ids)
    inner = keras.Sequential(
        [keras.layers.Dense(8, name="inner_a"), keras.layers.Dense(8, name="inner_b")], name="encoder"
    )
    x = inner(x)
    x = keras.layers.MultiHeadAttention(2, 4, name="attention")(x, x)
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = keras.layers.Dense(5, name="second_dense")(keras.layers.Flatten()(x))
    out = keras.layers.Dense(3, activation="softmax", name="first_dense")(x)
    model = keras.Model(ids, out)
    model.compile("adam", "categorical_crossentropy")
    return model


def keras2_model(tf_keras):
    ids = tf_keras.Input((6,), dtype="int32", name="ids")
    x = tf_keras.layers.Embedding(30, 8, name="word_emb")(ids)
    inner = tf_keras.Sequential(
        [tf_keras.layers.Dense(8, name="inner_a", input_shape=(6, 8)), tf_keras.layers.Dense(8, name="inner_b")],
        name="encoder",
    )
    x = inner(x)
    x = tf_keras.layers.MultiHeadAttention(2, 4, name="attention")(x, x)
    x = tf_keras.layers.Dense(5, name="second_dense")(tf_keras.layers.Flatten()(x))
    out = tf_keras.layers.Dense(3, name="logits")(x)
    model = tf_keras.Model(ids, tf_keras.layers.Activation("softmax", name="probabilities")(out))
    model.compile("adam", "categorical_crossentropy")
    return model


def live_weights(model) -> dict[str, list[np.ndarray]]:
    """Layer name (nested as outer/inner) -> its weights in Keras's order, sub-layers included."""
    result = {}
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            for inner in layer.layers:
                if inner.weights:
                    result[f"{layer.name}/{inner.name}"] = [np.asarray(w) for w in inner.get_weights()]
        elif layer.weights:
            result[layer.name] = [np.asarray(w) for w in layer.get_weights()]
    return result


def assert_same_weights(view, expected: dict[str, list[np.ndarray]]) -> None:
    stored = {layer.name: layer.weights for layer in view.layers if layer.weights}
    assert sorted(stored) == sorted(expected)
    for name, arrays in expected.items():
        held = sorted((w.read() for w in stored[name]), key=lambda a: (a.shape, a.ravel()[:4].tolist()))
        wanted = sorted(arrays, key=lambda a: (a.shape, a.ravel()[:4].tolist()))
        assert len(held) == len(wanted), name
        for got, want in zip(held, wanted):
            np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("name", ["model.keras", "model.h5", "model.weights.h5"])
def test_keras3_files_map_every_tensor_to_its_layer(keras, save, name):
    model = keras3_model(keras)
    with load(save(model, name)) as view:
        assert_same_weights(view, live_weights(model))


def test_a_keras_archives_tensors_are_read_from_its_weights_member_held_in_memory(keras, save):
    model = keras3_model(keras)
    with load(save(model, "model.keras")) as view:
        sources = [weight.source for weight in view.weights()]
        assert sources and all(getattr(source, "image", None) is not None for source in sources)
        assert_same_weights(view, live_weights(model))


@pytest.mark.parametrize("in_memory", [True, False], ids=["small file: from memory", "large file: from disk"])
def test_a_legacy_h5s_tensors_are_read_from_its_bytes_in_memory_up_to_a_size(keras, save, monkeypatch, in_memory):
    from nandoctor.loaders import hdf5

    monkeypatch.setattr(hdf5, "IN_MEMORY_BYTES", hdf5.IN_MEMORY_BYTES if in_memory else 0)
    model = keras3_model(keras)
    with load(save(model, "model.h5")) as view:
        images = [getattr(weight.source, "image", None) for weight in view.weights()]
        assert images and all((image is not None) == in_memory for image in images)
        assert_same_weights(view, live_weights(model))


@pytest.mark.parametrize("name", ["model.h5", "model_weights.h5"])
def test_keras2_files_map_every_tensor_to_its_layer(tf_keras, save, name):
    model = keras2_model(tf_keras)
    with load(save(model, name)) as view:
        expected = live_weights(model)
        if name == "model_weights.h5":  # no config: nested layers stay with the model's group
            expected = {"encoder" if key.startswith("encoder/") else key: value for key, value in expected.items()}
            expected["encoder"] = [
                w for key, value in live_weights(model).items() if key.startswith("encoder/") for w in value
            ]
        assert_same_weights(view, expected)


def test_keras3_variables_are_named_like_keras_names_them(keras, save):
    with load(save(keras3_model(keras), "model.keras")) as view:
        assert [w.name for w in view.layer("word_emb").weights] == ["embeddings"]
        assert [w.name for w in view.layer("first_dense").weights] == ["kernel", "bias"]
        assert [w.name for w in view.layer("norm").weights] == ["gamma", "beta"]
        assert [w.name for w in view.layer("encoder/inner_b").weights] == ["kernel", "bias"]


def test_two_layers_of_one_class_are_told_apart_by_order_when_the_file_has_no_names(keras, save):
    """Keras before 3.15 wrote no layer names in the weights file: the config order decides."""
    model = keras3_model(keras)
    path = save(model, "model.keras")

    stripped = path.replace(".keras", "_old.keras")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(stripped, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "model.weights.h5":
                temp = Path(path + ".h5")
                temp.write_bytes(data)
                with h5py.File(temp, "r+") as h5:
                    named = []  # (a visit stops at the first callback that returns something)
                    h5.visititems(lambda name, obj, named=named: named.append(obj) if name.endswith("vars") else None)
                    for group in named:
                        del group.attrs["name"]
                data = temp.read_bytes()
            target.writestr(info, data)
    with load(stripped) as view:
        assert_same_weights(view, live_weights(model))


def test_a_model_used_as_a_layer_is_walked_and_wired_through(keras, save):
    model = keras3_model(keras)
    with load(save(model, "model.keras")) as view:
        assert view.layer("encoder").is_model
        assert view.path_between("word_emb", "first_dense") is not None
        assert "encoder/inner_a" in [layer.name for layer in view.downstream("word_emb")]


def test_call_arguments_are_read_from_the_saved_graph(keras, save):
    ids = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(30, 8)(ids)
    attended = keras.layers.MultiHeadAttention(2, 4, name="attention")(x, x, use_causal_mask=True)
    with load(save(keras.Model(ids, attended), "causal.keras")) as view:
        edges = view.producers("attention")
        assert {edge.argument for edge in edges} == {"0", "1"}
        assert all(edge.call_kwargs.get("use_causal_mask") is True for edge in edges)


def test_keras2_tensor_keyword_arguments_become_edges(tf_keras, save):
    ids = tf_keras.Input((6,), dtype="int32")
    x = tf_keras.layers.Embedding(30, 8, name="emb")(ids)
    attended = tf_keras.layers.MultiHeadAttention(2, 4, name="attention")(x, value=x, use_causal_mask=True)
    with load(save(tf_keras.Model(ids, attended), "causal.h5")) as view:
        edges = view.producers("attention")
        assert {(edge.source, edge.argument) for edge in edges} == {("emb", "0"), ("emb", "value")}
        assert edges[0].call_kwargs == {"use_causal_mask": True}


def test_compile_config_is_read_from_keras3_and_keras2_files(keras, tf_keras, save):
    with load(save(keras3_model(keras), "k3.keras")) as view:
        assert view.compile.losses["first_dense"].name == "categorical_crossentropy"
    with load(save(keras2_model(tf_keras), "k2.h5")) as view:
        assert view.compile.losses["probabilities"].name == "categorical_crossentropy"
        assert view.outputs == ["probabilities"]


def test_a_functional_model_with_two_inputs_used_as_a_layer_is_wired_input_by_input(keras, save):
    left, right = keras.Input((4,), name="left_in"), keras.Input((4,), name="right_in")
    tower = keras.Model(
        [left, right], keras.layers.Add(name="join")([keras.layers.Dense(4, name="l")(left), right]), name="tower"
    )
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    out = keras.layers.Dense(2, name="head")(tower([keras.layers.Dense(4, name="pre_a")(a), b]))
    model = keras.Model([a, b], out)
    with load(save(model, "nested.keras")) as view:
        sources = {(edge.source, edge.target) for edge in view.edges}
        assert ("pre_a", "tower/left_in") in sources and ("b", "tower/right_in") in sources
        assert ("tower/join", "head") in sources
        assert view.path_between("a", "head") == ["a", "pre_a", "tower/left_in", "tower/l", "tower/join", "head"]
        assert_same_weights(view, live_weights(model))


def test_keras2_nested_functional_model_is_wired_input_by_input(tf_keras, save):
    left, right = tf_keras.Input((4,), name="left_in"), tf_keras.Input((4,), name="right_in")
    tower = tf_keras.Model([left, right], tf_keras.layers.Add(name="join")([left, right]), name="tower")
    a, b = tf_keras.Input((4,), name="a"), tf_keras.Input((4,), name="b")
    model = tf_keras.Model([a, b], tf_keras.layers.Dense(2, name="head")(tower([b, a])))
    with load(save(model, "nested.h5")) as view:
        sources = {(edge.source, edge.target) for edge in view.edges}
        assert {("b", "tower/left_in"), ("a", "tower/right_in"), ("tower/join", "head")} <= sources


def test_a_subclassed_model_has_its_tracked_layers_and_weights_read(keras, save):
    import nandoctor

    @keras.saving.register_keras_serializable(package="tests")
    class Ranker(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.emb = keras.layers.Embedding(20, 4, name="item_emb")
            self.head = keras.layers.Dense(2, name="head")

        def call(self, ids):
            return self.head(keras.ops.mean(self.emb(ids), axis=1))

    model = Ranker(name="ranker")
    model(np.zeros((1, 3), "int32"))
    kernel, bias = model.head.get_weights()
    kernel[0, 0] = np.nan
    model.head.set_weights([kernel, bias])
    path = save(model, "ranker.keras")
    with load(path) as view:
        held = {layer.name: [w.read() for w in layer.weights] for layer in view.layers if layer.weights}
        assert sorted(held) == ["ranker/head", "ranker/item_emb"]
        np.testing.assert_array_equal(held["ranker/item_emb"][0], model.emb.get_weights()[0])
    findings = {(f.code, f.layer) for f in nandoctor.scan(path).findings}
    assert findings == {("ND102", "ranker/head"), ("ND901", "ranker")}


def test_nandoctor_layers_in_a_legacy_h5_are_known_by_their_registered_names(keras, save):
    import nandoctor
    from nandoctor.layers import MaskedEmbedding, TiedEmbedding

    tokens = keras.Input((8,), dtype="int32")
    tied = TiedEmbedding(30, 8, mask_zero=True, name="word_emb")
    x = keras.layers.GRU(8, return_sequences=True)(tied(tokens))
    path = save(keras.Model(tokens, tied(x, reverse=True)), "tied.h5")
    with load(path) as view:
        layer = view.layer("word_emb")
        assert (layer.class_name, layer.module, layer.registered_name) == (
            "TiedEmbedding",
            "nandoctor.layers",
            "nandoctor>TiedEmbedding",
        )
    assert nandoctor.scan(path).findings == []
    classifier = keras.Sequential(
        [
            keras.Input((8,), dtype="int32"),
            MaskedEmbedding(30, 4, name="emb"),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    assert nandoctor.scan(save(classifier, "masked.h5")).findings == []


def test_keras2_tensor_operations_are_graph_nodes(tf_keras, save):
    """`tokens + positions` and `x[:, 0]` on Keras 2 tensors are TFOpLambda and SlicingOpLambda
    nodes, each inbound node one reference rather than a list of them."""
    import tensorflow as tf

    ids = tf_keras.Input((6,), dtype="int32")
    tokens = tf_keras.layers.Embedding(20, 4, name="tokens")(ids)
    x = tf_keras.layers.LayerNormalization(name="norm")(tokens + tf.ones((6, 4)))
    model = tf_keras.Model(ids, tf_keras.layers.Dense(2, name="out")(x[:, 0]))
    with load(save(model, "ops.h5")) as view:
        assert view.path_between("tokens", "out") == [
            "tokens",
            "tf.__operators__.add",
            "norm",
            "tf.__operators__.getitem",
            "out",
        ]


def test_keras2_ids_declared_as_floats_are_still_token_sequences(tf_keras, save):
    """A Keras 2 Sequential's InputLayer is float32 in front of an Embedding: the ids are cast."""
    import nandoctor

    model = tf_keras.Sequential(
        [
            tf_keras.layers.Embedding(50, 4, input_length=10),
            tf_keras.layers.LSTM(4),
            tf_keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    (finding,) = [f for f in nandoctor.scan(save(model, "lstm.h5")).findings if f.code == "ND301"]
    assert finding.details["length"] == 10


def test_a_built_in_layer_of_a_subclassed_model_keeps_its_keras_name(keras, save):
    import nandoctor

    @keras.saving.register_keras_serializable(package="tests")
    class Pooled(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.emb = keras.layers.Embedding(20, 4)
            self.pool = keras.layers.GlobalAveragePooling1D()
            self.head = keras.layers.Dense(2)

        def call(self, ids):
            return self.head(self.pool(self.emb(ids)))

    model = Pooled(name="pooled")
    model(np.zeros((1, 3), "int32"))
    path = save(model, "pooled.weights.h5")
    with load(path) as view:  # Keras names the group global_average_pooling1d: the class is Keras's
        assert "GlobalAveragePooling1D" in {layer.class_name for layer in view.layers}
    assert [f for f in nandoctor.scan(path).findings if f.code == "ND901"] == []
