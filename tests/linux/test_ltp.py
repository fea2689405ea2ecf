"""LTP's futex tests (``testcases/kernel/syscalls/futex/``), ported to the emulated Linux kernel.

Each test names the LTP case it ports.  LTP's forked processes become emulated processes
(:meth:`Process.fork`, then a task in the child) and its threads become tasks of one
process; a task blocks either on a real thread (``threads``) or cooperatively through
:class:`PendingWait` (``cooperative``).  Time is the :class:`ManualClock`'s, so timeouts are
exact: a deadline never fires early and always fires once the clock reaches it.

What cannot be emulated is adapted and said so in the docstring: huge pages become subpages
of one large mapping (futex_wake04), timer-precision sampling becomes exact deadlines
(futex_wait05), SIGUSR1 becomes :meth:`Task.interrupt` (futex_wait07).  Where LTP only
bounds a count because real threads wake spuriously (futex_cmp_requeue01), the emulation has
no spurious wakeups and the counts are asserted exactly.

Facts beyond LTP that the adaptations rely on (private ops never look at the mapping, the
value check precedes a zero timeout, the CMP_REQUEUE argument order) were checked on the host
kernel with ``tests/support/hostfutex.py``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest

from futex.kernel import ClockId, ManualClock
from futex.linux import LinuxKernel, PendingWait, Process, Task, abi
from futex.memory import PAGE_SIZE, PROT_NONE, PROT_READ, PROT_WRITE, File
from tests.support import StartWait, Wait

RW = PROT_READ | PROT_WRITE
PRIV = abi.FUTEX_PRIVATE_FLAG
INT_MAX = 0x7FFFFFFF
MS = 1_000_000
US = 1_000
SEC = abi.NSEC_PER_SEC

WAIT = abi.FUTEX_WAIT
WAKE = abi.FUTEX_WAKE
WAIT_BITSET = abi.FUTEX_WAIT_BITSET
CMP_REQUEUE = abi.FUTEX_CMP_REQUEUE

#: Private and shared variants of an op: LTP runs most cases with ``opflags`` 0 and
#: FUTEX_PRIVATE_FLAG.
FLAGS = pytest.mark.parametrize("flags", [PRIV, 0], ids=["private", "shared"])


# -- helpers -----------------------------------------------------------------------------------


def timespec(p: Process, sec: int, nsec: int) -> int:
    """A ``struct __kernel_timespec`` in ``p``'s memory; returns its address."""
    a = p.mmap(PAGE_SIZE)
    p.write(a, struct.pack("<qq", sec, nsec))
    return a


