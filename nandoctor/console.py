"""The one rich Console, on stderr: progress and messages. Reports go to stdout.

Markup is off, so a layer called `[bold]` prints as written; rich honours `NO_COLOR`.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

console = Console(stderr=True, highlight=False, markup=False, emoji=False)

# A bar appears only once a file's weights have taken this long to read: a fast read
# would only flicker, and how fast is fast depends on the disk and the page cache.
PROGRESS_DELAY_S = 1.0


def error(message: str) -> None:
    console.print(Text("nandoctor: error: ", style="bold red") + Text(message), soft_wrap=True)


class WeightProgress:
    """A transient progress bar for files whose weights take more than about a second."""

    def __init__(self, target: Console = console, clock=time.monotonic) -> None:
        self._console = target
        self._clock = clock
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._path = ""
        self._total = self._done = 0
        self._started = 0.0

    def start(self, path: str, total_bytes: int) -> None:
        self._path, self._total, self._done = path, total_bytes, 0
        self._started = self._clock()

    def advance(self, nbytes: int) -> None:
        self._done += nbytes
        if self._bar is None:
            if not self._console.is_terminal or self._clock() - self._started < PROGRESS_DELAY_S:
                return
            self._bar = Progress(
                TextColumn("reading weights of {task.description}"),
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=self._console,
                transient=True,
            )
            self._task = self._bar.add_task(self._path, total=self._total)
            self._bar.start()
        assert self._task is not None  # added with the bar
        self._bar.update(self._task, completed=self._done)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
