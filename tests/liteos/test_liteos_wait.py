"""futex.liteos: SysFutex dispatch and OsFutexWait (checks, timeouts, signals, exit, the two
ways to block), pinned against OpenHarmony LiteOS-A's source.

Sources, fixtures and the clock: the package docstring (``tests/liteos/__init__.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from futex.kernel import ClockId, ManualClock
from futex.liteos import (
    LiteosKernel,
    abi,
    shared_index,
)
from futex.liteos.decode import ns_to_ticks
from futex.memory import PAGE_SIZE
from tests.liteos.liteos_support import (
    EBADF,
    EINTR,
    EINVAL,
    ETIMEDOUT,
    FOREVER,
    MS,
    PRIV,
    WAIT,
    WAIT_P,
    WAKE,
    WAKE_P,
    chain,
    setup,
    wait,
)
from tests.support import Blocking

# -- B.3 SysFutex dispatch ------------------------------------------------------------------


@pytest.mark.parametrize("priv", [0, PRIV])
@pytest.mark.parametrize("cmd", [2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0x100, 0x101, 0x103])
def test_sys_futex_every_unsupported_command_is_einval(
    lk: LiteosKernel, cmd: int, priv: int
) -> None:
    """process_syscall.c SysFutex dispatches on flags & 3 and each path demands its exact
    command: 5/9/13 fail the wake check, 2/4/6/8/10/12 the wait flags check, 7/11 the
    requeue check (a passing check would answer EBADF here)."""
    env = setup(lk, 10)
    p, a = env.process, env.addr
    (t,) = env.tasks
    p.store_u32(a, 1)
    assert t.syscall_futex(a, cmd | priv, 0, FOREVER, a + 4) == -EINVAL
    assert lk.table().empty


def test_sys_futex_returns_negated_los_codes(lk: LiteosKernel) -> None:
    """los_typedef.h: LOS_EINTR 4, LOS_EBADF 9, LOS_EINVAL 22, LOS_ETIMEDOUT 110, LOS_NOK 1."""
    assert (abi.LOS_EINTR, abi.LOS_EBADF, abi.LOS_EINVAL, abi.LOS_ETIMEDOUT) == (4, 9, 22, 110)
    assert abi.LOS_NOK == 1
    env = setup(lk, 10)
    a = env.addr
    (t,) = env.tasks
    assert t.syscall_futex(a, WAKE_P, 1, 0, 0) == -9
    assert t.syscall_futex(a + 1, WAKE_P, 1, 0, 0) == -22


# -- B.4 OsFutexWait: checks in order ---------------------------------------------------------


def test_os_futex_wait_param_check_interrupt_context_is_eintr_before_every_check(
    lk: LiteosKernel,
) -> None:
    """OsFutexWaitParamCheck: OS_INT_ACTIVE -> LOS_EINTR first (bad flags, bad address and
    absTime 0 all come later)."""
    env = setup(lk, 10)
    a = env.addr
    (t,) = env.tasks
    t.in_interrupt = True
    assert t.syscall_futex(a, WAIT_P, 0, FOREVER, 0) == -EINTR
    assert t.syscall_futex(3, 0x84, 0, 0, 0) == -EINTR
    assert t.syscall_futex(a, WAKE_P, 1, 0, 0) == -EBADF  # only the wait path checks it
    t.in_interrupt = False
    assert t.syscall_futex(3, 0x84, 0, 0, 0) == -EINVAL


def test_os_futex_wait_param_check_address_alignment_and_user_range(lk: LiteosKernel) -> None:
    """OsFutexWaitParamCheck: vaddr % 4, or outside [USER_ASPACE_BASE 0x01000000,
    USER_ASPACE_BASE + USER_ASPACE_SIZE) -> EINVAL, even for mapped memory."""
    assert abi.USER_ASPACE_TOP_MAX == 0x3F000000  # KERNEL_ASPACE_BASE 0x40000000 - 16 MiB
    p = lk.new_process()
    t = p.new_task()
    low = p.mmap(PAGE_SIZE, addr=abi.USER_ASPACE_BASE - PAGE_SIZE)
    first = p.mmap(PAGE_SIZE, addr=abi.USER_ASPACE_BASE)
    last = p.mmap(PAGE_SIZE, addr=abi.USER_ASPACE_TOP_MAX - PAGE_SIZE)
    for word in (low + PAGE_SIZE - 4, first, last + PAGE_SIZE - 4):
        p.store_u32(word, 1)
    assert t.syscall_futex(low + PAGE_SIZE - 4, WAIT_P, 0, FOREVER, 0) == -EINVAL  # below
    assert t.syscall_futex(first, WAIT_P, 0, FOREVER, 0) == -EBADF  # first word: in range
    assert t.syscall_futex(first + 2, WAIT_P, 0, FOREVER, 0) == -EINVAL  # misaligned
    assert t.syscall_futex(last + PAGE_SIZE - 4, WAIT_P, 0, FOREVER, 0) == -EBADF  # last word
    assert t.syscall_futex(abi.USER_ASPACE_TOP_MAX, WAIT_P, 0, FOREVER, 0) == -EINVAL
    assert t.syscall_futex(0xFFFFFFFC, WAIT, 0, FOREVER, 0) == -EINVAL


def test_os_futex_wait_param_check_abs_time_zero_is_etimedout_before_the_value_check(
    lk: LiteosKernel,
) -> None:
    """OsFutexWaitParamCheck: absTime 0 -> ETIMEDOUT before the word is read (CHANGELOG
    3f71be7 / PR !751: EINVAL here made musl retry forever).  The address check comes
    first."""
    env = setup(lk, 10)
    p, a = env.process, env.addr
    (t,) = env.tasks
    p.store_u32(a, 5)
    assert t.syscall_futex(a, WAIT_P, 0, 0, 0) == -ETIMEDOUT  # value differs: not read
    assert t.syscall_futex(a, WAIT_P, 5, 0, 0) == -ETIMEDOUT  # value matches: no queueing
    unmapped = abi.USER_MAP_BASE + 64 * PAGE_SIZE
    assert t.syscall_futex(unmapped, WAIT_P, 0, 0, 0) == -ETIMEDOUT  # no copy-in: no fault
    assert t.syscall_futex(a + 1, WAIT_P, 5, 0, 0) == -EINVAL
    assert lk.table().empty


def test_os_futex_wait_task_copy_fault_is_einval_and_mismatch_is_ebadf(lk: LiteosKernel) -> None:
    """OsFutexWaitTask: LOS_ArchCopyFromUser failure -> EINVAL; lockVal != val -> EBADF
    (not EAGAIN); the comparison is on 32 bits."""
    env = setup(lk, 10)
    p, a = env.process, env.addr
    (t,) = env.tasks
    unmapped = abi.USER_MAP_BASE + 64 * PAGE_SIZE
    assert t.syscall_futex(unmapped, WAIT_P, 0, FOREVER, 0) == -EINVAL
    assert t.syscall_futex(unmapped, WAIT, 0, FOREVER, 0) == -EINVAL
    p.store_u32(a, 0xFFFFFFFF)
    assert t.syscall_futex(a, WAIT_P, 0, FOREVER, 0) == -EBADF
    w = wait(t, a, val=-1)  # int val -1 is the u32 0xffffffff
    assert lk.table().waiters(p.futex_key(a)) == chain(t)
    assert p.new_task().syscall_futex(a, WAKE_P, 1, 0, 0) == 0
    assert w.result() == 0


def test_shared_wait_never_runs_the_shm_check_but_wake_does(lk: LiteosKernel) -> None:
    """OsFutexWaitParamCheck: "if (flags && OsFutexKeyShmPermCheck())" — a shared wait has
    flags 0, so a page without a frame (paddr 0) still queues, under key 0; OsFutexWake's
    check runs (flags != 0) and answers EINVAL for the same address."""
    env = setup(lk, 10, 10)  # private anonymous, never written: no frame
    p, a = env.process, env.addr
    t, waker = env.tasks
    assert p.paddr(a) == 0
    w = wait(t, a, flags=WAIT)
    table = lk.table()
    head = table.head((abi.OS_INVALID, 0))
    assert head is not None and head.waiters == chain(t)
    assert table.buckets[0].index == shared_index(0) == 69
    assert waker.syscall_futex(a, WAKE, 1, 0, 0) == -EINVAL
    assert not w.done()
    assert t.interrupt()
    assert w.result() == 0


# -- B.4 timeouts: relative microseconds, OsNS2Tick --------------------------------------------


@pytest.mark.parametrize(
    ("ns", "hz", "ticks"),
    [
        (1, 1000, 1),
        (1_000_000, 1000, 1),
        (1_000_001, 1000, 2),
        (1_500_000, 1000, 2),
        (1_000, 100, 1),
        (10_000_001, 100, 2),
        (0xFFFFFFFE * 1000, 1000, 4_294_968),
        (0xFFFFFFFE * 1000, 10**7, 0xFFFFFFFF),  # saturated
    ],
)
def test_os_ns2tick_rounds_up_and_saturates(ns: int, hz: int, ticks: int) -> None:
    """los_sys.c OsNS2Tick: (ns + nsPerTick - 1) / nsPerTick, capped at OS_MAX_VALUE."""
    assert ns_to_ticks(ns, hz) == ticks


@pytest.mark.parametrize(("hz", "us", "expires_ms"), [(1000, 1500, 2), (1000, 1, 1), (100, 1, 10)])
def test_wait_timeout_is_relative_microseconds_rounded_up_to_ticks(
    clock: ManualClock, hz: int, us: int, expires_ms: int
) -> None:
    """OsFutexWait: absTime is relative µs; OsNS2Tick(absTime * 1000) whole ticks; the
    node leaves the hash and the wait returns ETIMEDOUT (OsFutexDeleteTimeoutTaskNode)."""
    k = LiteosKernel(clock=clock, tick_hz=hz)
    env = setup(k, 10)
    a = env.addr
    (t,) = env.tasks
    w = wait(t, a, us=us)
    clock.advance(expires_ms * MS - 1)
    assert not w.done()
    assert k.table().count() == 1
    clock.advance(1)
    assert w.result() == -ETIMEDOUT
    assert k.table().empty
    k.futex.check_invariants()


def test_forever_and_the_longest_finite_wait(lk: LiteosKernel, clock: ManualClock) -> None:
    """OsFutexWait: 0xFFFFFFFF is LOS_WAIT_FOREVER (no timer); at 1000 Hz the longest
    finite wait, 0xFFFFFFFE µs, sleeps 4 294 968 ticks (~71.6 min)."""
    env = setup(lk, 10, 10)
    a = env.addr
    t, u = env.tasks
    forever = wait(t, a)
    assert clock.pending() == []
    longest = wait(u, a, us=0xFFFFFFFE)
    assert lk.ticks(0xFFFFFFFE) == 4_294_968
    now = clock.now(ClockId.MONOTONIC)
    assert clock.next_deadline() == now + 4_294_968 * MS
    clock.advance(4_294_968 * MS)
    assert longest.result() == -ETIMEDOUT and not forever.done()
    assert t.interrupt() and forever.result() == 0


def test_a_saturated_tick_count_is_los_wait_forever(clock: ManualClock) -> None:
    """OsNS2Tick saturates at 0xFFFFFFFF, which the scheduler reads as LOS_WAIT_FOREVER:
    above 1 MHz ticks a long finite timeout never expires [code reading]."""
    k = LiteosKernel(clock=clock, tick_hz=10**7)
    env = setup(k, 10)
    a = env.addr
    (t,) = env.tasks
    assert k.ticks(0xFFFFFFFE) == 0xFFFFFFFF
    w = wait(t, a, us=0xFFFFFFFE)
    assert clock.pending() == []
    assert t.interrupt() and w.result() == 0


def test_timed_out_waiter_leaves_the_middle_of_its_queue(
    lk: LiteosKernel, clock: ManualClock
) -> None:
    """OsFutexDeleteTimeoutTaskNode: the timed-out node leaves; the others keep their order
    (a removed head promotes its successor, OsFutexReplaceQueueListHeadNode)."""
    env = setup(lk, 10, 10, 10, 10)
    p, a, ts = env.process, env.addr, env.tasks
    ws = [wait(ts[0], a), wait(ts[1], a, us=1000), wait(ts[2], a), wait(ts[3], a, us=2000)]
    key = p.futex_key(a)
    assert lk.table().waiters(key) == chain(*ts)
    clock.advance(1 * MS)
    assert ws[1].result() == -ETIMEDOUT
    assert lk.table().waiters(key) == chain(ts[0], ts[2], ts[3])
    clock.advance(1 * MS)
    assert lk.table().waiters(key) == chain(ts[0], ts[2])
    assert p.new_task().syscall_futex(a, WAKE_P, 5, 0, 0) == 0
    assert [w.result() for w in ws] == [0, -ETIMEDOUT, 0, -ETIMEDOUT]


# -- signals, exit, one node per task ---------------------------------------------------------


def test_sigkill_removes_the_waiter_and_its_wait_returns_0(lk: LiteosKernel) -> None:
    """los_signal.c OsPendingTaskWake, case OS_TASK_WAIT_FUTEX: the node leaves the hash
    (OsFutexNodeDeleteFromFutexHash) and the task is woken: the wait returns 0, never
    EINTR."""
    env = setup(lk, 10, 10, 10)
    p, a = env.process, env.addr
    t1, t2, t3 = env.tasks
    w1, w2, w3 = wait(t1, a), wait(t2, a, us=10_000), wait(t3, a)
    assert t2.interrupt(abi.SIGKILL)
    assert w2.result() == 0
    assert lk.table().waiters(p.futex_key(a)) == chain(t1, t3)
    assert not t2.interrupt()  # no longer blocked
    assert p.new_task().syscall_futex(a, WAKE_P, 1, 0, 0) == 0
    assert w1.result() == 0 and not w3.done()
    assert t3.interrupt() and w3.result() == 0


def test_other_signals_do_not_reach_a_futex_wait(lk: LiteosKernel, clock: ManualClock) -> None:
    """los_signal.c OsPendingTaskWake: "if ((signo != SIGKILL) && (taskCB->waitFlag !=
    OS_TASK_WAIT_SIGNAL)) return 0" — a futex waiter is only woken by SIGKILL."""
    env = setup(lk, 10)
    p, a = env.process, env.addr
    (t,) = env.tasks
    w = wait(t, a, us=5000)
    for signo in (2, 10, 14, 15, 17):
        assert not t.interrupt(signo)
    assert not w.done()
    assert lk.table().waiters(p.futex_key(a)) == chain(t)
    clock.advance(5 * MS)
    assert w.result() == -ETIMEDOUT


