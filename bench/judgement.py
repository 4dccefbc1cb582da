"""How well nandoctor judges the zoo, measured (not a test): the padding probe's leak ratios on
models that mask correctly and on models that leak, with the threshold between them, and
`check()` plus the scan of each saved file against every entry's expert labels, by family.

    python bench/judgement.py ZOO_DIR      # a zoo built by fixtures/zoo/build.py

Writes bench/results/judgement.json and the `padding_threshold` and `judgement` sections of
docs/benchmarks.md. A model leaks when its entry expects ND301 or ND302 (an expert's reading of
its code); it masks correctly when it has a token sequence input and expects neither.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from doc_sections import replace_section  # noqa: E402

import nandoctor  # noqa: E402
from nandoctor.live.padding_probe import LEAK_RATIO, PaddingProbe  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "judgement.json"
SERIOUS = ("warning", "error")
PADDING_CODES = {"ND301", "ND302"}


def serious(findings) -> set[str]:
    return {f.code for f in findings if f.severity in SERIOUS}


def judge(entry, zoo_dir: Path) -> dict:
    """The entry's padding ratios, and what check() and the scan of its files said."""
    from nandoctor.live.model_view import view_of_model

    if entry.api == "tf_keras":
        import tf_keras

        tf_keras.utils.set_random_seed(0)
    keras.utils.set_random_seed(0)
    model = entry.build()
    probe = PaddingProbe()
    try:
        list(probe.run(model, view_of_model(model)))
    except Exception as error:  # a model the probe cannot feed has no ratio to give
        probe.notes.append(f"{type(error).__name__}")
    gradients = largest_gradients(model)
    keras.utils.set_random_seed(0)
    found = serious(nandoctor.check(entry.build()).findings)
    for scanned in nandoctor.scan([str(zoo_dir / name) for name in entry.file_names()]).files:
        found |= serious(scanned.findings)
    expected = set(entry.expected)
    return {"id": entry.id, "family": entry.family, "ratios": probe.ratios, "gradient": gradients, "expected": sorted(expected),
            "found": sorted(found), "missed": sorted(expected - found),
            "false_alarms": sorted(found - expected - set(entry.allowed)), "misjudged": sorted(entry.misjudged)}


def largest_gradients(model) -> float | None:
    """The largest weight gradient the NaN probe judges by size: on its realistic recipes, where
    they stay finite (None where it cannot feed the model)."""
    from nandoctor.live.gradients import outputs_and_gradients
    from nandoctor.live.model_view import view_of_model
    from nandoctor.live.nan_probe import _recipes
    from nandoctor.report import Evidence

    largest = None
    try:
        for _, inputs, evidence, _ in _recipes(model, view_of_model(model)):
            if evidence is not Evidence.MEASURED:
                continue
            _, gradients = outputs_and_gradients(model, inputs)
            values = [float(np.max(np.abs(g))) for g in gradients if g.size and np.isfinite(g).all()]
            largest = max([largest or 0.0, *values])
    except Exception:  # a model the probes cannot feed
        return largest
    return largest


def write_gradients(rows: list[dict]) -> None:
    from nandoctor.live.nan_probe import ABSURD_GRADIENT

    numeric = {"ND101", "ND201", "ND202"}
    broken = [r["gradient"] for r in rows if set(r["expected"]) & numeric and r["gradient"] is not None]
    correct = [r["gradient"] for r in rows if not set(r["expected"]) & numeric and r["gradient"] is not None]
    section = (
        "<!-- gradient_threshold:start (written by bench/judgement.py; do not edit) -->\n"
        f"Measured {_today()}: the largest weight gradient of the outputs' sum on the NaN probe's realistic recipes "
        "(zero-row ids, all-padding texts, identical pairs; finite ones only), per zoo model.\n\n"
        "| models | count | largest gradient: min / median / max |\n|---|---|---|\n"
        f"| a zero-row, division or root fault expected (ND101, ND201, ND202) | {len(broken)} | {_spread(broken)} |\n"
        f"| none of these expected | {len(correct)} | {_spread(correct)} |\n\n"
        f"Threshold `ABSURD_GRADIENT` = **{ABSURD_GRADIENT:g}**: {sum(g > ABSURD_GRADIENT for g in correct)} of "
        f"{len(correct)} models without such a fault above it.\n"
        "<!-- gradient_threshold:end -->"
    )
    replace_section("gradient_threshold", "NaN probe gradient threshold", section,
                    "`bench/judgement.py` measures the largest gradient the NaN probe judges, on every zoo model.")


