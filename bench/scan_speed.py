"""Scan speed, measured in one run on this machine (not a test: nothing here asserts).

(a) Cold start: `nandoctor scan` of a small fixture in a fresh process, against a fresh
    process doing `keras.models.load_model` on the same file. Wall time and peak resident
    memory of each child (from `os.wait4`), median of several runs.
(b) Throughput: a `.keras` holding a 1,000,000 x 256 float32 embedding (1 GiB). The full
    scan (every rule, weights included; `nandoctor.scan` timed in this process after its
    imports) against the floor of merely reading the bytes of its `model.weights.h5`
    member from the file in the same process, both from the page cache; and the peak
    memory of a CLI run on it.
(c) Tie check: the CLI's peak memory while ND402 compares a 1 GiB embedding with its
    1 GiB transposed copy block by block.

    python bench/scan_speed.py [--quick]

Writes bench/results/scan_speed.json and the scan-speed section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results" / "scan_speed.json"
SMALL = ROOT / "fixtures" / "clean" / "mlp.keras"
ROWS, DIM = 1_000_000, 256

sys.path.insert(0, str(ROOT))

from doc_sections import DOC, replace_section

# The child reports its own peak resident memory (VmHWM) as it exits. `ru_maxrss` from
# wait4 would not do: Linux carries the forked parent's high-water mark across exec.
_REPORT_PEAK = (
    "import atexit, sys\n"
    "def _peak():\n"
    "    line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
    "    sys.stderr.write('PEAK_KIB ' + line.split()[1] + '\\n')\n"
    "atexit.register(_peak)\n"
)


def run_child(code: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one fresh Python process running `code`."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-c", _REPORT_PEAK + code],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    wall = time.perf_counter() - start
    if child.returncode not in (0, 1):
        raise RuntimeError(f"{code!r} exited with {child.returncode}: {child.stderr[-2000:]}")
    peak = next(line for line in child.stderr.splitlines() if line.startswith("PEAK_KIB"))
    return wall, int(peak.split()[1]) / 1024


def scan_command(path: Path) -> str:
    return f"import sys; sys.argv = ['nandoctor', 'scan', {str(path)!r}]; from nandoctor.cli import main; main()"


def median_child(code: str, runs: int) -> dict[str, float]:
    samples = [run_child(code) for _ in range(runs)]
    return {
        "wall_s": statistics.median(s[0] for s in samples),
        "peak_rss_mib": statistics.median(s[1] for s in samples),
        "runs": runs,
    }


def cold_start(runs: int) -> dict:
    scan = median_child(scan_command(SMALL), runs)
    load = median_child(f"import keras; keras.models.load_model({str(SMALL)!r})", runs)
    return {
        "file": str(SMALL.relative_to(ROOT)),
        "nandoctor_scan": scan,
        "keras_load_model": load,
        "speedup": load["wall_s"] / scan["wall_s"],
        "memory_ratio": scan["peak_rss_mib"] / load["peak_rss_mib"],
    }


_BUILD = """
import sys, keras, numpy as np
rows, dim, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
model = keras.Sequential([keras.Input((8,), dtype="int32"), keras.layers.Embedding(rows, dim, name="big_emb")])
values = np.random.default_rng(0).standard_normal((rows, dim), dtype=np.float32)
values[::10] = 0.0  # one row in ten left zero, as a pretrained table leaves them
model.get_layer("big_emb").embeddings.assign(values)
model.save(path)
"""


def build_big_model(path: Path, rows: int) -> None:
    """Saved by Keras itself, in a child process: this one never imports TensorFlow."""
    if path.exists():
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-c", _BUILD, str(rows), str(DIM), str(path)],
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        stderr=subprocess.DEVNULL,
    )


_BUILD_TIE = """
import sys, keras, numpy as np
rows, dim, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

class TiedOutputProjection(keras.layers.Layer):  # a hand-written tie: its own copy of the matrix
    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], rows))
    def call(self, x):
        return keras.ops.matmul(x, self.kernel)

tokens = keras.Input((8,), dtype="int32")
embedding = keras.layers.Embedding(rows, dim, name="big_emb")
output = TiedOutputProjection(name="tied_output")
model = keras.Model(tokens, output(embedding(tokens)))
values = np.random.default_rng(0).standard_normal((rows, dim), dtype=np.float32)
embedding.embeddings.assign(values)
values[-1] += 1.0  # the copy has drifted in its last row: the comparison must read to the end
output.kernel.assign(values.T)
del values
model.save(path)
"""


def tie_check(runs: int, quick: bool) -> dict:
    """(c) ND402 comparing a 1 GiB embedding with a 1 GiB transposed copy, as the CLI runs it."""
    rows = 50_000 if quick else ROWS
    path = CACHE / f"tied_copy_{rows}_x_{DIM}.keras"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-c", _BUILD_TIE, str(rows), str(DIM), str(path)],
            check=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            stderr=subprocess.DEVNULL,
        )
    code = (
        f"import sys; sys.argv = ['nandoctor', 'scan', {str(path)!r}, '--select', 'ND402']; "
        "from nandoctor.cli import main; main()"
    )
    cli = median_child(code, runs)
    return {
        "file_bytes": path.stat().st_size,
        "rows": rows,
        "dim": DIM,
        "cli_peak_rss_mib": cli["peak_rss_mib"],
        "cli_wall_s": cli["wall_s"],
        "runs": runs,
    }


def read_member_floor(path: Path) -> float:
    """Seconds to read the bytes of model.weights.h5 out of the .keras file, and nothing else."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("model.weights.h5")
    from nandoctor.loaders.zip_members import member_data_offset

    offset = member_data_offset(str(path), info)
    buffer = bytearray(16 << 20)
    view = memoryview(buffer)
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as file:
        file.seek(offset)
        remaining = info.file_size
        while remaining:
            remaining -= file.readinto(view[: min(len(view), remaining)])
    return time.perf_counter() - start


