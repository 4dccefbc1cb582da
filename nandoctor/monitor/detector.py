"""What a training detector sees at each check, and the anatomy every detector follows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nandoctor.diagnosis import Diagnosis, RunsOn
from nandoctor.report import Finding


@dataclass(frozen=True)
class Check:
    """The statistics of one check: `stats[i]` belongs to `variables[i]` (see stats.py)."""

    step: int
    stats: np.ndarray
    loss: float | None
    variables: tuple[str, ...]
    layers: tuple[str, ...]
    sizes: tuple[int, ...] = ()
    ranks: tuple[int, ...] = ()


class Detector(Diagnosis):
    """Like a rule, a detector carries its documentation, metadata and one `observe`."""

    runs_on = RunsOn.TRAINING
    # Its findings mark the first non-finite values: the Monitor replays its `sample` to
    # name the layer where they start, and its actions (stop, raise) quote the finding.
    reports_nonfinite: ClassVar[bool] = False

    def observe(self, check: Check) -> Iterator[Finding]:
        raise NotImplementedError

    def finding_at(self, step: int, layer: str | None, message: str, **details: Any) -> Finding:
        """A finding of this detector at training step `step` (in `details["step"]`)."""
        return self.finding(layer, message, details={"step": step, **details})

