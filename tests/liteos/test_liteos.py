"""futex.liteos: OpenHarmony LiteOS-A's futex, pinned against its source.

Sources (``openharmony/kernel_liteos_a``): ``kernel/base/ipc/los_futex.c`` (named by
function below), ``syscall/process_syscall.c`` (SysFutex), ``kernel/base/ipc/los_signal.c``
(OsPendingTaskWake), ``kernel/base/core/los_sys.c`` (OsNS2Tick), ``kernel/include/
los_hash.h`` (LOS_HashFNV32aBuf), ``los_vm_common.h`` / ``los_vm_zone.h`` (user range), and
the mutex tests ``testsuites/unittest/process/lock/mutex/smoke/pthread_mutex_test_019..022``
— replayed at the end over a musl-style mutex, with the table checked between steps.
Musl facts from ``third_party_musl/porting/liteos_a`` (``__timedwait.c``, ``__wake``).

Time is a ManualClock: nothing sleeps.  Real-thread tests wait for state, never for time.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Generator
from typing import Any

import pytest

from futex.kernel import ClockId, ManualClock
from futex.liteos import (
    FutexTable,
    LiteosKernel,
    LiteosLayout,
    PendingWait,
    Process,
    QueuedTask,
    Task,
    abi,
    fnv1a_32,
    format_chain,
    futex_index,
    private_index,
    shared_index,
)
from futex.liteos.syscalls import ns_to_ticks
from futex.memory import PAGE_SIZE, File
from tests.support import Blocking

WAIT = abi.FUTEX_WAIT
WAKE = abi.FUTEX_WAKE
REQUEUE = abi.FUTEX_REQUEUE
PRIV = abi.FUTEX_PRIVATE
WAIT_P = WAIT | PRIV
WAKE_P = WAKE | PRIV
REQUEUE_P = REQUEUE | PRIV
FOREVER = abi.LOS_WAIT_FOREVER
EINVAL, EBADF, ETIMEDOUT, EINTR = abi.LOS_EINVAL, abi.LOS_EBADF, abi.LOS_ETIMEDOUT, abi.LOS_EINTR
MS = 10**6
US = 10**3


@pytest.fixture
def lk(clock: ManualClock) -> Any:
    k = LiteosKernel(clock=clock)
    yield k
    k.futex.check_invariants()


@pytest.fixture
def faithful_lk(clock: ManualClock) -> Any:
    k = LiteosKernel(clock=clock, faithful=True)
    yield k
    k.futex.check_invariants()


def pending(r: int | PendingWait) -> PendingWait:
    assert isinstance(r, PendingWait), f"expected the call to block, it returned {r}"
    return r


def wait(t: Task, addr: int, val: int = 0, us: int = FOREVER, flags: int = WAIT_P) -> PendingWait:
    return pending(t.syscall_futex_nb(addr, flags, val, us, 0))


def chain(*tasks: Task) -> tuple[QueuedTask, ...]:
    return tuple(QueuedTask(t.tid, t.priority) for t in tasks)


def setup(k: LiteosKernel, *prios: int) -> tuple[Process, int, list[Task]]:
    p = k.new_process()
    return p, p.mmap(PAGE_SIZE), [p.new_task(priority=pr) for pr in prios]


# -- B.2 the hash: FNV-1a, 64 private + 16 shared buckets -----------------------------------


def test_los_hash_fnv32a_buf_matches_the_published_fnv1a_vectors() -> None:
    """los_hash.h LOS_HashFNV32aBuf: seed 0x811c9dc5, prime 0x01000193, xor then multiply."""
    assert fnv1a_32(b"") == 0x811C9DC5
    assert fnv1a_32(b"a") == 0xE40C292C
    assert fnv1a_32(b"foobar") == 0xBF9CF968


@pytest.mark.parametrize(
    ("address", "h", "private", "shared"),
    [
        # h = FNV-1a over the key's 4 bytes in memory order (little-endian ARM)
        (0x00000000, 0x4B95F515, 21, 69),  # 0x15 & 63 = 21; (0x5 & 15) + 64 = 69
        (0x01000000, 0x4A95F382, 2, 66),  # bytes 00 00 00 01: 0x82 & 63 = 2; 2 + 64
        (0x1F800000, 0x3B58A8F8, 56, 72),  # 0xf8 & 63 = 56; (0x8) + 64 = 72
        (0x1F800004, 0x15223B7C, 60, 76),  # 0x7c & 63 = 60; (0xc) + 64 = 76
    ],
)
def test_os_futex_key_to_index_private_h_and_63_shared_h_and_15_plus_64(
    address: int, h: int, private: int, shared: int
) -> None:
    """los_futex.c OsFutexKeyToIndex: index = h & 63 (private), (h & 15) + 64 (shared)."""
    assert fnv1a_32(address.to_bytes(4, "little")) == h
    assert private_index(address) == private == h & 63
    assert shared_index(address) == shared == (h & 15) + 64
    assert futex_index((7, address)) == private
    assert futex_index((abi.OS_INVALID, address)) == shared


def test_g_futex_hash_is_one_global_table_of_80_buckets(lk: LiteosKernel) -> None:
    """los_futex.c g_futexHash[FUTEX_INDEX_MAX]: 0-63 private, 64-79 shared, one table
    for every process (fork keeps it)."""
    layout = lk.layout
    assert isinstance(layout, LiteosLayout)
    (table,) = layout.tables()
    assert table.size == 80
    assert layout.fork() is layout
    assert lk.futex.fork().layout is layout
    for a in range(abi.USER_ASPACE_BASE, abi.USER_ASPACE_BASE + 4096, 4):
        assert 0 <= private_index(a) < 64
        assert 64 <= shared_index(a) < 80
        assert layout.bucket_of((1, a)) is table.buckets[private_index(a)]


def test_os_futex_flags_to_key_private_is_pid_and_vaddr_shared_is_paddr(
    lk: LiteosKernel,
) -> None:
    """los_futex.c OsFutexFlagsToKey / OsFutexSetKey: FUTEX_PRIVATE -> (pid, vaddr);
    otherwise (OS_INVALID, LOS_PaddrQuery(vaddr))."""
    p = lk.new_process()
    a = p.mmap(PAGE_SIZE, shared=True)
    assert p.futex_key(a + 8) == (p.pid, a + 8)
    paddr = p.paddr(a + 8)
    assert paddr and paddr & 0xFFF == 8
    assert p.futex_key(a + 8, private=False) == (abi.OS_INVALID, paddr)


# -- B.3 SysFutex dispatch ------------------------------------------------------------------


@pytest.mark.parametrize("priv", [0, PRIV])
@pytest.mark.parametrize("cmd", [2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0x100, 0x101, 0x103])
def test_sys_futex_every_unsupported_command_is_einval(
    lk: LiteosKernel, cmd: int, priv: int
) -> None:
    """process_syscall.c SysFutex dispatches on flags & 3 and each path demands its exact
    command: 5/9/13 fail the wake check, 2/4/6/8/10/12 the wait flags check, 7/11 the
    requeue check (a passing check would answer EBADF here)."""
    p, a, (t,) = setup(lk, 10)
    p.store_u32(a, 1)
    assert t.syscall_futex(a, cmd | priv, 0, FOREVER, a + 4) == -EINVAL
    assert lk.table().empty


def test_sys_futex_returns_negated_los_codes(lk: LiteosKernel) -> None:
    """los_typedef.h: LOS_EINTR 4, LOS_EBADF 9, LOS_EINVAL 22, LOS_ETIMEDOUT 110, LOS_NOK 1."""
    assert (abi.LOS_EINTR, abi.LOS_EBADF, abi.LOS_EINVAL, abi.LOS_ETIMEDOUT) == (4, 9, 22, 110)
    assert abi.LOS_NOK == 1
    _p, a, (t,) = setup(lk, 10)
    assert t.syscall_futex(a, WAKE_P, 1, 0, 0) == -9
    assert t.syscall_futex(a + 1, WAKE_P, 1, 0, 0) == -22


# -- B.4 OsFutexWait: checks in order ---------------------------------------------------------


def test_os_futex_wait_param_check_interrupt_context_is_eintr_before_every_check(
    lk: LiteosKernel,
) -> None:
    """OsFutexWaitParamCheck: OS_INT_ACTIVE -> LOS_EINTR first (bad flags, bad address and
    absTime 0 all come later)."""
    _p, a, (t,) = setup(lk, 10)
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
    p, a, (t,) = setup(lk, 10)
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
    p, a, (t,) = setup(lk, 10)
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
    p, a, (t, waker) = setup(lk, 10, 10)  # private anonymous, never written: no frame
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
    _p, a, (t,) = setup(k, 10)
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
    _p, a, (t, u) = setup(lk, 10, 10)
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
    _p, a, (t,) = setup(k, 10)
    assert k.ticks(0xFFFFFFFE) == 0xFFFFFFFF
    w = wait(t, a, us=0xFFFFFFFE)
    assert clock.pending() == []
    assert t.interrupt() and w.result() == 0


def test_timed_out_waiter_leaves_the_middle_of_its_queue(
    lk: LiteosKernel, clock: ManualClock
) -> None:
    """OsFutexDeleteTimeoutTaskNode: the timed-out node leaves; the others keep their order
    (a removed head promotes its successor, OsFutexReplaceQueueListHeadNode)."""
    p, a, ts = setup(lk, 10, 10, 10, 10)
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
    p, a, (t1, t2, t3) = setup(lk, 10, 10, 10)
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
    p, a, (t,) = setup(lk, 10)
    w = wait(t, a, us=5000)
    for signo in (2, 10, 14, 15, 17):
        assert not t.interrupt(signo)
    assert not w.done()
    assert lk.table().waiters(p.futex_key(a)) == chain(t)
    clock.advance(5 * MS)
    assert w.result() == -ETIMEDOUT


def test_task_exit_removes_its_node(lk: LiteosKernel) -> None:
    """los_task.c OsTaskReleaseHoldLock: an exiting user task's futex node leaves the hash."""
    p, a, (t1, t2) = setup(lk, 10, 10)
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
    _p, a, (t,) = setup(lk, 10)
    wait(t, a)
    with pytest.raises(RuntimeError, match="blocked"):
        t.syscall_futex_nb(a + 4, WAIT_P, 0, FOREVER, 0)
    t.exit()