def test_task_exit_removes_its_node(lk: LiteosKernel) -> None:
    """los_task.c OsTaskReleaseHoldLock: an exiting user task's futex node leaves the hash."""
    env = setup(lk, 10, 10)
    p, a = env.process, env.addr
    t1, t2 = env.tasks
    w1, w2 = wait(t1, a), wait(t2, a)
    t1.exit()
    assert w1.done() and w1.result() == 0
    assert lk.table().waiters(p.futex_key(a)) == chain(t2)
    assert lk.task(t1.tid) is None
    with pytest.raises(RuntimeError, match="exited"):
        t1.syscall_futex(a, WAKE_P, 1, 0, 0)
    t2.exit()
    assert lk.table().empty and w2.done()


def test_a_task_waits_on_one_futex_at_a_time(lk: LiteosKernel) -> None:
    """los_sched_pri.h: one FutexNode per TCB (LosTaskCB.futex) — a blocked task makes no
    calls."""
    env = setup(lk, 10)
    a = env.addr
    (t,) = env.tasks
    wait(t, a)
    with pytest.raises(RuntimeError, match="blocked"):
        t.syscall_futex_nb(a + 4, WAIT_P, 0, FOREVER, 0)
    t.exit()


# -- the two ways to block ------------------------------------------------------------------------


