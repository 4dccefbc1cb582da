"""What every example script does around its model: arguments, nandoctor's output, results.

Each script runs as `python -m examples.<folder>.<script> [--quick] [--out DIR]` from the
repository root. A full run writes its figures to `examples/<folder>/results/` (the
numbers quoted in the README come from there); `--quick` trains for seconds on a sliver
of the data, which is what the test suite runs, and writes to `.cache/examples/<folder>/`
(ignored by git), never over the committed results of a full run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def arguments(script_file: str, description: str, argv=None, learning_rate: float | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes: a sliver of the data (for tests)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where results go (default: the example's results/; with --quick, .cache/examples/)",
    )
    if learning_rate is not None:
        parser.add_argument(
            "--learning-rate",
            type=float,
            default=learning_rate,
            help=f"the optimiser's learning rate (default: {learning_rate}, as reported)",
        )
    args = parser.parse_args(argv)
    args.started = time.monotonic()
    if args.out is None:
        args.out = default_out(Path(script_file), args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def default_out(script_file: Path, quick: bool) -> Path:
    """A full run's folder is the example's committed results/; a quick run's is a scratch
    folder under the repository's .cache/, so that it can never replace the figures the docs quote."""
    example = script_file.resolve().parent
    if not quick:
        return example / "results"
    return example.parent.parent / ".cache" / "examples" / example.name


def seed_everything(seed: int = 0) -> None:
    import keras

    keras.utils.set_random_seed(seed)


def show(command: str, report) -> str:
    """Print a nandoctor report the way the CLI does (80 columns) under the command that
    made it, and return the text."""
    from nandoctor.reporters.text import render_text

    text = f"{command}\n{render_text(report, width=80).rstrip()}"
    print(f"\n{text}", flush=True)
    return text


def codes(report) -> list[str]:
    return sorted({finding.code for finding in report.findings})


def serious_codes(report) -> list[str]:
    """Codes of findings at warning or above: what makes `nandoctor scan` exit 1."""
    from nandoctor import Severity

    return sorted({f.code for f in report.findings if f.severity.rank >= Severity.WARNING.rank})


def diagnose(args: argparse.Namespace, name: str, model, *, live: bool = True) -> dict:
    """What a user would run: save the model, `nandoctor scan` the file, then (with `live`)
    `nandoctor.check` the live model with its probes. Prints both reports like the CLI."""
    import nandoctor

    path = Path(os.path.relpath(args.out / f"{name}.keras"))  # as a user would type it
    model.save(path)
    scan = nandoctor.scan([path])
    found = {
        "scan": codes(scan),
        "scan_serious": serious_codes(scan),
        "scan_output": show(f"$ nandoctor scan {path}", scan),
    }
    if live:
        check = nandoctor.check(model)
        found |= {
            "check": codes(check),
            "check_serious": serious_codes(check),
            "check_output": show(">>> nandoctor.check(model)", check),
        }
    return found


def save_results(args: argparse.Namespace, name: str, results: dict) -> dict:
    results = {"quick": args.quick, "wall_seconds": round(time.monotonic() - args.started, 1), **results}
    path = args.out / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"\nresults: {path}", file=sys.stderr)
    return results


def load_results(folder: Path, name: str) -> dict | None:
    """A run's results from a results folder (for plots and tables that compare runs)."""
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def plot_curves(
    folder: Path,
    filename: str,
    curves: dict,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    reference: tuple[str, float] | None = None,
) -> Path:
    """One line per run (`{label: (x values, y values)}`), with an optional horizontal
    reference line such as chance; written as PNG beside the results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4), dpi=110)
    for label, (xs, ys) in curves.items():
        axis.plot(xs, ys, marker="o" if len(xs) < 40 else None, markersize=3, label=label)
    if reference is not None:
        axis.axhline(reference[1], color="grey", linestyle="--", linewidth=1, label=reference[0])
    axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    path = folder / filename
    figure.savefig(path)
    plt.close(figure)
    return path
