"""Generic bodies per primitive family — Condition, Semaphore, Event, Barrier, Once — each
run over {native, emulated} kernel x {threads, processes} workers (the ``env`` fixture of
:mod:`tests.sync.harness`; issue 13's acceptance line).  Timed steps are exact on the
emulated kernel's ManualClock; natively they only check "False, not before the
deadline".

Sources: the threading docs for each class's contract (Condition.notify/notify_all/
wait/wait_for, Semaphore, Event, Barrier), sync_design §5's per-primitive table
("notify(n) wakes ≥ n", "timeout returns False", "wait_for"; fastipc's two-waiter,
two-post case; "a wait after set returns True", "a set-then-clear pulse wakes the
waiters"; "a fast thread across rounds", "timeout breaks the barrier", "abort, reset,
n_waiting"; "N racers run the function once", Rust std ``sys/sync/once/futex.rs``).
A family whose module has not landed is skipped with the reason.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.support import STATE_TIMEOUT, wait_until
from tests.sync.harness import Env, Handle

WAITERS = 3


def _need(module: str) -> Any:
    """The family's module, or skip: it has not landed yet."""
    return pytest.importorskip(module, reason=f"{module} has not landed yet")


def _timeout(env: Env) -> float:
    """The timeout of a timed step: 5 s of manual clock, or 0.2 s of real time."""
    return 5.0 if env.manual_clock else 0.2


def _expire(env: Env, h: Handle, timeout: float) -> None:
    """Emulated: check ``h`` still sleeps 1 ms before its deadline, then reach it."""
    if env.manual_clock:
        env.wait_blocked(h, "the timed wait sleeps")
        env.advance(timeout - 0.001)
        env.wait_blocked(h, "the timed wait still sleeps 1 ms before its deadline")
        env.advance(0.001)


def _all_blocked(env: Env, handles: list[Handle], what: str) -> None:
    for h in handles:
        env.wait_blocked(h, f"{what} ({h.tid})")


# -- Condition ------------------------------------------------------------------------


@pytest.mark.parametrize("recursive", [True, False], ids=["RLock", "Mutex"])
def test_condition_notify_n_lets_n_through(env: Env, recursive: bool) -> None:
    """notify(1) lets one waiter through, notify(2) the other two (threading docs:
    "wake up at most n threads"; sync_design §5 "notify(n) wakes ≥ n" — the predicate
    keeps the count exact)."""
    Condition = _need("futex.sync.condition").Condition

    c = env.make(Condition, recursive=recursive)
    tokens, passed = env.shared(), env.shared()

    def waiter(c: Any) -> bool:
        with c:
            c.wait_for(lambda: tokens.load() > passed.load())
            passed.add(1)
        return True

    handles = [env.start(waiter, c) for _ in range(WAITERS)]
    _all_blocked(env, handles, "a waiter sleeps in wait_for")
    wait_until(lambda: c.statistics().waiters == WAITERS, "all three count as waiters")
    with c:
        tokens.add(1)
        c.notify(1)
    wait_until(lambda: passed.load() == 1, "one waiter passes")
    with c:
        tokens.add(2)
        c.notify(2)
    assert all(h.result() for h in handles)
    assert passed.load() == WAITERS
    assert c.statistics().waiters == 0


def test_condition_notify_all_wakes_every_waiter(env: Env) -> None:
    """notify_all releases every waiter, each re-taking the lock in turn (threading docs;
    sync_design §1.3: requeued onto the lock word, woken one by one by each unlock), with
    no clock movement."""
    Condition = _need("futex.sync.condition").Condition

    c = env.make(Condition)
    flag, inside, overlaps = env.shared(), env.shared(), env.shared()

    def waiter(c: Any) -> int:
        with c:
            c.wait_for(lambda: flag.load() == 1)
            if inside.swap(1):
                overlaps.add(1)
            inside.swap(0)
        return 1

    handles = [env.start(waiter, c) for _ in range(WAITERS)]
    _all_blocked(env, handles, "a waiter sleeps")
    wait_until(lambda: c.statistics().waiters == WAITERS, "all three count as waiters")
    start = env.monotonic()
    with c:
        flag.set(1)
        c.notify_all()
    assert sum(h.result() for h in handles) == WAITERS
    assert overlaps.load() == 0
    assert not c.statistics().lock.locked
    if env.manual_clock:
        assert env.monotonic() == start


