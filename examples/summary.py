"""Writes docs/examples.md and the results block of each example's README from the results
of the full runs (examples/*/results/*.json), so no figure is copied by hand.

    python -m examples.summary          (after the full runs; see docs/examples.md)
    python -m examples.summary --check  (exit 1 if a written file is stale)
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from examples import runner

EXAMPLES = Path(__file__).resolve().parent
DOCS = EXAMPLES.parent / "docs"
BEGIN, END = "<!-- results: written by python -m examples.summary -->", "<!-- /results -->"


def results(folder: str, name: str) -> dict | None:
    return runner.load_results(EXAMPLES / folder / "results", name)


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def codes(found: list[str]) -> str:
    return ", ".join(found) if found else "nothing at warning or above"


def last_and_best(values: list[float], show, best=max) -> str:
    """The last epoch's figure, and the best one with its epoch when it came earlier."""
    top = best(values)
    earlier = f" (best {show(top)}, epoch {values.index(top) + 1})" if show(top) != show(values[-1]) else ""
    return show(values[-1]) + earlier


def report_a() -> dict:
    broken, fixed = results("a_memory", "broken"), results("a_memory", "fixed")
    runs = [
        ("broken", broken),
        ("fixed", fixed),
        ("broken", results("a_memory", "broken_lr0.5")),
        ("fixed", results("a_memory", "fixed_lr0.5")),
    ]
    rows = [
        f"| {name} | {r['learning_rate']:g} | {last_and_best(r['val_accuracy'], percent)} | "
        f"{last_and_best(r['val_perplexity'], lambda v: f'{v:,.0f}', best=min)} |"
        for name, r in runs
        if r
    ]
    table = "\n".join(
        ["| model | SGD learning rate | held-out accuracy | held-out perplexity |", "|---|---|---|---|", *rows]
    )
    return {
        "found": f"scan: {codes(broken['scan_serious'])} (relu output under cross-entropy)",
        "fix": "`TemporalEncoding`, `MemoryHop` (u' = H u + o), softmax output",
        "before_after": (
            f"held-out next-word accuracy {percent(broken['val_accuracy'][-1])} -> "
            f"{percent(fixed['val_accuracy'][-1])} at the report's lr 0.01 (the most frequent word: "
            f"{percent(fixed['most_frequent_word_accuracy'])}); perplexity "
            f"{broken['val_perplexity'][-1]:,.0f} -> {fixed['val_perplexity'][-1]:,.0f}"
            + (
                f"; at lr 0.5: {percent(fast['val_accuracy'][-1])} -> best {percent(max(fast_fixed['val_accuracy']))}"
                if (fast := runs[2][1]) and (fast_fixed := runs[3][1])
                else ""
            )
        ),
        "table": table
        + f"\n\nLast of {len(broken['val_accuracy'])} epochs; always saying the most frequent word scores "
        f"{percent(fixed['most_frequent_word_accuracy'])}.",
    }


def best(run: dict) -> str:
    return f"{run['best_val_perplexity']:.1f} ({run['best_epoch']} of {len(run['val_perplexity'])})"


def report_b() -> dict:
    broken, fixed = results("b_tied", "broken"), results("b_tied", "fixed")
    tied, untied = fixed["tied"], fixed["untied"]
    table = "\n".join(
        [
            "| model | parameters | best held-out perplexity (epoch) | after save + load |",
            "|---|---|---|---|",
            f"| hand-written tie (broken) | {broken['parameters']:,} | {best(broken)} | `{broken['reload'][:60]}...` |",
            f"| `TiedEmbedding` (fixed) | {tied['parameters']:,} | {best(tied)} | identical predictions (max difference "
            f"{fixed['reload_max_difference']:g}); still tied after another epoch (max \\|logits - states @ E.T\\| "
            f"{fixed['tie_error_after_more_training']:g}) |",
            f"| untied (`Embedding` + `Dense`) | {untied['parameters']:,} | {best(untied)} | loads (scan: {codes(fixed['untied_scan'])}, info) |",
        ]
    )
    return {
        "found": f"scan: {codes(broken['scan_serious'])}; check: ND402 confirmed (the save/reload round trip fails)",
        "fix": "`TiedEmbedding` (Keras's `ReversibleEmbedding`, tie always on)",
        "before_after": (
            f"reload: {broken['reload'].split(':')[0]} -> identical predictions; parameters "
            f"{untied['parameters']:,} untied -> {tied['parameters']:,} tied; best held-out perplexity "
            f"untied {untied['best_val_perplexity']:.1f}, tied {tied['best_val_perplexity']:.1f}"
        ),
        "table": table,
    }


