"""The scan's cache: an unchanged file is not read again and gives the same report; a changed
file, other rules or options, or an entry not to be trusted mean the file is read again."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nandoctor import cache as cache_module
from nandoctor import engine, result_json
from nandoctor.cache import DEFAULT_FOLDER, INDEX
from nandoctor.engine import scan
from nandoctor.report import Report
from nandoctor.reporters import FORMATS, render
from tests.conftest import FIXTURES, ROOT, run_cli

BROKEN = FIXTURES / "broken"


def refuse_to_read(monkeypatch):
    def load(path):
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(engine, "load", load)


def test_a_cached_scan_of_the_fixtures_is_the_fresh_report_and_reads_no_file(tmp_path, monkeypatch):
    fresh = scan([FIXTURES]).to_dict()
    assert scan([FIXTURES], cache_dir=tmp_path).to_dict() == fresh
    refuse_to_read(monkeypatch)
    assert scan([FIXTURES], cache_dir=tmp_path).to_dict() == fresh
    assert scan([FIXTURES], cache_dir=tmp_path, jobs=2).to_dict() == fresh


def test_the_json_report_of_a_cached_scan_copies_the_text_the_cache_holds_and_every_format_is_the_fresh_one(
    tmp_path, monkeypatch
):
    fresh = scan([FIXTURES])
    scan([FIXTURES], cache_dir=tmp_path)
    cached = scan([FIXTURES], cache_dir=tmp_path)

    def read_back(data):
        raise AssertionError("a finding was read back from the cache")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(result_json, "_finding_from_dict", read_back)
        assert render(cached, "json") == render(fresh, "json")
        assert cached.summary() == fresh.summary() and cached.exit_code() == fresh.exit_code()
    for output_format in FORMATS:
        assert render(cached, output_format) == render(fresh, output_format)


def test_a_cached_result_is_a_file_result_as_any_other(tmp_path):
    fresh = scan([FIXTURES])
    scan([FIXTURES], cache_dir=tmp_path)
    cached = scan([FIXTURES], cache_dir=tmp_path)
    assert cached.files == fresh.files and fresh.files == cached.files
    index = next(i for i, result in enumerate(cached.files) if result.findings)
    emptied = dataclasses.replace(cached.files[index], findings=[])  # as `scan --baseline` does
    assert emptied != fresh.files[index] and emptied == dataclasses.replace(fresh.files[index], findings=[])
    assert json.loads(render(Report([emptied]), "json"))["files"][0]["findings"] == []
    assert Report([emptied]).summary()["findings"] == 0


def test_ignores_per_file_and_per_layer_apply_to_a_cached_result_as_to_a_fresh_one(tmp_path, monkeypatch):
    path = BROKEN / "seed_c_zero_rows_cosine.keras"
    scan([path, FIXTURES / "clean"], cache_dir=tmp_path)  # cached with nothing ignored
    ignores = {"ignore": ["ND101:*emb*"], "per_file_ignores": {"seed_c_*.keras": ["ND1"], "clean/*.keras": ["ND9"]}}
    fresh = scan([path, FIXTURES / "clean"], **ignores).to_dict()
    refuse_to_read(monkeypatch)
    assert scan([path, FIXTURES / "clean"], cache_dir=tmp_path, **ignores).to_dict() == fresh
    assert sum(fresh["summary"].values()) and fresh["summary"]["suppressed"] > 0


def zero_rows_npy(path, zero_rows: list[int]) -> None:
    table = np.random.default_rng(0).standard_normal((64, 8)).astype("float32")
    table[zero_rows] = 0.0
    np.save(path, table)


def test_a_file_changed_after_caching_is_scanned_again_even_with_its_size_and_time_kept(tmp_path):
    path = tmp_path / "table.npy"
    zero_rows_npy(path, [])
    cache = tmp_path / "cache"
    assert not scan([path], cache_dir=cache).findings
    stamp = os.stat(path)
    zero_rows_npy(path, [3, 5, 7])  # same size
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # same modification time
    assert os.stat(path).st_size == stamp.st_size
    assert scan([path], cache_dir=cache).to_dict() == scan([path]).to_dict()
    assert [f.code for f in scan([path], cache_dir=cache).findings] == ["ND101"]


def settled_files(monkeypatch, *paths) -> None:
    """Count `paths` as settled from now on: a file's `stat` is trusted once its times are in
    the past (two seconds in the past outside this test), and they are, after a clock tick."""
    monkeypatch.setattr(cache_module, "_SETTLED_NS", 0)
    time.sleep(0.05)
    assert all(max(os.stat(p).st_mtime_ns, os.stat(p).st_ctime_ns) < time.time_ns() for p in paths)


def refuse_to_open(monkeypatch):
    def opened(path):
        raise AssertionError(f"{path} was opened")

    monkeypatch.setattr(cache_module, "_stamp_and_digest", opened)


def test_a_settled_file_is_answered_by_its_stat_without_being_opened(tmp_path, monkeypatch):
    path = tmp_path / "table.npy"
    zero_rows_npy(path, [2])
    settled_files(monkeypatch, path)
    fresh = scan([path], cache_dir=tmp_path / "cache").to_dict()
    refuse_to_open(monkeypatch)
    refuse_to_read(monkeypatch)
    assert scan([path], cache_dir=tmp_path / "cache").to_dict() == fresh


def test_a_settled_file_written_again_at_its_size_and_time_is_scanned_again(tmp_path, monkeypatch):
    path = tmp_path / "table.npy"
    zero_rows_npy(path, [])
    settled_files(monkeypatch, path)
    cache = tmp_path / "cache"
    assert not scan([path], cache_dir=cache).findings
    stamp = os.stat(path)
    zero_rows_npy(path, [3, 5, 7])  # same size; the write moves the change time, which no tool sets back
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # same modification time
    assert os.stat(path).st_ctime_ns != stamp.st_ctime_ns
    assert [f.code for f in scan([path], cache_dir=cache).findings] == ["ND101"]


def test_a_file_whose_stat_moved_but_not_its_content_keeps_its_entry_and_its_new_stat(tmp_path, monkeypatch):
    path = tmp_path / "table.npy"
    zero_rows_npy(path, [2])
    settled_files(monkeypatch, path)
    cache = tmp_path / "cache"
    fresh = scan([path], cache_dir=cache).to_dict()
    os.chmod(path, 0o600)  # the change time moves; size, time and content stay
    settled_files(monkeypatch, path)
    refuse_to_read(monkeypatch)
    assert scan([path], cache_dir=cache).to_dict() == fresh  # by its digest; its new stat recorded
    refuse_to_open(monkeypatch)
    assert scan([path], cache_dir=cache).to_dict() == fresh  # by its stat alone


def test_a_file_rewritten_with_new_content_is_scanned_again(tmp_path):
    path = tmp_path / "model.keras"
    shutil.copy(FIXTURES / "clean" / "mlp.keras", path)
    cache = tmp_path / "cache"
    assert not scan([path], cache_dir=cache).findings
    shutil.copy(BROKEN / "seed_c_zero_rows_cosine.keras", path)
    assert scan([path], cache_dir=cache).to_dict() == scan([path]).to_dict()
    assert scan([path], cache_dir=cache).findings


def test_other_rules_or_options_do_not_reuse_an_entry(tmp_path):
    path = BROKEN / "seed_c_zero_rows_cosine.keras"
    scan([path], cache_dir=tmp_path, select=["ND1"])
    assert scan([path], cache_dir=tmp_path, select=["ND6"]).to_dict() == scan([path], select=["ND6"]).to_dict()
    options = {"collapsed-weights": {"tiny": 1e-3}}
    scan([path], cache_dir=tmp_path, options=options)
    folders = {entry.parent for entry in tmp_path.rglob(INDEX)}
    assert len(folders) == 3  # one per set of rules and options


def entries(cache):
    found = sorted(cache.rglob(INDEX))
    assert found
    return found


def read_index(cache) -> tuple[Path, dict, bytes]:
    """The one index of a cache that holds one set of rules: its file, its entries by key (each
    [path, explicit, fingerprint, fields, [start, length, CRC-32] of its text]), and the
    results' texts they point into (after the entries' line)."""
    (index,) = entries(cache)
    header, _, texts = index.read_bytes().partition(b"\n")
    return index, json.loads(header)["entries"], texts


def write_index(index: Path, stored: dict, texts: bytes) -> None:
    schema = json.loads(index.read_bytes().partition(b"\n")[0])["schema"]
    index.write_bytes(json.dumps({"schema": schema, "entries": stored}).encode() + b"\n" + texts)


GARBAGE = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=12,
    ).map(lambda value: json.dumps(value).encode()),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=GARBAGE)
def test_a_corrupt_cache_index_is_ignored_and_rewritten(tmp_path, garbage):
    path = BROKEN / "seed_c_zero_rows_cosine.keras"
    cache = tmp_path / "corrupt"
    shutil.rmtree(cache, ignore_errors=True)
    fresh = scan([path]).to_dict()
    scan([path], cache_dir=cache)
    index, _, _ = read_index(cache)
    index.write_bytes(garbage)
    assert scan([path], cache_dir=cache).to_dict() == fresh
    _, stored, texts = read_index(cache)
    (entry,) = stored.values()
    start, length, _ = entry[-1]
    assert json.loads(b"{" + texts[start : start + length])["findings"]  # rewritten from the fresh scan


def as_json_value(garbage: bytes):
    """The value `garbage` spells in JSON, or its bytes as a hex string where it spells none."""
    try:
        return json.loads(garbage)
    except ValueError:
        return garbage.hex()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=GARBAGE)
def test_a_corrupt_entry_costs_its_own_file_a_scan_and_the_others_are_still_cached(tmp_path, garbage):
    tables = tmp_path / "tables"
    shutil.rmtree(tables, ignore_errors=True)
    tables.mkdir()
    zero_rows_npy(tables / "a.npy", [1])
    zero_rows_npy(tables / "b.npy", [2, 4])
    cache = tmp_path / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    fresh = scan([tables]).to_dict()
    scan([tables], cache_dir=cache)
    index, stored, texts = read_index(cache)
    key_of_a = next(key for key in stored if key.startswith(str(tables / "a.npy")))
    stored[key_of_a] = as_json_value(garbage)
    write_index(index, stored, texts)
    read = []
    original_load = engine.load

    def load(path):
        read.append(os.path.basename(path))
        return original_load(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "load", load)
        assert scan([tables], cache_dir=cache).to_dict() == fresh
    assert read == ["a.npy"]


def test_an_entry_whose_findings_were_tampered_with_in_shape_is_ignored(tmp_path):
    path = BROKEN / "seed_c_zero_rows_cosine.keras"
    scan([path], cache_dir=tmp_path)
    index, stored, texts = read_index(tmp_path)
    (entry,) = stored.values()
    start, length, _ = entry[-1]
    written = texts[start : start + length]
    tampered = re.sub(b'"severity": "[a-z]+"', b'"severity": "catastrophic"', written, count=1)
    assert tampered != written
    entry[-1][1] = len(tampered)
    write_index(index, stored, texts[:start] + tampered + texts[start + length :])
    assert scan([path], cache_dir=tmp_path).to_dict() == scan([path]).to_dict()


def test_an_entry_of_another_file_is_not_trusted(tmp_path):
    clean, broken = tmp_path / "clean.keras", tmp_path / "broken.keras"
    shutil.copy(FIXTURES / "clean" / "mlp.keras", clean)
    shutil.copy(BROKEN / "seed_c_zero_rows_cosine.keras", broken)
    cache = tmp_path / "cache"
    scan([broken], cache_dir=cache)
    scan([clean], cache_dir=cache)
    index, stored, texts = read_index(cache)
    (clean_key,) = [key for key in stored if key.startswith(str(clean))]
    (broken_key,) = [key for key in stored if key.startswith(str(broken))]
    stored[clean_key] = stored[broken_key]  # the clean file's entry now holds the broken file's findings
    write_index(index, stored, texts)
    assert not scan([clean], cache_dir=cache).findings


def test_one_index_keeps_the_entries_of_every_scan_into_the_cache(tmp_path, monkeypatch):
    first, second = tmp_path / "first.npy", tmp_path / "second.npy"
    zero_rows_npy(first, [0])
    zero_rows_npy(second, [])
    cache = tmp_path / "cache"
    scan([first], cache_dir=cache)
    scan([second], cache_dir=cache)  # adds its entry to the index the first scan wrote
    _, stored, _ = read_index(cache)
    assert sorted(entry[0] for entry in stored.values()) == [str(first), str(second)]
    fresh = scan([first, second]).to_dict()
    refuse_to_read(monkeypatch)
    assert scan([first, second], cache_dir=cache).to_dict() == fresh


def test_the_entry_of_a_file_that_is_gone_is_dropped_when_the_index_is_next_written(tmp_path):
    kept, gone, changed = tmp_path / "kept.npy", tmp_path / "gone.npy", tmp_path / "changed.npy"
    for path in (kept, gone, changed):
        zero_rows_npy(path, [])
    cache = tmp_path / "cache"
    scan([tmp_path], cache_dir=cache)
    gone.unlink()
    zero_rows_npy(changed, [1])  # a file to scan again, so that the index is written
    scan([tmp_path], cache_dir=cache)
    _, stored, _ = read_index(cache)
    assert sorted(entry[0] for entry in stored.values()) == [str(changed), str(kept)]


def test_the_cli_caches_beside_pyproject_in_a_folder_that_ignores_itself(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[tool.nandoctor]\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    monkeypatch.delenv("NANDOCTOR_CACHE_DIR", raising=False)
    model = FIXTURES / "clean" / "mlp.keras"
    run_cli("scan", model, "--no-cache", expected_exit=0)
    assert not (tmp_path / DEFAULT_FOLDER).exists()
    run_cli("scan", model, expected_exit=0)
    folder = tmp_path / DEFAULT_FOLDER
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (folder / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert len(entries(folder)) == 1


@pytest.mark.parametrize("where", ["option", "environment", "setting"])
def test_the_cache_folder_is_configurable(tmp_path, monkeypatch, where):
    chosen = tmp_path / "elsewhere"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NANDOCTOR_CACHE_DIR", raising=False)
    args = []
    if where == "option":
        args = ["--cache-dir", str(chosen)]
    elif where == "environment":
        monkeypatch.setenv("NANDOCTOR_CACHE_DIR", str(chosen))
    else:
        (tmp_path / "pyproject.toml").write_text('[tool.nandoctor]\ncache-dir = "elsewhere"\n')
    run_cli("scan", FIXTURES / "clean" / "mlp.keras", *args, expected_exit=0)
    assert len(entries(chosen)) == 1 and not (tmp_path / DEFAULT_FOLDER).exists()


def test_a_cache_dir_setting_that_is_not_a_path_is_a_usage_error(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[tool.nandoctor]\ncache-dir = 3\n")
    monkeypatch.chdir(tmp_path)
    assert "cache-dir" in run_cli("scan", FIXTURES / "clean" / "mlp.keras", expected_exit=2).stderr


def test_a_cache_folder_that_cannot_be_written_does_not_stop_the_scan(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    path = BROKEN / "seed_c_zero_rows_cosine.keras"
    assert scan([path], cache_dir=blocker / "cache").to_dict() == scan([path]).to_dict()


def modules_a_cli_run_imported(tmp_path, *args) -> list[str]:
    """`nandoctor ARGS` in a fresh process: which of h5py, numpy, rich and the rule modules it
    imported (`nandoctor.rules`: the rules, which import numpy and the analysis they share).
    It runs `main`, the command less its exit, which would leave no time to ask."""
    script = textwrap.dedent(
        f"""
        import sys
        from nandoctor.cli import main
        try:
            main([*{[str(arg) for arg in args]!r}], prog_name="nandoctor")
        except SystemExit as stop:
            assert not stop.code, stop.code
        finally:
            heavy = {{"h5py", "numpy", "rich", "nandoctor.rules"}}
            prefixes = {{".".join(name.split(".")[:parts]) for name in sys.modules for parts in (1, 2)}}
            print(sorted(heavy & prefixes), file=sys.stderr)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stderr.splitlines()[-1].replace("'", '"'))


