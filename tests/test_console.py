import io

from rich.console import Console

from nandoctor.console import WeightProgress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=80), buffer


def test_no_bar_while_reading_takes_less_than_a_second():
    target, buffer = terminal()
    clock = Clock()
    progress = WeightProgress(target, clock)
    progress.start("big.keras", 100)
    clock.now = 0.5
    progress.advance(100)
    progress.finish()
    assert buffer.getvalue() == ""


def test_a_bar_appears_once_reading_passes_a_second():
    target, buffer = terminal()
    clock = Clock()
    progress = WeightProgress(target, clock)
    progress.start("big.keras", 100)
    clock.now = 1.5
    progress.advance(40)
    assert progress._bar is not None
    progress.finish()
    assert "reading weights of big.keras" in buffer.getvalue()


def test_no_bar_when_stderr_is_not_a_terminal():
    buffer = io.StringIO()
    clock = Clock()
    progress = WeightProgress(Console(file=buffer, force_terminal=False), clock)
    progress.start("big.keras", 100)
    clock.now = 5.0
    progress.advance(100)
    progress.finish()
    assert buffer.getvalue() == ""
