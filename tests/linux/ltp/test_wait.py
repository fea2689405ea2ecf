"""LTP's futex wait tests (``testcases/kernel/syscalls/futex/futex_wait*``), ported to the
emulated Linux kernel; the wake and requeue cases are in ``test_wake_requeue.py``.

Each test names the LTP case it ports.  LTP's forked processes become emulated processes
(:meth:`Process.fork`, then a task in the child) and its threads become tasks of one
process; a task blocks either on a real thread (``threads``) or cooperatively through
:class:`PendingWait` (``cooperative``).  Time is the :class:`ManualClock`'s, so timeouts are
exact: a deadline never fires early and always fires once the clock reaches it.

What cannot be emulated is adapted and said so in the docstring: timer-precision sampling
becomes exact deadlines (futex_wait05), SIGUSR1 becomes :meth:`Task.interrupt`
(futex_wait07).

Facts beyond LTP that the adaptations rely on (the value check precedes a zero timeout)
were checked on the host kernel with ``tests/support/hostfutex.py``.
"""

from __future__ import annotations

import struct

import pytest

from futex.kernel import ClockId, ManualClock
from futex.linux import LinuxKernel, abi
from futex.memory import PAGE_SIZE, PROT_READ
from tests.linux.ltp.support import (
    FLAGS,
    MS,
    PRIV,
    RW,
    SEC,
    US,
    WAIT,
    WAIT_BITSET,
    WAKE,
    assert_timers_idle,
    timespec,
    timespec_ns,
)
from tests.support import StartWait, restart_rule_ids

# -- futex_wait01 ------------------------------------------------------------------------------


@FLAGS
def test_futex_wait01_matching_value_times_out(
    kernel: LinuxKernel, clock: ManualClock, flags: int, start: StartWait
) -> None:
    """LTP futex_wait01: WAIT with a matching value and a 10 us timeout -> ETIMEDOUT."""
    p = kernel.new_process()
    t = p.new_task()
    f = p.mmap(PAGE_SIZE)
    ts = timespec(p, 0, 10 * US)
    w = start(t, f, WAIT | flags, 0, ts)
    clock.advance(10 * US - 1)
    assert not w.done()
    clock.advance(1)
    assert w.result() == -abi.ETIMEDOUT
    assert t.blocked is None
    assert p.load_u32(f) == 0
    assert p.futex.stats().queued == 0
    assert_timers_idle(clock)


@FLAGS
def test_futex_wait01_value_mismatch_ewouldblock(
    kernel: LinuxKernel, clock: ManualClock, flags: int
) -> None:
    """LTP futex_wait01: WAIT with a value other than the word's -> EWOULDBLOCK, at once."""
    p = kernel.new_process()
    t = p.new_task()
    f = p.mmap(PAGE_SIZE)
    ts = timespec(p, 0, 10 * US)
    assert abi.EWOULDBLOCK == abi.EAGAIN
    assert t.syscall_futex_nb(f, WAIT | flags, 1, ts, 0, 0) == -abi.EWOULDBLOCK
    assert t.syscall_futex(f, WAIT | flags, 1, 0, 0, 0) == -abi.EWOULDBLOCK
    assert t.blocked is None
    assert p.futex.stats().queued == 0
    assert_timers_idle(clock)


# -- futex_wait02 / futex_wait03 ---------------------------------------------------------------


def test_futex_wait02_forked_child_wakes_parent(kernel: LinuxKernel, start: StartWait) -> None:
    """LTP futex_wait02: the parent waits on a futex in MAP_SHARED memory; a forked child
    wakes it (shared op) -> WAKE returns 1, the parent's WAIT returns 0."""
    p = kernel.new_process()
    pt = p.new_task()
    f = p.mmap(PAGE_SIZE, shared=True)
    c = p.fork()
    ct = c.new_task()
    w = start(pt, f, WAIT, 0)
    assert ct.syscall_futex(f, WAKE, 1, 0, 0, 0) == 1
    assert w.result() == 0
    assert ct.syscall_futex(f, WAKE, 1, 0, 0, 0) == 0


