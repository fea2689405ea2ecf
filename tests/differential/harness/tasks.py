"""The multi-task differ: real threads parked on the layout's futex words beside emulated
tasks parked on the same words, then the same wakes, requeues, wake_ops and PI unlocks on
both (:class:`TaskDiffer`).

Workers.  A scenario names its workers (:class:`HostWorker`: a thread of this process,
SCHED_OTHER or SCHED_FIFO at a priority) and its steps: stores, and system calls made by
the main thread (:data:`MAIN`, the emulated process's first task, with the same tid) or
by worker ``k`` (an emulated task with worker ``k``'s tid and scheduling class).  Words
may name a task (:class:`Tid`), so PI words hold the same value on both sides.

A step, in order:

1. the call, on the emulator first: the main task's call must not block; a worker's call
   that blocks becomes a :class:`~futex.linux.PendingWait`, whose settling is recorded in
   the order it happens;
2. the same call on the host: the main thread's directly; a worker's by the worker thread,
   and the harness waits *for a state*, never for a time: the call returned, or
   ``/proc/self/task/<tid>/stat`` shows the worker sleeping (state ``S``) with
   ``/proc/self/task/<tid>/syscall`` showing this call (its number, first two registers).
   (A task the kernel has woken is running or TASK_WAKING, shown ``R``, before the waking
   call returns: ``wake_up_q`` runs before the waker leaves the kernel);
3. who woke: on the emulator, the waits that settled during the step, in settling order;
   on the host, the workers that no longer sleep in their call once the step's call has
   returned (then their call's result, once each returned).  The two must name the same
   workers, with the same results.  A step that wakes one worker fixes the order;
   scenarios wake one at a time where the order is the point (FIFO among equal
   priorities, priority order, requeued waiters behind the target's own);
4. every readable page of the layout compared (the words afterwards).

A scenario must end with every worker's call returned on both sides; whatever is left
(after a disagreement) is ended: plain waits by SIGUSR1 (the watchdog's no-op handler
without SA_RESTART: EINTR), PI waits by unlocking their word as its owner.

Across fork: ``fork``.  Seeded random scripts: ``scripts``.
"""

from __future__ import annotations

import contextlib
import functools
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from futex.linux import PendingWait, Task, abi
from tests.differential.harness.differ import compare_memory
from tests.differential.harness.emulated import Emulated
from tests.differential.harness.host import host_syscall
from tests.differential.harness.host_layout import HostLayout
from tests.differential.harness.layout import U32
from tests.differential.harness.mismatch import ScenarioMismatch
from tests.differential.harness.steps import (
    FUTEX2_NAMES,
    SYS_FUTEX,
    At,
    Current,
    Symbols,
    describe_op,
)
from tests.differential.harness.workers import STATE_TIMEOUT, HostWorker, Sched, wait_for

__all__ = [
    "BLOCKS",
    "MAIN",
    "Outcome",
    "Ptr",
    "Set",
    "Signal",
    "Step",
    "TaskCall",
    "TaskDiffer",
    "Tid",
    "View",
]

#: The main thread (the emulated process's first task).
MAIN = -1
BLOCKS = "blocks"
TID_MASK = abi.FUTEX_TID_MASK


@dataclass(frozen=True)
class Tid:
    """A word naming task ``who`` (:data:`MAIN` or a worker's index), or'd with ``bits``."""

    who: int
    bits: int = 0

    def __repr__(self) -> str:
        who = "main" if self.who == MAIN else f"w{self.who}"
        return who + (f"|{self.bits:#x}" if self.bits else "")


@dataclass(frozen=True)
class Ptr:
    """Half of a layout address, as a word: the low 32 bits, or the high ones (to build
    a ``struct futex_waitv`` with :class:`Set` s)."""

    addr: At
    high: bool = False


Arg = At | int | Current | Tid


@dataclass(frozen=True)
class Set:
    """Store a word (``value`` may name a task, or be half an address) on both sides."""

    addr: At
    value: int | Tid | Ptr