def timespec_ns(p: Process, ns: int) -> int:
    return timespec(p, ns // SEC, ns % SEC)




@pytest.fixture(params=["cooperative", "threads"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_start(mode: str, run_blocking: Callable[..., Any]) -> StartWait:
    def start(task: Task, uaddr: int, op: int, val: int, utime: int = 0, val3: int = 0) -> Wait:
        """Start a wait on ``task`` and return once it is queued (it must block)."""
        if mode == "cooperative":
            r = task.syscall_futex_nb(uaddr, op, val, utime, 0, val3)
            assert isinstance(r, PendingWait), f"the wait returned {r} instead of blocking"
            assert task.blocked is r
            return Wait(r)
        b = run_blocking(lambda: task.syscall_futex(uaddr, op, val, utime, 0, val3), task)
        pending = task.blocked
        assert pending is not None, f"the wait returned {b.result()} instead of blocking"
        return Wait(pending, b)

    return start


@pytest.fixture
def start(mode: str, run_blocking: Callable[..., Any]) -> StartWait:
    """``start(task, uaddr, op, val, utime=0, val3=0)``: a blocked wait, in ``mode``."""
    return make_start(mode, run_blocking)


@pytest.fixture
def start_coop(run_blocking: Callable[..., Any]) -> StartWait:
    return make_start("cooperative", run_blocking)


def done_count(waits: list[Wait]) -> int:
    return sum(w.done() for w in waits)


def assert_timers_idle(clock: ManualClock) -> None:
    assert clock.pending() == [], "a finished wait left its timeout armed"


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
    ids=[
        f"{'timed' if a else 'untimed'}-{'handler' if b else 'nohandler'}"
        f"{'-SA_RESTART' if c else ''}"
        for a, b, c, _ in RESTART_RULES
    ],
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


# -- futex_wake01 ------------------------------------------------------------------------------


@FLAGS
@pytest.mark.parametrize("nr_wake", [0, 1, INT_MAX])
@pytest.mark.parametrize("shared_mem", [False, True], ids=["MAP_PRIVATE", "MAP_SHARED"])
def test_futex_wake01_no_waiters_returns_zero(
    kernel: LinuxKernel, flags: int, nr_wake: int, shared_mem: bool, start_coop: StartWait
) -> None:
    """LTP futex_wake01: WAKE with nobody waiting on the word -> 0, for any count; a waiter
    on the neighbouring word is a different futex and stays asleep."""
    p = kernel.new_process()
    t = p.new_task()
    sleeper = p.new_task()
    f = p.mmap(PAGE_SIZE, shared=shared_mem)
    assert t.syscall_futex(f, WAKE | flags, nr_wake, 0, 0, 0) == 0
    w = start_coop(sleeper, f + 4, WAIT | flags, 0)
    assert t.syscall_futex(f, WAKE | flags, nr_wake, 0, 0, 0) == 0
    assert not w.done()
    assert t.syscall_futex(f + 4, WAKE | flags, 1, 0, 0, 0) == 1
    assert w.result() == 0


# -- futex_wake02 / futex_wake03 ---------------------------------------------------------------

WAKE_WAITERS = 55


def check_wake_in_steps(waker: Task, f: int, flags: int, waits: list[Wait]) -> None:
    """For i in 1..10: WAKE(i) returns i and exactly the next i waiters (FIFO) wake."""
    woken = 0
    for i in range(1, 11):
        assert waker.syscall_futex(f, WAKE | flags, i, 0, 0, 0) == i
        woken += i
        assert [w.done() for w in waits] == [n < woken for n in range(len(waits))], (
            f"WAKE({i}) did not wake exactly the next {i} waiters"
        )
    assert woken == len(waits)
    assert waker.syscall_futex(f, WAKE | flags, 1, 0, 0, 0) == 0
    assert [w.result() for w in waits] == [0] * len(waits)


def test_futex_wake02_threads_wake_exactly_n(kernel: LinuxKernel, start: StartWait) -> None:
    """LTP futex_wake02: 55 threads wait on a private futex; for i = 1..10, WAKE(i)
    returns i and exactly i threads wake; a last WAKE(1) finds nobody -> 0."""
    p = kernel.new_process()
    main = p.new_task()
    f = p.mmap(PAGE_SIZE)
    waits = [start(p.new_task(), f, WAIT | PRIV, 0) for _ in range(WAKE_WAITERS)]
    assert p.futex.stats().queued == WAKE_WAITERS
    check_wake_in_steps(main, f, PRIV, waits)


def test_futex_wake03_processes_wake_exactly_n(kernel: LinuxKernel, start: StartWait) -> None:
    """LTP futex_wake03: 55 forked processes wait on a futex in MAP_SHARED memory (shared
    op); for i = 1..10 the parent's WAKE(i) returns i and exactly i children wake."""
    p = kernel.new_process()
    parent = p.new_task()
    f = p.mmap(PAGE_SIZE, shared=True)
    waits = [start(p.fork().new_task(), f, WAIT, 0) for _ in range(WAKE_WAITERS)]
    assert p.futex.stats().queued == WAKE_WAITERS  # the shared table is common
    check_wake_in_steps(parent, f, 0, waits)


# -- futex_wake04 ------------------------------------------------------------------------------


@FLAGS
@pytest.mark.parametrize("memory", ["private-anon", "shared-anon", "shared-file"])
def test_futex_wake04_subpages_of_one_mapping_are_distinct(
    kernel: LinuxKernel, flags: int, memory: str, start: StartWait
) -> None:
    """LTP futex_wake04 (regression for 13d60f4b6ab5b), adapted: MAP_HUGETLB becomes one
    2 MiB mapping; futexes at the same offset of its 1st and 2nd 4 KiB subpages are
    distinct: waking futex2 wakes thread2, never thread1."""
    size = 2 << 20
    p = kernel.new_process()
    main = p.new_task()
    if memory == "shared-file":
        huge = File("huge", size=size + 2 * PAGE_SIZE)
        base = p.mmap(size, shared=True, file=huge, offset=PAGE_SIZE)
    else:
        base = p.mmap(size, shared=memory == "shared-anon")
    off = 0x40
    futex1 = base + off
    futex2 = base + PAGE_SIZE + off
    t1 = p.new_task()
    t2 = p.new_task()
    w1 = start(t1, futex1, WAIT | flags, 0)
    w2 = start(t2, futex2, WAIT | flags, 0)
    assert main.syscall_futex(futex2, WAKE | flags, 1, 0, 0, 0) == 1
    assert w2.result() == 0
    assert not w1.done(), "waking futex2 woke the waiter on futex1"
    assert main.syscall_futex(futex2, WAKE | flags, 1, 0, 0, 0) == 0
    assert main.syscall_futex(futex1, WAKE | flags, 1, 0, 0, 0) == 1
    assert w1.result() == 0


# -- futex_wake05 / futex_cmp_requeue03: EFAULT ------------------------------------------------


def bad_word(p: Process, kind: str) -> int:
    """A futex address Linux cannot key as a shared futex (and whose value cannot be read)."""
    if kind == "unmapped":
        a = p.mmap(PAGE_SIZE)
        p.munmap(a, PAGE_SIZE)
        return a
    if kind == "PROT_NONE":
        a = p.mmap(PAGE_SIZE)
        p.mprotect(a, PAGE_SIZE, PROT_NONE)
        return a
    if kind == "shared-file-past-EOF":
        f = File("f", size=PAGE_SIZE)
        a = p.mmap(PAGE_SIZE, shared=True, file=f)
        f.truncate(0)
        return a
    if kind == "private-file-past-EOF":
        f = File("f", size=PAGE_SIZE)
        a = p.mmap(PAGE_SIZE, shared=False, file=f)
        f.truncate(0)
        return a
    raise AssertionError(kind)


BAD_KINDS = ["unmapped", "PROT_NONE", "shared-file-past-EOF", "private-file-past-EOF"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_futex_wake05_shared_wake_efault(kernel: LinuxKernel, kind: str) -> None:
    """LTP futex_wake05: a shared WAKE on an unmapped word (no VMA), a PROT_NONE word
    (gup fails) or a file page past a truncated EOF (VM_FAULT_SIGBUS) -> EFAULT."""
    p = kernel.new_process()
    t = p.new_task()
    a = bad_word(p, kind)
    assert t.syscall_futex(a, WAKE, 1, 0, 0, 0) == -abi.EFAULT


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_futex_wake05_private_wake_needs_no_mapping(kernel: LinuxKernel, kind: str) -> None:
    """LTP futex_wake05, contrast (host-checked): a private key is just the address, and
    WAKE never reads the word, so FUTEX_WAKE_PRIVATE on the same words -> 0."""
    p = kernel.new_process()
    t = p.new_task()
    a = bad_word(p, kind)
    assert t.syscall_futex(a, WAKE | PRIV, 1, 0, 0, 0) == 0


def test_futex_wake05_truncation_faults_only_pages_past_eof(kernel: LinuxKernel) -> None:
    """LTP futex_wake05, detail: after truncating a two-page file to 100 bytes, the first
    page (partly inside the file) still keys, the second faults."""
    p = kernel.new_process()
    t = p.new_task()
    f = File("f", size=2 * PAGE_SIZE)
    a = p.mmap(2 * PAGE_SIZE, shared=True, file=f)
    f.truncate(100)
    assert t.syscall_futex(a + 0x200, WAKE, 1, 0, 0, 0) == 0
    assert t.syscall_futex(a + PAGE_SIZE, WAKE, 1, 0, 0, 0) == -abi.EFAULT


@pytest.mark.parametrize("kind", BAD_KINDS)
@pytest.mark.parametrize("bad", ["uaddr", "uaddr2"])
@pytest.mark.parametrize("cmp_matches", [True, False], ids=["val3-match", "val3-mismatch"])
def test_futex_cmp_requeue03_shared_efault(
    kernel: LinuxKernel, kind: str, bad: str, cmp_matches: bool, start_coop: StartWait
) -> None:
    """LTP futex_cmp_requeue03: a shared CMP_REQUEUE whose uaddr or uaddr2 is unmapped,
    PROT_NONE or past a truncated file's EOF -> EFAULT.  Both keys are looked up before
    the compare, so a mismatching val3 still gives EFAULT; a waiter on the good futex is
    neither woken nor moved."""
    p = kernel.new_process()
    t = p.new_task()
    sleeper = p.new_task()
    good = p.mmap(PAGE_SIZE, shared=True)
    w = start_coop(sleeper, good, WAIT, 0)
    worse = bad_word(p, kind)
    uaddr, uaddr2 = (worse, good) if bad == "uaddr" else (good, worse)
    val3 = 0 if cmp_matches else 1
    assert t.syscall_futex(uaddr, CMP_REQUEUE, 1, 1, uaddr2, val3) == -abi.EFAULT
    assert not w.done()
    assert p.futex.stats().queued == 1
    assert t.syscall_futex(good, WAKE, 1, 0, 0, 0) == 1
    assert w.result() == 0


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_futex_cmp_requeue03_private_keys_need_no_mapping(kernel: LinuxKernel, kind: str) -> None:
    """LTP futex_cmp_requeue03, contrast (host-checked): private keys need no mapping, so
    a private CMP_REQUEUE with a bad uaddr2 succeeds (nobody to move -> 0; a mismatch ->
    EAGAIN); a bad uaddr still faults, because its value is compared."""
    p = kernel.new_process()
    t = p.new_task()
    good = p.mmap(PAGE_SIZE)
    worse = bad_word(p, kind)
    assert t.syscall_futex(good, CMP_REQUEUE | PRIV, 1, 1, worse, 0) == 0
    assert t.syscall_futex(good, CMP_REQUEUE | PRIV, 1, 1, worse, 1) == -abi.EAGAIN
    assert t.syscall_futex(worse, CMP_REQUEUE | PRIV, 1, 1, good, 0) == -abi.EFAULT


# -- futex_cmp_requeue01 -----------------------------------------------------------------------

#: (waiters, wakes, requeues) from LTP's table.
REQUEUE_TABLE = [
    (10, 3, 7),
    (10, 0, 10),
    (10, 2, 6),
    (100, 50, 50),
    (100, 0, 70),
    (1000, 100, 900),
    (1000, 300, 500),
]

REQUEUE_CASES = [
    pytest.param(w, k, r, variant, id=f"{w}-{k}-{r}-{variant}")
    for w, k, r in REQUEUE_TABLE
    for variant in ("processes-cooperative", "processes-threads", "private-cooperative")
    if not (w == 1000 and variant == "processes-threads")
]


@pytest.mark.parametrize(("waiters", "wakes", "requeues", "variant"), REQUEUE_CASES)
def test_futex_cmp_requeue01_counts(
    kernel: LinuxKernel,
    clock: ManualClock,
    run_blocking: Callable[..., Any],
    waiters: int,
    wakes: int,
    requeues: int,
    variant: str,
) -> None:
    """LTP futex_cmp_requeue01: N waiters (with a timeout) on futex1; CMP_REQUEUE(wakes,
    requeues, futex2, val3 = *futex1).  With no spurious wakeups the counts are exact: the
    call returns min(N, wakes + requeues); exactly the first ``wakes`` waiters wake; waking
    futex2 wakes exactly the min(requeues, N - wakes) moved ones; the rest are still on
    futex1; nobody times out.

    ``processes-*``: forked processes on MAP_SHARED memory with shared ops (LTP's setup;
    the 1000-waiter rows spread their tasks over 100 processes and run cooperatively);
    ``private-*``: tasks of one process with private ops."""
    mode = variant.split("-")[1]
    start = make_start(mode, run_blocking)
    p = kernel.new_process()
    parent = p.new_task()
    if variant.startswith("processes"):
        flags = 0
        base = p.mmap(PAGE_SIZE, shared=True)
        ts = timespec(p, 30, 0)  # in private memory: each child inherits a copy
        procs = [p.fork() for _ in range(min(waiters, 100))]
        tasks = [procs[i % len(procs)].new_task() for i in range(waiters)]
    else:
        flags = PRIV
        base = p.mmap(PAGE_SIZE)
        ts = timespec(p, 30, 0)
        tasks = [p.new_task() for _ in range(waiters)]
    futex1, futex2 = base, base + 4
    waits = [start(task, futex1, WAIT | flags, 0, ts) for task in tasks]

    r = parent.syscall_futex(futex1, CMP_REQUEUE | flags, wakes, requeues, futex2, 0)
    assert r == min(waiters, wakes + requeues)
    done = [w.done() for w in waits]
    assert sum(done) == wakes
    assert done == [i < wakes for i in range(waiters)], "woke other than the first waiters"

    moved = min(requeues, waiters - wakes)
    assert parent.syscall_futex(futex2, WAKE | flags, INT_MAX, 0, 0, 0) == moved
    done = [w.done() for w in waits]
    assert done == [i < wakes + moved for i in range(waiters)], "requeued other waiters"

    left = waiters - wakes - moved
    assert parent.syscall_futex(futex1, WAKE | flags, INT_MAX, 0, 0, 0) == left
    assert [w.result() for w in waits] == [0] * waiters, "a waiter timed out"
    assert_timers_idle(clock)


# -- futex_cmp_requeue02 -----------------------------------------------------------------------

#: (val, val2, val3 matches, errno)
REQUEUE02_CASES = [
    pytest.param(1, -1, True, abi.EINVAL, id="val2=-1"),
    pytest.param(-1, 1, True, abi.EINVAL, id="val=-1"),
    pytest.param(1, 1, False, abi.EAGAIN, id="val3-mismatch"),
    pytest.param(1, -1, False, abi.EINVAL, id="val2=-1-before-mismatch"),
    pytest.param(-1, 1, False, abi.EINVAL, id="val=-1-before-mismatch"),
    pytest.param(1, 0x80000000, True, abi.EINVAL, id="val2=INT_MIN"),
    pytest.param(0x80000000, 1, True, abi.EINVAL, id="val=INT_MIN"),
]


@FLAGS
@pytest.mark.parametrize(("val", "val2", "matches", "errno"), REQUEUE02_CASES)
def test_futex_cmp_requeue02_errors(
    kernel: LinuxKernel,
    flags: int,
    val: int,
    val2: int,
    matches: bool,
    errno: int,
    start_coop: StartWait,
) -> None:
    """LTP futex_cmp_requeue02 (CVE-2018-6927 regression): CMP_REQUEUE with a negative
    val2 or val -> EINVAL (checked first); val3 != *uaddr -> EAGAIN; nothing moves."""
    p = kernel.new_process()
    t = p.new_task()
    sleeper = p.new_task()
    base = p.mmap(PAGE_SIZE)
    futex1, futex2 = base, base + 4
    w = start_coop(sleeper, futex1, WAIT | flags, 0)
    val3 = 0 if matches else 1
    assert t.syscall_futex(futex1, CMP_REQUEUE | flags, val, val2, futex2, val3) == -errno
    assert not w.done()
    assert t.syscall_futex(futex2, WAKE | flags, 1, 0, 0, 0) == 0
    assert t.syscall_futex(futex1, WAKE | flags, 1, 0, 0, 0) == 1
    assert w.result() == 0


def test_futex_cmp_requeue02_negative_count_before_fault(kernel: LinuxKernel) -> None:
    """LTP futex_cmp_requeue02, order (host-checked): the negative-count EINVAL comes
    before the key lookup, so an unmapped uaddr with val2 = -1 -> EINVAL, not EFAULT."""
    p = kernel.new_process()
    t = p.new_task()
    good = p.mmap(PAGE_SIZE, shared=True)
    worse = bad_word(p, "unmapped")
    assert t.syscall_futex(worse, CMP_REQUEUE, 1, -1, good, 0) == -abi.EINVAL