def _spread(values: list[float]) -> str:
    if not values:
        return "none"
    return f"{min(values):.3g} / {float(np.median(values)):.3g} / {max(values):.3g}"


def write_threshold(rows: list[dict]) -> None:
    leaking = [r for r in rows if set(r["expected"]) & PADDING_CODES and r["ratios"]]
    masking = [r for r in rows if not set(r["expected"]) & PADDING_CODES and r["ratios"]]
    # A leaking model's largest ratio is its leak; a masking model's largest is its noise.
    leaks = [max(r["ratios"]) for r in leaking]
    quiet = [max(r["ratios"]) for r in masking]
    listed = "\n".join(f"| {r['id']} | {'leaks' if r in leaking else 'masks'} | {max(r['ratios']):.3g} |"
                       for r in sorted(leaking + masking, key=lambda r: max(r["ratios"])))
    below = sum(value <= LEAK_RATIO for value in quiet)
    above = sum(value > LEAK_RATIO for value in leaks)
    section = (
        "<!-- padding_threshold:start (written by bench/judgement.py; do not edit) -->\n"
        f"Measured {_today()} on this machine's CPU, Keras {keras.__version__}. The ratio is how far the outputs at "
        "real positions move when only the padding vector changes, over how far one real token moves them "
        "(the padding probe's measurement; each model's largest over its embeddings).\n\n"
        "| models | count | ratio: min / median / max |\n|---|---|---|\n"
        f"| leak (the entry expects ND301 or ND302) | {len(leaks)} | {_spread(leaks)} |\n"
        f"| mask correctly (a token sequence input, neither expected) | {len(quiet)} | {_spread(quiet)} |\n\n"
        f"Threshold `LEAK_RATIO` = **{LEAK_RATIO:g}**: {above} of {len(leaks)} leaking models above it, "
        f"{below} of {len(quiet)} correct models at or below it.\n\n"
        "| model | expert | ratio |\n|---|---|---|\n" + listed + "\n"
        "<!-- padding_threshold:end -->"
    )
    replace_section("padding_threshold", "Padding probe threshold", section,
                    "`bench/judgement.py` measures the padding probe's ratio on every zoo model with a token sequence "
                    "input, on the models an expert says leak and on those that mask correctly.")


def write_judgement(rows: list[dict]) -> None:
    families: dict[str, list[dict]] = {}
    for row in rows:
        families.setdefault(row["family"], []).append(row)
    lines = []
    for family, members in sorted(families.items()):
        expected = sum(len(r["expected"]) for r in members)
        found = sum(len(r["expected"]) - len(r["missed"]) for r in members)
        correct = [r for r in members if not r["expected"]]
        alarms = sum(bool(r["false_alarms"]) for r in correct)
        recall = f"{found} of {expected} ({found / expected:.0%})" if expected else "-"
        lines.append(f"| {family} | {len(members)} | {recall} | {alarms} of {len(correct)} |")
    misjudged = "\n".join(f"| {r['id']} | {', '.join(r['missed']) or '-'} | {', '.join(r['false_alarms']) or '-'} |"
                          for r in rows if r["missed"] or r["false_alarms"])
    section = (
        "<!-- judgement:start (written by bench/judgement.py; do not edit) -->\n"
        f"Measured {_today()}: `check()` on each zoo model and the scan of each of its files, against the entry's "
        "expert labels (codes at warning or error).\n\n"
        "| family | models | expected faults found (recall) | correct models with a false alarm |\n|---|---|---|---|\n"
        + "\n".join(lines) + "\n\n"
        + ("Where nandoctor disagrees with the expert (each is listed in its entry's `misjudged`):\n\n"
           "| model | missed | false alarm |\n|---|---|---|\n" + misjudged + "\n" if misjudged else
           "nandoctor agrees with the expert on every zoo model.\n")
        + "<!-- judgement:end -->"
    )
    replace_section("judgement", "Judgement on the zoo", section,
                    "`bench/judgement.py` holds nandoctor to the zoo's expert labels, family by family.")


def _today() -> str:
    import datetime

    return datetime.date.today().isoformat()


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    from fixtures.zoo import ZOO

    zoo_dir = Path(argv[0])
    rows = []
    for entry in ZOO:
        rows.append(judge(entry, zoo_dir))
        print(f"{entry.id}: ratios {[round(r, 4) for r in rows[-1]['ratios']]} found {rows[-1]['found']}", flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=1) + "\n")
    write_threshold(rows)
    write_gradients(rows)
    write_judgement(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