# -- B.5 OsFutexWake ---------------------------------------------------------------------------


def test_os_futex_wake_returns_0_not_a_count_and_ebadf_without_waiters(
    lk: LiteosKernel,
) -> None:
    """OsFutexWake returns LOS_OK whatever it woke; OsFutexWakeTask: no head -> EBADF."""
    p, a, ts = setup(lk, 10, 10, 10, 10)
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
    _p, a, (t,) = setup(lk, 10)
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
    p, a, ts = setup(lk, 22, 20, 22, 10, 20, 31, 0, 10)
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
    p, a, (t1, t2) = setup(lk, 20, 20)
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
    p, a, ts = setup(lk, 10, 10, 10)
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
    p, a, ts = setup(k, 10, 20, 10, 5)
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
    p, a, ts = setup(lk, 22, 10, 22, 5, 31, 22)
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
    p, a, (m1, m2, m3, x1, x2) = setup(lk, 20, 10, 20, 10, 20)
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
    p, a, ts = setup(lk, *([10] * (waiters + 1)))
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
    p, a, (t, w) = setup(lk, 10, 10)
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


# -- processes, fork, physical addresses ---------------------------------------------------------


def test_mmap_places_mappings_in_the_liteos_map_region(lk: LiteosKernel) -> None:
    """los_vm_common.h USER_MAP_BASE = USER_ASPACE_TOP_MAX >> 1: mmap without an address
    lands there, inside the futex key range."""
    p = lk.new_process()
    a1, a2 = p.mmap(PAGE_SIZE), p.mmap(3 * PAGE_SIZE)
    assert a1 == abi.USER_MAP_BASE == 0x1F800000
    assert a2 == a1 + PAGE_SIZE
    assert p.mmap(PAGE_SIZE) == a2 + 3 * PAGE_SIZE


