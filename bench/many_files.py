"""Thousands of files, measured in one run on this machine (not a test: nothing here asserts).

A generated directory of at least 3,000 files of mixed formats and sizes (bench/.cache/many_files):
the repository's own fixtures copied and renamed (`.keras`, legacy `.h5`, `.weights.h5`, `.npz`,
`.npy`, word2vec text and binary), plus generated `.npy` tables, `.safetensors` files and word2vec
text files from 4 KiB to a few MiB. Everything is timed with the page cache warm, in this order:

(a) The byte floor: read every file's bytes, in this process.
(b) The metadata floor: open each file's structure and nothing more, in this process. A `.keras`:
    open the zip, parse config.json, open model.weights.h5 with h5py and visit every dataset (its
    shape and dtype); an HDF5 file: open it, parse its `model_config` attribute where it has one (a
    legacy model's config.json) and visit every dataset; `.npy`/`.npz`/`.safetensors`:
    parse the headers; word2vec: read the first line.
(c) `nandoctor scan DIR` as a user runs it (a fresh process of the command as installed, imports
    included, JSON to a file):
    one core (`--jobs 1`) and every core, cold (`--no-cache`), each round timed right after (b)
    and compared with it; then with the cache, a first run that fills it and a second that
    finds every file unchanged.
Where one core's time goes: by kind of file, the in-process scan per file against its metadata
floor; and phase by phase on `.keras` and `.h5` files, the loader alone, then with the weight
statistics, then with every rule.

(d) Where workers start to pay: `nandoctor.scan` in this process, on the first k files, serial
    against `jobs=` every core (what MIN_FILES_PER_WORKER in nandoctor/engine.py is set from).

    python bench/many_files.py [--quick] [--runs N]

Writes bench/results/many_files.json and the many-files section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results" / "many_files.json"

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from doc_sections import DOC, replace_section
from scan_speed import machine

GENERATED_PER_KIND = 120
PHASE_FILES = 400  # files of each model kind timed phase by phase


def fixture_files() -> list[Path]:
    return sorted(p for folder in ("clean", "broken") for p in (ROOT / "fixtures" / folder).iterdir() if p.is_file())


def build_directory(copies: int) -> Path:
    """The fixtures copied `copies` times under new names, and the generated files, built once."""
    directory = CACHE / f"many_files_{copies}"
    stamp = directory / ".complete"
    if stamp.exists():
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    import numpy as np

    rng = np.random.default_rng(0)
    for copy in range(copies):
        folder = directory / f"batch_{copy:03d}"
        folder.mkdir(parents=True)
        for source in fixture_files():
            shutil.copy(source, folder / f"copy{copy:03d}_{source.name}")
    generated = directory / "generated"
    generated.mkdir(parents=True)
    for i in range(GENERATED_PER_KIND):
        rows = int(rng.choice([32, 256, 2048, 8192]))  # 4 KiB to 8 MiB at 256 columns
        dim = int(rng.choice([32, 128, 256]))
        table = rng.standard_normal((rows, dim)).astype("float32")
        table[rng.integers(0, rows, size=max(1, rows // 100))] = 0.0  # some zero rows, as real tables have
        np.save(generated / f"table_{i:04d}.npy", table)
        write_safetensors(generated / f"tensors_{i:04d}.safetensors", {"embedding": table[: rows // 2]})
        write_word2vec_text(generated / f"vectors_{i:04d}.vec", table[: min(rows, 512)])
    stamp.write_text("")
    return directory


def write_safetensors(path: Path, tensors: dict) -> None:
    """The format's own layout (an 8-byte header length, a JSON header, the raw bytes)."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = array.tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))


def write_word2vec_text(path: Path, table) -> None:
    with open(path, "w") as file:
        file.write(f"{table.shape[0]} {table.shape[1]}\n")
        for i, row in enumerate(table):
            file.write(f"w{i} " + " ".join(f"{v:.4f}" for v in row) + "\n")


def model_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))


