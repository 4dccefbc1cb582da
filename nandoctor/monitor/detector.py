"""What a training detector sees at each check, and the anatomy every detector follows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nandoctor.report import Finding
from nandoctor.rule import Diagnosis


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

    def observe(self, check: Check) -> Iterator[Finding]:
        raise NotImplementedError

    def finding(self, layer: str | None, message: str, step: int, **details: Any) -> Finding:
        return Finding(self.code, self.name, self.severity, self.confidence, layer, message, self.fix,
                       {"step": step, **details})

