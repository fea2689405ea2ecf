"""Exploration strategies: which option to take at each scheduling point.

The engine (:mod:`futex.check.runtime`) runs one schedule per call and asks a chooser at
every scheduling point with a choice; a strategy answers with an index into
``point.options``, and between schedules it decides what to try next.  Four of them:

- :class:`DFS`: iterative preemption bounding (Musuvathi and Qadeer, PLDI 2007, as in
  CHESS).  Stateless: every schedule reruns the scenario from scratch, following a
  decision prefix, then the default policy.  Bound 0 first (every schedule without a
  preemption: only switches when the running task blocks or ends branch), then the
  schedules with exactly one preemption, and so on up to ``preemptions``.  The first
  failure found therefore has the fewest preemptions possible, and an exhausted bound is a
  certificate: "complete for <= c preemptions, <= S steps: N schedules".
- :class:`PCT`: probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi and
  Nagarakatte, ASPLOS 2010): random task priorities, ``depth - 1`` random change points
  that demote the running task; the first schedule measures the number of steps ``k``.  A
  task that spins (re-reads a word nobody wrote since) is demoted so the others progress.
- :class:`Random`: uniform among the options at every point.
- :class:`Portfolio`: round-robin over strategies, one schedule each.

Terms.  The *default policy* keeps running the current task while it can run, else runs
the lowest-numbered runnable task, else fires the earliest timer.  A *preemption* is
choosing a task other than the current one while the current one can still run; switches
at a block or an exit are free, and so are timer and spurious-wake events (a spurious
wake has its own budget, and timers are finite).

Strategies are typed against small protocols (:class:`PointLike`, :class:`ChoiceLike`)
that the engine's ``Point`` and ``Choice`` satisfy, so they can be tested on a model.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "DFS",
    "PCT",
    "ChoiceLike",
    "Decision",
    "DecisionLike",
    "OpLike",
    "Portfolio",
    "PointLike",
    "Random",
    "Strategy",
    "default_index",
    "is_preemption",
    "chooser",
    "decisions_of",
]


class ChoiceLike(Protocol):
    """One option at a scheduling point: ``kind`` "run", "timer" or "spurious"."""

    @property
    def kind(self) -> str: ...
    @property
    def task(self) -> int: ...


class OpLike(Protocol):
    """The operation a task runs next: its kind ("load", "cas", "wait", ...) and word."""

    @property
    def kind(self) -> str: ...
    @property
    def word(self) -> str: ...
    @property
    def writes(self) -> bool: ...


class PointLike(Protocol):
    """A scheduling point, as the engine's ``Point``."""

    @property
    def step(self) -> int: ...
    @property
    def current(self) -> int | None: ...
    @property
    def runnable(self) -> tuple[int, ...]: ...
    @property
    def next_ops(self) -> Mapping[int, OpLike]: ...
    @property
    def options(self) -> Sequence[ChoiceLike]: ...


def default_index(point: PointLike) -> int:
    """The default policy's option: the current task, else the lowest runnable, else the timer.

    With only spurious wakes on offer (they are never progress) it is the first option.
    """
    options = point.options
    current = point.current
    first_run = first_timer = -1
    for i, option in enumerate(options):
        if option.kind == "run":
            if option.task == current:
                return i
            if first_run < 0:
                first_run = i
        elif option.kind == "timer" and first_timer < 0:
            first_timer = i
    if first_run >= 0:
        return first_run
    return first_timer if first_timer >= 0 else 0


def _fingerprint(point: PointLike) -> int:
    """A hash of what a point offers: its options and the runnable tasks' next operations."""
    return hash((tuple(point.options), tuple(point.next_ops.values())))


def is_preemption(point: PointLike, choice: ChoiceLike) -> bool:
    """Whether taking ``choice`` switches away from a current task that can still run."""
    current = point.current
    return (
        choice.kind == "run"
        and current is not None
        and choice.task != current
        and current in point.runnable
    )


class DecisionLike(Protocol):
    """A point with a choice and what was taken there, as the engine's ``Decision``."""

    @property
    def point(self) -> PointLike: ...
    @property
    def choice(self) -> ChoiceLike: ...


@dataclass(frozen=True)
class Decision:
    """One decision of a run: the point (summarized) and the option taken.

    ``step`` is the decision's index (the engine's ``point.step``); ``at`` the trace step
    the choice made (the engine's ``point.at`` when it has one, else ``None``).
    """

    step: int
    at: int | None
    current: int | None
    runnable: tuple[int, ...]
    options: tuple[tuple[str, int], ...]  # (kind, task) per option
    index: int
    default: int
    preemption: bool

    @property
    def choice(self) -> tuple[str, int]:
        return self.options[self.index]

    @property
    def deviates(self) -> bool:
        """Whether the choice differs from the default policy's."""
        return self.index != self.default