def byte_floor(files: list[Path]) -> float:
    start = time.perf_counter()
    for path in files:
        with open(path, "rb") as file:
            while file.read(1 << 20):
                pass
    return time.perf_counter() - start


def metadata_floor(files: list[Path]) -> float:
    import h5py
    import numpy as np

    def visit_datasets(h5) -> None:
        def visit(name, item):
            if isinstance(item, h5py.Dataset):
                item.shape, item.dtype  # noqa: B018 (reading them is the point)

        h5.visititems(visit)

    start = time.perf_counter()
    for path in files:
        name = path.name
        if name.endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                json.loads(archive.read("config.json"))
                with archive.open("model.weights.h5") as member, h5py.File(member, "r") as h5:
                    visit_datasets(h5)
        elif name.endswith((".h5", ".hdf5")):
            with h5py.File(path, "r") as h5:
                config = h5.attrs.get("model_config")  # a legacy model's config.json
                if config is not None:
                    json.loads(config)
                visit_datasets(h5)
        elif name.endswith(".npy"):
            with open(path, "rb") as file:
                if np.lib.format.read_magic(file) == (1, 0):
                    np.lib.format.read_array_header_1_0(file)
                else:
                    np.lib.format.read_array_header_2_0(file)
        elif name.endswith(".npz"):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    with archive.open(member) as file:
                        version = np.lib.format.read_magic(file)
                        if version == (1, 0):
                            np.lib.format.read_array_header_1_0(file)
                        else:
                            np.lib.format.read_array_header_2_0(file)
        elif name.endswith(".safetensors"):
            with open(path, "rb") as file:
                (length,) = struct.unpack("<Q", file.read(8))
                json.loads(file.read(length))
        else:  # word2vec text or binary: the header line
            with open(path, "rb") as file:
                file.readline()
    return time.perf_counter() - start