def test_a_cached_json_scan_imports_no_rule_and_neither_numpy_h5py_nor_rich(tmp_path):
    models = tmp_path / "models"
    (models / "sub").mkdir(parents=True)  # a folder the walk asks whether it is one model
    shutil.copy(FIXTURES / "clean" / "mlp.keras", models / "sub" / "mlp.keras")
    shutil.copy(BROKEN / "seed_d_padding_flatten.h5", models / "legacy.h5")
    # Files the walk takes only when their first bytes say so: it asks without importing a reader.
    shutil.copy(FIXTURES / "clean" / "glove_vectors.txt", models / "glove.txt")
    shutil.copy(BROKEN / "gensim_vectors.bin", models / "gensim.bin")
    (models / "search.index").write_bytes(b"not a checkpoint's table")
    (models / "sharded.weights.json").write_text('{"weight_map": {"/layers/dense/vars": "sharded_00000.weights.h5"}}')
    shutil.copy(FIXTURES / "clean" / "mlp.weights.h5", models / "sharded_00000.weights.h5")
    scan_args = ["scan", models, "--format", "json", "--quiet", "--exit-zero", "--cache-dir", tmp_path / "cache"]
    read = modules_a_cli_run_imported(tmp_path, *scan_args)
    assert read == ["h5py", "nandoctor.rules", "numpy"]  # the files were read
    assert modules_a_cli_run_imported(tmp_path, *scan_args) == []  # nothing was read, nothing printed


