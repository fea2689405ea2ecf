"""Differential harness for several tasks: real threads (and real forked children) parked
on the layout's futex words beside emulated tasks parked on the same words, then the same
wakes, requeues, wake_ops and PI unlocks on both.

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

Fork (:class:`ForkCase`): a real ``os.fork()`` child and an emulated ``Process.fork()``
child on the same layout.  One side sleeps in a futex call (the child, or a worker thread
of the parent, parked before the fork), the other makes its calls once ``/proc`` shows it
asleep; a sleeper still asleep after them gets a signal (EINTR).  The child's results
come back through a pipe; the calls' results, the sleeper's results (and whether it
needed the signal) and the parent's pages must agree.  Shared futexes on MAP_SHARED
memory meet across fork; private ones, and shared ones on private memory (copied on
write: keyed by the address space), do not.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import random
import signal
import struct
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from futex.linux import PendingWait, Task, abi
from tests.differential.differential_diff import Differ
from tests.differential.differential_emulated import Emulated
from tests.differential.differential_host import _proc_args, gettid, host_syscall
from tests.differential.differential_layout import U32, timespec_page
from tests.differential.differential_steps import (
    FUTEX2_NAMES,
    SYS_FUTEX,
    SYS_REQUEUE,
    SYS_WAIT,
    SYS_WAITV,
    SYS_WAKE,
    At,
    Current,
    describe_op,
)

__all__ = [
    "MAIN",
    "ForkCase",
    "Ptr",
    "ForkSide",
    "HostWorker",
    "ScenarioMismatch",
    "Set",
    "Signal",
    "TaskCall",
    "TaskDiffer",
    "Tid",
    "SCRIPT_PI",
    "RandomScript",
    "run_fork_case",
    "sched_fifo_unavailable",
]

#: The main thread (the emulated process's first task).
MAIN = -1
#: Generous bound for a state to be reached (a thread asleep, a call returned).
STATE_TIMEOUT = 30.0
BLOCKS = "blocks"
TID_MASK = abi.FUTEX_TID_MASK


class ScenarioMismatch(AssertionError):
    """Host and emulator disagree (or the harness could not make them meet)."""


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
Sched = tuple[int, int] | None


# -- /proc -------------------------------------------------------------------------------------


def asleep_in(task_dir: str, signature: Sequence[str]) -> bool:
    """Whether the task at ``task_dir`` (``/proc/<pid>/task/<tid>``) sleeps (state S) in
    the system call ``signature`` (``_proc_args``: number, first two registers)."""
    try:
        with open(f"{task_dir}/stat") as f:
            stat = f.read()
        if stat[stat.rindex(")") + 2 :].split(" ", 1)[0] != "S":
            return False
        with open(f"{task_dir}/syscall") as f:
            fields = f.read().split()
    except (OSError, ValueError):
        return False  # gone
    return fields[: len(signature)] == list(signature)


def wait_for(cond: Callable[[], bool], what: str, timeout: float = STATE_TIMEOUT) -> None:
    """Poll until ``cond()`` holds; raise after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise ScenarioMismatch(f"harness: timed out waiting until {what}")
        time.sleep(0.0002)


def sched_fifo_unavailable(priority: int) -> str:
    """Why threads here cannot use SCHED_FIFO at ``priority`` (it needs CAP_SYS_NICE, or an
    RLIMIT_RTPRIO at least that high), or "" if they can."""
    why: list[str] = []

    def probe() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        except OSError as exc:
            why.append(f"sched_setscheduler(SCHED_FIFO, {priority}) is refused here: {exc}")

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    return why[0] if why else ""


# -- host workers --------------------------------------------------------------------------------


@dataclass
class Job:
    """One call a worker makes."""

    nr: int
    args: tuple[int, ...]
    result: int | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def signature(self) -> list[str]:
        return _proc_args(self.nr, self.args)


