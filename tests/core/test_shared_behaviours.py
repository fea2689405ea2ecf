"""What the three kernels' futexes have in common, each behaviour written once and run
on Linux, Zircon and LiteOS-A (the ``personality`` fixture; the adapters are in
``tests/core/personalities.py``).

Each test names the kernel code or test case that pins the behaviour in each kernel:

- **Linux** ``kernel/futex/core.c`` ``__futex_queue`` (a ``plist`` ordered by
  ``min(normal_prio, MAX_RT_PRIO)``: FIFO among equals), ``waitwake.c`` ``futex_wake`` /
  ``futex_wait_setup``, ``requeue.c`` ``requeue_futex``; LTP ``futex_wake02``,
  ``futex_wait01``, ``futex_cmp_requeue01``.
- **Zircon** ``zircon/system/utest/core/futex/futex.cc`` WakeupLimit, Requeue,
  WaitTimeoutElapsed, WaitValueMismatch, WakeupAddress; the futex context's wait
  queues (highest effective priority first, FIFO among equals).
- **LiteOS-A** ``kernel/base/ipc/los_futex.c`` ``OsFutexInsertTasktoPendList`` (priority,
  after its equals), ``OsFutexWakeTask``, ``OsFutexRequeueInsertNewKey``,
  ``OsFutexWaitTask`` (``lockVal != val``), ``OsFutexDeleteTimeoutTaskNode``.

What differs — the codes (``-EAGAIN`` / ``ZX_ERR_BAD_STATE`` / ``-LOS_EBADF``...) and whether a
wake returns a count — comes from each personality's policy and abi through its adapter.
Time is a ManualClock; every wait runs cooperatively.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from futex.kernel import ManualClock
from futex.kernel.blocking import PendingWait
from tests.core.personalities import NAMES, Personality, make_personality

MS = 1_000_000


@pytest.fixture(params=NAMES)
def personality(request: pytest.FixtureRequest, clock: ManualClock) -> Iterator[Personality[Any]]:
    """One kernel personality on the test's clock; its invariants hold afterwards."""
    adapter = make_personality(str(request.param), clock)
    yield adapter
    adapter.check()


def done(waits: list[PendingWait]) -> list[bool]:
    return [w.done() for w in waits]


def wake_order(
    x: Personality[Any], waker: Any, addr: int, waits: dict[Any, PendingWait]
) -> list[Any]:
    """Wake ``addr`` once per entry of ``waits`` (task -> its wait); each wake must end
    exactly one of them.  Returns the tasks in the order their waits ended."""
    order: list[Any] = []
    for _ in waits:
        assert x.wake(waker, addr, 1) == x.wake_answer(1)
        newly = [t for t, w in waits.items() if w.done() and t not in order]
        assert len(newly) == 1, f"one wake ended {len(newly)} of the waits"
        order += newly
    return order


def test_fifo_within_a_priority(personality: Personality[Any]) -> None:
    """Waiters of one priority are woken in the order they queued, after any more urgent
    waiter (which queued last).  Linux ``__futex_queue``'s plist (LTP futex_wake02 wakes
    the next i in order); Zircon's wait queue (best effective priority, then FIFO);
    LiteOS ``OsFutexInsertTasktoPendList`` (a new waiter goes after its equals)."""
    x = personality
    f = x.word()
    waker = x.task()
    normal = [x.task() for _ in range(4)]
    urgent = x.task(urgent=True)
    waits = {t: x.wait_blocks(t, f) for t in [*normal, urgent]}
    assert wake_order(x, waker, f, waits) == [urgent, *normal]
    assert all(w.result() == x.woken for w in waits.values())


@pytest.mark.parametrize(("n", "m"), [(1, 1), (2, 5), (5, 5)])
def test_wake_n_of_m_wakes_the_first_n(personality: Personality[Any], n: int, m: int) -> None:
    """A wake of n with m waiters ends exactly the n oldest waits; the rest stay queued
    until a later wake.  Linux ``futex_wake`` (``if (++ret >= nr_wake) break``, returns
    the count); Zircon futex.cc WakeupLimit (ZX_OK); LiteOS ``OsFutexWakeTask`` (LOS_OK)."""
    x = personality
    f = x.word()
    waker = x.task()
    waits = [x.wait_blocks(x.task(), f) for _ in range(m)]
    assert x.wake(waker, f, n) == x.wake_answer(n)
    assert done(waits) == [i < n for i in range(m)]
    if n < m:
        assert x.wake(waker, f, m) == x.wake_answer(m - n)
    assert all(w.result() == x.woken for w in waits)
    assert x.wake(waker, f, 1) == x.wake_answer(0)


