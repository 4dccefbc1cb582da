import io

from rich.console import Console

from nandoctor.console import WeightProgress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def reading(is_terminal: bool = True) -> tuple[WeightProgress, Clock, io.StringIO]:
    """A progress display that has started reading 100 bytes of `big.keras` at time 0."""
    buffer = io.StringIO()
    clock = Clock()
    progress = WeightProgress(Console(file=buffer, force_terminal=is_terminal, width=80), clock)
    progress.start("big.keras", 100)
    return progress, clock, buffer


def test_no_bar_while_reading_takes_less_than_a_second():
    progress, clock, buffer = reading()
    clock.now = 0.5
    progress.advance(100)
    progress.finish()
    assert buffer.getvalue() == ""


def test_a_bar_appears_once_reading_passes_a_second():
    progress, clock, buffer = reading()
    clock.now = 1.5
    progress.advance(40)
    progress.finish()
    assert "reading weights of big.keras" in buffer.getvalue()


def test_no_bar_when_stderr_is_not_a_terminal():
    progress, clock, buffer = reading(is_terminal=False)
    clock.now = 5.0
    progress.advance(100)
    progress.finish()
    assert buffer.getvalue() == ""
