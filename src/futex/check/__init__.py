"""futex.check: a deterministic schedule checker for futex algorithms.

Tasks written against :class:`futex.word.FutexWord` (and so :mod:`futex.sync`'s
primitives) run on the emulated Linux kernel with a scheduling point before every atomic
and futex call; the checker decides every interleaving, fires timers as schedulable
events (virtual time), injects spurious wake-ups within a budget, and classifies what
goes wrong: deadlock, lost wakeup, livelock, assertion, invariant or final-state failure.

- one schedule: :func:`run_schedule` (:mod:`futex.check.runtime`) with a chooser;
- many: :func:`explore` with a strategy (:class:`DFS`, :class:`PCT`, :class:`Random`,
  :class:`Portfolio`) and a :class:`Budget`; :func:`replay` runs a replay string again.

The names are imported on first use (this package is imported by the ``futex`` command
line, which must start fast).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from futex.check.exploring import Budget, Result, explore
    from futex.check.replaying import replay
    from futex.check.runtime import (
        TIMER,
        Choice,
        Decision,
        OpInfo,
        Outcome,
        Point,
        Scenario,
        default_choice,
        run_schedule,
    )
    from futex.check.strategies import DFS, PCT, Portfolio, Random, Strategy
    from futex.check.trace import Step
    from futex.check.words import CheckedWord, Env

__all__ = [
    "DFS",
    "PCT",
    "TIMER",
    "Budget",
    "CheckedWord",
    "Choice",
    "Decision",
    "Env",
    "OpInfo",
    "Outcome",
    "Point",
    "Portfolio",
    "Random",
    "Result",
    "Scenario",
    "Step",
    "Strategy",
    "default_choice",
    "explore",
    "replay",
    "run_schedule",
]

_WHERE = {
    **dict.fromkeys(
        ("TIMER", "Choice", "Decision", "OpInfo", "Outcome", "Point", "Scenario",
         "default_choice", "run_schedule"),
        "runtime",
    ),
    **dict.fromkeys(("DFS", "PCT", "Portfolio", "Random", "Strategy"), "strategies"),
    **dict.fromkeys(("Budget", "Result", "explore"), "exploring"),
    "replay": "replaying",
    "Step": "trace",
    "CheckedWord": "words",
    "Env": "words",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'futex.check' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"futex.check.{module}"), name)
    globals()[name] = value
    return value
