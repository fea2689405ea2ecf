"""Zircon futexes: the core futex tests, the futex-ownership tests, the bad-handle job
policy, and priority inheritance.

Sources: ``zircon/system/utest/core/futex/futex.cc`` (mist-os), ``zircon/system/utest/
futex-ownership/ownership.cc`` and ``bad-handle.cc`` (vsrinivas/fuchsia), and the
ownership contract of ``docs/reference/kernel_objects/futex.md`` — each test names its
case.  Time is a manual clock (deadlines are absolute monotonic ns); waits run
cooperatively (``futex_wait_nb``) unless a test is about real threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from futex.kernel import ClockId, ManualClock
from futex.zircon import (
    BadHandlePolicy,
    Process,
    ProcessKilled,
    Thread,
    ThreadState,
    ZirconKernel,
    ZirconPendingWait,
)
from futex.zircon.abi import (
    ZX_ERR_BAD_HANDLE,
    ZX_ERR_BAD_STATE,
    ZX_ERR_INVALID_ARGS,
    ZX_ERR_TIMED_OUT,
    ZX_ERR_WRONG_TYPE,
    ZX_HANDLE_INVALID,
    ZX_KOID_INVALID,
    ZX_OK,
    ZX_TASK_RETCODE_EXCEPTION_KILL,
    ZX_TASK_RETCODE_POLICY_KILL,
    ZX_TIME_INFINITE,
)

UINT32_MAX = 0xFFFFFFFF
MS = 1_000_000
INF = ZX_TIME_INFINITE


@dataclass
class Env:
    kernel: ZirconKernel
    clock: ManualClock
    process: Process
    main: Thread
    f: int  # a futex word (value 0) ...
    f2: int  # ... and two more on the same page
    f3: int

    def thread(self, name: str = "", priority: int = 16, *, start: bool = True) -> Thread:
        t = self.process.new_thread(name, priority=priority)
        if start:
            t.start()
        return t

    def handle(self, t: Thread) -> int:
        return self.process.handle(t)

    def wait(
        self, t: Thread, addr: int, owner: Thread | None = None, deadline: int = INF,
        value: int = 0,
    ) -> ZirconPendingWait:
        h = ZX_HANDLE_INVALID if owner is None else self.handle(owner)
        r = t.futex_wait_nb(addr, value, h, deadline)
        assert isinstance(r, ZirconPendingWait), f"wait ended at once with {r}"
        return r

    def owner(self, addr: int) -> int:
        return self.main.get_owner(addr)

    def now(self) -> int:
        return self.clock.now(ClockId.MONOTONIC)


@pytest.fixture
def env() -> Iterator[Env]:
    clock = ManualClock()
    k = ZirconKernel(clock=clock)
    p = k.new_process()
    main = p.new_thread("main")
    main.start()
    base = p.mmap(4096)
    yield Env(k, clock, p, main, base, base + 4, base + 8)
    k.check_invariants()


def woken(waits: list[ZirconPendingWait]) -> int:
    return sum(w.done() for w in waits)


# -- core futex tests (futex.cc) -----------------------------------------------------------


def test_wait_value_mismatch(env: Env) -> None:
    """futex.cc WaitValueMismatch: wait(&v, v+1) -> ZX_ERR_BAD_STATE."""
    env.process.store_u32(env.f, 7)
    assert env.main.futex_wait(env.f, 8, ZX_HANDLE_INVALID, INF) == ZX_ERR_BAD_STATE


def test_wait_timeout(env: Env) -> None:
    """futex.cc WaitTimeout: a deadline of 0 is already past -> ZX_ERR_TIMED_OUT."""
    assert env.main.futex_wait(env.f, 0, ZX_HANDLE_INVALID, 0) == ZX_ERR_TIMED_OUT


def test_wait_timeout_elapsed(env: Env) -> None:
    """futex.cc WaitTimeoutElapsed: 5 waits with deadline now+100 ms each time out, and
    never before the deadline."""
    for _ in range(5):
        deadline = env.now() + 100 * MS
        w = env.wait(env.main, env.f, deadline=deadline)
        env.clock.advance(100 * MS - 1)
        assert not w.done()
        env.clock.advance(1)
        assert w.result() == ZX_ERR_TIMED_OUT
        assert env.now() >= deadline


def test_wait_bad_address(env: Env) -> None:
    """futex.cc WaitBadAddress: a null pointer -> ZX_ERR_INVALID_ARGS."""
    assert env.main.futex_wait(0, 0, ZX_HANDLE_INVALID, INF) == ZX_ERR_INVALID_ARGS


def test_wakeup_real_thread(env: Env) -> None:
    """futex.cc Wakeup: one waiter on a real thread; wake(UINT32_MAX) -> it gets ZX_OK."""
    t = env.thread("waiter")
    out: list[int] = []
    th = threading.Thread(target=lambda: out.append(t.futex_wait(env.f, 0, 0, INF)))
    th.start()
    for _ in range(10_000_000):  # wait for state: the thread is blocked on the futex
        if t.blocked is not None:
            break
    assert env.main.futex_wake(env.f, UINT32_MAX) == ZX_OK
    th.join(timeout=60)
    assert out == [ZX_OK]


def test_wakeup_limit(env: Env) -> None:
    """futex.cc WakeupLimit: 4 waiters; wake(2) wakes exactly 2; wake(all) the rest."""
    waits = [env.wait(env.thread(), env.f) for _ in range(4)]
    assert env.main.futex_wake(env.f, 2) == ZX_OK
    assert woken(waits) == 2
    env.clock.advance(300 * MS)  # "stable over 300 ms"
    assert woken(waits) == 2
    assert env.main.futex_wake(env.f, UINT32_MAX) == ZX_OK
    assert [w.result() for w in waits] == [ZX_OK] * 4


def test_wakeup_address(env: Env) -> None:
    """futex.cc WakeupAddress: waiters on f[0] and f[1]; waking f[2] wakes none, waking
    f[0] only thread 0."""
    w0 = env.wait(env.thread(), env.f)
    w1 = env.wait(env.thread(), env.f2)
    assert env.main.futex_wake(env.f3, UINT32_MAX) == ZX_OK
    assert woken([w0, w1]) == 0
    assert env.main.futex_wake(env.f, UINT32_MAX) == ZX_OK
    assert w0.result() == ZX_OK and not w1.done()
    env.main.futex_wake(env.f2, 1)
    assert w1.result() == ZX_OK


def test_requeue_value_mismatch(env: Env) -> None:
    """futex.cc RequeueValueMismatch: current_value + 1 -> ZX_ERR_BAD_STATE."""
    r = env.main.futex_requeue(env.f, 1, 1, env.f2, 1, ZX_HANDLE_INVALID)
    assert r == ZX_ERR_BAD_STATE


def test_requeue_same_addr(env: Env) -> None:
    """futex.cc RequeueSameAddr: requeue(&f, 1, f, &f, 1) -> ZX_ERR_INVALID_ARGS (checked
    before the value: a wrong value still gives INVALID_ARGS)."""
    assert env.main.futex_requeue(env.f, 1, 0, env.f, 1, 0) == ZX_ERR_INVALID_ARGS
    assert env.main.futex_requeue(env.f, 1, 99, env.f, 1, 0) == ZX_ERR_INVALID_ARGS


def test_requeue(env: Env) -> None:
    """futex.cc Requeue: 6 waiters on f1; requeue(wake 3, requeue 2 -> f2) wakes 3;
    wake(f2, all) -> 5 woken; wake(f1, 1) -> 6."""
    waits = [env.wait(env.thread(), env.f) for _ in range(6)]
    assert env.main.futex_requeue(env.f, 3, 0, env.f2, 2, ZX_HANDLE_INVALID) == ZX_OK
    assert woken(waits) == 3
    assert env.main.futex_wake(env.f2, UINT32_MAX) == ZX_OK
    assert woken(waits) == 5
    assert env.main.futex_wake(env.f, 1) == ZX_OK
    assert woken(waits) == 6


def test_requeue_unqueued_on_timeout(env: Env) -> None:
    """futex.cc RequeueUnqueuedOnTimeout: T0 waits on f1 with a deadline; everything is
    requeued to f2; T1 waits on f2; T0 times out and leaves *f2's* queue, so wake(f2, 1)
    wakes T1."""
    t0 = env.wait(env.thread("t0"), env.f, deadline=env.now() + 1500 * MS)
    assert env.main.futex_requeue(env.f, 0, 0, env.f2, UINT32_MAX, 0) == ZX_OK
    t1 = env.wait(env.thread("t1"), env.f2)
    env.clock.advance(1500 * MS)
    assert t0.result() == ZX_ERR_TIMED_OUT
    assert env.main.futex_wake(env.f2, 1) == ZX_OK
    assert t1.result() == ZX_OK


def test_thread_suspended(env: Env) -> None:
    """futex.cc ThreadSuspended: suspending a waiter restarts its wait transparently (no
    spurious ZX_ERR_TIMED_OUT, the same deadline); wake(1) then wakes it."""
    t = env.thread()
    deadline = env.now() + 10 * MS
    w = env.wait(t, env.f, deadline=deadline)
    assert t.suspend() is True
    assert not w.done() and t.blocked is w
    assert env.main.futex_wake(env.f, 1) == ZX_OK
    assert w.result() == ZX_OK
    # A restarted wait keeps its absolute deadline.
    w2 = env.wait(t, env.f, deadline=env.now() + 10 * MS)
    env.clock.advance(5 * MS)
    t.suspend()
    env.clock.advance(5 * MS)
    assert w2.result() == ZX_ERR_TIMED_OUT


def test_misaligned_futex_addr(env: Env) -> None:
    """futex.cc MisalignedFutextAddr: misaligned wait / wake / requeue -> INVALID_ARGS."""
    bad = env.f + 1
    assert env.main.futex_wait(bad, 0, 0, INF) == ZX_ERR_INVALID_ARGS
    assert env.main.futex_wake(bad, 1) == ZX_ERR_INVALID_ARGS
    assert env.main.futex_wake_single_owner(bad) == ZX_ERR_INVALID_ARGS
    assert env.main.futex_requeue(bad, 1, 0, env.f2, 1, 0) == ZX_ERR_INVALID_ARGS
    assert env.main.futex_requeue(env.f, 1, 0, env.f2 + 2, 1, 0) == ZX_ERR_INVALID_ARGS
    assert env.main.futex_requeue_single_owner(env.f, 0, bad, 1, 0) == ZX_ERR_INVALID_ARGS


def test_event_signaling_real_threads(env: Env) -> None:
    """futex.cc EventSignaling: three threads wait on a futex-based event; Signal (store 1,
    wake all) releases all of them; all join."""
    proc = env.process
    threads = [env.thread(f"w{i}") for i in range(3)]
    results: list[int] = []
    lock = threading.Lock()

    def event_wait(t: Thread) -> None:
        while proc.load_u32(env.f) == 0:
            r = t.futex_wait(env.f, 0, ZX_HANDLE_INVALID, INF)
            with lock:
                results.append(r)

    pys = [threading.Thread(target=event_wait, args=(t,)) for t in threads]
    for p in pys:
        p.start()
    for _ in range(10_000_000):
        if all(t.blocked is not None for t in threads):
            break
    proc.store_u32(env.f, 1)
    assert env.main.futex_wake(env.f, UINT32_MAX) == ZX_OK
    for p in pys:
        p.join(timeout=60)
        assert not p.is_alive()
    assert set(results) <= {ZX_OK, ZX_ERR_BAD_STATE}


def test_wait_exit_race(env: Env) -> None:
    """futex.cc WaitExitRace: 100 times, wait on a decommitted (faulting) page naming a
    thread that is exiting as owner, with a 100 us deadline: no crash, no waiter or owner
    left behind (here the fault answers ZX_ERR_INVALID_ARGS)."""
    proc = env.process
    page = proc.mmap(4096)
    proc.munmap(page, 4096)
    for _ in range(100):
        owner = env.thread("exiting")
        h = env.handle(owner)
        ex = threading.Thread(target=owner.exit)
        ex.start()
        r = env.main.futex_wait(page, 0, h, env.now() + 100_000)
        ex.join(timeout=60)
        assert r == ZX_ERR_INVALID_ARGS
        assert env.owner(page) == ZX_KOID_INVALID


def test_wake_with_wake_count_zero(env: Env) -> None:
    """futex.cc WakeWithWakeCountZero: an active futex; wake(0) -> ZX_OK, nobody woken."""
    w = env.wait(env.thread(), env.f)
    assert env.main.futex_wake(env.f, 0) == ZX_OK
    assert not w.done()
    env.main.futex_wake(env.f, 1)


def test_requeue_with_wake_count_zero(env: Env) -> None:
    """futex.cc RequeueWithWakeCountZero: requeue(wake 0, requeue all) -> ZX_OK; the
    waiter now sleeps on the target."""
    w = env.wait(env.thread(), env.f)
    assert env.main.futex_requeue(env.f, 0, 0, env.f2, UINT32_MAX, 0) == ZX_OK
    assert not w.done()
    env.main.futex_wake(env.f, UINT32_MAX)
    assert not w.done()
    env.main.futex_wake(env.f2, UINT32_MAX)
    assert w.result() == ZX_OK


# -- ownership (ownership.cc) --------------------------------------------------------------


def test_get_owner(env: Env) -> None:
    """ownership.cc GetOwner: a new futex has no owner; a null koid pointer, a
    misaligned futex and a null futex -> ZX_ERR_INVALID_ARGS."""
    proc = env.process
    out = proc.mmap(4096)
    proc.write(out, b"\xff" * 8)
    assert env.main.futex_get_owner(env.f, out) == ZX_OK
    assert proc.read(out, 8) == bytes(8)  # ZX_KOID_INVALID stored
    assert env.main.futex_get_owner(env.f, 0) == ZX_ERR_INVALID_ARGS
    assert env.main.futex_get_owner(env.f + 1, out) == ZX_ERR_INVALID_ARGS
    assert env.main.futex_get_owner(0, out) == ZX_ERR_INVALID_ARGS


def test_get_owner_stores_koid(env: Env) -> None:
    """zx_futex_get_owner stores the owner's koid as a little-endian uint64."""
    proc = env.process
    out = proc.mmap(4096)
    env.wait(env.thread(), env.f, owner=env.main)
    assert env.main.futex_get_owner(env.f, out) == ZX_OK
    assert int.from_bytes(proc.read(out, 8), "little") == env.main.koid
    env.main.futex_wake(env.f, UINT32_MAX)


