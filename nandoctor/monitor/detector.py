"""What a training detector sees at each check, and the anatomy every detector follows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from nandoctor.diagnosis import Diagnosis, RunsOn
from nandoctor.report import Evidence, Finding


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
    # The step the run will end at, where `fit` knows it (epochs x steps per epoch).
    last_step: int | None = None
    # The last step at which every weight and the loss were seen finite (checked every step).
    last_finite_step: int | None = None
    # The smallest positive float32 the backend keeps: TensorFlow and XLA flush subnormal
    # results to zero on the CPU, PyTorch keeps them (StatsKernel.smallest_positive).
    smallest_positive: float = float(np.finfo(np.float32).tiny)
    # Under a LossScaleOptimizer: the optimizer's own step count (it does not count the steps
    # it skips for non-finite gradients), the steps (batches) it skipped in this run, the most
    # recent first-to-last, and the loss scale now and at the start.
    applied_steps: int | None = None
    first_step: int = 0  # the step this run (this `fit`) started at
    skipped_steps: tuple[int, ...] = ()
    skipped_count: int = 0
    loss_scale: float | None = None
    initial_loss_scale: float | None = None
    # The dtypes the model's layers compute in, and the largest finite loss of the run so far.
    compute_dtypes: frozenset[str] = frozenset()
    # Each variable's dtype, and the optimizer's class and numeric constants (the inner one of
    # a LossScaleOptimizer): `{"class": "Adam", "beta_2": 0.999, "learning_rate": 0.001, ...}`.
    dtypes: tuple[str, ...] = ()
    # The metrics in Keras's logs at this step, the loss left out (each a running mean over the
    # epoch, as the progress bar shows it).
    metrics: dict[str, float] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=dict)
    largest_finite_loss: float | None = None
    # At the first non-finite value, with `Monitor(sample=...)`: where the replay of the sample
    # from the weights of step `replayed_from` broke (`nandoctor.live.replay.Localization`, as
    # a dict and in words).
    replay: dict[str, Any] | None = None
    replay_text: str | None = None
    replayed_from: int | None = None


class Detector(Diagnosis):
    """Like a rule, a detector carries its documentation, metadata and one `observe`."""

    runs_on = RunsOn.TRAINING
    evidence_kinds = (Evidence.MEASURED,)  # the run itself: the values the Monitor read on the device
    # Its findings mark the first non-finite values: the Monitor replays its `sample` to
    # name the layer where they start, and its actions (stop, raise) quote the finding.
    reports_nonfinite: ClassVar[bool] = False

    def observe(self, check: Check) -> Iterator[Finding]:
        raise NotImplementedError

    def wants_every_step(self) -> bool:
        """After `observe`: whether what it saw calls for the full statistics at every step
        for a while (a norm turning upward fast), rather than every `every_n_steps`."""
        return False

    def finding_at(self, step: int, layer: str | None, message: str, **details: Any) -> Finding:
        """A finding of this detector at training step `step` (in `details["step"]`)."""
        return self.finding(layer, message, details={"step": step, **details})