def test_private_futexes_of_parent_and_child_never_meet(lk: LiteosKernel) -> None:
    """OsFindFutexNode matches key and pid: a private futex at the same vaddr in two
    processes shares a bucket (the pid is not hashed) but not a head; among equal keys a
    new head goes first (OsFutexInsertNewFutexKeyToHash)."""
    parent = lk.new_process()
    a = parent.mmap(PAGE_SIZE)
    child = parent.fork()
    tp, tc = parent.new_task(), child.new_task()
    wp, wc = wait(tp, a), wait(tc, a)
    (bucket,) = lk.table().buckets
    assert bucket.index == private_index(a)
    assert [(h.pid, h.address) for h in bucket.heads] == [(child.pid, a), (parent.pid, a)]
    assert child.new_task().syscall_futex(a, WAKE_P, 1, 0, 0) == 0
    assert wc.result() == 0 and not wp.done()
    assert child.new_task().syscall_futex(a, WAKE_P, 1, 0, 0) == -EBADF
    tp.exit()


def test_shared_futex_meets_across_fork_by_physical_address(lk: LiteosKernel) -> None:
    """OsFutexFlagsToKey: a shared key is LOS_PaddrQuery(vaddr) with pid OS_INVALID, so
    MAP_SHARED memory inherited by a child meets the parent's futex; it lives in a shared
    bucket (64..79)."""
    parent = lk.new_process()
    a = parent.mmap(PAGE_SIZE, shared=True)
    child = parent.fork()
    assert child.paddr(a) == parent.paddr(a) != 0
    tc = child.new_task()
    w = wait(tc, a, flags=WAIT)
    (bucket,) = lk.table().buckets
    assert bucket.shared and bucket.index == shared_index(parent.paddr(a))
    assert bucket.heads[0].pid == abi.OS_INVALID
    assert parent.new_task().syscall_futex(a, WAKE_P, 1, 0, 0) == -EBADF  # private: no
    assert parent.new_task().syscall_futex(a, WAKE, 1, 0, 0) == 0
    assert w.result() == 0


