"""futex_waitv (449): LTP futex_waitv01-03 and the kernel's semantics of the call.

Each test names its source: an LTP case (``testcases/kernel/syscalls/futex/futex_waitv0*``),
the man page ("Linux futex_waitv(2)"), or the kernel function whose behaviour it pins
(``kernel/futex/syscalls.c``, ``waitwake.c``, ``core.c``).  Facts beyond the sources (orders
of checks, the SA_RESTART rule of timed futex2 waits) were measured on the host kernel
(Linux 6.18) and are checked against it in ``test_differential.py``.  The other
futex2 calls are in ``test_calls.py``.

Blocking tests run a task either on a real thread (``threads``) or cooperatively through
:class:`PendingWait` (``cooperative``); time is the :class:`ManualClock`'s.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass

import pytest

from futex.kernel import ClockId, ManualClock
from futex.linux import LinuxKernel, Process, Task, abi
from futex.linux.futex2 import FUTEX2_VALID_MASK
from futex.memory import PAGE_SIZE
from tests.linux.futex2.support import (
    ANY,
    CLOCK_MONOTONIC,
    CLOCK_REALTIME,
    CLOCK_TAI,
    LEGACY_WAKE_PRIVATE,
    MS,
    PRIV,
    SEC,
    SHARING,
    SYS_WAIT,
    SYS_WAITV,
    SYS_WAKE,
    U32,
    U32F,
    blocked,
    in_ns,
    queued,
    timespec,
    waitv_array,
    words,
)
from tests.support import StartWait, restart_rule_ids, wait_until

# -- LTP futex_waitv01 -------------------------------------------------------------------------


@dataclass(frozen=True)
class Ltp01:
    """LTP futex_waitv01's setup: one private futex holding 0 and a timeout 1 s ahead on
    CLOCK_MONOTONIC."""

    process: Process
    task: Task
    #: the futex word (0)
    futex: int
    #: an absolute ``struct __kernel_timespec`` 1 s ahead on CLOCK_MONOTONIC
    timeout: int


@pytest.fixture
def ltp01(kernel: LinuxKernel, clock: ManualClock) -> Ltp01:
    """LTP futex_waitv01's setup (:class:`Ltp01`)."""
    p = kernel.new_process()
    (f,) = words(p, 1)
    return Ltp01(process=p, task=p.new_task(), futex=f, timeout=timespec(p, in_ns(clock, SEC)))


def test_futex_waitv01_invalid_flags(ltp01: Ltp01) -> None:
    """LTP futex_waitv01 test_invalid_flags: a waiter without FUTEX_32 -> EINVAL."""
    p, t, f, to = ltp01.process, ltp01.task, ltp01.futex, ltp01.timeout
    w = waitv_array(p, [(0, f, abi.FUTEX_PRIVATE_FLAG)])
    assert t.syscall(SYS_WAITV, w, 1, 0, to, CLOCK_MONOTONIC) == -abi.EINVAL


def test_futex_waitv01_unaligned_address(ltp01: Ltp01) -> None:
    """LTP futex_waitv01 test_unaligned_address: uaddr 1 -> EINVAL."""
    p, t, to = ltp01.process, ltp01.task, ltp01.timeout
    w = waitv_array(p, [(0, 1, U32F | PRIV)])
    assert t.syscall(SYS_WAITV, w, 1, 0, to, CLOCK_MONOTONIC) == -abi.EINVAL


def test_futex_waitv01_null_address(ltp01: Ltp01) -> None:
    """LTP futex_waitv01 test_null_address: uaddr NULL -> EFAULT."""
    p, t, to = ltp01.process, ltp01.task, ltp01.timeout
    w = waitv_array(p, [(0, 0, U32F | PRIV)])
    assert t.syscall(SYS_WAITV, w, 1, 0, to, CLOCK_MONOTONIC) == -abi.EFAULT


