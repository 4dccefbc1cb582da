"""The one rich Console, on stderr: progress and messages. Reports go to stdout.

Markup is off, so a layer called `[bold]` prints as written; rich honours `NO_COLOR`.
rich is imported when something is first printed or a bar first shown, not with this module:
a scan that prints nothing of its own (a JSON report, nothing unreadable) never pays for it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

# A bar appears only once a file's weights have taken this long to read: a fast read
# would only flicker, and how fast is fast depends on the disk and the page cache.
PROGRESS_DELAY_S = 1.0

_console: Console | None = None


def stderr_console() -> Console:
    """The Console on stderr, made on first use."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True, highlight=False, markup=False, emoji=False)
    return _console


def __getattr__(name: str) -> Any:
    # `console.console`, as it was when the Console was made at import.
    if name == "console":
        return stderr_console()
    raise AttributeError(f"module 'nandoctor.console' has no attribute {name!r}")


def error(message: str) -> None:
    from rich.text import Text

    stderr_console().print(Text("nandoctor: error: ", style="bold red") + Text(message), soft_wrap=True)


class WeightProgress:
    """A transient progress bar for files whose weights take more than about a second."""

    def __init__(self, target: Console | None = None, clock=time.monotonic) -> None:
        self._target = target  # None: the stderr Console, made only if a bar is ever due
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
            if self._clock() - self._started < PROGRESS_DELAY_S:
                return
            target = self._target if self._target is not None else stderr_console()
            if not target.is_terminal:
                return
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("reading weights of {task.description}"),
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=target,
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
