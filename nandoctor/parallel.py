"""Scanning files in worker processes, with a hard time limit per file.

Each worker owns one pipe and holds at most `IN_FLIGHT` files (and no more than its share of
those left): the one it is scanning and the next ones, sent ahead so that it never waits on
the parent between two small files. It answers in the order given, so the parent always knows
which file a worker is on: the oldest unanswered. A file that hangs libhdf5 (inside C, where
nothing in Python can interrupt it) holds one worker and nothing else: at its deadline
(counted from the previous answer) the worker is killed, the file gets a one-line error, the
files sent ahead go back to the queue, and a fresh worker takes over. A worker that dies (a
crash in a C library) costs its own file one line, never the run. concurrent.futures cannot
do this: it has no way to kill one task.

The workers run the static path only (nandoctor.engine's rules and loaders): no TensorFlow,
no Keras. Workers are forked (a few milliseconds each) unless the process has loaded a
library whose threads a fork would break (a notebook that imported TensorFlow): then they are
spawned, a fresh interpreter each (about a quarter of a second), and a script that calls
`nandoctor.scan(..., jobs=N)` needs the usual `if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nandoctor.loaders import Target
from nandoctor.report import FileResult
from nandoctor.result_json import received_result, sent_form, target_from_dict, target_to_dict

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


@dataclass(frozen=True)
class ScanJob:
    """What every worker needs to scan a file as the parent would: the rules and their options.
    Plain data, so that it crosses into a spawned interpreter."""

    select: Any = None
    ignore: Any = None
    options: Mapping[str, Mapping[str, Any]] | None = None


@dataclass
class Outcome:
    """A file's unfiltered result; `finished` is False when the worker was killed or died
    (such a result is never cached: the next run tries the file again)."""

    result: FileResult
    finished: bool = True


def cpu_count() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# Libraries whose own threads do not survive a fork: with one of them loaded, workers are spawned.
_FORK_UNSAFE = ("tensorflow", "torch", "jax", "keras")


def start_method() -> str:
    """fork where the platform has it and no library that a fork breaks is loaded (the CLI
    never loads one), else spawn. numpy's BLAS threads survive a fork: it registers handlers."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        return "spawn"
    return "spawn" if any(name in sys.modules for name in _FORK_UNSAFE) else "fork"


# Files a worker holds at once: the one it scans and those sent ahead, enough for the parent to
# look at its workers' answers every `ANSWER_PAUSE` rather than wake for each: each wake-up
# takes a core from a worker while there are as many workers as cores, and finds the caches of
# both cold. Small files take about a millisecond each; the files sent ahead of a file that
# hangs wait for its deadline before they go back to the queue. Measured by A/B runs of
# bench/many_files.py's directory (3,010 files), two jobs on two cores: 8 files and a pause of
# 3 ms took 66 ms (3%) less than 2 files and none; 32 files and 12 ms, 52 ms (2%) less again
# (16 pairs of runs; 16 and 6 ms, or 64 and 24 ms, gained less). No worker holds more than its
# share of the files left (`_Pool.give`), so a few files are spread over every worker and the
# last ones end together.
IN_FLIGHT = 32
ANSWER_PAUSE = 0.012
# Past the file it scans and the next, a worker holds no more than this many bytes of files: a
# file's scan reads its weights, so large files sent ahead to one worker would wait there while
# another ran out of files at the end of the run (32 large models are minutes of one core). Set
# well above what 32 small files hold (the bench's directory never reaches it), and above what a
# pause takes to scan: a worker held back by it is never left without work while the parent
# pauses.
AHEAD_BYTES = 64 << 20


def scan_in_processes(
    targets: Sequence[Target], job: ScanJob, jobs: int, timeout: float | None = None, method: str | None = None
) -> list[Outcome]:
    """Each target's unfiltered result, in the order given, from up to `jobs` worker processes."""
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context(method or start_method())
    pool = _Pool(context, job, min(jobs, len(targets)))
    outcomes: list[Outcome | None] = [None] * len(targets)
    queue = list(range(len(targets)))[::-1]  # popped from the end: the first target first
    try:
        for worker in pool.workers:
            pool.give(worker, queue, targets)
        while any(worker.held for worker in pool.workers):
            busy = [w for w in pool.workers if w.held]
            ready = wait([w.connection for w in busy], timeout=pool.next_deadline(timeout))
            for worker in busy:
                if worker.connection in ready:
                    _take_answers(worker, pool, queue, targets, outcomes)
                elif timeout is not None and time.monotonic() - worker.started > timeout:
                    index = worker.held[0]
                    outcomes[index] = Outcome(_timed_out(targets[index], timeout), finished=False)
                    pool.replace(worker, queue)
                else:
                    continue
                pool.give(worker, queue, targets)
            if queue and all(len(w.held) > 1 for w in pool.workers if w.held):  # none about to run dry
                time.sleep(ANSWER_PAUSE)
    finally:
        pool.close()
    return outcomes  # type: ignore[return-value]


