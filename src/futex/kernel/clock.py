"""Time, injectable: a real clock by default, a manual clock in tests and in the checker.

A :class:`Clock` tells the time on two clocks (monotonic and realtime, in nanoseconds) and
runs a callback once a clock reaches a deadline (:meth:`Clock.call_at`).  Timed waits arm
such a timer; its callback wakes the wait with a timeout.  On a :class:`ManualClock`
nothing fires until the test moves time with :meth:`ManualClock.advance` (or sets the
realtime clock), so timed behaviour is exact and never sleeps.

Timer callbacks run outside every clock lock, in the thread that moved the clock (manual)
or in the clock's timer thread (real).

Timer callbacks are isolated (the clock side of Linux's ``__hrtimer_run_queues``, which runs
every expired timer whatever the others do): a callback that raises is logged (logger
``futex.kernel.clock``, level ERROR, with its traceback) and dropped; the other timers due
at the same time still fire, in deadline order, and the clock goes on -- the real clock's
timer thread never dies of a callback, so later timeouts keep firing.  The exception is
not re-raised to the thread that moved a manual clock: that thread does not own the timer
(``call_at`` itself fires an expired timer at once, inside whichever futex call armed it).
``KeyboardInterrupt`` and ``SystemExit`` in a thread that moved a :class:`ManualClock` are
that thread's own: they are re-raised once every due timer has fired.  The timer thread
logs every exception (a ``SystemExit`` there would end it silently).
"""

from __future__ import annotations

import enum
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "ClockId", "ManualClock", "RealClock", "Timer"]

_log = logging.getLogger(__name__)


class ClockId(enum.IntEnum):
    """The two clocks futex timeouts use (values are Linux's clockids)."""

    REALTIME = 0
    MONOTONIC = 1


class Timer:
    """A pending callback; :meth:`cancel` before it fires and it never will."""

    __slots__ = ("_fn", "clock", "deadline")

    def __init__(self, clock: ClockId, deadline: int, fn: Callable[[], None]) -> None:
        self.clock = clock
        self.deadline = deadline
        self._fn: Callable[[], None] | None = fn

    def cancel(self) -> None:
        self._fn = None

    @property
    def active(self) -> bool:
        return self._fn is not None

    def _fire(self) -> None:
        """Run the callback once (not again, and not after :meth:`cancel`).  Its
        exception is logged and dropped; a ``KeyboardInterrupt`` / ``SystemExit``
        propagates, for the clock to deal with (see the module docstring)."""
        fn, self._fn = self._fn, None
        if fn is not None:
            try:
                fn()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:
                _log.exception("timer callback %r (deadline %d ns) raised; ignored",
                               fn, self.deadline)


class Clock(Protocol):
    def now(self, clock: ClockId) -> int:
        """Nanoseconds on ``clock``."""
        ...

    def call_at(self, clock: ClockId, deadline: int, fn: Callable[[], None]) -> Timer:
        """Run ``fn()`` once ``clock`` reaches ``deadline`` (ns)."""
        ...


class ManualClock:
    """A clock that moves only when told.  Starts at ``monotonic`` / ``realtime`` ns
    (defaults: an uptime of 1000 s and a date in 2026)."""

    def __init__(
        self, monotonic: int = 1_000 * 10**9, realtime: int = 1_790_000_000 * 10**9
    ) -> None:
        self._now = {ClockId.MONOTONIC: monotonic, ClockId.REALTIME: realtime}
        self._timers: list[tuple[int, int, Timer]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def now(self, clock: ClockId) -> int:
        return self._now[clock]

    def call_at(self, clock: ClockId, deadline: int, fn: Callable[[], None]) -> Timer:
        timer = Timer(clock, deadline, fn)
        with self._lock:
            self._timers.append((deadline, next(self._seq), timer))
        if deadline <= self._now[clock]:
            self._fire_due()
        return timer

    def advance(self, ns: int) -> None:
        """Move both clocks forward by ``ns`` and fire every timer that is now due."""
        if ns < 0:
            raise ValueError(f"time only moves forward; got {ns} ns")
        with self._lock:
            self._now[ClockId.MONOTONIC] += ns
            self._now[ClockId.REALTIME] += ns
        self._fire_due()

    def set_realtime(self, ns: int) -> None:
        """Set the realtime clock (like clock_settime); due realtime timers fire."""
        with self._lock:
            self._now[ClockId.REALTIME] = ns
        self._fire_due()

    def pending(self) -> list[Timer]:
        """Active timers, earliest first per clock."""
        with self._lock:
            return [t for _, _, t in sorted(self._timers) if t.active]

    def next_deadline(self, clock: ClockId = ClockId.MONOTONIC) -> int | None:
        """The earliest active deadline on ``clock``, or ``None``."""
        times = [t.deadline for t in self.pending() if t.clock == clock]
        return min(times) if times else None

    def _fire_due(self) -> None:
        due: list[tuple[int, int, Timer]] = []
        keep: list[tuple[int, int, Timer]] = []
        with self._lock:
            for e in self._timers:
                timer = e[2]
                if timer.active:
                    (due if timer.deadline <= self._now[timer.clock] else keep).append(e)
            self._timers = keep
        interrupt: BaseException | None = None
        for _, _, timer in sorted(due, key=lambda e: (e[0], e[1])):
            try:
                timer._fire()
            except (KeyboardInterrupt, SystemExit) as exc:  # the mover's: after the rest
                if interrupt is None:
                    interrupt = exc
        if interrupt is not None:
            raise interrupt


class RealClock:
    """The host's clocks; timers run on one lazily started daemon thread."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Timer]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def now(self, clock: ClockId) -> int:
        return time.monotonic_ns() if clock == ClockId.MONOTONIC else time.time_ns()

    def call_at(self, clock: ClockId, deadline: int, fn: Callable[[], None]) -> Timer:
        timer = Timer(clock, deadline, fn)
        # Both clocks advance together here; a realtime deadline becomes a monotonic one.
        mono = deadline if clock == ClockId.MONOTONIC else (
            time.monotonic_ns() + deadline - time.time_ns()
        )
        with self._cond:
            heapq.heappush(self._heap, (mono, next(self._seq), timer))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="futex-clock", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return timer

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and not self._heap[0][2].active:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    delay = self._heap[0][0] - time.monotonic_ns()
                    if delay <= 0:
                        timer = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(min(delay / 1e9, 3600.0))
            try:
                timer._fire()
            except BaseException:  # SystemExit would end this thread: nothing may
                _log.exception("timer callback raised in the clock thread; ignored")