def test_shared_futex_matches_by_physical_not_virtual_address(lk: LiteosKernel) -> None:
    """LOS_PaddrQuery: one file page mapped at different addresses in two processes is one
    shared futex."""
    f = File("futex-page", PAGE_SIZE)
    p1, p2 = lk.new_process(), lk.new_process()
    a1 = p1.mmap(PAGE_SIZE, shared=True, file=f)
    p2.mmap(PAGE_SIZE)
    a2 = p2.mmap(PAGE_SIZE, shared=True, file=f)
    assert a1 != a2 and p1.paddr(a1 + 12) == p2.paddr(a2 + 12)
    w = wait(p1.new_task(), a1 + 12, flags=WAIT)
    assert p2.new_task().syscall_futex(a2 + 12, WAKE, 1, 0, 0) == 0
    assert w.result() == 0


def test_shared_key_on_a_copy_on_write_page_follows_the_physical_page(lk: LiteosKernel) -> None:
    """LOS_PaddrQuery on MAP_PRIVATE memory after fork: parent and child map one physical
    page until either writes it; the writer's copy is a new frame, so a shared futex on it
    stops matching the other process (a consequence of paddr keys)."""
    parent = lk.new_process()
    a = parent.mmap(PAGE_SIZE)
    parent.store_u32(a, 1)  # the page exists (has a frame) before the fork
    child = parent.fork()
    assert child.paddr(a) == parent.paddr(a) != 0
    tc, tp = child.new_task(), parent.new_task()
    w = wait(tc, a, val=1, flags=WAIT)
    assert tp.syscall_futex(a, WAKE, 1, 0, 0) == 0
    assert w.result() == 0
    w = wait(tc, a, val=1, flags=WAIT)
    parent.store_u32(a, 2)  # copy-on-write break: the parent's page moves
    assert parent.paddr(a) != child.paddr(a)
    assert tp.syscall_futex(a, WAKE, 1, 0, 0) == -EBADF
    assert child.new_task().syscall_futex(a, WAKE, 1, 0, 0) == 0
    assert w.result() == 0


def test_los_paddr_query_is_zero_without_a_frame(lk: LiteosKernel) -> None:
    """LOS_PaddrQuery returns 0 for an unmapped page (and, here, for an anonymous private
    page never written); frames are stable once given."""
    p = lk.new_process()
    a = p.mmap(2 * PAGE_SIZE)
    assert p.paddr(a + 3 * PAGE_SIZE) == 0
    assert p.paddr(a) == 0
    p.store_u32(a + 4, 9)
    frame = p.paddr(a)
    assert frame and frame == p.paddr(a + 4) - 4 and p.paddr(a) == frame
    assert p.paddr(a + PAGE_SIZE) == 0


# -- the table view ----------------------------------------------------------------------------


