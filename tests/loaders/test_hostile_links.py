"""An HDF5 file nandoctor reads never reaches outside itself: an external link, a soft link
that leads nowhere or out, or a virtual dataset, pointed at a FIFO (which would block the scan
forever), /dev/zero or another HDF5 file (whose statistics would land in the report), is
refused in one line naming the link, and the other files of the run are still scanned. In
every HDF5 file nandoctor reads: .keras, legacy .h5, .weights.h5, shards, unzipped models and
KerasHub presets.

The scans run in a fresh process with a timeout, so that a regression fails instead of
hanging the suite on the FIFO."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nandoctor.engine import scan
from nandoctor.loaders import load
from nandoctor.report import FileStatus
from tests.conftest import FIXTURES
from tests.loaders.subclassed_models import nested_model

GOOD = FIXTURES / "clean" / "mlp.keras"

# What the refusal says for each kind of link out of the file.
REASONS = {
    "external": "has an external link",
    "soft-dangling": "has a soft link",
    "soft-out": "has an external link",
    "virtual": "has a virtual dataset",
    "virtual-unlimited": "has a virtual dataset",
}


@pytest.fixture
def targets(tmp_path):
    """Where a hostile link points: a FIFO, a device, and another model's weights (NaN, so
    that a scan that read them would say so)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["x"] = np.full((4, 2), np.nan, "float32")
    return {"fifo": str(fifo), "zero": "/dev/zero", "hdf5": str(other)}


def link_out(h5: h5py.File, name: str, kind: str, target: str) -> str:
    """Put a link of `kind` at `name` (a new name, or one whose dataset was deleted); return
    the name the refusal must quote."""
    if kind == "external":
        h5[name] = h5py.ExternalLink(target, "/x")
    elif kind == "soft-dangling":
        h5[name] = h5py.SoftLink("/nowhere/x")
    elif kind == "soft-out":  # a soft link into a group that is another file
        h5["/escape"] = h5py.ExternalLink(target, "/")
        h5[name] = h5py.SoftLink("/escape/x")
        return "/escape"
    elif kind == "virtual":
        layout = h5py.VirtualLayout((4, 2), "float32")
        layout[:] = h5py.VirtualSource(target, "x", shape=(4, 2))
        h5.create_virtual_dataset(name, layout)
    else:  # virtual-unlimited: libhdf5 opens the source files to learn the extent
        layout = h5py.VirtualLayout((4, 1), "float32", maxshape=(None, 1))
        source = h5py.VirtualSource(target, "x", shape=(4, 2), maxshape=(None, 2))
        layout[: h5py.h5s.UNLIMITED, 0] = source[: h5py.h5s.UNLIMITED, 1]
        h5.create_virtual_dataset(name, layout)
    return "/" + name.lstrip("/")


def replace_a_weight(path, kind: str, target: str) -> str:
    """Swap the file's first stored tensor for a link out of the file, where the loader reads."""
    with h5py.File(path, "r+") as h5:
        datasets = []
        h5.visititems(lambda name, item: datasets.append(name) if isinstance(item, h5py.Dataset) else None)
        first = sorted(datasets)[0]
        del h5[first]
        return link_out(h5, first, kind, target)


def replace_a_member_weight(archive_path, kind: str, target: str) -> str:
    """`replace_a_weight` on the `model.weights.h5` inside a `.keras` archive."""
    with zipfile.ZipFile(archive_path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    weights = archive_path.parent / "member.weights.h5"
    weights.write_bytes(dict((info.filename, data) for info, data in members)["model.weights.h5"])
    name = replace_a_weight(weights, kind, target)
    with zipfile.ZipFile(archive_path, "w") as archive:
        for info, data in members:
            archive.writestr(info, weights.read_bytes() if info.filename == "model.weights.h5" else data)
    weights.unlink()
    return name


def scan_in_fresh_process(*paths) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nandoctor", "scan", "--format", "json", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_refused_in_one_line(bad, link: str, reason: str) -> None:
    result = scan_in_fresh_process(bad, GOOD)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"nandoctor: error: {bad}: ") and reason in lines[0] and f"{link} " in lines[0]
    files = {entry["path"]: entry for entry in json.loads(result.stdout)["files"]}
    assert files[str(bad)]["status"] == "error"
    assert files[str(GOOD)]["status"] == "scanned"


@pytest.mark.parametrize("kind", sorted(REASONS))
@pytest.mark.parametrize("target", ["fifo", "zero", "hdf5"])
def test_a_link_out_of_a_weights_file_is_refused_in_one_line(keras, save, targets, kind, target):
    inputs = keras.Input((3,))
    path = save(keras.Model(inputs, keras.layers.Dense(2, name="head")(inputs)), "model.weights.h5")
    link = replace_a_weight(path, kind, targets[target])
    assert_refused_in_one_line(path, link, REASONS[kind])


@pytest.fixture(scope="module")
def saved_formats(tmp_path_factory):
    """One small model in every HDF5-holding format nandoctor reads, saved by Keras itself."""
    import keras

    from tests.loaders.test_keras_hub_preset import gpt2_preset

    folder = tmp_path_factory.mktemp("formats")
    ids = keras.Input((6,), dtype="int32")
    hidden = keras.layers.Dense(64, name="hidden")(keras.layers.Embedding(1000, 32, name="emb")(ids))
    model = keras.Model(ids, keras.layers.Dense(2, name="out")(hidden))
    model.save(folder / "model.keras")
    model.save(folder / "model.h5")
    model.save_weights(folder / "model.weights.h5")
    (folder / "sharded").mkdir()
    model.save_weights(folder / "sharded" / "m.weights.json", max_shard_size=0.00012)
    keras.saving.save_model(model, folder / "unzipped", zipped=False)
    gpt2_preset(folder / "preset")
    return folder