def decisions_of(taken: Iterable[DecisionLike]) -> list[Decision]:
    """Summaries of a run's decisions (an ``Outcome.decisions``)."""
    summaries: list[Decision] = []
    for decision in taken:
        point, choice = decision.point, decision.choice
        options = tuple((o.kind, o.task) for o in point.options)
        summaries.append(
            Decision(
                point.step,
                getattr(point, "at", None),
                point.current,
                tuple(point.runnable),
                options,
                options.index((choice.kind, choice.task)),
                default_index(point),
                is_preemption(point, choice),
            )
        )
    return summaries


Chooser = Callable[[PointLike], int]


def chooser(choose: Chooser) -> Callable[[Any], Any]:
    """The engine's chooser (a point -> one of its options) from an index chooser."""

    def pick(point: PointLike) -> ChoiceLike:
        return point.options[choose(point)]

    return pick


class Strategy:
    """What ``explore`` drives: ``reset``, then ``begin``, ``choose``..., ``end`` per schedule."""

    def reset(self, seed: int) -> None:
        """Forget everything; ``seed`` makes the randomized strategies reproducible."""

    def begin(self) -> bool:
        """Prepare the next schedule; False when there is nothing left to explore."""
        return True

    def choose(self, point: PointLike) -> int:
        """The option to take at ``point`` (an index into ``point.options``)."""
        raise NotImplementedError

    def end(self, kind: str) -> None:
        """The schedule ended with outcome ``kind``."""

    @property
    def complete(self) -> bool:
        """Whether the requested bound was explored exhaustively."""
        return False

    def certificate(self, steps: int) -> str | None:
        """What was proved, if anything, e.g. "complete for <= 2 preemptions, ...: N"."""
        return None

    def divergence(self) -> str | None:
        """Why the last schedule did not follow its prefix (nondeterminism), if it did not."""
        return None

    def found_by(self) -> str:
        """How the last schedule was found, for the report ("dfs <=1 preemption")."""
        return str(self)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class DFS(Strategy):
    """Iterative preemption bounding: every schedule with <= ``preemptions`` preemptions.

    Bound ``c`` runs the schedules with exactly ``c`` preemptions (bound 0 includes the
    default schedule, which comes first).  A schedule is a decision prefix: replayed from
    scratch, then the default policy, recording at each new point its free alternatives
    (explored depth-first at this bound) and its preemptive ones (queued for bound c+1).
    """

    def __init__(self, preemptions: int = 2) -> None:
        if preemptions < 0:
            raise ValueError(f"preemptions must be >= 0, not {preemptions}")
        self.preemptions = preemptions
        self.reset(0)

    def __repr__(self) -> str:
        return f"DFS(preemptions={self.preemptions})"

    def __str__(self) -> str:
        return f"dfs <={_plural(self.preemptions, 'preemption')}"

    def reset(self, seed: int) -> None:
        self.level = 0
        # prefixes not yet run at this level / ending in one more preemption, each with
        # the fingerprint chain of its points (to notice a scenario that changed under us)
        self._queue: deque[tuple[bytes, int]] = deque([(b"", 0)])
        self._next: deque[tuple[bytes, int]] = deque()
        self._script: bytes | None = None  # the prefix this schedule follows
        self._expect = 0  # the fingerprint chain of the script's points
        self._root = 0  # length of the level's prefix: branching starts after it
        self._path: list[int] = []
        self._chain: list[int] = []  # fingerprint chain at each point of the path
        self._pending: list[list[int]] = []  # free alternatives not yet run, per point
        self._pruned = False  # a preemption beyond the bound was left out
        self._exhausted = False
        self._done: list[int] = []  # schedules run when each level was exhausted
        self._runs = 0
        self._diverged: str | None = None

    def begin(self) -> bool:
        if self._exhausted:
            return False
        if self._script is None:
            while not self._queue:
                self._done.append(self._runs)
                if not self._next or self.level >= self.preemptions:
                    self._exhausted = True
                    return False
                self.level += 1
                self._queue, self._next = self._next, deque()
            self._script, self._expect = self._queue.popleft()
            self._root = len(self._script)
            self._pending = []
        else:  # a sibling in the current subtree: the points before its end stay
            del self._pending[len(self._script) :]
        self._path = []
        self._chain = []
        self._diverged = None
        return True

    def begin_same_level(self) -> bool:
        """``begin`` the next schedule if it has as many preemptions as the last one."""
        if self._exhausted or (self._script is None and not self._queue):
            return False
        return self.begin()

    def choose(self, point: PointLike) -> int:
        options = point.options
        script = self._script
        assert script is not None, "choose() before begin()"
        path = self._path
        i = len(path)
        width = len(options)
        chain = hash((self._chain[-1] if i else 0, _fingerprint(point)))
        self._chain.append(chain)
        if i < len(script):
            index = script[i]
            if i >= len(self._pending):
                self._pending.append([])
            if index >= width:
                self._diverge(point, f"its option {index} is not on offer")
                index = default_index(point)
            elif i == len(script) - 1 and chain != self._expect:
                self._diverge(point, "the points before it differ (other tasks or operations)")
            path.append(index)
            return index
        if width > 256:
            raise ValueError(f"{width} options at step {point.step}: DFS handles at most 256")
        index = default_index(point)
        pending: list[int] = []
        for j, option in enumerate(options):
            if j == index:
                continue
            if is_preemption(point, option):
                if self.level < self.preemptions:
                    self._next.append((bytes(path) + bytes((j,)), chain))
                else:
                    self._pruned = True
            else:
                pending.append(j)
        path.append(index)
        self._pending.append(pending)
        return index

    def _diverge(self, point: PointLike, why: str) -> None:
        if self._diverged is None:
            self._diverged = f"at decision {point.step} of the recorded prefix {why}"

    def end(self, kind: str) -> None:
        self._runs += 1
        script = self._script
        assert script is not None, "end() before begin()"
        if len(self._path) < len(script) and self._diverged is None:
            self._diverged = (
                f"the run ended after {len(self._path)} decisions, inside its recorded "
                f"prefix of {len(script)}"
            )
        for depth in range(len(self._pending) - 1, self._root - 1, -1):
            alternatives = self._pending[depth]
            if alternatives:
                self._script = bytes(self._path[:depth]) + bytes((alternatives.pop(0),))
                self._expect = self._chain[depth]
                return
        self._script = None

    @property
    def complete(self) -> bool:
        return self._exhausted

    def certificate(self, steps: int) -> str | None:
        if not self._done:
            return None
        level = len(self._done) - 1
        exhaustive = self._exhausted and not self._pruned
        bound = "all schedules" if exhaustive else f"<= {_plural(level, 'preemption')}"
        return f"complete for {bound}, <= {steps} steps: {_plural(self._done[-1], 'schedule')}"

    def divergence(self) -> str | None:
        return self._diverged

    def found_by(self) -> str:
        return f"dfs <={_plural(self.level, 'preemption')}"


