"""``install(ql)``: the futex family of a Qiling guest answered by :mod:`futex.linux`.

What is patched (all of it recorded and undone by :func:`uninstall`)
--------------------------------------------------------------------
- System call handlers (``ql.os.set_syscall``, QL_INTERCEPT.CALL): futex (202),
  set_robust_list / get_robust_list (273/274), futex_waitv (449), futex_wake / futex_wait /
  futex_requeue (454-456) -> one :class:`~futex.linux.Process` of a
  :class:`~futex.linux.LinuxKernel` whose memory is the guest's (:class:`GuestMemory`) and
  whose tasks carry the guest threads' tids; set_tid_address (218, recorded: Qiling drops
  it); exit (60) and exit_group (231) run Linux's futex exit path first (robust-list walk,
  PI hand-off, clear_child_tid store and shared wake on *this* kernel's queues), then
  Qiling's own -- except that exit_group from a thread other than the main one ends the
  whole process here (Qiling would end only that thread); clone3 (435) and rseq (334)
  answer -ENOSYS, so glibc falls back to clone;
  clock_gettime (228), clock_nanosleep (230) and nanosleep (35) read and sleep on the host's
  clocks at full precision (:mod:`~futex.integrations.qiling.timecalls`).
- One QL_INTERCEPT.EXIT hook on clone (56): the new thread's task is made at once, so a PI
  word naming a thread that never made a futex call still finds its owner (not ESRCH).
- ``ql.os.syscall_mapper``: Qiling's x86-64 table ends at 448 and raises KeyError for 449
  and 454-456 before it looks for a hook; the wrapper names those four.
- ``ql.os.futexm``: Qiling's own futex queue, used only by its thread-exit path; replaced
  by an adapter that wakes this kernel's queue, should a thread end without the exit call.

Blocking the Qiling way
-----------------------
A handler runs inside a unicorn callback, where no greenlet may switch.  A call that must
wait gets a :class:`~futex.kernel.blocking.PendingWait` from the kernel's cooperative form
(``task.syscall_nb``); the handler stops the emulation and sets the thread's ``sched_cb``.
Qiling calls it in the thread's own greenlet, after saving the context: it waits on a gevent
``Event`` set by the pending wait's done callback (a waker's handler or a timer on gevent's
loop: :class:`GeventClock`), then writes the call's late result (0, -ETIMEDOUT, waitv's
index, LOCK_PI's outcome) into the thread's *saved* context, which Qiling restores before
the thread runs again.  The wait is a plain gevent wait, so a guest whose threads all wait
for good still ends ``ql.run()`` with gevent's ``LoopExit``, as stock Qiling reports a
deadlock.

Not modelled: signals (Qiling delivers none, so no EINTR or restart), guests other than
x86-64, more than one process (a guest fork gets no kernel of its own), and
``PR_FUTEX_HASH`` (prctl stays Qiling's).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, cast

from futex.integrations.qiling import timecalls
from futex.integrations.qiling.clock import GeventClock
from futex.integrations.qiling.memory import GuestMemory
from futex.integrations.qiling.parking import park
from futex.kernel import MATCH_ANY, FutexError
from futex.kernel.blocking import PendingWait
from futex.linux import LinuxKernel, Process, Task, abi
from futex.linux.syscalls import NAMES
from futex.memory import AddressSpace

__all__ = ["Integration", "install", "installed", "uninstall"]

_log = logging.getLogger(__name__)

_ENOSYS = -38
_CLONE_THREAD = 0x00010000

#: The futex family, by x86-64 number: answered by the kernel's own dispatch (its names
#: for them; prctl stays Qiling's, see the module docstring).
FAMILY: dict[int, str] = {
    abi.SYS_futex: "futex",
    **{nr: name for nr, name in NAMES.items() if nr != abi.SYS_prctl},
}
#: Numbers past Qiling's x86-64 table, which its syscall mapper must be taught.
_BEYOND_TABLE = {nr: name for nr, name in FAMILY.items() if nr >= 449}
_PREFIX = "ql_syscall_"


class _FutexmAdapter:
    """Stands in for ``ql.os.futexm``: Qiling's thread-exit path wakes this kernel."""

    def __init__(self, integration: Integration) -> None:
        self._integration = integration

    def get_futex_wake_list(self, ql: Any, addr: int, number: int, bitset: int = MATCH_ANY
                            ) -> list[Any]:  # fmt: skip
        integ = self._integration
        # misaligned, fault, a PI waiter: ignored, as Linux's exit path ignores them
        with contextlib.suppress(FutexError):
            integ.process.futex.wake(integ.memory, addr, False, bitset & 0xFFFFFFFF,
                                     max(1, number))  # fmt: skip
        return []