def _take_answers(
    worker: _Worker, pool: _Pool, queue: list[int], targets: Sequence[Target], outcomes: list[Outcome | None]
) -> None:
    """Every answer `worker` has sent, oldest first. One that is not a result, or a worker
    that died: that file's one line, and a fresh worker in its place."""
    while worker.held:
        index = worker.held[0]
        try:
            answer = worker.connection.recv_bytes().decode()
            outcomes[index] = Outcome(received_result(answer, targets[index].path))
        except (EOFError, OSError, ValueError, KeyError, TypeError):
            outcomes[index] = Outcome(_died(targets[index], worker), finished=False)
            pool.replace(worker, queue)
            return
        worker.answered()
        if not worker.connection.poll():
            return


@dataclass
class _Worker:
    process: Any
    connection: Connection
    held: list[int] = field(default_factory=list)  # the targets sent and not answered, oldest first
    started: float = 0.0  # when it began the oldest: when it was sent, or the one before answered

    def answered(self) -> None:
        self.held.pop(0)
        self.started = time.monotonic()


@dataclass
class _Pool:
    context: Any
    job: ScanJob
    size: int
    workers: list[_Worker] = field(default_factory=list)
    _sizes: dict[int, int] = field(default_factory=dict)  # bytes of each target asked about

    def __post_init__(self) -> None:
        self.workers = [self._start() for _ in range(self.size)]

    def _start(self) -> _Worker:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=work, args=(child, self.job), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    def give(self, worker: _Worker, queue: list[int], targets: Sequence[Target]) -> None:
        """Top `worker` up from the queue to `IN_FLIGHT` files, or to its share of the files
        not yet answered where that is fewer (rounded up), and past its next file to no more
        than `AHEAD_BYTES` of them."""
        unanswered = len(queue) + sum(len(w.held) for w in self.workers)
        limit = min(IN_FLIGHT, -(-unanswered // len(self.workers)))
        ahead = sum(self._size(index, targets) for index in worker.held[1:])
        while queue and len(worker.held) < limit:
            size = self._size(queue[-1], targets)
            if len(worker.held) >= 2 and ahead + size > AHEAD_BYTES:
                return
            if worker.held:
                ahead += size
            index = queue.pop()
            if not worker.held:
                worker.started = time.monotonic()
            worker.held.append(index)
            worker.connection.send_bytes(json.dumps(target_to_dict(targets[index])).encode())

    def _size(self, index: int, targets: Sequence[Target]) -> int:
        """The bytes of the target at `index` (a folder that is one model counts as
        `AHEAD_BYTES`; one that cannot be asked, as nothing: its scan will say why)."""
        if index not in self._sizes:
            try:
                status = os.stat(targets[index].path)
                self._sizes[index] = status.st_size if stat.S_ISREG(status.st_mode) else AHEAD_BYTES
            except OSError:
                self._sizes[index] = 0
        return self._sizes[index]

    def replace(self, worker: _Worker, queue: list[int]) -> None:
        """Kill `worker` (stuck in C, or dead already) and put a fresh one in its place; the
        files it was sent after the one it was on go back to the front of the queue."""
        _stop(worker, kill=True)
        queue.extend(reversed(worker.held[1:]))
        fresh = self._start()
        worker.process, worker.connection, worker.held = fresh.process, fresh.connection, []

    def next_deadline(self, timeout: float | None) -> float | None:
        if timeout is None:
            return None
        busy = [w.started for w in self.workers if w.held]
        return max(0.0, min(busy) + timeout - time.monotonic()) if busy else None

    def close(self) -> None:
        for worker in self.workers:
            _stop(worker, kill=bool(worker.held))


def _stop(worker: _Worker, kill: bool) -> None:
    if kill:
        worker.process.kill()
    else:
        try:
            worker.connection.send_bytes(b"null")
        except OSError:
            worker.process.kill()
    worker.process.join(timeout=None if kill else 5)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join()
    worker.connection.close()


def _timed_out(target: Target, timeout: float) -> FileResult:
    from nandoctor.engine import failed_result

    return failed_result(target, f"took longer than --timeout {timeout:g} s: stopped")


def _died(target: Target, worker: _Worker) -> FileResult:
    """The one line for a file whose worker died, or answered with something not a result
    (then it is killed: what a hostile file did to it is not trusted any further)."""
    from nandoctor.engine import failed_result

    worker.process.join(timeout=1)
    if worker.process.is_alive():
        worker.process.kill()
        return failed_result(target, "the process scanning it sent a malformed result: stopped")
    code = worker.process.exitcode
    how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    return failed_result(target, f"the process scanning it died ({how})")


def work(connection: Connection, job: ScanJob) -> None:
    """A worker's life: build the rules once, then scan each target sent until None arrives."""
    import signal

    from nandoctor.catalogue import Selection
    from nandoctor.diagnosis import RunsOn
    from nandoctor.engine import scan_target_unfiltered

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers
    selection = Selection.resolve(job.select, job.ignore)
    rules = selection.instances(RunsOn.FILE, job.options)
    while True:
        try:
            message = json.loads(connection.recv_bytes())
        except (EOFError, KeyboardInterrupt):
            return
        if message is None:
            return
        result = scan_target_unfiltered(target_from_dict(message), rules)
        connection.send_bytes(sent_form(result).encode())
