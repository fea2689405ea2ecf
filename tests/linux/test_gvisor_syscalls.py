"""gVisor's futex(2) syscall tests (``test/syscalls/linux/futex.cc``), ported to the raw ABI.

Every call goes through ``task.syscall_futex`` (blocking, on a real thread) or
``task.syscall_futex_nb`` (cooperative) with the six register values, and checks the
return value Linux gives (``>= 0`` or ``-errno``).  The non-PI, non-robust cases are here:
``PrivateAndSharedFutexTest`` 1-19 (each for private and shared ops), ``PrivateFutexTest``
25-29 and ``SharedFutexTest`` 30-31.

Differences from the original, by design:

- Time is the kernel's :class:`~futex.kernel.ManualClock`: instead of sleeping for
  ``kWaiterStartupDelay`` the waker waits until the waiting task is blocked
  (``run_blocking``), and a timed wait is checked twice, still blocked one nanosecond
  before its deadline and ETIMEDOUT once the clock reaches it.
- ``fork()`` is :meth:`Process.fork`; the child's task runs its wait on a real thread and
  "exits 0" when the call returned what the original ``TEST_PCHECK``\\ s.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest

from futex.kernel import ClockId, ManualClock
from futex.linux import LinuxKernel, PendingWait, Process, Task, abi
from futex.memory import File

SEC = 1_000_000_000
#: The original's ``kIneffectiveWakeTimeout``: how long a wait that must not be woken lasts.
INEFFECTIVE_WAKE_TIMEOUT = 6 * SEC

WAIT = abi.FUTEX_WAIT
WAKE = abi.FUTEX_WAKE
WAIT_BITSET = abi.FUTEX_WAIT_BITSET
WAKE_BITSET = abi.FUTEX_WAKE_BITSET
WAKE_OP = abi.FUTEX_WAKE_OP
REALTIME = abi.FUTEX_CLOCK_REALTIME


@pytest.fixture(params=[True, False], ids=["private", "shared"])
def priv(request: pytest.FixtureRequest) -> bool:
    """``PrivateAndSharedFutexTest``'s parameter: whether ops carry FUTEX_PRIVATE_FLAG."""
    result: bool = request.param
    return result


def flag(private: bool) -> int:
    return abi.FUTEX_PRIVATE_FLAG if private else 0


def timespec(p: Process, ns: int) -> int:
    """A ``struct timespec`` holding ``ns`` nanoseconds, in ``p``'s memory; its address."""
    addr = p.mmap(4096)
    p.write(addr, struct.pack("<qq", *divmod(ns, SEC)))
    return addr


def word(p: Process, value: int, *, shared: bool = False) -> int:
    """A futex word holding ``value`` on a fresh private (default) or shared mapping."""
    addr = p.mmap(4096, shared=shared)
    p.store_u32(addr, value)
    return addr


def fetch_add(p: Process, addr: int, n: int = 1) -> int:
    return p.update_u32(addr, lambda v: v + n)


def pending(r: int | PendingWait) -> PendingWait:
    assert isinstance(r, PendingWait), f"the wait returned {r} instead of blocking"
    return r


def assert_times_out(clock: ManualClock, waits: list[PendingWait], remaining: int) -> None:
    """The waits are still blocked 1 ns before ``remaining`` ns from now, and return
    -ETIMEDOUT once the clock reaches it."""
    clock.advance(remaining - 1)
    assert [w.done() for w in waits] == [False] * len(waits), "returned before the deadline"
    clock.advance(1)
    assert [w.done() for w in waits] == [True] * len(waits), "still blocked after the deadline"
    assert [w.result() for w in waits] == [-abi.ETIMEDOUT] * len(waits)


Start = Callable[..., Any]


def start_wait(run_blocking: Start, task: Task, *args: int) -> Any:
    """Run ``task.syscall_futex(*args)`` on a thread; return once ``task`` blocks in it."""
    b = run_blocking(lambda: task.syscall_futex(*args), task)
    assert task.blocked is not None, f"the wait returned {b.result()} instead of blocking"
    return b


# -- PrivateAndSharedFutexTest --------------------------------------------------------------


def test_wait_zero_timeout(kernel: LinuxKernel, priv: bool) -> None:
    """gVisor futex.cc Wait_ZeroTimeout: FUTEX_WAIT on a word holding the expected value
    with a {0, 0} timeout does not block: ETIMEDOUT at once."""
    p = kernel.new_process()
    t = p.new_task()
    a = word(p, 1)
    ts = timespec(p, 0)
    assert t.syscall_futex_nb(a, WAIT | flag(priv), 1, ts, 0, 0) == -abi.ETIMEDOUT
    assert t.blocked is None