def scans_that_read(monkeypatch) -> list[str]:
    """The names of the files the scan reads from now on (it reads them as before)."""
    read: list[str] = []
    original_load = engine.load

    def load(path):
        read.append(os.path.basename(path))
        return original_load(path)

    monkeypatch.setattr(engine, "load", load)
    return read


def test_a_file_is_scanned_again_when_a_file_its_format_reads_beside_it_changes_and_not_for_others(
    tmp_path, monkeypatch
):
    (tmp_path / "m.weights.json").write_text('{"weight_map": {"/layers/dense/vars": "m_00000.weights.h5"}}')
    shard = tmp_path / "m_00000.weights.h5"
    shutil.copy(FIXTURES / "clean" / "mlp.weights.h5", shard)
    zero_rows_npy(tmp_path / "table.npy", [2])
    targets = [tmp_path / "m.weights.json", tmp_path / "table.npy"]
    cache = tmp_path / "cache"
    fresh = scan(targets).to_dict()
    scan(targets, cache_dir=cache)
    read = scans_that_read(monkeypatch)
    later = shard.stat().st_mtime_ns + 10**9
    os.utime(shard, ns=(later, later))  # the shard index reads its shards
    (tmp_path / "table.npy.part").write_bytes(b"shares the stem `table`, and an .npy reads nothing beside it")
    assert scan(targets, cache_dir=cache).to_dict() == fresh
    assert read == ["m.weights.json"]
    scan(targets, cache_dir=cache)
    assert read == ["m.weights.json"]  # unchanged since


def test_a_model_folder_is_scanned_again_when_a_file_in_it_changes(tmp_path, monkeypatch):
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(FIXTURES / "clean" / "mlp.keras") as archive:
        archive.extractall(folder)
    cache = tmp_path / "cache"
    fresh = scan([folder]).to_dict()
    scan([folder], cache_dir=cache)
    read = scans_that_read(monkeypatch)
    assert scan([folder], cache_dir=cache).to_dict() == fresh and read == []
    metadata = folder / "metadata.json"
    metadata.write_text(metadata.read_text() + " ")
    assert scan([folder], cache_dir=cache).to_dict() == fresh and read == ["unzipped"]