def test_futex_wait02_private_wake_from_child_misses_parent(
    kernel: LinuxKernel, start_coop: StartWait
) -> None:
    """LTP futex_wait02, contrast: private futexes are keyed by address space, so the
    child's FUTEX_WAKE_PRIVATE on the same MAP_SHARED word does not reach the parent."""
    p = kernel.new_process()
    pt, sibling = p.new_task(), p.new_task()
    f = p.mmap(PAGE_SIZE, shared=True)
    c = p.fork()
    ct = c.new_task()
    w = start_coop(pt, f, WAIT | PRIV, 0)
    assert ct.syscall_futex(f, WAKE | PRIV, 1, 0, 0, 0) == 0
    assert ct.syscall_futex(f, WAKE, 1, 0, 0, 0) == 0  # shared key != the parent's private one
    assert not w.done()
    # pt is blocked (it makes no call): another thread of the parent wakes it
    assert sibling.syscall_futex(f, WAKE | PRIV, 1, 0, 0, 0) == 1
    assert w.result() == 0


@FLAGS
def test_futex_wait03_thread_wakes_main_thread(
    kernel: LinuxKernel, flags: int, start: StartWait
) -> None:
    """LTP futex_wait03: a second thread of the process wakes the main thread -> 0."""
    p = kernel.new_process()
    main = p.new_task()
    other = p.new_task()
    f = p.mmap(PAGE_SIZE)
    w = start(main, f, WAIT | flags, 0)
    assert other.syscall_futex(f, WAKE | flags, 1, 0, 0, 0) == 1
    assert w.result() == 0
    assert main.blocked is None


# -- futex_wait04 ------------------------------------------------------------------------------


@FLAGS
def test_futex_wait04_zero_page_ewouldblock(
    kernel: LinuxKernel, clock: ManualClock, flags: int
) -> None:
    """LTP futex_wait04: WAIT(val=1) on fresh MAP_PRIVATE anonymous memory (the zero page,
    never written) -> EWOULDBLOCK at once; the page stays untouched."""
    p = kernel.new_process()
    t = p.new_task()
    ts = timespec(p, 0, 10 * US)
    buf = p.mmap(PAGE_SIZE, shared=False, prot=RW)
    assert t.syscall_futex_nb(buf, WAIT | flags, 1, ts, 0, 0) == -abi.EWOULDBLOCK
    assert p.read(buf, PAGE_SIZE) == bytes(PAGE_SIZE)
    assert p.futex.stats().queued == 0
    assert_timers_idle(clock)


def test_futex_wait04_read_only_zero_page(kernel: LinuxKernel) -> None:
    """LTP futex_wait04, read-only variant (host-checked): a private WAIT reads the zero
    page -> EWOULDBLOCK; a shared WAIT on read-only private anonymous memory has no key
    ("a RO anonymous page will never change") -> EFAULT."""
    p = kernel.new_process()
    t = p.new_task()
    buf = p.mmap(PAGE_SIZE, shared=False, prot=PROT_READ)
    assert t.syscall_futex(buf, WAIT | PRIV, 1, 0, 0, 0) == -abi.EWOULDBLOCK
    assert t.syscall_futex(buf, WAIT, 1, 0, 0, 0) == -abi.EFAULT


# -- futex_wait05 ------------------------------------------------------------------------------

#: Relative timeouts sampled (LTP samples real timer precision; here the deadline is exact).
WAIT05_TIMEOUTS = [1, 10 * US, 999_999_999, SEC, 2 * SEC + 500 * MS, 100 * SEC + 1]