class HostWorker:
    """A thread of this process that makes system calls on request, one at a time; with
    ``sched``, it sets its own scheduling class first (``sched_error`` if refused)."""

    def __init__(self, sched: Sched = None, name: str = "futex-diff-worker") -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.tid = 0
        self.sched_error: OSError | None = None
        self.job: Job | None = None  # the last one submitted
        ready = threading.Event()

        def run() -> None:
            self.tid = gettid()
            if sched is not None:
                try:
                    os.sched_setscheduler(0, sched[0], os.sched_param(sched[1]))
                except OSError as exc:
                    self.sched_error = exc
            ready.set()
            while (job := self._jobs.get()) is not None:
                job.result = host_syscall(job.nr, *job.args)
                job.done.set()

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()
        ready.wait()
        self.ident = self._thread.ident or 0
        self.task_dir = f"/proc/self/task/{self.tid}"

    def submit(self, nr: int, args: tuple[int, ...]) -> Job:
        assert self.job is None or self.job.done.is_set(), "worker busy"
        self.job = Job(nr, args)
        self._jobs.put(self.job)
        return self.job

    def asleep(self) -> bool:
        """Whether the worker sleeps in its last job's call."""
        job = self.job
        return job is not None and not job.done.is_set() and asleep_in(self.task_dir, job.signature)

    def settle(self) -> None:
        """Wait until the last job returned or sleeps in its call."""
        job = self.job
        assert job is not None
        wait_for(lambda: job.done.is_set() or self.asleep(), f"worker {self.tid} settles")

    def signal(self) -> None:
        signal.pthread_kill(self.ident, signal.SIGUSR1)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(STATE_TIMEOUT)


# -- the runner ------------------------------------------------------------------------------------


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
    single-task :class:`Differ`'s layout."""

    def __init__(self, differ: Differ) -> None:
        self.differ = differ
        self.layout = differ.layout
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
        differ = self.differ
        mono, rt = time.monotonic_ns(), time.time_ns()
        timespecs = timespec_page(mono, rt)
        self.layout.reset(timespecs)
        emu = Emulated(self.layout.base, timespecs, mono, rt, differ.self_tid, differ.peer_tid)
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
                    addr = differ.resolve(step.addr)
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
                bad = differ._compare_memory(emu, i, step)  # type: ignore[arg-type]
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
        return self._state.emu.process.load_u32(self._state.differ.resolve(addr))

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
        self.differ = owner.differ
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
        return self.differ.self_tid if who == MAIN else self.hosts[who].tid

    def word(self, v: int | Tid | Ptr) -> int:
        if isinstance(v, Ptr):
            a = self.differ.resolve(v.addr)
            return a >> 32 if v.high else a & U32
        return (self.tid(v.who) | v.bits) & U32 if isinstance(v, Tid) else v & U32

    def arg(self, a: Arg) -> int:
        if isinstance(a, Tid):
            return self.word(a)
        return self.differ.arg(self.emu, a)

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
        layout = self.differ.layout

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
                a = self.differ.resolve(addr)
                owner = (layout.word_at(a) or 0) & TID_MASK
                unlock = (a, abi.FUTEX_UNLOCK_PI | flags, 0, 0, 0, 0)
                if owner == self.differ.self_tid:
                    host_syscall(SYS_FUTEX, *unlock)
                for w in self.hosts:
                    if owner == w.tid and (w.job is None or w.job.done.is_set()):
                        w.submit(SYS_FUTEX, unlock).done.wait(STATE_TIMEOUT)
            with contextlib.suppress(ScenarioMismatch):
                wait_for(functools.partial(_any, returned, asleep), "progress", 0.5)
        self.sleeping.clear()


# -- fork ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForkSide:
    """A futex call of a fork case: register values as for :class:`TaskCall` (no
    :class:`Tid` but ``Tid(MAIN)``, the parent's main thread)."""

    uaddr: At
    op: int
    val: int | Current = 0
    utime: int = 0
    uaddr2: At | int = 0
    val3: int | Current | Tid = 0

    def __repr__(self) -> str:
        return (
            f"{describe_op(self.op)}({self.uaddr!r}, val={self.val!r}, "
            f"uaddr2={self.uaddr2!r}, val3={self.val3!r})"
        )


