"""What every bundled entry says about itself: :class:`Entry`, and helpers the algorithms share.

An entry is a :class:`futex.check.Scenario` plus what the checker must conclude about it:
a broken algorithm carries the failure ``kind`` its designated strategy must find
(``DFS(preemptions=N)``, with ``spurious`` injected wake-ups where the bug needs one); a
correct twin (``kind=None``) carries the bound it must pass completely (DFS at
``preemptions``, then ``pct`` PCT schedules).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from futex.kernel import ClockId
from futex.word import FutexWord

if TYPE_CHECKING:
    from futex.check.runtime import Scenario

__all__ = ["Entry", "check", "lock3", "lock_contended", "now_of", "unlock2"]

#: Budget of a broken entry's designated strategy (checker_design §7: 200 schedules, 1 s).
FIND_SCHEDULES: Final = 200
FIND_SECONDS: Final = 1.0


@dataclass(frozen=True)
class Entry:
    """A bundled scenario and the verdict the checker must reach on it."""

    name: str
    scenario: Scenario
    #: Where the algorithm comes from (paper, commit, bug report, peer defect).
    source: str
    #: One line: what it does wrong (broken) or right (twin).
    summary: str
    #: The failure kind its designated strategy must find; None for a correct twin.
    kind: str | None
    #: Broken: the designated DFS preemption bound (or the preemptions its minimal
    #: schedule needs, under PCT).  Twin: the bound it must pass completely.
    preemptions: int
    #: The counterpart: the twin of a broken entry, the broken entry a twin fixes.
    twin: str | None = None
    #: Twins: PCT(depth=3) schedules to pass after the DFS bound.
    pct: int = 0
    #: Budget of the designated strategy.
    schedules: int = FIND_SCHEDULES
    seconds: float = FIND_SECONDS
    #: A broken entry whose bug hides too deep for DFS within the budget (4 tasks, ~75
    #: steps) is designated to PCT of this depth instead (checker_design §6).
    pct_depth: int | None = None

    def __post_init__(self) -> None:
        if not self.scenario.description:  # the scenario carries its source too
            described = dataclasses.replace(
                self.scenario, description=f"{self.summary} (source: {self.source})")
            object.__setattr__(self, "scenario", described)

    @property
    def broken(self) -> bool:
        return self.kind is not None

    @property
    def spurious(self) -> int:
        return int(getattr(self.scenario, "spurious", 0) or 0)

    @property
    def designated(self) -> str:
        """The designated strategy as text, e.g. ``DFS(preemptions=0), spurious=1``."""
        if self.broken and self.pct_depth is not None:
            text = f"PCT(depth={self.pct_depth})"
        else:
            text = f"DFS(preemptions={self.preemptions})"
        if self.spurious:
            text += f", spurious={self.spurious}"
        if not self.broken and self.pct:
            text += f" + PCT(depth=3) x {self.pct}"
        return text

    def strategy(self) -> Any:
        """A fresh designated strategy: ``DFS(preemptions)``, or ``PCT(pct_depth)`` for a
        broken entry that names one (a twin always runs its DFS bound first)."""
        from futex.check.strategies import DFS, PCT

        if self.broken and self.pct_depth is not None:
            return PCT(depth=self.pct_depth)
        return DFS(preemptions=self.preemptions)


def check(ok: bool, message: str) -> bool:
    """An invariant's or final check's verdict: True, or AssertionError carrying
    ``message`` (the report shows it)."""
    if not ok:
        raise AssertionError(message)
    return True


# -- shared algorithms -----------------------------------------------------------------------
# A correct lock for the condition-variable scenarios (Drepper's take 3, "Futexes Are
# Tricky") and the pieces the broken locks reuse.  Word values: 0 free, 1 locked,
# 2 locked with (possible) waiters.


def lock3(m: FutexWord) -> None:
    """Drepper take 3: cmpxchg(0, 1); else xchg(2) until the old value is 0."""
    c = m.cas(0, 1)
    if c == 0:
        return
    if c != 2:
        c = m.swap(2)
    while c != 0:
        m.wait(2)
        c = m.swap(2)


def lock_contended(m: FutexWord) -> None:
    """Take the lock marking it contended (a waiter moved onto it by a requeue may be
    queued there, so the unlock must wake): xchg(2) until the old value is 0."""
    c = m.swap(2)
    while c != 0:
        m.wait(2)
        c = m.swap(2)


def unlock2(m: FutexWord) -> None:
    """Drepper take 2/3 unlock: atomic_dec; if it was not 1, store 0 and wake one."""
    if m.fetch_sub(1) != 1:
        m.store(0)
        m.wake(1)


def now_of(env: Any) -> Callable[[], float]:
    """The scenario's virtual monotonic clock in seconds (reading it is no scheduling point)."""
    clock = env.clock
    return lambda: float(clock.now(ClockId.MONOTONIC)) / 1e9
