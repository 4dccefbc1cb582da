"""`nandoctor.check` on a 10M-parameter model, each check timed, and on every zoo model (not a test).

A transformer language model (vocabulary 40,000, width 128, 2 blocks, length 64, about
10.3M parameters) built in this process; `check` runs the static rules, the graph checks
and the probes on it, on this machine's CPU. Target: the whole check in at most 30 s.
Then every architecture of `fixtures/zoo` (KerasHub, keras.applications, keras-io, Keras 2,
nandoctor's own), built small: target at most 5 s each.

    python bench/check_speed.py [--zoo-only]

Writes bench/results/check_speed.json and the check and zoo sections of docs/benchmarks.md.
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

import keras
import numpy as np
from doc_sections import replace_section
from monitor_overhead import language_model

import nandoctor

RESULTS = ROOT / "bench" / "results" / "check_speed.json"


def zoo() -> list[dict]:
    """check() on every zoo model, timed alone (the model is built before the clock starts)."""
    from fixtures.zoo import ZOO

    rows = []
    for entry in ZOO:
        keras.utils.set_random_seed(0)
        model = entry.build()
        started = time.perf_counter()
        report = nandoctor.check(model)
        seconds = time.perf_counter() - started
        serious = sorted({f.code for f in report.findings if f.severity in ("warning", "error")})
        slowest = max(report.timings, key=report.timings.get)
        rows.append(
            {
                "id": entry.id,
                "source": entry.source,
                "seconds": seconds,
                "serious": serious,
                "info": sum(f.severity == "info" for f in report.findings),
                "slowest_check": slowest,
                "slowest_check_s": report.timings[slowest],
                "notes": report.files[0].notes,
            }
        )
        print(f"{entry.id}: {seconds:.2f} s {serious}", flush=True)
    return rows


def write_zoo(rows: list[dict], date: str) -> None:
    slowest = max(rows, key=lambda row: row["seconds"])
    lines = "\n".join(
        f"| {row['id']} | {row['source']} | {', '.join(row['serious']) or '-'} | {row['info']} | {row['seconds']:.2f} s |"
        for row in rows
    )
    replace_section(
        "zoo",
        "check() on the zoo",
        f"""<!-- zoo:start (written by bench/check_speed.py; do not edit) -->
`nandoctor.check` on each of the {len(rows)} architectures of `fixtures/zoo`, built small with random weights,
this machine's CPU (2 cores), measured {date}; the model is built before the clock starts. Target: at most
5 s each. Slowest: **{slowest["id"]}, {slowest["seconds"]:.2f} s** ({slowest["slowest_check"]} takes
{slowest["slowest_check_s"]:.2f} s of it; the graph is traced once, by the first check that reads it, and
shared). Findings: the codes at warning or above (what the zoo expects or allows, `fixtures/zoo`), and how
many at info.

| model | source | warning or above | info | check |
|---|---|---|---|---|
{lines}
<!-- zoo:end -->""",
    )


def main() -> None:
    date = time.strftime("%Y-%m-%d")
    rows = zoo()
    write_zoo(rows, date)
    if "--zoo-only" in sys.argv:
        return
    keras.utils.set_random_seed(0)
    model = language_model(40_000)
    parameters = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    started = time.perf_counter()
    report = nandoctor.check(model)
    total = time.perf_counter() - started
    results = {
        "date": date,
        "parameters": parameters,
        "total_s": total,
        "timings": report.timings,
        "findings": sorted({f.code for f in report.findings}),
        "zoo": rows,
    }
    print(json.dumps(results, indent=2))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    rows = "\n".join(f"| {name} | {seconds:.2f} s |" for name, seconds in report.timings.items())
    replace_section(
        "check_speed",
        "Live check",
        f"""<!-- check_speed:start (written by bench/check_speed.py; do not edit) -->
`nandoctor.check` on a transformer language model of {parameters / 1e6:.1f}M parameters (vocabulary 40,000,
width 128, 2 blocks, length 64), this machine's CPU, measured {results["date"]}: **{total:.1f} s** in all
(target: at most 30 s).

| check | time |
|---|---|
{rows}
<!-- check_speed:end -->""",
    )


if __name__ == "__main__":
    main()
