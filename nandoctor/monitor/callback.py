"""`nandoctor.Monitor`: a Keras callback that sees NaN coming and names where it starts."""

from __future__ import annotations

import math

import keras
import numpy as np

from nandoctor.catalogue import Selection, merge_options, split_selectors
from nandoctor.diagnosis import RunsOn
from nandoctor.live.model_layers import every_layer
from nandoctor.monitor.actions import Actions, NonfiniteTrainingError
from nandoctor.monitor.detector import Check
from nandoctor.monitor.health_log import HealthLog
from nandoctor.monitor.stats import NONFINITE, NORM, StatsKernel
from nandoctor.monitor.tensorboard import TensorBoardScalars
from nandoctor.monitor.workers import is_chief
from nandoctor.report import FileResult, FileStatus, Report
from nandoctor.settings import load_settings

__all__ = ["Monitor", "NonfiniteTrainingError"]
# The steps of each run whose full statistics are taken one by one, before checks settle
# to every `every_n_steps`.
EVERY_STEP_AT_START = 2
# Keeping a snapshot doubles the weights' memory on the device; below this many values it
# is cheap enough to do by default (the update ratio and restore_last_good need it).
AUTO_SNAPSHOT_VALUES = 50_000_000
# The most recent skipped steps handed to the detectors (a run can skip thousands).
SKIPPED_KEPT = 256
# The Monitor's own figures in Keras's logs.
LOGS_PREFIX = "nandoctor/"