def test_wait_timeout(kernel: LinuxKernel, clock: ManualClock, priv: bool) -> None:
    """gVisor futex.cc Wait_Timeout: FUTEX_WAIT with a relative 1 s timeout and the value
    unchanged fails with ETIMEDOUT, and not before 1 s has elapsed."""
    p = kernel.new_process()
    t = p.new_task()
    a = word(p, 1)
    start = clock.now(ClockId.MONOTONIC)
    w = pending(t.syscall_futex_nb(a, WAIT | flag(priv), 1, timespec(p, SEC), 0, 0))
    ended: list[int] = []
    w.add_done_callback(lambda _w: ended.append(clock.now(ClockId.MONOTONIC)))
    assert t.blocked is w
    assert_times_out(clock, [w], SEC)
    assert ended[0] - start >= SEC


def test_wait_bitset_timeout(kernel: LinuxKernel, clock: ManualClock, priv: bool) -> None:
    """gVisor futex.cc Wait_BitsetTimeout: FUTEX_WAIT_BITSET|FUTEX_CLOCK_REALTIME, mask
    0xffffffff, absolute deadline now + 1 s: ETIMEDOUT, not before 1 s has elapsed."""
    p = kernel.new_process()
    t = p.new_task()
    a = word(p, 1)
    start = clock.now(ClockId.MONOTONIC)
    deadline = timespec(p, clock.now(ClockId.REALTIME) + SEC)
    op = WAIT_BITSET | REALTIME | flag(priv)
    w = pending(t.syscall_futex_nb(a, op, 1, deadline, 0, 0xFFFFFFFF))
    ended: list[int] = []
    w.add_done_callback(lambda _w: ended.append(clock.now(ClockId.MONOTONIC)))
    assert_times_out(clock, [w], SEC)
    assert ended[0] - start >= SEC


def test_wait_bitset_negative_timeout(kernel: LinuxKernel, clock: ManualClock, priv: bool) -> None:
    """gVisor futex.cc WaitBitset_NegativeTimeout: FUTEX_WAIT_BITSET|FUTEX_CLOCK_REALTIME
    with an absolute deadline 1 s in the past fails with ETIMEDOUT at once."""
    p = kernel.new_process()
    t = p.new_task()
    a = word(p, 1)
    deadline = timespec(p, clock.now(ClockId.REALTIME) - SEC)
    op = WAIT_BITSET | REALTIME | flag(priv)
    assert t.syscall_futex_nb(a, op, 1, deadline, 0, 0xFFFFFFFF) == -abi.ETIMEDOUT
    assert t.blocked is None


def test_wait_wrong_val(kernel: LinuxKernel, priv: bool) -> None:
    """gVisor futex.cc Wait_WrongVal: FUTEX_WAIT for a value the word does not hold
    (a + 1) fails with EAGAIN."""
    p = kernel.new_process()
    t = p.new_task()
    a = word(p, 1)
    assert t.syscall_futex_nb(a, WAIT | flag(priv), 2, 0, 0, 0) == -abi.EAGAIN
    assert t.blocked is None


def test_wait_zero_bitset(kernel: LinuxKernel, priv: bool) -> None:
    """gVisor futex.cc Wait_ZeroBitset: FUTEX_WAIT_BITSET with bitset 0 fails with
    EINVAL."""
    p = kernel.new_process()
    t = p.new_task()
    a = word(p, 1)
    op = WAIT_BITSET | REALTIME | flag(priv)
    assert t.syscall_futex_nb(a, op, 1, 0, 0, 0) == -abi.EINVAL
    assert t.blocked is None


def wake_one_waiter(kernel: LinuxKernel, run_blocking: Start, priv: bool, count: int) -> None:
    p = kernel.new_process()
    t, waiter = p.new_task(), p.new_task()
    a = word(p, 1)
    b = start_wait(run_blocking, waiter, a, WAIT | flag(priv), 1, 0, 0, 0)
    fetch_add(p, a)
    assert t.syscall_futex(a, WAKE | flag(priv), count, 0, 0, 0) == 1
    assert b.result() == 0