def test_cooperative_wait_settles_once_with_callbacks(lk: LiteosKernel) -> None:
    """The _nb call returns a PendingWait whose done callbacks run when the wait ends."""
    env = setup(lk, 10, 10)
    a = env.addr
    t, u = env.tasks
    w = wait(t, a)
    seen: list[int] = []
    w.add_done_callback(lambda pw: seen.append(pw.result()))
    assert t.blocked is w and not seen
    assert u.syscall_futex(a, WAKE_P, 1, 0, 0) == 0
    assert seen == [0] and t.blocked is None


def test_real_thread_wait_is_woken_by_another_thread(
    lk: LiteosKernel, run_blocking: Callable[..., Blocking]
) -> None:
    """Blocking syscall_futex on a real thread, woken by a wake from this thread."""
    env = setup(lk, 10, 10)
    p, a = env.process, env.addr
    t, u = env.tasks
    b = run_blocking(lambda: t.syscall_futex(a, WAIT_P, 0, FOREVER, 0), t)
    assert lk.table().waiters(p.futex_key(a)) == chain(t)
    assert u.syscall_futex(a, WAKE_P, 1, 0, 0) == 0
    assert b.result() == 0


def test_real_thread_wait_times_out_on_the_manual_clock(
    lk: LiteosKernel, clock: ManualClock, run_blocking: Callable[..., Blocking]
) -> None:
    """The kernel's clock times a blocked thread: advancing the ManualClock ends it."""
    env = setup(lk, 10)
    a = env.addr
    (t,) = env.tasks
    b = run_blocking(lambda: t.syscall_futex(a, WAIT_P, 0, 250, 0), t)
    clock.advance(1 * MS)
    assert b.result() == -ETIMEDOUT
    assert lk.table().empty