def test_wait_ownership(env: Env) -> None:
    """ownership.cc Wait: the waiter names the owner; precedence of BAD_STATE over owner
    errors; INVALID_ARGS for self, a waiter, another process's thread; WRONG_TYPE for an
    event; an owner assigned even when the wait times out; ZX_HANDLE_INVALID clears it."""
    proc, main = env.process, env.main
    t1 = env.thread("t1")
    w1 = env.wait(t1, env.f, owner=main)
    assert env.owner(env.f) == main.koid
    t2 = env.thread("t2")
    # value mismatch -> BAD_STATE, owner unchanged
    assert t2.futex_wait(env.f, 1, env.handle(t2), INF) == ZX_ERR_BAD_STATE
    assert env.owner(env.f) == main.koid
    # the waiter names itself -> INVALID_ARGS
    assert t2.futex_wait(env.f, 0, env.handle(t2), INF) == ZX_ERR_INVALID_ARGS
    # names a thread waiting on this futex -> INVALID_ARGS
    assert t2.futex_wait(env.f, 0, env.handle(t1), INF) == ZX_ERR_INVALID_ARGS
    # an event handle -> WRONG_TYPE
    assert t2.futex_wait(env.f, 0, proc.new_event(), INF) == ZX_ERR_WRONG_TYPE
    # a thread of another process -> INVALID_ARGS
    other = env.kernel.new_process().new_thread("other")
    other.start()
    assert t2.futex_wait(env.f, 0, proc.handle(other), INF) == ZX_ERR_INVALID_ARGS
    assert env.owner(env.f) == main.koid
    # names T3 with a 50 ms deadline -> TIMED_OUT, owner = T3
    t3 = env.thread("t3")
    w = env.wait(t2, env.f, owner=t3, deadline=env.now() + 50 * MS)
    assert env.owner(env.f) == t3.koid
    env.clock.advance(50 * MS)
    assert w.result() == ZX_ERR_TIMED_OUT
    assert env.owner(env.f) == t3.koid
    # names the test thread with deadline 0 -> TIMED_OUT, owner = the test thread
    assert t2.futex_wait(env.f, 0, env.handle(main), 0) == ZX_ERR_TIMED_OUT
    assert env.owner(env.f) == main.koid
    # a bad handle -> BAD_HANDLE; a bad handle and a wrong value -> BAD_STATE
    bad = env.handle(t3)
    proc.close(bad)
    assert t2.futex_wait(env.f, 0, bad, INF) == ZX_ERR_BAD_HANDLE
    assert t2.futex_wait(env.f, 1, bad, INF) == ZX_ERR_BAD_STATE
    # ZX_HANDLE_INVALID -> blocks, owner none
    w2 = env.wait(t2, env.f)
    assert env.owner(env.f) == ZX_KOID_INVALID
    assert main.futex_wake(env.f, UINT32_MAX) == ZX_OK
    assert w1.result() == ZX_OK and w2.result() == ZX_OK


