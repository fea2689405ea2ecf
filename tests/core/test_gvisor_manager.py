"""gVisor's futex unit tests (``pkg/sentry/kernel/futex/futex_test.go``), ported to the core.

Each case of the original runs against :class:`futex.kernel.FutexManager` over a
:class:`futex.memory.AddressSpace`, once with private keys and once with shared ones
(gVisor's ``shared``/``private`` subtests).  As in gVisor's fixture, the shared variant keys
a ``MAP_SHARED`` mapping, so its waiters live in the shared table.  Every waiter waits for
the value 0 on memory that holds 0; the original's word 0 and word 4 are ``base`` and
``base + 4`` here.

After the ports come the cases the reference lists as missing from gVisor's unit tests
(requeue, compare-requeue, misaligned addresses, ``wait_complete`` after and racing a
requeue, private and shared keys never matching, WAKE_OP operators other than SET), each
marked "gap after gVisor futex_test.go".

Every scenario ends with :func:`finish`: the waiters are completed (``wait_complete`` must
agree with who was woken), and the manager must be empty and consistent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from futex.kernel import (
    MATCH_ANY,
    PRIORITY,
    FutexManager,
    MemoryFault,
    MisalignedAddress,
    QueueOrder,
    ValueMismatch,
    Waiter,
)
from futex.kernel.waiter import WaitQueue
from futex.memory import PROT_READ, PROT_WRITE, AddressSpace

#: Real seconds a thread may take before a test calls it stuck (only ever reached on a bug).
STUCK = 30.0

# gVisor's WakeOp ``op`` values, decoded: op=0 is SET 0 / CMP_EQ 0 (the word stays 0 and the
# condition holds); op=1 is SET 0 / CMP_EQ 1 (the condition fails).


def set_zero(old: int) -> int:
    return 0


def cmp_eq_0(old: int) -> bool:
    return old == 0


def cmp_eq_1(old: int) -> bool:
    return old == 1


@dataclass
class Env:
    """A manager, an address space with one page of zeros, and the kind of key to use."""

    m: FutexManager
    s: AddressSpace
    base: int
    private: bool
    waiters: list[Waiter] = field(default_factory=list)

    def wait(self, off: int = 0, bitset: int = MATCH_ANY, val: int = 0) -> Waiter:
        """gVisor's ``newPreparedTestWaiter``: a waiter queued on word ``base + off``."""
        w = Waiter()
        self.m.wait_prepare(w, self.s, self.base + off, self.private, val, bitset)
        self.waiters.append(w)
        return w

    def wake(self, off: int = 0, bitset: int = MATCH_ANY, n: int = 1) -> int:
        return self.m.wake(self.s, self.base + off, self.private, bitset, n)

    def wake_op(
        self,
        off1: int,
        off2: int,
        n1: int,
        n2: int,
        update: Callable[[int], int] = set_zero,
        compare: Callable[[int], bool] = cmp_eq_0,
    ) -> int:
        return self.m.wake_op(
            self.s, self.base + off1, self.base + off2, self.private, n1, n2, update, compare
        )

    def requeue(
        self, off1: int, off2: int, nwake: int, nreq: int, cmpval: int | None = None
    ) -> tuple[int, int]:
        return self.m.requeue(
            self.s, self.base + off1, self.base + off2, self.private, nwake, nreq, cmpval
        )

    def queued_on(self, off: int) -> list[Waiter]:
        """The waiters queued on word ``base + off``, in wake order."""
        key = self.s.futex_key(self.base + off, self.private)
        return self.m.queues().get(key, [])


def finish(env: Env) -> None:
    """Complete every waiter: ``wait_complete`` reports a wake exactly for the woken ones;
    afterwards nothing is queued and the invariants hold."""
    env.m.check_invariants()
    for w in env.waiters:
        assert env.m.wait_complete(w) is w.woken
        assert not w.queued
    env.waiters.clear()
    assert env.m.queues() == {}
    assert env.m.stats().queued == 0
    env.m.check_invariants()