@dataclass(frozen=True)
class ForkCase:
    """``sleeper`` (``"child"`` or ``"parent"``) makes ``wait``; once it sleeps, the other
    side makes ``wakes``; a sleeper still asleep then gets a signal; after its call
    returned it makes ``after`` (e.g. UNLOCK_PI of the lock it took).  ``stores`` are
    made (both sides) before anything."""

    sleeper: str
    wait: ForkSide
    wakes: tuple[ForkSide, ...]
    after: tuple[ForkSide, ...] = ()
    stores: tuple[tuple[At, int | Tid], ...] = ()


@dataclass
class ForkResult:
    """What a fork case saw: the waker's results, whether the sleeper needed the signal,
    the sleeper's results (its wait, then ``after``)."""

    wakes: list[int]
    signalled: bool
    sleeper: list[int]


@contextlib.contextmanager
def _forked(child: Callable[[], list[int]]) -> Iterator[tuple[int, Callable[[], list[int]]]]:
    """Fork; the child runs ``child()`` and sends its results through a pipe, then exits
    (whatever happens: it never returns into the test).  Yields the child's pid and a
    function that reads the results (and reaps the child)."""
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(r)
            os.write(w, " ".join(map(str, child())).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)

    def results() -> list[int]:
        chunks = []
        while chunk := os.read(r, 4096):
            chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise ScenarioMismatch(f"harness: the child exited with status {status:#x}")
        return [int(x) for x in b"".join(chunks).split()]

    try:
        yield pid, results
    finally:
        os.close(r)
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG) == (0, 0):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)


def run_fork_case(differ: Differ, case: ForkCase) -> tuple[ForkResult, ForkResult]:
    """Run ``case`` on the host (a real fork) and the emulator (``Process.fork``); return
    (host, emulator) results, after comparing the parent's pages (raises
    :class:`ScenarioMismatch` if they differ)."""
    layout = differ.layout
    mono, rt = time.monotonic_ns(), time.time_ns()
    timespecs = timespec_page(mono, rt)
    layout.reset(timespecs)
    emu = Emulated(layout.base, timespecs, mono, rt, differ.self_tid, differ.peer_tid)

    def regs(c: ForkSide) -> tuple[int, ...]:
        def v(a: int | At | Current | Tid) -> int:
            if isinstance(a, Tid):
                assert a.who == MAIN
                return (differ.self_tid | a.bits) & U32
            return differ.arg(emu, a)

        return (v(c.uaddr), c.op, v(c.val), c.utime, v(c.uaddr2), v(c.val3))

    for addr, value in case.stores:
        a = differ.resolve(addr)
        word = (differ.self_tid | value.bits) & U32 if isinstance(value, Tid) else value & U32
        layout.store(a, word)
        emu.process.write(a, struct.pack("<I", word))
    wait = regs(case.wait)
    wakes, after = [regs(c) for c in case.wakes], [regs(c) for c in case.after]
    if case.sleeper == "child":
        host = _host_child_sleeps(wait, wakes, after)
    else:
        host = _host_parent_sleeps(wait, wakes, after)
    emulated = _emulated(emu, case.sleeper, host[1], wait, wakes, after)
    bad = differ._compare_memory(emu, 0, None)  # type: ignore[arg-type]
    if bad is not None:
        raise ScenarioMismatch(f"{bad.detail}\n  host: {host[0]}\n  emulator: {emulated}")
    return host[0], emulated


def _futex(args: tuple[int, ...]) -> int:
    return host_syscall(SYS_FUTEX, *args)


def _host_child_sleeps(
    wait: tuple[int, ...], wakes: list[tuple[int, ...]], after: list[tuple[int, ...]]
) -> tuple[ForkResult, int]:
    def child() -> list[int]:
        return [_futex(wait), *(_futex(a) for a in after)]

    signature = _proc_args(SYS_FUTEX, wait)
    with _forked(child) as (pid, results):
        task_dir = f"/proc/{pid}/task/{pid}"
        wait_for(
            lambda: asleep_in(task_dir, signature) or _gone(task_dir),
            "the child sleeps in its call (or exits)",
        )
        got = [_futex(a) for a in wakes] if asleep_in(task_dir, signature) else []
        signalled = asleep_in(task_dir, signature)
        if signalled:
            os.kill(pid, signal.SIGUSR1)
        return ForkResult(got, signalled, results()), pid