@dataclass(frozen=True)
class TaskCall:
    """System call ``nr`` (``SYS_FUTEX`` or a futex2 one) made by ``who`` (:data:`MAIN` or
    a worker's index) with register values: layout addresses, ints, the word somewhere
    now (:class:`Current`), a task's tid (:class:`Tid`)."""

    who: int
    nr: int
    args: tuple[Arg, ...]

    def __repr__(self) -> str:
        who = "main" if self.who == MAIN else f"w{self.who}"
        if self.nr == SYS_FUTEX and isinstance(self.args[1], int):
            name = describe_op(self.args[1])
            shown = [self.args[0], *self.args[2:]]
        else:
            name, shown = FUTEX2_NAMES.get(self.nr, f"syscall {self.nr}"), list(self.args)
        text = ", ".join(hex(a) if isinstance(a, int) else repr(a) for a in shown)
        return f"{who}: {name}({text})"


@dataclass(frozen=True)
class Signal:
    """SIGUSR1 to worker ``who`` (a handler, no SA_RESTART): a blocked call ends (EINTR,
    EWOULDBLOCK for a requeued requeue-PI wait) or restarts (PI locks, a requeue-PI wait
    still on its condition word: ERESTARTNOINTR)."""

    who: int

    def __repr__(self) -> str:
        return f"signal w{self.who}"


Step = Set | TaskCall | Signal
#: A worker's scheduling class: None (SCHED_OTHER) or (SCHED_FIFO / SCHED_RR, priority).


@dataclass
class Outcome:
    """One side's answer to a step: the call's result (or ``"blocks"``) and the workers
    woken meanwhile, with their results (emulator: in settling order)."""

    result: object
    woken: list[tuple[int, int]]

    def key(self) -> tuple[object, list[tuple[int, int]]]:
        return self.result, sorted(self.woken)

    def __str__(self) -> str:
        woke = ", ".join(f"w{k}->{r}" for k, r in self.woken)
        return f"{self.result}" + (f"; woke {woke}" if woke else "")


class TaskDiffer:
    """Runs multi-task scenarios on the host (threads) and the emulator (tasks) over the
    host ``layout`` (the single-task differ's)."""

    def __init__(self, layout: HostLayout) -> None:
        self.layout = layout
        self.symbols = Symbols(layout)
        #: steps run, and workers woken, over all scenarios (for the tests' counts)
        self.steps = 0
        self.wakeups = 0

    def run(
        self,
        workers: Sequence[Sched],
        steps: Sequence[Step] | Callable[[View], Iterable[Step]],
        pi_words: Sequence[tuple[At, int]] = (),
    ) -> list[Outcome | None]:
        """Run ``steps`` with ``workers``; return the host's outcome of each step (``None``
        for a store), which the emulator's matched.  Raises :class:`ScenarioMismatch` (with
        the trace: each step, both sides' outcomes) on a disagreement.  ``pi_words``:
        (word, PRIVATE flag or 0) that workers may still wait on after a disagreement, to
        unlock as their owner.  ``steps`` may be a function of a :class:`View` of the
        run, for scripts that choose each step by what is blocked now."""
        emu = Emulated.fresh(self.layout)
        hosts = [HostWorker(s, f"futex-diff-w{k}") for k, s in enumerate(workers)]
        state = _Run(self, emu, hosts, workers)
        trace: list[str] = []
        outcomes: list[Outcome | None] = []
        try:
            for w in hosts:
                if w.sched_error is not None:
                    raise ScenarioMismatch(f"harness: worker scheduling: {w.sched_error}")
            script = steps(View(state)) if callable(steps) else steps
            for i, step in enumerate(script):
                line = f"[{i}] {step!r}"
                if isinstance(step, Set):
                    value = state.word(step.value)
                    addr = self.symbols.resolve(step.addr)
                    self.layout.store(addr, value)
                    emu.process.write(addr, struct.pack("<I", value))
                    outcomes.append(None)
                else:
                    host, emulated = (
                        state.signal(step.who) if isinstance(step, Signal) else state.call(step)
                    )
                    self.steps += 1
                    self.wakeups += len(host.woken)
                    outcomes.append(host)
                    line += f"\n      host: {host}\n      emulator: {emulated}"
                    if host.key() != emulated.key():
                        trace.append(line + "   <-- differ")
                        raise ScenarioMismatch(_report("results or wakeups differ", trace))
                trace.append(line)
                bad = compare_memory(self.layout, emu, i, step)  # type: ignore[arg-type]
                if bad is not None:
                    raise ScenarioMismatch(_report(bad.detail, trace))
            left = state.left()
            if left:
                raise ScenarioMismatch(_report(f"calls left blocked: {left}", trace))
            emu.process.futex.check_invariants()
            if emu.process.futex.stats().queued:
                raise ScenarioMismatch(_report("emulated waiters left queued", trace))
        finally:
            state.cleanup(pi_words)
            for w in hosts:
                w.close()
        return outcomes