def test_real_thread_sigkill_ends_the_wait_with_0(
    lk: LiteosKernel, run_blocking: Callable[..., Blocking]
) -> None:
    """los_signal.c: SIGKILL wakes a blocked futex waiter; its call returns 0."""
    env = setup(lk, 10)
    a = env.addr
    (t,) = env.tasks
    b = run_blocking(lambda: t.syscall_futex(a, WAIT_P, 0, FOREVER, 0), t)
    assert not t.interrupt(15)
    assert t.interrupt(abi.SIGKILL)
    assert b.result() == 0


def test_real_threads_queue_by_priority_and_a_wake_all_releases_them(
    lk: LiteosKernel, run_blocking: Callable[..., Blocking]
) -> None:
    """Eight real threads block at once; the table orders them by priority (FIFO among
    equals, in the order they queued); one INT_MAX wake (musl's __wake(-1)) ends them all."""
    env = setup(lk, 12, 3, 12, 7, 3, 30, 7, 12)
    p, a, ts = env.process, env.addr, env.tasks
    calls = [run_blocking(lambda t=t: t.syscall_futex(a, WAIT_P, 0, FOREVER, 0), t) for t in ts]
    queued = lk.table().waiters(p.futex_key(a))
    assert sorted(queued, key=lambda w: w.priority) == list(queued)
    assert sorted(w.tid for w in queued) == sorted(t.tid for t in ts)
    assert p.new_task().syscall_futex(a, WAKE_P, 0x7FFFFFFF, 0, 0) == 0
    assert [c.result() for c in calls] == [0] * len(ts)
    assert lk.table().empty