class Integration:
    """The futex kernel behind one Qiling instance (what :func:`install` returns).

    ``kernel``: the :class:`~futex.linux.LinuxKernel` (``LinuxKernel.like_host`` with a
    :class:`GeventClock` unless given: the guest gets the host kernel's answers).
    ``process``: the guest's process in it.  After a run, :meth:`report_lines` tells what
    the guest's threads did with futexes.
    """

    def __init__(self, ql: Any, kernel: LinuxKernel | None = None) -> None:
        self.ql = ql
        self.kernel = kernel if kernel is not None else LinuxKernel.like_host(
            clock=GeventClock()
        )
        self.memory = GuestMemory(ql)
        # GuestMemory answers every call futex.linux makes on a process's memory (pinned by
        # tests/integrations/qiling/test_install.py), not AddressSpace's mapping calls.
        self.process: Process = self.kernel.new_process(space=cast(AddressSpace, self.memory))
        #: Futex calls that had to wait, and how many of them ended in -ETIMEDOUT.
        self.parked = 0
        self.timed_out = 0
        #: Guest threads whose exit path ran here.
        self.exited = 0
        #: Exceptions a handler met that are bugs of this integration (always empty unless
        #: something is wrong; the guest got -EINVAL for each): kept for the report.
        self.internal_errors: list[str] = []
        self._undo: list[Callable[[], None]] = []

    # -- tasks --------------------------------------------------------------------------------

    def task_of(self, th: Any) -> Task:
        """The kernel task of Qiling thread ``th`` (made on first sight, with its tid)."""
        task = self.process.tasks.get(th.id)
        if task is None:
            task = self._new_task(th.id)
        return task

    def _new_task(self, tid: int) -> Task:
        stale = self.kernel.task(tid)
        if stale is not None:  # Qiling reused a tid (its counter restarts with a new run)
            stale.exit()
        return self.process.new_task(tid)

    def _current(self) -> Any:
        return self.ql.os.thread_management.cur_thread

    # -- the handlers -------------------------------------------------------------------------

    def _guarded(self, name: str, fn: Callable[[], int]) -> int:
        """Run ``fn``; a bug of this integration becomes -EINVAL for the guest and a line in
        :attr:`internal_errors`, never an exception that would end ``ql.run()``."""
        try:
            return fn()
        except Exception as exc:  # a bug here, not the guest's: logged, reported
            _log.exception("futex.integrations.qiling: %s raised", name)
            self.internal_errors.append(f"{name}: {type(exc).__name__}: {exc}")
            return -abi.EINVAL

    def family_handler(self, nr: int) -> Callable[..., int]:
        """The handler of futex-family system call ``nr``: six raw registers."""

        def handler(ql: Any, a0: int, a1: int, a2: int, a3: int, a4: int, a5: int) -> int:
            return self._guarded(FAMILY[nr], lambda: self.syscall(nr, a0, a1, a2, a3, a4, a5))

        handler.__name__ = _PREFIX + FAMILY[nr]
        return handler

    def syscall(self, nr: int, *regs: int) -> int:
        """Futex-family call ``nr`` by the current thread: its result now, or 0 now and the
        late result written into the thread's saved context once the wait ends."""
        th = self._current()
        r = self.task_of(th).syscall_nb(nr, *regs)
        if isinstance(r, int):
            return r
        self._park_pending(th, r)
        return 0

    def _park_pending(self, th: Any, pending: PendingWait) -> None:
        import gevent.event

        self.parked += 1
        done = gevent.event.Event()
        pending.add_done_callback(lambda _p: done.set())  # never switches: safe anywhere

        def wait() -> int:
            try:
                done.wait()  # untimed: all threads waiting for good is gevent's LoopExit
            except BaseException:
                pending.kill()  # the greenlet is gone: no waiter stays queued for it
                raise
            result = pending.result()
            if result == -abi.ETIMEDOUT:
                self.timed_out += 1
            return result

        park(self.ql, th, wait)

    def set_tid_address(self, ql: Any, tidptr: int) -> int:
        th = self._current()
        self.task_of(th)
        th.clear_child_tid_address = tidptr or None
        return int(th.id)

    def clone_exit(self, ql: Any, flags: int, stack: int, ptid: int, ctid: int, tls: int,
                   retval: int) -> None:  # fmt: skip
        tid = retval if retval < 2**63 else retval - 2**64
        if flags & _CLONE_THREAD and tid > 0 and tid not in self.process.tasks:
            self._guarded("clone", lambda: self._new_task(tid).tid)

    def exit_thread(self, th: Any) -> int:
        """Linux's futex exit path for thread ``th`` (``exit_mm_release``): the robust
        list, PI states, then the clear_child_tid store and shared wake.  Returns 0."""
        task = self.task_of(th)
        task.clear_child_tid = th.clear_child_tid_address or 0
        th.clear_child_tid_address = None  # Qiling's _on_stop must not store it again
        task.exit()
        self.exited += 1
        return 0

    def exit(self, ql: Any, code: int) -> None:
        from qiling.os.posix.syscall.unistd import ql_syscall_exit

        self._guarded("exit", lambda: self.exit_thread(self._current()))
        ql_syscall_exit(ql, code)

    def exit_group(self, ql: Any, code: int) -> None:
        """exit_group(2): every thread of the process runs its exit path (as
        ``zap_other_threads`` makes them), then the process ends with ``code``.  From the
        main thread that is Qiling's own stop of the world; from another thread Qiling
        would end only the caller, so the world is stopped here: the main thread takes the
        code and its greenlet is ended, which ends ``ql.run()``."""
        from qiling.os.posix.syscall.unistd import ql_syscall_exit_group

        tm = ql.os.thread_management
        th = tm.cur_thread

        def run() -> int:
            for t in [t for t in tm.threads if t is not th and t.id in self.process.tasks]:
                self.exit_thread(t)
            return self.exit_thread(th)

        self._guarded("exit_group", run)
        main = tm.main_thread
        if th is main or main is None:
            ql_syscall_exit_group(ql, code)
            return

        def end_process(current: Any) -> None:
            current.exit_code = main.exit_code = code
            tm.stop()  # every thread TERMINATED, the main one included
            main.kill(block=False)  # wherever it waits: GreenletExit ends it

        ql.emu_stop()
        th.sched_cb = end_process

    # -- the report ---------------------------------------------------------------------------

    def report_lines(self) -> list[str]:
        """What the guest's threads did with futexes: calls by command, waits, timeouts,
        queues (the lines ``python -m futex demo`` prints for its own runs)."""
        calls = self.kernel.calls()
        by_command = ", ".join(f"{name} {n}" for name, n in calls.most_common()) or "none"
        s = self.process.futex.stats()
        lines = [
            f"futex calls by command: {by_command} ({sum(calls.values())} total)",
            f"threads: {self.exited} exited through the kernel's exit path, "
            f"{len(self.process.tasks)} still running; {self.parked} calls waited, "
            f"{self.timed_out} of them timed out (-ETIMEDOUT)",
            f"kernel: {s.waits} waits queued, {s.wakes} waiters woken, "
            f"{s.requeues} requeued, longest queue {s.longest_queue}, {s.queued} still queued",
        ]
        if self.internal_errors:
            lines.append(f"integration errors ({len(self.internal_errors)}): "
                         + "; ".join(self.internal_errors[:5]))  # fmt: skip
        return lines


