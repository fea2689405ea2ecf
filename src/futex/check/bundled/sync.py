"""Every futex.sync primitive under the checker: 2-3-task scenarios on the emulated kernel.

Each primitive is created in ``env.memory(...)`` by the scenario's setup, so the
unchanged futex.sync code runs with a scheduling point at each of its atomics and futex
calls (and its deadlines on the virtual clock).  The checks: mutual exclusion through a
checked ``inside`` word (invariant after every step), no lost wake-up (a sleeper left
behind is a deadlock or lost-wakeup), and each primitive's final state.

``SYNC`` maps names to :class:`~futex.check.bundled._base.Entry` s (all correct: they must
pass DFS at ``preemptions`` completely, then ``pct`` PCT schedules); ``broken_mutex``
builds the same mutex scenario on a copy of :class:`futex.sync.Mutex` whose release
forgets the wake (the tests keep it: the checker must find it).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from futex.check.bundled._base import Entry, check
from futex.check.runtime import Scenario
from futex.sync import (
    Barrier,
    BoundedSemaphore,
    Condition,
    Event,
    Mutex,
    Once,
    RLock,
    RWLock,
    Semaphore,
)
from futex.sync.rwlock import size_for

__all__ = ["SYNC", "mutex_scenario"]


def _free(lock: Any, what: str) -> bool:
    return check(not lock.locked(), f"the {what} is still held at the end")


def _inside(s: SimpleNamespace) -> bool:
    n = s.inside.peek()
    return check(n <= 1, f"mutual exclusion: {n} tasks inside the critical section")


# -- Mutex, RLock, BoundedSemaphore: mutual exclusion -------------------------------------------


def mutex_scenario(name: str, cls: type[Mutex] = Mutex, *, tasks: int = 2) -> Scenario:
    """``tasks`` tasks each run ``with lock: inside += 1; inside -= 1``."""

    def setup(env: Any) -> SimpleNamespace:
        return SimpleNamespace(lock=cls.create(env.memory(cls.SIZE, "m")),
                               inside=env.word("inside"))

    def body(s: SimpleNamespace) -> None:
        with s.lock:
            s.inside.fetch_add(1)
            s.inside.fetch_sub(1)

    return Scenario(
        name=name, setup=setup, tasks=[(chr(65 + i), body) for i in range(tasks)],
        invariant=_inside, final=lambda s, r: _free(s.lock, "mutex"),
    )


def _rlock_scenario() -> Scenario:
    def setup(env: Any) -> SimpleNamespace:
        return SimpleNamespace(lock=RLock.create(env.memory(RLock.SIZE, "m")),
                               inside=env.word("inside"))

    def body(s: SimpleNamespace) -> None:
        with s.lock:
            s.inside.fetch_add(1)
            with s.lock:  # re-entered: counted, no futex call
                pass
            s.inside.fetch_sub(1)

    return Scenario(name="sync_rlock", setup=setup, tasks=[("A", body), ("B", body)],
                    invariant=_inside, final=lambda s, r: _free(s.lock, "RLock"))


def _bounded_scenario() -> Scenario:
    def setup(env: Any) -> SimpleNamespace:
        mem = env.memory(BoundedSemaphore.SIZE, "sem")
        return SimpleNamespace(sem=BoundedSemaphore.create(mem, 0, 1), inside=env.word("inside"))

    def body(s: SimpleNamespace) -> None:
        with s.sem:
            s.inside.fetch_add(1)
            s.inside.fetch_sub(1)

    def final(s: SimpleNamespace, results: dict[str, Any]) -> bool:
        value = s.sem.statistics().value
        return check(value == 1, f"the bounded semaphore ends at {value}, not 1")

    return Scenario(name="sync_bounded_semaphore", setup=setup, tasks=[("A", body), ("B", body)],
                    invariant=_inside, final=final)


# -- Semaphore: the fastipc test (two waiters, two posts) ------------------------------------------


def _semaphore_scenario() -> Scenario:
    def setup(env: Any) -> SimpleNamespace:
        return SimpleNamespace(sem=Semaphore.create(env.memory(Semaphore.SIZE, "sem"), 0, 0))

    def waiter(s: SimpleNamespace) -> bool:
        return bool(s.sem.acquire())

    def poster(s: SimpleNamespace) -> None:
        s.sem.release()
        s.sem.release()

    def final(s: SimpleNamespace, results: dict[str, Any]) -> bool:
        check(results["W1"] and results["W2"], f"a waiter failed: {results}")
        value = s.sem.statistics().value
        return check(value == 0, f"{value} tokens left over")

    return Scenario(name="sync_semaphore", setup=setup,
                    tasks=[("W1", waiter), ("W2", waiter), ("P", poster)], final=final)


# -- Condition: wait for a predicate, notify ---------------------------------------------------


def _condition_scenario(waiters: int) -> Scenario:
    """One waiter and notify(), or several and notify_all()."""

    def setup(env: Any) -> SimpleNamespace:
        cond = Condition.create(env.memory(Condition.SIZE, "cv"), 0, False)
        return SimpleNamespace(cond=cond, go=env.word("go"))

    def waiter(s: SimpleNamespace) -> bool:
        with s.cond:
            while s.go.load() == 0:
                s.cond.wait()
        return True

    def setter(s: SimpleNamespace) -> None:
        with s.cond:
            s.go.store(1)
            if waiters == 1:
                s.cond.notify()
            else:
                s.cond.notify_all()

    if waiters == 1:
        name, tasks = "sync_condition", [("W", waiter)]
    else:
        name, tasks = "sync_condition_notify_all", [(f"W{i + 1}", waiter) for i in range(waiters)]
    return Scenario(name=name, setup=setup, tasks=[*tasks, ("S", setter)],
                    final=lambda s, r: _free(s.cond.lock, "condition's lock"))


# -- RWLock: a writer excludes everyone -----------------------------------------------------------


def _rwlock_scenario(readers: int) -> Scenario:
    def setup(env: Any) -> SimpleNamespace:
        rw = RWLock.create(env.memory(size_for(2), "rw"), 0, slots=2)
        return SimpleNamespace(rw=rw, writing=env.word("writing"), reading=env.word("reading"))

    def writer(s: SimpleNamespace) -> None:
        with s.rw.write_lock():
            s.writing.fetch_add(1)
            s.writing.fetch_sub(1)

    def reader(s: SimpleNamespace) -> None:
        with s.rw.read_lock():
            s.reading.fetch_add(1)
            s.reading.fetch_sub(1)

    def invariant(s: SimpleNamespace) -> bool:
        w, r = s.writing.peek(), s.reading.peek()
        check(w <= 1, f"{w} writers at once")
        return check(not (w and r), f"a writer and {r} reader(s) at once")

    def final(s: SimpleNamespace, results: dict[str, Any]) -> bool:
        st = s.rw.statistics()
        return check(not st.write_locked and st.readers == 0,
                     f"the RWLock is still held at the end: {st}")

    tasks = [("W", writer)] + [(f"R{i + 1}", reader) for i in range(readers)]
    if readers == 0:
        tasks.append(("W2", writer))
    return Scenario(name=f"sync_rwlock_{'writers' if readers == 0 else f'{readers}r'}",
                    setup=setup, tasks=tasks, invariant=invariant, final=final)


# -- Barrier, Event, Once ----------------------------------------------------------------------


def _barrier_scenario() -> Scenario:
    def setup(env: Any) -> SimpleNamespace:
        barrier = Barrier.create(env.memory(Barrier.SIZE, "barrier"), 0, 2)
        return SimpleNamespace(barrier=barrier, arrived=env.word("arrived"))

    def party(s: SimpleNamespace) -> int:
        s.arrived.fetch_add(1)
        index = s.barrier.wait()
        n = s.arrived.load()
        assert n == 2, f"passed the barrier with {n} of 2 parties arrived"
        return int(index)

    def final(s: SimpleNamespace, results: dict[str, Any]) -> bool:
        return check(sorted(results.values()) == [0, 1],
                     f"arrival indexes {results}, not 0 and 1")

    return Scenario(name="sync_barrier", setup=setup, tasks=[("A", party), ("B", party)],
                    final=final)


def _event_scenario() -> Scenario:
    def setup(env: Any) -> SimpleNamespace:
        return SimpleNamespace(event=Event.create(env.memory(Event.SIZE, "event")))

    def waiter(s: SimpleNamespace) -> bool:
        return bool(s.event.wait())

    def setter(s: SimpleNamespace) -> None:
        s.event.set()

    def final(s: SimpleNamespace, results: dict[str, Any]) -> bool:
        return check(results["W1"] is True and results["W2"] is True,
                     f"a wait() did not return True: {results}")

    return Scenario(name="sync_event", setup=setup,
                    tasks=[("W1", waiter), ("W2", waiter), ("S", setter)], final=final)


def _once_scenario() -> Scenario:
    def setup(env: Any) -> SimpleNamespace:
        return SimpleNamespace(once=Once.create(env.memory(Once.SIZE, "once")),
                               runs=env.word("runs"))

    def caller(s: SimpleNamespace) -> bool:
        return bool(s.once.call_once(lambda: s.runs.fetch_add(1)))

    def final(s: SimpleNamespace, results: dict[str, Any]) -> bool:
        check(s.runs.peek() == 1, f"the function ran {s.runs.peek()} times")
        return check(sorted(results.values()) == [False, True],
                     f"call_once returned {results}: exactly one True expected")

    return Scenario(name="sync_once", setup=setup, tasks=[("A", caller), ("B", caller)],
                    final=final)


# -- the entries -----------------------------------------------------------------------------------

_SYNC = "futex.sync"


def _entry(scenario: Scenario, what: str, preemptions: int = 2, pct: int = 1000) -> Entry:
    return Entry(scenario.name, scenario, f"{_SYNC}: {what}", what, None, preemptions, pct=pct)


SYNC: dict[str, Entry] = {e.name: e for e in (
    _entry(mutex_scenario("sync_mutex"), "Mutex: two tasks, mutual exclusion"),
    _entry(_rlock_scenario(), "RLock: two tasks, re-entered once"),
    _entry(_condition_scenario(1), "Condition: wait for a predicate, notify"),
    # 3 tasks: bound 2 is 4,506 schedules (~15 s); CI runs bound 1 (266) + PCT
    _entry(_condition_scenario(2), "Condition: two waiters, notify_all", 1, 1000),
    _entry(_semaphore_scenario(), "Semaphore(0): two waiters, two releases"),
    _entry(_bounded_scenario(), "BoundedSemaphore(1) as a lock"),
    _entry(_rwlock_scenario(1), "RWLock: a writer and a reader"),
    _entry(_rwlock_scenario(0), "RWLock: two writers"),
    _entry(_barrier_scenario(), "Barrier(2): nobody passes before both arrive"),
    _entry(_event_scenario(), "Event: two waiters, one set"),
    _entry(_once_scenario(), "Once: two callers, the function runs once"),
)}
