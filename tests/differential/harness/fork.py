"""Across fork: a real ``os.fork()`` child and an emulated ``Process.fork()`` child on the
same layout (:class:`ForkCase`, :func:`run_fork_case`).

One side sleeps in a futex call (the child, or a worker thread of the parent, parked before
the fork), the other makes its calls once ``/proc`` shows it asleep; a sleeper still asleep
after them gets a signal (EINTR).  The child's results come back through a pipe; the calls'
results, the sleeper's results (and whether it needed the signal) and the parent's pages
must agree.  Shared futexes on MAP_SHARED memory meet across fork; private ones, and shared
ones on private memory (copied on write: keyed by the address space), do not.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from futex.linux import PendingWait
from tests.differential.harness.differ import compare_memory
from tests.differential.harness.emulated import Emulated
from tests.differential.harness.host import host_syscall
from tests.differential.harness.host_layout import HostLayout
from tests.differential.harness.layout import U32
from tests.differential.harness.mismatch import ScenarioMismatch
from tests.differential.harness.proc import asleep_in, gone, proc_args
from tests.differential.harness.steps import SYS_FUTEX, At, Current, Symbols, describe_op
from tests.differential.harness.tasks import MAIN, Tid
from tests.differential.harness.workers import HostWorker, wait_for

__all__ = [
    "ForkCase",
    "ForkResult",
    "ForkSide",
    "run_fork_case",
]


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


def run_fork_case(layout: HostLayout, case: ForkCase) -> tuple[ForkResult, ForkResult]:
    """Run ``case`` on the host (a real fork) and the emulator (``Process.fork``) over
    ``layout``; return (host, emulator) results, after comparing the parent's pages
    (raises :class:`ScenarioMismatch` if they differ)."""
    symbols = Symbols(layout)
    emu = Emulated.fresh(layout)

    def regs(c: ForkSide) -> tuple[int, ...]:
        def v(a: int | At | Current | Tid) -> int:
            if isinstance(a, Tid):
                assert a.who == MAIN
                return (symbols.self_tid | a.bits) & U32
            return symbols.arg(emu, a)

        return (v(c.uaddr), c.op, v(c.val), c.utime, v(c.uaddr2), v(c.val3))

    for addr, value in case.stores:
        a = symbols.resolve(addr)
        word = (symbols.self_tid | value.bits) & U32 if isinstance(value, Tid) else value & U32
        layout.store(a, word)
        emu.process.write(a, struct.pack("<I", word))
    wait = regs(case.wait)
    wakes, after = [regs(c) for c in case.wakes], [regs(c) for c in case.after]
    if case.sleeper == "child":
        host = _host_child_sleeps(wait, wakes, after)
    else:
        host = _host_parent_sleeps(wait, wakes, after)
    emulated = _emulated(emu, case.sleeper, host[1], wait, wakes, after)
    bad = compare_memory(layout, emu, 0, None)  # type: ignore[arg-type]
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

    signature = proc_args(SYS_FUTEX, wait)
    with _forked(child) as (pid, results):
        task_dir = f"/proc/{pid}/task/{pid}"
        wait_for(
            lambda: asleep_in(task_dir, signature) or gone(task_dir),
            "the child sleeps in its call (or exits)",
        )
        got = [_futex(a) for a in wakes] if asleep_in(task_dir, signature) else []
        signalled = asleep_in(task_dir, signature)
        if signalled:
            os.kill(pid, signal.SIGUSR1)
        return ForkResult(got, signalled, results()), pid


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
