"""Reporting a disagreement: :class:`Mismatch` (the first one of a single-task run, with
what makes two of them "the same bug"), :func:`shrink` (the shortest sub-sequence that
still shows one) and :class:`ScenarioMismatch` (a multi-task scenario's, with its trace).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from futex.linux import abi
from tests.differential.harness.layout import LAYOUT
from tests.differential.harness.steps import FUTEX2_NAMES, Addr, At, Call, Step, Sys2, describe_op

__all__ = [
    "Mismatch",
    "Runner",
    "ScenarioMismatch",
    "shrink",
]


@dataclass
class Mismatch:
    """One disagreement: the step, the host's answer, the emulator's, and details."""

    index: int
    step: Step
    host: object
    emulator: object
    detail: str
    steps: Sequence[Step] = ()
    #: the call's six registers as made (hex), and the layout base
    registers: str = ""

    def signature(self) -> tuple[object, ...]:
        """What makes two mismatches "the same bug" for de-duplication."""
        s = self.step
        if isinstance(s, Sys2):
            key: tuple[object, ...] = (FUTEX2_NAMES.get(s.nr, s.nr), bool(s.peer))
        elif isinstance(s, Call):
            base = describe_op(s.op).split("|")[0]
            key = (
                "unknown" if base.startswith("cmd") else base,
                bool(s.op & abi.FUTEX_PRIVATE_FLAG),
                _addr_class(s.uaddr),
                bool(s.peer),
            )
        else:
            key = ("store", _addr_class(s.addr))
        return (*key, repr(self.host), repr(self.emulator), self.detail.split(":")[0])

    def __str__(self) -> str:
        lines = [
            f"step {self.index}: {self.step!r}",
            f"  host: {self.host!r}   emulator: {self.emulator!r}   ({self.detail})",
        ]
        if self.registers:
            lines.append(f"  registers: {self.registers}")
        if self.steps:
            lines.append("  sequence:")
            lines += [f"    [{i}] {s!r}" for i, s in enumerate(self.steps)]
        return "\n".join(lines)


class ScenarioMismatch(AssertionError):
    """Host and emulator disagree (or the harness could not make them meet)."""


class Runner(Protocol):
    """What runs a sequence on both sides (``differ.Differ``)."""

    def run(self, steps: Sequence[Step]) -> Mismatch | None: ...


def shrink(differ: Runner, bad: Mismatch, budget: int = 200) -> Mismatch:
    """The shortest sub-sequence (steps dropped one at a time, greedily) that still shows
    the same disagreement (``Mismatch.signature``)."""
    sig, steps = bad.signature(), list(bad.steps)
    best = bad
    progress = True
    while progress and budget > 0:
        progress = False
        for i in range(len(steps)):
            budget -= 1
            if len(steps) == 1 or budget < 0:
                break
            candidate = steps[:i] + steps[i + 1 :]
            got = differ.run(candidate)
            if got is not None and got.signature() == sig:
                steps, best, progress = candidate, got, True
                break
    return best


def _addr_class(a: Addr) -> str:
    if isinstance(a, At):
        return f"{LAYOUT[a.page].name}{'' if a.off % 4 == 0 else '+misaligned'}"
    return f"abs:{a:#x}"