# (the file or folder scanned, the HDF5 file in it that gets the link)
HDF5_HOLDERS = [
    ("model.keras", None),
    ("model.h5", "model.h5"),
    ("model.weights.h5", "model.weights.h5"),
    ("sharded/m.weights.json", "sharded/m_00001.weights.h5"),
    ("unzipped", "unzipped/model.weights.h5"),
    ("preset", "preset/model.weights.h5"),
]


@pytest.mark.parametrize("kind", ["external", "soft-dangling", "virtual-unlimited"])
@pytest.mark.parametrize(("scanned", "part"), HDF5_HOLDERS, ids=[part or scanned for scanned, part in HDF5_HOLDERS])
def test_every_hdf5_file_nandoctor_reads_refuses_links_out(saved_formats, tmp_path, targets, scanned, part, kind):
    copy = tmp_path / "copy"
    shutil.copytree(saved_formats, copy)
    if part is None:
        link = replace_a_member_weight(copy / scanned, kind, targets["fifo"])
    else:
        link = replace_a_weight(copy / part, kind, targets["fifo"])
    assert_refused_in_one_line(copy / scanned, link, REASONS[kind])


def test_sharded_weights_still_read_through_nandoctors_own_links(keras, tmp_path):
    """The shards are read as one tree that links each dataset in its shard: those links are
    nandoctor's own, and are followed."""
    inputs = keras.Input((256,))
    model = keras.Model(inputs, keras.layers.Dense(256, name="wide")(keras.layers.Dense(256, name="deep")(inputs)))
    model.save_weights(tmp_path / "m.weights.json", max_shard_size=0.0003)  # 314 KB: a kernel of 256 KB each
    assert len(list(tmp_path.glob("*.weights.h5"))) >= 2
    with load(str(tmp_path / "m.weights.json")) as view:
        held = {f"{weight.layer}/{weight.name}": weight.read() for weight in view.weights()}
    assert sorted(held) == sorted(weight.path for weight in model.weights)
    for weight in model.weights:
        np.testing.assert_array_equal(held[weight.path], weight.numpy())


def test_a_soft_link_inside_the_file_is_followed(keras, save):
    """Not every link is refused: one that resolves inside the file is the file's own data."""
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(inputs))
    path = save(model, "model.weights.h5")
    with h5py.File(path, "r+") as h5:
        h5.move("layers/dense/vars/0", "kept_elsewhere")
        h5["layers/dense/vars/0"] = h5py.SoftLink("/kept_elsewhere")
    with load(path) as view:
        np.testing.assert_array_equal(view.layer("head").weights[0].read(), model.get_layer("head").kernel.numpy())


@pytest.mark.parametrize("loop", ["hard link to an ancestor", "hard link to the root", "soft link to a group"])
def test_a_link_back_to_a_group_that_holds_it_is_refused_not_walked_forever(keras, save, loop):
    inputs = keras.Input((3,))
    path = save(keras.Model(inputs, keras.layers.Dense(2, name="head")(inputs)), "model.weights.h5")
    with h5py.File(path, "r+") as h5:
        if loop == "hard link to an ancestor":
            h5["layers/dense/again"] = h5["layers"]
        elif loop == "hard link to the root":
            h5["layers/dense/again"] = h5["/"]
        else:
            h5["layers/dense/again"] = h5py.SoftLink("/layers")
    (result,) = scan([path]).files
    assert result.status is FileStatus.ERROR
    assert "/layers/dense/again " in result.error and "refusing to walk round a loop" in result.error


@pytest.fixture(scope="module")
def nested_weights(tmp_path_factory):
    import keras

    path = tmp_path_factory.mktemp("nested") / "net.weights.h5"
    nested_model(keras).save_weights(path)
    return path


@pytest.mark.parametrize("target", ["zero", "hdf5"])
def test_links_out_anywhere_in_a_saved_models_weights_are_refused(nested_weights, tmp_path, targets, target):
    """Wherever a link out sits (in place of a weight, beside one, in a group the loader never
    reads), the file is refused, naming it; the targets here cannot hang a regression, which
    would instead read them and be caught by the assertion."""
    with h5py.File(nested_weights, "r") as h5:
        groups, datasets = [""], []
        h5.visititems(lambda name, item: (groups if isinstance(item, h5py.Group) else datasets).append(name))
    copy = tmp_path / "net.weights.h5"

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        st.sampled_from(sorted(REASONS)),
        st.one_of(
            st.sampled_from(datasets), st.tuples(st.sampled_from(groups), st.text("abcxyz_", min_size=1, max_size=6))
        ),
    )
    def check(kind, place):
        shutil.copy(nested_weights, copy)
        with h5py.File(copy, "r+") as h5:
            if isinstance(place, tuple):
                group, leaf = place
                name = f"{group}/{leaf}".lstrip("/")
                if name in h5 or name == "escape":
                    return
            else:
                name = place
                del h5[name]
            link = link_out(h5, name, kind, targets[target])
        (result,) = scan([str(copy)]).files
        assert result.status is FileStatus.ERROR
        assert REASONS[kind] in result.error and f"{link} " in result.error and "\n" not in result.error

    check()
