"""word2vec binary scan speed, measured in one run on this machine (not a test).

A 1,000,000 x 300 binary word2vec file (1.2 GB, the size of the GoogleNews vectors' first
third), one row in ten all zero, written here in the format gensim writes. Timed: the
floor of merely reading its bytes (8 MiB reads, from the page cache), and `nandoctor.scan`
of it (every rule, zero rows named by word); the CLI's peak memory in a fresh process.
gensim's `KeyedVectors.load_word2vec_format` is timed beside them where gensim is installed
(it is not a dependency of nandoctor).

    python bench/word2vec_speed.py

Writes bench/results/word2vec_speed.json and the word2vec section of docs/benchmarks.md.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from doc_sections import replace_section  # noqa: E402
from scan_speed import CACHE, run_child, scan_command  # noqa: E402

import nandoctor  # noqa: E402

ROWS, DIM = 1_000_000, 300
RESULTS = ROOT / "bench" / "results" / "word2vec_speed.json"


def write_binary(path: Path) -> None:
    """`word ` then 300 little-endian float32 and a newline per row, as gensim writes them."""
    rng = np.random.default_rng(0)
    with open(path, "wb") as file:
        file.write(f"{ROWS} {DIM}\n".encode())
        for start in range(0, ROWS, 10_000):
            block = rng.standard_normal((10_000, DIM), dtype=np.float32)
            block[::10] = 0.0
            file.write(b"".join(b"w%d " % (start + i) + row.tobytes() + b"\n" for i, row in enumerate(block)))


def read_floor(path: Path) -> float:
    started = time.perf_counter()
    with open(path, "rb") as file:
        while file.read(8 << 20):
            pass
    return time.perf_counter() - started


def main() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "vectors_1m_300.bin"
    if not path.exists():
        write_binary(path)
    read_floor(path)  # warm the page cache
    floor = min(read_floor(path) for _ in range(3))
    started = time.perf_counter()
    report = nandoctor.scan(str(path))
    scan = time.perf_counter() - started
    (zero_rows,) = [f for f in report.findings if f.code == "ND101"]
    wall, peak = run_child(scan_command(path))
    results = {"date": time.strftime("%Y-%m-%d"), "bytes": path.stat().st_size, "read_floor_s": floor,
               "scan_s": scan, "ratio": scan / floor, "cli_wall_s": wall, "cli_peak_mib": peak,
               "zero_rows": zero_rows.details["count"]}
    try:
        from gensim.models import KeyedVectors

        started = time.perf_counter()
        KeyedVectors.load_word2vec_format(str(path), binary=True)
        results["gensim_s"] = time.perf_counter() - started
    except ImportError:
        results["gensim_s"] = None
    print(json.dumps(results, indent=2))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    gensim = (f"gensim's `load_word2vec_format`: {results['gensim_s']:.1f} s." if results["gensim_s"] is not None
              else "gensim is not installed here, so it was not timed in this run.")
    replace_section("word2vec", "word2vec binary", f"""<!-- word2vec:start (written by bench/word2vec_speed.py; do not edit) -->
A 1,000,000 x 300 binary word2vec file ({results['bytes'] / 1e9:.2f} GB, one row in ten zero), this machine,
measured {results['date']}, from the page cache: reading its bytes takes **{floor:.2f} s**; `nandoctor.scan`
takes **{scan:.2f} s** ({results['ratio']:.1f}x the byte floor; the target, at most 5x, is not met yet), finding the
{results['zero_rows']:,} zero rows. The CLI in a fresh process: {wall:.2f} s, peak {peak:.0f} MiB. {gensim}
Record boundaries are found with one `bytes.find` per record over 8 MiB chunks and the vectors
joined in one copy per chunk, where a Python loop read every character before.
What remains is that loop over the million records, about 0.6 s, and the rules' statistics.
<!-- word2vec:end -->""")


if __name__ == "__main__":
    main()