def test_futex_waitv01_null_waiters(ltp01: Ltp01) -> None:
    """LTP futex_waitv01 test_null_waiters: waiters NULL -> EINVAL."""
    t, to = ltp01.task, ltp01.timeout
    assert t.syscall(SYS_WAITV, 0, 1, 0, to, CLOCK_MONOTONIC) == -abi.EINVAL


def test_futex_waitv01_invalid_clockid(ltp01: Ltp01) -> None:
    """LTP futex_waitv01 test_invalid_clockid: CLOCK_TAI -> EINVAL."""
    p, t, f, to = ltp01.process, ltp01.task, ltp01.futex, ltp01.timeout
    w = waitv_array(p, [(0, f, U32F | PRIV)])
    assert t.syscall(SYS_WAITV, w, 1, 0, to, CLOCK_TAI) == -abi.EINVAL


@pytest.mark.parametrize("nr", [129, 0])
def test_futex_waitv01_invalid_nr_futexes(ltp01: Ltp01, nr: int) -> None:
    """LTP futex_waitv01 test_invalid_nr_futexes: nr_futexes 129 and 0 (valid: 1..128), on
    CLOCK_REALTIME -> EINVAL."""
    p, t, f, to = ltp01.process, ltp01.task, ltp01.futex, ltp01.timeout
    w = waitv_array(p, [(0, f, U32F | PRIV)] * 129)
    assert t.syscall(SYS_WAITV, w, nr, 0, to, CLOCK_REALTIME) == -abi.EINVAL


def test_futex_waitv01_value_mismatch(ltp01: Ltp01) -> None:
    """LTP futex_waitv01 (newer): a waiter whose val differs from the word -> EAGAIN."""
    p, t, f, to = ltp01.process, ltp01.task, ltp01.futex, ltp01.timeout
    w = waitv_array(p, [(1, f, U32F | PRIV)])
    assert t.syscall(SYS_WAITV, w, 1, 0, to, CLOCK_MONOTONIC) == -abi.EAGAIN
    assert queued(p) == 0


def test_futex_waitv01_realtime_timeout(
    ltp01: Ltp01, clock: ManualClock
) -> None:
    """LTP futex_waitv01 (newer): an absolute CLOCK_REALTIME timeout now + 10 ms ->
    ETIMEDOUT, at the deadline and not before."""
    p, t, f = ltp01.process, ltp01.task, ltp01.futex
    w = waitv_array(p, [(0, f, U32F | PRIV)])
    to = timespec(p, in_ns(clock, 10 * MS, ClockId.REALTIME))
    pw = blocked(t.syscall_nb(SYS_WAITV, w, 1, 0, to, CLOCK_REALTIME))
    clock.advance(10 * MS - 1)
    assert not pw.done()
    clock.advance(1)
    assert pw.result() == -abi.ETIMEDOUT
    assert queued(p) == 0 and t.blocked is None


# -- LTP futex_waitv02 / 03 --------------------------------------------------------------------

NUMFUTEX = 30


def test_futex_waitv02_thread_wakes_last_private(
    kernel: LinuxKernel, clock: ManualClock, start: StartWait
) -> None:
    """LTP futex_waitv02: 30 private futexes (FUTEX_32 | FUTEX_PRIVATE_FLAG, val 0), an
    absolute CLOCK_MONOTONIC timeout 5 s ahead; a thread wakes the last one with
    FUTEX_WAKE_PRIVATE -> futex_waitv returns 29."""
    p = kernel.new_process()
    t, waker = p.new_task(), p.new_task()
    fs = words(p, NUMFUTEX)
    w = waitv_array(p, [(0, f, U32F | PRIV) for f in fs])
    to = timespec(p, in_ns(clock, 5 * SEC))
    wait = start(t, SYS_WAITV, w, NUMFUTEX, 0, to, CLOCK_MONOTONIC)
    assert queued(p) == NUMFUTEX
    assert waker.syscall(abi.SYS_futex, fs[-1], LEGACY_WAKE_PRIVATE, 1, 0, 0, 0) == 1
    assert wait.result() == NUMFUTEX - 1
    assert queued(p) == 0 and clock.pending() == []