def throughput(runs: int, quick: bool) -> dict:
    rows = 50_000 if quick else ROWS
    path = CACHE / f"embedding_{rows}_x_{DIM}.keras"
    build_big_model(path, rows)
    cli = median_child(scan_command(path), max(1, runs // 2))
    import nandoctor

    read_member_floor(path)  # into the page cache
    floors = [read_member_floor(path) for _ in range(runs)]
    scans = []
    for _ in range(runs):
        start = time.perf_counter()
        report = nandoctor.scan([str(path)])
        scans.append(time.perf_counter() - start)
    (finding,) = [f for f in report.findings if f.code == "ND101"]
    return {
        "file_bytes": path.stat().st_size,
        "rows": rows,
        "dim": DIM,
        "zero_rows_found": finding.details["count"],
        "read_floor_s": statistics.median(floors),
        "full_scan_s": statistics.median(scans),
        "ratio": statistics.median(scans) / statistics.median(floors),
        "cli_peak_rss_mib": cli["peak_rss_mib"],
        "cli_wall_s": cli["wall_s"],
        "runs": runs,
    }


def machine() -> dict:
    import h5py
    import numpy

    cpu = "unknown"
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as info:
        cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "h5py": h5py.__version__,
    }


def markdown(results: dict) -> str:
    cold, big, tie = results["cold_start"], results["throughput"], results["tie_check"]
    return f"""<!-- scan_speed:start (written by bench/scan_speed.py; do not edit) -->
Measured {results["date"]} on {results["machine"]["cpu"]} ({results["machine"]["cores"]} cores),
Python {results["machine"]["python"]}, numpy {results["machine"]["numpy"]}, h5py {results["machine"]["h5py"]}.

**(a) Cold start** on `{cold["file"]}`, median of {cold["nandoctor_scan"]["runs"]} fresh processes:

| process | wall time | peak memory |
|---|---|---|
| `nandoctor scan` | {cold["nandoctor_scan"]["wall_s"]:.2f} s | {cold["nandoctor_scan"]["peak_rss_mib"]:.0f} MiB |
| `keras.models.load_model` | {cold["keras_load_model"]["wall_s"]:.2f} s | {cold["keras_load_model"]["peak_rss_mib"]:.0f} MiB |
| ratio | **{cold["speedup"]:.1f}x faster** (target: at least 5x) | **{cold["memory_ratio"]:.2f}** of the memory (target: at most 0.25) |

**(b) Throughput** on a `.keras` holding a {big["rows"]:,} x {big["dim"]} float32 embedding
({big["file_bytes"] / 2**30:.2f} GiB; {big["zero_rows_found"]:,} zero rows found), page cache warm, median of {big["runs"]}:

| measurement | time |
|---|---|
| floor: read the bytes of `model.weights.h5` from the file | {big["read_floor_s"]:.3f} s |
| `nandoctor.scan` with every rule (in process, after imports) | {big["full_scan_s"]:.3f} s |
| ratio | **{big["ratio"]:.2f}x the floor** (target: at most 2x) |
| `nandoctor scan` CLI on the same file: peak memory | **{big["cli_peak_rss_mib"]:.0f} MiB** (target: under 300 MiB), {big["cli_wall_s"]:.2f} s wall |

**(c) Tie check** (ND402) on a `.keras` holding a {tie["rows"]:,} x {tie["dim"]} embedding and a hand-written
tied copy of it, transposed ({tie["file_bytes"] / 2**30:.2f} GiB), compared block by block:
`nandoctor scan --select ND402` peaks at **{tie["cli_peak_rss_mib"]:.0f} MiB** in {tie["cli_wall_s"]:.1f} s (median of {tie["runs"]}).
<!-- scan_speed:end -->"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 50,000-row table and fewer runs (smoke test)")
    args = parser.parse_args()
    runs = 2 if args.quick else 7
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "cold_start": cold_start(runs),
        "throughput": throughput(runs, args.quick),
        "tie_check": tie_check(max(1, runs // 3), args.quick),
    }
    print(json.dumps(results, indent=2))
    if not args.quick:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        replace_section("scan_speed", "Scan speed", markdown(results))
        print(f"wrote {RESULTS.relative_to(ROOT)} and {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
