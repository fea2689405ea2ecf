"""futex.liteos: OsFutexWake and OsFutexRequeue (priority order, the wakeNumber <= 0
defect), pinned against OpenHarmony LiteOS-A's source.

Sources, fixtures and the clock: the package docstring (``tests/liteos/__init__.py``).
"""

from __future__ import annotations

import pytest

from futex.kernel import ManualClock
from futex.liteos import (
    LiteosKernel,
    QueuedTask,
    abi,
    private_index,
)
from futex.memory import PAGE_SIZE
from tests.liteos.liteos_support import (
    EBADF,
    EINVAL,
    ETIMEDOUT,
    MS,
    PRIV,
    REQUEUE_P,
    WAKE,
    WAKE_P,
    chain,
    setup,
    wait,
)

# -- B.5 OsFutexWake ---------------------------------------------------------------------------


def test_os_futex_wake_returns_0_not_a_count_and_ebadf_without_waiters(
    lk: LiteosKernel,
) -> None:
    """OsFutexWake returns LOS_OK whatever it woke; OsFutexWakeTask: no head -> EBADF."""
    env = setup(lk, 10, 10, 10, 10)
    p, a, ts = env.process, env.addr, env.tasks
    p.store_u32(a, 0)  # the page gets a frame: a shared wake reaches the lookup
    ws = [wait(t, a) for t in ts[:3]]
    assert ts[3].syscall_futex(a, WAKE_P, 2, 0, 0) == 0
    assert [w.done() for w in ws] == [True, True, False]
    assert ts[3].syscall_futex(a, WAKE_P, 0x7FFFFFFF, 0, 0) == 0  # musl __wake: INT_MAX
    assert ws[2].result() == 0
    assert ts[3].syscall_futex(a, WAKE_P, 1, 0, 0) == -EBADF
    assert ts[3].syscall_futex(a, WAKE, 1, 0, 0) == -EBADF  # shared key: another head


def test_os_futex_wake_param_check(lk: LiteosKernel) -> None:
    """OsFutexWakeParamCheck: (flags & ~PRIVATE) != WAKE, misaligned or out of range ->
    EINVAL; shared with LOS_PaddrQuery 0 -> EINVAL.  A private wake never touches memory:
    an unmapped private address just has no waiters (EBADF)."""
    env = setup(lk, 10)
    a = env.addr
    (t,) = env.tasks
    unmapped = abi.USER_MAP_BASE + 64 * PAGE_SIZE
    assert t.syscall_futex(a, WAKE_P | 0x100, 1, 0, 0) == -EINVAL
    assert t.syscall_futex(a + 2, WAKE_P, 1, 0, 0) == -EINVAL
    assert t.syscall_futex(abi.USER_ASPACE_BASE - 4, WAKE_P, 1, 0, 0) == -EINVAL
    assert t.syscall_futex(abi.USER_ASPACE_TOP_MAX, WAKE_P, 1, 0, 0) == -EINVAL
    assert t.syscall_futex(unmapped, WAKE, 1, 0, 0) == -EINVAL
    assert t.syscall_futex(unmapped, WAKE_P, 1, 0, 0) == -EBADF


def test_wake_order_is_priority_then_fifo_among_equals(lk: LiteosKernel) -> None:
    """OsFutexInsertTasktoPendList: a strictly more urgent task becomes the head, a new
    waiter goes after every waiter of its priority; OsFutexCheckAndWakePendTask walks from
    the head (los_sched.c OsSchedParamCompare: lower priority value first)."""
    env = setup(lk, 22, 20, 22, 10, 20, 31, 0, 10)
    p, a, ts = env.process, env.addr, env.tasks
    ws = {t.tid: wait(t, a) for t in ts}
    by_prio = sorted(ts, key=lambda t: t.priority)  # stable: FIFO among equals
    assert lk.table().waiters(p.futex_key(a)) == chain(*by_prio)
    waker = p.new_task()
    woken = []
    for _ in ts:
        assert waker.syscall_futex(a, WAKE_P, 1, 0, 0) == 0
        done = [tid for tid, w in ws.items() if w.done() and tid not in woken]
        assert len(done) == 1
        woken += done
    assert woken == [t.tid for t in by_prio]


