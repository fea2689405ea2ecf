"""The host's workers: threads of this process that make system calls on request
(:class:`HostWorker`, SCHED_OTHER or SCHED_FIFO at a priority), and waiting for a state
(:func:`wait_for`), never for a time.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.differential.harness.host import gettid, host_syscall
from tests.differential.harness.mismatch import ScenarioMismatch
from tests.differential.harness.proc import asleep_in, proc_args

__all__ = [
    "STATE_TIMEOUT",
    "HostWorker",
    "Job",
    "Sched",
    "sched_fifo_unavailable",
    "wait_for",
]

#: Generous bound for a state to be reached (a thread asleep, a call returned).
STATE_TIMEOUT = 30.0
#: A worker's scheduling class: None (SCHED_OTHER) or (SCHED_FIFO / SCHED_RR, priority).
Sched = tuple[int, int] | None


def wait_for(cond: Callable[[], bool], what: str, timeout: float = STATE_TIMEOUT) -> None:
    """Poll until ``cond()`` holds; raise after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise ScenarioMismatch(f"harness: timed out waiting until {what}")
        time.sleep(0.0002)


def sched_fifo_unavailable(priority: int) -> str:
    """Why threads here cannot use SCHED_FIFO at ``priority`` (it needs CAP_SYS_NICE, or an
    RLIMIT_RTPRIO at least that high), or "" if they can."""
    why: list[str] = []

    def probe() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        except OSError as exc:
            why.append(f"sched_setscheduler(SCHED_FIFO, {priority}) is refused here: {exc}")

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    return why[0] if why else ""


@dataclass
class Job:
    """One call a worker makes."""

    nr: int
    args: tuple[int, ...]
    result: int | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def signature(self) -> list[str]:
        return proc_args(self.nr, self.args)


class HostWorker:
    """A thread of this process that makes system calls on request, one at a time; with
    ``sched``, it sets its own scheduling class first (``sched_error`` if refused)."""

    def __init__(self, sched: Sched = None, name: str = "futex-diff-worker") -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.tid = 0
        self.sched_error: OSError | None = None
        self.job: Job | None = None  # the last one submitted
        ready = threading.Event()

        def run() -> None:
            self.tid = gettid()
            if sched is not None:
                try:
                    os.sched_setscheduler(0, sched[0], os.sched_param(sched[1]))
                except OSError as exc:
                    self.sched_error = exc
            ready.set()
            while (job := self._jobs.get()) is not None:
                job.result = host_syscall(job.nr, *job.args)
                job.done.set()

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()
        ready.wait()
        self.ident = self._thread.ident or 0
        self.task_dir = f"/proc/self/task/{self.tid}"

    def submit(self, nr: int, args: tuple[int, ...]) -> Job:
        assert self.job is None or self.job.done.is_set(), "worker busy"
        self.job = Job(nr, args)
        self._jobs.put(self.job)
        return self.job

    def asleep(self) -> bool:
        """Whether the worker sleeps in its last job's call."""
        job = self.job
        return job is not None and not job.done.is_set() and asleep_in(self.task_dir, job.signature)

    def settle(self) -> None:
        """Wait until the last job returned or sleeps in its call."""
        job = self.job
        assert job is not None
        wait_for(lambda: job.done.is_set() or self.asleep(), f"worker {self.tid} settles")

    def signal(self) -> None:
        signal.pthread_kill(self.ident, signal.SIGUSR1)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(STATE_TIMEOUT)