def test_lock_list_heads_are_sorted_by_key_within_a_bucket(lk: LiteosKernel) -> None:
    """OsFutexInsertNewFutexKeyToHash: a bucket's lockList is sorted by ascending key,
    whatever order the heads arrived in; each head keeps its own ring."""
    p = lk.new_process()
    base = p.mmap(16 * PAGE_SIZE)
    want = private_index(base)
    same = [x for x in range(base, base + 16 * PAGE_SIZE, 4) if private_index(x) == want][:3]
    assert len(same) == 3
    ts = [p.new_task(priority=i) for i in (3, 2, 1)]
    for t, addr in zip(ts, reversed(same), strict=True):
        wait(t, addr)
    (bucket,) = lk.table().buckets
    assert [h.address for h in bucket.heads] == same
    assert [h.tids() for h in bucket.heads] == [[ts[2].tid], [ts[1].tid], [ts[0].tid]]
    for t in ts:
        t.exit()


def test_table_renders_as_os_futex_hash_show(lk: LiteosKernel) -> None:
    """los_futex.c OsFutexHashShow / OsFutexShowTaskNodeAttr: "hash -> index : N" then
    "key(pid) : 0xKEY(PID) : -> taskID(priority) -> ..." (the chains LiteOS tests annotate;
    a shared key's pid OS_INVALID prints as -1)."""
    p = lk.new_process()
    a = p.mmap(PAGE_SIZE)
    s = p.mmap(PAGE_SIZE, shared=True)
    t1, t2, t3 = p.new_task(priority=22, tid=30), p.new_task(priority=20, tid=31), p.new_task()
    wait(t1, a)
    wait(t2, a)
    wait(t3, s, flags=WAIT)
    table = lk.table()
    assert isinstance(table, FutexTable)
    assert table.head(p.futex_key(a)).chain() == "31(20) -> 30(22) ->"  # type: ignore[union-attr]
    assert format_chain(table.waiters(p.futex_key(s, private=False))) == f"{t3.tid}(10) ->"
    assert str(table).splitlines() == [
        "#################### los_futex_pri.hash ####################",
        f"hash -> index : {private_index(a)}",
        f"key(pid)           : {a:#x}({p.pid}) : -> 31(20) -> 30(22) ->",
        f"hash -> index : {shared_index(p.paddr(s))}",
        f"key(pid)           : {p.paddr(s):#x}(-1) : -> {t3.tid}(10) ->",
    ]
    for t in (t1, t2, t3):
        t.exit()


# -- the two ways to block ------------------------------------------------------------------------


def test_cooperative_wait_settles_once_with_callbacks(lk: LiteosKernel) -> None:
    """The _nb call returns a PendingWait whose done callbacks run when the wait ends."""
    _p, a, (t, u) = setup(lk, 10, 10)
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
    p, a, (t, u) = setup(lk, 10, 10)
    b = run_blocking(lambda: t.syscall_futex(a, WAIT_P, 0, FOREVER, 0), t)
    assert lk.table().waiters(p.futex_key(a)) == chain(t)
    assert u.syscall_futex(a, WAKE_P, 1, 0, 0) == 0
    assert b.result() == 0


def test_real_thread_wait_times_out_on_the_manual_clock(
    lk: LiteosKernel, clock: ManualClock, run_blocking: Callable[..., Blocking]
) -> None:
    """The kernel's clock times a blocked thread: advancing the ManualClock ends it."""
    _p, a, (t,) = setup(lk, 10)
    b = run_blocking(lambda: t.syscall_futex(a, WAIT_P, 0, 250, 0), t)
    clock.advance(1 * MS)
    assert b.result() == -ETIMEDOUT
    assert lk.table().empty


def test_real_thread_sigkill_ends_the_wait_with_0(
    lk: LiteosKernel, run_blocking: Callable[..., Blocking]
) -> None:
    """los_signal.c: SIGKILL wakes a blocked futex waiter; its call returns 0."""
    _p, a, (t,) = setup(lk, 10)
    b = run_blocking(lambda: t.syscall_futex(a, WAIT_P, 0, FOREVER, 0), t)
    assert not t.interrupt(15)
    assert t.interrupt(abi.SIGKILL)
    assert b.result() == 0