def _gone(task_dir: str) -> bool:
    """Whether the task has exited (a zombie, or reaped)."""
    try:
        with open(f"{task_dir}/stat") as f:
            stat = f.read()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2 :].split(" ", 1)[0] in ("Z", "X")


def _host_parent_sleeps(
    wait: tuple[int, ...], wakes: list[tuple[int, ...]], after: list[tuple[int, ...]]
) -> tuple[ForkResult, int]:
    worker = HostWorker(name="futex-diff-fork-sleeper")
    try:
        job = worker.submit(SYS_FUTEX, wait)
        worker.settle()
        if job.done.is_set():
            assert job.result is not None
            return ForkResult([], False, [job.result, *(_futex(a) for a in after)]), 0
        with _forked(lambda: [_futex(a) for a in wakes]) as (pid, results):
            got = results()
        signalled = worker.asleep()
        if signalled:
            worker.signal()
        wait_for(job.done.is_set, "the parent's sleeper returns")
        assert job.result is not None
        sleeper = [job.result]
        for a in after:
            j = worker.submit(SYS_FUTEX, a)
            wait_for(j.done.is_set, "the parent's sleeper makes its next call")
            assert j.result is not None
            sleeper.append(j.result)
        return ForkResult(got, signalled, sleeper), pid
    finally:
        worker.close()


def _emulated(
    emu: Emulated,
    sleeper: str,
    child_pid: int,
    wait: tuple[int, ...],
    wakes: list[tuple[int, ...]],
    after: list[tuple[int, ...]],
) -> ForkResult:
    if sleeper == "child":
        child = emu.process.fork()
        sleeping = child.new_task(tid=child_pid or None)
        r = sleeping.syscall_futex_nb(*wait)
        waker = emu.task
    else:
        sleeping = emu.process.new_task()
        r = sleeping.syscall_futex_nb(*wait)
        if not isinstance(r, PendingWait):
            return ForkResult([], False, [r, *(_int(sleeping.syscall_futex_nb(*a)) for a in after)])
        child = emu.process.fork()
        waker = child.new_task(tid=child_pid or None)
    if not isinstance(r, PendingWait):
        return ForkResult([], False, [r, *(_int(sleeping.syscall_futex_nb(*a)) for a in after)])
    got = []
    for a in wakes:
        got.append(_int(waker.syscall_futex_nb(*a)))
    signalled = not r.done()
    if signalled:
        sleeping.interrupt(handler=True)
    if not r.done():
        r.kill()
        return ForkResult(got, signalled, [-1_000_000])
    rest = [_int(sleeping.syscall_futex_nb(*a)) for a in after]
    return ForkResult(got, signalled, [r.result(), *rest])


def _int(r: int | PendingWait) -> int:
    if isinstance(r, PendingWait):
        r.kill()
        return -1_000_000  # "blocked": no host call here blocks
    return r


# -- random scripts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RandomScript:
    """A seeded random multi-task script: ``steps`` choices among waits (FUTEX_WAIT,
    WAIT_BITSET, futex_wait, futex_waitv, LOCK_PI, WAIT_REQUEUE_PI) by idle workers and
    wakes, requeues, wake_ops, PI unlocks and trylocks, stores, by the main thread or an
    idle worker, and signals to blocked workers, over a few words (a shared anonymous
    page, a private one, a shared file page and its read-only alias; PRIVATE or not) and
    one PI word (its flag fixed per script); then an ending that wakes and unlocks until
    no call is blocked."""

    seed: int
    workers: int = 4
    steps: int = 24

    @property
    def pi_flag(self) -> int:
        return abi.FUTEX_PRIVATE_FLAG if self.seed & 1 else 0

    def __call__(self, view: View) -> Iterator[Step]:
        return _random_script(random.Random(self.seed), self, view)


