"""The engine: one schedule of a scenario, driven from the hub and the tasks' contexts.

See :mod:`futex.check.runtime` for the semantics (points, options, the default policy,
spinning, checks).  A :class:`Run` makes every decision in whichever context is running
-- a task at its scheduling point, or the hub -- and passes control straight to the
task picked (:meth:`Run._switch`), so a schedule that stays on one task never switches.
What happens after each operation (the step, the values, the spin record, the
invariant) is the :class:`~futex.check.record.Recorder` half.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from futex.check import machine as _machine
from futex.check.detect import judge_livelock, judge_stuck
from futex.check.model import (
    RUN,
    SPURIOUS,
    TIMER,
    WRITES,
    Choice,
    Chooser,
    Decision,
    OpInfo,
    Outcome,
    Point,
    Scenario,
    default_choice,
)
from futex.check.record import Recorder, first_line
from futex.check.tasks import BLOCKED, DONE, READY, Abort, Backend, TaskState
from futex.check.trace import PENDING, Step
from futex.check.words import Env, PointWord
from futex.kernel.blocking import PendingWait
from futex.sync.emulated import rebind

__all__ = ["Run"]


_new_tuple: Any = tuple.__new__
#: The options of a point with these runnable tasks and no event, built once.
_OPTIONS: dict[tuple[int, ...], tuple[Choice, ...]] = {}
#: OpInfo by (word name, kind), shared by every schedule (they are immutable).
_OPS: dict[tuple[str, str], OpInfo] = {}


class Run(Recorder):
    """One schedule (see the module docstring); :func:`run_schedule` drives it."""

    def __init__(
        self,
        scenario: Scenario,
        chooser: Chooser | None,
        backend: Backend,
        max_steps: int,
        spurious: int,
    ) -> None:
        self.scenario = scenario
        self.chooser = chooser
        self.backend = backend
        self._green = backend.name == "greenlet"
        self.max_steps = max_steps
        self.spurious_left = spurious
        self.machine = m = _machine.acquire(len(scenario.named))
        self.process = m.process
        self.clock = m.clock
        self.ktasks = m.tasks
        self._load = m.process.load_u32
        self.tasks: list[TaskState] = []
        self._kname: dict[Any, str] = {}
        for i, (name, fn) in enumerate(scenario.named):  # a loop: no comprehension frames
            k = m.tasks[i]
            self.tasks.append(TaskState(i, name, fn, k))
            self._kname[k] = name
        self.index = 0
        self.in_task = False
        self.running: TaskState | None = None
        self.current: int | None = None
        self.in_setup = True
        self.starting = True
        self.aborting = False
        self.sync = False
        self.blocked: list[TaskState] = []
        self.ready = len(self.tasks)  # tasks in state READY
        self._ready: tuple[int, ...] | None = None  # their indexes (None: to compute)
        self.names: tuple[str, ...] = ()
        self.addrs: list[int] = []
        self.addr_names: dict[int, str] = {}
        self.addr_index: dict[int, int] = {}
        self.values: tuple[int, ...] = ()
        self.waiters: dict[str, list[str]] = {}
        self.trace: list[Step] = []
        self.decisions: list[Decision] = []
        self.preemptions = 0
        self.over = False
        self.stale = False  # some task has re-observed an unchanged value
        self._checks = scenario.invariant is not None
        self.state: Any = None
        self.outcome: tuple[str, str, str | None, BaseException | None] | None = None
        self.internal: BaseException | None = None

    # -- the Scheduler protocol of futex.check.words -----------------------------------------

    def alloc(self, size: int, align: int) -> int:
        return self.machine.alloc(size, align)

    def register(self, name: str, addr: int) -> None:
        if addr in self.addr_names:
            return
        self.addr_names[addr] = name
        self.addr_index[addr] = len(self.addrs)
        self.addrs.append(addr)
        self.names += (name,)
        if not self.in_setup:  # in setup: read once at its end
            self.values += (self._load(addr),)

    def point(self, word: PointWord, kind: str, args: tuple[object, ...]) -> TaskState:
        if self.aborting:
            raise Abort
        t: TaskState = self.running  # type: ignore[assignment]  # a task runs: in_task
        info = _OPS.get((word.name, kind))
        t.op = info if info is not None else self._op(word, kind, args)
        t.args = args
        t.word = word
        t.raw = None
        if self.starting:
            self._start_next(t)
        elif self.ready == 1 and not self.blocked and not self.stale and not self.clock.armed:
            self.current = t.index  # the one task that can run, and no event can happen
        else:  # _schedule(t), inline (the hot path): returns when t is picked
            nxt = self._decide()
            if nxt is not t:
                if nxt is None:
                    self._over(t)
                self._switch(t, nxt)
        return t

    # -- contexts ------------------------------------------------------------------------

    def _switch(self, me: TaskState | None, to: TaskState | None) -> None:
        """Pass control from ``me`` (None: the hub) to ``to`` (None: the hub)."""
        backend = self.backend
        if to is None:
            self.running = None
            self.in_task = False
            target = backend.hub
        else:
            self.running = to
            self.index = to.index
            self.in_task = True
            target = to.ctx
            if target is None:
                target = to.ctx = backend.spawn(self._body, to)
        if self._green:  # the greenlet switch inline: one frame less to copy
            target.switch()
        else:
            backend.switch(me.ctx if me is not None else backend.hub, target)
        if me is not None:  # resumed
            if self.aborting:
                raise Abort
            if self.sync:
                rebind(me.k)

    def _body(self, t: TaskState) -> None:
        if self.sync:
            rebind(t.k)
        try:
            t.result = t.fn(self.state)
        except Abort:
            pass
        except (KeyboardInterrupt, SystemExit) as exc:
            self.internal = exc
            self._fail("exception", f"{t.name} was interrupted: {exc!r}", t.name, exc)
        except BaseException as exc:
            t.error = exc
            if isinstance(exc, AssertionError):
                kind, what = "assertion", "assertion failed"
            else:
                kind, what = "exception", f"raised {type(exc).__name__}"
            self._fail(kind, f"{t.name} {what}: {first_line(exc)}".rstrip(": "), t.name, exc)
        if t.state == READY:
            self.ready -= 1
        t.state = DONE
        self._ready = None
        t.op = None
        self.running = None
        self.in_task = False
        self.current = None
        if t.error is None and self.outcome is None:
            t.finished = True

    def _fail(self, kind: str, message: str, task: str | None, error: BaseException | None) -> None:
        if self.outcome is None:
            self.outcome = (kind, message, task, error)

    # -- the decision loop ---------------------------------------------------------------

    def _schedule(self, me: TaskState | None) -> None:
        """Decide what runs next and pass control there; returns in ``me`` when ``me``
        is picked (a task) or when the schedule is over or a task ended (the hub)."""
        while True:
            nxt = self._decide()
            if nxt is None:  # over
                if me is not None:
                    self._over(me)
                self.over = True
                return
            if nxt is me:
                return
            self._switch(me, nxt)
            if me is not None or self.over:
                return

    def _start_next(self, t: TaskState) -> None:
        """At its first point, ``t`` starts the next task (tasks start in order, each
        running to its first point); the last one makes the schedule's first decision."""
        for nxt in self.tasks[t.index + 1 :]:
            if nxt.ctx is None:
                self._switch(t, nxt)
                return
        self.starting = False
        first = self._decide()
        if first is not t:
            if first is None:
                self._over(t)
            self._switch(t, first)

    def _over(self, me: TaskState) -> NoReturn:
        """The schedule is over: task ``me`` passes control to the hub for good."""
        self.over = True
        self._switch(me, None)
        raise Abort  # not reached: the hub resumes us only to abort

    def _decide(self) -> TaskState | None:
        """The task to run next (events chosen on the way happen here), or ``None``: the
        schedule is over."""
        tasks = self.tasks
        clock = self.clock
        while self.outcome is None:
            if self.blocked:
                self._wake_ups()
            runnable = self._ready
            if runnable is None:
                runnable = self._ready = tuple([t.index for t in tasks if t.state == READY])
            if self.stale or clock.armed or (self.spurious_left > 0 and self.blocked):
                got = self._with_events(runnable)
                if got is None:
                    return None
                runnable, options, timer, spur = got
            elif len(runnable) > 1:
                options = _OPTIONS.get(runnable) or self._options(runnable)
                timer, spur = False, ()
            elif runnable:  # the one option: no point to ask about
                i = runnable[0]
                self.current = i
                return tasks[i]
            else:
                self._stuck()  # nothing runs, no timer
                return None
            if len(options) == 1:
                choice = options[0]
            else:  # a point with a choice: ask (the chooser's answer is a Decision)
                ops: dict[int, OpInfo] = {}
                for i in runnable:  # a loop, not a comprehension: no function per point
                    ops[i] = tasks[i].op  # type: ignore[assignment]  # runnable: op is set
                point: Point = _new_tuple(  # Point(...), without NamedTuple's __new__
                    Point,
                    (len(self.decisions), self.current, runnable, ops, timer, spur, options,
                     len(self.trace)),
                )  # fmt: skip
                chooser = self.chooser
                try:
                    choice = default_choice(point) if chooser is None else chooser(point)
                    if choice not in options:
                        raise ValueError(f"the chooser took {choice!r}, not one of {options}")
                except BaseException as exc:
                    self.internal = exc
                    self._fail("exception", f"the chooser raised {exc!r}", None, exc)
                    return None
                self.decisions.append(_new_tuple(Decision, (point, choice)))
            if choice.kind == "run":
                cur, i = self.current, choice.task
                if cur is not None and cur != i and cur in runnable:
                    self.preemptions += 1
                self.current = i
                return tasks[i]
            if choice.kind == "timer":
                self._fire_timer()
            else:
                self._spurious(tasks[choice.task])
        return None

    def _with_events(
        self, runnable: tuple[int, ...]
    ) -> tuple[tuple[int, ...], tuple[Choice, ...], bool, tuple[int, ...]] | None:
        """The runnable tasks and options where spinning, a pending timer or a spurious
        wake-up budget may change them; ``None``: the schedule is over (a livelock, or
        nothing can happen)."""
        tasks = self.tasks
        clock = self.clock
        timer = clock.has_pending() if clock.armed else False
        if self.stale and runnable:
            spinning = [i for i in runnable if tasks[i].spins()]
            if spinning:
                active = tuple([i for i in runnable if i not in spinning])
                if active or timer:
                    runnable = active
                else:
                    limit = self.scenario.livelock_after
                    runnable = tuple([i for i in spinning if tasks[i].stale <= limit])
                    if not runnable:
                        self._livelock([tasks[i] for i in spinning])
                        return None
        spur: tuple[int, ...] = ()
        if self.spurious_left > 0 and self.blocked:
            spur = tuple(sorted(
                t.index for t in self.blocked
                if t.op is not None and t.op.kind == "wait" and t.state == BLOCKED
            ))  # fmt: skip
        if not runnable and not timer:
            self._stuck()  # nothing runs, no timer; spurious wake-ups are no progress
            return None
        options = _OPTIONS.get(runnable) or self._options(runnable) if runnable else ()
        if timer:
            options += (TIMER,)
        if spur:
            options += tuple([SPURIOUS[i] for i in spur])
        return runnable, options, timer, spur

    @staticmethod
    def _options(runnable: tuple[int, ...]) -> tuple[Choice, ...]:
        options = _OPTIONS[runnable] = tuple([RUN[i] for i in runnable])
        return options

    def _wake_ups(self) -> None:
        """Blocked tasks whose call ended become runnable, at their wait-return point."""
        for t in [t for t in self.blocked if t.pending is not None and t.pending.done()]:
            self.blocked.remove(t)
            t.state = READY
            self.ready += 1
            self._ready = None
            enter = t.op.kind if t.op is not None else "wait"
            assert t.word is not None
            info = _OPS.get((t.word.name, "return"))
            t.op = info if info is not None else self._op(t.word, "return", ())
            t.args = (enter,)

    def _op(self, word: PointWord, kind: str, args: tuple[object, ...]) -> OpInfo:
        other = None
        if args and isinstance(args[0], str) and args[0].startswith(("to=", "other=")):
            other = args[0].split("=", 1)[1]
        info = OpInfo(kind, word.name, kind in WRITES, other)
        if other is None:  # a requeue's target may vary: not cached
            if len(_OPS) > 4096:
                _OPS.clear()
            _OPS[(word.name, kind)] = info
        return info

    def _blocker(self, t: TaskState) -> Callable[[int | PendingWait], int]:
        def block(r: int | PendingWait) -> int:
            if isinstance(r, int):
                t.raw = r
                return r
            if self.running is not t or not self.in_task:
                r.kill()
                raise RuntimeError(
                    "a futex call would block outside a task (in setup, an invariant or "
                    "the final check): only tasks may sleep"
                )
            if t.op is None:
                r.kill()
                raise RuntimeError(
                    "a futex call blocked without a scheduling point before it: only the "
                    "checked words' calls may block (futex_waitv is not supported)"
                )
            t.pending = r
            t.state = BLOCKED
            self.ready -= 1
            self._ready = None
            self.blocked.append(t)
            self.current = None
            try:
                self._record(t, PENDING)
                self._schedule(t)
            except Abort:
                r.kill()
                raise
            res = r.result()
            t.pending = None
            self._record(t, res)
            t.op = None  # both steps recorded: the word method's done() has nothing to add
            t.raw = res
            return res

        return block

    # -- events --------------------------------------------------------------------------

    def _fire_timer(self) -> None:
        before = [t for t in self.blocked if t.pending is not None and not t.pending.done()]
        delta = self.clock.fire_next()
        ended = [t.name for t in before if t.pending is not None and t.pending.done()]
        raw = (", ".join(ended) + " timed out") if ended else ""
        self._event("timer", "timer", "", (delta / 1e9,), raw)

    def _spurious(self, t: TaskState) -> None:
        self.spurious_left -= 1
        t.k.interrupt(handler=True, restart=False)
        p = t.pending
        raw = "EINTR" if p is None or p.done() else "restarted"
        word = t.op.word if t.op is not None else ""
        self._event("signal", "spurious", word, (t.name,), raw)

    # -- the end -------------------------------------------------------------------------

    def _stuck(self) -> None:
        """Nothing can run and no timer is pending: a lost wakeup, a deadlock, or the
        end (then the final check)."""
        tasks = self.tasks
        if any(t.state == BLOCKED for t in tasks):
            judged = judge_stuck(tasks, self.addr_names, self._load, self.scenario.awaits)
            self._fail(*judged, None)
            return
        final = self.scenario.final
        if final is not None:
            state, results = self.state, self._results()
            failed, why, error = self._evaluate(lambda: final(state, results))
            if failed:
                self._fail("final", f"final check failed: {why}", None, error)

    def _livelock(self, spinning: list[TaskState]) -> None:
        message = judge_livelock(
            spinning, self.tasks, self.addr_names, self._load, self.scenario.awaits
        )
        self._fail("livelock", message, spinning[0].name, None)

    def _results(self) -> dict[str, Any]:
        return {t.name: t.result for t in self.tasks if t.finished}

    def run(self) -> Outcome:
        """Run the schedule from the hub; the outcome."""
        for t in self.tasks:
            t.k.blocker = self._blocker(t)
        prev = rebind(self.ktasks[0])
        try:
            self.state = self.scenario.setup(Env(self))
            self.in_setup = False
            self.values = self._snapshot()
            for t in self.tasks:  # the first, and the next after one that ended at once
                if self.outcome is not None or self.over:
                    break
                if t.ctx is None:
                    self._switch(None, t)
            self.starting = False
            if self.outcome is None and not self.over:
                self._schedule(None)
            self.aborting = True
            for t in self.tasks:
                if t.state != DONE and t.ctx is not None:
                    self._switch(None, t)
        finally:
            rebind(prev)
            _machine.release(self.machine)
            # The state holds the words, which hold this run: without the cycle the run
            # and its record are freed when the caller drops them, by reference counts,
            # and the cyclic garbage collector has nothing to chase schedule after schedule.
            self.state = None
            for t in self.tasks:  # its last word (futex.sync's are made per schedule)
                t.word = None
        if self.internal is not None:
            raise self.internal
        return self._outcome()

    def _outcome(self) -> Outcome:
        kind, message, task, error = self.outcome or ("ok", "", None, None)
        trace = self.trace
        return Outcome(
            kind=kind,
            message=message,
            decisions=self.decisions,
            trace=trace,
            results=self._results(),
            preemptions=self.preemptions,
            steps=len(trace),
            task=task,
            error=error,
            backend=self.backend.name,
        )
