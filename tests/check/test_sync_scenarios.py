"""Every futex.sync primitive under the checker (issue 15 "Applied to this project").

- Each primitive's 2-3-task scenario (futex.check.bundled.sync) explores clean: DFS
  complete at its bound (2: "DFS at bound 2 complete"), then PCT(depth 3) schedules.
- A deliberately broken copy of Mutex, kept here (its release forgets the FUTEX_WAKE a
  waiter that set the waiters bit needs), is found: a lost wake-up with one preemption,
  whose replay string reproduces it.
"""

from __future__ import annotations

import pytest

from futex.check.bundled.sync import SYNC, mutex_scenario
from futex.check.exploring import Budget
from futex.check.strategies import DFS, PCT
from futex.check.testing import assert_explores, assert_finds
from futex.sync import Mutex
from futex.sync.mutex import TID_MASK, WORD


class ForgetfulMutex(Mutex):
    """futex.sync.Mutex whose release stores 0 and never wakes (the "unlock forgets the
    wake" bug of checker_design §3, in the real primitive)."""

    def release(self) -> None:
        r, node = self._region, self._node
        word = r.word(WORD)
        own = r.owner()
        if word.load() & TID_MASK != own.tid:
            self._not_owner("release")
        own.pending(node)
        own.unlink(node, self)
        word.swap(0)  # the bug: a waiter that set the W bit is never woken
        own.pending(0)


@pytest.mark.parametrize("name", list(SYNC))
def test_primitive_explores_clean(name: str) -> None:
    entry = SYNC[name]
    result = assert_explores(
        entry.scenario,
        DFS(preemptions=entry.preemptions),
        Budget(schedules=None, seconds=60),
        require_complete=True,
    )
    assert result.certificate is not None
    assert_explores(entry.scenario, PCT(depth=3), Budget(schedules=entry.pct, seconds=None), seed=1)


def test_forgetful_mutex_is_found() -> None:
    result = assert_finds(
        mutex_scenario("forgetful_mutex", ForgetfulMutex),
        "lost-wakeup",
        DFS(preemptions=1),
        Budget(schedules=200, seconds=5),
        preemptions=1,
    )
    assert "sleeps forever in FUTEX_WAIT on m+" in result.failure.message


def test_forgetful_mutex_found_by_pct() -> None:
    assert_finds(
        mutex_scenario("forgetful_mutex", ForgetfulMutex),
        "lost-wakeup",
        PCT(3),
        Budget(schedules=5000, seconds=None),
    )


def test_correct_mutex_three_tasks() -> None:
    assert_explores(
        mutex_scenario("sync_mutex_x3", tasks=3),
        DFS(preemptions=2),
        Budget(schedules=None, seconds=60),
        require_complete=True,
    )


def test_assert_explores_raises_with_the_report() -> None:
    with pytest.raises(AssertionError, match=r"(?s)LOST WAKEUP after .*replay:   v1:"):
        assert_explores(mutex_scenario("forgetful_mutex", ForgetfulMutex), DFS(1))


def test_assert_finds_raises_when_clean_or_other_kind() -> None:
    with pytest.raises(AssertionError, match="find lost-wakeup, but every schedule passed"):
        assert_finds(SYNC["sync_mutex"].scenario, "lost-wakeup", DFS(1))
    with pytest.raises(AssertionError, match="expected deadlock, found lost-wakeup"):
        assert_finds(mutex_scenario("forgetful_mutex", ForgetfulMutex), "deadlock", DFS(1))
    with pytest.raises(AssertionError, match="needs 1 preemptions, more than 0"):
        assert_finds(
            mutex_scenario("forgetful_mutex", ForgetfulMutex), "lost-wakeup", DFS(1), preemptions=0
        )