def test_wake1(kernel: LinuxKernel, run_blocking: Start, priv: bool) -> None:
    """gVisor futex.cc Wake1: a thread waits on a == 1; the waker does a++ and
    FUTEX_WAKE(1), which returns 1; the wait returns 0."""
    wake_one_waiter(kernel, run_blocking, priv, 1)


def test_wake0(kernel: LinuxKernel, run_blocking: Start, priv: bool) -> None:
    """gVisor futex.cc Wake0: as Wake1 with FUTEX_WAKE(0), which also returns 1 (a
    non-positive count wakes one waiter)."""
    wake_one_waiter(kernel, run_blocking, priv, 0)


def test_wake_all(kernel: LinuxKernel, run_blocking: Start, priv: bool) -> None:
    """gVisor futex.cc WakeAll: five threads wait on a == 1; a++ and FUTEX_WAKE(5) returns
    5; every wait returns 0."""
    p = kernel.new_process()
    t = p.new_task()
    a = word(p, 1)
    waiters = [p.new_task() for _ in range(5)]
    bs = [start_wait(run_blocking, w, a, WAIT | flag(priv), 1, 0, 0, 0) for w in waiters]
    fetch_add(p, a)
    assert t.syscall_futex(a, WAKE | flag(priv), 5, 0, 0, 0) == 5
    assert [b.result() for b in bs] == [0] * 5


def test_wake_some(
    kernel: LinuxKernel, clock: ManualClock, run_blocking: Start, priv: bool
) -> None:
    """gVisor futex.cc WakeSome: five threads wait on a == 1 with a 6 s timeout; a++ and
    FUTEX_WAKE(3) returns 3; exactly three waits return 0 and two fail with ETIMEDOUT
    (not before their 6 s).  Equal-priority waiters wake in FIFO order, as in Linux."""
    p = kernel.new_process()
    t = p.new_task()
    a = word(p, 1)
    ts = timespec(p, INEFFECTIVE_WAKE_TIMEOUT)
    waiters = [p.new_task() for _ in range(5)]
    bs = [start_wait(run_blocking, w, a, WAIT | flag(priv), 1, ts, 0, 0) for w in waiters]
    fetch_add(p, a)
    assert t.syscall_futex(a, WAKE | flag(priv), 3, 0, 0, 0) == 3
    assert [w.blocked is None for w in waiters] == [True, True, True, False, False]
    still = [w.blocked for w in waiters[3:]]
    assert all(isinstance(s, PendingWait) for s in still)
    assert_times_out(clock, [s for s in still if s is not None], INEFFECTIVE_WAKE_TIMEOUT)
    results = [b.result() for b in bs]
    assert results.count(0) == 3
    assert results.count(-abi.ETIMEDOUT) == 2
    assert results == [0, 0, 0, -abi.ETIMEDOUT, -abi.ETIMEDOUT]


def test_wait_bitset_wake(kernel: LinuxKernel, run_blocking: Start, priv: bool) -> None:
    """gVisor futex.cc WaitBitset_Wake: a thread waits with FUTEX_WAIT_BITSET mask
    0b01001000 (no deadline); a++ and a plain FUTEX_WAKE(1) returns 1; the wait returns 0."""
    p = kernel.new_process()
    t, waiter = p.new_task(), p.new_task()
    a = word(p, 1)
    op = WAIT_BITSET | REALTIME | flag(priv)
    b = start_wait(run_blocking, waiter, a, op, 1, 0, 0, 0b01001000)
    fetch_add(p, a)
    assert t.syscall_futex(a, WAKE | flag(priv), 1, 0, 0, 0) == 1
    assert b.result() == 0


def test_wait_wake_bitset(kernel: LinuxKernel, run_blocking: Start, priv: bool) -> None:
    """gVisor futex.cc Wait_WakeBitset: a thread does a plain FUTEX_WAIT; a++ and
    FUTEX_WAKE_BITSET(1, 0b01001000) returns 1; the wait returns 0."""
    p = kernel.new_process()
    t, waiter = p.new_task(), p.new_task()
    a = word(p, 1)
    b = start_wait(run_blocking, waiter, a, WAIT | flag(priv), 1, 0, 0, 0)
    fetch_add(p, a)
    assert t.syscall_futex(a, WAKE_BITSET | flag(priv), 1, 0, 0, 0b01001000) == 1
    assert b.result() == 0


