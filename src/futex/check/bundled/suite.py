"""Checking the bundled entries: each broken one must be found by its designated strategy
(and its replay string must reproduce it in one run), each twin must pass its bound.

:func:`check_entry` gives a :class:`Verdict` for one entry; ``python -m futex check
--bundled`` (:mod:`futex.check.cli`) prints one table row per verdict.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from futex.check.bundled._base import Entry

__all__ = ["TWIN_SECONDS", "Verdict", "check_entry"]

#: Time limit of a twin's DFS bound (it must complete well within it).
TWIN_SECONDS = 20.0


@dataclass
class Verdict:
    """What the checker concluded about one bundled entry, against what it must."""

    entry: Entry
    ok: bool
    #: What happened: "found lost-wakeup", "passed <=2 pre + 500 pct", "MISSED: ...",
    #: "FAILED: ...".
    verdict: str
    strategy: str
    schedules: int
    elapsed: float
    #: Broken: the minimal counterexample's preemptions and steps.
    preemptions: int | None = None
    steps: int | None = None
    replay: str | None = None
    #: Broken: the replay string reproduced the failure in one run.
    replayed: bool | None = None
    certificate: str | None = None
    #: The explore results (DFS; then PCT for a twin).
    results: list[Any] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.entry.name,
            "broken": self.entry.broken,
            "expected": self.entry.kind or "pass",
            "designated": self.entry.designated,
            "ok": self.ok,
            "verdict": self.verdict,
            "strategy": self.strategy,
            "schedules": self.schedules,
            "elapsed": round(self.elapsed, 6),
            "preemptions": self.preemptions,
            "steps": self.steps,
            "replay": self.replay,
            "replayed": self.replayed,
            "certificate": self.certificate,
            "source": self.entry.source,
        }


Progress = Callable[[int, float, str], None]


def check_entry(entry: Entry, *, seed: int = 0, backend: str | None = None,
                progress: Progress | None = None) -> Verdict:
    """Run ``entry``'s designated check (see the module docstring)."""
    if entry.broken:
        return _find(entry, seed, backend, progress)
    return _pass(entry, seed, backend, progress)


def _find(entry: Entry, seed: int, backend: str | None, progress: Progress | None) -> Verdict:
    from futex.check.exploring import Budget, explore
    from futex.check.replaying import replay

    result = explore(entry.scenario, entry.strategy(),
                     Budget(schedules=entry.schedules, seconds=entry.seconds), seed=seed,
                     backend=backend, progress=progress)
    v = Verdict(entry, False, "", result.found_by or result.strategy, result.schedules,
                result.elapsed, results=[result])
    f = result.failure
    if f is None:
        v.verdict = f"MISSED: no failure in {result.schedules} schedules ({result.stopped})"
        return v
    v.preemptions, v.steps, v.replay = int(f.preemptions), int(f.steps), result.replay
    if f.kind != entry.kind:
        v.verdict = f"FAILED: found {f.kind}, expected {entry.kind}: {f.message}"
        return v
    assert result.replay is not None
    again = replay(entry.scenario, result.replay, backend=backend)
    v.replayed = again.kind == f.kind and again.ops_digest == f.ops_digest
    if not v.replayed:
        v.verdict = f"FAILED: the replay string gave {again.kind}: {again.message}"
        return v
    v.ok, v.verdict = True, f"found {f.kind}"
    return v


def _pass(entry: Entry, seed: int, backend: str | None, progress: Progress | None) -> Verdict:
    from futex.check.exploring import Budget, explore
    from futex.check.strategies import PCT

    began = time.perf_counter()
    dfs = explore(entry.scenario, entry.strategy(), Budget(schedules=None, seconds=TWIN_SECONDS),
                  seed=seed, backend=backend, progress=progress)
    v = Verdict(entry, False, "", dfs.strategy, dfs.schedules, dfs.elapsed,
                certificate=dfs.certificate, results=[dfs])
    if dfs.failure is not None:
        f = dfs.failure
        v.preemptions, v.steps, v.replay = int(f.preemptions), int(f.steps), dfs.replay
        v.verdict = f"FAILED: {f.kind}: {f.message}"
        return v
    if not dfs.complete:
        v.verdict = f"FAILED: the bound did not complete in {TWIN_SECONDS:g} s"
        return v
    if entry.pct:
        pct = explore(entry.scenario, PCT(depth=3), Budget(schedules=entry.pct, seconds=None),
                      seed=seed, backend=backend, progress=progress)
        v.results.append(pct)
        v.schedules += pct.schedules
        v.strategy += f" + {pct.strategy} x {pct.schedules}"
        if pct.failure is not None:
            f = pct.failure
            v.preemptions, v.steps, v.replay = int(f.preemptions), int(f.steps), pct.replay
            v.verdict = f"FAILED: {pct.strategy} found {f.kind}: {f.message}"
            v.elapsed = time.perf_counter() - began
            return v
    v.elapsed = time.perf_counter() - began
    more = f" + {entry.pct} pct" if entry.pct else ""
    v.ok, v.verdict = True, f"passed <={entry.preemptions} pre{more}"
    return v
