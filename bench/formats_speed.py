"""Scan speed on 2 GB files of the newer formats, measured in one run (not a test).

Three files of 2 GB of bfloat16 weights (1,000,000 x 1,024, one row in ten zero), each
written by its real writer in a child process: a `.keras` saved under the bfloat16 dtype
policy, a `.safetensors` (safetensors.numpy), and a sharded `.weights.json` (four
250,000 x 1,024 tables, `max_shard_size` 0.6 GB). For each: the floor of merely reading its
bytes (8 MiB reads, page cache warm), `nandoctor.scan` timed in this process (best of three after a
first scan, which imports the loader), and the CLI's wall time and peak memory in a fresh process. Targets: at most 2x the floor, under 300 MiB.

    python bench/formats_speed.py

Writes bench/results/formats_speed.json and the formats section of docs/benchmarks.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from doc_sections import replace_section
from scan_speed import CACHE, run_child, scan_command

import nandoctor

RESULTS = ROOT / "bench" / "results" / "formats_speed.json"
ROWS, DIM = 1_000_000, 1024

_WRITE = """
import sys, numpy as np, keras, ml_dtypes
kind, path, rows, dim = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def table(n, seed):
    values = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32).astype(ml_dtypes.bfloat16)
    values[::10] = 0
    return values
if kind == "safetensors":
    from safetensors.numpy import save_file
    save_file({"model.embed_tokens.weight": table(rows, 0)}, path)
else:
    keras.config.set_dtype_policy("bfloat16")
    parts = 1 if kind == "keras" else 4
    tokens = keras.Input((8,), dtype="int32")
    embeddings = [keras.layers.Embedding(rows // parts, dim, name=f"emb_{i}") for i in range(parts)]
    outputs = [e(tokens) for e in embeddings]
    model = keras.Model(tokens, outputs[0] if parts == 1 else keras.layers.Add()(outputs))
    for i, e in enumerate(embeddings):
        e.embeddings.assign(table(rows // parts, i))
    if kind == "keras":
        model.save(path)
    else:
        model.save_weights(path, max_shard_size=0.6)
"""

FILES = {"keras": "bf16_2gib.keras", "safetensors": "bf16_2gib.safetensors", "sharded": "bf16_2gib/m.weights.json"}


def files_of(path: Path) -> list[Path]:
    return [*sorted(path.parent.glob("m_*.weights.h5")), path] if path.name.endswith(".weights.json") else [path]


def read_floor(paths: list[Path]) -> float:
    started = time.perf_counter()
    for path in paths:
        with open(path, "rb") as file:
            while file.read(8 << 20):
                pass
    return time.perf_counter() - started


def timed_scan(path: Path) -> tuple[float, nandoctor.Report]:
    started = time.perf_counter()
    report = nandoctor.scan(str(path))
    return time.perf_counter() - started, report


def measure(kind: str) -> dict:
    path = CACHE / FILES[kind]
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-c", _WRITE, kind, str(path), str(ROWS), str(DIM)],
            check=True,
            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
        )
    parts = files_of(path)
    read_floor(parts)
    floor = min(read_floor(parts) for _ in range(3))
    nandoctor.scan(str(path))  # the first scan in a process also imports its loader (h5py: 0.1 s and more)
    scan, report = min((timed_scan(path) for _ in range(3)), key=lambda timed: timed[0])
    zero_rows = sum(f.details["count"] for f in report.findings if f.code == "ND101")
    wall, peak = run_child(scan_command(path))
    return {
        "file": FILES[kind],
        "bytes": sum(p.stat().st_size for p in parts),
        "read_floor_s": floor,
        "scan_s": scan,
        "ratio": scan / floor,
        "cli_wall_s": wall,
        "cli_peak_mib": peak,
        "zero_rows": zero_rows,
    }


def main() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    results = {"date": time.strftime("%Y-%m-%d"), **{kind: measure(kind) for kind in FILES}}
    print(json.dumps(results, indent=2))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    rows = "\n".join(
        f"| `{r['file']}` | {r['bytes'] / 1e9:.2f} GB | {r['read_floor_s']:.2f} s | {r['scan_s']:.2f} s | "
        f"**{r['ratio']:.2f}x** | {r['cli_wall_s']:.2f} s | {r['cli_peak_mib']:.0f} MiB | {r['zero_rows']:,} |"
        for kind, r in results.items()
        if kind != "date"
    )
    replace_section(
        "formats",
        "2 GB of bfloat16 in the newer formats",
        f"""<!-- formats:start (written by bench/formats_speed.py; do not edit) -->
1,000,000 x 1,024 bfloat16 weights (one row in ten zero) in three formats, each written by its real
writer, this machine, measured {results["date"]}, page cache warm. The floor: the best of three reads of
the bytes; the scan: the best of three `nandoctor.scan` calls after a first one (which also imports the loader);
the CLI: one fresh `nandoctor scan` process, imports included. Targets: the scan at most 2x the floor, the CLI
under 300 MiB. Zero rows found leave out each embedding's padding row (id 0), which a model keeps zero on purpose.

| file | size | read the bytes | scan | ratio | CLI wall | CLI peak | zero rows found |
|---|---|---|---|---|---|---|---|
{rows}
<!-- formats:end -->""",
    )


if __name__ == "__main__":
    main()
