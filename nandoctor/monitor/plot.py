"""The health plot: per-layer weight norms over training steps, from the Monitor's log, with
the shrinking forecast (ND701) and the first non-finite step (ND702) marked. Needs
matplotlib (`pip install nandoctor[plot]`); nothing else in nandoctor imports it."""

from __future__ import annotations

import json
import math
from pathlib import Path

from nandoctor.errors import UnreadableFile

MAX_LINES = 10


def read_log(path: str | Path) -> list[dict]:
    path = Path(path)
    if path.is_dir():
        path = path / "nandoctor-health.jsonl"
    not_a_log = UnreadableFile(f"{path} is not a nandoctor health log (JSON lines written by nandoctor.Monitor)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise not_a_log from None
    except OSError as error:
        raise UnreadableFile(f"cannot read health log {path}: {error.strerror or error}") from None
    try:
        records = [json.loads(line) for line in lines if line.strip()]
    except ValueError:
        raise not_a_log from None
    if not all(
        isinstance(r, dict) and isinstance(r.get("step"), int) and isinstance(r.get("variables"), list) for r in records
    ):
        raise not_a_log
    return records


def layer_norms(records: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """Each layer's weight norm (of all its variables together) at each check where every
    value of the layer is finite: the norm of what is left of a half-NaN layer means nothing."""
    series: dict[str, list[tuple[int, float]]] = {}
    for record in records:
        totals: dict[str, float] = {}
        broken: set[str] = set()
        for variable in record["variables"]:
            norm = variable.get("norm")
            if variable.get("nonfinite") or norm is None:
                broken.add(variable["layer"])
            else:
                totals[variable["layer"]] = totals.get(variable["layer"], 0.0) + norm * norm
        for layer, total in totals.items():
            if total > 0 and layer not in broken:
                series.setdefault(layer, []).append((record["step"], math.sqrt(total)))
    return series


def plot_health(records: list[dict], output: str | Path, title: str = "nandoctor health") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not records:
        raise UnreadableFile("the health log holds no checks")
    series = layer_norms(records)
    flagged = {f["layer"] for r in records for f in r.get("findings", [])}
    # The layers whose norm changed most, and every layer a finding named.
    change = {layer: abs(math.log(points[-1][1] / points[0][1])) for layer, points in series.items()}
    shown = sorted(series, key=lambda layer: (layer not in flagged, -change[layer]))[:MAX_LINES]

    figure, axis = plt.subplots(figsize=(9, 5), dpi=120)
    for layer in shown:
        steps, norms = zip(*series[layer])
        # Markers as well as lines: a run that broke at its first step has one finite point
        # per layer (its starting weights), which a line alone would not draw.
        axis.plot(steps, norms, label=layer, linewidth=2.4 if layer in flagged else 1.2, marker="o", markersize=3)
    axis.set_yscale("log")
    for record in records:
        for finding in record.get("findings", []):
            if finding["code"] == "ND701" and finding.get("forecast_step") is not None:
                axis.axvline(
                    finding["forecast_step"],
                    color="orange",
                    linestyle="--",
                    linewidth=1.5,
                    label=f"ND701 forecast for {finding['layer']} (made at step {finding['step']})",
                )
                axis.axvline(finding["step"], color="orange", linestyle=":", linewidth=1)
            elif finding["code"] == "ND702":
                axis.axvline(
                    finding["step"], color="red", linewidth=2, label=f"ND702 first non-finite (step {finding['step']})"
                )
    axis.set_xlabel("training step")
    axis.set_ylabel("weight norm per layer (log scale)")
    axis.set_title(title)
    axis.grid(True, which="major", alpha=0.3)
    axis.legend(fontsize=8, loc="best")
    figure.tight_layout()
    output = Path(output)
    try:
        figure.savefig(output)
    except OSError as error:
        raise UnreadableFile(f"cannot write {output}: {error.strerror or error}") from None
    finally:
        plt.close(figure)
    return output