@pytest.mark.parametrize("single_owner", [False, True], ids=["wake", "wake_single_owner"])
def test_wake_ownership(env: Env, single_owner: bool) -> None:
    """ownership.cc Wake: 8 waiters naming the test thread.  Pass 0 (wake(1)): no owner
    after each wake.  Pass 1 (wake_single_owner): the woken thread owns the futex, and
    nobody after the last."""
    threads = [env.thread(f"w{i}") for i in range(8)]
    waits = {t.koid: env.wait(t, env.f, owner=env.main) for t in threads}
    for i in range(8):
        before = {k for k, w in waits.items() if w.done()}
        if single_owner:
            assert env.main.futex_wake_single_owner(env.f) == ZX_OK
        else:
            assert env.main.futex_wake(env.f, 1) == ZX_OK
        now = {k for k, w in waits.items() if w.done()}
        (new,) = now - before
        expected = new if single_owner and i < 7 else ZX_KOID_INVALID
        assert env.owner(env.f) == expected


@pytest.mark.parametrize("single_owner", [False, True], ids=["requeue", "single_owner"])
def test_requeue_wake_ownership(env: Env, single_owner: bool) -> None:
    """ownership.cc RequeueWake: as Wake, through requeue with wake count 1 (requeue
    count 0); a mismatched requeue -> BAD_STATE with owner and waiters unchanged."""
    threads = [env.thread(f"w{i}") for i in range(8)]
    waits = {t.koid: env.wait(t, env.f, owner=env.main) for t in threads}
    assert env.main.futex_requeue(env.f, 1, 1, env.f2, 0, 0) == ZX_ERR_BAD_STATE
    assert env.owner(env.f) == env.main.koid and not any(w.done() for w in waits.values())
    for i in range(8):
        before = {k for k, w in waits.items() if w.done()}
        if single_owner:
            r = env.main.futex_requeue_single_owner(env.f, 0, env.f2, 0, 0)
        else:
            r = env.main.futex_requeue(env.f, 1, 0, env.f2, 0, 0)
        assert r == ZX_OK
        (new,) = {k for k, w in waits.items() if w.done()} - before
        assert env.owner(env.f) == (new if single_owner and i < 7 else ZX_KOID_INVALID)