def test_wait_bitset_wake_bitset_match(
    kernel: LinuxKernel, run_blocking: Start, priv: bool
) -> None:
    """gVisor futex.cc WaitBitset_WakeBitsetMatch: wait and wake both with bitset
    0b01001000: FUTEX_WAKE_BITSET returns 1; the wait returns 0."""
    p = kernel.new_process()
    t, waiter = p.new_task(), p.new_task()
    a = word(p, 1)
    op = WAIT_BITSET | REALTIME | flag(priv)
    b = start_wait(run_blocking, waiter, a, op, 1, 0, 0, 0b01001000)
    fetch_add(p, a)
    assert t.syscall_futex(a, WAKE_BITSET | flag(priv), 1, 0, 0, 0b01001000) == 1
    assert b.result() == 0


def test_wait_bitset_wake_bitset_no_match(
    kernel: LinuxKernel, clock: ManualClock, run_blocking: Start, priv: bool
) -> None:
    """gVisor futex.cc WaitBitset_WakeBitsetNoMatch: a thread waits with bitset 0b01000001
    and an absolute CLOCK_REALTIME deadline 6 s away; a++ and FUTEX_WAKE_BITSET(1,
    0b00101000) (disjoint) returns 0; the wait fails with ETIMEDOUT at its deadline."""
    p = kernel.new_process()
    t, waiter = p.new_task(), p.new_task()
    a = word(p, 1)
    deadline = timespec(p, clock.now(ClockId.REALTIME) + INEFFECTIVE_WAKE_TIMEOUT)
    op = WAIT_BITSET | REALTIME | flag(priv)
    b = start_wait(run_blocking, waiter, a, op, 1, deadline, 0, 0b01000001)
    fetch_add(p, a)
    assert t.syscall_futex(a, WAKE_BITSET | flag(priv), 1, 0, 0, 0b00101000) == 0
    blocked = waiter.blocked
    assert blocked is not None
    assert_times_out(clock, [blocked], INEFFECTIVE_WAKE_TIMEOUT)
    assert b.result() == -abi.ETIMEDOUT


def test_wake_op_cond_success(kernel: LinuxKernel, run_blocking: Start, priv: bool) -> None:
    """gVisor futex.cc WakeOpCondSuccess: threads wait on a == 1 and b == 1; a++, b++;
    FUTEX_WAKE_OP(a, b, 1, 1, FUTEX_OP(ADD, 1, CMP_EQ, 2)) wakes a's waiter, and b's
    (old b == 2): returns 2; b == 3; both waits return 0."""
    p = kernel.new_process()
    t, wa, wb = p.new_task(), p.new_task(), p.new_task()
    a, b = word(p, 1), word(p, 1)
    ba = start_wait(run_blocking, wa, a, WAIT | flag(priv), 1, 0, 0, 0)
    bb = start_wait(run_blocking, wb, b, WAIT | flag(priv), 1, 0, 0, 0)
    fetch_add(p, a)
    fetch_add(p, b)
    op = abi.FUTEX_OP(abi.FUTEX_OP_ADD, 1, abi.FUTEX_OP_CMP_EQ, 2)
    assert t.syscall_futex(a, WAKE_OP | flag(priv), 1, 1, b, op) == 2
    assert p.load_u32(b) == 3
    assert p.load_u32(a) == 2
    assert ba.result() == 0
    assert bb.result() == 0


def test_wake_op_cond_failure(
    kernel: LinuxKernel, clock: ManualClock, run_blocking: Start, priv: bool
) -> None:
    """gVisor futex.cc WakeOpCondFailure: threads wait on a == 1 and on b == 1 (6 s
    timeout); a++, b++; FUTEX_WAKE_OP(a, b, 1, 1, FUTEX_OP(ADD, 1, CMP_EQ, 0)) wakes only
    a's waiter (old b == 2 != 0): returns 1; b == 3; b's wait fails with ETIMEDOUT."""
    p = kernel.new_process()
    t, wa, wb = p.new_task(), p.new_task(), p.new_task()
    a, b = word(p, 1), word(p, 1)
    ba = start_wait(run_blocking, wa, a, WAIT | flag(priv), 1, 0, 0, 0)
    ts = timespec(p, INEFFECTIVE_WAKE_TIMEOUT)
    bb = start_wait(run_blocking, wb, b, WAIT | flag(priv), 1, ts, 0, 0)
    fetch_add(p, a)
    fetch_add(p, b)
    op = abi.FUTEX_OP(abi.FUTEX_OP_ADD, 1, abi.FUTEX_OP_CMP_EQ, 0)
    assert t.syscall_futex(a, WAKE_OP | flag(priv), 1, 1, b, op) == 1
    assert p.load_u32(b) == 3
    assert ba.result() == 0
    blocked = wb.blocked
    assert blocked is not None
    assert_times_out(clock, [blocked], INEFFECTIVE_WAKE_TIMEOUT)
    assert bb.result() == -abi.ETIMEDOUT


