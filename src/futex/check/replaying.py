"""Replay strings: one schedule, written as its deviations from the default policy.

Format ``v1:<digest>:<choices>``:

- ``<digest>``: the engine's 8-hex digest of the schedule's operations (task, kind and
  word of every step).  A replay whose digest differs ran other operations: the scenario
  is not deterministic (or changed), and the replay reports ``nondeterminism`` instead of
  a stale verdict.
- ``<choices>``: ``.``-separated tokens, each a decision that differs from the default
  policy (keep running the current task; when it blocks or ends, the lowest-numbered
  runnable one; when none can run, the earliest timer).  ``<n>`` is the decision's index
  (the engine's ``point.step``: the n-th scheduling point that had a choice).
  ``<n>r<task>``: run task ``task``; ``<n>t``: fire the earliest timer; ``<n>s<task>``:
  wake task ``task`` spuriously (EINTR); ``m<steps>``: the run was limited to ``steps``
  steps (only when that is not the engine's default).  Empty = the default schedule.
  Tasks are numbered from 0 in the scenario's order.

Example: ``v1:9f3a0c12:4r1`` = the default schedule, except that at decision 4 task 1
runs.  Only letters, digits, ``:`` and ``.`` appear: the string needs no shell quoting.
Where a replay leaves the recording, the report names the first decision that could not
be taken; a changed digest alone cannot say at which step the operations diverged.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from futex.check.strategies import Decision, PointLike, chooser, decisions_of, default_index

__all__ = [
    "DEFAULT_STEPS",
    "OutcomeLike",
    "Runner",
    "Schedule",
    "decode",
    "describe",
    "encode",
    "replay",
    "run_following",
    "task_names",
]

VERSION = "v1"
DEFAULT_STEPS = 2000  # the engine's default max_steps

Key = tuple[str, int]  # an option as (kind, task)


class OutcomeLike(Protocol):
    """What this module reads of the engine's ``Outcome``."""

    @property
    def kind(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def steps(self) -> int: ...
    @property
    def ops_digest(self) -> str: ...


class Runner(Protocol):
    """The engine's ``run_schedule`` (tests substitute a model)."""

    def __call__(
        self,
        scenario: Any,
        chooser: Callable[[Any], Any],
        /,
        *,
        backend: str | None = ...,
        max_steps: int = ...,
        spurious: int | None = ...,
    ) -> Any: ...


def default_runner() -> Runner:
    from futex.check import runtime

    run: Runner = runtime.run_schedule
    return run


def task_names(scenario: Any) -> list[str]:
    """The scenario's task names in order (``(name, fn)`` pairs or bare functions)."""
    named = getattr(scenario, "task_names", None)
    if named is not None:
        return [str(name) for name in named]
    names: list[str] = []
    for entry in scenario.tasks:
        if isinstance(entry, tuple):
            names.append(str(entry[0]))
        else:
            names.append(str(getattr(entry, "__name__", f"task{len(names)}")))
    return names


@dataclass(frozen=True)
class Schedule:
    """A decoded replay string."""

    digest: str
    deviations: Mapping[int, Key]
    max_steps: int = DEFAULT_STEPS

    @property
    def spurious(self) -> int:
        """Spurious wakes the schedule injects (the budget its replay needs)."""
        return sum(1 for kind, _ in self.deviations.values() if kind == "spurious")


def deviations_of(decisions: Sequence[Decision]) -> dict[int, Key]:
    """The decisions that differ from the default policy, by step."""
    return {d.step: d.choice for d in decisions if d.deviates}


def encode(digest: str, decisions: Sequence[Decision], max_steps: int = DEFAULT_STEPS) -> str:
    """The replay string of a run (its ops digest and the decisions it took)."""
    tokens: list[str] = []
    for step, (kind, task) in sorted(deviations_of(decisions).items()):
        if kind == "run":
            tokens.append(f"{step}r{task}")
        elif kind == "timer":
            tokens.append(f"{step}t")
        else:
            tokens.append(f"{step}s{task}")
    if max_steps != DEFAULT_STEPS:
        tokens.append(f"m{max_steps}")
    return f"{VERSION}:{digest}:{'.'.join(tokens)}"


_TOKEN = re.compile(r"(\d+)(r|s)(\d+)|(\d+)t|m(\d+)")
_KINDS = {"r": "run", "s": "spurious"}


def decode(text: str) -> Schedule:
    """Parse a replay string; ``ValueError`` says what is wrong with a bad one."""
    parts = text.strip().split(":")
    if len(parts) != 3:
        raise ValueError(f"a replay string is 'v1:<digest>:<choices>', not {text!r}")
    version, digest, choices = parts
    if version != VERSION:
        raise ValueError(f"replay string version {version!r}: this checker reads {VERSION!r}")
    if not re.fullmatch(r"[0-9a-f]{8}", digest):
        raise ValueError(f"the digest in a replay string is 8 hex digits, not {digest!r}")
    deviations: dict[int, Key] = {}
    max_steps = DEFAULT_STEPS
    for token in choices.split(".") if choices else []:
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise ValueError(
                f"bad replay token {token!r}: expected <step>r<task>, <step>t, "
                "<step>s<task> or m<steps>"
            )
        run_step, letter, task, timer_step, limit = match.groups()
        if limit is not None:
            max_steps = int(limit)
            continue
        step = int(run_step if run_step is not None else timer_step)
        if step in deviations:
            raise ValueError(f"step {step} appears twice in the replay string")
        if timer_step is not None:
            deviations[step] = ("timer", -1)
        else:
            deviations[step] = (_KINDS[letter], int(task))
    return Schedule(digest, deviations, max_steps)


class Follow:
    """A chooser index function: the deviations at their steps, the default policy elsewhere.

    A deviation whose option is not on offer at its step is skipped (the default is taken)
    and remembered in ``missed``: the run is not the one recorded.
    """

    def __init__(self, deviations: Mapping[int, Key]) -> None:
        self.deviations = deviations
        self.missed: list[str] = []
        self.last_step = -1

    def __call__(self, point: PointLike) -> int:
        self.last_step = point.step
        wanted = self.deviations.get(point.step)
        if wanted is not None:
            for i, option in enumerate(point.options):
                if (option.kind, option.task) == wanted:
                    return i
            self.missed.append(
                f"at step {point.step} the recorded choice {_token(point.step, wanted)} "
                "is not on offer"
            )
        return default_index(point)


def _token(step: int, key: Key) -> str:
    kind, task = key
    return f"{step}t" if kind == "timer" else f"{step}{kind[0]}{task}"


def run_following(
    scenario: Any,
    deviations: Mapping[int, Key],
    *,
    backend: str | None = None,
    max_steps: int = DEFAULT_STEPS,
    spurious: int | None = None,
    runner: Runner | None = None,
) -> tuple[Any, list[Decision], Follow]:
    """Run one schedule that takes ``deviations`` and otherwise the default policy."""
    run = runner if runner is not None else default_runner()
    follow = Follow(deviations)
    outcome = run(
        scenario, chooser(follow), backend=backend, max_steps=max_steps, spurious=spurious
    )
    return outcome, decisions_of(outcome.decisions), follow


def with_kind(outcome: Any, kind: str, message: str) -> Any:
    """A copy of ``outcome`` (a dataclass or a named tuple) with another kind and message."""
    if dataclasses.is_dataclass(outcome) and not isinstance(outcome, type):
        return dataclasses.replace(outcome, kind=kind, message=message)
    return outcome._replace(kind=kind, message=message)


def replay(
    scenario: Any,
    text: str,
    *,
    backend: str | None = None,
    runner: Runner | None = None,
) -> Any:
    """Run the schedule of a replay string once and return its ``Outcome``.

    A run that cannot take a recorded choice, or whose operation kinds differ from the
    recording (another ops digest), is reported as kind ``nondeterminism``.
    """
    schedule = decode(text)
    outcome, _decisions, follow = run_following(
        scenario,
        schedule.deviations,
        backend=backend,
        max_steps=schedule.max_steps,
        spurious=schedule.spurious,
        runner=runner,
    )
    return check_replayed(outcome, schedule, follow)


def check_replayed(outcome: Any, schedule: Schedule, follow: Follow) -> Any:
    """``outcome``, or a ``nondeterminism`` copy when the run left the recorded schedule."""
    problems = list(follow.missed)
    unreached = sorted(step for step in schedule.deviations if step > follow.last_step)
    if unreached:
        problems.append(
            f"the run ended after step {follow.last_step}, before the recorded choice at "
            f"step {unreached[0]}"
        )
    if outcome.ops_digest != schedule.digest:
        problems.append(
            f"its operations differ from the recording (ops digest {outcome.ops_digest}, "
            f"recorded {schedule.digest})"
        )
    if not problems:
        return outcome
    message = (
        f"nondeterminism: the replay did not follow the recorded schedule: "
        f"{'; '.join(problems)}; the scenario must do the same operations for the same "
        f"schedule (state outside the checker's words, randomness, time, or a changed "
        f"scenario break that). The replayed run ended as {outcome.kind}: {outcome.message}"
    )
    return with_kind(outcome, "nondeterminism", message)


POLICY = "run the current task until it blocks, then the lowest-numbered runnable one"


def describe(decisions: Sequence[Decision], names: Sequence[str]) -> list[str]:
    """The run's deviations from the default policy, one phrase each.

    E.g. ``["preempt W->S after step 3"]``; :func:`sentence` joins them to the policy.
    """

    def name(task: int | None) -> str:
        if task is None:
            return "nobody"
        return names[task] if 0 <= task < len(names) else f"task{task}"

    phrases: list[str] = []
    for d in decisions:
        if not d.deviates:
            continue
        kind, task = d.choice
        if d.at is None:
            after = f"at decision {d.step}"
        else:
            after = f"after step {d.at - 1}" if d.at > 0 else "at the start"
        running = d.current is not None and d.current in d.runnable
        if kind == "run" and d.preemption:
            phrases.append(f"preempt {name(d.current)}->{name(task)} {after}")
        elif kind == "run":
            default_kind, default_task = d.options[d.default]
            instead = name(default_task) if default_kind == "run" else "the timer"
            phrases.append(f"run {name(task)} instead of {instead} {after}")
        elif kind == "timer":
            busy = f" while {name(d.current)} can run" if running else ""
            phrases.append(f"fire the earliest timer {after}{busy}")
        else:
            phrases.append(f"wake {name(task)} spuriously (EINTR) {after}")
    return phrases


def sentence(phrases: Sequence[str]) -> str:
    """The default policy and its exceptions as one sentence."""
    if not phrases:
        return f"{POLICY}, without exception"
    return f"{POLICY}, except: {', '.join(phrases)}"
