"""futex_waitv (449) and the futex2 calls futex_wake / futex_wait / futex_requeue (454-456).

Each test names its source: an LTP case (``testcases/kernel/syscalls/futex/futex_waitv0*``),
the man page ("Linux futex_waitv(2)"), or the kernel function whose behaviour it pins
(``kernel/futex/syscalls.c``, ``waitwake.c``, ``core.c``, ``requeue.c``).  Facts beyond the
sources (orders of checks, FUTEX2_NUMA, the SA_RESTART rule of timed futex2 waits) were
measured on the host kernel (Linux 6.18) and are checked against it at the end of this
file: a table of argument sets and a Hypothesis search, each call made on the host and on
the emulator with the same memory at the same addresses.

Blocking tests run a task either on a real thread (``threads``) or cooperatively through
:class:`PendingWait` (``cooperative``); time is the :class:`ManualClock`'s.
"""

from __future__ import annotations

import ctypes
import functools
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from futex.kernel import ClockId, ManualClock
from futex.linux import LinuxKernel, PendingWait, Process, Task, abi
from futex.linux.futex2 import FUTEX2_VALID_MASK, FUTEX_NO_NODE
from futex.memory import PAGE_SIZE, PROT_READ
from tests.support import StartWait, Wait, wait_until
from tests.support import hostfutex as _hostfutex

SYS_WAITV = abi.SYS_futex_waitv
SYS_WAKE = abi.SYS_futex_wake
SYS_WAIT = abi.SYS_futex_wait
SYS_REQUEUE = abi.SYS_futex_requeue

U32F = abi.FUTEX2_SIZE_U32  # FUTEX_32
PRIV = abi.FUTEX2_PRIVATE
NUMA = abi.FUTEX2_NUMA
MPOL = abi.FUTEX2_MPOL
ANY = abi.FUTEX_BITSET_MATCH_ANY
CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_TAI = 11
SEC = abi.NSEC_PER_SEC
MS = 1_000_000
U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF
INT_MAX = 0x7FFFFFFF

LEGACY_WAKE_PRIVATE = abi.FUTEX_WAKE | abi.FUTEX_PRIVATE_FLAG

#: private and shared futex2 words
SHARING = pytest.mark.parametrize("sharing", [U32F | PRIV, U32F], ids=["private", "shared"])


# -- helpers -----------------------------------------------------------------------------------


def waitv_array(p: Process, entries: list[tuple[int, int, int]], reserved: int = 0) -> int:
    """``struct futex_waitv[]`` in ``p``'s memory from ``(val, uaddr, flags)`` triples."""
    data = b"".join(struct.pack("<QQII", v, a, f, reserved) for v, a, f in entries)
    a = p.mmap(max(len(data), 1))
    p.write(a, data)
    return a