class View:
    """What a script may look at while it runs: which workers' calls are blocked (the
    emulator's view; the host's agrees, or the run has stopped) and the words."""

    def __init__(self, state: _Run) -> None:
        self._state = state

    def blocked(self) -> set[int]:
        return set(self._state.pending)

    def word(self, addr: At) -> int:
        return self._state.emu.process.load_u32(self._state.symbols.resolve(addr))

    def tid(self, who: int) -> int:
        return self._state.tid(who)


def _any(pred: Callable[[int], bool], items: list[int]) -> bool:
    return any(map(pred, items))


def _report(what: str, trace: list[str]) -> str:
    return f"{what}\n" + "\n".join(trace)


class _Run:
    """One scenario's state on both sides."""

    def __init__(
        self, owner: TaskDiffer, emu: Emulated, hosts: list[HostWorker], workers: Sequence[Sched]
    ) -> None:
        self.symbols = owner.symbols
        self.layout = owner.layout
        self.emu = emu
        self.hosts = hosts
        self.tasks: list[Task] = []
        for w, sched in zip(hosts, workers, strict=True):
            policy, prio = sched if sched is not None else (abi.SCHED_OTHER, 0)
            self.tasks.append(emu.process.new_task(tid=w.tid, policy=policy, priority=prio))
        #: emulated waits in flight, by worker; the order they settled in
        self.pending: dict[int, PendingWait] = {}
        self.settled: list[int] = []
        #: host workers whose call sleeps
        self.sleeping: set[int] = set()

    def tid(self, who: int) -> int:
        return self.symbols.self_tid if who == MAIN else self.hosts[who].tid

    def word(self, v: int | Tid | Ptr) -> int:
        if isinstance(v, Ptr):
            a = self.symbols.resolve(v.addr)
            return a >> 32 if v.high else a & U32
        return (self.tid(v.who) | v.bits) & U32 if isinstance(v, Tid) else v & U32

    def arg(self, a: Arg) -> int:
        if isinstance(a, Tid):
            return self.word(a)
        return self.symbols.arg(self.emu, a)

    def call(self, step: TaskCall) -> tuple[Outcome, Outcome]:
        args = tuple(self.arg(a) for a in step.args)
        before = len(self.settled)
        task = self.emu.task if step.who == MAIN else self.tasks[step.who]
        try:
            r = task.syscall_nb(step.nr, *args)
        except Exception as exc:  # the emulator raised: report it as its answer
            r = -1_000_000
            emu_result: object = f"raised {exc!r}"
        else:
            emu_result = BLOCKS if isinstance(r, PendingWait) else r
        if isinstance(r, PendingWait):
            if step.who == MAIN:
                r.kill()
                raise ScenarioMismatch(f"harness: the main task's call blocks: {step!r}")
            self.pending[step.who] = r
            r.add_done_callback(functools.partial(self._settled, step.who))
        if step.who == MAIN:
            host_result: object = host_syscall(step.nr, *args)
        else:
            w = self.hosts[step.who]
            job = w.submit(step.nr, args)
            w.settle()
            if job.done.is_set():
                host_result = job.result
            else:
                host_result = BLOCKS
                self.sleeping.add(step.who)
        # (a call that blocked cannot have settled during its own step)
        emu_woken = self.settled[before:]
        emulated = Outcome(emu_result, [(k, self.pending.pop(k).result()) for k in emu_woken])
        return Outcome(host_result, self._host_woken(step.who)), emulated

    def _settled(self, k: int, _pending: object) -> None:
        self.settled.append(k)

    def signal(self, k: int) -> tuple[Outcome, Outcome]:
        """Signal worker ``k`` (blocked) on both sides: its call's result, or ``"blocks"``
        if it restarted.  On the host, tgkill has woken it before it returns, so it next
        either returns or sleeps in its call again."""
        pending = self.pending.get(k)
        assert pending is not None and k in self.sleeping, f"signal: worker {k} is not blocked"
        before = len(self.settled)
        self.tasks[k].interrupt(handler=True)
        emulated = Outcome(
            BLOCKS, [(j, self.pending.pop(j).result()) for j in self.settled[before:]]
        )
        w = self.hosts[k]
        job = w.job
        assert job is not None
        w.signal()
        w.settle()
        host = Outcome(BLOCKS, self._host_woken(-2))
        if k in dict(emulated.woken) and k in dict(host.woken):  # ended: its result
            emulated = Outcome(dict(emulated.woken)[k], [x for x in emulated.woken if x[0] != k])
            host = Outcome(dict(host.woken)[k], [x for x in host.woken if x[0] != k])
        return host, emulated

    def _host_woken(self, caller: int) -> list[tuple[int, int]]:
        """The sleeping workers that no longer sleep (the step's call has returned: the
        kernel woke them before), each with its call's result once it returned."""
        woken = sorted(k for k in self.sleeping if k != caller and not self.hosts[k].asleep())
        out = []
        for k in woken:
            job = self.hosts[k].job
            assert job is not None
            wait_for(job.done.is_set, f"woken worker {k} returns from its call")
            assert job.result is not None
            out.append((k, job.result))
            self.sleeping.discard(k)
        return out

    def left(self) -> str:
        parts = []
        if self.sleeping:
            parts.append(f"host workers {sorted(self.sleeping)}")
        if self.pending:
            parts.append(f"emulated workers {sorted(self.pending)}")
        return ", ".join(parts)

    def cleanup(self, pi_words: Sequence[tuple[At, int]]) -> None:
        """End whatever is still blocked: emulated waits killed; host plain waits
        signalled (EINTR), PI waits handed their lock by its owner, requeue-PI waits still
        on their condition word made to fail their restart (word changed, signal)."""
        for p in self.pending.values():
            p.kill()
        self.pending.clear()
        layout = self.layout

        def returned(k: int) -> bool:
            job = self.hosts[k].job
            return job is None or job.done.is_set()

        for _ in range(50):
            asleep = [k for k in self.sleeping if not returned(k)]
            if not asleep:
                break
            for k in asleep:
                job = self.hosts[k].job
                assert job is not None
                cmd = job.args[1] & abi.FUTEX_CMD_MASK if job.nr == SYS_FUTEX else -1
                if cmd == abi.FUTEX_WAIT_REQUEUE_PI and layout.word_at(job.args[0]) is not None:
                    layout.store(job.args[0], (layout.word_at(job.args[0]) or 0) ^ 1)
                self.hosts[k].signal()
            for addr, flags in pi_words:
                a = self.symbols.resolve(addr)
                owner = (layout.word_at(a) or 0) & TID_MASK
                unlock = (a, abi.FUTEX_UNLOCK_PI | flags, 0, 0, 0, 0)
                if owner == self.symbols.self_tid:
                    host_syscall(SYS_FUTEX, *unlock)
                for w in self.hosts:
                    if owner == w.tid and (w.job is None or w.job.done.is_set()):
                        w.submit(SYS_FUTEX, unlock).done.wait(STATE_TIMEOUT)
            with contextlib.suppress(ScenarioMismatch):
                wait_for(functools.partial(_any, returned, asleep), "progress", 0.5)
        self.sleeping.clear()