def test_condition_wait_times_out(env: Env) -> None:
    """wait(timeout) with no notify returns False at the deadline, with the lock held
    again (threading docs: "The return value is True unless a given timeout expired")."""
    Condition = _need("futex.sync.condition").Condition

    c = env.make(Condition)
    timeout = _timeout(env)

    def timed(c: Any) -> tuple[bool, float, bool]:
        with c:
            t0 = env.monotonic()
            ok = c.wait(timeout)
            return ok, env.monotonic() - t0, c._is_owned()

    h = env.start(timed, c)
    _expire(env, h, timeout)
    ok, elapsed, owned = h.result()
    assert (ok, owned) == (False, True)
    assert timeout <= elapsed < STATE_TIMEOUT
    assert not c.statistics().lock.locked


def test_condition_wait_for_timeout_returns_the_predicate(env: Env) -> None:
    """wait_for returns the predicate's last value: falsy after the timeout, truthy once
    a notify makes it true (threading docs for Condition.wait_for)."""
    Condition = _need("futex.sync.condition").Condition

    c = env.make(Condition)
    flag = env.shared()
    timeout = _timeout(env)

    def wait_flag(c: Any, t: float) -> int:
        with c:
            return int(c.wait_for(flag.load, t))

    h = env.start(wait_flag, c, timeout)
    _expire(env, h, timeout)
    assert h.result() == 0
    h = env.start(wait_flag, c, STATE_TIMEOUT)
    env.wait_blocked(h, "wait_for sleeps")
    with c:
        flag.set(7)
        c.notify()
    assert h.result() == 7


def test_condition_wait_without_the_lock_raises(kernel_env: Env) -> None:
    """wait and notify without holding the lock raise RuntimeError (threading docs: "If
    the calling thread has not acquired the lock ... RuntimeError is raised")."""
    Condition = _need("futex.sync.condition").Condition

    c = kernel_env.make(Condition)
    for op in (c.wait, c.notify, c.notify_all):
        with pytest.raises(RuntimeError, match="un-acquired lock"):
            op()


# -- Semaphore ------------------------------------------------------------------------


def test_semaphore_admits_at_most_value(env: Env) -> None:
    """Semaphore(2) with four workers looping: never more than two inside, and every
    iteration done (threading docs: "counter ... can never go below zero")."""
    Semaphore = _need("futex.sync.semaphore").Semaphore

    s = env.make(Semaphore, 2)
    inside, over, total = env.shared(), env.shared(), env.shared()
    rounds = 100 if env.kernel == "native" else 20

    def work(s: Any) -> int:
        for _ in range(rounds):
            assert s.acquire(timeout=STATE_TIMEOUT)
            if inside.add(1) >= 2:
                over.add(1)
            total.add(1)
            threading.Event().wait(0)  # a yield point inside
            inside.add(-1)
            s.release()
        return rounds

    handles = env.start_together(4, work, s)
    assert sum(h.result() for h in handles) == 4 * rounds
    assert (over.load(), total.load()) == (0, 4 * rounds)
    assert s.statistics().value == 2


def test_semaphore_two_posts_wake_two_sleepers(env: Env) -> None:
    """Two acquirers asleep on Semaphore(0), two release() calls back to back: both get
    a token (fastipc's lost wakeup — waking only on 0 → 1 — sync_design §1.4, §5)."""
    Semaphore = _need("futex.sync.semaphore").Semaphore

    s = env.make(Semaphore, 0)

    def take(s: Any) -> bool:
        return bool(s.acquire(timeout=STATE_TIMEOUT))

    handles = [env.start(take, s) for _ in range(2)]
    _all_blocked(env, handles, "an acquirer sleeps on the empty semaphore")
    s.release()
    s.release()
    assert [h.result() for h in handles] == [True, True]
    assert s.statistics().value == 0


def test_semaphore_release_n_wakes_n(env: Env) -> None:
    """release(n) hands out n tokens at once and wakes n sleepers (threading docs:
    "Release a semaphore, incrementing the internal counter by n ... wake up n")."""
    Semaphore = _need("futex.sync.semaphore").Semaphore

    s = env.make(Semaphore, 0)

    def take(s: Any) -> bool:
        return bool(s.acquire(timeout=STATE_TIMEOUT))

    handles = [env.start(take, s) for _ in range(WAITERS)]
    _all_blocked(env, handles, "an acquirer sleeps")
    s.release(WAITERS + 1)
    assert all(h.result() for h in handles)
    assert s.statistics().value == 1