def test_wake_zero_clears_owner(env: Env) -> None:
    """ownership.cc WakeZero: an owned futex; wake(0) -> ZX_OK, the waiter still blocks,
    the futex is now unowned."""
    w = env.wait(env.thread(), env.f, owner=env.main)
    assert env.main.futex_wake(env.f, 0) == ZX_OK
    assert not w.done() and env.owner(env.f) == ZX_KOID_INVALID
    env.main.futex_wake(env.f, 1)


def test_requeue_wake_zero_clears_owner(env: Env) -> None:
    """ownership.cc RequeueWakeZero: requeue with wake count 0 -> ZX_OK, the waiter still
    blocks, the wake futex is unowned."""
    w = env.wait(env.thread(), env.f, owner=env.main)
    assert env.main.futex_requeue(env.f, 0, 0, env.f2, 0, 0) == ZX_OK
    assert not w.done() and env.owner(env.f) == ZX_KOID_INVALID
    env.main.futex_wake(env.f, 1)


def test_requeue_ownership(env: Env) -> None:
    """ownership.cc Requeue: 8 waiters owned by the test thread; requeue_single_owner
    (requeue 1, owner self) -> the woken waiter owns the wake futex, the test thread the
    requeue futex.  Every failing variant changes nothing.  Then: wake(requeue futex)
    wakes exactly 1; requeue 2 naming the woken thread -> wake futex unowned, requeue
    futex owned by that thread; requeue all naming self."""
    proc, main = env.process, env.main
    threads = [env.thread(f"w{i}") for i in range(8)]
    waits = {t.koid: env.wait(t, env.f, owner=main) for t in threads}
    me = env.handle(main)
    assert main.futex_requeue_single_owner(env.f, 0, env.f2, 1, me) == ZX_OK
    (first,) = [k for k, w in waits.items() if w.done()]
    assert env.owner(env.f) == first
    assert env.owner(env.f2) == main.koid

    def snapshot() -> tuple[int, int, int]:
        return env.owner(env.f), env.owner(env.f2), sum(w.done() for w in waits.values())

    before = snapshot()
    bad = env.handle(main)
    proc.close(bad)
    other = env.kernel.new_process().new_thread("other")
    other.start()
    failing = [
        ((0, 0, env.f2, 1, me), ZX_ERR_INVALID_ARGS),  # null wake pointer
        ((env.f + 1, 0, env.f2, 1, me), ZX_ERR_INVALID_ARGS),  # misaligned wake pointer
        ((env.f, 0, 0, 1, me), ZX_ERR_INVALID_ARGS),  # null requeue pointer
        ((env.f, 0, env.f2 + 1, 1, me), ZX_ERR_INVALID_ARGS),  # misaligned requeue pointer
        ((env.f, 0, env.f, 1, me), ZX_ERR_INVALID_ARGS),  # the same futex
        ((env.f, 0, env.f2, 1, bad), ZX_ERR_BAD_HANDLE),
        ((env.f, 0, env.f2, 1, proc.new_event()), ZX_ERR_WRONG_TYPE),
        ((env.f, 0, env.f2, 1, proc.handle(other)), ZX_ERR_INVALID_ARGS),
        ((env.f, 0, env.f2, 1, env.handle(threads[-1])), ZX_ERR_INVALID_ARGS),  # a waiter
        ((env.f, 1, env.f2, 1, me), ZX_ERR_BAD_STATE),
        ((env.f, 1, env.f2, 1, bad), ZX_ERR_BAD_STATE),  # mismatch beats a bad handle
    ]
    for args, status in failing:
        assert main.futex_requeue_single_owner(*args) == status, args
        assert snapshot() == before, args
    # the requeue futex holds one waiter: waking it wakes exactly one
    assert main.futex_wake(env.f2, UINT32_MAX) == ZX_OK
    assert sum(w.done() for w in waits.values()) == 2
    woken_thread = next(t for t in threads if t.koid == first)
    assert main.futex_requeue(env.f, 0, 0, env.f2, 2, env.handle(woken_thread)) == ZX_OK
    assert env.owner(env.f) == ZX_KOID_INVALID
    assert env.owner(env.f2) == woken_thread.koid
    assert main.futex_requeue(env.f, 0, 0, env.f2, UINT32_MAX, me) == ZX_OK
    assert env.owner(env.f2) == main.koid and env.owner(env.f) == ZX_KOID_INVALID
    main.futex_wake(env.f2, UINT32_MAX)
    assert all(w.result() == ZX_OK for w in waits.values())


