"""`scan --jobs N` gives the serial scan's report, in the same order; one file's failure, hang
or crash stays that file's one line; the workers never import TensorFlow or Keras."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from nandoctor import parallel
from nandoctor.engine import scan
from nandoctor.loaders import Target
from tests.conftest import FIXTURES, ROOT, run_cli
from tests.test_bad_input import BAD_INPUTS, GOOD


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_parallel_scan_of_the_fixtures_is_the_serial_report_in_the_same_order(method, monkeypatch):
    serial = scan([FIXTURES]).to_dict()
    monkeypatch.setattr(parallel, "start_method", lambda: method)
    assert scan([FIXTURES], jobs=2).to_dict() == serial
    assert len(serial["files"]) > 40  # enough files that the workers ran (eight each at least)


def test_a_handful_of_files_is_scanned_in_this_process_without_starting_workers(monkeypatch):
    def no_workers(*args, **kwargs):
        raise AssertionError("a worker process was started for three files")

    monkeypatch.setattr("nandoctor.engine.scan_in_processes", no_workers)
    report = scan(sorted((FIXTURES / "clean").glob("*.keras"))[:3], jobs=8)
    assert [result.status.value for result in report.files] == ["scanned"] * 3


class _RecordingPipe:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send_bytes(self, message: bytes) -> None:
        self.sent.append(message)


def _given(targets: list[Target], workers: int = 2) -> list[list[int]]:
    """What each of `workers` is sent of `targets` at the start of a run."""
    pool = parallel._Pool.__new__(parallel._Pool)
    pool.workers, pool._sizes = [parallel._Worker(None, _RecordingPipe()) for _ in range(workers)], {}
    queue = list(range(len(targets)))[::-1]
    for worker in pool.workers:
        pool.give(worker, queue, targets)
    assert [len(worker.connection.sent) for worker in pool.workers] == [len(worker.held) for worker in pool.workers]
    return [worker.held for worker in pool.workers]


@pytest.mark.parametrize(("files", "held"), [(40, [20, 20]), (3, [2, 1]), (3000, [parallel.IN_FLIGHT] * 2)])
def test_each_worker_is_sent_at_most_its_share_of_the_files_left(tmp_path, files, held):
    # A few files are spread over every worker, not all sent ahead to the first.
    (tmp_path / "model.keras").write_bytes(b"small")
    given = _given([Target(str(tmp_path / "model.keras"), False)] * files)
    assert [len(indices) for indices in given] == held
    assert [index for indices in given for index in indices] == list(range(sum(held)))


def test_large_files_are_sent_ahead_one_at_a_time(tmp_path):
    # Held back by one worker, large files would wait while another ran out of files.
    large, small = tmp_path / "large.keras", tmp_path / "small.keras"
    with open(large, "wb") as file:
        file.truncate(parallel.AHEAD_BYTES // 2 + 1)  # sparse: the size without the disk
    small.write_bytes(b"small")
    assert _given([Target(str(large), False)] * 10) == [[0, 1], [2, 3]]
    mixed = [Target(str(path), False) for path in (large, small, small, large, small, small, small)]
    assert _given(mixed, workers=1) == [[0, 1, 2, 3, 4, 5, 6]]  # one large file ahead and the small ones
    assert _given([*mixed, Target(str(large), False)], workers=1) == [[0, 1, 2, 3, 4, 5, 6]]


def test_bad_input_in_a_parallel_run_gives_the_serial_run_its_lines_and_exit_code(tmp_path):
    bad = [make(tmp_path) for make, _ in BAD_INPUTS]
    good = tmp_path / "good.keras"
    shutil.copy(GOOD, good)
    paths = [*bad, good, *sorted((FIXTURES / "clean").glob("*.keras"))]
    serial = run_cli("scan", *paths, "--format", "json", "--jobs", "1", "--no-cache", expected_exit=2)
    parallel_run = run_cli("scan", *paths, "--format", "json", "--jobs", "2", "--no-cache", expected_exit=2)
    assert parallel_run.stdout == serial.stdout
    assert parallel_run.stderr == serial.stderr
    assert len(serial.stderr.strip().splitlines()) == len(BAD_INPUTS)


# Runs the CLI in a fresh process (no TensorFlow loaded, so workers are forked and inherit
# the patch) with the .keras loader replaced by one that misbehaves on files named "bad".
_MISBEHAVING_LOADER = textwrap.dedent(
    """
    import os, signal, sys, time
    import nandoctor.loaders.keras_zip as keras_zip

    real_load = keras_zip.load_keras

    def misbehaving(path):
        if "bad" in os.path.basename(path):
            if sys.argv[1] == "hang":
                while True:
                    time.sleep(1)
            os.kill(os.getpid(), signal.SIGSEGV)  # as a crash inside libhdf5 would
        return real_load(path)

    keras_zip.load_keras = misbehaving
    from nandoctor.cli import main
    main(sys.argv[2:], prog_name="nandoctor")
    """
)


def run_with_misbehaving_loader(how: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _MISBEHAVING_LOADER, how, "scan", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _copies(tmp_path, names):
    for name in names:
        shutil.copy(GOOD, tmp_path / name)
    return [tmp_path / name for name in names]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_file_that_hangs_is_stopped_at_the_timeout_as_one_line_and_the_others_are_scanned(tmp_path, jobs):
    paths = _copies(tmp_path, ["a.keras", "bad.keras", "c.keras"])
    result = run_with_misbehaving_loader(
        "hang", *paths, "--jobs", jobs, "--timeout", "1", "--format", "json", "--no-cache"
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"nandoctor: error: {paths[1]}: took longer than --timeout 1 s: stopped"
    ]
    files = json.loads(result.stdout)["files"]
    assert [entry["status"] for entry in files] == ["scanned", "error", "scanned"]
    assert files[0]["findings"] and files[0]["findings"] == files[2]["findings"]


def test_a_worker_that_crashes_costs_its_file_one_line_and_the_others_are_scanned(tmp_path):
    paths = _copies(tmp_path, ["a.keras", "b.keras", "bad.keras", *(f"{i}.keras" for i in range(14))])
    result = run_with_misbehaving_loader("crash", *paths, "--jobs", "2", "--format", "json", "--no-cache")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"nandoctor: error: {paths[2]}: the process scanning it died (signal 11)"
    ]
    statuses = [entry["status"] for entry in json.loads(result.stdout)["files"]]
    assert statuses == ["scanned", "scanned", "error"] + ["scanned"] * 14


def test_a_crash_is_not_cached_and_is_tried_again(tmp_path):
    paths = _copies(tmp_path, ["a.keras", "bad.keras"])
    cache = tmp_path / "cache"
    crashed = run_with_misbehaving_loader("crash", *paths, "--jobs", "1", "--timeout", "60", "--cache-dir", cache)
    assert "died (signal 11)" in crashed.stderr
    again = run_cli("scan", *paths, "--cache-dir", cache, "--format", "json")
    assert [entry["status"] for entry in json.loads(again.stdout)["files"]] == ["scanned", "scanned"]


# Fake `tensorflow` and `keras` packages that leave a mark when anything imports them.
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_workers_never_import_tensorflow_or_keras(tmp_path, method):
    poison = tmp_path / "poison"
    for package in ("tensorflow", "keras", "tf_keras"):
        (poison / package).mkdir(parents=True)
        (poison / package / "__init__.py").write_text(
            f"open({str(tmp_path / 'imported')!r}, 'a').write({package!r} + '\\n')\n"
            "raise ImportError('imported by the static scan')\n"
        )
    script = textwrap.dedent(
        f"""
        import nandoctor.parallel as parallel
        from nandoctor.engine import scan
        parallel.start_method = lambda: {method!r}
        if __name__ == "__main__":
            report = scan([{str(FIXTURES)!r}], jobs=2)
            print(len(report.files), len(report.errors))
        """
    )
    (tmp_path / "run.py").write_text(script)
    result = subprocess.run(
        [sys.executable, str(tmp_path / "run.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{poison}{os.pathsep}{ROOT}"},
    )
    assert result.returncode == 0, result.stderr
    files, errors = map(int, result.stdout.split())
    assert files > 40 and errors == 0
    assert not (tmp_path / "imported").exists(), (tmp_path / "imported").read_text()


def test_jobs_and_timeout_must_be_positive():
    assert "0 is not in the range x>=1" in run_cli("scan", GOOD, "--jobs", "0", expected_exit=2).stderr
    assert "--timeout" in run_cli("scan", GOOD, "--timeout", "0", expected_exit=2).stderr
    with pytest.raises(ValueError, match="Received: 0"):
        scan([GOOD], jobs=0)


def _scan_the_fixtures_with_two_jobs(_) -> dict:
    return scan([FIXTURES], jobs=2).to_dict()


def test_a_scan_inside_a_daemonic_pool_worker_runs_in_that_process_and_gives_the_same_report():
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:  # its workers may not start processes
        (report,) = pool.map(_scan_the_fixtures_with_two_jobs, [0])
    assert report == scan([FIXTURES]).to_dict()
