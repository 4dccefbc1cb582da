"""The one walk over an HDF5 file's structure (`nandoctor.loaders.h5_structure`) sees what
h5py's high-level objects see: every group's members in h5py's order, every dataset's shape,
dtype and where its bytes lie, and every attribute with the value and type `attrs[name]`
gives, for files the real writers save and for files built at random."""

import gc
import weakref

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nandoctor
from nandoctor.loaders.h5_structure import StoredDataset, StoredGroup, read_structure
from nandoctor.report import FileStatus


def walked(path) -> tuple[h5py.File, StoredGroup]:
    h5 = h5py.File(path, "r")
    structure = read_structure(h5, "the file")
    structure.read_attributes()
    return h5, structure.root


def assert_same_as_h5py(node: StoredGroup | StoredDataset, item: h5py.Group | h5py.Dataset) -> None:
    """Each attribute asked for alone (read on the ask), then all of them at once."""
    for key, expected in item.attrs.items():
        assert node.has_attribute(key)
        found = node.attribute(key)
        assert type(found) is type(expected), (item.name, key)
        assert np.array_equal(found, expected) and getattr(found, "dtype", None) == getattr(expected, "dtype", None)
    assert sorted(node.attributes) == sorted(item.attrs) and not node.unreadable
    assert not node.has_attribute("never written") and node.attribute("never written") is None
    if isinstance(item, h5py.Dataset):
        assert isinstance(node, StoredDataset)
        assert (node.name, node.shape, node.dtype) == (item.name, item.shape, item.dtype)
        assert node.offset == item.id.get_offset() and node.stored_bytes == item.id.get_storage_size()
        return
    assert isinstance(node, StoredGroup) and list(node.members) == list(item)
    for key, member in node.members.items():
        assert_same_as_h5py(member, item[key])


def small_model(keras):
    tokens = keras.Input((5,), dtype="int32")
    x = keras.layers.Embedding(20, 4, mask_zero=True, name="word_emb")(tokens)
    x = keras.layers.MultiHeadAttention(2, 2, name="attention")(x, x)
    x = keras.layers.LayerNormalization(name="norm")(x)
    return keras.Model(tokens, keras.layers.Dense(3, activation="softmax", name="head")(x))


@pytest.mark.parametrize("name", ["model.weights.h5", "legacy.h5"])
def test_a_saved_models_structure_is_what_h5py_reads(keras, save, name):
    h5, root = walked(save(small_model(keras), name))
    with h5:
        assert_same_as_h5py(root, h5)
        assert root.get("/") is root


def test_a_group_that_tracks_creation_order_keeps_h5py_order(tmp_path):
    path = tmp_path / "ordered.h5"
    with h5py.File(path, "w") as h5:
        group = h5.create_group("layers", track_order=True)
        for key in ("zeta", "alpha", "mid"):
            group.create_group(key)["kernel"] = np.ones((2, 2), "float32")
    h5, root = walked(path)
    with h5:
        assert list(root.group("layers").members) == ["zeta", "alpha", "mid"] == list(h5["layers"])


def test_a_path_that_leads_nowhere_is_none_and_a_dataset_is_no_group(tmp_path):
    path = tmp_path / "one.h5"
    with h5py.File(path, "w") as h5:
        h5["a/b/x"] = np.zeros(3, "float32")
    h5, root = walked(path)
    with h5:
        assert isinstance(root.get("a/b/x"), StoredDataset) and root.group("a/b/x") is None
        assert root.get("a/missing") is None and root.get("a/b/x/deeper") is None
        assert root.group("a").get("/a/b") is root.get("a/b")  # a path from the root, as h5py reads it


_names = st.text(st.characters(codec="utf-8", exclude_characters="/.\x00"), min_size=1, max_size=8)
_attribute_values = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20),  # a variable-length string
    st.binary(max_size=12).map(lambda raw: np.bytes_(raw.rstrip(b"\x00"))),  # a fixed-length byte string
    st.lists(st.binary(min_size=1, max_size=6).map(lambda raw: raw.replace(b"\x00", b"x")), min_size=1, max_size=4).map(
        lambda items: np.array(items, dtype="S")
    ),  # `layer_names` as Keras 2 writes them
    st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6), max_size=4).map(
        lambda items: np.array(items, dtype=h5py.string_dtype())
    ),  # `layer_names` and `weight_names` as Keras 3's legacy writer writes them (variable-length)
    st.integers(-5, 5),
    st.lists(st.floats(allow_nan=False, width=32), max_size=3).map(lambda v: np.array(v, "float32")),
    st.lists(st.integers(-(2**40), 2**40), max_size=3).map(lambda v: np.array(v, "int64").reshape(-1, 1)),
    st.just(np.array([])),  # an empty `weight_names`, as numpy writes it: float64
    st.booleans().map(np.bool_),  # an enum to h5py: read through h5py
)
_trees = st.recursive(
    st.dictionaries(_names, st.integers(0, 3), max_size=3),  # datasets of n rows
    lambda children: st.dictionaries(_names, children, max_size=3),
    max_leaves=12,
)


