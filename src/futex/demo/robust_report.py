"""The robust-futex demo's report: numbered steps, each with the checks it made, per part
(:func:`futex.demo.robust.run_robust_demo` builds it through a :class:`Narrator`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from futex.demo.kernels import Check

__all__ = ["Narrator", "RobustPart", "RobustReport", "Step"]


@dataclass
class Step:
    """One numbered step of the narrative: who acted, what happened, what was checked."""

    actor: str
    text: list[str]
    checks: list[Check] = field(default_factory=list)


@dataclass
class RobustPart:
    """One scenario: (a) the robust PI mutex or (b) the plain robust mutex."""

    label: str
    title: str
    steps: list[Step] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    """System calls of the part's tasks, by name (futex(2) by command)."""

    @property
    def checks(self) -> list[Check]:
        return [c for s in self.steps for c in s.checks]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


@dataclass
class RobustReport:
    """The outcome of :func:`run_robust_demo`."""

    parts: list[RobustPart]
    elapsed: float

    @property
    def checks(self) -> list[Check]:
        return [c for p in self.parts for c in p.checks]

    @property
    def ok(self) -> bool:
        """Whether every check of every part passed (and there was one)."""
        checks = self.checks
        return bool(checks) and all(c.ok for c in checks)

    def lines(self) -> list[str]:
        """The narrative as plain text, the verdict last."""
        out: list[str] = []
        for part in self.parts:
            out.append(f"({part.label}) {part.title}")
            for n, step in enumerate(part.steps, 1):
                prefix = f"  {n}. {step.actor:<7}"
                for i, text in enumerate(step.text):
                    out.append((prefix if i == 0 else " " * len(prefix)) + text)
                for c in step.checks:
                    out.append(f"{'':{len(prefix)}}{'ok  ' if c.ok else 'FAIL'}  {c.detail}")
            calls = ", ".join(f"{k} {v}" for k, v in sorted(part.calls.items())) or "none"
            out.append(f"  system calls: {calls}")
        failed = [c for c in self.checks if not c.ok]
        if not self.checks:
            out.append("result: FAIL (no scenario ran)")
        elif failed:
            out.append(f"result: FAIL ({len(failed)} of {len(self.checks)} robust checks)")
        else:
            out.append(
                f"result: PASS: {len(self.checks)} robust checks; each dead owner's mutex "
                "was recovered with EOWNERDEAD"
                + (
                    ", the PI boost came and went"
                    if any(p.label == "a" for p in self.parts)
                    else ""
                )
                + f" ({self.elapsed * 1000:.0f} ms)"
            )
        return out


class Narrator:
    """Builds a :class:`RobustPart` step by step."""

    def __init__(self, part: RobustPart) -> None:
        self.part = part

    def step(self, actor: str, *text: str) -> None:
        self.part.steps.append(Step(actor, list(text)))

    def fail(self, detail: str) -> None:
        self.expect(detail, ("", False, True))

    def expect(self, detail: str, *facts: tuple[str, object, object]) -> bool:
        """One check line: ``detail`` (written from the values found) holds if every fact
        ``(name, got, want)`` has ``got == want``; a failed line names what differed."""
        if not self.part.steps:
            self.step("", "")
        bad = [f"{name} {got}, expected {want}".strip() for name, got, want in facts if got != want]
        if bad and any(name for name, _, _ in facts):
            detail = f"{detail}: " + "; ".join(bad)
        self.part.steps[-1].checks.append(Check(f"robust {self.part.label}", not bad, detail))
        return not bad