@pytest.fixture(params=[True, False], ids=["private", "shared"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    s = AddressSpace()
    base = s.mmap(4096, shared=True)
    e = Env(FutexManager(), s, base, private=request.param)
    yield e
    e.m.check_invariants()


def woken(ws: list[Waiter]) -> list[bool]:
    return [w.woken for w in ws]


# -- ports of futex_test.go ----------------------------------------------------------------


def test_futex_wake(env: Env) -> None:
    """gVisor futex_test.go TestFutexWake: one waiter, Wake(n=1) returns 1 and wakes it."""
    w = env.wait()
    assert not w.woken
    assert env.wake(n=1) == 1
    assert w.woken
    finish(env)


def test_futex_wake_bitmask(env: Env) -> None:
    """gVisor futex_test.go TestFutexWakeBitmask: a waiter with bitset 0x0000ffff is not
    woken by mask 0xffff0000 (returns 0) and is woken by mask 0x00000001 (returns 1)."""
    w = env.wait(bitset=0x0000FFFF)
    assert env.wake(bitset=0xFFFF0000, n=1) == 0
    assert not w.woken
    assert env.queued_on(0) == [w]
    assert env.wake(bitset=0x00000001, n=1) == 1
    assert w.woken
    finish(env)


def test_futex_wake_two(env: Env) -> None:
    """gVisor futex_test.go TestFutexWakeTwo: three waiters, Wake(n=2) returns 2 and wakes
    exactly two of them (the first two queued: equal-priority waiters wake in FIFO order,
    as in Linux's plist)."""
    ws = [env.wait() for _ in range(3)]
    assert env.wake(n=2) == 2
    assert sum(woken(ws)) == 2
    assert woken(ws) == [True, True, False]
    assert env.queued_on(0) == [ws[2]]
    finish(env)


def test_futex_wake_unrelated(env: Env) -> None:
    """gVisor futex_test.go TestFutexWakeUnrelated: waiters on words 0 and 4; Wake(word 4,
    n=2) returns 1 and wakes only the word-4 waiter."""
    w0 = env.wait(0)
    w4 = env.wait(4)
    assert env.wake(4, n=2) == 1
    assert not w0.woken
    assert w4.woken
    assert env.queued_on(0) == [w0]
    finish(env)


def test_wake_op_empty(env: Env) -> None:
    """gVisor futex_test.go TestWakeOpEmpty: WakeOp(0, 4, 10, 10, op=0) with no waiters
    returns 0 (the op still runs: the word at 4 is written with 0)."""
    env.s.store_u32(env.base + 4, 7)
    assert env.wake_op(0, 4, 10, 10) == 0
    assert env.s.load_u32(env.base + 4) == 0
    finish(env)


def test_wake_op_first_non_empty(env: Env) -> None:
    """gVisor futex_test.go TestWakeOpFirstNonEmpty: two waiters on word 0,
    WakeOp(0, 4, 10, 0, op=0) returns 2 and wakes both."""
    ws = [env.wait(0) for _ in range(2)]
    assert env.wake_op(0, 4, 10, 0) == 2
    assert woken(ws) == [True, True]
    finish(env)


def test_wake_op_second_non_empty(env: Env) -> None:
    """gVisor futex_test.go TestWakeOpSecondNonEmpty: two waiters on word 4,
    WakeOp(0, 4, 0, 10, op=0) returns 2 and wakes both (the condition holds)."""
    ws = [env.wait(4) for _ in range(2)]
    assert env.wake_op(0, 4, 0, 10) == 2
    assert woken(ws) == [True, True]
    finish(env)


def test_wake_op_second_non_empty_failing_op(env: Env) -> None:
    """gVisor futex_test.go TestWakeOpSecondNonEmptyFailingOp: two waiters on word 4,
    WakeOp(0, 4, 0, 10, op=1) returns 0 (the condition fails) and wakes neither."""
    ws = [env.wait(4) for _ in range(2)]
    assert env.wake_op(0, 4, 0, 10, compare=cmp_eq_1) == 0
    assert woken(ws) == [False, False]
    assert env.queued_on(4) == ws
    finish(env)


def test_wake_op_all_non_empty(env: Env) -> None:
    """gVisor futex_test.go TestWakeOpAllNonEmpty: two waiters on word 0 and two on word 4;
    WakeOp(0, 4, 10, 10, op=0) returns 4 and wakes all four."""
    w0 = [env.wait(0) for _ in range(2)]
    w4 = [env.wait(4) for _ in range(2)]
    assert env.wake_op(0, 4, 10, 10) == 4
    assert woken(w0 + w4) == [True] * 4
    finish(env)


def test_wake_op_all_non_empty_failing_op(env: Env) -> None:
    """gVisor futex_test.go TestWakeOpAllNonEmptyFailingOp: two waiters on each word;
    WakeOp(0, 4, 10, 10, op=1) returns 2 and wakes only the word-0 waiters."""
    w0 = [env.wait(0) for _ in range(2)]
    w4 = [env.wait(4) for _ in range(2)]
    assert env.wake_op(0, 4, 10, 10, compare=cmp_eq_1) == 2
    assert woken(w0) == [True, True]
    assert woken(w4) == [False, False]
    assert env.queued_on(4) == w4
    finish(env)


def test_wake_op_same_address(env: Env) -> None:
    """gVisor futex_test.go TestWakeOpSameAddress: four waiters on word 0;
    WakeOp(0, 0, 1, 1, op=0) returns 2 and wakes exactly two (one per half)."""
    ws = [env.wait(0) for _ in range(4)]
    assert env.wake_op(0, 0, 1, 1) == 2
    assert sum(woken(ws)) == 2
    assert woken(ws) == [True, True, False, False]  # FIFO among equals
    finish(env)


def test_wake_op_same_address_failing_op(env: Env) -> None:
    """gVisor futex_test.go TestWakeOpSameAddressFailingOp: four waiters on word 0;
    WakeOp(0, 0, 1, 1, op=1) returns 1 and wakes exactly one."""
    ws = [env.wait(0) for _ in range(4)]
    assert env.wake_op(0, 0, 1, 1, compare=cmp_eq_1) == 1
    assert sum(woken(ws)) == 1
    assert woken(ws) == [True, False, False, False]
    finish(env)


class _TestMutex:
    """gVisor's ``testMutex``: Lock is CAS 0->1, else wait for 1 (retrying on a value
    mismatch); Unlock stores 0 and wakes everyone."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.addr = env.base

    def lock(self) -> None:
        env = self.env
        got = threading.Event()
        w = Waiter(lambda _w: got.set())
        while env.s.cas_u32(self.addr, 0, 1) != 0:
            got.clear()
            try:
                env.m.wait_prepare(w, env.s, self.addr, env.private, 1, MATCH_ANY)
            except ValueMismatch:
                continue
            if not got.wait(STUCK):  # a lost wake-up: fail rather than hang
                env.m.wait_complete(w)
                raise AssertionError("lost wake-up: a waiter was never woken")
            assert env.m.wait_complete(w) is True

    def unlock(self) -> None:
        self.env.s.store_u32(self.addr, 0)
        self.env.m.wake(self.env.s, self.addr, self.env.private, MATCH_ANY, 2**31 - 1)


def test_mutex_stress(env: Env) -> None:
    """gVisor futex_test.go TestMutexStress: 10 threads x 1000 lock/yield/unlock rounds of a
    futex mutex complete without deadlock.  Added: mutual exclusion holds (a counter
    updated non-atomically inside the critical section ends exact, and no two threads are
    ever inside at once)."""
    mu = _TestMutex(env)
    threads_n, rounds = 10, 1000
    state = {"count": 0, "inside": 0, "overlaps": 0}
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(rounds):
                mu.lock()
                state["inside"] += 1
                if state["inside"] != 1:
                    state["overlaps"] += 1
                c = state["count"]
                time.sleep(0)  # a yield, like Gosched
                state["count"] = c + 1
                state["inside"] -= 1
                mu.unlock()
        except BaseException as exc:  # reported below
            errors.append(exc)

    ts = [threading.Thread(target=worker, daemon=True) for _ in range(threads_n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(STUCK)
        assert not t.is_alive(), "deadlock: a mutex thread never finished"
    assert errors == []
    assert state["overlaps"] == 0
    assert state["count"] == threads_n * rounds
    assert env.s.load_u32(mu.addr) == 0
    finish(env)


# -- gaps after gVisor futex_test.go ---------------------------------------------------------


def test_requeue_wakes_then_moves(env: Env) -> None:
    """Gap after gVisor futex_test.go: Requeue.  Four waiters on word 0; Requeue(0 -> 4,
    nwake=1, nreq=2) wakes the first, moves the next two to word 4 (in order, bitsets
    kept) and leaves the last; it reports (1 woken, 2 moved).  Moved waiters answer wakes on
    word 4, not word 0."""
    ws = [env.wait(0, bitset=1 << i) for i in range(4)]
    assert env.requeue(0, 4, nwake=1, nreq=2) == (1, 2)
    assert woken(ws) == [True, False, False, False]
    assert env.queued_on(0) == [ws[3]]
    assert env.queued_on(4) == [ws[1], ws[2]]
    assert [w.bitset for w in ws] == [1, 2, 4, 8]
    env.m.check_invariants()
    # The requeue ignored bitsets; a later wake on word 4 honours the kept ones.
    assert env.wake(4, bitset=4, n=10) == 1
    assert woken(ws) == [True, False, True, False]
    assert env.wake(0, bitset=2, n=10) == 0  # ws[1] is no longer on word 0
    assert env.wake(4, n=10) == 1
    assert env.wake(0, n=10) == 1
    assert woken(ws) == [True, True, True, True]
    finish(env)


def test_requeue_zero_counts_and_order(env: Env) -> None:
    """Gap after gVisor futex_test.go: Requeue with nwake=0 moves without waking, and moved
    waiters join the tail of the target queue after its existing waiters."""
    old = env.wait(4)
    ws = [env.wait(0) for _ in range(3)]
    assert env.requeue(0, 4, nwake=0, nreq=10) == (0, 3)
    assert woken(ws) == [False] * 3
    assert env.queued_on(0) == []
    assert env.queued_on(4) == [old, *ws]
    assert env.requeue(4, 0, nwake=0, nreq=0) == (0, 0)
    assert env.queued_on(4) == [old, *ws]
    finish(env)


def test_requeue_same_address_terminates(env: Env) -> None:
    """Gap after gVisor futex_test.go: Requeue onto the same word with a huge nreq (gVisor
    cycles ~2**31 times under the lock here) ends at once, counts the waiters as Linux
    does, and leaves them queued in order."""
    ws = [env.wait(0) for _ in range(2)]
    assert env.requeue(0, 0, nwake=0, nreq=2**31 - 1) == (0, 2)
    assert env.queued_on(0) == ws
    assert woken(ws) == [False, False]
    finish(env)


def test_requeue_cmp(env: Env) -> None:
    """Gap after gVisor futex_test.go: RequeueCmp.  With the word at 0 holding 5, a
    compare value of 6 raises ValueMismatch and neither wakes nor moves anyone; a compare
    value of 5 proceeds."""
    ws = [env.wait(0) for _ in range(3)]
    env.s.store_u32(env.base, 5)
    with pytest.raises(ValueMismatch):
        env.requeue(0, 4, nwake=1, nreq=1, cmpval=6)
    assert woken(ws) == [False] * 3
    assert env.queued_on(0) == ws
    assert env.queued_on(4) == []
    assert env.requeue(0, 4, nwake=1, nreq=1, cmpval=5) == (1, 1)
    assert woken(ws) == [True, False, False]
    assert env.queued_on(4) == [ws[1]]
    assert env.queued_on(0) == [ws[2]]
    finish(env)


@pytest.mark.parametrize("delta", [1, 2, 3])
def test_misaligned_address(env: Env, delta: int) -> None:
    """Gap after gVisor futex_test.go: a misaligned word is EINVAL (MisalignedAddress) for
    wait_prepare, wake, requeue (either word) and wake_op (either word), and nothing is
    queued, woken, moved or written."""
    bad = env.base + delta
    w = env.wait(4)
    with pytest.raises(MisalignedAddress):
        env.m.wait_prepare(Waiter(), env.s, bad, env.private, 0, MATCH_ANY)
    with pytest.raises(MisalignedAddress):
        env.m.wake(env.s, bad, env.private, MATCH_ANY, 1)
    with pytest.raises(MisalignedAddress):
        env.m.requeue(env.s, bad, env.base + 4, env.private, 1, 1)
    with pytest.raises(MisalignedAddress):
        env.m.requeue(env.s, env.base + 4, bad, env.private, 1, 1)
    with pytest.raises(MisalignedAddress):
        env.m.requeue(env.s, bad, env.base + 4, env.private, 1, 1, 0)
    env.s.store_u32(env.base + 4, 3)
    env.s.store_u32(env.base + 8, 3)

    def fail(_old: int) -> int:
        raise AssertionError("the word must not be touched")

    with pytest.raises(MisalignedAddress):
        env.m.wake_op(env.s, bad, env.base + 8, env.private, 1, 1, fail, cmp_eq_0)
    with pytest.raises(MisalignedAddress):
        env.m.wake_op(env.s, env.base + 4, bad + 4, env.private, 1, 1, fail, cmp_eq_0)
    assert env.s.load_u32(env.base + 8) == 3
    assert not w.woken
    assert env.queued_on(4) == [w]
    finish(env)


def test_misaligned_checked_before_memory(env: Env) -> None:
    """Gap after gVisor futex_test.go: alignment is checked before the mapping (Linux
    ``get_futex_key``): a misaligned unmapped word is MisalignedAddress, the aligned one
    next to it is a MemoryFault for a wait (and for shared keys, a wake)."""
    hole = env.s.mmap(4096)
    env.s.munmap(hole, 4096)
    with pytest.raises(MisalignedAddress):
        env.m.wait_prepare(Waiter(), env.s, hole + 2, env.private, 0, MATCH_ANY)
    with pytest.raises(MisalignedAddress):
        env.m.wake(env.s, hole + 2, env.private, MATCH_ANY, 1)
    with pytest.raises(MemoryFault):
        env.m.wait_prepare(Waiter(), env.s, hole, env.private, 0, MATCH_ANY)
    if env.private:
        assert env.m.wake(env.s, hole, True, MATCH_ANY, 1) == 0  # private: no memory check
    else:
        with pytest.raises(MemoryFault):
            env.m.wake(env.s, hole, False, MATCH_ANY, 1)
    finish(env)


def test_wait_complete_after_requeue(env: Env) -> None:
    """Gap after gVisor futex_test.go: WaitComplete of a waiter that a requeue moved (and no
    one woke) finds it in its new queue, dequeues it and reports no wake; a waiter moved
    and then woken on the new word reports the wake."""
    timed_out = env.wait(0)
    woken_late = env.wait(0)
    assert env.requeue(0, 4, nwake=0, nreq=2) == (0, 2)
    assert env.queued_on(4) == [timed_out, woken_late]
    # ``timed_out`` gives up (as after a timeout or signal): found on word 4, dequeued.
    assert env.m.wait_complete(timed_out) is False
    assert not timed_out.queued
    env.waiters.remove(timed_out)
    assert env.queued_on(4) == [woken_late]
    env.m.check_invariants()
    assert env.wake(0, n=10) == 0
    assert env.wake(4, n=10) == 1
    assert woken_late.woken and not timed_out.woken
    finish(env)


def test_wait_complete_racing_requeue(env: Env) -> None:
    """Gap after gVisor futex_test.go: WaitComplete racing a requeue.  While another thread
    requeues a waiter back and forth between words 0 and 4, wait_complete (a timeout or a
    signal) must find it in whichever queue it is, dequeue it, and report no wake;
    afterwards the requeuer never finds it again."""
    for _ in range(20):
        _race_wait_complete_with_requeue(env)


def _race_wait_complete_with_requeue(env: Env) -> None:
    w = env.wait(0)
    moves = [0]
    rounds = [0]
    stop = threading.Event()

    def mover() -> None:
        while not stop.is_set():
            moves[0] += env.requeue(0, 4, 0, 1)[1]
            moves[0] += env.requeue(4, 0, 0, 1)[1]
            rounds[0] += 1

    th = threading.Thread(target=mover, daemon=True)
    th.start()
    try:
        _wait_for(lambda: moves[0] >= 10, "the requeuer moves the waiter")
        assert env.m.wait_complete(w) is False, "an un-woken waiter reported a wake"
        assert not w.woken
        seen = moves[0]
        r = rounds[0]
        _wait_for(lambda: rounds[0] >= r + 5, "the requeuer runs on")
        assert not w.queued, "the waiter is still queued after wait_complete"
        assert moves[0] <= seen + 1, "the requeuer still finds the completed waiter"
    finally:
        stop.set()
        th.join(STUCK)
    assert not th.is_alive()
    env.waiters.remove(w)
    finish(env)


class _MoveHookOrder(QueueOrder):
    """Linux's priority order, calling ``hook(w)`` while a requeue moves ``w``: after it
    has left its old queue and before it joins the new one (both bucket locks held).  A
    queueing policy is where every enqueue passes, the move's included."""

    name = "priority, hooked"

    def __init__(self) -> None:
        self.hook: Callable[[Waiter], None] | None = None

    def enqueue(self, queue: WaitQueue, w: Waiter) -> None:
        if self.hook is not None and w.key is not None and w.key != queue.key:
            self.hook(w)
        PRIORITY.enqueue(queue, w)

    def in_order(self, a: Waiter, b: Waiter) -> bool:
        return PRIORITY.in_order(a, b)


@pytest.mark.parametrize("private", [True, False], ids=["private", "shared"])
def test_wait_complete_inside_requeue_window(private: bool) -> None:
    """Gap after gVisor futex_test.go: WaitComplete racing a requeue, pinned to the worst
    moment: a wait_complete that starts while the requeue is moving the waiter (between its
    two queues) must still report no wake and leave it dequeued (gVisor re-points
    ``w.bucket`` atomically under both locks; Linux moves ``q->lock_ptr`` likewise).

    White-box: the move is observed through the manager's queue order (every enqueue,
    the move's included, asks it where the waiter goes); the helper thread gets a bounded
    head start and, if it blocks on a bucket lock (as a correct implementation may),
    finishes after the requeue."""
    order = _MoveHookOrder()
    m = FutexManager(order=order)
    s = AddressSpace()
    a = s.mmap(4096, shared=True)
    w = Waiter()
    m.wait_prepare(w, s, a, private, 0, MATCH_ANY)
    results: list[bool] = []
    helpers: list[threading.Thread] = []

    def hook(moving: Waiter) -> None:
        assert moving is w
        t = threading.Thread(target=lambda: results.append(m.wait_complete(w)), daemon=True)
        helpers.append(t)
        t.start()
        t.join(0.5)  # bounded: a correct wait_complete may block until the requeue ends

    order.hook = hook
    assert m.requeue(s, a, a + 4, private, 0, 1) == (0, 1)
    order.hook = None
    assert helpers, "the requeue did not move the waiter through its queue order"
    helpers[0].join(STUCK)
    assert not helpers[0].is_alive()
    assert results == [False], "wait_complete reported a wake nobody made"
    assert not w.queued, "the waiter stayed queued after wait_complete returned"
    assert m.wake(s, a + 4, private, MATCH_ANY, 10) == 0
    assert m.queues() == {}
    m.check_invariants()


def _wait_for(cond: Callable[[], bool], what: str) -> None:
    done = threading.Event()
    for _ in range(int(STUCK / 0.0005)):
        if cond():
            return
        done.wait(0.0005)
    raise AssertionError(f"timed out waiting until {what}")


@pytest.mark.parametrize("mapping_shared", [True, False], ids=["map_shared", "map_private"])
def test_private_and_shared_keys_never_match(mapping_shared: bool) -> None:
    """Gap after gVisor futex_test.go: a private and a shared key for the same word never
    match (Linux ``FUT_OFF_MMSHARED``; gVisor KindPrivate vs KindShared*), on a MAP_SHARED
    mapping (mappable key) and on a MAP_PRIVATE one (shared-on-private key): wake, requeue
    and wake_op of one kind leave the other kind's waiters alone."""
    m, s = FutexManager(), AddressSpace()
    a = s.mmap(4096, shared=mapping_shared)
    b = a + 64
    wp, ws = Waiter(), Waiter()
    m.wait_prepare(wp, s, a, True, 0, MATCH_ANY)
    m.wait_prepare(ws, s, a, False, 0, MATCH_ANY)
    assert m.requeue(s, a, b, True, 0, 10) == (0, 1)  # only the private one moves
    assert m.queues()[s.futex_key(b, True)] == [wp]
    assert m.queues()[s.futex_key(a, False)] == [ws]
    assert m.wake(s, b, False, MATCH_ANY, 10) == 0  # shared wake on b: not wp
    assert m.wake_op(s, b, a, False, 10, 0, set_zero, cmp_eq_1) == 0
    assert not wp.woken and not ws.woken
    assert m.wake(s, a, True, MATCH_ANY, 10) == 0  # ws is shared: a private wake misses it
    assert not ws.woken
    m.check_invariants()
    assert m.wake(s, b, True, MATCH_ANY, 10) == 1
    assert wp.woken and not ws.woken
    assert m.wake(s, a, False, MATCH_ANY, 10) == 1
    assert ws.woken
    assert m.wait_complete(wp) and m.wait_complete(ws)
    assert m.queues() == {}
    m.check_invariants()


def test_requeue_and_wake_op_across_tables() -> None:
    """Gap after gVisor futex_test.go: shared ops whose two words fall in different tables
    (a MAP_PRIVATE word: shared-on-private key, private table; a MAP_SHARED word: mappable
    key, shared table) lock both buckets in one order: requeue and wake_op work both
    ways, and threads doing so in opposite directions at once never deadlock."""
    m, s = FutexManager(), AddressSpace()
    p = s.mmap(4096, shared=False)
    q = s.mmap(4096, shared=True)
    ws = [Waiter() for _ in range(4)]
    for w in ws:
        m.wait_prepare(w, s, p, False, 0, MATCH_ANY)
    assert m.requeue(s, p, q, False, 1, 2) == (1, 2)
    assert m.queues()[s.futex_key(q, False)] == ws[1:3]
    assert m.requeue(s, q, p, False, 0, 1) == (0, 1)
    assert m.queues()[s.futex_key(p, False)] == [ws[3], ws[1]]
    assert m.wake_op(s, q, p, False, 1, 1, lambda v: v + 1, cmp_eq_0) == 2
    assert s.load_u32(p) == 1
    m.check_invariants()
    assert woken(ws) == [True, False, True, True]  # q's first waiter, then p's (cond 0 == 0)

    stop = threading.Event()
    counts = [0, 0]

    def shuffle(i: int, x: int, y: int) -> None:
        while not stop.is_set():
            m.requeue(s, x, y, False, 0, 1)
            m.wake_op(s, x, y, False, 0, 0, lambda v: v, lambda v: False)
            counts[i] += 1

    threads = [
        threading.Thread(target=shuffle, args=(0, p, q), daemon=True),
        threading.Thread(target=shuffle, args=(1, q, p), daemon=True),
    ]
    for t in threads:
        t.start()
    _wait_for(lambda: min(counts) >= 300, "both directions make progress")
    stop.set()
    for t in threads:
        t.join(STUCK)
        assert not t.is_alive(), "deadlock between the private and shared tables"
    assert m.wait_complete(ws[1]) is False
    for w in (ws[0], ws[2], ws[3]):
        assert m.wait_complete(w) is True
    assert m.queues() == {}
    m.check_invariants()


@pytest.mark.parametrize(
    ("name", "old", "update", "new"),
    [
        ("ADD", 1, lambda v: v + 1, 2),
        ("ADD wraps", 0xFFFFFFFF, lambda v: v + 2, 1),
        ("OR", 0b01, lambda v: v | 0b10, 0b11),
        ("ANDN", 0b11, lambda v: v & ~0b10, 0b01),
        ("XOR", 0b1010, lambda v: v ^ 0b1100, 0b0110),
        ("SET, shifted oparg", 5, lambda v: 1 << 3, 8),
    ],
)
def test_wake_op_operators(
    env: Env, name: str, old: int, update: Callable[[int], int], new: int
) -> None:
    """Gap after gVisor futex_test.go: WAKE_OP with operators other than SET.  The update
    is applied to the word (to 32 bits), the comparison sees the old value, and it alone
    decides whether the second word's waiters wake."""
    env.s.store_u32(env.base, 0)
    env.s.store_u32(env.base + 4, old)
    w0 = env.wait(0)
    w4 = [env.wait(4, val=old) for _ in range(2)]
    seen: list[int] = []

    def compare_false(v: int) -> bool:
        seen.append(v)
        return False

    assert env.wake_op(0, 4, 1, 2, update, compare_false) == 1
    assert seen == [old]
    assert env.s.load_u32(env.base + 4) == new
    assert w0.woken and woken(w4) == [False, False]
    # Again, on the new value, with a comparison that holds: both word-4 waiters wake.
    seen.clear()
    again = update(new) & 0xFFFFFFFF

    def compare_true(v: int) -> bool:
        seen.append(v)
        return True

    assert env.wake_op(0, 4, 1, 2, update, compare_true) == 2
    assert seen == [new]
    assert env.s.load_u32(env.base + 4) == again
    assert woken(w4) == [True, True]
    finish(env)


def test_wake_op_compare_error_after_write(env: Env) -> None:
    """Gap after gVisor futex_test.go: a WAKE_OP comparison that fails (Linux: an unknown
    comparison, ENOSYS) propagates after the word was written and before anyone wakes."""
    w0 = env.wait(0)
    w4 = env.wait(4)

    class UnknownCompare(Exception):
        pass

    def bad(_old: int) -> bool:
        raise UnknownCompare

    with pytest.raises(UnknownCompare):
        env.wake_op(0, 4, 1, 1, lambda v: v + 5, bad)
    assert env.s.load_u32(env.base + 4) == 5
    assert not w0.woken and not w4.woken
    finish(env)


def test_wake_op_read_only_second_word_faults() -> None:
    """Gap after gVisor futex_test.go: WAKE_OP writes its second word, so a read-only one
    is a MemoryFault (EFAULT) and no one wakes, not even on the first word."""
    m, s = FutexManager(), AddressSpace()
    a = s.mmap(4096, shared=True)
    ro = s.mmap(4096, shared=True, prot=PROT_READ)
    w = Waiter()
    m.wait_prepare(w, s, a, False, 0, MATCH_ANY)
    with pytest.raises(MemoryFault):
        m.wake_op(s, a, ro, False, 1, 1, lambda v: v + 1, cmp_eq_0)
    assert not w.woken
    s.mprotect(ro, 4096, PROT_READ | PROT_WRITE)
    assert m.wake_op(s, a, ro, False, 1, 1, lambda v: v + 1, cmp_eq_0) == 1
    assert s.load_u32(ro) == 1
    assert m.wait_complete(w) is True
    m.check_invariants()
