"""`nandoctor.check` on a 10M-parameter model, each check timed (not a test).

A transformer language model (vocabulary 40,000, width 128, 2 blocks, length 64, about
10.3M parameters) built in this process; `check` runs the static rules, the graph checks
and the probes on it, on this machine's CPU. Target: the whole check in at most 30 s.

    python bench/check_speed.py

Writes bench/results/check_speed.json and the check section of docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from doc_sections import replace_section  # noqa: E402
from monitor_overhead import language_model  # noqa: E402

import nandoctor  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "check_speed.json"


def main() -> None:
    keras.utils.set_random_seed(0)
    model = language_model(40_000)
    parameters = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    started = time.perf_counter()
    report = nandoctor.check(model)
    total = time.perf_counter() - started
    results = {"date": time.strftime("%Y-%m-%d"), "parameters": parameters, "total_s": total,
               "timings": report.timings, "findings": sorted({f.code for f in report.findings})}
    print(json.dumps(results, indent=2))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    rows = "\n".join(f"| {name} | {seconds:.2f} s |" for name, seconds in report.timings.items())
    replace_section("check_speed", "Live check", f"""<!-- check_speed:start (written by bench/check_speed.py; do not edit) -->
`nandoctor.check` on a transformer language model of {parameters / 1e6:.1f}M parameters (vocabulary 40,000,
width 128, 2 blocks, length 64), this machine's CPU, measured {results['date']}: **{total:.1f} s** in all
(target: at most 30 s).

| check | time |
|---|---|
{rows}
<!-- check_speed:end -->""")


if __name__ == "__main__":
    main()