def test_futex_waitv03_thread_wakes_last_shared(
    kernel: LinuxKernel, clock: ManualClock, start: StartWait
) -> None:
    """LTP futex_waitv03: 30 futexes, each in its own shared segment (SysV shm there,
    MAP_SHARED here), shared keys (FUTEX_32); a thread wakes the last with a shared
    FUTEX_WAKE -> futex_waitv returns 29."""
    p = kernel.new_process()
    t, waker = p.new_task(), p.new_task()
    fs = [p.mmap(PAGE_SIZE, shared=True) for _ in range(NUMFUTEX)]
    w = waitv_array(p, [(0, f, U32F) for f in fs])
    to = timespec(p, in_ns(clock, 5 * SEC))
    wait = start(t, SYS_WAITV, w, NUMFUTEX, 0, to, CLOCK_MONOTONIC)
    assert waker.syscall(abi.SYS_futex, fs[-1], abi.FUTEX_WAKE, 1, 0, 0, 0) == 1
    assert wait.result() == NUMFUTEX - 1
    assert queued(p) == 0


def test_futex_waitv03_forked_process_wakes_shared(
    kernel: LinuxKernel, clock: ManualClock, start: StartWait
) -> None:
    """LTP futex_waitv03 with the waker in a forked process: shared keys name the
    segment, not the address space, so the child's futex_wake reaches the parent's
    futex_waitv (N-1); a private wake from the child does not."""
    p = kernel.new_process()
    t = p.new_task()
    fs = [p.mmap(PAGE_SIZE, shared=True) for _ in range(NUMFUTEX)]
    w = waitv_array(p, [(0, f, U32F) for f in fs])
    to = timespec(p, in_ns(clock, 5 * SEC))
    child = p.fork()
    ct = child.new_task()
    wait = start(t, SYS_WAITV, w, NUMFUTEX, 0, to, CLOCK_MONOTONIC)
    assert ct.syscall(SYS_WAKE, fs[-1], ANY, 1, U32F | PRIV) == 0
    assert not wait.done()
    assert ct.syscall(SYS_WAKE, fs[-1], ANY, 1, U32F) == 1
    assert wait.result() == NUMFUTEX - 1
    assert queued(p) == 0


# -- futex_waitv: Linux semantics --------------------------------------------------------------


@SHARING
@pytest.mark.parametrize("index", [0, 1, 3])
def test_waitv_woken_through_legacy_wake_on_any_entry(
    kernel: LinuxKernel, start: StartWait, sharing: int, index: int
) -> None:
    """Linux futex_waitv(2): "The thread wakes if a futex_wake() is performed at any
    uaddr" — legacy FUTEX_WAKE too; the call returns that entry's index and leaves nothing
    queued (``futex_unqueue_multiple``)."""
    p = kernel.new_process()
    t, waker = p.new_task(), p.new_task()
    fs = [p.mmap(PAGE_SIZE, shared=not sharing & PRIV) for _ in range(4)]
    w = waitv_array(p, [(0, f, sharing) for f in fs])
    wait = start(t, SYS_WAITV, w, 4, 0, 0, 0)
    op = abi.FUTEX_WAKE | (abi.FUTEX_PRIVATE_FLAG if sharing & PRIV else 0)
    assert waker.syscall(abi.SYS_futex, fs[index], op, 1, 0, 0, 0) == 1
    assert wait.result() == index
    assert queued(p) == 0
    for f in fs:  # every entry was dequeued
        assert waker.syscall(abi.SYS_futex, f, op, 1, 0, 0, 0) == 0