def test_priority_is_sampled_at_insertion(lk: LiteosKernel) -> None:
    """B.7 [code reading]: a waiter's place is fixed when it queues; LOS_TaskPriSet later
    does not reorder the ring."""
    env = setup(lk, 20, 20)
    p, a = env.process, env.addr
    t1, t2 = env.tasks
    wait(t1, a)
    wait(t2, a)
    t2.set_priority(0)
    assert lk.table().waiters(p.futex_key(a)) == (QueuedTask(t1.tid, 20), QueuedTask(t2.tid, 20))
    with pytest.raises(ValueError):
        t2.set_priority(32)
    with pytest.raises(ValueError):
        p.new_task(priority=-1)
    assert p.new_task().priority == abi.LOSCFG_BASE_CORE_TSK_DEFAULT_PRIO == 10
    t1.exit()
    t2.exit()


# -- the wakeNumber <= 0 defect: safe default, faithful switch ----------------------------------


@pytest.mark.parametrize("count", [0, -1])
def test_safe_zero_count_wake_wakes_nobody_and_unlinks_nothing(
    lk: LiteosKernel, count: int
) -> None:
    """Default (safe) answer to OsFutexWakeTask with wakeNumber <= 0: nothing changes; the
    return is LiteOS's (0 with waiters, EBADF without)."""
    env = setup(lk, 10, 10, 10)
    p, a, ts = env.process, env.addr, env.tasks
    ws = [wait(t, a) for t in ts[:2]]
    assert ts[2].syscall_futex(a, WAKE_P, count, 0, 0) == 0
    assert lk.table().waiters(p.futex_key(a)) == chain(*ts[:2])
    assert ts[2].syscall_futex(a + 4, WAKE_P, count, 0, 0) == -EBADF
    assert ts[2].syscall_futex(a, WAKE_P, 2, 0, 0) == 0
    assert [w.result() for w in ws] == [0, 0]


@pytest.mark.parametrize("count", [0, -1])
def test_faithful_zero_count_wake_orphans_every_waiter_of_the_key(
    faithful_lk: LiteosKernel, clock: ManualClock, count: int
) -> None:
    """OsFutexWakeTask [code reading]: with wakeNumber <= 0 the wake loop does not run but
    the head is unlinked from lockList with its ring, unwoken — the key's waiters are
    orphaned: no wake finds them, a timed one ends ETIMEDOUT, an untimed one only by
    SIGKILL or exit.  LiteosKernel(faithful=True) replicates it."""
    k = faithful_lk
    env = setup(k, 10, 20, 10, 5)
    p, a, ts = env.process, env.addr, env.tasks
    timed = wait(ts[0], a, us=3000)
    untimed = wait(ts[1], a)
    assert ts[3].syscall_futex(a, WAKE_P, count, 0, 0) == 0
    assert k.table().empty
    assert ts[3].syscall_futex(a, WAKE_P, 10, 0, 0) == -EBADF
    assert not timed.done() and not untimed.done()
    late = wait(ts[2], a)  # a new waiter makes a new head and is woken normally
    assert k.table().waiters(p.futex_key(a)) == chain(ts[2])
    assert ts[3].syscall_futex(a, WAKE_P, 10, 0, 0) == 0
    assert late.result() == 0 and not untimed.done()
    clock.advance(3 * MS)
    assert timed.result() == -ETIMEDOUT
    clock.advance(3600 * 10**9)
    assert not untimed.done()
    assert ts[1].interrupt()
    assert untimed.result() == 0


# -- B.6 OsFutexRequeue ------------------------------------------------------------------------


def test_os_futex_requeue_moves_the_first_count_remaining_waiters_in_priority_order(
    lk: LiteosKernel,
) -> None:
    """OsFutexRequeue: wake wakeNumber from the head, then OsFutexRequeueSplitTwoLists
    moves the first `count` remaining nodes (the most urgent) to the new key; node #count
    becomes the old key's head.  val is wakeNumber, absTime the count."""
    env = setup(lk, 22, 10, 22, 5, 31, 22)
    p, a, ts = env.process, env.addr, env.tasks
    b = a + 64
    for t in ts:
        wait(t, a)
    order = sorted(ts, key=lambda t: t.priority)  # 5, 10, 22, 22, 22, 31
    waker = p.new_task()
    assert waker.syscall_futex(a, REQUEUE_P, 1, 2, b) == 0
    table = lk.table()
    assert table.waiters(p.futex_key(a)) == chain(*order[3:])
    assert table.waiters(p.futex_key(b)) == chain(*order[1:3])
    assert order[0].blocked is None  # woken
    for t in ts[:]:
        if t.blocked is not None:
            t.exit()