def test_semaphore_acquire_times_out(env: Env) -> None:
    """acquire(timeout) on an empty semaphore: False at the deadline, not before, and no
    token taken (threading docs)."""
    Semaphore = _need("futex.sync.semaphore").Semaphore

    s = env.make(Semaphore, 0)
    timeout = _timeout(env)

    def timed(s: Any) -> tuple[bool, float]:
        t0 = env.monotonic()
        return bool(s.acquire(timeout=timeout)), env.monotonic() - t0

    h = env.start(timed, s)
    _expire(env, h, timeout)
    ok, elapsed = h.result()
    assert ok is False
    assert timeout <= elapsed < STATE_TIMEOUT
    assert s.statistics().value == 0


def test_bounded_semaphore_refuses_release_past_its_bound(kernel_env: Env) -> None:
    """BoundedSemaphore: a release (or release(n)) past the initial value raises
    ValueError and changes nothing (threading docs for BoundedSemaphore)."""
    BoundedSemaphore = _need("futex.sync.semaphore").BoundedSemaphore

    b = kernel_env.make(BoundedSemaphore, 2)
    assert b.acquire()
    with pytest.raises(ValueError):
        b.release(2)
    b.release()
    with pytest.raises(ValueError):
        b.release()
    assert b.statistics().value == 2


# -- Event ----------------------------------------------------------------------------


def test_event_wait_after_set_returns_true(env: Env) -> None:
    """A wait on a set event returns True at once; after clear() it sleeps again
    (threading docs for Event.wait; sync_design §5)."""
    Event = _need("futex.sync.event").Event

    e = env.make(Event)
    e.set()

    def wait(e: Any, t: float | None) -> bool:
        return bool(e.wait(t))

    assert env.start(wait, e, None).result() is True
    e.clear()
    assert not e.is_set()
    h = env.start(wait, e, STATE_TIMEOUT)
    env.wait_blocked(h, "the wait sleeps on the cleared event")
    e.set()
    assert h.result() is True


def _wait_event(e: Any) -> bool:
    return bool(e.wait(STATE_TIMEOUT))


def _event_sleepers(env: Env) -> tuple[Any, list[Handle]]:
    """A clear Event and :data:`WAITERS` waiters asleep on it (each returns its wait's
    result)."""
    e = env.make(_need("futex.sync.event").Event)
    handles = [env.start(_wait_event, e) for _ in range(WAITERS)]
    _all_blocked(env, handles, "a waiter sleeps")
    return e, handles


def test_event_set_wakes_every_waiter(env: Env) -> None:
    """set() wakes every waiter with True (threading docs: "All threads waiting for it
    to become true are awakened")."""
    e, handles = _event_sleepers(env)
    assert e.statistics().waiters
    e.set()
    assert all(h.result() for h in handles)


def test_event_pulse_wakes_the_waiters(env: Env) -> None:
    """set() immediately followed by clear() still wakes the sleeping waiters with True:
    the generation moved (sync_design §1.6, §5 "a set-then-clear pulse wakes the
    waiters"; fastipc's plain flag misses it)."""
    e, handles = _event_sleepers(env)
    gen = e.statistics().generation
    e.set()
    e.clear()
    assert all(h.result() for h in handles)
    assert not e.is_set()
    assert e.statistics().generation == gen + 1


def test_event_wait_times_out(env: Env) -> None:
    """wait(timeout) on a clear event returns False at the deadline, not before
    (threading docs: "returns False if the wait call timed out")."""
    Event = _need("futex.sync.event").Event

    e = env.make(Event)
    timeout = _timeout(env)

    def timed(e: Any) -> tuple[bool, float]:
        t0 = env.monotonic()
        return bool(e.wait(timeout)), env.monotonic() - t0

    h = env.start(timed, e)
    _expire(env, h, timeout)
    ok, elapsed = h.result()
    assert ok is False
    assert timeout <= elapsed < STATE_TIMEOUT


# -- Barrier --------------------------------------------------------------------------