def test_waitv_entries_match_any_bitset(kernel: LinuxKernel) -> None:
    """``futex_parse_waitv`` starts every entry from ``futex_q_init``: bitset MATCH_ANY, so
    a WAKE_BITSET with any nonzero mask, or a futex2 futex_wake with mask 1, wakes it."""
    p = kernel.new_process()
    t, waker = p.new_task(), p.new_task()
    fs = words(p, 2)
    w = waitv_array(p, [(0, f, U32F | PRIV) for f in fs])
    pw = blocked(t.syscall_nb(SYS_WAITV, w, 2, 0, 0, 0))
    assert waker.syscall(SYS_WAKE, fs[1], 0x10, 1, U32F | PRIV) == 1
    assert pw.result() == 1
    pw = blocked(t.syscall_nb(SYS_WAITV, w, 2, 0, 0, 0))
    op = abi.FUTEX_WAKE_BITSET | abi.FUTEX_PRIVATE_FLAG
    assert waker.syscall(abi.SYS_futex, fs[0], op, 1, 0, 0, 0x80000000) == 1
    assert pw.result() == 0


def test_waitv_returns_highest_woken_index(kernel: LinuxKernel) -> None:
    """``futex_unqueue_multiple``: when several entries were woken before the waiter ran,
    the index returned is the highest of them (FUTEX_WAKE_OP wakes two keys in one call)."""
    p = kernel.new_process()
    t, waker = p.new_task(), p.new_task()
    a, b, c = words(p, 3)
    w = waitv_array(p, [(0, a, U32F | PRIV), (0, b, U32F | PRIV), (0, c, U32F | PRIV)])
    pw = blocked(t.syscall_nb(SYS_WAITV, w, 3, 0, 0, 0))
    op = abi.FUTEX_WAKE_OP | abi.FUTEX_PRIVATE_FLAG
    encoded = abi.FUTEX_OP(abi.FUTEX_OP_SET, 0, abi.FUTEX_OP_CMP_EQ, 0)
    assert waker.syscall(abi.SYS_futex, a, op, 1, 1, b, encoded) == 2
    assert pw.result() == 1
    assert queued(p) == 0


def test_waitv_same_futex_twice(kernel: LinuxKernel) -> None:
    """Linux futex_waitv(2) does not forbid an address twice: both entries queue; a wake of
    one returns the first (FIFO) and the call dequeues the other."""
    p = kernel.new_process()
    t, waker = p.new_task(), p.new_task()
    (f,) = words(p, 1)
    w = waitv_array(p, [(0, f, U32F | PRIV), (0, f, U32F | PRIV)])
    pw = blocked(t.syscall_nb(SYS_WAITV, w, 2, 0, 0, 0))
    assert queued(p) == 2
    assert waker.syscall(SYS_WAKE, f, ANY, 1, U32F | PRIV) == 1
    assert pw.result() == 0
    assert queued(p) == 0


def test_waitv_mismatch_unqueues_earlier_entries(kernel: LinuxKernel) -> None:
    """``futex_wait_multiple_setup``: entries are queued in order; a mismatch at entry i
    unqueues entries 0..i-1 and returns EAGAIN."""
    p = kernel.new_process()
    t = p.new_task()
    fs = words(p, 4)
    p.store_u32(fs[2], 7)
    w = waitv_array(p, [(0, f, U32F | PRIV) for f in fs])
    assert t.syscall(SYS_WAITV, w, 4, 0, 0, 0) == -abi.EAGAIN
    assert queued(p) == 0 and t.blocked is None


