"""The watchdog: ends a host call that blocked when it should not have (a signal, or a
rescue for a call a signal only restarts), so that a disagreement is reported as
``BLOCKED`` instead of hanging the run.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

__all__ = [
    "WATCHDOG_SECONDS",
    "Watchdog",
]


#: Host calls that do not return within this many seconds are taken to be blocked.
WATCHDOG_SECONDS = 2.0


class Watchdog:
    """Ends a host call that blocks: after ``arm(seconds)`` it sends SIGUSR1 to the main
    thread unless ``disarm()`` came first.  SIGUSR1 gets a no-op handler (without
    SA_RESTART), so the futex call returns -EINTR.  A PI lock restarts after a signal
    (ERESTARTNOINTR): ``arm(seconds, rescue)`` calls ``rescue()`` instead."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._rescue: Callable[[], None] | None = None
        self._fired = False
        self._closed = False
        self._target = threading.main_thread().ident
        self._old = signal.signal(signal.SIGUSR1, lambda *_: None)
        self._thread = threading.Thread(target=self._run, name="futex-diff-watchdog", daemon=True)
        self._thread.start()

    def arm(self, seconds: float, rescue: Callable[[], None] | None = None) -> None:
        with self._cond:
            self._deadline = time.monotonic() + seconds
            self._rescue = rescue
            self._fired = False
            self._cond.notify()

    def disarm(self) -> bool:
        """Stop watching; return whether the signal was sent."""
        with self._cond:
            self._deadline = None
            return self._fired

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        signal.signal(signal.SIGUSR1, self._old)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self._deadline = None
                self._fired = True
                if self._rescue is not None:
                    self._rescue()
                    continue
                assert self._target is not None
                signal.pthread_kill(self._target, signal.SIGUSR1)