def test_owner_exit(env: Env) -> None:
    """ownership.cc OwnerExit: a waiter names O; O exits -> the futex is unowned and the
    waiter still blocks."""
    o = env.thread("owner")
    w = env.wait(env.thread(), env.f, owner=o)
    assert env.owner(env.f) == o.koid
    o.exit()
    assert o.state is ThreadState.DEAD
    assert env.owner(env.f) == ZX_KOID_INVALID and not w.done()
    env.main.futex_wake(env.f, 1)


def test_owner_started(env: Env) -> None:
    """ownership.cc OwnerStarted: an unstarted thread as owner -> ZX_ERR_INVALID_ARGS, for
    wait (1 ms deadline) and for requeue."""
    unstarted = env.thread("new", start=False)
    h = env.handle(unstarted)
    assert env.main.futex_wait(env.f, 0, h, env.now() + MS) == ZX_ERR_INVALID_ARGS
    assert env.main.futex_requeue(env.f, 0, 0, env.f2, 0, h) == ZX_ERR_INVALID_ARGS


def test_dead_threads_cant_own_futexes(env: Env) -> None:
    """ownership.cc DeadThreadsCantOwnFutexes: futex1 has a waiter; requeue(futex2 ->
    futex1, 0, 1, live) -> owner live (requeue count 0 still assigns); a wait naming a
    dead thread -> TIMED_OUT with no owner; a requeue naming it -> ZX_OK, no owner."""
    w = env.wait(env.thread(), env.f)
    live = env.thread("live")
    dead = env.thread("dead")
    hdead = env.handle(dead)
    dead.exit()
    assert env.main.futex_requeue(env.f2, 0, 0, env.f, 0, env.handle(live)) == ZX_OK
    assert env.owner(env.f) == live.koid
    timed = env.main.futex_wait_nb(env.f, 0, hdead, env.now() + MS)
    assert isinstance(timed, ZirconPendingWait)
    assert env.owner(env.f) == ZX_KOID_INVALID  # the wait named nobody
    env.clock.advance(MS)
    assert timed.result() == ZX_ERR_TIMED_OUT
    assert env.owner(env.f) == ZX_KOID_INVALID
    assert env.main.futex_requeue(env.f2, 0, 0, env.f, 0, hdead) == ZX_OK
    assert env.owner(env.f) == ZX_KOID_INVALID
    env.main.futex_wake(env.f, 1)
    assert w.result() == ZX_OK


