"""The futex2 calls futex_wake / futex_wait / futex_requeue (454-456), FUTEX2_NUMA and
FUTEX2_MPOL.

Each test names the kernel function whose behaviour it pins (``kernel/futex/syscalls.c``,
``waitwake.c``, ``core.c``, ``requeue.c``).  Facts beyond the sources (orders of checks,
FUTEX2_NUMA) were measured on the host kernel (Linux 6.18) and are checked against it in
``test_differential.py``.  futex_waitv is in ``test_waitv.py``.

Blocking tests run a task either on a real thread (``threads``) or cooperatively through
:class:`PendingWait` (``cooperative``); time is the :class:`ManualClock`'s.
"""

from __future__ import annotations

import pytest

from futex.kernel import ClockId, ManualClock
from futex.linux import LinuxKernel, abi
from futex.linux.futex2 import FUTEX_NO_NODE
from futex.memory import PAGE_SIZE, PROT_READ
from tests.linux.futex2.support import (
    ANY,
    CLOCK_MONOTONIC,
    INT_MAX,
    MPOL,
    NUMA,
    PRIV,
    SEC,
    SHARING,
    SYS_REQUEUE,
    SYS_WAIT,
    SYS_WAITV,
    SYS_WAKE,
    U32,
    U32F,
    blocked,
    queued,
    timespec,
    waitv_array,
    words,
)
from tests.support import StartWait

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