def test_no_wake_interprocess_private_anon(
    kernel: LinuxKernel, clock: ManualClock, run_blocking: Start, priv: bool
) -> None:
    """gVisor futex.cc NoWakeInterprocessPrivateAnon: on a MAP_PRIVATE anonymous page, a
    forked child waits (6 s timeout); the parent's FUTEX_WAKE(1) returns 0 (private
    futexes are per process, and so are shared ops on a private mapping); the child's wait
    fails with ETIMEDOUT (its "exit status 0")."""
    p = kernel.new_process()
    t = p.new_task()
    ptr = word(p, 1)
    ts = timespec(p, INEFFECTIVE_WAKE_TIMEOUT)
    child = p.fork()
    ct = child.new_task()
    b = start_wait(run_blocking, ct, ptr, WAIT | flag(priv), 1, ts, 0, 0)
    assert t.syscall_futex(ptr, WAKE | flag(priv), 1, 0, 0, 0) == 0
    blocked = ct.blocked
    assert blocked is not None
    assert_times_out(clock, [blocked], INEFFECTIVE_WAKE_TIMEOUT)
    assert b.result() == -abi.ETIMEDOUT


def test_wake_after_cow_break(kernel: LinuxKernel, run_blocking: Start, priv: bool) -> None:
    """gVisor futex.cc WakeAfterCOWBreak: on a MAP_PRIVATE anonymous page a thread waits
    on ptr == 1; the process forks (the child just sits there); the parent's fetch_add
    breaks copy-on-write, and its FUTEX_WAKE(1) still returns 1 (the key names the address
    in this address space, not the page); the wait returns 0.  Added: the child's page
    keeps 1, and a wake from the child finds no one."""
    p = kernel.new_process()
    t, waiter = p.new_task(), p.new_task()
    ptr = word(p, 1)
    b = start_wait(run_blocking, waiter, ptr, WAIT | flag(priv), 1, 0, 0, 0)
    child = p.fork()
    ct = child.new_task()  # "while (true) pause();"
    assert fetch_add(p, ptr) == 1
    assert p.load_u32(ptr) == 2
    assert child.load_u32(ptr) == 1, "copy-on-write was not broken"
    assert ct.syscall_futex(ptr, WAKE | flag(priv), 1, 0, 0, 0) == 0
    assert waiter.blocked is not None
    assert t.syscall_futex(ptr, WAKE | flag(priv), 1, 0, 0, 0) == 1
    assert b.result() == 0


def test_wake_wrong_kind(
    kernel: LinuxKernel, clock: ManualClock, run_blocking: Start, priv: bool
) -> None:
    """gVisor futex.cc WakeWrongKind: a thread waits with the private flag set as the
    parameter says (6 s timeout); a++ and a FUTEX_WAKE(1) of the other kind returns 0 (a
    private and a shared key never match); the wait fails with ETIMEDOUT."""
    p = kernel.new_process()
    t, waiter = p.new_task(), p.new_task()
    a = word(p, 1)
    ts = timespec(p, INEFFECTIVE_WAKE_TIMEOUT)
    b = start_wait(run_blocking, waiter, a, WAIT | flag(priv), 1, ts, 0, 0)
    fetch_add(p, a)
    assert t.syscall_futex(a, WAKE | flag(not priv), 1, 0, 0, 0) == 0
    blocked = waiter.blocked
    assert blocked is not None
    assert_times_out(clock, [blocked], INEFFECTIVE_WAKE_TIMEOUT)
    assert b.result() == -abi.ETIMEDOUT


# -- PrivateFutexTest: WAKE_OP with a NULL first word ---------------------------------------


def wake_op0(kernel: LinuxKernel, op: int, oparg: int, initial: int) -> int:
    """A private FUTEX_WAKE_OP(NULL, &a, 0, 0, FUTEX_OP(op, oparg, 0, 0)) on a word holding
    ``initial``: asserts it returns 0 and returns the word's new value."""
    p = kernel.new_process()
    t = p.new_task()
    a = word(p, initial)
    encoded = abi.FUTEX_OP(op, oparg, 0, 0)
    assert t.syscall_futex(0, WAKE_OP | abi.FUTEX_PRIVATE_FLAG, 0, 0, a, encoded) == 0
    return p.load_u32(a)