# -- install / uninstall ------------------------------------------------------------------------

_ATTR = "_futex_integration"


def installed(ql: Any) -> Integration | None:
    """The integration :func:`install` put on ``ql``, if any."""
    found: Integration | None = getattr(ql, _ATTR, None)
    return found


def install(ql: Any, *, kernel: LinuxKernel | None = None) -> Integration:
    """Give the guest of ``ql`` (a ``qiling.Qiling`` for an x86-64 Linux program, made
    with ``multithread=True``) a faithful futex; call before ``ql.run()``.

    Raises ValueError for a Qiling instance this cannot serve (another architecture or
    OS, ``multithread=False``) and RuntimeError if it is installed already.  Returns the
    :class:`Integration` (its :meth:`~Integration.report_lines` after the run).
    """
    from qiling.const import QL_ARCH, QL_INTERCEPT, QL_OS

    if installed(ql) is not None:
        raise RuntimeError("futex.integrations.qiling is already installed on this Qiling")
    if ql.arch.type != QL_ARCH.X8664 or ql.os.type != QL_OS.LINUX:
        raise ValueError(
            f"futex.integrations.qiling serves x86-64 Linux guests; this one is "
            f"{ql.arch.type.name} {ql.os.type.name}"
        )
    if not ql.multithread:
        raise ValueError(
            "Qiling must be made with multithread=True: without it Qiling runs no guest "
            "thread, and its futex handler raises AttributeError"
        )
    integ = Integration(ql, kernel)
    hooks = ql.os.posix_syscall_hooks

    def hook(intercept: Any, name: str, fn: Callable[..., Any]) -> None:
        table = hooks[intercept]
        key = _PREFIX + name
        missing = object()
        before = table.get(key, missing)
        ql.os.set_syscall(name, fn, intercept)
        integ._undo.append(
            lambda: table.pop(key, None) if before is missing else table.__setitem__(key, before)
        )

    mapper = ql.os.syscall_mapper

    def named(nr: int) -> Any:
        name = _BEYOND_TABLE.get(nr)
        return _PREFIX + name if name is not None else mapper(nr)

    ql.os.syscall_mapper = named
    integ._undo.append(lambda: setattr(ql.os, "syscall_mapper", mapper))
    futexm = ql.os.futexm
    ql.os.futexm = _FutexmAdapter(integ)
    integ._undo.append(lambda: setattr(ql.os, "futexm", futexm))

    for nr, name in FAMILY.items():
        hook(QL_INTERCEPT.CALL, name, integ.family_handler(nr))
    hook(QL_INTERCEPT.CALL, "set_tid_address", integ.set_tid_address)
    hook(QL_INTERCEPT.CALL, "exit", integ.exit)
    hook(QL_INTERCEPT.CALL, "exit_group", integ.exit_group)
    hook(QL_INTERCEPT.EXIT, "clone", integ.clone_exit)
    hook(QL_INTERCEPT.CALL, "clone3", _enosys)
    hook(QL_INTERCEPT.CALL, "rseq", _enosys)
    for name, fn in timecalls.handlers(integ).items():
        hook(QL_INTERCEPT.CALL, name, fn)
    setattr(ql, _ATTR, integ)
    integ._undo.append(lambda: delattr(ql, _ATTR))
    return integ


def uninstall(ql: Any) -> Integration:
    """Undo :func:`install` on ``ql``: Qiling's own handlers, mapper and futex queue come
    back.  Returns the integration (its report still readable).  Raises RuntimeError if
    none is installed."""
    integ = installed(ql)
    if integ is None:
        raise RuntimeError("futex.integrations.qiling is not installed on this Qiling")
    for undo in reversed(integ._undo):
        undo()
    integ._undo.clear()
    return integ


def _enosys(ql: Any, *args: int) -> int:
    """clone3 / rseq: ENOSYS, so glibc uses clone and no restartable sequences."""
    return _ENOSYS