def test_os_futex_requeue_insert_new_key_by_priority_behind_equal_waiters(lk: LiteosKernel) -> None:
    """OsFutexRequeueInsertNewKey: a target with waiters takes each moved node by priority
    (OsFutexInsertTasktoPendList: after its equals); without waiters the moved ring becomes
    a new head as it is."""
    env = setup(lk, 20, 10, 20, 10, 20)
    p, a = env.process, env.addr
    m1, m2, m3, x1, x2 = env.tasks
    b = a + 64
    for t in (m1, m2, m3):
        wait(t, a)
    for t in (x1, x2):
        wait(t, b)
    assert p.new_task().syscall_futex(a, REQUEUE_P, 0, 3, b) == 0
    assert lk.table().waiters(p.futex_key(b)) == chain(x1, m2, x2, m1, m3)
    assert lk.table().waiters(p.futex_key(a)) == ()
    for t in (m1, m2, m3, x1, x2):
        t.exit()


@pytest.mark.parametrize(
    ("waiters", "wake", "count", "result", "left", "moved"),
    [
        (0, 1, 1, -EBADF, 0, 0),  # no waiters: wake fails, requeue skipped
        (0, 0, 1, -EBADF, 0, 0),  # no waiters to requeue
        (3, 0, 0, -EBADF, 3, 0),  # wake 0 and count 0: nothing woken or requeued
        (3, -1, 0, -EBADF, 3, 0),  # negative counts act as none
        (3, 0, 1, 0, 2, 1),
        (3, 0, -1, -EBADF, 3, 0),  # absTime 0xffffffff is count -1
        (3, 1, 0, 0, 2, 0),  # woke one: 0 even without a requeue
        (3, 3, 5, 0, 0, 0),  # woke all: no head left, requeue skipped, 0
        (3, 1, 5, 0, 0, 2),
    ],
)
def test_os_futex_requeue_ebadf_when_nothing_was_woken_or_requeued(
    lk: LiteosKernel, waiters: int, wake: int, count: int, result: int, left: int, moved: int
) -> None:
    """OsFutexRequeue: EBADF iff OsFutexRequeueRemoveOldKeyAndGetHead found no head to
    requeue and nothing woke (wakeAny); 0 otherwise."""
    env = setup(lk, *([10] * (waiters + 1)))
    p, a, ts = env.process, env.addr, env.tasks
    b = a + 64
    for t in ts[:waiters]:
        wait(t, a)
    assert ts[-1].syscall_futex(a, REQUEUE_P, wake, count & 0xFFFFFFFF, b) == result
    table = lk.table()
    assert len(table.waiters(p.futex_key(a))) == left
    assert len(table.waiters(p.futex_key(b))) == moved
    for t in ts[:waiters]:
        if t.blocked is not None:
            t.exit()


def test_os_futex_requeue_param_check(lk: LiteosKernel) -> None:
    """OsFutexRequeueParamCheck: old == new -> EINVAL first (even with bad flags), then the
    exact command, then both addresses.  No compare value: the word is never read."""
    env = setup(lk, 10, 10)
    p, a = env.process, env.addr
    t, w = env.tasks
    b = a + 64
    assert t.syscall_futex(a, REQUEUE_P | 4, 1, 1, a) == -EINVAL
    assert t.syscall_futex(a, 11 | PRIV, 1, 1, b) == -EINVAL
    assert t.syscall_futex(a, REQUEUE_P, 1, 1, b + 2) == -EINVAL
    assert t.syscall_futex(a + 2, REQUEUE_P, 1, 1, b) == -EINVAL
    assert t.syscall_futex(a, REQUEUE_P, 1, 1, abi.USER_ASPACE_TOP_MAX) == -EINVAL
    pw = wait(w, a)
    p.store_u32(a, 7)  # whatever the word holds
    assert t.syscall_futex(a, REQUEUE_P, 0, 1, b) == 0
    assert lk.table().waiters(p.futex_key(b)) == chain(w)
    assert t.syscall_futex(b, WAKE_P, 1, 0, 0) == 0 and pw.result() == 0


def test_requeued_waiter_times_out_from_its_new_bucket(
    lk: LiteosKernel, clock: ManualClock
) -> None:
    """B.6 [code reading]: LiteOS's timed-out requeued waiter locks the bucket computed at
    wait time (the old one).  Decision: the core follows the waiter (lock-and-revalidate),
    so it leaves its current queue under that queue's lock."""
    p = lk.new_process()
    a = p.mmap(PAGE_SIZE)
    b = next(x for x in range(a + 4, a + PAGE_SIZE, 4) if private_index(x) != private_index(a))
    t, u = p.new_task(), p.new_task()
    w = wait(t, a, us=2000)
    assert u.syscall_futex(a, REQUEUE_P, 0, 1, b) == 0
    assert lk.table().bucket(private_index(b)) is not None
    clock.advance(2 * MS)
    assert w.result() == -ETIMEDOUT
    assert lk.table().empty
