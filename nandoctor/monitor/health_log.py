"""The health log: one JSON line per check, for plots and for reading a run afterwards."""

from __future__ import annotations

import json
import math
from pathlib import Path

from nandoctor.monitor.detector import Check
from nandoctor.monitor.stats import (
    MAX_ABS,
    NONFINITE,
    NORM,
    UPDATE_NORM,
    ZERO_FRACTION,
    ZERO_ROWS,
)

FILENAME = "nandoctor-health.jsonl"
# Finding details a plot of the log can use.
_PLOTTED = ("step", "variable", "variables", "forecast_step", "underflow_step")


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


class HealthLog:
    def __init__(self, log_dir: str | Path, append: bool = False):
        self.path = Path(log_dir) / FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A new run starts a new log, as Keras's CSVLogger does: a stale run's lines would
        # interleave their steps with this one's in every plot.
        self._file = open(self.path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def write(self, check: Check, findings) -> None:
        variables = []
        for index, name in enumerate(check.variables):
            row = check.stats[index]
            norm = float(row[NORM])
            variables.append(
                {
                    "name": name,
                    "layer": check.layers[index],
                    "norm": _number(norm),
                    "max_abs": _number(float(row[MAX_ABS])),
                    "nonfinite": int(row[NONFINITE]),
                    "zero_fraction": float(row[ZERO_FRACTION]),
                    "zero_rows": int(row[ZERO_ROWS]) if row[ZERO_ROWS] >= 0 else None,
                    # |w - w at the last check|; divided by the previous line's norm, the update ratio.
                    "update_norm": _number(float(row[UPDATE_NORM])) if row[UPDATE_NORM] >= 0 else None,
                }
            )
        loss = _number(check.loss) if check.loss is not None else None
        fired = [
            {"code": f.code, "layer": f.layer, **{k: v for k, v in f.details.items() if k in _PLOTTED}}
            for f in findings
        ]
        record = {"step": check.step, "loss": loss, "findings": fired, "variables": variables}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
