"""futex.check's engine: scheduling points, the default policy, preemptions, virtual time,
timers as events, spurious wake-ups, both backends (issue 15; checker_design.md §1, §5).

Each test names the rule it pins.  Scenarios are written against the word protocol, as a
user's would be; a scripted chooser forces the interleavings the rules are about.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

import pytest

from futex.check import TIMER, Choice, Outcome, Point, Scenario, run_schedule
from futex.check import machine as check_machine
from futex.check.tasks import GREENLET_MISSING, have_greenlet
from futex.kernel import ClockId

BACKENDS = [
    pytest.param(
        "greenlet", marks=pytest.mark.skipif(not have_greenlet(), reason=GREENLET_MISSING)
    ),
    "threads",
]


def script(
    steps: Iterable[int | Choice], seen: list[Point] | None = None
) -> Callable[[Point], Choice]:
    """A chooser taking ``steps`` in order (a task index means "run it"), then the
    default policy; every point it is asked about is appended to ``seen``."""
    pending = list(steps)

    def choose(p: Point) -> Choice:
        if seen is not None:
            seen.append(p)
        if pending:
            want = pending.pop(0)
            return want if isinstance(want, Choice) else Choice("run", want)
        if p.current is not None and p.current in p.runnable:
            return Choice("run", p.current)
        return p.options[0]

    return choose


def seeded(seed: int) -> Callable[[Point], Choice]:
    rng = random.Random(seed)
    return lambda p: p.options[rng.randrange(len(p.options))]


def rows(o: Outcome) -> list[tuple[Any, ...]]:
    """The trace as the report shows it."""
    return [(s.step, s.task, s.operation, s.result, s.words, s.waiters) for s in o.trace]


def ns(**kw: Any) -> SimpleNamespace:
    return SimpleNamespace(**kw)


# -- scenarios ---------------------------------------------------------------------------


def _flag(env: Any) -> SimpleNamespace:
    return ns(f=env.word("f"), g=env.word("g"), clock=env.clock)


def _wait_flag(s: SimpleNamespace) -> bool:
    return bool(s.f.wait(0))


def _set_flag(s: SimpleNamespace) -> int:
    s.f.store(1)
    return int(s.f.wake(1))


def _bump(s: SimpleNamespace) -> None:
    s.f.fetch_add(1)
    s.f.fetch_add(1)


def _take2(env: Any) -> SimpleNamespace:
    return ns(m=env.word("m"), n=env.word("n"))


def _take2_worker(s: SimpleNamespace) -> None:
    """Drepper's "take 2" mutex (correct), twice."""
    for _ in range(2):
        c = s.m.cas(0, 1)
        if c != 0:
            if c != 2:
                c = s.m.swap(2)
            while c != 0:
                s.m.wait(2)
                c = s.m.swap(2)
        s.n.fetch_add(1)
        if s.m.fetch_sub(1) != 1:
            s.m.store(0)
            s.m.wake(1)


TAKE2 = Scenario(
    "take2", _take2, [("A", _take2_worker), ("B", _take2_worker)],
    final=lambda s, r: s.n.peek() == 4,
)  # fmt: skip


def _timed_wait(s: SimpleNamespace) -> tuple[bool, float]:
    t0 = s.clock.now(ClockId.MONOTONIC)
    woken = s.f.wait(0, timeout=1.0)
    return woken, (s.clock.now(ClockId.MONOTONIC) - t0) / 1e9


def _retry_wait(s: SimpleNamespace) -> int:
    """Waits until f is set, counting its wake-ups (spurious ones included)."""
    wakes = 0
    while s.f.load() == 0:
        s.f.wait(0)
        wakes += 1
    return wakes