def timespec(p: Process, ns: int) -> int:
    """An absolute ``struct __kernel_timespec`` in ``p``'s memory."""
    a = p.mmap(PAGE_SIZE)
    p.write(a, struct.pack("<qq", ns // SEC, ns % SEC))
    return a


def in_ns(clock: ManualClock, ns: int, clock_id: ClockId = ClockId.MONOTONIC) -> int:
    return clock.now(clock_id) + ns




@pytest.fixture(params=["cooperative", "threads"])
def start(request: pytest.FixtureRequest, run_blocking: Callable[..., Any]) -> StartWait:
    """``start(task, nr, *args)``: system call ``nr`` blocked on ``task`` (it must block)."""
    mode = str(request.param)

    def begin(task: Task, nr: int, *args: int) -> Wait:
        if mode == "cooperative":
            r = task.syscall_nb(nr, *args)
            assert isinstance(r, PendingWait), f"the call returned {r} instead of blocking"
            assert task.blocked is r
            return Wait(r)
        b = run_blocking(lambda: task.syscall(nr, *args), task)
        pending = task.blocked
        assert pending is not None, f"the call returned {b.result()} instead of blocking"
        return Wait(pending, b)

    return begin


def blocked(r: int | PendingWait) -> PendingWait:
    assert isinstance(r, PendingWait), f"expected the call to block, it returned {r}"
    return r


def queued(p: Process) -> int:
    return p.futex.stats().queued


def words(p: Process, n: int, value: int = 0, stride: int = 4) -> list[int]:
    base = p.mmap(max(n * stride, 1))
    for i in range(n):
        p.store_u32(base + i * stride, value)
    return [base + i * stride for i in range(n)]


# -- LTP futex_waitv01 -------------------------------------------------------------------------


@pytest.fixture
def ltp01(kernel: LinuxKernel, clock: ManualClock) -> tuple[Process, Task, int, int]:
    """LTP futex_waitv01's setup: one private futex holding 0 and a timeout 1 s ahead on
    CLOCK_MONOTONIC."""
    p = kernel.new_process()
    t = p.new_task()
    (f,) = words(p, 1)
    to = timespec(p, in_ns(clock, SEC))
    return p, t, f, to


def test_futex_waitv01_invalid_flags(ltp01: tuple[Process, Task, int, int]) -> None:
    """LTP futex_waitv01 test_invalid_flags: a waiter without FUTEX_32 -> EINVAL."""
    p, t, f, to = ltp01
    w = waitv_array(p, [(0, f, abi.FUTEX_PRIVATE_FLAG)])
    assert t.syscall(SYS_WAITV, w, 1, 0, to, CLOCK_MONOTONIC) == -abi.EINVAL


def test_futex_waitv01_unaligned_address(ltp01: tuple[Process, Task, int, int]) -> None:
    """LTP futex_waitv01 test_unaligned_address: uaddr 1 -> EINVAL."""
    p, t, _f, to = ltp01
    w = waitv_array(p, [(0, 1, U32F | PRIV)])
    assert t.syscall(SYS_WAITV, w, 1, 0, to, CLOCK_MONOTONIC) == -abi.EINVAL


def test_futex_waitv01_null_address(ltp01: tuple[Process, Task, int, int]) -> None:
    """LTP futex_waitv01 test_null_address: uaddr NULL -> EFAULT."""
    p, t, _f, to = ltp01
    w = waitv_array(p, [(0, 0, U32F | PRIV)])
    assert t.syscall(SYS_WAITV, w, 1, 0, to, CLOCK_MONOTONIC) == -abi.EFAULT


def test_futex_waitv01_null_waiters(ltp01: tuple[Process, Task, int, int]) -> None:
    """LTP futex_waitv01 test_null_waiters: waiters NULL -> EINVAL."""
    _p, t, _f, to = ltp01
    assert t.syscall(SYS_WAITV, 0, 1, 0, to, CLOCK_MONOTONIC) == -abi.EINVAL


def test_futex_waitv01_invalid_clockid(ltp01: tuple[Process, Task, int, int]) -> None:
    """LTP futex_waitv01 test_invalid_clockid: CLOCK_TAI -> EINVAL."""
    p, t, f, to = ltp01
    w = waitv_array(p, [(0, f, U32F | PRIV)])
    assert t.syscall(SYS_WAITV, w, 1, 0, to, CLOCK_TAI) == -abi.EINVAL


@pytest.mark.parametrize("nr", [129, 0])
def test_futex_waitv01_invalid_nr_futexes(ltp01: tuple[Process, Task, int, int], nr: int) -> None:
    """LTP futex_waitv01 test_invalid_nr_futexes: nr_futexes 129 and 0 (valid: 1..128), on
    CLOCK_REALTIME -> EINVAL."""
    p, t, f, to = ltp01
    w = waitv_array(p, [(0, f, U32F | PRIV)] * 129)
    assert t.syscall(SYS_WAITV, w, nr, 0, to, CLOCK_REALTIME) == -abi.EINVAL


def test_futex_waitv01_value_mismatch(ltp01: tuple[Process, Task, int, int]) -> None:
    """LTP futex_waitv01 (newer): a waiter whose val differs from the word -> EAGAIN."""
    p, t, f, to = ltp01
    w = waitv_array(p, [(1, f, U32F | PRIV)])
    assert t.syscall(SYS_WAITV, w, 1, 0, to, CLOCK_MONOTONIC) == -abi.EAGAIN
    assert queued(p) == 0


def test_futex_waitv01_realtime_timeout(
    ltp01: tuple[Process, Task, int, int], clock: ManualClock
) -> None:
    """LTP futex_waitv01 (newer): an absolute CLOCK_REALTIME timeout now + 10 ms ->
    ETIMEDOUT, at the deadline and not before."""
    p, t, f, _to = ltp01
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
    ids=[
        f"{'timed' if a else 'untimed'}-{'handler' if b else 'nohandler'}"
        f"{'-SA_RESTART' if c else ''}"
        for a, b, c, _ in FUTEX2_RESTART_RULES
    ],
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


# -- futex_wake --------------------------------------------------------------------------------


@SHARING
def test_futex_wake_nr_zero_wakes_none(kernel: LinuxKernel, start: StartWait, sharing: int) -> None:
    """``sys_futex_wake`` passes FLAGS_STRICT: nr 0 wakes nobody (legacy FUTEX_WAKE would
    wake one); a negative nr still wakes one (``if (++ret >= nr_wake)``)."""
    p = kernel.new_process()
    t1, t2, waker = p.new_task(), p.new_task(), p.new_task()
    f = p.mmap(PAGE_SIZE, shared=not sharing & PRIV)
    w1 = start(t1, SYS_WAIT, f, 0, ANY, sharing, 0, 0)
    w2 = start(t2, SYS_WAIT, f, 0, ANY, sharing, 0, 0)
    assert waker.syscall(SYS_WAKE, f, ANY, 0, sharing) == 0
    assert not w1.done() and not w2.done()
    assert waker.syscall(SYS_WAKE, f, ANY, -1, sharing) == 1
    assert w1.result() == 0 and not w2.done()
    assert waker.syscall(SYS_WAKE, f, ANY, INT_MAX, sharing) == 1
    assert w2.result() == 0
    assert waker.syscall(SYS_WAKE, f, ANY, 1, sharing) == 0


def test_futex_wake_mask_selects_waiters(kernel: LinuxKernel) -> None:
    """futex2 futex_wake is WAKE_BITSET: only waiters whose mask meets ``mask`` wake."""
    p = kernel.new_process()
    ts = [p.new_task() for _ in range(3)]
    waker = p.new_task()
    (f,) = words(p, 1)
    pws = [
        blocked(t.syscall_nb(SYS_WAIT, f, 0, m, U32F | PRIV, 0, 0))
        for t, m in zip(ts, (1, 2, 3), strict=True)
    ]
    assert waker.syscall(SYS_WAKE, f, 2, INT_MAX, U32F | PRIV) == 2
    assert [pw.done() for pw in pws] == [False, True, True]
    assert waker.syscall(SYS_WAKE, f, 1, 1, U32F | PRIV) == 1
    assert pws[0].result() == 0


def test_futex_wake_validation(kernel: LinuxKernel) -> None:
    """``sys_futex_wake``: flags (unknown bits, size != U32) EINVAL; mask wider than the
    size EINVAL; mask 0 EINVAL (``futex_wake``, before the key); then the key; nr 0 returns
    0 only after the key was taken."""
    p = kernel.new_process()
    t = p.new_task()
    (f,) = words(p, 1)
    hole = p.mmap(PAGE_SIZE)
    p.munmap(hole, PAGE_SIZE)
    assert t.syscall(SYS_WAKE, f, ANY, 1, U32F | PRIV) == 0
    assert t.syscall(SYS_WAKE, f, ANY, 1, U32F | 0x10) == -abi.EINVAL
    assert t.syscall(SYS_WAKE, f, ANY, 1, abi.FUTEX2_SIZE_U64 | PRIV) == -abi.EINVAL
    assert t.syscall(SYS_WAKE, f, ANY, 1, (1 << 32) | U32F | PRIV) == 0  # unsigned int
    assert t.syscall(SYS_WAKE, f, 1 << 32, 1, U32F | PRIV) == -abi.EINVAL
    assert t.syscall(SYS_WAKE, f, 0, 1, U32F | PRIV) == -abi.EINVAL
    assert t.syscall(SYS_WAKE, 1, 0, 0, U32F | PRIV) == -abi.EINVAL
    assert t.syscall(SYS_WAKE, f + 2, ANY, 0, U32F | PRIV) == -abi.EINVAL
    assert t.syscall(SYS_WAKE, hole, ANY, 0, U32F) == -abi.EFAULT
    assert t.syscall(SYS_WAKE, hole, ANY, 0, U32F | PRIV) == 0  # a private key needs no page


# -- futex_wait --------------------------------------------------------------------------------


@SHARING
def test_futex_wait_woken_by_legacy_wake_bitset(
    kernel: LinuxKernel, start: StartWait, sharing: int
) -> None:
    """futex2 futex_wait is FUTEX_WAIT_BITSET: legacy WAKE_BITSET with a mask that meets the
    waiter's wakes it (returns 0), one that does not, does not."""
    p = kernel.new_process()
    t, waker = p.new_task(), p.new_task()
    f = p.mmap(PAGE_SIZE, shared=not sharing & PRIV)
    wait = start(t, SYS_WAIT, f, 0, 0b0110, sharing, 0, 0)
    op = abi.FUTEX_WAKE_BITSET | (abi.FUTEX_PRIVATE_FLAG if sharing & PRIV else 0)
    assert waker.syscall(abi.SYS_futex, f, op, 1, 0, 0, 0b1001) == 0
    assert not wait.done()
    assert waker.syscall(abi.SYS_futex, f, op, 1, 0, 0, 0b0100) == 1
    assert wait.result() == 0


def test_futex_wait_validation(kernel: LinuxKernel, clock: ManualClock) -> None:
    """``sys_futex_wait``: flags, then val and mask widths, then the timeout (clock, then
    pointer, then timespec), then mask 0 (``__futex_wait``), then the key and the value."""
    p = kernel.new_process()
    t = p.new_task()
    (f,) = words(p, 1)
    past = timespec(p, 0)
    hole = p.mmap(PAGE_SIZE)
    p.munmap(hole, PAGE_SIZE)
    assert t.syscall(SYS_WAIT, f, 0, ANY, U32F | PRIV, past, CLOCK_MONOTONIC) == -abi.ETIMEDOUT
    assert t.syscall(SYS_WAIT, f, 1, ANY, U32F | PRIV, past, CLOCK_MONOTONIC) == -abi.EAGAIN
    assert t.syscall(SYS_WAIT, f, 1 << 32, 0, U32F | 0x10, hole, 7) == -abi.EINVAL
    assert t.syscall(SYS_WAIT, f, 1 << 32, ANY, U32F | PRIV, hole, 7) == -abi.EINVAL
    assert t.syscall(SYS_WAIT, f, 0, 1 << 32, U32F | PRIV, hole, 7) == -abi.EINVAL
    assert t.syscall(SYS_WAIT, f, 0, 0, U32F | PRIV, hole, CLOCK_MONOTONIC) == -abi.EFAULT
    assert t.syscall(SYS_WAIT, f, 0, 0, U32F | PRIV, past, 7) == -abi.EINVAL
    assert t.syscall(SYS_WAIT, 1, 0, 0, U32F | PRIV, past, CLOCK_MONOTONIC) == -abi.EINVAL
    assert t.syscall(SYS_WAIT, f + 1, 0, ANY, U32F | PRIV, past, 0) == -abi.EINVAL
    assert t.syscall(SYS_WAIT, hole, 0, ANY, U32F | PRIV, past, 0) == -abi.EFAULT
    assert t.syscall(SYS_WAIT, hole, 0, ANY, U32F, past, 0) == -abi.EFAULT
    p.store_u32(f, 1)
    assert t.syscall(SYS_WAIT, f, 0, ANY, U32F | PRIV, 0, 7) == -abi.EAGAIN  # clock unused


@pytest.mark.parametrize("clock_id", [ClockId.MONOTONIC, ClockId.REALTIME], ids=lambda c: c.name)
def test_futex_wait_absolute_timeout(
    kernel: LinuxKernel, clock: ManualClock, clock_id: ClockId
) -> None:
    """``sys_futex_wait``: WAIT_BITSET with an absolute timeout on ``clockid``; a realtime
    deadline follows clock_settime."""
    p = kernel.new_process()
    t = p.new_task()
    (f,) = words(p, 1)
    to = timespec(p, clock.now(clock_id) + 2 * SEC)
    pw = blocked(t.syscall_nb(SYS_WAIT, f, 0, ANY, U32F | PRIV, to, int(clock_id)))
    if clock_id == ClockId.REALTIME:
        clock.set_realtime(clock.now(ClockId.REALTIME) + 2 * SEC)
    else:
        clock.advance(2 * SEC - 1)
        assert not pw.done()
        clock.advance(1)
    assert pw.result() == -abi.ETIMEDOUT
    assert queued(p) == 0


# -- futex_requeue -----------------------------------------------------------------------------


@SHARING
def test_futex_requeue_returns_woken_plus_requeued(
    kernel: LinuxKernel, start: StartWait, sharing: int
) -> None:
    """``sys_futex_requeue`` -> ``futex_requeue`` (CMP_REQUEUE with cmpval =
    waiters[0].val): wakes nr_wake, moves up to nr_requeue, returns the sum; the moved
    waiters are then woken through the second futex."""
    p = kernel.new_process()
    tasks = [p.new_task() for _ in range(5)]
    waker = p.new_task()
    f = p.mmap(PAGE_SIZE, shared=not sharing & PRIV)
    g = f + 64
    waits = [start(t, SYS_WAIT, f, 0, ANY, sharing, 0, 0) for t in tasks]
    rq = waitv_array(p, [(0, f, sharing), (0, g, sharing)])
    assert waker.syscall(SYS_REQUEUE, rq, 0, 1, 3) == 4
    assert [w.done() for w in waits] == [True, False, False, False, False]
    assert waker.syscall(SYS_WAKE, g, ANY, INT_MAX, sharing) == 3
    assert [w.done() for w in waits] == [True, True, True, True, False]
    assert waker.syscall(SYS_WAKE, f, ANY, INT_MAX, sharing) == 1
    assert all(w.result() == 0 for w in waits)


def test_futex_requeue_compare_and_counts(kernel: LinuxKernel) -> None:
    """``futex_requeue``: cmpval is waiters[0].val (mismatch EAGAIN, nothing moves);
    waiters[1].val is validated but unused; negative counts EINVAL; nr_wake 0 and
    nr_requeue 0 is a valid no-op."""
    p = kernel.new_process()
    t, waker = p.new_task(), p.new_task()
    f, g = words(p, 2)
    pw = blocked(t.syscall_nb(SYS_WAIT, f, 0, ANY, U32F | PRIV, 0, 0))
    assert (
        waker.syscall(
            SYS_REQUEUE, waitv_array(p, [(1, f, U32F | PRIV), (0, g, U32F | PRIV)]), 0, 1, 1
        )
        == -abi.EAGAIN
    )
    rq = waitv_array(p, [(0, f, U32F | PRIV), (U32, g, U32F | PRIV)])
    assert waker.syscall(SYS_REQUEUE, rq, 0, -1, 1) == -abi.EINVAL
    assert waker.syscall(SYS_REQUEUE, rq, 0, 1, -1) == -abi.EINVAL
    assert waker.syscall(SYS_REQUEUE, rq, 0, 0, 0) == 0
    wide = waitv_array(p, [(0, f, U32F | PRIV), (1 << 32, g, U32F | PRIV)])
    assert waker.syscall(SYS_REQUEUE, wide, 0, 1, 1) == -abi.EINVAL
    assert not pw.done()
    assert waker.syscall(SYS_REQUEUE, rq, 0, 0, 1) == 1
    assert waker.syscall(SYS_WAKE, g, ANY, 1, U32F | PRIV) == 1
    assert pw.result() == 0


def test_futex_requeue_arguments_and_flags(kernel: LinuxKernel) -> None:
    """``sys_futex_requeue``: flags != 0 and waiters NULL are EINVAL; both entries are
    parsed (EFAULT for an unreadable one); their flags must be identical (Linux 6.18:
    private vs shared, or NUMA/MPOL on one side only, is EINVAL — measured) and that is
    checked before the counts and the keys."""
    p = kernel.new_process()
    t = p.new_task()
    f, g = words(p, 2)
    hole = p.mmap(PAGE_SIZE)
    p.munmap(hole, PAGE_SIZE)
    ok = waitv_array(p, [(0, f, U32F | PRIV), (0, g, U32F | PRIV)])
    assert t.syscall(SYS_REQUEUE, ok, 1, 1, 1) == -abi.EINVAL
    assert t.syscall(SYS_REQUEUE, ok, 1 << 32, 1, 1) == 0  # unsigned int flags
    assert t.syscall(SYS_REQUEUE, 0, 0, 1, 1) == -abi.EINVAL
    assert t.syscall(SYS_REQUEUE, hole, 0, 1, 1) == -abi.EFAULT
    for f1, f2 in [(U32F | PRIV, U32F), (U32F | PRIV | NUMA, U32F | PRIV), (U32F, U32F | MPOL)]:
        mixed = waitv_array(p, [(1, f, f1), (0, g, f2)])
        assert t.syscall(SYS_REQUEUE, mixed, 0, -1, 1) == -abi.EINVAL
        assert t.syscall(SYS_REQUEUE, mixed, 0, 1, 1) == -abi.EINVAL
    mixed_fault = waitv_array(p, [(0, hole, U32F), (0, g, U32F | PRIV)])
    assert t.syscall(SYS_REQUEUE, mixed_fault, 0, 1, 1) == -abi.EINVAL
    assert (
        t.syscall(SYS_REQUEUE, waitv_array(p, [(0, hole, U32F), (0, g, U32F)]), 0, 1, 1)
        == -abi.EFAULT
    )
    assert (
        t.syscall(SYS_REQUEUE, waitv_array(p, [(0, f, U32F), (0, g + 2, U32F)]), 0, 1, 1)
        == -abi.EINVAL
    )
    # key 2 is taken before the compare
    assert (
        t.syscall(
            SYS_REQUEUE, waitv_array(p, [(1, f, U32F | PRIV), (0, g + 1, U32F | PRIV)]), 0, 1, 1
        )
        == -abi.EINVAL
    )
    # a private key needs no page, but the compare reads the word
    assert (
        t.syscall(
            SYS_REQUEUE, waitv_array(p, [(0, hole, U32F | PRIV), (0, g, U32F | PRIV)]), 0, 1, 1
        )
        == -abi.EFAULT
    )
    assert (
        t.syscall(
            SYS_REQUEUE, waitv_array(p, [(0, f, U32F | PRIV), (0, hole, U32F | PRIV)]), 0, 1, 1
        )
        == 0
    )


def test_futex_requeue_moves_a_waitv_entry(kernel: LinuxKernel) -> None:
    """A futex_waitv entry is an ordinary futex_q: futex_requeue moves it to the second
    futex, and a wake there returns the entry's index."""
    p = kernel.new_process()
    t, waker = p.new_task(), p.new_task()
    a, b, target = words(p, 3)
    pw = blocked(
        t.syscall_nb(SYS_WAITV, waitv_array(p, [(0, a, U32F | PRIV), (0, b, U32F | PRIV)]), 2)
    )
    rq = waitv_array(p, [(0, b, U32F | PRIV), (0, target, U32F | PRIV)])
    assert waker.syscall(SYS_REQUEUE, rq, 0, 0, 1) == 1
    assert not pw.done()
    assert waker.syscall(SYS_WAKE, b, ANY, 1, U32F | PRIV) == 0
    assert waker.syscall(SYS_WAKE, target, ANY, 1, U32F | PRIV) == 1
    assert pw.result() == 1
    assert queued(p) == 0


# -- FUTEX2_NUMA / FUTEX2_MPOL -----------------------------------------------------------------


def test_numa_node_word(kernel: LinuxKernel) -> None:
    """``get_futex_key`` with FLAGS_NUMA (Linux 6.16+, measured on 6.18 with one node): the
    word is u32[2], 8-byte aligned; FUTEX_NO_NODE in the node word is replaced by the local
    node (0) before anything else happens, even for a wake or a mismatching wait; any
    other node but 0 is EINVAL; the node word must be readable, and writable when it is
    rewritten."""
    p = kernel.new_process()
    t = p.new_task()
    f = p.mmap(PAGE_SIZE)
    p.store_u32(f + 4, FUTEX_NO_NODE)
    assert t.syscall(SYS_WAKE, f, ANY, 1, U32F | PRIV | NUMA) == 0
    assert p.load_u32(f + 4) == 0
    p.store_u32(f + 4, FUTEX_NO_NODE)
    assert t.syscall(SYS_WAIT, f, 1, ANY, U32F | PRIV | NUMA, 0, 0) == -abi.EAGAIN
    assert p.load_u32(f + 4) == 0
    assert t.syscall(SYS_WAKE, f + 4, ANY, 1, U32F | PRIV | NUMA) == -abi.EINVAL
    for node in (1, 64, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE):
        p.store_u32(f + 4, node)
        assert t.syscall(SYS_WAKE, f, ANY, 1, U32F | PRIV | NUMA) == -abi.EINVAL
        assert t.syscall(SYS_WAKE, f, ANY, 1, U32F | PRIV) == 0
        assert p.load_u32(f + 4) == node
    ro = p.mmap(PAGE_SIZE)
    p.store_u32(ro + 4, FUTEX_NO_NODE)
    p.store_u32(ro + 12, 0)
    p.mprotect(ro, PAGE_SIZE, PROT_READ)
    assert t.syscall(SYS_WAKE, ro, ANY, 1, U32F | PRIV | NUMA) == -abi.EFAULT
    assert t.syscall(SYS_WAKE, ro + 8, ANY, 1, U32F | PRIV | NUMA) == 0
    hole = p.mmap(PAGE_SIZE)
    p.munmap(hole, PAGE_SIZE)
    assert t.syscall(SYS_WAKE, hole, ANY, 1, U32F | PRIV | NUMA) == -abi.EFAULT
    assert t.syscall(SYS_WAKE, hole, ANY, 1, U32F | PRIV) == 0
    assert t.syscall(SYS_WAKE, f, ANY, 1, U32F | PRIV | MPOL) == 0


@pytest.mark.parametrize(
    ("wait_flags", "wake_flags", "meet"),
    [
        (U32F | PRIV | NUMA, U32F | PRIV, False),
        (U32F | PRIV, U32F | PRIV | NUMA, False),
        (U32F | PRIV | NUMA, U32F | PRIV | NUMA, True),
        (U32F | PRIV | NUMA, U32F | PRIV | NUMA | MPOL, True),
        (U32F | PRIV | MPOL, U32F | PRIV, True),
        (U32F | NUMA, U32F, True),
        (U32F, U32F | NUMA, True),
    ],
)
def test_numa_private_futexes_are_hashed_apart(
    kernel: LinuxKernel, wait_flags: int, wake_flags: int, meet: bool
) -> None:
    """``__futex_hash`` (6.16+): a FUTEX2_NUMA key goes to its node's global table, while a
    private key without a node goes to the process's private hash (allocated at the first
    thread).  Measured on 6.18 with two threads: a private NUMA waiter is not woken by a
    private non-NUMA wake nor the other way round; shared ones meet (one node); MPOL
    without a memory policy changes nothing."""
    p = kernel.new_process()
    t, waker = p.new_task(), p.new_task()
    f = p.mmap(PAGE_SIZE, shared=not wait_flags & PRIV)
    p.store_u32(f + 4, 0)
    pw = blocked(t.syscall_nb(SYS_WAIT, f, 0, ANY, wait_flags, 0, 0))
    assert waker.syscall(SYS_WAKE, f, ANY, 1, wake_flags) == int(meet)
    assert pw.done() == meet
    if not meet:
        legacy = abi.FUTEX_WAKE | abi.FUTEX_PRIVATE_FLAG
        woken = waker.syscall(abi.SYS_futex, f, legacy, 1, 0, 0, 0)
        assert woken == int(not wait_flags & NUMA)
        if not woken:
            assert waker.syscall(SYS_WAKE, f, ANY, 1, wait_flags) == 1
    assert pw.result() == 0


def test_numa_waitv_entry(kernel: LinuxKernel, clock: ManualClock) -> None:
    """futex_waitv entries take FUTEX2_NUMA too: keys (and node writes) for every entry
    come before the first value check."""
    p = kernel.new_process()
    t = p.new_task()
    f = p.mmap(PAGE_SIZE)
    p.store_u32(f + 4, FUTEX_NO_NODE)
    p.store_u32(f + 12, FUTEX_NO_NODE)
    w = waitv_array(p, [(1, f, U32F | PRIV | NUMA), (0, f + 8, U32F | PRIV | NUMA)])
    assert t.syscall(SYS_WAITV, w, 2, 0, 0, 0) == -abi.EAGAIN
    assert p.load_u32(f + 4) == 0 and p.load_u32(f + 12) == 0


# -- register types ----------------------------------------------------------------------------


@pytest.mark.parametrize("nr", [SYS_WAITV, SYS_WAKE, SYS_WAIT, SYS_REQUEUE])
def test_registers_must_be_ints(kernel: LinuxKernel, nr: int) -> None:
    """Emulator contract (as ``sys_futex``): a register that is not an int is a TypeError
    naming the register, not a wrong errno."""
    t = kernel.new_process().new_task()
    with pytest.raises(TypeError, match="register"):
        t.syscall(nr, 0, "1")  # type: ignore[arg-type]


# ==============================================================================================
# Differential checks against the host kernel
# ==============================================================================================

if _hostfutex.available():  # pragma: no branch
    from tests.differential.differential_diff_futex2 import futex2_pointers_safe
    from tests.differential.differential_emulated import Emulated
    from tests.differential.differential_host import WATCHDOG_SECONDS, Watchdog, host_syscall
    from tests.differential.differential_host_layout import HostLayout, host_layout
    from tests.differential.differential_layout import (
        LAYOUT,
        PAGE,
        PAGE_INDEX,
        READABLE_PAGES,
        SLOT,
        timespec_page,
    )
    from tests.differential.differential_steps import At
else:  # pragma: no cover
    LAYOUT = ()
    PAGE = PAGE_SIZE
    PAGE_INDEX = {}
    SLOT = {}

needs_host = pytest.mark.skipif(
    not _hostfutex.available(), reason="needs the host kernel: Linux on x86-64"
)


def _page(name: str) -> int:
    return PAGE_INDEX[name]


@dataclass(frozen=True)
class Cur:
    """An entry value taken when the call is made: the word at the entry's address now (0
    if unreadable), xor ``flip``."""

    flip: int = 0


@dataclass(frozen=True)
class Entry:
    """A ``struct futex_waitv`` written into ARRAY before the call."""

    uaddr: Any  # At | int
    val: int | Cur = Cur()
    flags: int = U32F | PRIV
    reserved: int = 0


@dataclass(frozen=True)
class F2:
    """One futex2 system call; ``args`` may hold :class:`At` addresses and ``CUR`` (the
    word at ``args[0]`` now)."""

    nr: int
    args: tuple[Any, ...]
    entries: tuple[Entry, ...] = ()
    #: the node word of NUMA futexes: stores done before the call
    stores: tuple[tuple[Any, int], ...] = ()

    def __repr__(self) -> str:
        name = {SYS_WAITV: "futex_waitv", SYS_WAKE: "futex_wake", SYS_WAIT: "futex_wait"}.get(
            self.nr, "futex_requeue"
        )
        return f"{name}{self.args!r} entries={self.entries!r} stores={self.stores!r}"


CUR = "CUR"
#: Where the entries are written (room for 128 up to the end of the page).
ARRAY_OFF = 0x400


def array() -> Any:
    return At(_page("PRIV_RW"), ARRAY_OFF)


def ts_slot(name: str) -> Any:
    return At(_page("TIMESPEC"), 16 * SLOT[name])


def _peek_u32(emu: Any, addr: int) -> int:
    """The emulated word at ``addr`` as the harness sees it: a peek, which (unlike the
    kernel's reads) leaves the page's presence alone, as the host harness never reads
    execute-only pages."""
    if addr & 3:
        raise ValueError(f"misaligned {addr:#x}")
    value: int = struct.unpack("<I", emu.process.peek(addr, 4))[0]
    return value


class Futex2Differ:
    """Runs one futex2 call on the host and on a fresh emulated kernel over the same layout;
    reports the first disagreement as a string."""

    def __init__(self, layout: HostLayout, watchdog: Watchdog) -> None:
        self.layout = layout
        self.watchdog = watchdog
        self.calls = 0
        self.skipped = 0

    def resolve(self, a: Any) -> int:
        if isinstance(a, At):
            return self.layout.addr(a.page, a.off) & U64
        return int(a) & U64

    def run(self, call: F2) -> str | None:
        mono, rt = time.monotonic_ns(), time.time_ns()
        timespecs = timespec_page(mono, rt)
        layout = self.layout
        layout.reset(timespecs)
        emu = Emulated(layout.base, timespecs, mono, rt)
        for where, value in call.stores:
            a = self.resolve(where)
            layout.store(a, value)
            emu.process.store_u32(a, value)
        if call.entries:
            data = b""
            for e in call.entries:
                uaddr = self.resolve(e.uaddr)
                val = e.val
                if isinstance(val, Cur):
                    try:
                        val = _peek_u32(emu, uaddr) ^ val.flip
                    except Exception:
                        val = val.flip
                data += struct.pack("<QQII", val & U64, uaddr, e.flags & U32, e.reserved & U32)
            base = self.resolve(array())
            ctypes.memmove(base, data, len(data))
            emu.process.write(base, data)
        args = []
        for a in call.args:
            if a == CUR:
                try:
                    a = _peek_u32(emu, args[0])
                except Exception:
                    a = 0
            args.append(self.resolve(a))
        if not self._safe(emu, call.nr, args):
            self.skipped += 1
            return None
        self.calls += 1
        try:
            r = emu.task.syscall_nb(call.nr, *args)
        except Exception as exc:  # pragma: no cover - a failure report
            return f"{call!r}: the emulator raised {exc!r}"
        if isinstance(r, PendingWait):
            bad = self._blocked(emu, call, args, r)
        else:
            got = self._host(call.nr, args)
            bad = None if got == r else f"{call!r}: host {got}, emulator {r}"
        if bad is None:
            bad = self._compare_memory(emu, call)
        if bad is None:
            emu.process.futex.check_invariants()
            if emu.process.futex.stats().queued or emu.task.blocked is not None:
                bad = f"{call!r}: waiters left queued"
        return bad

    def _host(self, nr: int, args: list[int]) -> int | str:
        guard = nr in (SYS_WAITV, SYS_WAIT)
        if guard:
            self.watchdog.arm(WATCHDOG_SECONDS)
        try:
            r = host_syscall(nr, *args)
        finally:
            fired = self.watchdog.disarm() if guard else False
        return "BLOCKED" if fired and r == -abi.EINTR else r

    def _blocked(
        self, emu: Emulated, call: F2, args: list[int], pending: PendingWait
    ) -> str | None:
        # The host would block too: it must get as far with an already expired timeout.
        probe = list(args)
        if call.nr == SYS_WAITV:
            probe[3:5] = [self.layout.expired, CLOCK_MONOTONIC]
        else:
            probe[4:6] = [self.layout.expired, CLOCK_MONOTONIC]
        got = self._host(call.nr, probe)
        deadline = pending.deadline
        need = None if deadline is None else deadline[1] - emu.clock.now(ClockId(deadline[0]))
        if need is not None and 0 <= need <= 10 * SEC:
            emu.clock.advance(need)
            want = -abi.ETIMEDOUT
        else:
            emu.task.interrupt(handler=True)
            want = -abi.EINTR
        if got != -abi.ETIMEDOUT:
            return f"{call!r}: the emulator blocks, the host with an expired timeout answers {got}"
        if not pending.done() or pending.result() != want:
            return f"{call!r}: ending the emulated wait gave {pending!r}, expected {want}"
        return None

    def _safe(self, emu: Emulated, nr: int, args: list[int]) -> bool:
        return futex2_pointers_safe(self.layout, emu, nr, args)

    def _compare_memory(self, emu: Emulated, call: F2) -> str | None:
        for page in READABLE_PAGES:
            want = self.layout.read_page(page)
            got = emu.process.read(self.layout.addr(page), PAGE)
            if want != got:
                offs = [o for o in range(0, PAGE, 4) if want[o : o + 4] != got[o : o + 4]]
                return f"{call!r}: memory of {LAYOUT[page].name} differs at {offs[:4]}"
        return None


@pytest.fixture(scope="module")
def differ() -> Iterator[Futex2Differ]:
    if not _hostfutex.available():  # pragma: no cover
        pytest.skip("needs the host kernel: Linux on x86-64")
    with host_layout() as (layout, watchdog):
        yield Futex2Differ(layout, watchdog)


def _cases() -> list[Any]:
    if not _hostfutex.available():  # pragma: no cover
        return []
    P = _page
    f = At(P("PRIV_RW"), 0)
    g = At(P("PRIV_RW"), 8)
    sh = At(P("SHARED_RW"), 0)
    hole = At(P("HOLE"), 0)
    ro = At(P("PRIV_RO"), 16)
    exp = ts_slot("zero")
    fut = ts_slot("mono_future")
    rtf = ts_slot("rt_future")
    A = array()
    pv = U32F | PRIV
    no_node = ((At(P("PRIV_RW"), 4), FUTEX_NO_NODE), (At(P("PRIV_RW"), 12), FUTEX_NO_NODE))
    cases: dict[str, F2] = {
        # futex_waitv
        "waitv-ok-expired": F2(SYS_WAITV, (A, 2, 0, exp, 1), (Entry(f), Entry(g))),
        "waitv-blocks": F2(SYS_WAITV, (A, 2, 0, fut, 1), (Entry(f), Entry(sh, flags=U32F))),
        "waitv-blocks-forever": F2(SYS_WAITV, (A, 1, 0, 0, 99), (Entry(f),)),
        "waitv-blocks-realtime": F2(SYS_WAITV, (A, 1, 0, rtf, 0), (Entry(f),)),
        "waitv-128": F2(
            SYS_WAITV,
            (A, 128, 0, exp, 1),
            tuple(Entry(At(P("PRIV_RW"), 4 * (i % 200))) for i in range(128)),
        ),
        "waitv-129": F2(SYS_WAITV, (A, 129, 0, exp, 1), (Entry(f),)),
        "waitv-nr0": F2(SYS_WAITV, (A, 0, 0, exp, 1), (Entry(f),)),
        "waitv-nr-hi-bits": F2(SYS_WAITV, (A, (1 << 32) | 1, 0, exp, 1), (Entry(f),)),
        "waitv-flags": F2(SYS_WAITV, (A, 1, 1, exp, 1), (Entry(f),)),
        "waitv-flags-hi-bits": F2(SYS_WAITV, (A, 1, 1 << 32, exp, 1), (Entry(f),)),
        "waitv-null": F2(SYS_WAITV, (0, 1, 0, exp, 1)),
        "waitv-unmapped-array": F2(SYS_WAITV, (hole, 1, 0, exp, 1)),
        "waitv-straddling-array": F2(SYS_WAITV, (At(P("PRIV_RO"), PAGE - 12), 1, 0, exp, 1)),
        "waitv-clock-tai": F2(SYS_WAITV, (A, 1, 0, exp, CLOCK_TAI), (Entry(f),)),
        "waitv-clock-neg": F2(SYS_WAITV, (A, 1, 0, exp, -1), (Entry(f),)),
        "waitv-clock-hi-bits": F2(SYS_WAITV, (A, 1, 0, exp, (1 << 32) | 1), (Entry(f),)),
        "waitv-clock-tai-no-timeout": F2(SYS_WAITV, (A, 1, 0, 0, CLOCK_TAI), (Entry(f, Cur(1)),)),
        "waitv-bad-ts-ptr": F2(SYS_WAITV, (A, 1, 0, hole, 1), (Entry(f),)),
        "waitv-bad-ts-ptr-bad-clock": F2(SYS_WAITV, (A, 1, 0, hole, 5), (Entry(f),)),
        "waitv-ts-neg-nsec": F2(SYS_WAITV, (A, 1, 0, ts_slot("neg_nsec"), 1), (Entry(f),)),
        "waitv-ts-nsec-hi": F2(SYS_WAITV, (A, 1, 0, ts_slot("nsec_hi_bits"), 0), (Entry(f),)),
        "waitv-ts-straddle": F2(SYS_WAITV, (A, 1, 0, At(P("TIMESPEC"), PAGE - 8), 1), (Entry(f),)),
        "waitv-ts-bad-and-bad-entry": F2(
            SYS_WAITV, (A, 1, 0, ts_slot("neg_sec"), 1), (Entry(f, flags=0x10),)
        ),
        "waitv-no-futex32": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(f, flags=PRIV),)),
        "waitv-size-u64": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(f, flags=abi.FUTEX2_SIZE_U64),)),
        "waitv-reserved": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(f, reserved=1),)),
        "waitv-val-wide": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(f, 1 << 32),)),
        "waitv-uaddr-1": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(1),)),
        "waitv-uaddr-null": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(0),)),
        "waitv-uaddr-null-shared": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(0, flags=U32F),)),
        "waitv-mismatch": F2(SYS_WAITV, (A, 2, 0, exp, 1), (Entry(f), Entry(g, Cur(1)))),
        "waitv-parse-before-keys": F2(
            SYS_WAITV, (A, 2, 0, 0, 0), (Entry(hole, flags=U32F), Entry(g, flags=0x92))
        ),
        "waitv-keys-before-values": F2(
            SYS_WAITV, (A, 2, 0, 0, 0), (Entry(f, Cur(1)), Entry(At(P("PRIV_RW"), 9)))
        ),
        "waitv-keys-before-values-efault": F2(
            SYS_WAITV, (A, 2, 0, 0, 0), (Entry(f, Cur(1)), Entry(hole, flags=U32F))
        ),
        "waitv-value-fault-first": F2(SYS_WAITV, (A, 2, 0, 0, 0), (Entry(hole), Entry(g, Cur(1)))),
        "waitv-mismatch-first": F2(SYS_WAITV, (A, 2, 0, 0, 0), (Entry(f, Cur(1)), Entry(hole))),
        "waitv-shared-ro-anon": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(ro, flags=U32F),)),
        "waitv-numa": F2(
            SYS_WAITV,
            (A, 2, 0, exp, 1),
            (Entry(f, flags=pv | NUMA), Entry(g, flags=pv | NUMA)),
            no_node,
        ),
        "waitv-numa-mismatch-writes-all-nodes": F2(
            SYS_WAITV,
            (A, 2, 0, exp, 1),
            (Entry(f, Cur(1), pv | NUMA), Entry(g, flags=pv | NUMA)),
            no_node,
        ),
        "waitv-numa-misaligned": F2(
            SYS_WAITV, (A, 1, 0, exp, 1), (Entry(At(P("PRIV_RW"), 4), flags=pv | NUMA),)
        ),
        "waitv-mpol": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(f, flags=pv | MPOL),), no_node),
        # futex_wake
        "wake-ok": F2(SYS_WAKE, (f, ANY, 1, pv)),
        "wake-shared": F2(SYS_WAKE, (sh, ANY, 1, U32F)),
        "wake-nr0-bad-addr": F2(SYS_WAKE, (1, ANY, 0, pv)),
        "wake-nr0-hole-shared": F2(SYS_WAKE, (hole, ANY, 0, U32F)),
        "wake-nr0-hole-private": F2(SYS_WAKE, (hole, ANY, 0, pv)),
        "wake-nr-neg": F2(SYS_WAKE, (f, ANY, -1, pv)),
        "wake-mask0": F2(SYS_WAKE, (1, 0, 1, pv)),
        "wake-mask-wide": F2(SYS_WAKE, (f, 1 << 32, 1, pv)),
        "wake-size-u8": F2(SYS_WAKE, (f, ANY, 1, PRIV)),
        "wake-bad-bit": F2(SYS_WAKE, (f, ANY, 1, pv | 0x100)),
        "wake-flags-hi-bits": F2(SYS_WAKE, (f, ANY, 1, (1 << 32) | pv)),
        "wake-numa": F2(SYS_WAKE, (f, ANY, 1, pv | NUMA), (), no_node),
        "wake-numa-shared-file": F2(
            SYS_WAKE,
            (At(P("FILE_SHARED_RW"), 8), ANY, 1, U32F | NUMA),
            (),
            ((At(P("FILE_SHARED_RW"), 12), FUTEX_NO_NODE),),
        ),
        "wake-numa-ro-file": F2(SYS_WAKE, (At(P("FILE_SHARED_RO"), 0), ANY, 1, U32F | NUMA)),
        "wake-numa-misaligned": F2(SYS_WAKE, (At(P("PRIV_RW"), 4), ANY, 1, pv | NUMA)),
        "wake-numa-bad-node": F2(SYS_WAKE, (f, ANY, 1, pv | NUMA), (), ((At(P("PRIV_RW"), 4), 1),)),
        "wake-numa-hole": F2(SYS_WAKE, (hole, ANY, 1, pv | NUMA)),
        "wake-numa-exec": F2(SYS_WAKE, (At(P("EXEC_PRIV"), 0), ANY, 1, pv | NUMA)),
        "wake-mpol-numa": F2(SYS_WAKE, (f, ANY, 1, pv | NUMA | MPOL), (), no_node),
        # futex_wait
        "wait-expired": F2(SYS_WAIT, (f, CUR, ANY, pv, exp, 1)),
        "wait-blocks": F2(SYS_WAIT, (f, CUR, ANY, pv, fut, 1)),
        "wait-blocks-shared-file": F2(SYS_WAIT, (At(P("FILE_SHARED_RW"), 0), CUR, 1, U32F, 0, 0)),
        "wait-mismatch": F2(SYS_WAIT, (f, 0x1234, ANY, pv, exp, 1)),
        "wait-mask0-bad-ts": F2(SYS_WAIT, (f, CUR, 0, pv, hole, 1)),
        "wait-mask0-bad-clock": F2(SYS_WAIT, (f, CUR, 0, pv, exp, 3)),
        "wait-mask0-misaligned": F2(SYS_WAIT, (1, 0, 0, pv, exp, 1)),
        "wait-val-wide": F2(SYS_WAIT, (f, 1 << 32, ANY, pv, hole, 1)),
        "wait-mask-wide": F2(SYS_WAIT, (f, 0, 1 << 32, pv, hole, 1)),
        "wait-clock-no-timeout": F2(SYS_WAIT, (f, 0x1234, ANY, pv, 0, 7)),
        "wait-numa": F2(SYS_WAIT, (f, CUR, ANY, pv | NUMA, exp, 0), (), no_node),
        "wait-numa-mismatch": F2(SYS_WAIT, (f, 0x1234, ANY, pv | NUMA, exp, 0), (), no_node),
        "wait-hole-private": F2(SYS_WAIT, (hole, 0, ANY, pv, exp, 1)),
        # futex_requeue
        "requeue-ok": F2(SYS_REQUEUE, (A, 0, 1, 1), (Entry(f), Entry(g))),
        "requeue-shared": F2(
            SYS_REQUEUE, (A, 0, 1, 1), (Entry(sh, flags=U32F), Entry(sh, flags=U32F))
        ),
        "requeue-mismatch": F2(SYS_REQUEUE, (A, 0, 1, 1), (Entry(f, Cur(1)), Entry(g))),
        "requeue-mixed": F2(SYS_REQUEUE, (A, 0, 1, 1), (Entry(f), Entry(g, flags=U32F))),
        "requeue-mixed-fault": F2(SYS_REQUEUE, (A, 0, 1, 1), (Entry(hole, flags=U32F), Entry(g))),
        "requeue-numa-one-side": F2(
            SYS_REQUEUE, (A, 0, 1, 1), (Entry(f, flags=pv | NUMA), Entry(g)), no_node
        ),
        "requeue-numa": F2(
            SYS_REQUEUE,
            (A, 0, 1, 1),
            (Entry(f, Cur(1), pv | NUMA), Entry(g, flags=pv | NUMA)),
            no_node,
        ),
        "requeue-numa-neg": F2(
            SYS_REQUEUE,
            (A, 0, -1, 1),
            (Entry(f, flags=pv | NUMA), Entry(g, flags=pv | NUMA)),
            no_node,
        ),
        "requeue-flags": F2(SYS_REQUEUE, (A, 1, 1, 1), (Entry(f), Entry(g))),
        "requeue-flags-hi": F2(SYS_REQUEUE, (A, 1 << 32, 1, 1), (Entry(f), Entry(g))),
        "requeue-null": F2(SYS_REQUEUE, (0, 0, 1, 1)),
        "requeue-neg-wake": F2(SYS_REQUEUE, (A, 0, -1, 1), (Entry(f), Entry(g))),
        "requeue-neg-requeue": F2(SYS_REQUEUE, (A, 0, 1, (1 << 32) - 1), (Entry(f), Entry(g))),
        "requeue-count-hi-bits": F2(SYS_REQUEUE, (A, 0, (1 << 32) | 5, 1), (Entry(f), Entry(g))),
        "requeue-val2-wide": F2(SYS_REQUEUE, (A, 0, 1, 1), (Entry(f), Entry(g, 1 << 32))),
        "requeue-key2-misaligned": F2(
            SYS_REQUEUE, (A, 0, 1, 1), (Entry(f, Cur(1)), Entry(At(P("PRIV_RW"), 10)))
        ),
        "requeue-private-hole-compare": F2(SYS_REQUEUE, (A, 0, 1, 1), (Entry(hole), Entry(g))),
        "requeue-private-hole-2": F2(SYS_REQUEUE, (A, 0, 1, 1), (Entry(f), Entry(hole))),
        "requeue-second-entry-unreadable": F2(SYS_REQUEUE, (At(P("PRIV_RO"), PAGE - 24), 0, 1, 1)),
    }
    return [pytest.param(c, id=name) for name, c in cases.items()]


