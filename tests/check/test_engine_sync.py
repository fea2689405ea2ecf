"""futex.sync primitives run unchanged under futex.check's engine (issue 15;
checker_design.md §5: "futex.sync primitives run under it unchanged").

A primitive created in ``env.memory()`` gets words whose atomics and futex calls are
scheduling points, and the task it acts for is the running task (the engine rebinds
futex.sync's bound task at every switch, greenlets sharing one OS thread included).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from futex.check import Scenario, run_schedule
from futex.kernel import ClockId
from futex.sync import Event, Mutex
from tests.check.test_engine import BACKENDS, rows, seeded


def _mutex(env: Any) -> SimpleNamespace:
    return SimpleNamespace(m=Mutex.create(env.memory(Mutex.SIZE, "m")), n=env.word("n"))


def _locked_increments(s: SimpleNamespace) -> None:
    for _ in range(2):
        with s.m:
            v = s.n.load()
            s.n.store(v + 1)


def _increments(s: SimpleNamespace) -> None:
    for _ in range(2):
        v = s.n.load()
        s.n.store(v + 1)


MUTEX = Scenario(
    "sync_mutex", _mutex, [("A", _locked_increments), ("B", _locked_increments)],
    final=lambda s, r: s.n.peek() == 4,
)  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_futex_sync_mutex_protects_its_counter_in_every_schedule(backend: str) -> None:
    """futex.sync.Mutex (robust "take 2") under 150 random schedules: never a lost
    update, and the contended path (FUTEX_WAIT on the lock word) is explored."""
    slept = 0
    for seed in range(150):
        o = run_schedule(MUTEX, seeded(seed), backend=backend)
        assert o.ok, (seed, o.message)
        slept += any(s.kind == "wait" and s.word == "m+16" for s in o.trace)
    assert slept > 10


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_lock_word_names_the_running_task(backend: str) -> None:
    """The bound task follows the running task: A's acquire writes tid 1, B's tid 2."""
    o = run_schedule(MUTEX, None, backend=backend)
    holders = {
        s.task: s.words["m+16"] & 0x3FFF_FFFF
        for s in o.trace
        if s.kind == "cas" and s.word == "m+16" and s.words["m+16"] & 0x3FFF_FFFF
    }
    assert holders == {"A": 1, "B": 2}


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_the_mutex_the_lost_update_is_found(backend: str) -> None:
    """The same counter with the lock left out: some schedule loses an update."""
    sc = Scenario("no_mutex", _mutex, [("A", _increments), ("B", _increments)],
                  final=lambda s, r: s.n.peek() == 4)  # fmt: skip
    kinds = {run_schedule(sc, seeded(seed), backend=backend).kind for seed in range(40)}
    assert kinds == {"ok", "final"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_futex_sync_schedules_replay_identically_on_a_reused_machine(backend: str) -> None:
    """The machine is reset after a futex.sync schedule (robust list heads restored):
    the same choices give the same trace again."""
    first = run_schedule(MUTEX, seeded(7), backend=backend)
    for seed in range(5):
        run_schedule(MUTEX, seeded(seed), backend=backend)
    assert rows(run_schedule(MUTEX, seeded(7), backend=backend)) == rows(first)


def _event(env: Any) -> SimpleNamespace:
    return SimpleNamespace(ev=Event.create(env.memory(Event.SIZE, "ev")), clock=env.clock)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_futex_sync_event_wait_times_out_in_virtual_time(backend: str) -> None:
    """Event.wait(timeout) on the schedule's clock: alone, it times out after exactly the
    timeout (the clock jumps); with a setter, some schedule sees it set."""

    def waiter(s: SimpleNamespace) -> tuple[bool, float]:
        t0 = s.clock.now(ClockId.MONOTONIC)
        got = s.ev.wait(2.0)
        return got, (s.clock.now(ClockId.MONOTONIC) - t0) / 1e9

    alone = run_schedule(Scenario("ev", _event, [("W", waiter)]), None, backend=backend)
    assert alone.ok and alone.results == {"W": (False, 2.0)}
    sc = Scenario("ev", _event, [("W", waiter), ("S", lambda s: s.ev.set())])
    results = {run_schedule(sc, seeded(seed), backend=backend).results["W"][0]
               for seed in range(30)}  # fmt: skip
    assert results == {True, False}
