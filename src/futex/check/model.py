"""The checker's data: scenarios, scheduling points and choices, outcomes.

:mod:`futex.check.runtime` says what they mean; this module only defines them (the
engine, :mod:`futex.check.schedule`, and the strategies share them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from futex.check.trace import Step
from futex.check.trace import ops_digest as _digest

if TYPE_CHECKING:
    from futex.check.words import Env

__all__ = [
    "ATOMICS",
    "KINDS",
    "RUN",
    "SPURIOUS",
    "TIMER",
    "WRITES",
    "Choice",
    "Chooser",
    "Decision",
    "OpInfo",
    "Outcome",
    "Point",
    "Scenario",
    "TaskFn",
    "default_choice",
]

ATOMICS: Final = frozenset(
    {"load", "store", "cas", "swap", "fetch_add", "fetch_sub", "fetch_or", "fetch_and",
     "fetch_xor"}
)  # fmt: skip
#: Operations that may change a word's value (a futex call's kernel writes included).
WRITES: Final = frozenset(
    ATOMICS - {"load"} | {"wake_op", "lock_pi", "lock_pi2", "trylock_pi", "unlock_pi"}
)
#: Outcome kinds.
KINDS: Final = (
    "ok", "deadlock", "lost-wakeup", "livelock", "assertion", "invariant", "final",
    "exception", "nondeterminism",
)  # fmt: skip


class OpInfo(NamedTuple):
    """The operation a task runs at its next step: ``kind`` ("load", "cas", "wait",
    "wake", "requeue", "lock_pi", "return"...), the ``word``'s name, whether it ``writes``
    (may change a word's value), and the ``other`` word of a requeue or wake_op."""

    kind: str
    word: str
    writes: bool
    other: str | None = None


class Choice(NamedTuple):
    """One option at a point: ``kind`` "run" (task ``task``), "timer" (``task`` -1) or
    "spurious" (a spurious wake-up of blocked task ``task``)."""

    kind: str
    task: int


#: The timer option.
TIMER: Final = Choice("timer", -1)
RUN: Final = [Choice("run", i) for i in range(64)]
SPURIOUS: Final = [Choice("spurious", i) for i in range(64)]


class Point(NamedTuple):
    """A scheduling point with a choice (see the module docstring).

    ``step``: the index of this decision; ``current``: the task that just ran (``None``
    at start, or after it blocked or finished); ``runnable``: tasks that can run,
    ascending; ``next_ops``: what each runnable task does next; ``timer``: a timer could
    fire; ``spurious``: blocked tasks a spurious wake-up may hit; ``options``: every legal
    choice, in canonical order; ``at``: the trace index the step taken here will have."""

    step: int
    current: int | None
    runnable: tuple[int, ...]
    next_ops: Mapping[int, OpInfo]
    timer: bool
    spurious: tuple[int, ...]
    options: tuple[Choice, ...]
    at: int = 0


class Decision(NamedTuple):
    """A point and the choice taken there."""

    point: Point
    choice: Choice

    @property
    def chosen(self) -> int:
        """The choice's index in ``point.options``."""
        return self.point.options.index(self.choice)


def default_choice(point: Point) -> Choice:
    """The default policy: the current task if it can run, else the first option (the
    lowest runnable task, else the timer)."""
    cur = point.current
    if cur is not None and cur in point.runnable:
        return RUN[cur]
    return point.options[0]


Chooser = Callable[[Point], Choice]
TaskFn = Callable[[Any], Any]


@dataclass(frozen=True)
class Scenario:
    """A checked scenario: ``setup(env)`` builds fresh state for every schedule, each
    task is called with it.  ``tasks``: ``(name, fn)`` pairs or functions (named after
    the function, numbered when repeated).  ``invariant(state)`` runs after every step,
    ``final(state, results)`` after the last task ends: a falsy return other than
    ``None``, or an AssertionError, fails them.  ``awaits``: word name -> predicate on its
    value, what its sleepers wait for (a sleeper whose predicate holds was owed a wake-up).
    ``spurious``: how many spurious wake-ups a schedule may inject.  ``livelock_after``:
    repeats of a spinner alone before a livelock is declared."""

    name: str
    setup: Callable[[Env], Any]
    tasks: Sequence[tuple[str, TaskFn] | TaskFn]
    invariant: Callable[[Any], object] | None = None
    final: Callable[[Any, dict[str, Any]], object] | None = None
    awaits: Mapping[str, Callable[[int], object]] | None = None
    spurious: int = 0
    description: str = ""
    livelock_after: int = 50
    named: tuple[tuple[str, TaskFn], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        raw: list[tuple[str, TaskFn]] = []
        for item in self.tasks:
            if isinstance(item, tuple):
                name, fn = item
            else:
                fn = item
                name = getattr(fn, "__name__", "task")
            if not callable(fn):
                raise TypeError(f"task {name!r} is not callable")
            raw.append((str(name), fn))
        if not raw:
            raise ValueError("a scenario needs at least one task")
        if len(raw) > len(RUN):
            raise ValueError(f"at most {len(RUN)} tasks")
        counts: dict[str, int] = {}
        for name, _ in raw:
            counts[name] = counts.get(name, 0) + 1
        seen: dict[str, int] = {}
        named = []
        for name, fn in raw:
            if counts[name] > 1:
                seen[name] = seen.get(name, 0) + 1
                name = f"{name}{seen[name]}"
            named.append((name, fn))
        if len({n for n, _ in named}) != len(named):
            raise ValueError(f"task names must be unique: {[n for n, _ in named]}")
        object.__setattr__(self, "named", tuple(named))

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.named)


@dataclass
class Outcome:
    """What one schedule did.  ``kind`` is one of :data:`KINDS`; ``message`` says why
    (the stuck task first); ``decisions`` every point with a choice and what was taken;
    ``trace`` every step (``ops_digest``: its digest, computed when first read);
    ``results`` each finished task's return value; ``task`` the
    task the failure is about; ``error`` the exception behind an ``assertion``,
    ``exception``, ``invariant`` or ``final`` failure."""

    kind: str
    message: str
    decisions: list[Decision]
    trace: list[Step]
    results: dict[str, Any]
    preemptions: int
    steps: int
    task: str | None = None
    error: BaseException | None = None
    backend: str = ""

    @cached_property
    def ops_digest(self) -> str:
        """8 hex digits over the (task, operation kind, word) sequence of the trace."""
        return _digest(self.trace)

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    @property
    def choices(self) -> list[int]:
        """The index of each decision's choice in its options."""
        return [d.chosen for d in self.decisions]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}" if self.message else self.kind
