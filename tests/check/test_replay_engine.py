"""futex.check's replay strings on the real engine (issue 15; checker_design.md §5, §7).

"The replay string reproduces the failure in 1 run, and a changed op sequence is
reported as nondeterminism" (§7; loom PR #184, shuttle PR #96).  Pinned on every
bundled broken algorithm, on both task backends and across them (a string found on one
replays on the other), for timer (``t``) and spurious-wake (``sK``) events, and for a
scenario changed after its string was recorded.
"""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace
from typing import Any

import pytest

from futex.check import Scenario, run_schedule
from futex.check.bundled import ALL, BROKEN
from futex.check.exploring import Budget, explore
from futex.check.replaying import replay
from futex.check.strategies import DFS

from .test_strategies_engine import _lock_take2, unlock_forgets_wake

HAVE_GREENLET = importlib.util.find_spec("greenlet") is not None
needs_greenlet = pytest.mark.skipif(
    not HAVE_GREENLET, reason="greenlet is not installed: pip install 'futex[check]'"
)
BACKENDS = [pytest.param("greenlet", marks=needs_greenlet), "threads"]


class Counting:
    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, scenario: Any, pick: Any, /, **options: Any) -> Any:
        self.runs += 1
        return run_schedule(scenario, pick, **options)


def _steps(outcome: Any) -> list[tuple[str, str, str]]:
    return [(s.task, s.operation, repr(s.result)) for s in outcome.trace]


@pytest.mark.parametrize("name", BROKEN)
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_bundled_failure_replays_in_one_run(name: str, backend: str) -> None:
    entry = ALL[name]
    result = explore(
        entry.scenario, entry.strategy(), Budget(schedules=200, seconds=5), backend=backend
    )
    assert result.failure is not None and result.replay is not None
    for where in {backend, "threads"}:  # on the backend that found it, and on threads
        counting = Counting()
        outcome = replay(entry.scenario, result.replay, backend=where, runner=counting)
        assert counting.runs == 1
        assert outcome.kind == result.failure.kind
        assert outcome.message == result.failure.message
        assert _steps(outcome) == _steps(result.failure)


def _flag(env: Any) -> SimpleNamespace:
    return SimpleNamespace(flag=env.word("flag"), tick=env.word("tick"))


def early_timer() -> Scenario:
    """T sleeps 0.5 s, then reads the flag W sets: wrong only if T's timer fires first."""

    def sleeper(s: SimpleNamespace) -> int:
        s.tick.wait(0, 0.5)
        return int(s.flag.load())

    def setter(s: SimpleNamespace) -> None:
        s.flag.store(1)

    return Scenario(
        name="early_timer",
        setup=_flag,
        tasks=[("T", sleeper), ("W", setter)],
        final=lambda s, results: results["T"] == 1,
    )


def spurious_return() -> Scenario:
    """W's timed wait must time out (nobody wakes it): wrong only after a spurious wake."""

    def waiter(s: SimpleNamespace) -> bool:
        return bool(s.flag.wait(0, 1.0))

    return Scenario(
        name="spurious_return",
        setup=_flag,
        tasks=[("W", waiter)],
        final=lambda s, results: results["W"] is False,
        spurious=1,
    )


@pytest.mark.parametrize(
    ("make", "letter"), [(early_timer, "t"), (spurious_return, "s0")], ids=["timer", "spurious"]
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_timer_and_spurious_events_replay(make: Any, letter: str, backend: str) -> None:
    scenario = make()
    result = explore(scenario, DFS(0), Budget(schedules=50, seconds=5), backend=backend)
    assert result.failure is not None and result.failure.kind == "final"
    assert result.failure.preemptions == 0
    assert result.replay is not None and result.replay.endswith(letter)
    assert len(result.deviations) == 1
    counting = Counting()
    outcome = replay(scenario, result.replay, backend=backend, runner=counting)
    assert counting.runs == 1 and outcome.kind == "final"
    assert _steps(outcome) == _steps(result.failure)


def test_the_unminimized_failure_replays_too() -> None:
    entry = ALL["owner_field_race"]
    result = explore(entry.scenario, DFS(2), Budget(schedules=200, seconds=5), minimize=False)
    assert result.failure is result.original and result.replay is not None
    assert replay(entry.scenario, result.replay).kind == entry.kind


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_changed_scenario_is_reported_as_nondeterminism(backend: str) -> None:
    scenario = unlock_forgets_wake()
    result = explore(scenario, DFS(1), Budget(schedules=200, seconds=5), backend=backend)
    assert result.replay is not None
    assert replay(scenario, result.replay, backend=backend).kind == "lost-wakeup"

    def body(s: SimpleNamespace) -> None:  # the same, with one more load first
        s.m.load()
        _lock_take2(s.m)
        if s.m.fetch_sub(1) != 1:
            s.m.store(0)

    changed = Scenario(
        name="unlock_forgets_wake",
        setup=lambda env: SimpleNamespace(m=env.word("m")),
        tasks=[("A", body), ("B", body)],
    )
    outcome = replay(changed, result.replay, backend=backend)
    assert outcome.kind == "nondeterminism"
    assert "did not follow the recorded schedule" in outcome.message
    # a digest from elsewhere: the same scenario, but not the recorded operations
    _, digest, choices = result.replay.split(":")
    forged = f"v1:{int(digest, 16) ^ 0xFFFF:08x}:{choices}"
    outcome = replay(scenario, forged, backend=backend)
    assert (
        outcome.kind == "nondeterminism" and f"recorded {forged.split(':')[1]}" in outcome.message
    )


def test_a_bad_string_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="version"):
        replay(unlock_forgets_wake(), "v0:12345678:")
