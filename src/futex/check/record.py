"""Steps: what a schedule records after each operation, and the checks that follow.

:class:`Recorder` is the half of :class:`futex.check.schedule.Run` that runs after an
operation: it appends the :class:`~futex.check.trace.Step`, keeps the words' values (for
an atomic, computed from the operation and the old value it returned -- the emulated
memory is exact, so no load is needed), keeps the spin record of await model checking
(``seen`` / ``stale``: see :mod:`futex.check.runtime`), the sleepers' queues and
requeues, and runs the invariant and the ``max_steps`` check.  A failed check ends the
schedule: the task passes control to the hub, which unwinds it (:class:`Abort`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from futex.check.detect import queued_address, queued_tasks
from futex.check.model import WRITES, Scenario
from futex.check.tasks import Abort, TaskState
from futex.check.trace import FUTEX_KINDS, PENDING, Raised, Step
from futex.linux.kernel import Process

__all__ = ["Recorder", "first_line"]

_NOTHING = object()
_M = 0xFFFF_FFFF
#: An atomic's new value from (the old value it returned, its arguments); a load and a
#: failed CAS leave the old one.
_AFTER: dict[str, Callable[[int, tuple[Any, ...]], int]] = {
    "store": lambda old, a: a[0] & _M,
    "swap": lambda old, a: a[0] & _M,
    "cas": lambda old, a: a[1] & _M if old == a[0] & _M else old,
    "fetch_add": lambda old, a: (old + a[0]) & _M,
    "fetch_sub": lambda old, a: (old - a[0]) & _M,
    "fetch_or": lambda old, a: old | (a[0] & _M),
    "fetch_and": lambda old, a: old & a[0] & _M,
    "fetch_xor": lambda old, a: old ^ (a[0] & _M),
}
_new_tuple: Any = tuple.__new__


class Recorder:
    """Step recording for :class:`~futex.check.schedule.Run` (see the module docstring);
    the attributes are the run's."""

    scenario: Scenario
    process: Process
    tasks: list[TaskState]
    blocked: list[TaskState]
    trace: list[Step]
    names: tuple[str, ...]
    addrs: list[int]
    addr_names: dict[int, str]
    addr_index: dict[int, int]
    values: tuple[int, ...]
    waiters: dict[str, list[str]]
    stale: bool
    state: Any
    in_task: bool
    over: bool
    max_steps: int
    outcome: tuple[str, str, str | None, BaseException | None] | None
    _checks: bool
    _kname: dict[Any, str]
    _load: Callable[[int], int]

    def _switch(self, me: TaskState | None, to: TaskState | None) -> None:
        raise NotImplementedError

    def _over(self, me: TaskState) -> NoReturn:
        raise NotImplementedError

    def _fail(self, kind: str, message: str, task: str | None, error: BaseException | None) -> None:
        raise NotImplementedError

    def done(self, t: TaskState, raw: Any) -> None:
        op = t.op
        if op is None:
            return  # a blocking call recorded both its steps already
        kind = op.kind
        after = _AFTER.get(kind)
        if after is None:  # a futex call (its raw result is the kernel's), or a load
            if kind != "load":
                self._record(t, raw if t.raw is None else t.raw)
                t.op = None
                return
            new = raw
        else:
            new = after(raw, t.args)
        # An atomic (the hot path, as _record): the word's new value follows from the
        # operation, its arguments and the old value it returned.
        t.op = None
        values = self.values
        at = self.addr_index[t.word.addr]  # type: ignore[union-attr]  # point() set it
        if new != values[at]:
            changed = list(values)
            changed[at] = new
            values = self.values = tuple(changed)
            if self.stale:
                self._unspin()
        else:  # nothing changed: an observation, maybe a repeated one (spinning)
            key = (kind, op.word, t.args)
            seen = t.seen
            if seen is None:
                t.seen = {key: raw}
            elif seen.get(key, _NOTHING) == raw:
                t.stale += 1
                self.stale = True
            else:
                seen[key] = raw
        trace = self.trace
        n = len(trace)
        trace.append(
            _new_tuple(Step, (n, t.name, kind, op.word, t.args, raw, self.names, values,
                              self.waiters))
        )  # fmt: skip
        if self._checks or n + 1 >= self.max_steps:
            self._after_step()
            if self.outcome is not None:
                self._over(t)

    def raised(self, t: TaskState, error: BaseException) -> None:
        if t.op is None or isinstance(error, Abort):
            return
        self._record(t, Raised(error))
        t.op = None

    def _snapshot(self) -> tuple[int, ...]:
        load = self._load
        return tuple([load(a) for a in self.addrs])

    def _record(self, t: TaskState, raw: object) -> None:
        """Record the step ``t`` just made -- a futex call, or an atomic that raised (and
        changed nothing); end the schedule if a check failed."""
        op = t.op
        word = t.word
        assert op is not None and word is not None
        kind = op.kind
        values = self.values
        if kind in FUTEX_KINDS:
            if raw == PENDING:  # the enter half of a blocking call: what it slept on
                t.wait_addr = word.addr
                t.wait_value = self._load(word.addr)
                t.requeued_from = None
            elif kind == "requeue" or kind == "cmp_requeue":
                self._track_requeues()
            if self.blocked or self.waiters:  # else no queue holds a task of ours
                self.waiters = self._queues()
            if kind in WRITES:
                values = self._snapshot()
        trace = self.trace
        n = len(trace)
        trace.append(
            _new_tuple(Step, (n, t.name, kind, op.word, t.args, raw, self.names, values,
                              self.waiters))
        )  # fmt: skip
        if values != self.values:  # a word changed: nobody spins any more
            self.values = values
            self._unspin()
        elif t.seen is not None:  # a call, not an observation: no spin
            t.stale = 0
            t.seen = None
        if self._checks or n + 1 >= self.max_steps:
            self._after_step()
        if self.outcome is not None:
            self._over(t)

    def _unspin(self) -> None:
        for x in self.tasks:
            x.stale = 0
            x.seen = None
        self.stale = False

    def _event(self, who: str, kind: str, word: str, args: tuple[object, ...], raw: str) -> None:
        self.waiters = self._queues()
        values = self._snapshot()
        trace = self.trace
        trace.append(Step(len(trace), who, kind, word, args, raw, self.names, values, self.waiters))
        if values != self.values:
            self.values = values
            self._unspin()
        self._after_step()

    def _after_step(self) -> None:
        inv = self.scenario.invariant
        if inv is not None and self.outcome is None:
            state = self.state
            failed, why, error = self._evaluate(lambda: inv(state))
            if failed:
                last = self.trace[-1]
                self._fail(
                    "invariant",
                    f"invariant violated after step {last.step} ({last.task}: "
                    f"{last.operation} -> {last.result}): {why}",
                    last.task if last.task in self._kname.values() else None,
                    error,
                )
        if len(self.trace) >= self.max_steps and self.outcome is None:
            ran: dict[str, int] = {}
            for step in self.trace:
                ran[step.task] = ran.get(step.task, 0) + 1
            busiest = max(self.tasks, key=lambda x: ran.get(x.name, 0))
            self._fail(
                "livelock",
                f"the schedule did not end within max_steps={self.max_steps} steps "
                f"({busiest.name} ran {ran.get(busiest.name, 0)} of them)",
                busiest.name,
                None,
            )

    def _evaluate(self, fn: Callable[[], object]) -> tuple[bool, str, BaseException | None]:
        """Run a check outside any task (its word calls are no scheduling points)."""
        saved = self.in_task
        self.in_task = False
        try:
            r = fn()
        except AssertionError as exc:
            return True, first_line(exc) or "AssertionError", exc
        except Exception as exc:
            return True, f"raised {type(exc).__name__}: {first_line(exc)}", exc
        finally:
            self.in_task = saved
        if r is not None and not r:
            return True, f"returned {r!r}", None
        return False, "", None

    def _queues(self) -> dict[str, list[str]]:
        """Word name -> the tasks queued on it now, in wake order."""
        pendings = [t.pending for t in self.blocked if t.pending is not None]
        return queued_tasks(self.process.futex, pendings, self.addr_names, self._kname)

    def _track_requeues(self) -> None:
        for t in self.blocked:
            p = t.pending
            if p is None or p.done():
                continue
            addr = queued_address(p)
            if addr is not None and addr != t.wait_addr:
                t.requeued_from = self.addr_names.get(t.wait_addr, f"{t.wait_addr:#x}")
                t.wait_addr = addr
                t.wait_value = self._load(addr)


def first_line(exc: BaseException) -> str:
    """An exception's message without what pytest's assertion rewriting appends."""
    text = str(exc)
    return text.splitlines()[0] if text else ""
