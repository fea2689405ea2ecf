"""Shrinking a failing schedule: fewest preemptions first, then fewest steps.

A schedule is its deviations from the default policy (see :mod:`futex.check.replaying`).
Candidates, tried in rounds until none helps or the budget is spent:

1. cut: keep only the first ``j`` deviations (the rest of the run follows the default
   policy), shortest first;
2. drop one deviation, the last first;
3. move one deviation to another decision (the same choice, earlier ones first): a
   preemption placed elsewhere often reaches the failure sooner.

A candidate is kept when its run fails with the same kind and is smaller: fewer
preemptions, else fewer steps, else fewer deviations.  Every kept run is a real run, so
the result is always a genuine counterexample.  Preemption bounding (DFS) already gives
the fewest preemptions; this mostly removes free switches and shortens the run.

:func:`sweep` comes first after a DFS: it runs the rest of the bound the failure was found
at and keeps the shortest failure of the same kind (exact when the bound is swept to its
end; the shortest run may branch where no single drop or move reaches).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from futex.check.replaying import Key, deviations_of
from futex.check.strategies import Decision, decisions_of

__all__ = ["Minimized", "minimize", "size", "sweep"]

#: Runs one schedule from its deviations: (outcome, decisions).
RunDeviations = Callable[[Mapping[int, Key]], tuple[Any, list[Decision]]]


@dataclass(frozen=True)
class Minimized:
    """The smallest failing run found, and how many runs the search took."""

    outcome: Any
    decisions: list[Decision]
    runs: int


def decisions_of_outcome(outcome: Any) -> list[Decision]:
    return decisions_of(outcome.decisions)


def size(outcome: Any, decisions: Sequence[Decision]) -> tuple[int, int, int]:
    """(preemptions, steps, deviations): smaller is simpler."""
    preemptions = sum(1 for d in decisions if d.preemption)
    deviations = sum(1 for d in decisions if d.deviates)
    return preemptions, int(outcome.steps), deviations


def _candidates(deviations: list[tuple[int, Key]], points: int) -> Iterator[dict[int, Key]]:
    n = len(deviations)
    for j in range(n):  # cut
        yield dict(deviations[:j])
    for j in reversed(range(n)):  # drop one
        yield dict(deviations[:j] + deviations[j + 1 :])
    for j, (step, key) in enumerate(deviations):  # move one
        others = dict(deviations[:j] + deviations[j + 1 :])
        for target in range(points):
            if target != step and target not in others:
                yield {**others, target: key}


def sweep(
    next_run: Callable[[], Any | None],
    outcome: Any,
    *,
    max_runs: int = 200,
    seconds: float = 0.5,
) -> Minimized:
    """The smallest failure of ``outcome``'s kind among it and up to ``max_runs`` more runs.

    ``next_run()`` runs the next schedule with as many preemptions (the rest of a DFS
    bound) or returns None when there is none: when the bound is swept to its end, the
    result has the fewest steps of its bound, which dropping switches cannot always reach
    (the shortest run may branch elsewhere).
    """
    kind = outcome.kind
    best = outcome
    best_size = size(outcome, decisions_of_outcome(outcome))
    runs = 0
    deadline = time.perf_counter() + seconds
    while runs < max_runs and time.perf_counter() < deadline:
        candidate = next_run()
        if candidate is None:
            break
        runs += 1
        if candidate.kind == kind:
            candidate_size = size(candidate, decisions_of_outcome(candidate))
            if candidate_size < best_size:
                best, best_size = candidate, candidate_size
    return Minimized(best, decisions_of_outcome(best), runs)


def minimize(
    run: RunDeviations,
    outcome: Any,
    decisions: list[Decision],
    *,
    max_runs: int = 400,
    seconds: float = 2.0,
) -> Minimized:
    """Shrink the failing run (``outcome``, ``decisions``) while its failure kind holds."""
    kind = outcome.kind
    best_outcome, best_decisions = outcome, decisions
    best = size(outcome, decisions)
    runs = 0
    deadline = time.perf_counter() + seconds
    tried: set[tuple[tuple[int, Key], ...]] = set()
    improved = True
    while improved:
        improved = False
        current = sorted(deviations_of(best_decisions).items())
        tried.add(tuple(current))
        for candidate in _candidates(current, len(best_decisions)):
            signature = tuple(sorted(candidate.items()))
            if signature in tried:
                continue
            if runs >= max_runs or time.perf_counter() > deadline:
                return Minimized(best_outcome, best_decisions, runs)
            tried.add(signature)
            runs += 1
            new_outcome, new_decisions = run(candidate)
            if new_outcome.kind != kind:
                continue
            new = size(new_outcome, new_decisions)
            if new < best:
                best_outcome, best_decisions, best = new_outcome, new_decisions, new
                improved = True
                break
    return Minimized(best_outcome, best_decisions, runs)
