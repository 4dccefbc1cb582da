"""What the Monitor does when it finds something: announce it, and on the first non-finite
value warn, stop `fit`, or raise, after putting back the last good weights if asked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ACTIONS = ("warn", "stop", "raise")


class NonfiniteTrainingError(RuntimeError):
    """Raised by `Monitor(on_nonfinite="raise")`; the message is the ND702 finding."""


@dataclass
class Actions:
    on_nonfinite: str = "warn"
    restore_last_good: bool = False
    backup: Any = None  # the run's keras.callbacks.BackupAndRestore
    verbose: int = 1
    # Keras's progress bar holds the terminal's last line (it redraws it with "\r"): a
    # finding printed then starts on a line of its own.
    after_progress_bar: bool = False
    # Off on every worker but the chief in multi-worker training: the findings are printed once.
    speaks: bool = True

    def __post_init__(self) -> None:
        if self.on_nonfinite not in ACTIONS:
            raise ValueError(f"`on_nonfinite` must be one of {ACTIONS}. Received: on_nonfinite={self.on_nonfinite!r}")

    @property
    def keeps_backup(self) -> bool:
        return self.backup is not None and self.on_nonfinite == "stop"

    @property
    def restores(self) -> bool:
        """Whether the first non-finite value puts back the last good weights: asked for,
        or needed so that the backup Keras writes at the end of the epoch is finite."""
        return self.restore_last_good or self.keeps_backup

    def announce(self, finding) -> None:
        if self.verbose and self.speaks:
            where = f" in layer '{finding.layer}'" if finding.layer else ""
            say(f"nandoctor: {finding.code} {finding.name}{where}: {finding.message}", self.after_progress_bar)

    def on_first_nonfinite(self, model, kernel, finding, last_good_step: int | None) -> bool:
        """Act on the first non-finite weight or loss; True when the weights were restored."""
        if self.keeps_backup:
            # Keras deletes its backup whenever fit ends gracefully, a stop included.
            self.backup.delete_checkpoint = False
        restored = self.restores and kernel.restore()
        if restored and self.verbose and self.speaks:
            say(
                f"nandoctor: restored the weights of step {last_good_step}, the last check with every weight finite",
                self.after_progress_bar,
            )
        if self.on_nonfinite == "stop":
            model.stop_training = True
        elif self.on_nonfinite == "raise":
            raise NonfiniteTrainingError(finding.message if finding else "non-finite values during training")
        return restored


def say(message: str, own_line: bool = False) -> None:
    from rich.text import Text

    from nandoctor.console import console

    console.print(Text(("\n" if own_line else "") + message, style="bold yellow"), soft_wrap=True)