def test_wake_op0_set(kernel: LinuxKernel) -> None:
    """gVisor futex.cc PrivateFutexTest.WakeOp0Set: a = 1; a private FUTEX_WAKE_OP with a
    NULL first word (legal for private futexes) and FUTEX_OP(SET, 2, 0, 0) returns 0;
    a == 2."""
    assert wake_op0(kernel, abi.FUTEX_OP_SET, 2, 1) == 2


def test_wake_op0_add(kernel: LinuxKernel) -> None:
    """gVisor futex.cc PrivateFutexTest.WakeOp0Add: a = 1; FUTEX_OP(ADD, 1, 0, 0) returns
    0; a == 2."""
    assert wake_op0(kernel, abi.FUTEX_OP_ADD, 1, 1) == 2


def test_wake_op0_or(kernel: LinuxKernel) -> None:
    """gVisor futex.cc PrivateFutexTest.WakeOp0Or: a = 0b01; FUTEX_OP(OR, 0b10, 0, 0)
    returns 0; a == 0b11."""
    assert wake_op0(kernel, abi.FUTEX_OP_OR, 0b10, 0b01) == 0b11


def test_wake_op0_andn(kernel: LinuxKernel) -> None:
    """gVisor futex.cc PrivateFutexTest.WakeOp0Andn: a = 0b11; FUTEX_OP(ANDN, 0b10, 0, 0)
    returns 0; a == 0b01."""
    assert wake_op0(kernel, abi.FUTEX_OP_ANDN, 0b10, 0b11) == 0b01


def test_wake_op0_xor(kernel: LinuxKernel) -> None:
    """gVisor futex.cc PrivateFutexTest.WakeOp0Xor: a = 0b1010; FUTEX_OP(XOR, 0b1100, 0,
    0) returns 0; a == 0b0110."""
    assert wake_op0(kernel, abi.FUTEX_OP_XOR, 0b1100, 0b1010) == 0b0110


def test_wake_op0_null_is_private_only(kernel: LinuxKernel) -> None:
    """gVisor futex.cc PrivateFutexTest ("Passing null as the address only works for
    private futexes"): the same FUTEX_WAKE_OP without the private flag fails with EFAULT
    (the shared key of NULL needs a mapping) and leaves a untouched."""
    p = kernel.new_process()
    t = p.new_task()
    a = word(p, 1)
    encoded = abi.FUTEX_OP(abi.FUTEX_OP_SET, 2, 0, 0)
    assert t.syscall_futex(0, WAKE_OP, 0, 0, a, encoded) == -abi.EFAULT
    assert p.load_u32(a) == 1


def test_wake_op0_counts_with_waiters(kernel: LinuxKernel, priv: bool) -> None:
    """gVisor futex.cc PrivateFutexTest.WakeOp0* with waiters present (reference 2.5):
    counts of 0 still wake one waiter on each word in Linux (``if (++ret >= nr) break``
    comes after the wake; gVisor lets nwake2 <= 0 wake nobody): FUTEX_WAKE_OP(a, b, 0, 0,
    FUTEX_OP(SET, 2, CMP_EQ, 1)) with two waiters on each word returns 2."""
    p = kernel.new_process()
    t = p.new_task()
    a, b = word(p, 1), word(p, 1)
    ws = [
        pending(p.new_task().syscall_futex_nb(addr, WAIT | flag(priv), 1, 0, 0, 0))
        for addr in (a, a, b, b)
    ]
    op = abi.FUTEX_OP(abi.FUTEX_OP_SET, 2, abi.FUTEX_OP_CMP_EQ, 1)
    assert t.syscall_futex(a, WAKE_OP | flag(priv), 0, 0, b, op) == 2
    assert p.load_u32(b) == 2
    assert [w.done() for w in ws] == [True, False, True, False]
    assert [ws[0].result(), ws[2].result()] == [0, 0]
    for w in (ws[1], ws[3]):
        assert w.task.interrupt(handler=True, restart=False)
        assert w.result() == -abi.EINTR


