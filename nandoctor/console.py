"""The one rich Console, on stderr: progress and messages. Reports go to stdout.

Markup is off, so a layer called `[bold]` prints as written; rich honours `NO_COLOR`.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

console = Console(stderr=True, highlight=False, markup=False, emoji=False)

# About a second's reading at this machine's pace: below it a bar would only flicker.
PROGRESS_MIN_BYTES = 512 << 20


def error(message: str) -> None:
    console.print(Text("nandoctor: error: ", style="bold red") + Text(message), soft_wrap=True)


class WeightProgress:
    """A transient progress bar for files whose weights take more than about a second."""

    def __init__(self) -> None:
        self._bar: Progress | None = None
        self._task = None

    def start(self, path: str, total_bytes: int) -> None:
        if total_bytes < PROGRESS_MIN_BYTES or not console.is_terminal:
            return
        self._bar = Progress(
            TextColumn("reading weights of {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(path, total=total_bytes)

    def advance(self, nbytes: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, nbytes)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
