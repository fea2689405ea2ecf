"""``explore``: run a scenario under a strategy until it fails or the budget runs out.

    result = explore(scenario, strategy=DFS(preemptions=2), budget=Budget(seconds=10))
    if not result.ok:
        print(result.failure.message, result.replay, *result.deviations)

On a failure the schedule is minimized (:mod:`futex.check.minimize`: after a DFS, the
rest of its bound is swept for a shorter failure of the same kind; then switches are
dropped or moved while the kind holds), and the result carries the replay string that
reproduces it in one run (:func:`futex.check.replaying`) and its switches as deviations
from the default policy.  A DFS that exhausts its bound leaves a certificate, e.g.
"complete for <= 2 preemptions, <= 2000 steps: 728 schedules".

The same scenario, strategy, budget (in schedules) and seed give the same result on
both engine backends: the strategies draw only from seeded generators.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from futex.check.minimize import minimize as shrink
from futex.check.minimize import sweep
from futex.check.replaying import (
    DEFAULT_STEPS,
    Key,
    Runner,
    default_runner,
    describe,
    encode,
    run_following,
    sentence,
    task_names,
    with_kind,
)
from futex.check.strategies import DFS, Decision, Strategy, chooser, decisions_of

__all__ = ["Budget", "Progress", "Result", "explore"]

#: progress(schedules, elapsed seconds, strategy text), called at most every 0.1 s
#: while exploring and once at the end.
Progress = Callable[[int, float, str], None]


@dataclass(frozen=True)
class Budget:
    """Limits of one exploration.

    ``schedules``/``seconds``: stop after that many schedules or seconds (None: no
    limit); ``steps``: scheduling points per schedule (a task still running after that
    is a livelock); ``spurious``: injected spurious wakes per schedule (None: the
    scenario's own ``spurious``).
    """

    schedules: int | None = 10_000
    seconds: float | None = 10.0
    steps: int = DEFAULT_STEPS
    spurious: int | None = None

    def __post_init__(self) -> None:
        if self.schedules is not None and self.schedules < 1:
            raise ValueError(f"Budget.schedules must be >= 1, not {self.schedules}")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError(f"Budget.seconds must be > 0, not {self.seconds}")
        if self.steps < 1:
            raise ValueError(f"Budget.steps must be >= 1, not {self.steps}")
        if self.spurious is not None and self.spurious < 0:
            raise ValueError(f"Budget.spurious must be >= 0, not {self.spurious}")


@dataclass
class Result:
    """What an exploration found.

    ``ok``: no failure within the budget.  ``failure``: the (minimized) failing
    ``Outcome``; ``original``: as first found.  ``found_by``: the strategy and bound
    that found it ("dfs <=1 preemption").  ``schedules``/``elapsed``: run, and seconds
    spent, up to the failure or the end (minimizing is ``minimize_seconds`` on top).
    ``complete``: the strategy exhausted its bound; ``certificate`` says what was proved
    (possibly a lower bound than asked, when the budget ran out).  ``replay``: the
    failure's replay string; ``deviations``: its switches from the default policy.
    ``stopped``: why exploring stopped: "failure", "complete", "schedules" or "seconds".
    """

    scenario: str
    strategy: str
    seed: int
    budget: Budget
    ok: bool
    schedules: int
    elapsed: float
    stopped: str
    complete: bool = False
    certificate: str | None = None
    failure: Any = None
    original: Any = None
    found_by: str | None = None
    replay: str | None = None
    deviations: list[str] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    minimize_runs: int = 0
    minimize_seconds: float = 0.0

    @property
    def schedule(self) -> str:
        """The failure's schedule as a sentence: the default policy and its exceptions."""
        return sentence(self.deviations)

    def summary(self) -> str:
        """One line: the verdict, how it was found or what was proved."""
        if self.failure is not None:
            kind = str(self.failure.kind).upper().replace("-", " ")
            plural = "" if self.schedules == 1 else "s"
            return (
                f"{kind} after {self.schedules} schedule{plural} ({self.elapsed:.2f} s, "
                f"{self.found_by}, seed {self.seed})"
            )
        if self.complete and self.certificate:
            verdict = self.certificate
        else:
            plural = "" if self.schedules == 1 else "s"
            verdict = f"no failure in {self.schedules} schedule{plural}"
            if self.stopped in ("schedules", "seconds"):
                verdict += f" (the {self.stopped} budget ran out)"
            if self.certificate:
                verdict += f"; {self.certificate}"
        return f"OK: {verdict} ({self.elapsed:.2f} s, {self.strategy}, seed {self.seed})"


def explore(
    scenario: Any,
    strategy: Strategy | None = None,
    budget: Budget | None = None,
    seed: int = 0,
    backend: str | None = None,
    minimize: bool = True,
    progress: Progress | None = None,
    *,
    runner: Runner | None = None,
) -> Result:
    """Explore ``scenario``'s schedules with ``strategy`` (default ``DFS(preemptions=2)``).

    ``backend``: the engine's task backend ("greenlet", "threads", None: the best
    installed).  ``runner`` replaces the engine (tests run strategies on a model).
    """
    strategy = strategy if strategy is not None else DFS(preemptions=2)
    budget = budget if budget is not None else Budget()
    run = runner if runner is not None else default_runner()
    strategy.reset(seed)
    text = str(strategy)
    max_steps, spurious = budget.steps, budget.spurious
    start = time.perf_counter()
    shown = start
    schedules = 0
    stopped = "complete"
    failure: Any = None
    pick = chooser(strategy.choose)
    while True:
        now = time.perf_counter()
        if budget.schedules is not None and schedules >= budget.schedules:
            stopped = "schedules"
            break
        if budget.seconds is not None and now - start >= budget.seconds:
            stopped = "seconds"
            break
        if progress is not None and now - shown >= 0.1:
            shown = now
            progress(schedules, now - start, text)
        if not strategy.begin():
            break
        outcome = run(scenario, pick, backend=backend, max_steps=max_steps, spurious=spurious)
        schedules += 1
        strategy.end(outcome.kind)
        diverged = strategy.divergence()
        if diverged is not None:
            failure = with_kind(
                outcome,
                "nondeterminism",
                f"nondeterminism: rerunning a recorded prefix, {diverged}; the scenario "
                "must do the same operations for the same schedule (state outside the "
                "checker's words, randomness or time break that)",
            )
            break
        if outcome.kind != "ok":
            failure = outcome
            break
    elapsed = time.perf_counter() - start
    if progress is not None:
        progress(schedules, elapsed, text)
    result = Result(
        scenario=str(getattr(scenario, "name", scenario)),
        strategy=text,
        seed=seed,
        budget=budget,
        ok=failure is None,
        schedules=schedules,
        elapsed=elapsed,
        stopped="failure" if failure is not None else stopped,
        complete=strategy.complete,
        certificate=strategy.certificate(max_steps),
    )
    if failure is None:
        return result
    result.original = failure
    result.found_by = strategy.found_by()
    if minimize and failure.kind != "nondeterminism":
        began = time.perf_counter()

        def rerun(deviations: Mapping[int, Key]) -> tuple[Any, list[Decision]]:
            outcome, taken, _follow = run_following(
                scenario,
                deviations,
                backend=backend,
                max_steps=max_steps,
                spurious=spurious,
                runner=run,
            )
            return outcome, taken

        runs = 0
        if isinstance(strategy, DFS):  # the rest of the bound may hold a shorter run
            dfs = strategy

            def next_run() -> Any:
                if not dfs.begin_same_level():
                    return None
                outcome = run(
                    scenario, pick, backend=backend, max_steps=max_steps, spurious=spurious
                )
                dfs.end(outcome.kind)
                return None if dfs.divergence() is not None else outcome

            swept = sweep(next_run, failure)
            failure, runs = swept.outcome, swept.runs
        smallest = shrink(rerun, failure, decisions_of(failure.decisions))
        failure = smallest.outcome
        result.minimize_runs = runs + smallest.runs
        result.minimize_seconds = time.perf_counter() - began
    result.failure = failure
    decisions = decisions_of(failure.decisions)
    result.decisions = decisions
    result.replay = encode(failure.ops_digest, decisions, max_steps)
    result.deviations = describe(decisions, task_names(scenario))
    return result