def report_c() -> dict:
    broken, fixed = results("c_cosine", "broken"), results("c_cosine", "fixed")
    (nonfinite,) = [f for f in broken["monitor"] if f["code"] == "ND702"]
    table = "\n".join(
        [
            "| model | zero rows (words, entities) | weights finite at the end | held-out top-1 of 11 | Monitor |",
            "|---|---|---|---|---|",
            f"| broken | {broken['zero_rows']['word_emb']:,}, {broken['zero_rows']['entity_emb']} | {broken['weights_finite_at_end']} | {percent(broken['held_out_top1'])} | ND702 at step {nonfinite['step']}, culprit `{nonfinite['layer']}` |",
            f"| fixed | filled with small vectors | {fixed['weights_finite_at_end']} | {percent(fixed['held_out_top1'])} | {codes(fixed['monitor_serious'])} |",
        ]
    )
    return {
        "found": (
            f"scan: {codes(broken['scan_serious'])}; check: {codes(sorted(set(broken['check_serious']) - set(broken['scan_serious'])))} "
            f"(confirmed by the NaN probe); Monitor: ND702 at step {nonfinite['step']} in `{nonfinite['layer']}`"
        ),
        "fix": "`SafeCosineSimilarity`, `MaskedEmbedding`, zero rows given small vectors",
        "before_after": (
            f"weights NaN from step {nonfinite['step']} -> finite for {fixed['steps']:,} steps; held-out "
            f"top-1 {percent(broken['held_out_top1'])} -> {percent(fixed['held_out_top1'])} (chance 9.1%)"
        ),
        "table": table,
    }


def report_d() -> dict:
    broken, fixed = results("d_padding", "broken"), results("d_padding", "fixed")
    chance = broken["majority_class_accuracy"]
    above = lambda r: next((i + 1 for i, a in enumerate(r["val_accuracy"]) if a > chance + 0.01), None)  # noqa: E731
    table = "\n".join(
        [
            "| model | first epoch above chance | held-out accuracy after epoch 1 / last | hidden ReLU units alive |",
            "|---|---|---|---|",
            *[
                f"| {name} | {above(r) or 'never'} | {percent(r['val_accuracy'][0])} / {percent(r['val_accuracy'][-1])} | {r['live_hidden_units']} |"
                for name, r in (("broken (`Embedding`)", broken), ("fixed (`MaskedEmbedding`)", fixed))
            ],
        ]
    )
    return {
        "found": f"scan: {codes(broken['scan_serious'])}; check: ND301 confirmed by the padding probe",
        "fix": "`MaskedEmbedding`",
        "before_after": (
            f"held-out accuracy after {len(fixed['val_accuracy'])} epochs {percent(broken['val_accuracy'][-1])} "
            f"(chance: {percent(chance)}) -> {percent(fixed['val_accuracy'][-1])}; fixed leaves chance in epoch {above(fixed)}"
        ),
        "table": table
        + f"\n\n{broken['documents']['train']:,} training and {broken['documents']['held_out']} held-out documents, "
        f"{percent(broken['padding_fraction'])} of all positions padding; {broken['parameters']:,} parameters each.",
    }


def report_e() -> dict:
    broken, fixed = results("e_characters", "broken"), results("e_characters", "fixed")
    with_aux, without = fixed["with_auxiliary_losses"], fixed["without_auxiliary_losses"]
    table = "\n".join(
        [
            "| model | parameters | training bits/char | held-out bits/char |",
            "|---|---|---|---|",
            f"| broken: no causal mask | {broken['parameters']:,} | {broken['train_bits_per_character']:.3f} | {broken['held_out_bits_per_character']:.3f} (it reads the answer) |",
            f"| fixed, with the auxiliary losses | {with_aux['parameters']:,} | {with_aux['train_bits_per_character']:.3f} | {with_aux['held_out_bits_per_character']:.3f} |",
            f"| fixed, without them | {without['parameters']:,} | {without['train_bits_per_character']:.3f} | {without['held_out_bits_per_character']:.3f} |",
        ]
    )
    return {
        "found": f"scan: {codes(broken['scan_serious'])} ({broken['scan'].count('ND501') and 'every block'}); check: ND502 (the causal probe)",
        "fix": "`CausalSelfAttention`, `PositionEmbedding` per block, `AuxiliaryLosses`",
        "before_after": (
            f"held-out bits/char {broken['held_out_bits_per_character']:.2f} (leaking, meaningless) -> "
            f"{with_aux['held_out_bits_per_character']:.2f} with the auxiliary losses, "
            f"{without['held_out_bits_per_character']:.2f} without"
        ),
        "table": table,
    }


REPORTS = {
    "A": ("a_memory", "memory network language model", report_a, ["learning_curves.png"]),
    "B": ("b_tied", "tied input and output embeddings", report_b, ["perplexity.png"]),
    "C": ("c_cosine", "zero rows under a hand-written cosine", report_c, ["broken_health.png", "fixed_health.png"]),
    "D": ("d_padding", "padding into Flatten", report_d, ["learning_curves.png"]),
    "E": ("e_characters", "deep character transformer", report_e, []),
}