def test_owner_without_waiters_is_reset(env: Env) -> None:
    """FutexWait's ResetOwnerIfNoWaiters: a timed-out lone waiter leaves the futex
    unowned; a requeue onto a futex without waiters does not own it."""
    assert env.main.futex_wait(env.f, 0, env.handle(env.thread()), 0) == ZX_ERR_TIMED_OUT
    assert env.owner(env.f) == ZX_KOID_INVALID
    assert env.main.futex_requeue(env.f2, 0, 0, env.f, 0, env.handle(env.main)) == ZX_OK
    assert env.owner(env.f) == ZX_KOID_INVALID


# -- bad-handle job policy (bad-handle.cc) ------------------------------------------------


@pytest.mark.parametrize("policy, retcode", [
    (BadHandlePolicy.ALLOW_EXCEPTION, ZX_TASK_RETCODE_EXCEPTION_KILL),
    (BadHandlePolicy.KILL, ZX_TASK_RETCODE_POLICY_KILL),
])
@pytest.mark.parametrize("call", ["wait", "requeue"])
def test_bad_handle_policy(policy: BadHandlePolicy, retcode: int, call: str) -> None:
    """bad-handle.cc {Wait,Requeue}BadHandleWithMismatchedValueDoesNotExit -> BAD_STATE,
    the process lives; {Wait,Requeue}BadHandleWithMatchedValueExits -> the process dies
    (ZX_TASK_RETCODE_EXCEPTION_KILL with no exception handler), its blocked threads too."""
    k = ZirconKernel(clock=ManualClock())
    p = k.new_process(bad_handle=policy)
    t, other = p.new_thread("t"), p.new_thread("blocked")
    t.start()
    other.start()
    f = p.mmap(4096)
    blocked = other.futex_wait_nb(f + 4, 0, ZX_HANDLE_INVALID, INF)
    assert isinstance(blocked, ZirconPendingWait)
    bad = p.handle(t)
    p.close(bad)

    def attempt(value: int) -> int:
        if call == "wait":
            return t.futex_wait(f, value, bad, INF)
        return t.futex_requeue(f, 1, value, f + 8, 1, bad)

    assert attempt(1) == ZX_ERR_BAD_STATE
    assert p.retcode is None
    with pytest.raises(ProcessKilled) as e:
        attempt(0)
    assert e.value.retcode == retcode == p.retcode
    assert t.state is ThreadState.DEAD and other.state is ThreadState.DEAD
    assert blocked.done()
    k.check_invariants()


