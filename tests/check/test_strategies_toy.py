"""futex.check's strategies on a toy engine (issue 15; checker_design.md §2.3, §5).

The toy is a deterministic model of the engine's contract (``Point``/``Choice``/
``Outcome``, ``run_schedule(scenario, chooser, ...)``): tasks are generators yielding
operations on named words, a wait is two scheduling points (enter, return), sleeps are
timers that fire when nothing can run (or at any point with ``timer_events``), and
blocked waiters may be woken spuriously within a budget.  It lets the strategies be
pinned on their own: DFS visits exactly the schedules with <= c preemptions (checked
against brute-force enumeration), PCT and Random are reproducible per seed, a portfolio
alternates, and minimization drops a switch that does not matter.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from futex.check.exploring import Budget, explore
from futex.check.minimize import minimize
from futex.check.replaying import run_following
from futex.check.strategies import (
    DFS,
    PCT,
    Decision,
    Portfolio,
    Random,
    Strategy,
    chooser,
    decisions_of,
)

Program = Generator[tuple[Any, ...], Any, Any]


@dataclass(frozen=True)
class Op:
    kind: str
    word: str
    writes: bool


@dataclass(frozen=True)
class Choice:
    kind: str
    task: int


@dataclass(frozen=True)
class Point:
    step: int
    current: int | None
    runnable: tuple[int, ...]
    next_ops: dict[int, Op]
    timer: bool
    spurious: tuple[int, ...]
    options: tuple[Choice, ...]
    at: int


@dataclass(frozen=True)
class ToyDecision:
    point: Point
    choice: Choice


@dataclass(frozen=True)
class Outcome:
    kind: str
    message: str
    steps: int
    preemptions: int
    ops_digest: str
    decisions: list[ToyDecision]
    ops: tuple[str, ...] = ()
    results: dict[str, Any] = field(default_factory=dict)


@dataclass
class ToyScenario:
    name: str
    tasks: list[tuple[str, Callable[[dict[str, int]], Program]]]
    words: dict[str, int] = field(default_factory=dict)
    final: Callable[[dict[str, int], dict[str, Any]], bool] | None = None
    timer_events: bool = False
    spurious: int = 0


_WRITES = {"store", "add", "cas", "wake"}


def toy_run(
    scenario: ToyScenario,
    chooser: Callable[[Any], Any],
    *,
    backend: str | None = None,
    max_steps: int = 2000,
    spurious: int | None = None,
) -> Outcome:
    words = dict(scenario.words)
    n = len(scenario.tasks)
    names = [name for name, _ in scenario.tasks]
    programs = [fn(words) for _, fn in scenario.tasks]
    pending: list[tuple[Any, ...] | None] = []
    results: dict[str, Any] = {}
    for i, program in enumerate(programs):
        try:
            pending.append(next(program))
        except StopIteration as stop:
            pending.append(None)
            results[names[i]] = stop.value
    blocked: dict[int, tuple[str, float | None]] = {}  # task -> (word or "", deadline)
    reply: dict[int, Any] = {}
    now = 0.0
    budget = scenario.spurious if spurious is None else spurious
    step = preemptions = 0
    current: int | None = None
    ops: list[str] = []
    decisions: list[ToyDecision] = []

    def done(kind: str, message: str) -> Outcome:
        digest = f"{zlib.crc32(' '.join(ops).encode()):08x}"
        return Outcome(kind, message, step, preemptions, digest, decisions, tuple(ops), results)

    while True:
        runnable = tuple(i for i in range(n) if pending[i] is not None and i not in blocked)
        timers = [d for _, d in blocked.values() if d is not None]
        sleepers = tuple(sorted(i for i, (w, _) in blocked.items() if w and budget > 0))
        if not runnable and not timers:
            if blocked:
                stuck = ", ".join(f"{names[i]} on {blocked[i][0]}" for i in sorted(blocked))
                return done("deadlock", f"deadlock: {stuck} asleep for good")
            if scenario.final is not None and not scenario.final(words, results):
                return done("final", f"final check failed: words {words}")
            return done("ok", "ok")
        if step >= max_steps:
            return done("livelock", f"still running after {max_steps} steps")
        timer = bool(timers) and (not runnable or scenario.timer_events)
        options = tuple(Choice("run", i) for i in runnable)
        options += (Choice("timer", -1),) if timer else ()
        options += tuple(Choice("spurious", i) for i in sleepers)
        next_ops = {}
        for i in runnable:
            op = pending[i]
            assert op is not None
            kind = "wait-return" if i in reply else str(op[0])
            next_ops[i] = Op(kind, str(op[1]) if len(op) > 1 else "", kind in _WRITES)
        if len(options) == 1:  # as the engine: the chooser only sees real choices
            choice = options[0]
        else:
            point = Point(
                len(decisions), current, runnable, next_ops, timer, sleepers, options, step
            )
            choice = chooser(point)
            assert choice in options, (choice, options)
            decisions.append(ToyDecision(point, choice))
        step += 1
        if choice.kind == "timer":
            deadline = min(timers)
            now = max(now, deadline)
            for i, (_, d) in sorted(blocked.items()):
                if d == deadline:
                    del blocked[i]
                    reply[i] = False
                    break
            ops.append("timer")
            continue
        if choice.kind == "spurious":
            del blocked[choice.task]
            reply[choice.task] = True
            budget -= 1
            ops.append("spurious")
            continue
        task = choice.task
        if current is not None and current in runnable and task != current:
            preemptions += 1
        current = task
        op = pending[task]
        assert op is not None
        if task in reply:  # the wait returns
            value: Any = reply.pop(task)
            ops.append("wait-return")
        else:
            ops.append(str(op[0]))
            value = _execute(op, words, task, blocked, reply, now)
            if task in blocked:
                current = None
                continue
        try:
            pending[task] = programs[task].send(value)
        except StopIteration as stop:
            pending[task] = None
            results[names[task]] = stop.value
        except AssertionError as error:
            return done("assertion", f"{names[task]}: {error}")


def _execute(
    op: tuple[Any, ...],
    words: dict[str, int],
    task: int,
    blocked: dict[int, tuple[str, float | None]],
    reply: dict[int, Any],
    now: float,
) -> Any:
    kind = op[0]
    if kind == "load":
        return words[op[1]]
    if kind == "store":
        words[op[1]] = op[2]
        return None
    if kind == "add":
        old = words[op[1]]
        words[op[1]] = old + op[2]
        return old
    if kind == "cas":
        old = words[op[1]]
        if old == op[2]:
            words[op[1]] = op[3]
        return old
    if kind == "wait":
        if words[op[1]] != op[2]:
            return True  # EAGAIN: nothing slept
        blocked[task] = (op[1], None)
        return None
    if kind == "wake":
        woken = 0
        for i, (w, _) in sorted(blocked.items()):
            if w == op[1] and woken < op[2]:
                del blocked[i]
                reply[i] = True
                woken += 1
        return woken
    if kind == "sleep":
        blocked[task] = ("", now + op[1])
        return None
    raise AssertionError(f"toy op {kind!r}")


# ---- toy scenarios


def steps(count: int) -> Callable[[dict[str, int]], Program]:
    """A task that adds 1 to "x" ``count`` times and never blocks."""

    def body(words: dict[str, int]) -> Program:
        for _ in range(count):
            yield ("add", "x", 1)

    return body


def flag_waiter(words: dict[str, int]) -> Program:
    """Waits until "flag" is 1 (lost-wakeup prone when the setter does not wake)."""
    while (yield ("load", "flag")) == 0:
        yield ("wait", "flag", 0)


def flag_setter_no_wake(words: dict[str, int]) -> Program:
    yield ("store", "flag", 1)  # forgets the wake: a waiter that slept stays asleep


def flag_setter(words: dict[str, int]) -> Program:
    yield ("store", "flag", 1)
    yield ("wake", "flag", 1)


def lost_wakeup() -> ToyScenario:
    """A condvar that reads its sequence after checking the predicate (checker_design §3).

    W: load flag; while 0: load seq, wait(seq, that value).  S: store flag=1; seq += 1;
    wake(seq).  Preempting W between its flag load and its seq load lets S finish first:
    W then waits on the new seq and sleeps for good.  One preemption is needed.
    """

    def waiter(words: dict[str, int]) -> Program:
        while (yield ("load", "flag")) == 0:
            seq = yield ("load", "seq")
            yield ("wait", "seq", seq)

    def setter(words: dict[str, int]) -> Program:
        yield ("store", "flag", 1)
        yield ("add", "seq", 1)
        yield ("wake", "seq", 1)

    return ToyScenario("lost_wakeup", [("W", waiter), ("S", setter)], {"flag": 0, "seq": 0})


def enumerate_all(scenario: ToyScenario) -> list[tuple[tuple[str, int], ...]]:
    """Every schedule of the toy, by brute force (all options at every point)."""
    found: list[tuple[tuple[str, int], ...]] = []

    def walk(prefix: tuple[int, ...]) -> None:
        widths: list[int] = []
        taken: list[tuple[str, int]] = []

        def chooser(point: Point) -> Choice:
            i = len(taken)
            index = prefix[i] if i < len(prefix) else 0
            widths.append(len(point.options))
            choice = point.options[index]
            taken.append((choice.kind, choice.task))
            return choice

        toy_run(scenario, chooser)
        found.append(tuple(taken))
        for i in range(len(prefix), len(widths)):
            for alternative in range(1, widths[i]):
                walk(tuple(prefix) + tuple([0] * (i - len(prefix))) + (alternative,))

    walk(())
    return found


def preemptions_of(scenario: ToyScenario, schedule: tuple[tuple[str, int], ...]) -> int:
    script = iter(schedule)

    def choose(point: Any) -> int:
        wanted = next(script)
        return [(o.kind, o.task) for o in point.options].index(wanted)

    outcome = toy_run(scenario, chooser(choose))
    return sum(d.preemption for d in decisions_of(outcome.decisions))


def drive(
    strategy: Strategy, scenario: ToyScenario, seed: int = 0, limit: int = 100_000
) -> Iterator[tuple[list[Decision], Outcome]]:
    strategy.reset(seed)
    for _ in range(limit):
        if not strategy.begin():
            return
        outcome = toy_run(scenario, chooser(strategy.choose))
        strategy.end(outcome.kind)
        yield decisions_of(outcome.decisions), outcome


def schedule_of(decisions: list[Decision]) -> tuple[tuple[str, int], ...]:
    return tuple(d.choice for d in decisions)


# ---- DFS


def test_dfs_bound_0_one_task_visits_exactly_one_schedule() -> None:
    scenario = ToyScenario("one", [("A", steps(3))], {"x": 0})
    runs = list(drive(DFS(0), scenario))
    assert len(runs) == 1
    strategy = DFS(0)
    result = explore(scenario, strategy, runner=toy_run)
    assert result.ok and result.complete and result.schedules == 1
    assert result.certificate == "complete for all schedules, <= 2000 steps: 1 schedule"


def test_dfs_bound_0_branches_only_where_the_running_task_ends() -> None:
    # 2 tasks of 2 steps: without a preemption only the first task to run is a choice
    scenario = ToyScenario("two", [("A", steps(2)), ("B", steps(2))], {"x": 0})
    seen = [schedule_of(d) for d, _ in drive(DFS(0), scenario)]
    assert seen == [
        (("run", 0), ("run", 0)),  # A at the start, A again rather than B; then B alone
        (("run", 1), ("run", 1)),
    ]


@pytest.mark.parametrize(
    "scenario",
    [
        ToyScenario("two", [("A", steps(2)), ("B", steps(2))], {"x": 0}),
        ToyScenario("three", [("A", steps(2)), ("B", steps(1)), ("C", steps(2))], {"x": 0}),
        lost_wakeup(),
        ToyScenario(
            "flag",
            [("W", flag_waiter), ("S", flag_setter), ("T", steps(1))],
            {"flag": 0, "x": 0},
        ),
    ],
    ids=lambda s: s.name,
)
def test_dfs_visits_exactly_the_schedules_within_each_bound(scenario: ToyScenario) -> None:
    """ICB (PLDI 2007): bound c = every schedule with <= c preemptions, each once, fewest first."""
    everything = enumerate_all(scenario)
    assert len(set(everything)) == len(everything)
    cost = {s: preemptions_of(scenario, s) for s in everything}
    for bound in range(4):
        runs = [
            (schedule_of(d), sum(x.preemption for x in d)) for d, _ in drive(DFS(bound), scenario)
        ]
        visited = [s for s, _ in runs]
        assert len(set(visited)) == len(visited), "a schedule ran twice"
        assert set(visited) == {s for s in everything if cost[s] <= bound}
        counts = [c for _, c in runs]
        assert counts == sorted(counts), "iterative bounding runs fewer preemptions first"


def test_dfs_certificate_per_bound_and_exhaustive() -> None:
    scenario = ToyScenario("two", [("A", steps(2)), ("B", steps(2))], {"x": 0})
    everything = enumerate_all(scenario)
    result = explore(scenario, DFS(1), runner=toy_run)
    within = sum(1 for s in everything if preemptions_of(scenario, s) <= 1)
    assert result.ok and result.complete
    assert result.certificate == f"complete for <= 1 preemption, <= 2000 steps: {within} schedules"
    result = explore(scenario, DFS(10), runner=toy_run)
    assert result.certificate == (
        f"complete for all schedules, <= 2000 steps: {len(everything)} schedules"
    )
    # a budget that ends inside bound 1 still certifies bound 0
    result = explore(scenario, DFS(2), Budget(schedules=3), runner=toy_run)
    assert not result.complete and result.stopped == "schedules"
    assert result.certificate == "complete for <= 0 preemptions, <= 2000 steps: 2 schedules"


def test_dfs_finds_a_one_preemption_lost_wakeup_at_bound_1_not_0() -> None:
    scenario = lost_wakeup()
    assert explore(scenario, DFS(0), runner=toy_run).ok
    result = explore(scenario, DFS(1), runner=toy_run)
    assert not result.ok and result.failure.kind == "deadlock"
    assert result.found_by == "dfs <=1 preemption"
    assert result.failure.preemptions == 1
    assert result.deviations == ["preempt W->S after step 0"]
    assert result.schedules <= 4


def test_dfs_explores_timer_and_spurious_events() -> None:
    def sleeper(words: dict[str, int]) -> Program:
        yield ("sleep", 1.0)
        yield ("store", "x", 1)

    def flagged(words: dict[str, int]) -> Program:
        assert (yield ("load", "x")) == 0, "x was set"

    # with timer events the timer may fire while F can still run: found at bound 0
    scenario = ToyScenario("timer", [("S", sleeper), ("F", flagged)], {"x": 0})
    assert explore(scenario, DFS(3), runner=toy_run).ok
    scenario.timer_events = True
    result = explore(scenario, DFS(0), runner=toy_run)
    assert not result.ok and result.failure.kind == "assertion"
    assert any("timer" in phrase for phrase in result.deviations)
    # a spurious wake lets a waiter see the flag before the setter's wake
    waiter_twice = ToyScenario(
        "spurious", [("W", flag_waiter), ("S", flag_setter_no_wake)], {"flag": 0}
    )
    assert not explore(waiter_twice, DFS(0), runner=toy_run).ok  # lost wake-up
    waiter_twice.spurious = 1
    everything = enumerate_all(waiter_twice)
    assert any(("spurious", 0) in s for s in everything)


def test_dfs_reports_a_nondeterministic_scenario() -> None:
    calls = [0]

    def erratic(words: dict[str, int]) -> Program:
        calls[0] += 1
        for _ in range(1 + calls[0] % 3):
            yield ("add", "x", 1)

    scenario = ToyScenario("erratic", [("A", erratic), ("B", steps(2))], {"x": 0})
    result = explore(scenario, DFS(2), runner=toy_run)
    assert not result.ok and result.failure.kind == "nondeterminism"
    assert "prefix" in result.failure.message


# ---- PCT, Random, Portfolio


def _trace(strategy: Strategy, scenario: ToyScenario, seed: int, count: int) -> list[Any]:
    runs = drive(strategy, scenario, seed, count)
    return [(schedule_of(d), o.kind) for d, o in runs]


@pytest.mark.parametrize("make", [lambda: PCT(3), Random, lambda: Portfolio()], ids=str)
def test_randomized_strategies_are_reproducible_per_seed(make: Callable[[], Strategy]) -> None:
    scenario = ToyScenario("three", [("A", steps(3)), ("B", steps(2)), ("C", steps(3))], {"x": 0})
    first = _trace(make(), scenario, 7, 50)
    assert first == _trace(make(), scenario, 7, 50)
    assert first != _trace(make(), scenario, 8, 50)
    assert len({s for s, _ in first}) > 5


def test_pct_priorities_and_change_points() -> None:
    # 3 tasks of 4 steps: a PCT schedule has at most depth - 1 preemptions... plus the
    # switches at task ends; with depth 1 a schedule runs each task to its end
    scenario = ToyScenario("three", [("A", steps(4)), ("B", steps(4)), ("C", steps(4))], {"x": 0})
    for decisions, _ in drive(PCT(1), scenario, 3, 30):
        assert sum(d.preemption for d in decisions) == 0
    most = max(sum(d.preemption for d in ds) for ds, _ in drive(PCT(3), scenario, 3, 200))
    assert most == 2


def test_pct_demotes_a_spinning_task() -> None:
    def spinner(words: dict[str, int]) -> Program:
        while (yield ("load", "flag")) == 0:
            pass

    def setter(words: dict[str, int]) -> Program:
        yield ("add", "x", 1)
        yield ("store", "flag", 1)

    scenario = ToyScenario("spin", [("S", spinner), ("T", setter)], {"flag": 0, "x": 0})
    for _, outcome in drive(PCT(2), scenario, 1, 50):
        assert outcome.kind == "ok"
        assert outcome.steps < 12


def test_pct_and_random_find_the_lost_wakeup() -> None:
    for strategy in (PCT(2), Random()):
        result = explore(lost_wakeup(), strategy, Budget(schedules=500), seed=1, runner=toy_run)
        assert not result.ok and result.failure.kind == "deadlock", strategy
        assert result.failure.preemptions == 1  # minimized


def test_portfolio_alternates_and_drops_an_exhausted_member() -> None:
    scenario = ToyScenario("two", [("A", steps(2)), ("B", steps(2))], {"x": 0})
    portfolio = Portfolio([DFS(0), Random()])
    members = []
    portfolio.reset(0)
    for _ in range(6):
        assert portfolio.begin()
        members.append(portfolio.found_by())
        outcome = toy_run(scenario, chooser(portfolio.choose))
        portfolio.end(outcome.kind)
    assert members == ["dfs <=0 preemptions", "random", "dfs <=0 preemptions"] + ["random"] * 3
    assert portfolio.complete
    assert (
        portfolio.certificate(2000) == "complete for <= 0 preemptions, <= 2000 steps: 2 schedules"
    )


# ---- minimization


def test_minimize_drops_a_switch_that_does_not_matter() -> None:
    scenario = lost_wakeup()
    scenario.tasks.append(("T", steps(2)))
    scenario.words["x"] = 0
    # the failing schedule plus a useless preemption of W by T after W read seq
    deviations = {1: ("run", 1), 5: ("run", 2)}
    outcome, decisions, follow = run_following(scenario, deviations, runner=toy_run)
    assert outcome.kind == "deadlock" and not follow.missed
    assert sum(d.preemption for d in decisions) == 2

    def rerun(devs: Any) -> tuple[Any, list[Decision]]:
        o, d, _ = run_following(scenario, devs, runner=toy_run)
        return o, d

    smaller = minimize(rerun, outcome, decisions)
    assert smaller.outcome.kind == "deadlock"
    assert sum(d.preemption for d in smaller.decisions) == 1
    assert smaller.outcome.steps <= outcome.steps
    assert [d.step for d in smaller.decisions if d.deviates] == [1]


def test_minimize_keeps_the_failure_kind() -> None:
    scenario = lost_wakeup()
    outcome, decisions, _ = run_following(scenario, {1: ("run", 1)}, runner=toy_run)
    assert outcome.kind == "deadlock"

    def rerun(devs: Any) -> tuple[Any, list[Decision]]:
        o, d, _ = run_following(scenario, devs, runner=toy_run)
        return o, d

    smaller = minimize(rerun, outcome, decisions)
    assert smaller.outcome.kind == "deadlock"
    assert [d.step for d in smaller.decisions if d.deviates] == [1]  # already minimal


# ---- explore's budget and progress


def test_budget_validates_and_bounds_the_exploration() -> None:
    with pytest.raises(ValueError, match="schedules"):
        Budget(schedules=0)
    with pytest.raises(ValueError, match="seconds"):
        Budget(seconds=0)
    scenario = ToyScenario("three", [("A", steps(3)), ("B", steps(3)), ("C", steps(3))], {"x": 0})
    result = explore(scenario, Random(), Budget(schedules=25, seconds=None), runner=toy_run)
    assert result.ok and result.schedules == 25 and result.stopped == "schedules"
    assert result.certificate is None and not result.complete
    result = explore(scenario, Random(), Budget(schedules=None, seconds=0.05), runner=toy_run)
    assert result.ok and result.stopped == "seconds" and result.schedules > 1
    assert result.summary().startswith(f"OK: no failure in {result.schedules} schedules")


def test_progress_reports_the_final_count() -> None:
    calls: list[tuple[int, float, str]] = []
    scenario = ToyScenario("two", [("A", steps(2)), ("B", steps(2))], {"x": 0})
    result = explore(scenario, DFS(2), progress=lambda *a: calls.append(a), runner=toy_run)
    assert calls and calls[-1][0] == result.schedules and calls[-1][2] == "dfs <=2 preemptions"
    assert result.summary().startswith("OK: complete for all schedules")