@needs_host
@pytest.mark.parametrize("call", _cases())
def test_differential_table(differ: Futex2Differ, call: F2) -> None:
    """Single-task validation cases of the four calls, on the host and the emulator
    (Linux 6.18 is the oracle): same return value, same memory afterwards (node words)."""
    bad = differ.run(call)
    assert bad is None, bad


# -- Hypothesis --------------------------------------------------------------------------------


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, picked with the given integer weights (Hypothesis merges
    repeated ``one_of`` branches, so repetition would not weight them)."""
    index = [i for i, (w, _) in enumerate(choices) for _ in range(w)]
    return st.sampled_from(index).flatmap(lambda i: choices[i][1])


@functools.cache
def _strategies() -> st.SearchStrategy[F2]:
    P = _page
    #: words that usually work: writable pages below ARRAY_OFF, 8-byte aligned (NUMA)
    good_pages = ["PRIV_RW", "SHARED_RW", "FILE_SHARED_RW", "FILE_PRIV_RW", "WRITE_ONLY_PRIV"]
    good_uaddr = st.builds(
        At,
        st.sampled_from(good_pages).map(P),
        st.integers(0, ARRAY_OFF // 8 - 1).map(lambda i: 8 * i),
    )
    any_offset = weighted(
        (2, st.sampled_from([0, 4, 8, 12, 16, PAGE - 8, PAGE - 4])),
        (2, st.sampled_from([1, 2, 3, 6, PAGE - 2])),
        (1, st.integers(0, PAGE - 1)),
    )
    layout_uaddr = st.builds(At, st.sampled_from([s.name for s in LAYOUT]).map(P), any_offset)
    special = st.sampled_from(
        [0, 1, 4, 8, 0x1000, 0x7FFFFFFFF000, 0x7FFFFFFFEFF8, 1 << 47, U64 - 7]
    )
    uaddrs = weighted((12, good_uaddr), (2, layout_uaddr), (1, special))
    good_flags = st.builds(
        lambda p, n, m: U32F | p | n | m,
        st.sampled_from([0, PRIV]),
        weighted((3, st.just(0)), (1, st.just(NUMA))),
        weighted((5, st.just(0)), (1, st.just(MPOL))),
    )
    bad_flags = weighted(
        (2, st.sampled_from([0, 1, 3, PRIV, PRIV | 1, PRIV | 3, 0x10 | U32F, 0x40 | U32F])),
        (1, st.sampled_from([0x100, 0x80000000, 0xFFFFFFFF]).map(lambda b: b | U32F)),
        (1, st.integers(0, U32)),
    )
    flags2 = weighted((12, good_flags), (1, bad_flags))
    vals = weighted(
        (8, st.just(Cur())),
        (2, st.just(Cur(1))),
        (1, st.sampled_from([0, 1, U32, 1 << 32, U64, Cur(1 << 32)])),
    )
    reserved = weighted((15, st.just(0)), (1, st.sampled_from([1, 0x80000000])))
    entries = st.builds(Entry, uaddrs, vals, flags2, reserved)
    timeouts = weighted(
        (3, st.just(0)),
        (3, st.sampled_from(["zero", "one_sec", "mono_past", "rt_past"]).map(ts_slot)),
        (2, st.sampled_from(["mono_future", "rt_future", "mono_year"]).map(ts_slot)),
        (1, st.sampled_from(["neg_sec", "neg_nsec", "nsec_1e9", "nsec_hi_bits"]).map(ts_slot)),
        (1, st.sampled_from([At(P("HOLE"), 0), At(P("TIMESPEC"), PAGE - 8), 8, 1])),
    )
    clocks = weighted(
        (8, st.sampled_from([CLOCK_REALTIME, CLOCK_MONOTONIC])),
        (1, st.sampled_from([2, 3, 11, -1, (1 << 32) | 1, (1 << 32)])),
    )
    counts = weighted(
        (6, st.sampled_from([0, 1, 2, INT_MAX])),
        (1, st.sampled_from([-1, 1 << 32, 1 << 31, (1 << 32) | 1])),
    )
    node_words = st.integers(0, ARRAY_OFF // 8 - 1).map(lambda i: At(P("PRIV_RW"), 8 * i + 4))
    node_stores = st.lists(
        st.tuples(
            node_words,
            weighted(
                (4, st.sampled_from([FUTEX_NO_NODE, 0])), (1, st.sampled_from([1, 0xFFFFFFFE]))
            ),
        ),
        max_size=4,
    ).map(tuple)
    bad_waiters = st.sampled_from(
        [0, At(P("HOLE"), 0), At(P("PRIV_RO"), PAGE - 12), At(P("PRIV_RW"), ARRAY_OFF + 4), 8]
    )
    waiters = weighted((12, st.just(array())), (1, bad_waiters))
    syscall_flags = weighted((12, st.just(0)), (1, st.sampled_from([1, 1 << 32, 0x80, U32])))

    def waitv_call(
        w: Any, nr: int | None, fl: int, to: Any, ck: int, es: list[Entry], ns: Any
    ) -> F2:
        return F2(SYS_WAITV, (w, len(es) if nr is None else nr, fl, to, ck), tuple(es), ns)

    waitv = st.builds(
        waitv_call,
        waiters,
        weighted((10, st.none()), (1, st.sampled_from([0, 1, 128, 129, (1 << 32) | 1, U32]))),
        syscall_flags,
        timeouts,
        clocks,
        weighted(
            (4, st.lists(entries, min_size=1, max_size=3)),
            (1, st.lists(entries, min_size=4, max_size=20)),
        ),
        node_stores,
    )
    masks = weighted(
        (6, st.just(ANY)),
        (2, st.sampled_from([1, 0x80000000])),
        (1, st.sampled_from([0, 1 << 32, U64])),
    )
    wake = st.builds(
        lambda a, m, n, fl, ns: F2(SYS_WAKE, (a, m, n, fl), (), ns),
        uaddrs,
        masks,
        counts,
        flags2,
        node_stores,
    )
    wait = st.builds(
        lambda a, v, m, fl, to, ck, ns: F2(SYS_WAIT, (a, v, m, fl, to, ck), (), ns),
        uaddrs,
        weighted((5, st.just(CUR)), (1, st.sampled_from([0, 1, 1 << 32]))),
        masks,
        flags2,
        timeouts,
        clocks,
        node_stores,
    )

    def requeue_call(
        w: Any, fl: int, a: int, b: int, e1: Entry, e2: Entry, same: bool, ns: Any
    ) -> F2:
        e2 = Entry(e2.uaddr, e2.val, e1.flags if same else e2.flags, e2.reserved)
        return F2(SYS_REQUEUE, (w, fl, a, b), (e1, e2), ns)

    requeue = st.builds(
        requeue_call,
        waiters,
        syscall_flags,
        counts,
        counts,
        entries,
        entries,
        weighted((5, st.just(True)), (1, st.just(False))),
        node_stores,
    )
    return weighted((4, waitv), (2, wake), (2, wait), (2, requeue))


@needs_host
@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_differential_hypothesis(differ: Futex2Differ, data: st.DataObject) -> None:
    """Hypothesis over flags, nr, clockid, timeouts and entry fields of the four calls:
    the host's answer and memory are the emulator's."""
    call = data.draw(_strategies(), label="call")
    bad = differ.run(call)
    assert bad is None, bad