def test_bad_handle_allowed_by_default(env: Env) -> None:
    """Without the job policy a bad handle is just ZX_ERR_BAD_HANDLE."""
    assert env.main.futex_wait(env.f, 0, 0x7FFF_FFF3, INF) == ZX_ERR_BAD_HANDLE
    assert env.process.retcode is None


# -- priority inheritance (futex.md: the max rule, transitive) ----------------------------


def test_pi_chain_of_three_owners_boosted_and_restored(env: Env) -> None:
    """futex.md: an owner's effective priority is the highest of its base priority and
    its waiters' effective priorities, transitively along owner chains, and the pressure
    goes away when ownership ends.  Chain: D(24) waits on F3 owned by C(12), who waits on
    F2 owned by B(8), who waits on F1 owned by A(4)."""
    a, b, c, d = (env.thread(n, p) for n, p in [("a", 4), ("b", 8), ("c", 12), ("d", 24)])
    wb = env.wait(b, env.f, owner=a)
    assert a.effective_priority == 8
    wc = env.wait(c, env.f2, owner=b)
    assert (a.effective_priority, b.effective_priority) == (12, 12)
    wd = env.wait(d, env.f3, owner=c, deadline=env.now() + 10 * MS)
    assert [t.effective_priority for t in (a, b, c, d)] == [24, 24, 24, 24]
    assert [t.priority for t in (a, b, c, d)] == [4, 8, 12, 24]
    env.clock.advance(10 * MS)  # D gives up: the whole chain drops back
    assert wd.result() == ZX_ERR_TIMED_OUT
    assert [t.effective_priority for t in (a, b, c)] == [12, 12, 12]
    env.main.futex_wake(env.f2, 1)  # C leaves; B's boost ends
    assert wc.result() == ZX_OK
    assert [t.effective_priority for t in (a, b, c)] == [8, 8, 12]
    env.main.futex_wake(env.f, 1)
    assert wb.result() == ZX_OK
    assert [t.effective_priority for t in (a, b, c, d)] == [4, 8, 12, 24]


def test_pi_base_change_propagates(env: Env) -> None:
    """A waiter's profile change moves its owner's inherited priority with it."""
    o = env.thread("owner", 10)
    w = env.thread("waiter", 12)
    env.wait(w, env.f, owner=o)
    assert o.effective_priority == 12
    w.set_priority(30)
    assert o.effective_priority == 30
    w.set_priority(2)
    assert o.effective_priority == 10
    env.main.futex_wake(env.f, 1)


def test_pi_owner_exit_drops_boost(env: Env) -> None:
    """OwnerExit with PI: the dying owner no longer carries its waiters' pressure (the
    futex is unowned, so nobody does)."""
    o = env.thread("owner", 4)
    env.wait(env.thread("w", 20), env.f, owner=o)
    assert o.effective_priority == 20
    o.exit()
    assert o.effective_priority == 4
    env.main.futex_wake(env.f, 1)


def test_pi_single_owner_wake_moves_pressure(env: Env) -> None:
    """wake_single_owner: the woken thread becomes the owner and inherits the priority
    of the waiters that remain; the old owner's boost ends."""
    old = env.thread("old", 4)
    hi, lo = env.thread("hi", 20), env.thread("lo", 10)
    whi = env.wait(hi, env.f, owner=old)
    wlo = env.wait(lo, env.f, owner=old)
    assert old.effective_priority == 20
    assert env.main.futex_wake_single_owner(env.f) == ZX_OK
    assert whi.result() == ZX_OK and not wlo.done()  # the best waiter wakes first
    assert env.owner(env.f) == hi.koid
    assert (old.effective_priority, hi.effective_priority) == (4, 20)
    assert env.main.futex_wake_single_owner(env.f) == ZX_OK
    assert env.owner(env.f) == ZX_KOID_INVALID