#: The random scripts' plain words (the last one: the file page again, read-only alias).
SCRIPT_WORDS = (
    At(5, 0x300),  # SHARED_RW
    At(5, 0x304),
    At(0, 0x300),  # PRIV_RW
    At(7, 0x300),  # FILE_SHARED_RW
)
SCRIPT_ALIAS = {At(7, 0x300): At(8, 0x300)}  # FILE_SHARED_RO
SCRIPT_PI = At(5, 0x380)


#: Main's futex_requeue vector (PRIV_RW); worker k's futex_waitv vector is ``_vector(k)``.
MAIN_VECTOR = At(0, 0x3C0)


def _vector(k: int) -> At:
    return At(0, 0x400 + 0x40 * k)


_F = abi.FUTEX_PRIVATE_FLAG
_ANY = abi.FUTEX_BITSET_MATCH_ANY
_INT_MAX = 0x7FFFFFFF


def _random_script(rng: random.Random, spec: RandomScript, view: View) -> Iterator[Step]:
    pif = spec.pi_flag
    words = SCRIPT_WORDS

    def fx(
        who: int, uaddr: At, op: int, val: Arg = 0, t: Arg = 0, u2: Arg = 0, v3: Arg = 0
    ) -> TaskCall:
        return TaskCall(who, SYS_FUTEX, (uaddr, op, val, t, u2, v3))

    def flag() -> int:
        return _F if rng.random() < 0.5 else 0

    def f2(f: int) -> int:
        return abi.FUTEX2_SIZE_U32 | (abi.FUTEX2_PRIVATE if f else 0)

    def some_word(waker: bool = False) -> At:
        w = rng.choice(words)
        return SCRIPT_ALIAS.get(w, w) if waker and w in SCRIPT_ALIAS and rng.random() < 0.5 else w

    def vector(vec: At, entries: list[tuple[At, int]]) -> Iterator[Step]:
        """``struct futex_waitv`` entries {val = the word now, uaddr, flags} at ``vec``."""
        for i, (a, fl) in enumerate(entries):
            base = At(vec.page, vec.off + 24 * i)
            yield Set(base, view.word(a))
            yield Set(At(base.page, base.off + 4), 0)
            yield Set(At(base.page, base.off + 8), Ptr(a))
            yield Set(At(base.page, base.off + 12), Ptr(a, True))
            yield Set(At(base.page, base.off + 16), fl)
            yield Set(At(base.page, base.off + 20), 0)

    def owner() -> int | None:
        tid = view.word(SCRIPT_PI) & TID_MASK
        if tid == view.tid(MAIN):
            return MAIN
        for k in range(spec.workers):
            if tid == view.tid(k):
                return k
        return None

    def wait(k: int) -> Iterator[Step]:
        a, f = some_word(), flag()
        kind = rng.choice("wwwbbfvlllqqs")
        if kind == "w":
            yield fx(k, a, abi.FUTEX_WAIT | f, Current(a))
        elif kind == "s":  # a stale value: EAGAIN
            yield fx(k, a, abi.FUTEX_WAIT | f, Current(a, 1))
        elif kind == "b":
            yield fx(k, a, abi.FUTEX_WAIT_BITSET | f, Current(a), 0, 0, rng.choice([1, 2, 3, _ANY]))
        elif kind == "f":
            yield TaskCall(k, SYS_WAIT, (a, Current(a), rng.choice([1, 2, _ANY]), f2(f), 0, 0))
        elif kind == "v":
            b, g = some_word(), flag()
            yield from vector(_vector(k), [(a, f2(f)), (b, f2(g))])
            yield TaskCall(k, SYS_WAITV, (_vector(k), 2, 0, 0, 0))
        elif kind == "l":
            yield fx(k, SCRIPT_PI, rng.choice([abi.FUTEX_LOCK_PI, abi.FUTEX_LOCK_PI2]) | pif)
        elif owner() != k:  # a requeue-PI waiter never owns the target (it could not end)
            yield fx(k, a, abi.FUTEX_WAIT_REQUEUE_PI | pif, Current(a), 0, SCRIPT_PI)

    def act(who: int) -> Iterator[Step]:
        a, b, f = some_word(True), some_word(True), flag()
        n = rng.choice([1, 1, 1, 2, _INT_MAX, 0])
        kind = rng.choice("wwwbrrccoopqQuuttsS")
        if kind == "w":
            yield fx(who, a, abi.FUTEX_WAKE | f, n)
        elif kind == "b":
            yield fx(who, a, abi.FUTEX_WAKE_BITSET | f, n, 0, 0, rng.choice([1, 2, 4, _ANY]))
        elif kind == "r":
            yield fx(
                who, a, abi.FUTEX_REQUEUE | f, rng.choice([0, 1]), rng.choice([1, 2, _INT_MAX]), b
            )
        elif kind == "c":
            v3 = Current(a) if rng.random() < 0.8 else Current(a, 1)
            yield fx(
                who,
                a,
                abi.FUTEX_CMP_REQUEUE | f,
                rng.choice([0, 1]),
                rng.choice([1, _INT_MAX]),
                b,
                v3,
            )
        elif kind == "o":
            op = abi.FUTEX_OP(
                rng.choice([abi.FUTEX_OP_SET, abi.FUTEX_OP_ADD, abi.FUTEX_OP_XOR]),
                rng.choice([0, 1, 2]),
                rng.choice([abi.FUTEX_OP_CMP_EQ, abi.FUTEX_OP_CMP_NE, abi.FUTEX_OP_CMP_GT]),
                rng.choice([0, 1]),
            )
            yield fx(who, a, abi.FUTEX_WAKE_OP | f, n, rng.choice([0, 1, 2]), b, op)
        elif kind == "p":
            yield TaskCall(who, SYS_WAKE, (a, rng.choice([1, 2, _ANY]), n, f2(f)))
        elif kind == "q":
            yield from vector(MAIN_VECTOR, [(a, f2(f)), (b, f2(f))])
            yield TaskCall(who, SYS_REQUEUE, (MAIN_VECTOR, 0, rng.choice([0, 1]), 1))
        elif kind == "Q":
            v3 = Current(a) if rng.random() < 0.9 else Current(a, 1)
            yield fx(
                who,
                a,
                abi.FUTEX_CMP_REQUEUE_PI | pif,
                1,
                rng.choice([0, 1, _INT_MAX]),
                SCRIPT_PI,
                v3,
            )
        elif kind == "u":
            holder = owner()
            if holder is not None and holder not in view.blocked():
                yield fx(holder, SCRIPT_PI, abi.FUTEX_UNLOCK_PI | pif)
            else:
                yield fx(who, SCRIPT_PI, abi.FUTEX_UNLOCK_PI | pif)
        elif kind == "t":
            yield fx(who, SCRIPT_PI, abi.FUTEX_TRYLOCK_PI | pif)
        elif kind == "S" and view.blocked():
            yield Signal(rng.choice(sorted(view.blocked())))
        else:
            yield Set(rng.choice(words), rng.choice([0, 1, 2]))

    yield Set(SCRIPT_PI, Tid(MAIN) if rng.random() < 0.5 else 0)
    for w in words:
        yield Set(w, 0)
    for _ in range(spec.steps):
        idle = [k for k in range(spec.workers) if k not in view.blocked()]
        if idle and rng.random() < 0.5:
            yield from wait(rng.choice(idle))
        else:
            yield from act(rng.choice([MAIN, MAIN, *idle]))
    # the ending: wake every word (both key kinds), move requeue-PI waiters onto the PI
    # word, hand the PI word on, until nobody waits
    for _ in range(4 * spec.workers + 4):
        if not view.blocked():
            return
        for w in (*words, *SCRIPT_ALIAS.values()):  # (a PRIVATE requeue to the alias
            for f in (0, _F):  # makes a key of its own)
                yield fx(MAIN, w, abi.FUTEX_WAKE | f, _INT_MAX)
            yield fx(MAIN, w, abi.FUTEX_CMP_REQUEUE_PI | pif, 1, _INT_MAX, SCRIPT_PI, Current(w))
        holder = owner()
        if holder is not None and holder not in view.blocked():
            yield fx(holder, SCRIPT_PI, abi.FUTEX_UNLOCK_PI | pif)