def cli_seconds(directory: Path, *args: str) -> tuple[float, dict]:
    """Wall seconds of `nandoctor scan DIR ARGS` in a fresh process, and its report's summary."""
    with tempfile.NamedTemporaryFile(suffix=".json") as output:
        start = time.perf_counter()
        child = subprocess.run(
            [
                *installed_nandoctor(),
                "scan",
                str(directory),
                "--quiet",
                "--format",
                "json",
                "--exit-zero",
                "-o",
                output.name,
                *args,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=_child_environment(),
        )
        seconds = time.perf_counter() - start
        if child.returncode not in (0, 2):
            raise RuntimeError(f"nandoctor scan exited {child.returncode}: {child.stderr[-2000:]}")
        return seconds, json.loads(Path(output.name).read_text())["summary"]


def median_of(runs: int, measure) -> float:
    return statistics.median(measure() for _ in range(runs))


def where_workers_pay(files: list[Path], jobs: int, runs: int) -> list[dict]:
    import nandoctor.engine as engine
    from nandoctor.engine import scan

    rows = []
    floor = engine.MIN_FILES_PER_WORKER
    try:
        engine.MIN_FILES_PER_WORKER = 1  # so that `jobs=` starts workers however few the files
        for count in (1, 2, 4, 8, 16, 32, 64):
            chosen = [str(p) for p in files[:: max(1, len(files) // count)][:count]]

            def timed(jobs_: int, chosen: list[str] = chosen) -> float:
                start = time.perf_counter()
                scan(chosen, jobs=jobs_)
                return time.perf_counter() - start

            rows.append(
                {
                    "files": count,
                    "serial_s": median_of(runs, lambda: timed(1)),
                    "workers_s": median_of(runs, lambda: timed(jobs)),
                }
            )
    finally:
        engine.MIN_FILES_PER_WORKER = floor
    return rows


def measure(copies: int, runs: int) -> dict:
    from nandoctor.parallel import cpu_count

    directory = build_directory(copies)
    files = model_files(directory)
    cores = cpu_count()
    byte_floor(files)  # into the page cache
    command = installed_nandoctor()
    editable = [sys.executable, "-m", "nandoctor"]  # this checkout's environment, as `make test` builds it
    _startup_seconds(command)  # and nandoctor's bytecode into its cache
    results: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "load_average_before": os.getloadavg(),
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "kinds": _kinds(files),
        "cores": cores,
        "runs": runs,
        "byte_floor_s": median_of(runs, lambda: byte_floor(files)),
    }
    results["summary"] = cli_seconds(directory, "--jobs", "1", "--no-cache")[1]  # and the rest of the bytecode
    # In rounds: this machine's speed drifts by a tenth over minutes, so a floor timed a minute
    # before the scan it is compared with can be off by as much; each round times the floor, one
    # core and every core back to back, and each ratio is the median of the rounds' ratios.
    rounds = [
        (
            metadata_floor(files),
            cli_seconds(directory, "--jobs", "1", "--no-cache")[0],
            cli_seconds(directory, "--jobs", str(cores), "--no-cache")[0],
        )
        for _ in range(runs)
    ]
    results["rounds"] = rounds
    results["metadata_floor_s"] = statistics.median(floor for floor, _, _ in rounds)
    results["one_core_s"] = statistics.median(one for _, one, _ in rounds)
    results["all_cores_s"] = statistics.median(every for _, _, every in rounds)
    results["one_core_ratio"] = statistics.median(one / floor for floor, one, _ in rounds)
    results["all_cores_ratio"] = statistics.median(every / floor for floor, _, every in rounds)
    cached_runs = []
    filling = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache:
            filling.append(cli_seconds(directory, "--cache-dir", cache)[0])
            cached_runs.append(cli_seconds(directory, "--cache-dir", cache)[0])
    results["cold_filling_cache_s"] = statistics.median(filling)
    results["cached_s"] = statistics.median(cached_runs)
    results["cached_ratio"] = statistics.median(cold / cached for cold, cached in zip(filling, cached_runs))
    results["startup_s"] = median_of(runs, lambda: _startup_seconds(command))
    results["startup_editable_s"] = median_of(runs, lambda: _startup_seconds(editable))
    results["interpreter_s"] = median_of(runs, lambda: _interpreter_seconds(command[0]))
    results["cores_free"] = cores_free(cores)
    results["cached_parts"] = cached_parts(directory, runs)
    results["per_kind"] = per_kind(files, runs)
    results["phases"] = phases(files, runs)
    results["where_workers_pay"] = where_workers_pay(files, cores, runs)
    results["load_average_after"] = os.getloadavg()
    return results


def per_kind(files: list[Path], runs: int) -> dict[str, dict]:
    """Milliseconds a file of each kind costs: `nandoctor.scan` in this process, one core,
    against the metadata floor of the same files (where the time goes)."""
    from nandoctor.engine import scan

    kinds: dict[str, list[Path]] = {}
    for path in files:
        kinds.setdefault(_kind(path), []).append(path)
    table = {}
    for kind, chosen in sorted(kinds.items()):

        def timed_scan(chosen=chosen) -> float:
            start = time.perf_counter()
            scan([str(p) for p in chosen], jobs=1)
            return time.perf_counter() - start

        scan_s = median_of(runs, timed_scan)
        floor_s = median_of(runs, lambda chosen=chosen: metadata_floor(chosen))
        table[kind] = {
            "files": len(chosen),
            "scan_ms": 1000 * scan_s / len(chosen),
            "floor_ms": 1000 * floor_s / len(chosen),
            "ratio": scan_s / floor_s,
        }
    return table


def phases(files: list[Path], runs: int) -> dict[str, dict]:
    """Milliseconds per file of the model kinds, phase by phase, one core, in this process: the
    loader alone (open, config, weights tree, the HDF5 checks), then the weight statistics
    every weight rule shares, then every rule (what `scan` does)."""
    from nandoctor.catalogue import Selection
    from nandoctor.diagnosis import RunsOn
    from nandoctor.engine import run_rules
    from nandoctor.loaders import load

    rules = Selection.resolve().instances(RunsOn.FILE)
    table = {}
    for kind in (".keras", ".h5"):
        chosen = [str(p) for p in files if _kind(p) == kind][:PHASE_FILES]

        def loader(chosen=chosen) -> None:
            for path in chosen:
                with load(path):
                    pass

        def statistics_(chosen=chosen) -> None:
            for path in chosen:
                with load(path) as view:
                    view.compute_weight_stats()

        def every_rule(chosen=chosen) -> None:
            for path in chosen:
                with load(path) as view:
                    run_rules(view, rules)

        row = {"files": len(chosen)}
        for name, work in (
            ("metadata_floor", lambda chosen=chosen: metadata_floor([Path(p) for p in chosen])),
            ("load", loader),
            ("load_and_statistics", statistics_),
            ("load_and_rules", every_rule),
        ):
            row[name + "_ms"] = 1000 * median_of(runs, lambda work=work: _seconds(work)) / len(chosen)
        table[kind] = row
    return table


def _seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _burn(_) -> None:
    total = 0
    for i in range(3_000_000):
        total += i


def cores_free(cores: int) -> float:
    """How many cores this run really had: a pure-Python loop timed alone, then on every core
    at once (2.0 on an idle 2-core machine; other work on the machine lowers it)."""
    import multiprocessing

    start = time.perf_counter()
    _burn(0)
    alone = time.perf_counter() - start
    with multiprocessing.get_context("fork").Pool(cores) as pool:
        pool.map(_burn, range(cores))  # started and warm
        start = time.perf_counter()
        pool.map(_burn, range(cores), chunksize=1)
        together = time.perf_counter() - start
    return cores * alone / together


def cached_parts(directory: Path, runs: int) -> dict[str, float]:
    """Where a cached run's time goes, in this process: finding the files, the cache lookups,
    and rendering the report as JSON and as text (the default output)."""
    from nandoctor.engine import scan
    from nandoctor.loaders import discover
    from nandoctor.reporters import render

    with tempfile.TemporaryDirectory() as cache:
        scan([str(directory)], cache_dir=cache)
        parts = {
            "discover_s": median_of(runs, lambda: _seconds(lambda: list(discover([str(directory)])))),
            "cached_scan_s": median_of(runs, lambda: _seconds(lambda: scan([str(directory)], cache_dir=cache))),
        }
        report = scan([str(directory)], cache_dir=cache)
    parts["render_json_s"] = median_of(runs, lambda: _seconds(lambda: render(report, "json")))
    parts["render_text_s"] = median_of(runs, lambda: _seconds(lambda: render(report, "text")))
    return parts


INSTALLED = CACHE / "installed"


def console_script() -> str:
    """What pip writes as the `nandoctor` command, from [project.scripts] in pyproject.toml."""
    import tomllib

    entry = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["nandoctor"]
    module, function = entry.split(":")
    return f"import sys\nfrom {module} import {function}\nsys.exit({function}())\n"


@functools.cache  # once a run: a fresh copy has no bytecode, which every process would compile
def installed_nandoctor() -> list[str]:
    """The `nandoctor` command of this checkout as installing its wheel gives it: the package
    copied afresh into a virtual environment of its own (bench/.cache/installed), which finds
    its dependencies through a plain path to this interpreter's site-packages, and the script
    pip writes. This checkout's own environment holds an editable install, whose import hook
    (setuptools' finder, run from a .pth file) costs every start of Python 8 ms here that a
    user's installed nandoctor does not pay."""
    python = INSTALLED / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(INSTALLED)], check=True)
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    ).resolve()
    dependencies = [p for p in sys.path if p.endswith("site-packages") and Path(p).resolve() != site]
    (site / "dependencies.pth").write_text("".join(f"{p}\n" for p in dependencies))
    shutil.rmtree(site / "nandoctor", ignore_errors=True)
    shutil.copytree(ROOT / "nandoctor", site / "nandoctor", ignore=shutil.ignore_patterns("__pycache__"))
    script = INSTALLED / "bin" / "nandoctor"
    script.write_text(console_script())
    return [str(python), str(script)]


