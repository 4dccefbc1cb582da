"""Discovery: a directory walk finds what os.walk and realpath find, in the same order, each
file once however it is reached, with one realpath per folder walked, not one per file."""

from __future__ import annotations

import os
import shutil
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

import nandoctor.loaders as loaders
from nandoctor.loaders import Target, directory_format, discover, format_claimed_by
from tests.conftest import FIXTURES

MODEL = FIXTURES / "clean" / "mlp.keras"
TABLE = FIXTURES / "clean" / "item_vectors.npy"
LEGACY = FIXTURES / "broken" / "seed_d_padding_flatten.h5"


def discover_as_before(paths: list[str]) -> list[Target]:
    """The walk as nandoctor did it before it kept real paths: os.walk, and realpath per file."""
    found: list[Target] = []
    seen: set[str] = set()
    for path in paths:
        if os.path.isdir(path) and directory_format(path) is None:
            targets = []
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in loaders._SKIPPED_DIRECTORIES)
                models = [d for d in dirs if directory_format(os.path.join(root, d)) is not None]
                targets += [Target(os.path.join(root, d), False) for d in models]
                dirs[:] = [d for d in dirs if d not in models]
                parts = {
                    part
                    for name in files
                    if (claimed := format_claimed_by(name)) is not None
                    for part in loaders._parts_of(os.path.join(root, name), claimed)
                }
                for name in sorted(files):
                    claimed = format_claimed_by(name)
                    full = os.path.join(root, name)
                    if claimed is None or name in parts:
                        continue
                    special = loaders._not_regular(full)
                    if special is not None:
                        targets.append(Target(full, False, special))
                    elif claimed.walked or (claimed.sniff is not None and loaders._function(claimed.sniff)(full)):
                        targets.append(Target(full, False))
        else:
            targets = list(target for target, _ in loaders._targets(path))
        for target in targets:
            if os.path.realpath(target.path) not in seen:
                seen.add(os.path.realpath(target.path))
                found.append(target)
    return found


@pytest.fixture
def tree(tmp_path):
    """Models in nested folders, an unzipped model, and the links and oddities a walk meets."""
    root = tmp_path / "models"
    (root / "b" / "deeper").mkdir(parents=True)
    (root / "a").mkdir()
    (root / ".hidden").mkdir()
    (root / "__pycache__").mkdir()
    shutil.copy(MODEL, root / "b" / "deeper" / "model.keras")
    shutil.copy(MODEL, root / ".hidden" / "model.keras")
    shutil.copy(MODEL, root / "__pycache__" / "model.keras")
    shutil.copy(LEGACY, root / "a" / "Legacy.H5")
    shutil.copy(TABLE, root / "table.npy")
    (root / "notes.txt").write_text("not vectors\n")
    with zipfile.ZipFile(MODEL) as archive:  # the unzipped model: what the .keras holds
        archive.extractall(root / "unzipped")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(TABLE, outside / "far.npy")
    with zipfile.ZipFile(MODEL) as archive:
        archive.extractall(outside / "unzipped_elsewhere")
    os.symlink(root / "table.npy", root / "a" / "same_table.npy")  # the same file, reached twice
    os.symlink(outside, root / "linked_folder")  # listed, never walked into
    os.symlink(outside / "unzipped_elsewhere", root / "linked_model")  # a model folder through a link
    os.symlink(root, root / "b" / "loop")  # a link back up: never walked
    os.symlink(tmp_path / "nowhere.npy", root / "broken_link.npy")
    os.mkfifo(root / "pipe.npy")
    return root


def test_a_walk_finds_what_os_walk_and_realpath_find_in_the_same_order(tree):
    for paths in ([str(tree)], [str(tree), str(tree / "table.npy")], [str(tree / "a"), str(tree)]):
        assert list(discover(paths)) == discover_as_before(paths)
    found = [os.path.relpath(target.path, tree) for target in discover([str(tree)])]
    assert found == [
        "linked_model",
        "unzipped",
        "broken_link.npy",
        "pipe.npy",
        "table.npy",
        "a/Legacy.H5",
        "b/deeper/model.keras",
    ]  # a/same_table.npy is table.npy, reached again


def test_a_walk_asks_realpath_of_the_folder_and_the_links_only(tree, monkeypatch):
    asked = []
    realpath = os.path.realpath

    def counted(path):
        asked.append(os.path.relpath(path, tree))
        return realpath(path)

    monkeypatch.setattr(os.path, "realpath", counted)
    list(discover([str(tree)]))
    assert sorted(asked) == [".", "a/same_table.npy", "broken_link.npy", "linked_model"]


def test_a_name_claims_a_format_by_its_suffix_alone_the_longest_first():
    claimed = {name: format_claimed_by(name) for name in ("m.weights.h5", "M.H5", "x.keras", "t.txt", "readme")}
    assert {name: f.name if f else None for name, f in claimed.items()} == {
        "m.weights.h5": "weights-h5",
        "M.H5": "h5",
        "x.keras": "keras",
        "t.txt": "word2vec",
        "readme": None,
    }


_SUFFIX_PARTS = sorted({part for suffix in loaders.SUFFIXES for part in suffix.split(".") if part})


@given(
    st.lists(
        st.one_of(st.sampled_from(_SUFFIX_PARTS), st.text("abwh5.", max_size=4)),
        max_size=5,
    ).map(".".join)
)
def test_the_suffix_lookup_takes_the_longest_suffix_a_name_ends_with(name):
    longest = max((len(s) for s in loaders.SUFFIXES if name.lower().endswith(s)), default=0)
    expected = next(
        (f for f in loaders.FORMATS for s in f.suffixes if len(s) == longest and name.lower().endswith(s)), None
    )
    assert loaders._claimed_by_name(name.lower()) is expected