class Monitor(keras.callbacks.Callback):
    """Watches the weights during `fit` and reports, with the step, variable and layer:
    weights shrinking geometrically toward underflow (ND701, with a forecast), the first
    non-finite weight or loss (ND702), and updates as large as the weights (ND703).

    At every step it looks at the loss and at one number computed on the device from every
    weight, so the first non-finite value is reported at the exact step it appears. The full
    per-variable statistics come from one compiled function on the device, of which only a
    small matrix reaches the host: at the start of `fit`, at each of its first steps, then
    every `every_n_steps` steps (every step for a while when a norm grows fast). Findings
    are printed as they fire and gathered in `monitor.report`. In multi-worker training
    (`tf.distribute.MultiWorkerMirroredStrategy`, several JAX processes) every worker's
    Monitor finds the same and acts on its own replica; only the chief prints and writes
    `log_dir` and `tensorboard_dir`.

    Its figures join Keras's `logs` at every step and epoch, under `nandoctor/` keys
    (`nonfinite_steps`, `min_weight_norm`, `max_weight_norm`, and under a `LossScaleOptimizer`
    `skipped_steps` and `loss_scale`), so `CSVLogger`, `TensorBoard`, `History` and tracking
    callbacks record them: list the Monitor before them in `callbacks`. Steps are counted in
    batches, as the progress bar counts them (a `LossScaleOptimizer`'s `iterations` leaves out
    the steps it skips).

    Args:
        every_n_steps: optimiser steps between scheduled checks of the full statistics.
            Defaults to `10`.
        on_nonfinite: `"warn"` (report and go on), `"stop"` (end `fit` gracefully), or
            `"raise"` (raise `NonfiniteTrainingError`). Defaults to `"warn"`.
        restore_last_good: put back the weights of the last check at which every weight
            was finite, when a non-finite value appears. Defaults to `False`.
        log_dir: where to write the JSON-lines health log (`nandoctor-health.jsonl`), one
            line for the starting weights, then one per check. A new Monitor replaces the
            file; later `fit` calls with the same Monitor append to it. Defaults to `None`.
        snapshots: keep a copy of the weights on the device, for the update-to-weight
            ratio and `restore_last_good`: `True`, `False`, or `"auto"` (below 50 million
            values, or when `restore_last_good` asks). Defaults to `"auto"`.
        verbose: `1` prints each finding when it fires, `0` is silent. Defaults to `1`.
        sample: a batch `(x, y)` to replay layer by layer when a non-finite value appears,
            from the last good weights, to name the layer where it starts. Defaults to
            `None` (the finding then names the variables only).
        backup: the run's `keras.callbacks.BackupAndRestore`, if any. Keras deletes its backup
            whenever `fit` ends gracefully, a stop after NaN included (keras-team/keras#21771),
            and saves one at the end of that epoch, NaN weights and all. Given here, a stop
            for non-finite values first restores the last good weights (so the epoch-end
            backup is finite) and keeps the backup, so a rerun resumes from it.
            With `on_nonfinite="raise"`, `fit` never ends gracefully and Keras keeps it anyway.
        tensorboard_dir: where to write the statistics as TensorBoard scalars
            (`nandoctor/<variable>/norm`, `max_abs`, `nonfinite`). Defaults to `None`.
        select: the detectors to run, as codes (`ND701`), families (`ND7`) or names,
            like `nandoctor scan --select`. Defaults to `None`: the project's `select`
            (`[tool.nandoctor]` in the nearest `pyproject.toml`), else all of them.
        ignore: the detectors not to run, as for `select`; `CODE:LAYER` suppresses a code
            on the layers whose name matches a glob. Added to the project's `ignore`.
            Defaults to `None`.
        options: each detector's options, keyed by its code or name:
            `{"ND701": {"window": 50}, "exploding-updates": {"max_update_ratio": 0.5}}`,
            over the project's `[tool.nandoctor.options]`. Unknown names and wrong types are
            refused with the accepted ones. Defaults to `None`.

    Example:
    ```python
    monitor = nandoctor.Monitor(on_nonfinite="stop", restore_last_good=True)
    model.fit(x, y, epochs=10, callbacks=[monitor])
    print(monitor.report.to_json())
    ```
    """

    # Not `async_safe`: Keras (JAX, PyTorch) would then run `on_train_batch_end` in a thread
    # while the next steps train, and the Monitor must read the weights of the step that just
    # ran (to name it exactly, to stop or restore before the next update). It has no test or
    # predict batch hooks, so those keep Keras's asynchronous dispatch.
    async_safe = False

    def __init__(
        self,
        every_n_steps=10,
        on_nonfinite="warn",
        restore_last_good=False,
        log_dir=None,
        snapshots="auto",
        verbose=1,
        sample=None,
        backup=None,
        tensorboard_dir=None,
        select=None,
        ignore=None,
        options=None,
    ):
        super().__init__()
        if not isinstance(every_n_steps, int) or every_n_steps <= 0:
            raise ValueError(f"`every_n_steps` must be a positive integer. Received: every_n_steps={every_n_steps}")
        self._actions = Actions(on_nonfinite, restore_last_good, backup, verbose)
        if snapshots not in (True, False, "auto"):
            raise ValueError(f"`snapshots` must be True, False or 'auto'. Received: snapshots={snapshots!r}")
        if tensorboard_dir is not None:
            TensorBoardScalars.require()
        if backup is not None and not isinstance(backup, keras.callbacks.BackupAndRestore):
            raise ValueError(f"`backup` must be a keras.callbacks.BackupAndRestore. Received: backup={backup!r}")
        self.every_n_steps = every_n_steps
        self.log_dir = log_dir
        self.snapshots = snapshots
        self.sample = sample
        self.tensorboard_dir = tensorboard_dir
        self.select = select
        self.ignore = ignore
        self.options = options
        # As the command line does: the caller's select replaces the project's, its ignores
        # and options are added to the project's.
        project = load_settings()
        self._selection = Selection.resolve(
            select if select is not None else project.select, [*project.ignore, *split_selectors(ignore)]
        )
        self._options = merge_options(project.options, options)
        self._selection.instances(RunsOn.TRAINING, self._options)  # checked now, not at the first fit
        self.report = Report()
        self._logged = False
        # Steps are batches, as Keras's progress bar counts them: a LossScaleOptimizer's
        # `iterations` leaves out the steps it skips. Set at the first fit, from the optimizer.
        self._batches: int | None = None
        self.last_good_step: int | None = None
        self.restored = False

    # What to do on findings lives in `Actions`; these read it, so there is one copy.
    on_nonfinite = property(lambda self: self._actions.on_nonfinite)
    restore_last_good = property(lambda self: self._actions.restore_last_good)
    backup = property(lambda self: self._actions.backup)
    verbose = property(lambda self: self._actions.verbose)

    def on_train_begin(self, logs=None):
        variables = list(self.model.trainable_variables)
        owners = _variable_owners(self.model)
        self._names = tuple(v.path for v in variables)
        self._layers = tuple(owners.get(id(v), v.path.rsplit("/", 1)[0]) for v in variables)
        self._sizes = tuple(int(np.prod(v.shape)) for v in variables)
        self._ranks = tuple(len(v.shape) for v in variables)
        self._dtypes = tuple(str(v.dtype) for v in variables)
        embedding = [len(v.shape) == 2 and v.name == "embeddings" for v in variables]
        total = sum(int(np.prod(v.shape)) for v in variables)
        restoring = self._actions.restores
        keep = self.snapshots is True or restoring or (self.snapshots == "auto" and total <= AUTO_SNAPSHOT_VALUES)
        if restoring and self.snapshots is False:
            raise ValueError("Restoring the last good weights needs snapshots of them. Received: snapshots=False")
        # The compiled statistics and the device snapshots outlive one `fit`: a notebook that
        # calls fit again on the same model would otherwise pay the tracing every time.
        kernel = getattr(self, "_kernel", None)
        if (
            kernel is None
            or [id(v) for v in kernel.variables] != [id(v) for v in variables]
            or (keep and not kernel.keeps_snapshots)
        ):
            self._kernel = StatsKernel(variables, embedding, snapshots=keep)
        self._detectors = self._selection.instances(RunsOn.TRAINING, self._options)
        self._result = FileResult(f"<model {self.model.name}>", "live", FileStatus.SCANNED)
        self.report = Report([self._result])
        # Each Monitor writes its log afresh; its own later fits (a notebook's) append to it.
        appending = self._logged
        chief = self._actions.speaks = is_chief(self.model)
        self._log = HealthLog(self.log_dir, append=appending) if self.log_dir and chief else None
        self._logged = self._log is not None
        self._scalars = TensorBoardScalars(self.tensorboard_dir) if self.tensorboard_dir and chief else None
        self._actions.after_progress_bar = (self.params or {}).get("verbose") in (1, "auto")
        optimizer = self.model.optimizer
        # Keras's LossScaleOptimizer: the scale and the steps it skips.
        self._scaler = optimizer if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) else None
        start = self._batches if self._batches is not None else self._optimizer_steps()
        self._batches = self._epoch_start = start
        self._applied = self._optimizer_steps()
        self._skipped: list[int] = []
        self._skipped_count = 0
        self._loss_scale = self._initial_loss_scale = self._read_loss_scale()
        self._first_step = start
        self._compute_dtypes = frozenset(
            dtype for dtype in (getattr(layer, "compute_dtype", None) for layer in every_layer(self.model)) if dtype
        )
        self._largest_loss: float | None = None
        self._metric_nonfinite_seen = False
        self._nonfinite_steps = 0
        self._norm_range: tuple[float, float] | None = None
        self._metrics: dict[str, float] = {}
        self._optimizer_constants = _optimizer_constants(optimizer)
        epochs, steps = (self.params or {}).get("epochs"), (self.params or {}).get("steps")
        self._last_step = start + epochs * steps if isinstance(epochs, int) and isinstance(steps, int) else None
        self._nonfinite_seen = False
        self.last_good_step = self._last_finite = start
        # The weights as training starts are the first check: the first interval's updates
        # are judged against them, and a run that breaks at its first step still has a point
        # to plot. The first steps are then checked in full, one by one: a learning rate
        # that overflows the weights does it in a few updates.
        self._every_step_until = start + EVERY_STEP_AT_START
        self._scheduled = start
        self._check(start, None)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._batches

    def on_train_batch_end(self, batch, logs=None):
        # On JAX, reading `self.model` puts the trainer's state back into the variables, which
        # the statistics read.
        self.model  # noqa: B018
        # `batch` is the last batch of the execution (several with steps_per_execution).
        previous, step = self._batches, self._epoch_start + batch + 1
        self._batches = step
        skipped = self._count_skipped(previous, step)
        loss = (logs or {}).get("loss")
        if loss is not None and math.isfinite(float(loss)):
            self._largest_loss = max(float(loss), self._largest_loss or float(loss))
        self._metrics = _metrics(logs)
        metric_turned = not self._metric_nonfinite_seen and not all(map(math.isfinite, self._metrics.values()))
        self._metric_nonfinite_seen = self._metric_nonfinite_seen or metric_turned
        scheduled = step - self._scheduled >= self.every_n_steps
        if scheduled:
            self._scheduled = step
        if scheduled or skipped or metric_turned or step <= self._every_step_until:
            nonfinite = self._check(step, loss)
        else:
            nonfinite = self._turned_nonfinite(loss)
            if nonfinite and not self._nonfinite_seen:
                self._check(step, loss)
            elif not self._nonfinite_seen:
                self._last_finite = step
        self._nonfinite_steps += nonfinite
        if logs is not None:
            logs.update(self.figures())

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self.figures())

    def figures(self) -> dict[str, float]:
        """The Monitor's figures for Keras's `logs` (and so CSVLogger, TensorBoard, History and
        the tracking callbacks): the steps of this `fit` at which the loss or a weight was
        non-finite, the smallest and largest weight norm at the last check, and under loss
        scaling the steps skipped and the loss scale at the last check."""
        figures = {f"{LOGS_PREFIX}nonfinite_steps": float(self._nonfinite_steps)}
        if self._norm_range is not None:
            figures[f"{LOGS_PREFIX}min_weight_norm"], figures[f"{LOGS_PREFIX}max_weight_norm"] = self._norm_range
        if self._scaler is not None:
            figures[f"{LOGS_PREFIX}skipped_steps"] = float(self._skipped_count)
            figures[f"{LOGS_PREFIX}loss_scale"] = float(self._loss_scale) if self._loss_scale is not None else math.nan
        return figures

    def on_train_end(self, logs=None):
        step = self._batches
        if step > self._last_check and not self._nonfinite_seen:
            self._check(step, (logs or {}).get("loss"))
        for sink in (self._log, self._scalars):
            if sink is not None:
                sink.close()

    def _optimizer_steps(self) -> int:
        """The updates the optimizer applied (`.numpy()` reads a MirroredVariable too, where
        int() does not)."""
        return int(np.asarray(self.model.optimizer.iterations.numpy()))

    def _read_loss_scale(self) -> float | None:
        if self._scaler is None:
            return None
        # The scale is a variable once the optimizer is built (at the first step), its
        # `initial_scale` until then.
        scale = getattr(self._scaler, "dynamic_scale", None)
        return float(np.asarray(scale.numpy())) if scale is not None else float(self._scaler.initial_scale)

    def _count_skipped(self, previous: int, step: int) -> int:
        """The batches up to `step` whose update a LossScaleOptimizer skipped (non-finite
        gradients): batches run against the updates applied. One scalar read per step, only
        under loss scaling; the scale itself is read when a step was skipped."""
        if self._scaler is None:
            return 0
        applied = self._optimizer_steps()
        skipped = max((step - previous) - (applied - self._applied), 0)
        self._applied = applied
        if skipped:
            self._skipped_count += skipped
            self._skipped.extend(range(step - skipped + 1, step + 1))
            del self._skipped[:-SKIPPED_KEPT]
        return skipped

    def _turned_nonfinite(self, loss) -> bool:
        """The every-step look: the loss Keras already brought to the host, then one number
        from the device that says whether any weight is non-finite."""
        return (loss is not None and not math.isfinite(float(loss))) or self._kernel.any_nonfinite()

    def _check(self, step: int, loss) -> bool:
        """Runs the detectors on the full statistics; whether a weight or the loss is non-finite."""
        self._last_check = step
        stats = self._kernel()
        norms = stats[:, NORM][np.isfinite(stats[:, NORM])]
        self._norm_range = (float(norms.min()), float(norms.max())) if len(norms) else None
        loss = float(loss) if loss is not None else None
        self._loss_scale = self._read_loss_scale()
        nonfinite = bool((stats[:, NONFINITE] > 0).any()) or (loss is not None and not math.isfinite(loss))
        weights_finite = not (stats[:, NONFINITE] > 0).any()
        replay, replayed_from = None, None
        if nonfinite and not self._nonfinite_seen and self.sample is not None:
            # Weights still finite (only the loss is not: a skipped step keeps them) are the
            # ones that broke; otherwise those of the last good check.
            replayed_from = step if weights_finite else self.last_good_step
            replay = self._replay(from_current=weights_finite)
        check = Check(
            step,
            stats,
            loss,
            self._names,
            self._layers,
            self._sizes,
            self._ranks,
            last_step=self._last_step,
            last_finite_step=self._last_finite,
            smallest_positive=self._kernel.smallest_positive,
            first_step=self._first_step,
            applied_steps=self._applied if self._scaler is not None else None,
            skipped_steps=tuple(self._skipped),
            skipped_count=self._skipped_count,
            loss_scale=self._loss_scale,
            initial_loss_scale=self._initial_loss_scale,
            compute_dtypes=self._compute_dtypes,
            largest_finite_loss=self._largest_loss,
            dtypes=self._dtypes,
            optimizer=self._optimizer_constants,
            metrics=self._metrics,
            replay=replay.to_dict() if replay is not None else None,
            replay_text=replay.describe() if replay is not None else None,
            replayed_from=replayed_from if replay is not None else None,
        )
        findings, first_nonfinite = [], None
        for detector in self._detectors:
            for finding in detector.observe(check):
                if detector.reports_nonfinite:
                    first_nonfinite = first_nonfinite or finding
                findings.append(finding)
            if detector.wants_every_step():
                self._every_step_until = max(self._every_step_until, step + self.every_n_steps)
        findings, suppressed = self._selection.filter(findings)
        self._result.findings.extend(findings)
        for code, count in suppressed.items():
            self._result.suppressed[code] = self._result.suppressed.get(code, 0) + count
        for finding in findings:
            self._actions.announce(finding)
        if self._log is not None:
            self._log.write(check, findings)
        if self._scalars is not None:
            self._scalars.write(check)
        if not nonfinite:
            self._kernel.snapshot()
            self.last_good_step = self._last_finite = step
        elif not self._nonfinite_seen:
            self._nonfinite_seen = True
            self.restored = (
                self._actions.on_first_nonfinite(self.model, self._kernel, first_nonfinite, self.last_good_step)
                or self.restored
            )
        return nonfinite

    def _replay(self, from_current: bool):
        """Where the replay of `sample` breaks (a `Localization`), from the current weights or
        the last good ones; its data is checked first, which needs no weights. None without
        last good weights."""
        from nandoctor.live.replay import cure_in, localize, nonfinite_data

        data = nonfinite_data(self.model, self.sample)
        if data is not None:
            return data
        if from_current:
            where = localize(self.model, self.sample)
        else:
            broken = [np.array(v.numpy()) for v in self._kernel.variables]
            if not self._kernel.restore():
                return None  # no last good weights to replay from
            try:
                where = localize(self.model, self.sample)
            finally:
                for variable, values in zip(self._kernel.variables, broken):
                    variable.assign(values)
        culprit = where.forward_culprit or where.backward_culprit
        if culprit is not None:
            where.culprit_fix = cure_in(self.model, culprit, forward=where.forward_culprit is not None)
        return where