def test_waitv_order_of_checks(kernel: LinuxKernel) -> None:
    """``sys_futex_waitv``: all entries are parsed (flags, __reserved, val width) before any
    key; all keys (alignment, address) before any value; values in entry order.  (Each
    answer also checked on the host, see the differential table.)"""
    p = kernel.new_process()
    t = p.new_task()
    f, g = words(p, 2)
    hole = p.mmap(PAGE_SIZE)
    p.munmap(hole, PAGE_SIZE)

    def call(entries: list[tuple[int, int, int]]) -> int:
        return t.syscall(SYS_WAITV, waitv_array(p, entries), len(entries), 0, 0, 0)

    assert call([(0, hole, U32F), (0, g, U32F | PRIV | 0x10)]) == -abi.EINVAL  # parse first
    assert call([(0, hole, U32F), (1 << 32, g, U32F | PRIV)]) == -abi.EINVAL
    assert call([(1, f, U32F | PRIV), (0, g + 1, U32F | PRIV)]) == -abi.EINVAL  # keys first
    assert call([(1, f, U32F | PRIV), (0, hole, U32F)]) == -abi.EFAULT
    assert call([(0, hole, U32F | PRIV), (1, g, U32F | PRIV)]) == -abi.EFAULT  # in order
    assert call([(1, f, U32F | PRIV), (0, hole, U32F | PRIV)]) == -abi.EAGAIN
    assert queued(p) == 0


def test_waitv_entry_validation(kernel: LinuxKernel) -> None:
    """``futex_parse_waitv``: unknown flag bits, a nonzero ``__reserved``, sizes other than
    U32 and values wider than 32 bits are EINVAL; an unreadable entry is EFAULT."""
    p = kernel.new_process()
    t = p.new_task()
    (f,) = words(p, 1)
    to = timespec(p, 0)  # already expired: a valid call returns ETIMEDOUT

    def call(val: int, flags: int, reserved: int = 0) -> int:
        w = waitv_array(p, [(val, f, flags)], reserved)
        return t.syscall(SYS_WAITV, w, 1, 0, to, CLOCK_MONOTONIC)

    assert call(0, U32F | PRIV) == -abi.ETIMEDOUT
    assert call(0, U32F | PRIV, reserved=1) == -abi.EINVAL
    for size in (abi.FUTEX2_SIZE_U8, abi.FUTEX2_SIZE_U16, abi.FUTEX2_SIZE_U64):
        assert call(0, size | PRIV) == -abi.EINVAL
    for bit in range(32):
        if 1 << bit & ~FUTEX2_VALID_MASK:
            assert call(0, U32F | PRIV | 1 << bit) == -abi.EINVAL
    assert call(1 << 32, U32F | PRIV) == -abi.EINVAL
    assert call(U32, U32F | PRIV) == -abi.EAGAIN
    # an array whose second entry straddles into an unmapped page
    a = p.mmap(2 * PAGE_SIZE)
    p.munmap(a + PAGE_SIZE, PAGE_SIZE)
    p.write(a + PAGE_SIZE - 36, struct.pack("<QQII", 0, f, U32F | PRIV, 0))
    assert t.syscall(SYS_WAITV, a + PAGE_SIZE - 36, 2, 0, to, CLOCK_MONOTONIC) == -abi.EFAULT


def test_waitv_syscall_arguments(kernel: LinuxKernel) -> None:
    """``sys_futex_waitv``: flags != 0 EINVAL; nr_futexes is ``unsigned int`` and flags
    too (upper register bits dropped); clockid is an ``int``; without a timeout clockid is
    never looked at; the clock is checked before the timeout is read."""
    p = kernel.new_process()
    t = p.new_task()
    (f,) = words(p, 1)
    w = waitv_array(p, [(0, f, U32F | PRIV)])
    to = timespec(p, 0)
    hole = p.mmap(PAGE_SIZE)
    p.munmap(hole, PAGE_SIZE)
    assert t.syscall(SYS_WAITV, w, 1, 1, to, CLOCK_MONOTONIC) == -abi.EINVAL
    assert t.syscall(SYS_WAITV, w, 1, 1 << 32, to, CLOCK_MONOTONIC) == -abi.ETIMEDOUT
    assert t.syscall(SYS_WAITV, w, (1 << 32) | 1, 0, to, CLOCK_MONOTONIC) == -abi.ETIMEDOUT
    assert t.syscall(SYS_WAITV, w, 1, 0, to, (1 << 32) | CLOCK_MONOTONIC) == -abi.ETIMEDOUT
    assert t.syscall(SYS_WAITV, w, 1, 0, to, -1) == -abi.EINVAL
    assert t.syscall(SYS_WAITV, w, 1, 0, hole, CLOCK_TAI) == -abi.EINVAL
    assert t.syscall(SYS_WAITV, w, 1, 0, hole, CLOCK_REALTIME) == -abi.EFAULT
    p.store_u32(f, 1)
    assert t.syscall(SYS_WAITV, w, 1, 0, 0, CLOCK_TAI) == -abi.EAGAIN