# -- scheduling points -------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_blocking_wait_is_two_points_enter_then_return(backend: str) -> None:
    """checker_design §1: the value check + enqueue is one point (atomic towards wakers),
    the woken task's return another -- other tasks run in between."""
    sc = Scenario("wait", _flag, [("W", _wait_flag), ("S", _set_flag)])
    o = run_schedule(sc, None, backend=backend)
    assert o.ok, o
    assert rows(o) == [
        (0, "W", "f.wait(0)", "sleeps", {"f": 0, "g": 0}, {"f": ["W"]}),
        (1, "S", "f.store(1)", "-", {"f": 1, "g": 0}, {"f": ["W"]}),
        (2, "S", "f.wake(1)", "woke 1", {"f": 1, "g": 0}, {}),
        (3, "W", "f: wait returns", "woken", {"f": 1, "g": 0}, {}),
    ]
    assert o.results == {"W": True, "S": 1}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_woken_task_is_runnable_at_its_return_point(backend: str) -> None:
    """The window between a wake and the woken task running is a choice: at the point
    after S's wake, both S (its return) and W (its wait-return) can run."""
    seen: list[Point] = []

    def setter(s: SimpleNamespace) -> None:
        _set_flag(s)
        s.g.store(1)

    sc = Scenario("wait", _flag, [("W", _wait_flag), ("S", setter)])
    o = run_schedule(sc, script([], seen), backend=backend)
    assert o.ok
    assert seen[0].current is None and seen[0].runnable == (0, 1)  # the start
    p = seen[1]
    assert p.runnable == (0, 1)
    assert p.current == 1
    assert p.next_ops[0].kind == "return" and p.next_ops[0].word == "f"
    assert p.next_ops[1].kind == "store" and p.next_ops[1].writes
    assert p.options == (Choice("run", 0), Choice("run", 1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_default_policy_runs_the_current_task_until_it_ends_then_the_lowest(
    backend: str,
) -> None:
    """The default policy: keep the current task while it can run, else the lowest
    runnable; no preemption."""
    sc = Scenario("bumps", _flag, [_bump, _bump, _bump])
    o = run_schedule(sc, None, backend=backend)
    assert [s.task for s in o.trace] == ["_bump1"] * 2 + ["_bump2"] * 2 + ["_bump3"] * 2
    assert o.preemptions == 0
    assert o.ok and o.trace[-1].words["f"] == 6


def _seven(s: SimpleNamespace) -> int:
    return 7  # no word call: no point, the task ends during the start


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("first", [0, 2])
def test_tasks_start_in_order_and_one_without_points_ends_at_once(
    backend: str, first: int
) -> None:
    """At start every task runs to its first point, in order (futex.check.runtime); a
    task that makes no call ends there, and the ones after it still start; the first
    decision sees every task parked at its first point, nothing run yet."""
    seen: list[Point] = []
    sc = Scenario("start", _flag, [("A", _bump), ("B", _seven), ("C", _bump)])
    o = run_schedule(sc, script([first], seen), backend=backend)
    assert o.ok and o.results == {"A": None, "B": 7, "C": None}
    p = seen[0]
    assert (p.step, p.current, p.runnable, p.at) == (0, None, (0, 2), 0)
    assert {i: op.kind for i, op in p.next_ops.items()} == {0: "fetch_add", 2: "fetch_add"}
    order = ["A", "A", "C", "C"] if first == 0 else ["C", "C", "A", "A"]
    assert [s.task for s in o.trace] == order
    assert o.preemptions == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_preemption_is_a_switch_away_from_a_task_that_can_run(backend: str) -> None:
    """Switching at a block or an exit is free; running another task while the current
    one can run counts one preemption."""
    sc = Scenario("bumps", _flag, [("A", _bump), ("B", _bump)])
    o = run_schedule(sc, script([0, 1]), backend=backend)
    assert [s.task for s in o.trace] == ["A", "B", "B", "A"]
    assert o.preemptions == 1
    sc = Scenario("wait", _flag, [("W", _wait_flag), ("S", _set_flag)])
    assert run_schedule(sc, script([]), backend=backend).preemptions == 0  # W blocks


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_chooser_is_asked_only_with_options_in_canonical_order(backend: str) -> None:
    seen: list[Point] = []
    sc = Scenario("bumps", _flag, [("A", _bump), ("B", _bump)])
    o = run_schedule(sc, script([], seen), backend=backend)
    assert [p.step for p in seen] == list(range(len(seen))) == [d.point.step for d in o.decisions]
    for p in seen:
        assert len(p.options) >= 2
        assert p.runnable == tuple(sorted(p.runnable))
        assert p.options[: len(p.runnable)] == tuple(Choice("run", i) for i in p.runnable)
    assert [d.chosen for d in o.decisions] == o.choices
    for d in o.decisions:  # ``at``: the trace index of the step taken at the point
        if d.choice.kind == "run":
            assert o.trace[d.point.at].task == ("A", "B")[d.choice.task]


def test_a_choice_that_is_not_an_option_is_refused() -> None:
    sc = Scenario("bumps", _flag, [("A", _bump), ("B", _bump)])
    with pytest.raises(ValueError, match="not one of"):
        run_schedule(sc, lambda p: Choice("run", 7), backend="threads")


def test_calls_outside_tasks_are_no_points_and_may_not_block() -> None:
    """setup, invariants and the final check call words directly (no step); a wait that
    would sleep there is an error, not a hang."""

    def setup(env: Any) -> SimpleNamespace:
        s = _flag(env)
        s.f.store(3)
        s.f.fetch_add(1)
        return s

    sc = Scenario("free", setup, [("A", _bump)], invariant=lambda s: s.f.load() >= 4)
    o = run_schedule(sc, None)
    assert o.ok and o.steps == 2 and o.trace[-1].words["f"] == 6

    def sleepy(env: Any) -> SimpleNamespace:
        s = _flag(env)
        s.f.wait(0)
        return s

    with pytest.raises(RuntimeError, match="only tasks may sleep"):
        run_schedule(Scenario("bad", sleepy, [_bump]), None)


# -- both backends, one machine ----------------------------------------------------------


@pytest.mark.skipif(not have_greenlet(), reason=GREENLET_MISSING)
@pytest.mark.parametrize("seed", range(12))
def test_both_backends_give_identical_traces_for_the_same_choices(seed: int) -> None:
    """checker_design §7 (determinism): the same choices give the same trace, decisions,
    digest and results on greenlet and on threads."""
    for sc in (TAKE2, Scenario("timed", _flag, [_timed_wait, _set_flag, _retry_wait],
                               spurious=1)):  # fmt: skip
        a = run_schedule(sc, seeded(seed), backend="greenlet")
        b = run_schedule(sc, seeded(seed), backend="threads")
        assert rows(a) == rows(b)
        assert (a.kind, a.message, a.choices, a.preemptions) == (
            b.kind, b.message, b.choices, b.preemptions,
        )  # fmt: skip
        assert a.ops_digest == b.ops_digest and a.results == b.results


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_schedule_starts_from_the_same_kernel_tids_included(backend: str) -> None:
    """The machine is reused and reset: tids, word addresses and the queues are those of
    a fresh one, whatever the previous schedule left (here: a task asleep forever)."""

    def setup(env: Any) -> SimpleNamespace:
        return ns(a=env.word("a"), b=env.word("b"))

    def tid(s: SimpleNamespace, w: str) -> tuple[int, int]:
        word = getattr(s, w)
        assert word.trylock_pi()
        return word.peek(), word.addr

    sc = Scenario("tids", setup, [("A", lambda s: tid(s, "a")), ("B", lambda s: tid(s, "b"))])
    first = run_schedule(sc, None, backend=backend)
    stuck = Scenario("stuck", _flag, [_wait_flag])
    assert run_schedule(stuck, None, backend=backend).kind == "deadlock"
    again = run_schedule(sc, None, backend=backend)
    assert first.results == again.results
    assert [r[0] for r in first.results.values()] == [1, 2]
    assert rows(first) == rows(again)
    for m in check_machine._pool.get(1, []):
        assert m.process.futex.queues() == {}


# -- virtual time ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_clock_jumps_to_the_earliest_timer_when_every_task_is_blocked(
    backend: str,
) -> None:
    sc = Scenario("alone", _flag, [("W", _timed_wait)])
    o = run_schedule(sc, None, backend=backend)
    assert o.ok and o.results == {"W": (False, 1.0)}
    assert [(s.task, s.operation, s.result) for s in o.trace] == [
        ("W", "f.wait(0, timeout=1)", "sleeps"),
        ("timer", "timer fires (clock +1 s)", "W timed out"),
        ("W", "f: wait returns", "timed out"),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_pending_timer_is_an_option_at_every_point(backend: str) -> None:
    """Timeouts race wakes: firing the timer first times W out, S's wake then finds
    nobody; waking first leaves no timer to fire."""
    sc = Scenario("race", _flag, [("W", _timed_wait), ("S", _set_flag)])
    seen: list[Point] = []
    timeout_first = run_schedule(sc, script([0, TIMER], seen), backend=backend)
    assert not seen[0].timer  # the start: W has not armed its timer yet
    assert seen[1].timer and seen[1].options == (Choice("run", 1), TIMER)
    assert timeout_first.results == {"W": (False, 1.0), "S": 0}
    wake_first = run_schedule(sc, script([0, 1, 1]), backend=backend)
    assert wake_first.results == {"W": (True, 0.0), "S": 1}
    assert all(not d.point.timer for d in wake_first.decisions[3:])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_waker_that_dequeued_the_waiter_wins_over_a_later_timeout(backend: str) -> None:
    """The kernel's rule (kernel/blocking.py, Linux __futex_wait): W woken by S, then the
    clock passes W's deadline (another task's timer) before W runs: W returns woken."""

    def long_wait(s: SimpleNamespace) -> bool:
        return bool(s.g.wait(0, timeout=5.0))

    sc = Scenario("late", _flag, [("W", _timed_wait), ("S", _set_flag), ("T", long_wait)])
    o = run_schedule(sc, script([0, 1, 1, 2, TIMER]), backend=backend)
    assert [s.operation for s in o.trace][:6] == [
        "f.wait(0, timeout=1)", "f.store(1)", "f.wake(1)", "g.wait(0, timeout=5)",
        "timer fires (clock +5 s)", "f: wait returns",
    ]  # fmt: skip
    assert o.results["W"] == (True, 5.0)
    assert o.results["T"] is False


# -- spurious wake-ups ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_spurious_wakeups_are_options_within_the_budget(backend: str) -> None:
    """A spurious wake-up is EINTR through task.interrupt(handler=True, restart=False):
    the wait returns (True), the task re-checks; one per unit of budget."""
    sc = Scenario("spur", _flag, [("W", _retry_wait), ("S", _set_flag)], spurious=1)
    seen: list[Point] = []
    o = run_schedule(sc, script([0, 0, Choice("spurious", 0)], seen), backend=backend)
    assert seen[2].spurious == (0,) and seen[2].options == (Choice("run", 1), Choice("spurious", 0))
    assert [(s.task, s.operation, s.result) for s in o.trace][:4] == [
        ("W", "f.load()", "0"),
        ("W", "f.wait(0)", "sleeps"),
        ("signal", "spurious wake-up of W (EINTR)", "EINTR"),
        ("W", "f: wait returns", "EINTR (spurious wake-up)"),
    ]
    assert all(not p.spurious for p in seen[3:])  # the budget is spent
    assert o.ok and o.results["W"] == 2
    none = run_schedule(sc, script([], seen := []), backend=backend, spurious=0)
    assert none.ok and all(not p.spurious for p in seen)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_spurious_wakeup_is_not_progress(backend: str) -> None:
    """shuttle's rule: a task only a spurious wake-up could free is stuck (deadlock),
    even with budget left."""
    sc = Scenario("alone", _flag, [("W", _wait_flag)], spurious=3)
    o = run_schedule(sc, None, backend=backend)
    assert o.kind == "deadlock"


# -- PI --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_lock_pi_sleeps_and_returns_owning_the_lock(backend: str) -> None:
    def setup(env: Any) -> SimpleNamespace:
        return ns(m=env.word("m"))

    def holder(s: SimpleNamespace) -> None:
        assert s.m.trylock_pi()
        s.m.unlock_pi()

    def taker(s: SimpleNamespace) -> int:
        assert s.m.lock_pi()
        owner = s.m.load()
        s.m.unlock_pi()
        return int(owner)

    sc = Scenario("pi", setup, [("A", holder), ("B", taker)])
    o = run_schedule(sc, script([0, 1]), backend=backend)
    assert [(s.task, s.operation, s.result) for s in o.trace] == [
        ("A", "m.trylock_pi()", "acquired"),
        ("B", "m.lock_pi()", "sleeps"),
        ("A", "m.unlock_pi()", "0"),
        ("B", "m: lock_pi returns", "woken"),
        ("B", "m.load()", "0x80000002"),  # handed over: FUTEX_WAITERS | tid 2
        ("B", "m.unlock_pi()", "0"),
    ]
    assert o.trace[1].words == {"m": 0x8000_0001}  # FUTEX_WAITERS | tid 1
    assert o.results == {"A": None, "B": 0x8000_0002}


def test_without_greenlet_the_thread_backend_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """greenlet is optional (``futex[check]``): without it ``backend=None`` is threads,
    and asking for greenlet says how to get it."""
    from futex.check import tasks

    monkeypatch.setattr(tasks, "_greenlet", None)
    assert not tasks.have_greenlet()
    assert tasks.make_backend(None).name == "threads"
    with pytest.raises(RuntimeError, match=r"pip install 'futex\[check\]'"):
        tasks.make_backend("greenlet")
    o = run_schedule(TAKE2, seeded(3))
    assert o.ok and o.backend == "threads"


def test_env_names_words_and_memories_once() -> None:
    def setup(env: Any) -> SimpleNamespace:
        w = env.word("x")
        with pytest.raises(ValueError, match="taken"):
            env.word("x")
        mem = env.memory(64)
        assert mem.size == 64 and mem.addr % 64 == 0 and repr(mem).startswith("<CheckedMemory mem0")
        return ns(x=w)

    assert run_schedule(Scenario("names", setup, [lambda s: s.x.load()]), None).ok


def test_a_machine_that_cannot_be_reset_is_replaced_by_an_identical_one() -> None:
    """Reuse is an optimization only: a machine left in a state reset() does not undo is
    retired, and the next one built has the same tids, arena and robust list heads."""
    m = check_machine.acquire(3)
    tids, arena, heads = [t.tid for t in m.tasks], m.arena, [t.robust_list for t in m.tasks]
    assert m.reset()
    m.tasks[1].robust_list = 0  # as if a task had unregistered its robust list
    assert not m.reset()
    fresh = check_machine.Machine(3)
    assert [t.tid for t in fresh.tasks] == tids == [1, 2, 3]
    assert fresh.arena == arena
    assert [t.robust_list for t in fresh.tasks] == heads
