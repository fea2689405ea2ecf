"""Blocking algorithms written once, driven synchronously here and on asyncio elsewhere.

Every blocking step of a :mod:`futex.sync` algorithm is a generator that yields a
:class:`Sleep` — "sleep on ``word`` while it holds ``expected``, until ``deadline``" — and
receives the outcome: ``True`` when the sleep ended for any reason but the deadline (a
wake, the value had already changed, a spurious wake-up: re-check the word), ``False``
when the deadline passed.  The generator's return value is the algorithm's result.

:func:`run` drives one on the calling thread; :mod:`futex.sync.aio` drives the same
generator on an event loop.  An exception while asleep (``KeyboardInterrupt`` from a
signal handler, ``CancelledError``) is thrown into the generator, so that the
algorithm's ``except``/``finally`` runs its leaving step — passing on a wake it may have
consumed — before the exception propagates.

Signals
    On the host kernel a sleep in the main thread is cut into slices of at most
    :data:`SIGNAL_SLICE` seconds: a SIGINT that the kernel delivered to another thread
    would not interrupt the main thread's futex wait, but Python runs the handler at the
    next slice's end, so Ctrl-C ends any wait within 100 ms.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Final, TypeVar

from futex.word import FutexWord

__all__ = ["SIGNAL_SLICE", "Algorithm", "Sleep", "deadline_after", "run"]

T = TypeVar("T")

#: Longest single futex wait of the main thread on the host kernel (seconds).
SIGNAL_SLICE: Final = 0.05


@dataclass(frozen=True, slots=True)
class Sleep:
    """One sleep of an algorithm: on ``word`` while it holds ``expected``.

    ``deadline`` is absolute on ``clock`` (seconds; None: no deadline).  ``sliced``:
    the word is on the host kernel (slice the main thread's sleep for signals).
    """

    word: FutexWord
    expected: int
    deadline: float | None
    clock: Callable[[], float]
    sliced: bool = False


#: A blocking algorithm: yields sleeps, receives their outcomes, returns its result.
Algorithm = Generator[Sleep, bool, T]


def deadline_after(timeout: float | None, clock: Callable[[], float]) -> float | None:
    """The absolute deadline ``timeout`` seconds from now on ``clock`` (None: none)."""
    return None if timeout is None else clock() + timeout


def sleep(op: Sleep) -> bool:
    """Perform one :class:`Sleep` on the calling thread: False iff the deadline passed."""
    main = op.sliced and threading.current_thread() is threading.main_thread()
    while True:
        if op.deadline is None:
            left: float | None = None
        else:
            left = op.deadline - op.clock()
            if left <= 0:
                return False
        if main and (left is None or left > SIGNAL_SLICE):
            if op.word.wait(op.expected, SIGNAL_SLICE):
                return True
            continue  # a slice ended: Python's signal handlers run here, then sleep again
        return op.word.wait(op.expected, left)


def run(algorithm: Algorithm[T]) -> T:
    """Drive ``algorithm`` to its result on the calling thread."""
    try:
        op = next(algorithm)
        while True:
            try:
                outcome = sleep(op)
            except BaseException as exc:
                op = algorithm.throw(exc)
                continue
            op = algorithm.send(outcome)
    except StopIteration as stop:
        result: T = stop.value
        return result