def test_pi_cycle_leaves_owner_unset(env: Env) -> None:
    """OwnedWaitQueue cycles: A waits on F1 owned by B; B then waits on F2 naming A —
    A's chain leads back to B, so F2's owner is silently set to nothing and B blocks."""
    a, b = env.thread("a", 10), env.thread("b", 20)
    wa = env.wait(a, env.f, owner=b)
    wb = env.wait(b, env.f2, owner=a)
    assert env.owner(env.f) == b.koid
    assert env.owner(env.f2) == ZX_KOID_INVALID
    assert not wb.done() and a.effective_priority == 10
    # A longer cycle through a requeue: requeueing A onto F2 while naming... F2's waiter B
    # as owner is refused outright (an owner may not wait on the futex).
    assert env.main.futex_requeue(env.f, 0, 0, env.f2, 1, env.handle(b)) == (
        ZX_ERR_INVALID_ARGS
    )
    env.main.futex_wake(env.f, 1)
    env.main.futex_wake(env.f2, 1)
    assert wa.result() == ZX_OK and wb.result() == ZX_OK


def test_wake_order_follows_inherited_priority(env: Env) -> None:
    """Wake order is the best thread first (highest effective priority, FIFO among
    equals); a waiter boosted while it waits moves ahead."""
    w1, w2, w3 = env.thread("w1", 10), env.thread("w2", 12), env.thread("w3", 12)
    p1 = env.wait(w1, env.f)
    p2 = env.wait(w2, env.f)
    p3 = env.wait(w3, env.f)
    booster = env.thread("booster", 20)
    pb = env.wait(booster, env.f2, owner=w1)  # w1 owns F2 and now runs at 20
    assert w1.effective_priority == 20
    env.main.futex_wake(env.f, 1)
    assert p1.done() and not p2.done()
    env.main.futex_wake(env.f, 1)
    assert p2.done() and not p3.done()  # FIFO between the two 12s
    env.main.futex_wake(env.f, 1)
    env.main.futex_wake(env.f2, 1)
    assert p3.done() and pb.done()


def test_cooperative_done_callback(env: Env) -> None:
    """The cooperative form: a scheduler resumes the thread from a done callback."""
    seen: list[int] = []
    w = env.wait(env.thread(), env.f)
    w.add_done_callback(lambda pw: seen.append(pw.result()))
    env.main.futex_wake(env.f, 1)
    assert seen == [ZX_OK]


def test_calls_from_unstarted_thread_refused(env: Env) -> None:
    """Only a running thread makes system calls (a precise error, not a status)."""
    t = env.thread(start=False)
    with pytest.raises(RuntimeError, match="new"):
        t.futex_wake(env.f, 1)
    with pytest.raises(ValueError, match="priority"):
        env.process.new_thread("x", priority=32)


def test_owner_that_waits_on_its_futex_queues_at_its_own_priority() -> None:
    """Found by the fuzz harness: a thread that owns a futex (boosted by its waiters) and
    then waits on it, naming no owner, gives the futex up and with it the boost before it
    blocks (``OwnedWaitQueue::BlockAndAssignOwner``): it queues at its own priority, so
    a waiter of a priority between the two is woken before it."""
    k = ZirconKernel(clock=ManualClock())
    p = k.new_process()
    a = p.mmap(4096)
    w1, w2, w3, waker = (
        p.new_thread(n, priority=q) for n, q in (("w1", 18), ("w2", 12), ("w3", 15), ("k", 16))
    )
    for t in (w1, w2, w3, waker):
        t.start()
    r1 = w1.futex_wait_nb(a, 0, p.handle(w2), ZX_TIME_INFINITE)
    assert w2.effective_priority == 18  # owns the futex, boosted by w1
    r2 = w2.futex_wait_nb(a, 0, 0, ZX_TIME_INFINITE)
    assert w2.effective_priority == 12 and p.owner_of(a) is None
    r3 = w3.futex_wait_nb(a, 0, 0, ZX_TIME_INFINITE)
    k.check_invariants()  # the wait queue's priorities are the inheritance queue's
    woken = []
    for _ in range(3):
        waker.futex_wake(a, 1)
        woken += [n for n, r in (("w1", r1), ("w2", r2), ("w3", r3)) if r.done() and n not in woken]
    assert woken == ["w1", "w3", "w2"]
