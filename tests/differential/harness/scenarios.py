"""The vocabulary of the multi-task scenario tests: the key kinds their words live on
(``KEY_KINDS``) and :class:`Words` (a scenario's words, and its calls with that kind's
flag), the workers' priorities (``PRIORITIES``, with the order a wake takes them in, and
``needs_sched_fifo`` where SCHED_FIFO threads are refused), and :func:`run_scenario`,
:func:`woke`, :func:`results` to run one and read what happened.
"""

from __future__ import annotations

from typing import Any

import pytest

from futex.linux import abi
from tests.differential.harness.mismatch import ScenarioMismatch
from tests.differential.harness.steps import SYS_FUTEX, At, Current, word
from tests.differential.harness.strategies import LOCK_PI, PRIVATE, UNLOCK_PI, WAKE
from tests.differential.harness.tasks import MAIN, Outcome, Set, TaskCall, TaskDiffer
from tests.differential.harness.workers import sched_fifo_unavailable

__all__ = [
    "FIFO",
    "KEY_KINDS",
    "PRIORITIES",
    "PRIORITY_ORDER",
    "SCHED_FIFO_UNAVAILABLE",
    "Words",
    "needs_sched_fifo",
    "results",
    "run_scenario",
    "woke",
]


#: Where the scenarios' words live, by key kind: (page, op flags).
KEY_KINDS = {
    "private": ("PRIV_RW", PRIVATE),
    "shared-anon": ("SHARED_RW", 0),
    "shared-file": ("FILE_SHARED_RW", 0),
}
FIFO = abi.SCHED_FIFO


class Words:
    """A scenario's words (A, B: plain; PI, PI2: PI words) on one key kind's page, and
    helpers that make its calls with that kind's flag."""

    def __init__(self, kind: str) -> None:
        page, self.f = KEY_KINDS[kind]
        self.a, self.b = word(page, 0x100), word(page, 0x104)
        self.pi, self.pi2 = word(page, 0x180), word(page, 0x184)

    def fx(
        self,
        who: int,
        uaddr: At,
        op: int,
        val: Any = 0,
        utime: Any = 0,
        uaddr2: Any = 0,
        val3: Any = 0,
    ) -> TaskCall:
        return TaskCall(who, SYS_FUTEX, (uaddr, op | self.f, val, utime, uaddr2, val3))

    def wait(self, who: int, uaddr: At) -> TaskCall:
        return self.fx(who, uaddr, abi.FUTEX_WAIT, Current(uaddr))

    def wake(self, uaddr: At, n: int = 1, who: int = MAIN) -> TaskCall:
        return self.fx(who, uaddr, WAKE, n)

    def lock(self, who: int, uaddr: At) -> TaskCall:
        return self.fx(who, uaddr, LOCK_PI)

    def unlock(self, who: int, uaddr: At) -> TaskCall:
        return self.fx(who, uaddr, UNLOCK_PI)

    def zero(self) -> list[Set]:
        return [Set(self.a, 0), Set(self.b, 0)]


def woke(outcomes: list[Outcome | None]) -> list[list[int]]:
    """Who each call woke (per call, in the order of the calls)."""
    return [sorted(k for k, _ in o.woken) for o in outcomes if o is not None]


def results(outcomes: list[Outcome | None]) -> list[object]:
    """What each call returned (in the order of the calls)."""
    return [o.result for o in outcomes if o is not None]


def run_scenario(
    tasks: TaskDiffer,
    workers: list[Any],
    steps: list[Any],
    pi_words: tuple[tuple[At, int], ...] = (),
) -> list[Outcome | None]:
    """Run a scenario (``TaskDiffer.run``); a disagreement fails the test."""
    try:
        return tasks.run(workers, steps, pi_words)
    except ScenarioMismatch as exc:
        pytest.fail(f"host and emulator disagree:\n{exc}", pytrace=False)


#: Workers' classes: SCHED_FIFO 10, 30, SCHED_OTHER, SCHED_FIFO 30, 20 (RT waiters queue
#: by priority, the others behind them at MAX_RT_PRIO; equal priorities in FIFO order).
PRIORITIES: list[Any] = [(FIFO, 10), (FIFO, 30), None, (FIFO, 30), (FIFO, 20)]
SCHED_FIFO_UNAVAILABLE = sched_fifo_unavailable(max(p for _, p in filter(None, PRIORITIES)))
needs_sched_fifo = pytest.mark.skipif(
    bool(SCHED_FIFO_UNAVAILABLE),
    reason=f"priority-ordered waking needs SCHED_FIFO threads: {SCHED_FIFO_UNAVAILABLE}",
)
PRIORITY_ORDER = [[1], [3], [4], [0], [2]]