@pytest.mark.parametrize(
    ("sec", "nsec"),
    [(-1, 0), (0, -1), (0, SEC), (1, 1 << 32)],
    ids=["neg-sec", "neg-nsec", "1e9", "hi"],
)
def test_waitv_invalid_timespec(kernel: LinuxKernel, sec: int, nsec: int) -> None:
    """``futex2_setup_timeout`` -> ``futex_init_timeout``: an invalid timespec is EINVAL,
    before the entries are read."""
    p = kernel.new_process()
    t = p.new_task()
    to = p.mmap(PAGE_SIZE)
    p.write(to, struct.pack("<qq", sec, nsec))
    w = waitv_array(p, [(0, 1, 0x10)])
    assert t.syscall(SYS_WAITV, w, 1, 0, to, CLOCK_MONOTONIC) == -abi.EINVAL


@pytest.mark.parametrize("clock_id", [ClockId.MONOTONIC, ClockId.REALTIME], ids=lambda c: c.name)
def test_waitv_absolute_timeout(kernel: LinuxKernel, clock: ManualClock, clock_id: ClockId) -> None:
    """Linux futex_waitv(2): the timeout is absolute on ``clockid``; a deadline in the past
    times out at once, but only after the values matched."""
    p = kernel.new_process()
    t = p.new_task()
    (f,) = words(p, 1)
    w = waitv_array(p, [(0, f, U32F | PRIV)])
    past = timespec(p, clock.now(clock_id) - 1)
    assert t.syscall(SYS_WAITV, w, 1, 0, past, int(clock_id)) == -abi.ETIMEDOUT
    p.store_u32(f, 1)
    assert t.syscall(SYS_WAITV, w, 1, 0, past, int(clock_id)) == -abi.EAGAIN
    p.store_u32(f, 0)
    to = timespec(p, clock.now(clock_id) + 3 * SEC)
    pw = blocked(t.syscall_nb(SYS_WAITV, w, 1, 0, to, int(clock_id)))
    clock.advance(3 * SEC - 1)
    assert not pw.done()
    clock.advance(1)
    assert pw.result() == -abi.ETIMEDOUT
    assert queued(p) == 0


