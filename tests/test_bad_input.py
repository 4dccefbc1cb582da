"""Unusable input: one line on stderr, exit 2, no traceback, and the other files still scanned."""

import json
import shutil
import zipfile

import h5py
import numpy as np
import pytest

from tests.conftest import FIXTURES, run_cli

GOOD = FIXTURES / "broken" / "seed_a_memory_network.keras"


def truncated_zip(tmp_path):
    data = GOOD.read_bytes()
    path = tmp_path / "truncated.keras"
    path.write_bytes(data[: len(data) // 2])
    return path


def corrupt_hdf5(tmp_path):
    data = bytearray((FIXTURES / "clean" / "keras2_classifier.h5").read_bytes())
    data[100:400] = bytes(300)  # zero the root group's metadata, keep the signature
    path = tmp_path / "corrupt.h5"
    path.write_bytes(bytes(data))
    return path


def garbage_config(tmp_path):
    path = tmp_path / "garbage.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{'class_name': Functional,")
        archive.writestr("model.weights.h5", b"")
    return path


def zip_not_a_model(tmp_path):
    path = tmp_path / "photos.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cat.jpg", b"\xff\xd8\xff" + bytes(100))
    return path


def absurd_hdf5_shape(tmp_path):
    """A dataset declaring 10^9 x 10^6 float32 values (4 PB) in a file of a few KiB."""
    path = tmp_path / "absurd.weights.h5"
    with h5py.File(path, "w") as h5:
        h5.create_group("layers/embedding/vars").create_dataset("0", shape=(10**9, 10**6), dtype="float32")
    return path


def absurd_npy_shape(tmp_path):
    path = tmp_path / "absurd.npy"
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(file, {"descr": "<f4", "fortran_order": False, "shape": (999999, 9)})
        file.write(bytes(64))
    return path


def external_link_hdf5(tmp_path):
    """A weights file whose kernel is an external link: following it would open /dev/zero."""
    path = tmp_path / "linked.weights.h5"
    with h5py.File(path, "w") as h5:
        h5.create_group("layers/dense/vars")["0"] = h5py.ExternalLink("/dev/zero", "/kernel")
    return path


def missing_file(tmp_path):
    return tmp_path / "missing.keras"


def empty_directory(tmp_path):
    path = tmp_path / "empty"
    path.mkdir()
    return path


def pickled_npy(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([object()], dtype=object), allow_pickle=True)
    return path


BAD_INPUTS = [
    (missing_file, "no such file"),
    (empty_directory, "no model files found"),
    (truncated_zip, "not a valid zip archive"),
    (corrupt_hdf5, "not a valid HDF5 file"),
    (garbage_config, "config.json is not valid JSON"),
    (zip_not_a_model, "no config.json"),
    (absurd_hdf5_shape, "declares shape (1000000000, 1000000)"),
    (absurd_npy_shape, "declares shape (999999, 9)"),
    (external_link_hdf5, "has an external link /layers/dense/vars/0 to /dev/zero:/kernel"),
    (pickled_npy, "never unpickled"),
]


@pytest.mark.parametrize("make, reason", BAD_INPUTS, ids=[make.__name__ for make, _ in BAD_INPUTS])
def test_bad_input_gets_one_line_and_exit_2_and_the_good_file_is_still_scanned(tmp_path, make, reason):
    bad = make(tmp_path)
    good = tmp_path / "good.keras"
    shutil.copy(GOOD, good)
    result = run_cli("scan", bad, good, "--format", "json", expected_exit=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"nandoctor: error: {bad}: ")
    assert reason in lines[0]
    files = {entry["path"]: entry for entry in json.loads(result.stdout)["files"]}
    assert files[str(bad)]["status"] == "error" and reason in files[str(bad)]["error"]
    assert files[str(good)]["status"] == "scanned" and files[str(good)]["findings"]


def test_a_non_model_hdf5_found_in_a_directory_walk_is_skipped_not_an_error(tmp_path):
    with h5py.File(tmp_path / "dataset.h5", "w") as h5:
        h5.create_dataset("images", data=np.zeros((2, 2)))
    shutil.copy(FIXTURES / "clean" / "mlp.keras", tmp_path / "mlp.keras")
    result = run_cli("scan", tmp_path, "--format", "json", expected_exit=0)
    statuses = {entry["path"].rsplit("/", 1)[-1]: entry["status"] for entry in json.loads(result.stdout)["files"]}
    assert statuses == {"dataset.h5": "skipped", "mlp.keras": "scanned"}
    run_cli("scan", tmp_path / "dataset.h5", expected_exit=2)  # named explicitly, it is an error


def test_a_reason_quoting_a_hostile_name_stays_on_one_line(tmp_path):
    path = tmp_path / "newline.weights.h5"
    with h5py.File(path, "w") as h5:
        h5.create_group("layers/evil\nname/vars").create_dataset("0", shape=(10**9, 10**6), dtype="float32")
    result = run_cli("scan", path, expected_exit=2)
    assert len(result.stderr.strip().splitlines()) == 1 and "evil name" in result.stderr


def test_a_global_heap_that_would_loop_forever_in_libhdf5_is_refused(tmp_path):
    """A Keras 3 weights file whose string attribute lives in a global heap with an object of
    size 0: libhdf5 would read that object forever (found by the mutation tests). Run in a
    fresh process with a timeout, so a regression fails instead of hanging the suite."""
    import subprocess
    import sys

    path = tmp_path / "looping.weights.h5"
    with h5py.File(path, "w") as h5:
        variables = h5.create_group("layers/dense/vars")
        variables.attrs["name"] = "dense"
        variables.create_dataset("0", data=np.ones((4, 2), "float32"))
    data = bytearray(path.read_bytes())
    heap = data.index(b"GCOL")
    first_object = heap + 16
    data[first_object : first_object + 2] = (0).to_bytes(2, "little")  # the free-space object's index
    data[first_object + 8 : first_object + 16] = (0).to_bytes(8, "little")  # of size 0: no progress
    path.write_bytes(bytes(data))
    done = subprocess.run(
        [sys.executable, "-m", "nandoctor", "scan", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "corrupt global heap" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