def _metrics(logs) -> dict[str, float]:
    """The metrics of a batch's logs: numbers other than the loss and the Monitor's own."""
    metrics = {}
    for key, value in (logs or {}).items():
        if key != "loss" and not key.startswith(LOGS_PREFIX) and isinstance(value, (int, float)):
            metrics[key] = float(value)
    return metrics


def _optimizer_constants(optimizer) -> dict:
    """The optimizer's class and the constants a reduced-precision dtype may not hold, read
    once at the start of `fit` (a learning-rate schedule is left out)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    constants: dict = {"class": type(inner).__name__}
    for key in ("learning_rate", "beta_1", "beta_2", "epsilon"):
        value = getattr(inner, key, None)
        try:
            constants[key] = float(np.asarray(keras.ops.convert_to_numpy(value)))
        except (TypeError, ValueError):
            continue  # a schedule, or not this optimizer's
    return constants


def _variable_owners(model) -> dict[int, str]:
    """id(variable) -> the name of the outermost layer holding it (nested as outer/inner)."""
    owners: dict[int, str] = {}

    def walk(layers, prefix: str) -> None:
        for layer in layers:
            name = prefix + layer.name
            inner = getattr(layer, "layers", None)
            if inner and isinstance(layer, keras.Model):
                walk(inner, name + "/")
            for variable in layer.trainable_weights:
                owners.setdefault(id(variable), name)

    walk(model.layers, "")
    return owners
