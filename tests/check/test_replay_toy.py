"""futex.check's replay strings on the toy engine (issue 15; checker_design.md §5).

A replay string ``v1:<ops digest>:<choices>`` holds only the deviations from the default
policy (loom PR #184 and shuttle PR #96: a replay that runs other operations must say
so, hence the digest).  Pinned here: the round trip, exactly one run per replay, the
deviation phrases, and nondeterminism when the scenario's operations change.
"""

from __future__ import annotations

from typing import Any

import pytest

from futex.check.exploring import Budget, explore
from futex.check.replaying import Schedule, decode, describe, encode, replay, sentence
from futex.check.strategies import DFS, Decision, Random, chooser, decisions_of

from .test_strategies_toy import (
    Program,
    ToyScenario,
    flag_setter_no_wake,
    flag_waiter,
    lost_wakeup,
    steps,
    toy_run,
)


class Counting:
    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, scenario: Any, chooser: Any, **options: Any) -> Any:
        self.runs += 1
        return toy_run(scenario, chooser, **options)


def _decision(step: int, current: int | None, runnable: tuple[int, ...], choice: Any) -> Decision:
    options = (*(("run", t) for t in runnable), ("timer", -1), ("spurious", 2))
    index = options.index(choice)
    default = runnable.index(current) if current in runnable else 0
    preemption = choice[0] == "run" and current in runnable and choice[1] != current
    return Decision(step, step, current, runnable, options, index, default, preemption)


def test_encode_keeps_only_deviations_and_round_trips() -> None:
    decisions = [
        _decision(0, None, (0, 1), ("run", 0)),  # default: not written
        _decision(1, 0, (0, 1), ("run", 1)),
        _decision(2, 1, (0, 1), ("run", 1)),
        _decision(3, 1, (0, 1), ("timer", -1)),
        _decision(4, 1, (0, 1), ("spurious", 2)),
    ]
    text = encode("0badf00d", decisions)
    assert text == "v1:0badf00d:1r1.3t.4s2"
    schedule = decode(text)
    assert schedule == Schedule(
        "0badf00d", {1: ("run", 1), 3: ("timer", -1), 4: ("spurious", 2)}, 2000
    )
    assert schedule.spurious == 1
    assert encode("0badf00d", decisions[:1]) == "v1:0badf00d:"
    assert decode("v1:0badf00d:").deviations == {}
    limited = encode("0badf00d", decisions[:2], max_steps=50)
    assert limited == "v1:0badf00d:1r1.m50"
    assert decode(limited).max_steps == 50


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("v2:0badf00d:", "version"),
        ("v1:0badf00:", "8 hex"),
        ("v1:0badf00d", "v1:<digest>:<choices>"),
        ("v1:0badf00d:3x1", "bad replay token"),
        ("v1:0badf00d:3r1.3t", "twice"),
    ],
)
def test_decode_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        decode(text)


@pytest.mark.parametrize(
    "make",
    [
        lost_wakeup,
        lambda: ToyScenario("flag", [("W", flag_waiter), ("S", flag_setter_no_wake)], {"flag": 0}),
    ],
)
@pytest.mark.parametrize("strategy", [lambda: DFS(2), Random])
def test_a_found_failure_replays_in_exactly_one_run(make: Any, strategy: Any) -> None:
    scenario = make()
    result = explore(scenario, strategy(), Budget(schedules=2000), seed=3, runner=toy_run)
    assert not result.ok and result.replay is not None
    counting = Counting()
    outcome = replay(scenario, result.replay, runner=counting)
    assert counting.runs == 1
    assert outcome.kind == result.failure.kind
    assert outcome.ops == result.failure.ops
    assert outcome.steps == result.failure.steps


def test_replay_of_the_default_schedule() -> None:
    scenario = ToyScenario("two", [("A", steps(2)), ("B", steps(1))], {"x": 0})
    outcome = toy_run(scenario, chooser(lambda point: 0))
    text = encode(outcome.ops_digest, decisions_of(outcome.decisions))
    assert text.endswith(":")
    assert replay(scenario, text, runner=toy_run).kind == "ok"


def test_a_changed_operation_sequence_is_nondeterminism() -> None:
    scenario = lost_wakeup()
    result = explore(scenario, DFS(1), runner=toy_run)
    assert result.replay is not None
    # another digest: the scenario did other operations than the recording
    digest = result.replay.split(":")[1]
    other = result.replay.replace(digest, f"{int(digest, 16) ^ 1:08x}")
    outcome = replay(scenario, other, runner=toy_run)
    assert outcome.kind == "nondeterminism"
    assert "ops digest" in outcome.message and "deadlock" in outcome.message

    # the waiter now reads one more word first: the recorded switch lands elsewhere
    def waiter(words: dict[str, int]) -> Program:
        yield ("load", "seq")
        while (yield ("load", "flag")) == 0:
            seq = yield ("load", "seq")
            yield ("wait", "seq", seq)

    changed = lost_wakeup()
    changed.tasks[0] = ("W", waiter)
    outcome = replay(changed, result.replay, runner=toy_run)
    assert outcome.kind == "nondeterminism"
    # a recorded choice beyond the end of the run, or one that is not on offer
    late = replay(scenario, result.replay.rstrip(".") + ".40r0", runner=toy_run)
    assert late.kind == "nondeterminism" and "before the recorded choice at step 40" in late.message
    missing = replay(scenario, f"v1:{digest}:1r1.2r7", runner=toy_run)
    assert (
        missing.kind == "nondeterminism" and "at step 2 the recorded choice 2r7" in missing.message
    )


def test_deviation_phrases() -> None:
    names = ["W", "S", "T"]
    decisions = [
        _decision(0, None, (0, 1), ("run", 1)),  # free: S instead of W at the start
        _decision(4, 1, (0, 1), ("run", 0)),  # preemption
        _decision(5, 0, (0, 1), ("timer", -1)),
        _decision(6, None, (0, 1), ("spurious", 2)),
        _decision(7, 0, (0, 1), ("run", 0)),  # default: no phrase
    ]
    phrases = describe(decisions, names)
    assert phrases == [
        "run S instead of W at the start",
        "preempt S->W after step 3",
        "fire the earliest timer after step 4 while W can run",
        "wake T spuriously (EINTR) after step 5",
    ]
    assert sentence(phrases[1:2]) == (
        "run the current task until it blocks, then the lowest-numbered runnable one, "
        "except: preempt S->W after step 3"
    )
    assert sentence([]).endswith("without exception")


def test_explore_reports_the_minimal_schedule_as_deviations() -> None:
    result = explore(lost_wakeup(), DFS(2), runner=toy_run)
    assert result.deviations == ["preempt W->S after step 0"]
    assert result.schedule.endswith("except: preempt W->S after step 0")
    assert result.replay is not None and result.replay.endswith(":1r1")
    assert result.summary().startswith("DEADLOCK after ")