def test_real_threads_queue_by_priority_and_a_wake_all_releases_them(
    lk: LiteosKernel, run_blocking: Callable[..., Blocking]
) -> None:
    """Eight real threads block at once; the table orders them by priority (FIFO among
    equals, in the order they queued); one INT_MAX wake (musl's __wake(-1)) ends them all."""
    p, a, ts = setup(lk, 12, 3, 12, 7, 3, 30, 7, 12)
    calls = [run_blocking(lambda t=t: t.syscall_futex(a, WAIT_P, 0, FOREVER, 0), t) for t in ts]
    queued = lk.table().waiters(p.futex_key(a))
    assert sorted(queued, key=lambda w: w.priority) == list(queued)
    assert sorted(w.tid for w in queued) == sorted(t.tid for t in ts)
    assert p.new_task().syscall_futex(a, WAKE_P, 0x7FFFFFFF, 0, 0) == 0
    assert [c.result() for c in calls] == [0] * len(ts)
    assert lk.table().empty


# -- musl-style mutex over SysFutex, and pthread_mutex_test_019..022 ------------------------------

EBUSY = 16  # musl's NORMAL mutex holds EBUSY when locked, | 0x80000000 when contended
Gen = Generator[PendingWait, int, Any]


def sys_futex(task: Task, addr: int, flags: int, val: int, abs_time: int) -> Gen:
    """A SysFutex call inside a cooperative thread: yields the PendingWait if it blocks."""
    r = task.syscall_futex_nb(addr, flags, val, abs_time, 0)
    if isinstance(r, int):
        return r
    return (yield r)


class MuslMutex:
    """musl's PTHREAD_MUTEX_NORMAL lock/unlock as ported to LiteOS-A, over SysFutex:
    ``__pthread_mutex_timedlock`` (trylock; else count a waiter, set the contended bit,
    ``__timedwait``; retry unless it answered ETIMEDOUT) and ``__pthread_mutex_unlock``
    (swap 0; ``__wake(addr, 1)`` if there are waiters)."""

    def __init__(self, proc: Process, addr: int, clock: ManualClock) -> None:
        self.proc, self.addr, self.clock = proc, addr, clock
        self.waiters = 0
        proc.store_u32(addr, 0)

    def trylock(self) -> bool:
        return self.proc.cas_u32(self.addr, 0, EBUSY) == 0

    def timedlock(self, task: Task, deadline: int | None = None) -> Gen:
        """0 or ETIMEDOUT (a positive errno, as pthread returns it)."""
        while not self.trylock():
            r = self.proc.load_u32(self.addr)
            if not r:
                continue
            self.waiters += 1
            self.proc.cas_u32(self.addr, r, r | 0x80000000)
            err = yield from self._timedwait(task, r | 0x80000000, deadline)
            self.waiters -= 1
            if err and err != EINTR:
                return err
        return 0

    def _timedwait(self, task: Task, val: int, deadline: int | None) -> Gen:
        """musl __timedwait on LiteOS: absolute deadline -> relative µs (a non-zero sub-µs
        rest rounds up to 1); errors other than EINTR / ETIMEDOUT count as 0."""
        us = FOREVER
        if deadline is not None:
            rest = deadline - self.clock.now(ClockId.REALTIME)
            if rest < 0:
                return ETIMEDOUT
            us = rest // US or (1 if rest else 0)
        r = yield from sys_futex(task, self.addr, WAIT_P, val, us)
        return -r if -r in (EINTR, ETIMEDOUT) else 0

    def unlock(self, task: Task) -> None:
        old = self.proc.swap_u32(self.addr, 0)
        if self.waiters or old & 0x80000000:
            task.syscall_futex(self.addr, WAKE_P, 1, 0, 0)  # EBADF (nobody left) is harmless


class Thread:
    def __init__(self, task: Task, gen: Gen) -> None:
        self.task, self.gen = task, gen
        self.done = False
        self.result: Any = None


class Scheduler:
    """Cooperative threads on one CPU: the most urgent ready thread runs (LiteOS priority,
    FIFO among equals) until it blocks in SysFutex or returns.  The test body is the main
    thread: while it "runs", no other thread does."""

    def __init__(self) -> None:
        self._ready: list[tuple[int, int, Thread, int | None]] = []
        self._seq = itertools.count()

    def spawn(self, task: Task, gen: Gen) -> Thread:
        th = Thread(task, gen)
        self._push(th, None)
        return th

    def _push(self, th: Thread, value: int | None) -> None:
        heapq.heappush(self._ready, (th.task.priority, next(self._seq), th, value))

    def run(self) -> None:
        while self._ready:
            _, _, th, value = heapq.heappop(self._ready)
            try:
                pw = th.gen.send(value)
            except StopIteration as stop:
                th.done, th.result = True, stop.value
                continue
            pw.add_done_callback(lambda w, th=th: self._push(th, w.result()))

    @property
    def idle(self) -> bool:
        return not self._ready