def test_waitv_woken_during_setup_returns_the_index(
    kernel: LinuxKernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``futex_wait_multiple_setup``: "Even if something went wrong, if we find out that a
    futex was woken, we don't return error and return this index to userspace" — entry 0
    is woken while entry 1's word is being read, and entry 1 mismatches: the call returns
    0, not EAGAIN."""
    p = kernel.new_process()
    t, waker = p.new_task(), p.new_task()
    f, g = words(p, 2)
    w = waitv_array(p, [(0, f, U32F | PRIV), (0, g, U32F | PRIV)])
    space = p.space
    real_load = space.load_u32
    wake: list[threading.Thread] = []
    results: list[int] = []

    def load(addr: int) -> int:
        if addr == g and not wake:
            th = threading.Thread(
                target=lambda: results.append(waker.syscall(SYS_WAKE, f, ANY, 1, U32F | PRIV))
            )
            wake.append(th)
            th.start()
            pending = t.blocked
            assert pending is not None
            first = pending._request.words[0].waiter  # (the bucket lock of g is held here)
            wait_until(lambda: not first.queued, "the waker dequeued entry 0")
            return 1  # entry 1 no longer matches
        return real_load(addr)

    monkeypatch.setattr(space, "load_u32", load)
    assert t.syscall(SYS_WAITV, w, 2, 0, 0, 0) == 0
    wake[0].join(30)
    assert results == [1]
    assert queued(p) == 0 and t.blocked is None


# -- signals -----------------------------------------------------------------------------------

#: (timed, handler, SA_RESTART, outcome) for futex2 waits: always -ERESTARTSYS.
FUTEX2_RESTART_RULES = [
    (False, True, False, "EINTR"),
    (False, True, True, "restart"),
    (False, False, False, "restart"),
    (True, True, False, "EINTR"),
    (True, True, True, "restart"),
    (True, False, False, "restart"),
]


@pytest.mark.parametrize("nr", [SYS_WAITV, SYS_WAIT], ids=["futex_waitv", "futex_wait"])
@pytest.mark.parametrize(
    ("timed", "handler", "sa_restart", "outcome"),
    FUTEX2_RESTART_RULES,
    ids=restart_rule_ids(FUTEX2_RESTART_RULES),
)
def test_signal_restart_rules(
    kernel: LinuxKernel,
    clock: ManualClock,
    start: StartWait,
    nr: int,
    timed: bool,
    handler: bool,
    sa_restart: bool,
    outcome: str,
) -> None:
    """``futex_wait_multiple`` and ``__futex_wait`` return -ERESTARTSYS with or without a
    timeout (no restart block): EINTR only for a handler without SA_RESTART; otherwise the
    call restarts and keeps its absolute deadline.  Measured on Linux 6.18: a timed
    futex_waitv / futex_wait interrupted by an SA_RESTART handler times out at its deadline
    (a timed legacy FUTEX_WAIT_BITSET returns EINTR there)."""
    p = kernel.new_process()
    t, waker = p.new_task(), p.new_task()
    (f,) = words(p, 1)
    to = timespec(p, in_ns(clock, 5 * SEC)) if timed else 0
    if nr == SYS_WAITV:
        wait = start(t, nr, waitv_array(p, [(0, f, U32F | PRIV)]), 1, 0, to, CLOCK_MONOTONIC)
    else:
        wait = start(t, nr, f, 0, ANY, U32F | PRIV, to, CLOCK_MONOTONIC)
    clock.advance(2 * SEC)
    assert t.interrupt(handler=handler, restart=sa_restart)
    if outcome == "EINTR":
        assert wait.result() == -abi.EINTR
        assert queued(p) == 0 and clock.pending() == []
        return
    assert not wait.done() and queued(p) == 1
    if timed:
        clock.advance(3 * SEC - 1)
        assert not wait.done()
        clock.advance(1)
        assert wait.result() == -abi.ETIMEDOUT
    else:
        assert waker.syscall(SYS_WAKE, f, ANY, 1, U32F | PRIV) == 1
        assert wait.result() == 0
    assert queued(p) == 0 and t.blocked is None


def test_waitv_restart_rechecks_values(kernel: LinuxKernel) -> None:
    """A restarted futex_waitv runs the setup again: a word changed meanwhile -> EAGAIN."""
    p = kernel.new_process()
    t = p.new_task()
    fs = words(p, 3)
    w = waitv_array(p, [(0, f, U32F | PRIV) for f in fs])
    pw = blocked(t.syscall_nb(SYS_WAITV, w, 3, 0, 0, 0))
    assert t.interrupt(handler=False)
    assert not pw.done() and queued(p) == 3
    p.store_u32(fs[2], 1)
    assert t.interrupt(handler=True, restart=True)
    assert pw.result() == -abi.EAGAIN
    assert queued(p) == 0


def test_waitv_task_exit_ends_the_wait(kernel: LinuxKernel) -> None:
    """A task that exits while in futex_waitv leaves no waiter queued."""
    p = kernel.new_process()
    t = p.new_task()
    fs = words(p, 5)
    pw = blocked(t.syscall_nb(SYS_WAITV, waitv_array(p, [(0, f, U32F | PRIV) for f in fs]), 5))
    t.exit()
    assert pw.result() == -abi.EINTR
    assert queued(p) == 0