class Random(Strategy):
    """Uniform among the options at every point (points with one option draw nothing)."""

    def __repr__(self) -> str:
        return "Random()"

    def __str__(self) -> str:
        return "random"

    def reset(self, seed: int) -> None:
        self._random = random.Random(f"random/{seed}").random

    def choose(self, point: PointLike) -> int:
        # random() scaled, not randrange(): one C call instead of four Python frames at
        # every decision (the bias, below 2**-50, is far beneath any schedule count)
        return int(self._random() * len(point.options))


class PCT(Strategy):
    """Probabilistic concurrency testing with bug depth ``depth`` (ASPLOS 2010).

    Per schedule: distinct random priorities for the tasks (and for the timer, as a
    pseudo-task), ``depth - 1`` change points drawn among the ``k`` steps with a choice
    (``k`` = the most seen so far; the first schedule measures it).  The ``i``-th drawn
    change point lowers the task about to run to priority ``i``, below every initial
    one; the draws are in random temporal order, so a later demotion lands above or below
    an earlier one (A-B-A ping-pong needs below, A-B-C-B needs above).
    The highest-priority runnable task runs.  A task spinning on a word (a read of the
    word it last read, which nobody wrote since) drops below everything.  Spurious wakes,
    when the engine offers them, are injected at one random step in two schedules.
    """

    def __init__(self, depth: int = 3) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, not {depth}")
        self.depth = depth
        self.reset(0)

    def __repr__(self) -> str:
        return f"PCT(depth={self.depth})"

    def __str__(self) -> str:
        return f"pct depth {self.depth}"

    def reset(self, seed: int) -> None:
        self._rng = random.Random(f"pct/{seed}")
        self._k = 0
        self._first = True
        self._begin_state()

    def _begin_state(self) -> None:
        self._priority: dict[int, float] = {}
        self._changes: dict[int, int] = {}  # step with a choice -> change point number
        self._spurious_at = -1
        self._steps = 0  # steps with a choice so far in this schedule
        self._floor = 0.0  # spinners go below this
        self._last_read: dict[int, tuple[str, int]] = {}  # task -> (word, version read)
        self._version: dict[str, int] = {}

    def begin(self) -> bool:
        self._begin_state()
        rng = self._rng
        if not self._first and self._k > 0:
            count = min(self.depth - 1, self._k)
            # the i-th drawn step lowers to priority i: the temporal order of the values
            # is random, so a later demotion may land above or below an earlier one
            points = rng.sample(range(1, self._k + 1), count)
            self._changes = {step: n for n, step in enumerate(points, 1)}
            if rng.random() < 0.5:
                self._spurious_at = rng.randrange(1, self._k + 1)
        self._first = False
        return True

    def _prio(self, task: int) -> float:
        prio = self._priority.get(task)
        if prio is None:  # first sight: a fresh random rank above every change priority
            prio = self._priority[task] = self.depth + self._rng.random()
        return prio

    def choose(self, point: PointLike) -> int:
        options = point.options
        if len(options) == 1:
            index = 0
        else:
            self._steps += 1
            index = self._pick(point)
        option = options[index]
        if option.kind == "run":
            self._note(point, option.task)
        return index

    def _pick(self, point: PointLike) -> int:
        options = point.options
        if self._steps == self._spurious_at:
            hits = [i for i, o in enumerate(options) if o.kind == "spurious"]
            if hits:
                return hits[self._rng.randrange(len(hits))]
        candidates = [i for i, o in enumerate(options) if o.kind != "spurious"]
        if not candidates:
            return 0

        def key(i: int) -> float:
            return self._prio(options[i].task)  # the timer's task is -1: its own rank

        best = max(candidates, key=key)
        change = self._changes.get(self._steps)
        if change is not None and len(candidates) > 1:
            self._priority[options[best].task] = float(change)
            best = max(candidates, key=key)
        return best

    def _note(self, point: PointLike, task: int) -> None:
        """Track reads and writes per word; demote a task that re-reads an unchanged word."""
        op = point.next_ops.get(task)
        if op is None:
            return
        word = op.word
        version = self._version.get(word, 0)
        if op.writes:
            self._version[word] = version + 1
            self._last_read.pop(task, None)
            return
        if op.kind != "load":
            return
        if self._last_read.get(task) == (word, version):  # a spin: let the others run
            self._floor -= 1.0
            self._priority[task] = self._floor
        self._last_read[task] = (word, version)

    def end(self, kind: str) -> None:
        self._k = max(self._k, self._steps)

    def found_by(self) -> str:
        return str(self)


