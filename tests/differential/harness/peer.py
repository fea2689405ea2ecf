"""The peer: an idle thread of this process, the one live task besides the caller that PI
words may name on the host (the emulated process has a task with its tid too).  It
rescues a host PI lock that blocked on it (:meth:`Peer.unlock`), and runs
:class:`PeerJob` s: calls made while the main thread sleeps in one.
"""

from __future__ import annotations

import functools
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence

from futex.linux import abi
from tests.differential.harness.host import gettid, host_futex, host_syscall
from tests.differential.harness.proc import asleep_in, proc_args
from tests.differential.harness.steps import PEER_SIGNAL

__all__ = [
    "PEER_PATIENCE_SECONDS",
    "Peer",
    "PeerJob",
]


#: How long the peer waits for the caller to fall asleep in its call.
PEER_PATIENCE_SECONDS = 1.5


class Peer:
    """An idle thread of this process: the one live task, besides the caller, that PI
    words may name on the host (the emulated process has a task with its tid too).  It
    also rescues a host PI lock that blocked on it: :meth:`unlock` has it run UNLOCK_PI,
    which hands the lock to the blocked caller; and it runs :class:`PeerJob` s (calls
    made while the caller sleeps)."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        ready = threading.Event()
        self.tid = 0

        def run() -> None:
            self.tid = gettid()
            ready.set()
            while (request := self._requests.get()) is not None:
                request()

        self._thread = threading.Thread(target=run, name="futex-diff-peer", daemon=True)
        self._thread.start()
        ready.wait()

    def unlock(self, uaddr: int, flags: int) -> None:
        self.submit(functools.partial(host_futex, uaddr, abi.FUTEX_UNLOCK_PI | flags, 0, 0, 0, 0))

    def submit(self, fn: Callable[[], object]) -> None:
        self._requests.put(fn)

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join()


class PeerJob:
    """Runs on the peer thread while the main thread makes system call ``nr(args)``: once
    ``/proc`` shows the main thread asleep in it, make ``calls`` until it no longer sleeps
    (a futex_waitv woken through one entry leaves the others queued until it runs: a wake
    of those would race with it); if it still sleeps in it after them, send it SIGUSR1 (a
    futex wait answers EINTR; a requeue-PI wait still on its condition word restarts).
    ``results`` stays ``None`` if the main thread never slept in the call (it returned,
    or ``PEER_PATIENCE_SECONDS`` passed)."""

    def __init__(
        self,
        main_tid: int,
        nr: int,
        args: Sequence[int],
        calls: Sequence[tuple[int, Sequence[int]]],
    ) -> None:
        self.task_dir = f"/proc/self/task/{main_tid}"
        self.signature = proc_args(nr, args)
        self.calls = calls
        self.target = threading.main_thread().ident
        self.results: list[object] | None = None
        self.signalled = False
        self.returned = threading.Event()
        self.finished = threading.Event()

    def asleep(self) -> bool:
        """Whether the main thread sleeps in the call (``proc.asleep_in``)."""
        return asleep_in(self.task_dir, self.signature)

    def __call__(self) -> None:
        try:
            deadline = time.monotonic() + PEER_PATIENCE_SECONDS
            while not self.asleep():
                if self.returned.is_set() or time.monotonic() > deadline:
                    return
                time.sleep(0.0001)
            results: list[object] = []
            for nr, args in self.calls:
                if nr == PEER_SIGNAL:
                    results.append(self._signal())
                else:
                    results.append(host_syscall(nr, *args))
                if not self.asleep():
                    break  # woken: what else the peer would do races with its return
            self.results = results
            if self.asleep():
                self.signalled = True
                assert self.target is not None
                signal.pthread_kill(self.target, signal.SIGUSR1)
        finally:
            self.finished.set()

    def _signal(self) -> str:
        """SIGUSR1 to the caller; ``"restarted"`` once it sleeps in its call again, or
        ``"returned"``."""
        assert self.target is not None
        signal.pthread_kill(self.target, signal.SIGUSR1)
        deadline = time.monotonic() + PEER_PATIENCE_SECONDS
        while not self.returned.is_set() and time.monotonic() < deadline:
            if self.asleep():
                return "restarted"
            time.sleep(0.0001)
        return "returned"