def test_wake_op_signed_12_bit_arguments(kernel: LinuxKernel, priv: bool) -> None:
    """gVisor futex.cc WakeOp0Add / WakeOpCondSuccess, with the arguments Linux
    sign-extends (reference 2.2; gVisor reads them unsigned): FUTEX_OP(ADD, 0xfff, CMP_LT,
    0) adds -1, and compares the old value, as a signed int, with 0.  On a word holding
    0xffffffff (-1) it leaves 0xfffffffe and wakes the word's waiter."""
    p = kernel.new_process()
    t = p.new_task()
    other, a = word(p, 0), word(p, 0xFFFFFFFF)
    waiter = pending(p.new_task().syscall_futex_nb(a, WAIT | flag(priv), 0xFFFFFFFF, 0, 0, 0))
    op = abi.FUTEX_OP(abi.FUTEX_OP_ADD, 0xFFF, abi.FUTEX_OP_CMP_LT, 0)
    assert t.syscall_futex(other, WAKE_OP | flag(priv), 1, 1, a, op) == 1
    assert p.load_u32(a) == 0xFFFFFFFE
    assert waiter.done() and waiter.result() == 0


# -- SharedFutexTest: across fork ------------------------------------------------------------


def shared_word(p: Process, backing: str) -> int:
    """A word holding 1 on a MAP_SHARED anonymous page, or a MAP_SHARED one-page file."""
    if backing == "file":
        ptr = p.mmap(4096, shared=True, file=File("futex-test-file", size=4096))
    else:
        ptr = p.mmap(4096, shared=True)
    p.store_u32(ptr, 1)
    return ptr


def wake_interprocess(kernel: LinuxKernel, run_blocking: Start, backing: str) -> None:
    p = kernel.new_process()
    t = p.new_task()
    ptr = shared_word(p, backing)
    child = p.fork()
    ct = child.new_task()
    b = start_wait(run_blocking, ct, ptr, WAIT, 1, 0, 0, 0)
    fetch_add(p, ptr)
    assert child.load_u32(ptr) == 2
    assert t.syscall_futex(ptr, WAKE, 1, 0, 0, 0) == 1
    assert b.result() == 0


def test_wake_interprocess_shared_anon(kernel: LinuxKernel, run_blocking: Start) -> None:
    """gVisor futex.cc SharedFutexTest.WakeInterprocessSharedAnon: on a MAP_SHARED
    anonymous page holding 1, a forked child does a shared FUTEX_WAIT for 1; the parent
    does a++ (the child sees it) and a shared FUTEX_WAKE(1), which returns 1; the child's
    wait returns 0 (its "exit status 0")."""
    wake_interprocess(kernel, run_blocking, "anon")


def test_wake_interprocess_file(kernel: LinuxKernel, run_blocking: Start) -> None:
    """gVisor futex.cc SharedFutexTest.WakeInterprocessFile: as WakeInterprocessSharedAnon
    on a MAP_SHARED mapping of a one-page file: the wake returns 1, the child's wait 0."""
    wake_interprocess(kernel, run_blocking, "file")


@pytest.mark.parametrize(
    "backing", ["anon", "file"], ids=["WakeInterprocessSharedAnon", "WakeInterprocessFile"]
)
def test_wake_interprocess_shared_private_flag_misses(
    kernel: LinuxKernel, clock: ManualClock, run_blocking: Start, backing: str
) -> None:
    """gVisor futex.cc SharedFutexTest.WakeInterprocessSharedAnon / WakeInterprocessFile,
    counterpart: with FUTEX_PRIVATE_FLAG on both sides the same shared page does not
    connect the processes (private futexes are per address space): the wake returns 0 and
    the child's 6 s wait fails with ETIMEDOUT."""
    p = kernel.new_process()
    t = p.new_task()
    ptr = shared_word(p, backing)
    ts = timespec(p, INEFFECTIVE_WAKE_TIMEOUT)
    child = p.fork()
    ct = child.new_task()
    b = start_wait(run_blocking, ct, ptr, WAIT | abi.FUTEX_PRIVATE_FLAG, 1, ts, 0, 0)
    fetch_add(p, ptr)
    assert t.syscall_futex(ptr, WAKE | abi.FUTEX_PRIVATE_FLAG, 1, 0, 0, 0) == 0
    blocked = ct.blocked
    assert blocked is not None
    assert_times_out(clock, [blocked], INEFFECTIVE_WAKE_TIMEOUT)
    assert b.result() == -abi.ETIMEDOUT