class Portfolio(Strategy):
    """Round-robin over ``strategies``: schedule ``i`` is run by strategy ``i mod n``.

    An exhausted member (a finished DFS) drops out; the portfolio is exhausted when all
    are.  Members get distinct seeds derived from the portfolio's.
    """

    def __init__(self, strategies: Sequence[Strategy] | None = None) -> None:
        members = list(strategies) if strategies is not None else [DFS(2), PCT(3), Random()]
        if not members:
            raise ValueError("a portfolio needs at least one strategy")
        self.strategies = members
        self.reset(0)

    def __repr__(self) -> str:
        return f"Portfolio([{', '.join(repr(s) for s in self.strategies)}])"

    def __str__(self) -> str:
        return "portfolio(" + ", ".join(str(s) for s in self.strategies) + ")"

    def reset(self, seed: int) -> None:
        for n, member in enumerate(self.strategies):
            member.reset(seed if n == 0 else seed * 1_000_003 + n)
        self._live = list(range(len(self.strategies)))
        self._turn = -1
        self._current: Strategy | None = None

    def begin(self) -> bool:
        while self._live:
            self._turn = (self._turn + 1) % len(self._live)
            member = self.strategies[self._live[self._turn]]
            if member.begin():
                self._current = member
                return True
            del self._live[self._turn]
            self._turn -= 1
        self._current = None
        return False

    def _member(self) -> Strategy:
        assert self._current is not None, "choose() before begin()"
        return self._current

    def choose(self, point: PointLike) -> int:
        return self._member().choose(point)

    def end(self, kind: str) -> None:
        self._member().end(kind)

    @property
    def complete(self) -> bool:
        return any(member.complete for member in self.strategies)

    def certificate(self, steps: int) -> str | None:
        for member in self.strategies:
            text = member.certificate(steps)
            if text is not None:
                return text
        return None

    def divergence(self) -> str | None:
        return self._member().divergence() if self._current is not None else None

    def found_by(self) -> str:
        return self._member().found_by()
