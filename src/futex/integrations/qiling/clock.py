"""The kernel's clock under Qiling: the host's clocks, timers on gevent's loop.

Qiling's guest threads are gevent greenlets on one OS thread, and gevent objects are not
thread-safe, so the futex kernel's timeouts cannot fire on :class:`~futex.kernel.RealClock`'s
timer thread.  :class:`GeventClock` reads the same host clocks at nanosecond precision
(``CLOCK_MONOTONIC`` and ``CLOCK_REALTIME``: what the guest's ``clock_gettime`` reads
through :mod:`futex.integrations.qiling.timecalls`, so a guest deadline and the kernel's
timer measure the same time) and runs each timer callback from a gevent loop timer, in the
hub, never inside a unicorn callback.

A timer holds the loop alive only while it is armed: a cancelled one stops its watcher, so
a guest whose threads are all in untimed waits still ends the run as Qiling reports a
deadlock (gevent's ``LoopExit``) instead of sleeping until a stale timer expires.

A realtime deadline becomes a monotonic one when armed (both clocks advance together; a
guest cannot set the host's realtime clock), as :class:`~futex.kernel.RealClock` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from futex.kernel import ClockId, Timer

__all__ = ["GeventClock"]


class _LoopTimer(Timer):
    """A :class:`~futex.kernel.Timer` whose cancel also stops its gevent watcher."""

    __slots__ = ("watcher",)

    def __init__(self, clock: ClockId, deadline: int, fn: Callable[[], None]) -> None:
        super().__init__(clock, deadline, fn)
        self.watcher: Any = None

    def cancel(self) -> None:
        super().cancel()
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.stop()
            watcher.close()

    def _expired(self) -> None:
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.close()
        self._fire()


class GeventClock:
    """The host's monotonic and realtime clocks (ns); timers on the current gevent hub."""

    def now(self, clock: ClockId) -> int:
        return time.monotonic_ns() if clock == ClockId.MONOTONIC else time.time_ns()

    def call_at(self, clock: ClockId, deadline: int, fn: Callable[[], None]) -> Timer:
        import gevent

        timer = _LoopTimer(clock, deadline, fn)
        delay = max(0, deadline - self.now(clock)) / 1e9
        watcher = gevent.get_hub().loop.timer(delay)
        timer.watcher = watcher
        watcher.start(timer._expired)
        return timer