def run_now(gen: Gen) -> Any:
    """Run a call that must not block (main's uncontended lock)."""
    with pytest.raises(StopIteration) as stop:
        gen.send(None)
    return stop.value.value


def test_pr751_musl_timedlock_whose_deadline_is_now_times_out(
    lk: LiteosKernel, clock: ManualClock
) -> None:
    """CHANGELOG 3f71be7 / PR !751: musl turns a deadline that is exactly now into absTime
    0; the kernel must answer ETIMEDOUT (musl maps EINVAL to 0 and retried forever)."""
    p, a, (main, t) = setup(lk, 20, 22)
    m = MuslMutex(p, a, clock)
    assert run_now(m.timedlock(main)) == 0
    assert run_now(m.timedlock(t, clock.now(ClockId.REALTIME))) == ETIMEDOUT
    assert run_now(m.timedlock(t, clock.now(ClockId.REALTIME) - 1)) == ETIMEDOUT
    assert lk.table().empty and m.waiters == 0


class Round:
    """One round of a pthread_mutex_test: the mutex, the test's counters, and the table
    after each unlock of a locker thread."""

    def __init__(self, kernel: LiteosKernel, proc: Process, addr: int, clock: ManualClock) -> None:
        self.kernel, self.key = kernel, proc.futex_key(addr)
        self.m = MuslMutex(proc, addr, clock)
        self.count000 = self.count001 = self.count002 = 0
        self.seen: list[tuple[QueuedTask, ...]] = []

    def unlock(self, t: Task) -> None:
        self.m.unlock(t)
        self.seen.append(self.kernel.table().waiters(self.key))

    def thread_func_test0(self, t: Task, deadline: int) -> Gen:
        """020-022 ThreadFuncTest0: timedlock (100 ms); wait for the late thread; unlock if
        locked."""
        ret = yield from self.m.timedlock(t, deadline)
        assert self.count002 == 1  # LiteOS spins until the late thread is done
        if ret == 0:
            self.unlock(t)
        self.count000 += 1
        return ret

    def thread_func_test1(self, t: Task) -> Gen:
        """020-022 ThreadFuncTest1: lock; wait for the late thread; unlock."""
        assert (yield from self.m.timedlock(t)) == 0
        # LiteOS spins here until the late thread is done; priority order already made it so.
        assert self.count002 == 1
        self.unlock(t)
        self.count001 += 1

    def thread_func_test2(self, t: Task) -> Gen:
        """ThreadFuncTest2, the late locker: lock, unlock, count002 = 1."""
        assert (yield from self.m.timedlock(t)) == 0
        self.unlock(t)
        self.count002 = 1

    def timed_019(self, t: Task, deadline: int) -> Gen:
        """019 ThreadFuncTest1: timedlock (100 ms) must time out after the late thread ran."""
        assert (yield from self.m.timedlock(t, deadline)) == ETIMEDOUT
        assert self.count002 == 1
        self.count001 += 1