def examples_page(summaries: dict) -> str:
    lines = [
        "<!-- Written by `python -m examples.summary` from examples/*/results. Do not edit. -->",
        "",
        "# The five field reports, rebuilt",
        "",
        "Each folder of `examples/` rebuilds one of the five [field reports](field-reports.md): `broken.py` as",
        "the person wrote it, `fixed.py` built from `nandoctor.layers`, trained on the same data and budget. Every figure below",
        "comes from the full runs on a 2-core CPU (`python -m examples.<folder>.<script>` from the repository",
        "root, see each README; `make examples` sets up the environment, runs them all and rewrites this page).",
        "Everything is offline: the text is Python's own (`pydoc_data`, the standard library's docstrings). The",
        "test suite runs every script with `--quick` and checks nandoctor's findings on each model.",
        "",
        "| report | what nandoctor found on the broken model | the fix | before -> after |",
        "|---|---|---|---|",
    ]
    for letter, (folder, title, _, _) in REPORTS.items():
        s = summaries[letter]
        lines.append(
            f"| [{letter}: {title}](../examples/{folder}/README.md) | {s['found']} | {s['fix']} | {s['before_after']} |"
        )
    for letter, (folder, title, _, plots) in REPORTS.items():
        lines += ["", f"## {letter}: {title}", "", summaries[letter]["table"]]
        lines += [f"\n![{letter}: {plot}](examples/{folder}-{plot})" for plot in plots]
    return "\n".join(lines) + "\n"


def draw_comparisons() -> None:
    """The plots that compare runs of different scripts (the others are drawn by the scripts)."""
    fixed = results("b_tied", "fixed")
    curves = {
        name: (list(range(1, len(fixed[name]["val_perplexity"]) + 1)), fixed[name]["val_perplexity"])
        for name in ("tied", "untied")
    }
    runner.plot_curves(
        EXAMPLES / "b_tied" / "results",
        "perplexity.png",
        curves,
        xlabel="epoch",
        ylabel="held-out perplexity",
        title="Report B: TiedEmbedding against an untied softmax, same budget",
    )
    curves = {
        f"{name}, SGD lr {r['learning_rate']:g}": (list(range(1, len(r["val_accuracy"]) + 1)), r["val_accuracy"])
        for name in ("broken", "fixed", "broken_lr0.5", "fixed_lr0.5")
        if (r := results("a_memory", name))
    }
    runner.plot_curves(
        EXAMPLES / "a_memory" / "results",
        "learning_curves.png",
        curves,
        xlabel="epoch",
        ylabel="held-out next-word accuracy",
        title="Report A: memory network language model",
    )


def durations(folder: str) -> str:
    """How long each full run of the folder took, as measured by the run itself."""
    runs = sorted((EXAMPLES / folder / "results").glob("*.json"))
    timed = [(path.stem, json.loads(path.read_text()).get("wall_seconds")) for path in runs]
    return (
        "Full runs on this machine (2 CPU cores), wall time including nandoctor's checks: "
        + ", ".join(f"`{name}` {seconds:.0f} s" for name, seconds in timed if seconds is not None)
        + "."
    )


def nandoctor_output(folder: str) -> str:
    """What nandoctor printed on the broken model in the full run, every stage it ran."""
    broken = results(folder, "broken")
    stages = [broken.get(key) for key in ("scan_output", "check_output", "monitor_output")]
    return "nandoctor's output on the broken model (full run):\n\n```\n" + "\n\n".join(s for s in stages if s) + "\n```"


def with_results_block(readme: str, block: str) -> str:
    head, _, rest = readme.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


def main(argv=None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    summaries = {letter: make() for letter, (_, _, make, _) in REPORTS.items()}
    written = {DOCS / "examples.md": examples_page(summaries)}
    for letter, (folder, _, _, _) in REPORTS.items():
        readme = EXAMPLES / folder / "README.md"
        block = f"{summaries[letter]['table']}\n\n{durations(folder)}\n\n{nandoctor_output(folder)}"
        written[readme] = with_results_block(readme.read_text(), block)
    stale = [path for path, text in written.items() if not path.exists() or path.read_text() != text]
    if check:
        for path in stale:
            print(f"stale: {path} (run python -m examples.summary)", file=sys.stderr)
        return 1 if stale else 0
    draw_comparisons()
    for path, text in written.items():
        path.write_text(text)
    (DOCS / "examples").mkdir(exist_ok=True)
    for folder, _, _, plots in REPORTS.values():
        for plot in plots:
            shutil.copyfile(EXAMPLES / folder / "results" / plot, DOCS / "examples" / f"{folder}-{plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