def test_requeue_moves_waiters_to_the_tail_of_the_target(personality: Personality[Any]) -> None:
    """A requeue wakes the oldest waiter of the source, moves the next two behind the
    target's own waiters (equal priority: after them, in their order) and leaves the
    last on the source.  Linux ``requeue_futex`` (plist_add on the target, CMP_REQUEUE
    returns woken + moved); Zircon futex.cc Requeue; LiteOS ``OsFutexRequeueInsertNewKey``
    (after the equals of each moved node)."""
    x = personality
    src, dst = x.word(), x.word()
    waker = x.task()
    theirs = [x.task() for _ in range(2)]
    moving = [x.task() for _ in range(4)]
    waits = {t: x.wait_blocks(t, dst) for t in theirs}
    waits |= {t: x.wait_blocks(t, src) for t in moving}
    assert x.requeue(waker, src, dst, 1, 2, 0) == x.requeue_answer(1, 2)
    assert [waits[t].done() for t in moving] == [True, False, False, False]
    on_dst = {t: waits[t] for t in [*theirs, *moving[1:3]]}
    assert wake_order(x, waker, dst, on_dst) == [*theirs, moving[1], moving[2]]
    assert x.wake(waker, dst, 1) == x.wake_answer(0)
    assert not waits[moving[3]].done()
    assert x.wake(waker, src, 1) == x.wake_answer(1)
    assert all(w.result() == x.woken for w in waits.values())


def test_timeout_on_the_manual_clock(personality: Personality[Any], clock: ManualClock) -> None:
    """A timed wait ends with the personality's timeout code when the clock reaches its
    deadline, not one nanosecond before, and leaves its queue; an untimed waiter beside
    it stays.  Linux ``futex_wait`` (hrtimer, -ETIMEDOUT; LTP futex_wait01); Zircon
    futex.cc WaitTimeoutElapsed (ZX_ERR_TIMED_OUT); LiteOS ``OsFutexDeleteTimeoutTaskNode``
    (-LOS_ETIMEDOUT; 5 ms is 5 whole ticks at 1000 Hz)."""
    x = personality
    f = x.word()
    waker = x.task()
    untimed = x.wait_blocks(x.task(), f)
    timed = x.wait_blocks(x.task(), f, timeout_ns=5 * MS)
    clock.advance(5 * MS - 1)
    assert not timed.done()
    clock.advance(1)
    assert timed.result() == x.timed_out
    assert not untimed.done()
    assert x.wake(waker, f, 2) == x.wake_answer(1)
    assert untimed.result() == x.woken


def test_value_mismatch_ends_the_wait_at_once(personality: Personality[Any]) -> None:
    """A wait whose expected value is not in the word returns the mismatch code without
    queueing: a wake then finds nobody.  Linux ``futex_wait_setup`` (-EAGAIN); Zircon
    futex.cc WaitValueMismatch (ZX_ERR_BAD_STATE); LiteOS ``OsFutexWaitTask``
    (``lockVal != val``: -LOS_EBADF)."""
    x = personality
    f = x.word(7)
    waker = x.task()
    assert x.wait(x.task(), f, 6) == x.mismatch
    assert x.wake(waker, f, 1) == x.wake_answer(0)
    pw = x.wait_blocks(x.task(), f, 7)
    assert x.wake(waker, f, 1) == x.wake_answer(1)
    assert pw.result() == x.woken


def test_waking_an_empty_futex(personality: Personality[Any]) -> None:
    """A wake of a futex nobody waits on answers the personality's empty-wake code and
    leaves the waiters of another futex alone.  Linux ``futex_wake`` (0 woken; LTP
    futex_wake01); Zircon futex.cc WakeupAddress (ZX_OK); LiteOS ``OsFutexWakeTask`` (no
    head: -LOS_EBADF)."""
    x = personality
    f, other = x.word(), x.word()
    waker = x.task()
    pw = x.wait_blocks(x.task(), other)
    assert x.wake(waker, f, 1) == x.wake_answer(0)
    assert x.wake(waker, f, 100) == x.wake_answer(0)
    assert not pw.done()
    assert x.wake(waker, other, 1) == x.wake_answer(1)
    assert pw.result() == x.woken