def test_barrier_rounds(env: Env) -> None:
    """Three parties x five rounds: in every round the arrival indices are 0..2 once
    each, the action runs once per round, and nobody laps into the next round (threading
    docs for Barrier.wait; sync_design §1.7, §5 "a fast thread across rounds")."""
    Barrier = _need("futex.sync.barrier").Barrier

    b = env.make(Barrier, WAITERS)
    actions, arrived = env.shared(), env.shared()
    rounds = 5

    def party(b: Any) -> list[int]:
        b.action = lambda: actions.add(1)  # process-local: set it in every party
        seen = []
        for r in range(rounds):
            arrived.add(1)
            seen.append(b.wait(STATE_TIMEOUT))
            assert arrived.load() >= WAITERS * (r + 1), "a party left before all arrived"
        return seen

    handles = [env.start(party, b) for _ in range(WAITERS)]
    per_party = [h.result() for h in handles]
    for r in range(rounds):
        assert sorted(p[r] for p in per_party) == list(range(WAITERS))
    assert actions.load() == rounds
    assert (b.n_waiting, b.broken) == (0, False)


def test_barrier_timeout_breaks_it_until_reset(env: Env) -> None:
    """A wait that times out breaks the barrier: it and the other waiters get
    BrokenBarrierError, later waits too, until reset() (threading docs; sync_design §5
    "timeout breaks the barrier")."""
    from futex.sync import BrokenBarrierError
    Barrier = _need("futex.sync.barrier").Barrier

    b = env.make(Barrier, WAITERS)
    timeout = _timeout(env)

    def wait(b: Any, t: float) -> str:
        try:
            b.wait(t)
        except BrokenBarrierError:
            return "broken"
        return "passed"

    patient = env.start(wait, b, STATE_TIMEOUT * 2)
    env.wait_blocked(patient, "the first party sleeps")
    h = env.start(wait, b, timeout)
    _expire(env, h, timeout)
    assert h.result() == "broken"
    assert patient.result() == "broken"
    assert b.broken
    assert env.start(wait, b, STATE_TIMEOUT).result() == "broken"
    b.reset()
    assert not b.broken
    handles = [env.start(wait, b, STATE_TIMEOUT) for _ in range(WAITERS)]
    assert [h.result() for h in handles] == ["passed"] * WAITERS


def test_barrier_abort_and_n_waiting(env: Env) -> None:
    """n_waiting counts the parties asleep in the open round; abort() sends every one of
    them BrokenBarrierError (threading docs for Barrier.abort / n_waiting)."""
    from futex.sync import BrokenBarrierError
    Barrier = _need("futex.sync.barrier").Barrier

    b = env.make(Barrier, WAITERS + 1)

    def wait(b: Any) -> str:
        with pytest.raises(BrokenBarrierError):
            b.wait(STATE_TIMEOUT)
        return "broken"

    handles = [env.start(wait, b) for _ in range(WAITERS)]
    _all_blocked(env, handles, "a party sleeps")
    assert b.n_waiting == WAITERS
    b.abort()
    assert [h.result() for h in handles] == ["broken"] * WAITERS
    assert b.broken and b.n_waiting == 0


# -- Once -----------------------------------------------------------------------------


def test_once_runs_the_function_once(env: Env) -> None:
    """Racers of call_once: one runs the function while the others sleep until it
    completes; they return False, and so does every later call (sync_design §5 "N
    racers run the function once"; Rust std ``sys/sync/once/futex.rs``)."""
    Once = _need("futex.sync.once").Once
    o = env.make(Once)
    runs, go = env.shared(), env.shared()

    def fn() -> None:
        runs.add(1)
        go.wait_for(1)

    def caller(o: Any) -> bool:
        return bool(o.call_once(fn))

    runner = env.start(caller, o)
    wait_until(lambda: runs.load() == 1, "the first caller runs the function")
    others = [env.start(caller, o) for _ in range(WAITERS - 1)]
    _all_blocked(env, others, "a racer waits for the runner")
    assert not o.done
    go.set(1)
    assert runner.result() is True
    assert [h.result() for h in others] == [False] * (WAITERS - 1)
    assert (runs.load(), o.done) == (1, True)
    assert env.start(caller, o).result() is False


def test_once_runs_again_after_the_function_raised(env: Env) -> None:
    """A call whose function raises does not complete the Once: the exception reaches
    that caller and the next call runs its function (Rust std Once: a panic poisons;
    sync_design §1.8: "On an exception: unlink, swap in 0 and wake all")."""
    Once = _need("futex.sync.once").Once
    o = env.make(Once)

    def failing(o: Any) -> str:
        with pytest.raises(ZeroDivisionError):
            o.call_once(lambda: 1 // 0)
        return "raised"

    assert env.start(failing, o).result() == "raised"
    assert not o.done
    ran = env.shared()
    assert env.start(lambda o: bool(o.call_once(lambda: ran.add(1))), o).result() is True
    assert (ran.load(), o.done) == (1, True)