def _build(group: h5py.Group, tree, draw_attributes) -> None:
    for key, value in draw_attributes().items():
        group.attrs[key] = value
    for key, member in tree.items():
        if isinstance(member, dict):
            _build(group.create_group(key), member, draw_attributes)
        else:
            group[key] = np.arange(member * 2, dtype="float32").reshape(member, 2)
            for attribute, value in draw_attributes().items():
                group[key].attrs[attribute] = value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=st.dictionaries(_names, _trees, max_size=3), data=st.data())
def test_any_tree_of_groups_datasets_and_attributes_is_what_h5py_reads(tmp_path, tree, data):
    path = tmp_path / "random.h5"
    with h5py.File(path, "w") as h5:
        _build(h5, tree, lambda: data.draw(st.dictionaries(_names, _attribute_values, max_size=2)))
    h5, root = walked(path)
    with h5:
        assert_same_as_h5py(root, h5)


def test_an_attribute_is_read_when_asked_for_and_one_never_asked_for_is_never_read(tmp_path, monkeypatch):
    from nandoctor.loaders import h5_structure

    path = tmp_path / "legacy.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["keras_version"] = "2.15.0"
        h5.attrs["model_config"] = '{"class_name": "Sequential"}'
    read = []
    value = h5_structure._value
    monkeypatch.setattr(
        h5_structure, "_value", lambda attribute, object_id, raw: read.append(raw) or value(attribute, object_id, raw)
    )
    h5, root = walked(path)
    with h5:
        assert read == []
        assert root.attribute("model_config") == '{"class_name": "Sequential"}'
        assert root.attribute("model_config") == '{"class_name": "Sequential"}'
        assert read == [b"model_config"]


def test_an_unreadable_attribute_fails_the_file_only_when_asked_for(tmp_path, monkeypatch):
    from nandoctor.errors import UnreadableFile
    from nandoctor.loaders import h5_structure

    monkeypatch.setattr(h5_structure, "_MAX_ATTRIBUTE_BYTES", 64)
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["small"] = 3
        h5.attrs["big"] = np.bytes_(b"x" * 100)
    h5, root = walked(path)
    with h5:
        assert root.attribute("small") == 3 and root.has_attribute("big")
        with pytest.raises(UnreadableFile, match=r"^attribute 'big' of / cannot be read \(larger than 0 MiB\)$"):
            root.attribute("big")
        assert root.unreadable == {"big": "larger than 0 MiB"} and root.attributes == {"small": 3}


def test_two_keras_files_open_at_once_each_read_their_own_weights():
    """libhdf5 shares an in-memory file opened under the name of one still open: each
    member's image is named apart, so a second view does not read the first one's weights."""
    from nandoctor.loaders import load
    from tests.conftest import FIXTURES

    paths = [str(FIXTURES / "clean" / "mlp.keras"), str(FIXTURES / "broken" / "seed_b_untied_language_model.keras")]

    def shapes(view):
        return [(weight.layer, weight.name, weight.shape) for weight in view.weights()]

    alone = []
    for path in paths:
        with load(path) as view:
            alone.append(shapes(view))
    with load(paths[0]) as first, load(paths[1]) as second:
        assert [shapes(first), shapes(second)] == alone
    assert alone[0] != alone[1]


def test_a_walked_tree_is_freed_as_soon_as_nothing_holds_it(tmp_path):
    # No cycles (a group holds its file's root weakly): the tree and the HDF5 objects it
    # keeps open go when the view lets go, not when the garbage collector next runs.
    path = tmp_path / "nested.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("layers/dense/vars/0", data=np.ones((2, 3), np.float32))
        h5["layers/dense"].attrs["name"] = "dense"
    gc.disable()
    try:
        h5, root = walked(path)
        inner = root.group("layers/dense")
        assert inner is not None and inner.get("/layers") is root.get("layers")
        tree = [weakref.ref(root), weakref.ref(inner), weakref.ref(inner.get("vars/0"))]
        del root, inner
        assert [ref() for ref in tree] == [None, None, None]
        h5.close()
    finally:
        gc.enable()


@pytest.mark.parametrize("name", ["model.keras", "legacy.h5", "model.weights.h5"])
def test_a_scanned_file_leaves_nothing_of_it_open_in_libhdf5(keras, save, name):
    # Opened from memory, a small file is closed by its handle alone (`open_image`): what
    # h5py's close would have closed first must be gone already, garbage collector or not.
    path = save(small_model(keras), name)
    open_before = h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_ALL)
    gc.disable()
    try:
        (result,) = nandoctor.scan(path).files
        assert result.status is FileStatus.SCANNED and result.error is None
        assert h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_ALL) == open_before
    finally:
        gc.enable()