def test_pthread_mutex_test_019_timed_out_waiters_leave_then_a_late_locker_succeeds(
    lk: LiteosKernel, clock: ManualClock
) -> None:
    """pthread_mutex_test_019: main (priority 20) holds a NORMAL mutex; ten threads of
    priority 22 pthread_mutex_timedlock it for 100 ms; after 70 ms a priority-20 thread
    locks it (untimed) and becomes the head; main spins 1 s — the timeouts fire, and each
    timed-out node leaves the queue (LiteOS's annotation "30(20) -> -1(-1) -> ..." shows
    them as stale -1(-1) nodes until their tasks run; here they leave at the timeout);
    main unlocks: the late thread locks and unlocks, then every timed waiter reports
    ETIMEDOUT having seen it done.  10 rounds."""
    p = lk.new_process()
    main = p.new_task(priority=20)
    addr = p.mmap(PAGE_SIZE)
    key = p.futex_key(addr)
    sched = Scheduler()
    for _round in range(10):
        r = Round(lk, p, addr, clock)
        assert run_now(r.m.timedlock(main)) == 0
        timed = [p.new_task(priority=22) for _ in range(10)]
        deadline = clock.now(ClockId.REALTIME) + 100 * MS
        threads = [sched.spawn(t, r.timed_019(t, deadline)) for t in timed]
        sched.run()  # main's usleep: every new thread runs and blocks
        assert lk.table().waiters(key) == chain(*timed)
        clock.advance(70 * MS)
        late = p.new_task(priority=20)
        threads.append(sched.spawn(late, r.thread_func_test2(late)))
        sched.run()
        assert lk.table().waiters(key) == chain(late, *timed)
        clock.advance(1000 * MS)  # main spins at priority 20: the timed-out cannot run yet
        assert lk.table().waiters(key) == chain(late)
        assert not any(th.done for th in threads)
        r.m.unlock(main)
        sched.run()
        assert all(th.done for th in threads)
        assert (r.count001, r.count002) == (10, 1)
        assert r.seen == [()]
        assert lk.table().empty and r.m.waiters == 0
        for t in [*timed, late]:
            t.exit()


@pytest.mark.parametrize(
    "timed_indices",
    [
        pytest.param({0, 1}, id="pthread_mutex_test_020-two_timed_eight_untimed"),
        pytest.param({0, 2, 4, 6, 8}, id="pthread_mutex_test_021-even_index_timed"),
        pytest.param({1, 3, 5, 7, 9}, id="pthread_mutex_test_022-odd_index_timed"),
    ],
)
def test_pthread_mutex_tests_020_to_022_timed_waiters_leave_mid_queue(
    lk: LiteosKernel, clock: ManualClock, timed_indices: set[int]
) -> None:
    """pthread_mutex_test_020/021/022: main (20) holds the mutex; ten priority-22 threads
    queue on it, those at `timed_indices` with a 100 ms pthread_mutex_timedlock
    (ThreadFuncTest0), the others untimed (ThreadFuncTest1: lock, wait for the late thread,
    unlock); after 80 ms a priority-20 thread locks (ThreadFuncTest2) and heads the queue;
    main spins 1 s — the timed waiters leave from the middle of the queue; main unlocks and
    each unlock hands the mutex to the next untimed waiter in FIFO order, the table
    shrinking by its head each time (LiteOS's annotated chains "21(20) -> -1(-1) ->
    28(22) -> ..." with the stale nodes already reaped).  10 rounds."""
    p = lk.new_process()
    main = p.new_task(priority=20)
    addr = p.mmap(PAGE_SIZE)
    key = p.futex_key(addr)
    sched = Scheduler()
    for _round in range(10):
        r = Round(lk, p, addr, clock)
        assert run_now(r.m.timedlock(main)) == 0
        tasks = [p.new_task(priority=22) for _ in range(10)]
        deadline = clock.now(ClockId.REALTIME) + 100 * MS
        threads = [
            sched.spawn(
                t,
                r.thread_func_test0(t, deadline) if i in timed_indices else r.thread_func_test1(t),
            )
            for i, t in enumerate(tasks)
        ]
        sched.run()
        assert lk.table().waiters(key) == chain(*tasks)
        clock.advance(80 * MS)
        late = p.new_task(priority=20)
        threads.append(sched.spawn(late, r.thread_func_test2(late)))
        sched.run()
        assert lk.table().waiters(key) == chain(late, *tasks)
        clock.advance(1000 * MS)
        untimed = [t for i, t in enumerate(tasks) if i not in timed_indices]
        assert lk.table().waiters(key) == chain(late, *untimed)
        r.m.unlock(main)
        sched.run()
        assert all(th.done for th in threads)
        timed_results = [th.result for i, th in enumerate(threads[:10]) if i in timed_indices]
        assert timed_results == [ETIMEDOUT] * len(timed_indices)
        # late's unlock woke untimed[0]; each untimed unlock woke the next one
        assert r.seen == [chain(*untimed[k + 1 :]) for k in range(len(untimed))] + [()]
        assert (r.count000, r.count001, r.count002) == (len(timed_indices), len(untimed), 1)
        assert lk.table().empty and r.m.waiters == 0
        for t in [*tasks, late]:
            t.exit()