def _child_environment() -> dict[str, str]:
    """The environment of each timed `nandoctor` process: Python's bytecode cache on (an
    installed package has its .pyc files; a sandbox that sets PYTHONDONTWRITEBYTECODE would
    otherwise charge every run for compiling nandoctor again), and no PYTHONPATH."""
    drop = ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")
    return {key: value for key, value in os.environ.items() if key not in drop}


def _interpreter_seconds(python: str) -> float:
    """A fresh `python -c pass`: what no command written in Python can start under."""
    start = time.perf_counter()
    subprocess.run([python, "-c", "pass"], capture_output=True, env=_child_environment())
    return time.perf_counter() - start


def _startup_seconds(command: list[str]) -> float:
    """A fresh `nandoctor scan` of nothing readable: the interpreter and the imports."""
    start = time.perf_counter()
    subprocess.run(
        [*command, "scan", "/nonexistent.keras", "--quiet", "--no-cache"],
        capture_output=True,
        cwd=ROOT,
        env=_child_environment(),
    )
    return time.perf_counter() - start


def _kinds(files: list[Path]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for path in files:
        kinds[_kind(path)] = kinds.get(_kind(path), 0) + 1
    return dict(sorted(kinds.items()))


def _kind(path: Path) -> str:
    return ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix


def markdown(r: dict) -> str:
    n = r["files"]
    rate = lambda seconds: f"{n / seconds:,.0f}"  # noqa: E731
    bytes_ = lambda seconds: f"{seconds / r['byte_floor_s']:.1f}x the byte floor"  # noqa: E731
    meta, one, every = r["metadata_floor_s"], r["one_core_s"], r["all_cores_s"]
    kinds = ", ".join(f"{count:,} `{suffix}`" for suffix, count in r["kinds"].items())
    pay = "\n".join(
        f"| {row['files']} | {row['serial_s'] * 1000:.0f} ms | {row['workers_s'] * 1000:.0f} ms |"
        for row in r["where_workers_pay"]
    )
    kind_rows = "\n".join(
        f"| `{kind}` | {row['files']:,} | {row['scan_ms']:.2f} ms | {row['floor_ms']:.2f} ms | {row['ratio']:.1f}x |"
        for kind, row in r["per_kind"].items()
    )
    phase_rows = "\n".join(
        f"| `{kind}` | {row['metadata_floor_ms']:.2f} | {row['load_ms']:.2f} | "
        f"{row['load_and_statistics_ms']:.2f} | {row['load_and_rules_ms']:.2f} |"
        for kind, row in r["phases"].items()
    )
    cp = r["cached_parts"]
    rounds = "; ".join(f"{floor:.2f}, {one_:.2f}, {every_:.2f} s" for floor, one_, every_ in r["rounds"])
    every_to_one = statistics.median(every_ / one_ for _, one_, every_ in r["rounds"])
    load = ", ".join(f"{value:.2f}" for value in r["load_average_before"])
    # The one-minute load says whether other work was running as the run began.
    shared = ", so other work shared the cores" if r["load_average_before"][0] >= 0.5 else ""
    return f"""<!-- many_files:start (written by bench/many_files.py; do not edit) -->
Measured {r["date"]} on {r["machine"]["cpu"]} ({r["cores"]} cores; load average {load} when it began{shared}), Python {r["machine"]["python"]}, h5py {r["machine"]["h5py"]}, page cache warm,
median of {r["runs"]} rounds. Each round times the metadata floor, one core and every core back to back (this
machine's speed drifts by a tenth over minutes), and each ratio is the median of the rounds' ratios; the rounds
(floor, one core, every core): {rounds}.
The directory: **{n:,} files**, {r["bytes"] / 2**20:.0f} MiB ({kinds}); the scan found
{r["summary"]["findings"]:,} findings and {r["summary"]["unreadable"]} unreadable files.

| measurement | time | files/s | ratio |
|---|---|---|---|
| (a) byte floor: read every file's bytes | {r["byte_floor_s"]:.2f} s | {rate(r["byte_floor_s"])} | |
| (b) metadata floor: open each file's structure, one core | {meta:.2f} s | {rate(meta)} | 1; {bytes_(meta)} |
| (c) `nandoctor scan --jobs 1 --no-cache` | {one:.2f} s | {rate(one)} | **{r["one_core_ratio"]:.2f}x** the metadata floor (goal: at most 1.5x); {bytes_(one)} |
| (c) `nandoctor scan --jobs {r["cores"]} --no-cache` | {every:.2f} s | {rate(every)} | **{r["all_cores_ratio"]:.2f}x** the metadata floor (goal: at most 0.8x); {every_to_one:.2f}x one core; {bytes_(every)} |
| (c) `nandoctor scan`, cold, filling the cache | {r["cold_filling_cache_s"]:.2f} s | {rate(r["cold_filling_cache_s"])} | {bytes_(r["cold_filling_cache_s"])} |
| (c) `nandoctor scan`, every file unchanged (cached) | {r["cached_s"]:.2f} s | {rate(r["cached_s"])} | **{r["cached_ratio"]:.1f}x faster** than cold (goal: at least 20x); {one / r["cached_s"]:.1f}x faster than one core; {bytes_(r["cached_s"])} |
| a fresh process's start (the interpreter, and the imports of a scan that reads nothing), included in each (c) | {r["startup_s"]:.3f} s | | in this checkout's editable install: {r["startup_editable_s"]:.3f} s |
| the interpreter alone (`python -c pass`) | {r["interpreter_s"]:.3f} s | | |

Each (c) runs the `nandoctor` command as a user's installation has it: this checkout's package copied into a
virtual environment of its own (bench/.cache/installed; its dependencies on a plain path), and the script pip
writes. An editable install (`pip install -e .`, what `make test` builds) starts every process through
setuptools' import hook, which the start with it above includes.

Cores really free during this run: **{r["cores_free"]:.2f}** of {r["cores"]} (a pure-Python loop on every core at once
against alone), which bounds what `--jobs {r["cores"]}` can gain. A cached run, part by part (in process):
finding the files {cp["discover_s"]:.2f} s, the whole cached scan (finding included) {cp["cached_scan_s"]:.2f} s; rendering
the report as JSON {cp["render_json_s"]:.2f} s, as text (the default output) {cp["render_text_s"]:.2f} s.

Where one core's time goes, by kind (`nandoctor.scan` in process after imports, `jobs=1`, against the
metadata floor of the same files; word2vec text has no metadata to speak of: the scan parses every number):

| kind | files | scan per file | metadata floor per file | ratio |
|---|---|---|---|---|
{kind_rows}

Phase by phase on {r["phases"][".keras"]["files"]} `.keras` and {r["phases"][".h5"]["files"]} `.h5` files (ms per file, in process, one core): the loader alone (open,
config, weights tree, the HDF5 link and heap checks), then with the weight statistics the weight
rules share, then with every rule:

| kind | metadata floor | loader | + weight statistics | + every rule |
|---|---|---|---|---|
{phase_rows}

(d) Where workers start to pay (`nandoctor.scan` in process, after imports; fork start):

| files | serial | {r["cores"]} workers |
|---|---|---|
{pay}
<!-- many_files:end -->"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a directory of about 400 files and one run (smoke test)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--rewrite-doc",
        action="store_true",
        help="write the docs section again from the last results, measuring nothing",
    )
    args = parser.parse_args()
    if args.rewrite_doc:
        replace_section("many_files", "Thousands of files", markdown(json.loads(RESULTS.read_text())))
        return
    copies = 4 if args.quick else 50
    results = measure(copies, 1 if args.quick else args.runs)
    print(json.dumps(results, indent=2))
    if not args.quick:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        replace_section("many_files", "Thousands of files", markdown(results))
        print(f"wrote {RESULTS.relative_to(ROOT)} and {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