@FLAGS
def test_futex_wait05_relative_timeout_never_early_never_late(
    kernel: LinuxKernel, clock: ManualClock, flags: int, start: StartWait
) -> None:
    """LTP futex_wait05 (timer precision): for several relative WAIT timeouts, the wait is
    still blocked one nanosecond before ``now + timeout`` and ETIMEDOUT exactly at it."""
    p = kernel.new_process()
    t = p.new_task()
    f = p.mmap(PAGE_SIZE)
    for ns in WAIT05_TIMEOUTS:
        w = start(t, f, WAIT | flags, 0, timespec_ns(p, ns))
        if ns > 2:
            clock.advance(ns // 2)
            assert not w.done(), f"timeout {ns} ns fired early"
            clock.advance(ns - ns // 2 - 1)
        else:
            clock.advance(ns - 1)
        assert not w.done(), f"timeout {ns} ns fired 1 ns early"
        clock.set_realtime(clock.now(ClockId.REALTIME) + 1000 * SEC)  # WAIT is monotonic
        assert not w.done(), f"timeout {ns} ns followed CLOCK_REALTIME"
        clock.advance(1)
        assert w.done(), f"timeout {ns} ns did not fire at its deadline"
        assert w.result() == -abi.ETIMEDOUT
        assert t.blocked is None
        assert_timers_idle(clock)


@FLAGS
def test_futex_wait05_zero_timeout(kernel: LinuxKernel, clock: ManualClock, flags: int) -> None:
    """LTP futex_wait05, edge: a zero relative timeout expires at once -> ETIMEDOUT, but
    only after the value check (mismatch -> EWOULDBLOCK); host-checked order."""
    p = kernel.new_process()
    t = p.new_task()
    f = p.mmap(PAGE_SIZE)
    ts = timespec(p, 0, 0)
    assert t.syscall_futex(f, WAIT | flags, 0, ts, 0, 0) == -abi.ETIMEDOUT
    assert t.syscall_futex(f, WAIT | flags, 1, ts, 0, 0) == -abi.EWOULDBLOCK
    assert p.futex.stats().queued == 0
    assert_timers_idle(clock)


# -- futex_wait06 ------------------------------------------------------------------------------


@FLAGS
def test_futex_wait06_unmapped_uaddr_efault(kernel: LinuxKernel, flags: int) -> None:
    """LTP futex_wait06: WAIT on an unmapped futex word -> EFAULT (private: the value read
    faults; shared: the key lookup finds no VMA)."""
    p = kernel.new_process()
    t = p.new_task()
    f = p.mmap(2 * PAGE_SIZE)
    p.munmap(f + PAGE_SIZE, PAGE_SIZE)
    ts = timespec(p, 1, 0)
    assert t.syscall_futex(f + PAGE_SIZE, WAIT | flags, 0, 0, 0, 0) == -abi.EFAULT
    assert t.syscall_futex(f + PAGE_SIZE, WAIT | flags, 0, ts, 0, 0) == -abi.EFAULT
    assert p.futex.stats().queued == 0


@FLAGS
def test_futex_wait06_unmapped_timeout_efault(kernel: LinuxKernel, flags: int) -> None:
    """LTP futex_wait06: WAIT with an unmapped timeout pointer -> EFAULT, before the value
    is even looked at (a mismatching value still gives EFAULT; host-checked); so does a
    timespec whose second half lies past the end of its mapping."""
    p = kernel.new_process()
    t = p.new_task()
    f = p.mmap(PAGE_SIZE)
    page = p.mmap(2 * PAGE_SIZE)
    p.munmap(page + PAGE_SIZE, PAGE_SIZE)
    hole = page + PAGE_SIZE
    assert t.syscall_futex(f, WAIT | flags, 0, hole, 0, 0) == -abi.EFAULT
    assert t.syscall_futex(f, WAIT | flags, 1, hole, 0, 0) == -abi.EFAULT
    straddle = hole - 8
    p.write(straddle, struct.pack("<q", 0))
    assert t.syscall_futex(f, WAIT | flags, 0, straddle, 0, 0) == -abi.EFAULT
    assert p.futex.stats().queued == 0


# -- futex_wait07 ------------------------------------------------------------------------------


@FLAGS
def test_futex_wait07_signal_with_handler_eintr(
    kernel: LinuxKernel, clock: ManualClock, flags: int, start: StartWait
) -> None:
    """LTP futex_wait07: a forked child waits with a 5 s timeout; SIGUSR1 arrives, handled
    with ``sa_flags = 0`` -> the WAIT returns EINTR, and its timeout is gone."""
    p = kernel.new_process()
    p.new_task()
    c = p.fork()
    ct = c.new_task()
    f = c.mmap(PAGE_SIZE)
    ts = timespec(c, 5, 0)
    w = start(ct, f, WAIT | flags, 0, ts)
    clock.advance(SEC)
    assert not w.done()
    assert ct.interrupt(handler=True, restart=False) is True
    assert w.result() == -abi.EINTR
    assert ct.blocked is None
    assert c.futex.stats().queued == 0
    assert_timers_idle(clock)
    clock.advance(10 * SEC)
    assert w.result() == -abi.EINTR
    assert ct.interrupt(handler=True, restart=False) is False  # no longer blocked
    assert ct.syscall_futex(f, WAKE | flags, 1, 0, 0, 0) == 0


#: (timed, handler, SA_RESTART, outcome): Linux's ERESTARTSYS / ERESTART_RESTARTBLOCK rules.
RESTART_RULES = [
    (False, True, False, "EINTR"),
    (False, True, True, "restart"),
    (False, False, False, "restart"),
    (False, False, True, "restart"),
    (True, True, False, "EINTR"),
    (True, True, True, "EINTR"),
    (True, False, False, "restart"),
    (True, False, True, "restart"),
]


@FLAGS
@pytest.mark.parametrize("cmd", [WAIT, WAIT_BITSET], ids=["WAIT", "WAIT_BITSET"])
@pytest.mark.parametrize(
    ("timed", "handler", "sa_restart", "outcome"),
    RESTART_RULES,
    ids=restart_rule_ids(RESTART_RULES),
)
def test_futex_wait07_signal_restart_rules(
    kernel: LinuxKernel,
    clock: ManualClock,
    flags: int,
    cmd: int,
    timed: bool,
    handler: bool,
    sa_restart: bool,
    outcome: str,
    start: StartWait,
) -> None:
    """LTP futex_wait07, extended to Linux's restart rules: an untimed wait returns
    ERESTARTSYS (EINTR with a handler lacking SA_RESTART, else a transparent restart); a
    timed wait returns ERESTART_RESTARTBLOCK (EINTR whenever a handler runs, else a restart
    that keeps the original absolute deadline)."""
    p = kernel.new_process()
    t = p.new_task()
    waker = p.new_task()
    f = p.mmap(PAGE_SIZE)
    timeout = 5 * SEC
    utime = 0
    if timed:
        ns = timeout if cmd == WAIT else clock.now(ClockId.MONOTONIC) + timeout
        utime = timespec_ns(p, ns)
    w = start(t, f, cmd | flags, 0, utime, abi.FUTEX_BITSET_MATCH_ANY)
    clock.advance(2 * SEC)
    assert t.interrupt(handler=handler, restart=sa_restart) is True
    if outcome == "EINTR":
        assert w.result() == -abi.EINTR
        assert t.blocked is None
        assert_timers_idle(clock)
        return
    assert not w.done(), "a restarted wait returned"
    assert t.blocked is not None
    assert p.futex.stats().queued == 1
    if timed:
        clock.advance(timeout - 2 * SEC - 1)  # the restart keeps the absolute deadline
        assert not w.done(), "the restarted wait timed out early"
        clock.advance(1)
        assert w.result() == -abi.ETIMEDOUT
    else:
        assert waker.syscall_futex(f, WAKE | flags, 1, 0, 0, 0) == 1
        assert w.result() == 0
    assert t.blocked is None
    assert_timers_idle(clock)


@FLAGS
@pytest.mark.parametrize("timed", [False, True], ids=["untimed", "timed"])
def test_futex_wait07_restart_rechecks_value(
    kernel: LinuxKernel, clock: ManualClock, flags: int, timed: bool, start: StartWait
) -> None:
    """LTP futex_wait07, restart detail: a restarted wait runs again from the value check,
    so if the word changed meanwhile the restarted call returns EWOULDBLOCK."""
    p = kernel.new_process()
    t = p.new_task()
    f = p.mmap(PAGE_SIZE)
    utime = timespec(p, 5, 0) if timed else 0
    w = start(t, f, WAIT | flags, 0, utime)
    p.store_u32(f, 1)
    assert t.interrupt(handler=False) is True
    assert w.result() == -abi.EWOULDBLOCK
    assert t.blocked is None
    assert p.futex.stats().queued == 0
    assert_timers_idle(clock)


# -- futex_wait_bitset01 -----------------------------------------------------------------------


@FLAGS
@pytest.mark.parametrize("clock_id", [ClockId.MONOTONIC, ClockId.REALTIME], ids=lambda c: c.name)
def test_futex_wait_bitset01_absolute_timeout(
    kernel: LinuxKernel, clock: ManualClock, flags: int, clock_id: ClockId, start: StartWait
) -> None:
    """LTP futex_wait_bitset01: WAIT_BITSET (mask ~0) with an absolute deadline 100 ms
    ahead on CLOCK_MONOTONIC, or CLOCK_REALTIME via FUTEX_CLOCK_REALTIME -> ETIMEDOUT,
    exactly at the deadline."""
    p = kernel.new_process()
    t = p.new_task()
    f = p.mmap(PAGE_SIZE)
    op = WAIT_BITSET | flags
    if clock_id == ClockId.REALTIME:
        op |= abi.FUTEX_CLOCK_REALTIME
    deadline = clock.now(clock_id) + 100 * MS
    w = start(t, f, op, 0, timespec_ns(p, deadline), abi.FUTEX_BITSET_MATCH_ANY)
    clock.advance(100 * MS - 1)
    assert not w.done()
    clock.advance(1)
    assert w.result() == -abi.ETIMEDOUT
    assert clock.now(clock_id) == deadline
    assert_timers_idle(clock)


@FLAGS
@pytest.mark.parametrize("clock_id", [ClockId.MONOTONIC, ClockId.REALTIME], ids=lambda c: c.name)
def test_futex_wait_bitset01_timeout_is_absolute(
    kernel: LinuxKernel, clock: ManualClock, flags: int, clock_id: ClockId
) -> None:
    """LTP futex_wait_bitset01, adapted: the timespec is an absolute time, not a relative
    one: 100 ms read as an absolute time is long past -> ETIMEDOUT at once."""
    p = kernel.new_process()
    t = p.new_task()
    f = p.mmap(PAGE_SIZE)
    op = WAIT_BITSET | flags
    if clock_id == ClockId.REALTIME:
        op |= abi.FUTEX_CLOCK_REALTIME
    ts = timespec_ns(p, 100 * MS)
    assert t.syscall_futex(f, op, 0, ts, 0, abi.FUTEX_BITSET_MATCH_ANY) == -abi.ETIMEDOUT
    assert p.futex.stats().queued == 0
    assert_timers_idle(clock)


@FLAGS
def test_futex_wait_bitset01_realtime_deadline_follows_clock_settime(
    kernel: LinuxKernel, clock: ManualClock, flags: int, start_coop: StartWait
) -> None:
    """LTP futex_wait_bitset01, adapted: an absolute CLOCK_REALTIME deadline fires when the
    realtime clock is set past it; a CLOCK_MONOTONIC one ignores clock_settime."""
    p = kernel.new_process()
    t_rt = p.new_task()
    t_mono = p.new_task()
    f = p.mmap(PAGE_SIZE)
    rt_deadline = clock.now(ClockId.REALTIME) + 100 * MS
    mono_deadline = clock.now(ClockId.MONOTONIC) + 100 * MS
    w_rt = start_coop(
        t_rt,
        f,
        WAIT_BITSET | abi.FUTEX_CLOCK_REALTIME | flags,
        0,
        timespec_ns(p, rt_deadline),
        abi.FUTEX_BITSET_MATCH_ANY,
    )
    w_mono = start_coop(
        t_mono, f, WAIT_BITSET | flags, 0, timespec_ns(p, mono_deadline), abi.FUTEX_BITSET_MATCH_ANY
    )
    clock.set_realtime(rt_deadline - 1)
    assert not w_rt.done()
    clock.set_realtime(rt_deadline + 3600 * SEC)
    assert w_rt.result() == -abi.ETIMEDOUT
    assert not w_mono.done()
    clock.advance(100 * MS - 1)
    assert not w_mono.done()
    clock.advance(1)
    assert w_mono.result() == -abi.ETIMEDOUT
    assert_timers_idle(clock)
