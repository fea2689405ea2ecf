"""futex.check's engine: what it detects, and the message it gives (issue 15;
checker_design.md §3, §5).

Each scenario is the smallest one that shows the bug it names: a lost wakeup (value
changed since the sleeper queued, after a requeue, or an ``awaits`` predicate), a
deadlock, a livelock (spinning, or past ``max_steps``), an assertion, another exception,
an invariant, a final check.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from futex.check import Scenario, run_schedule
from tests.check.test_engine import BACKENDS, script


def _sem(env: Any) -> SimpleNamespace:
    return SimpleNamespace(sem=env.word("sem"))


def _sem_wait(s: SimpleNamespace) -> str:
    while True:
        v = s.sem.load()
        if v == 0:
            s.sem.wait(0)
        elif s.sem.cas(v, v - 1) == v:
            return "took one"


def _post_twice_waking_on_zero(s: SimpleNamespace) -> None:
    for _ in range(2):
        if s.sem.fetch_add(1) == 0:  # the bug: wakes only on 0 -> 1
            s.sem.wake(1)


SEMAPHORE_NO_WAITER_COUNT = Scenario(
    "semaphore_no_waiter_count", _sem,
    [("W1", _sem_wait), ("W2", _sem_wait), ("P", _post_twice_waking_on_zero)],
)  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
def test_lost_wakeup_semaphore_without_waiter_count(backend: str) -> None:
    """checker_design §3 (fastipc's semaphore; python_peers §2): W1, W2 sleep; P posts
    0->1 waking W1, 1->2 waking nobody; W1 takes one; W2 sleeps with a count of 1.  Found
    by the default policy itself (DFS(0), schedule 1), no preemption."""
    o = run_schedule(SEMAPHORE_NO_WAITER_COUNT, None, backend=backend)
    assert o.kind == "lost-wakeup"
    assert o.message == (
        "W2 sleeps forever in FUTEX_WAIT on sem (queued at 0, now 1); other tasks finished; "
        "no timer pending"
    )
    assert o.task == "W2" and o.preemptions == 0 and o.steps == 10
    assert o.trace[-1].waiters == {"sem": ["W2"]}
    assert o.results == {"W1": "took one", "P": None}


def _cv(env: Any) -> SimpleNamespace:
    return SimpleNamespace(cv=env.word("cv"), m=env.word("m"))


def _cv_waiter(s: SimpleNamespace) -> None:
    s.cv.wait(0)
    while s.m.cas(0, 2) != 0:  # re-take the mutex, marking it contended
        s.m.wait(2)


def _broadcast_onto_uncontended_mutex(s: SimpleNamespace) -> None:
    s.m.store(1)  # lock (uncontended: 1)
    s.cv.fetch_add(1)
    s.cv.cmp_requeue(s.m, 1, wake=0)  # move the sleeper onto m, left at 1 (not 2)
    s.m.store(0)  # unlock: 1 -> 0 wakes nobody


@pytest.mark.parametrize("backend", BACKENDS)
def test_lost_wakeup_after_a_requeue_is_judged_on_the_new_word(backend: str) -> None:
    """checker_design §3 "condvar broadcast by cmp_requeue onto a mutex word left at 1":
    the sleeper is judged by the word it is queued on now, from the value at the
    requeue."""
    sc = Scenario("condvar_requeue_uncontended", _cv,
                  [("W", _cv_waiter), ("B", _broadcast_onto_uncontended_mutex)])  # fmt: skip
    o = run_schedule(sc, None, backend=backend)
    assert o.kind == "lost-wakeup"
    assert o.message == (
        "W sleeps forever in FUTEX_WAIT on m (requeued from cv; queued at 1, now 0); "
        "other tasks finished; no timer pending"
    )
    assert o.preemptions == 0


def _event(env: Any) -> SimpleNamespace:
    return SimpleNamespace(ev=env.word("ev"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_lost_wakeup_when_awaits_holds_though_the_word_did_not_change(backend: str) -> None:
    """An event waiter that sleeps on "set" (1) without checking: its word never changes,
    so by value it is a deadlock; ``awaits`` says what it waits for is there."""

    def set_then_wait(s: SimpleNamespace) -> None:
        s.ev.store(1)
        s.ev.wait(1)  # the bug: waits for the event it just saw set

    plain = Scenario("event_wait_set", _event, [("W", set_then_wait)])
    assert run_schedule(plain, None, backend=backend).kind == "deadlock"
    sc = Scenario("event_wait_set", _event, [("W", set_then_wait)],
                  awaits={"ev": lambda v: v == 1})  # fmt: skip
    o = run_schedule(sc, None, backend=backend)
    assert o.kind == "lost-wakeup"
    assert o.message == (
        "W sleeps forever in FUTEX_WAIT on ev (queued at 1, now 1; awaits holds); no timer pending"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_pi_word_unlocked_by_a_plain_store_strands_the_lock_pi_sleeper(backend: str) -> None:
    """checker_design §3: A takes the PI word by cas(0, tid); B's LOCK_PI sets
    FUTEX_WAITERS and sleeps; A stores 0 instead of FUTEX_UNLOCK_PI: B sleeps on a free
    lock (one preemption)."""

    def setup(env: Any) -> SimpleNamespace:
        return SimpleNamespace(m=env.word("m"))

    def a(s: SimpleNamespace) -> None:
        assert s.m.cas(0, 1) == 0  # tid 1
        s.m.store(0)

    def b(s: SimpleNamespace) -> None:
        assert s.m.lock_pi()
        s.m.unlock_pi()

    sc = Scenario("pi_unlock_store0", setup, [("A", a), ("B", b)])
    o = run_schedule(sc, script([0, 1]), backend=backend)
    assert o.kind == "lost-wakeup" and o.preemptions == 1
    assert o.message == (
        "B sleeps forever in FUTEX_LOCK_PI on m (queued at 0x80000001, now 0); "
        "other tasks finished; no timer pending"
    )


def _two_locks(env: Any) -> SimpleNamespace:
    return SimpleNamespace(a=env.word("a"), b=env.word("b"))


def _lock(w: Any) -> None:
    while w.cas(0, 1) != 0:
        w.cas(1, 2)
        w.wait(2)


def _unlock(w: Any) -> None:
    if w.swap(0) == 2:
        w.wake(1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_deadlock_lock_order_inversion(backend: str) -> None:
    """AB-BA: each task holds one lock and sleeps on the other; both words still hold
    the value their sleepers queued at: a deadlock, not a lost wakeup."""

    def ab(s: SimpleNamespace) -> None:
        _lock(s.a)
        _lock(s.b)
        _unlock(s.b)
        _unlock(s.a)

    def ba(s: SimpleNamespace) -> None:
        _lock(s.b)
        _lock(s.a)
        _unlock(s.a)
        _unlock(s.b)

    sc = Scenario("abba", _two_locks, [("P", ab), ("Q", ba)])
    assert run_schedule(sc, None, backend=backend).ok  # no preemption: no deadlock
    o = run_schedule(sc, script([0, 1]), backend=backend)
    assert o.kind == "deadlock" and o.preemptions == 1
    assert o.message == (
        "deadlock: P sleeps forever in FUTEX_WAIT on b (queued at 2, now 2); "
        "Q sleeps forever in FUTEX_WAIT on a (queued at 2, now 2); no timer pending"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_pending_timer_is_not_a_deadlock(backend: str) -> None:
    """Nothing can run but a timer is pending: the clock jumps instead."""

    def ab(s: SimpleNamespace) -> bool:
        _lock(s.a)
        return bool(s.b.wait(0, timeout=0.5))

    sc = Scenario("timeout", _two_locks, [("P", ab)])
    o = run_schedule(sc, None, backend=backend)
    assert o.ok and o.results == {"P": False}


def _flag(env: Any) -> SimpleNamespace:
    return SimpleNamespace(f=env.word("f"), n=env.word("n"))


def _spin(s: SimpleNamespace) -> None:
    while s.f.load() == 0:
        pass


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_spin_wait_on_a_flag_set_by_another_task_is_no_livelock(backend: str) -> None:
    """Await model checking: the spinner is set aside once it re-reads an unchanged
    value, so the setter runs without a preemption, and no spin is explored twice."""

    def setter(s: SimpleNamespace) -> None:
        s.f.store(1)

    o = run_schedule(Scenario("spin", _flag, [("S", _spin), ("T", setter)]), None,
                     backend=backend)  # fmt: skip
    assert o.ok and o.preemptions == 0
    assert [(s.task, s.operation) for s in o.trace] == [
        ("S", "f.load()"), ("S", "f.load()"), ("T", "f.store(1)"), ("S", "f.load()"),
    ]  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
def test_livelock_every_runnable_task_spins(backend: str) -> None:
    """Two tasks spin on flags nobody sets: each re-reads its word livelock_after times
    more once nothing else can run, then the schedule is a livelock."""

    def spin_n(s: SimpleNamespace) -> None:
        while s.n.load() == 0:
            pass

    sc = Scenario("spin", _flag, [("S", _spin), ("T", spin_n)], livelock_after=5)
    o = run_schedule(sc, None, backend=backend)
    assert o.kind == "livelock"
    assert o.message == (
        "livelock: S spins: f.load returned 0 7 times and nobody changes it; "
        "T spins: n.load returned 0 7 times and nobody changes it; no timer pending"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_livelock_past_max_steps(backend: str) -> None:
    """A task that keeps changing a word never spins; max_steps ends it."""

    def churn(s: SimpleNamespace) -> None:
        while True:
            s.f.fetch_add(1)

    o = run_schedule(Scenario("churn", _flag, [("C", churn)]), None, backend=backend,
                     max_steps=40)  # fmt: skip
    assert o.kind == "livelock" and o.steps == 40
    assert o.message == "the schedule did not end within max_steps=40 steps (C ran 40 of them)"


@pytest.mark.parametrize("backend", BACKENDS)
def test_assertion_in_a_task(backend: str) -> None:
    def check(s: SimpleNamespace) -> None:
        v = s.f.fetch_add(1)
        assert v == 1, f"expected 1, saw {v}"

    o = run_schedule(Scenario("assert", _flag, [("A", check)]), None, backend=backend)
    assert o.kind == "assertion" and o.task == "A"
    assert o.message == "A assertion failed: expected 1, saw 0"
    assert isinstance(o.error, AssertionError)


@pytest.mark.parametrize("backend", BACKENDS)
def test_exception_in_a_task_unlock_pi_by_a_non_owner(backend: str) -> None:
    def steal(s: SimpleNamespace) -> None:
        s.f.unlock_pi()  # FUTEX_UNLOCK_PI of a word we do not own: EPERM

    o = run_schedule(Scenario("eperm", _flag, [("X", steal)]), None, backend=backend)
    assert o.kind == "exception" and o.task == "X"
    assert isinstance(o.error, PermissionError)
    assert o.message.startswith("X raised PermissionError:")
    assert o.trace[-1].result.startswith("raises PermissionError")


def _unlocked_increment(s: SimpleNamespace) -> None:
    v = s.n.load()
    s.n.store(v + 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_final_check_lost_update(backend: str) -> None:
    """The classic lost update (load; store v+1 without a lock): one preemption between
    A's load and store; the final check sees 1, not 2."""
    sc = Scenario("lost_update", _flag, [("A", _unlocked_increment), ("B", _unlocked_increment)],
                  final=lambda s, r: s.n.peek() == 2)  # fmt: skip
    assert run_schedule(sc, None, backend=backend).ok
    o = run_schedule(sc, script([0, 1]), backend=backend)
    assert o.kind == "final" and o.preemptions == 1
    assert o.message == "final check failed: returned False"


@pytest.mark.parametrize("backend", BACKENDS)
def test_invariant_checked_after_every_step(backend: str) -> None:
    """Drepper's take 1 proxy (checker_design §3): a counter must stay <= the number of
    tasks; the first step breaking it is named."""

    def inc(s: SimpleNamespace) -> None:
        s.n.fetch_add(1)
        s.n.fetch_add(1)

    sc = Scenario("bounded", _flag, [("A", inc), ("B", inc)], invariant=lambda s: s.n.peek() <= 2)
    o = run_schedule(sc, None, backend=backend)
    assert o.kind == "invariant" and o.task == "B" and o.steps == 3
    assert o.message == "invariant violated after step 2 (B: n.fetch_add(1) -> 2): returned False"

    def asserting(s: SimpleNamespace) -> None:
        assert s.n.peek() <= 2, f"n = {s.n.peek()}"

    sc = Scenario("bounded", _flag, [("A", inc), ("B", inc)], invariant=asserting)
    o = run_schedule(sc, None, backend=backend)
    assert o.message.endswith("): n = 3") and isinstance(o.error, AssertionError)
