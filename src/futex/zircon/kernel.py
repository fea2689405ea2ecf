"""Zircon's objects as its futexes see them: a kernel, processes, threads, handles.

A :class:`ZirconKernel` hands out koids and owns the clock and the *thread lock*: as in
the ThreadLock-era Zircon kernel, one lock serializes every futex operation, wait-queue
change and priority propagation (the core's bucket locks nest inside it; a pending wait's
own lock comes before it: the order is in :mod:`futex.zircon.syscalls`).  A
:class:`Process` is an address space with a futex context (a
:class:`~futex.kernel.FutexManager` built from :data:`ZIRCON_POLICY`: 37 buckets keyed by
``address >> 2``) and a handle table; a :class:`Thread` is created unstarted (``NEW``),
runs after :meth:`Thread.start`, and ends with :meth:`Thread.exit` (``DEAD``).

Priorities are Zircon's (0 lowest .. 31 highest, 16 default).  The core orders waiters and
propagates inheritance with Linux-style numbers where lower is more urgent, so a thread's
``normal_prio`` / ``prio`` are ``31 - priority``; :attr:`Thread.priority` and
:attr:`Thread.effective_priority` speak Zircon.

Bad-handle job policy (``ZX_POL_BAD_HANDLE``): a process made with
:attr:`BadHandlePolicy.ALLOW_EXCEPTION` (no exception handler: the process dies with
``ZX_TASK_RETCODE_EXCEPTION_KILL``) or :attr:`BadHandlePolicy.KILL`
(``ZX_TASK_RETCODE_POLICY_KILL``) is killed by a futex call that would return
``ZX_ERR_BAD_HANDLE``; the call raises :class:`ProcessKilled` in the calling Python thread.
"""

from __future__ import annotations

import enum
import itertools
import threading
from typing import TypeVar

from futex.kernel import (
    Clock,
    FutexManager,
    Key,
    PiDomain,
    PiState,
    PiWaiter,
    RealClock,
)
from futex.kernel.blocking import PendingWait, block
from futex.kernel.caller import CallerState
from futex.kernel.errors import TaskStateError
from futex.memory import AddressSpace
from futex.memory.owner import ProcessMemory
from futex.zircon import abi, syscalls
from futex.zircon.pi import disown_all_thread_locked
from futex.zircon.policy import ZIRCON_POLICY

__all__ = [
    "BadHandlePolicy",
    "Event",
    "Process",
    "ProcessKilled",
    "Thread",
    "ThreadState",
    "ZirconKernel",
]

_R = TypeVar("_R", int, "int | PendingWait")

class BadHandlePolicy(enum.IntEnum):
    """The job's ``ZX_POL_BAD_HANDLE`` action."""

    ALLOW = abi.ZX_POL_ACTION_ALLOW
    ALLOW_EXCEPTION = abi.ZX_POL_ACTION_ALLOW_EXCEPTION
    KILL = abi.ZX_POL_ACTION_KILL


class ProcessKilled(Exception):
    """The calling thread's process was killed by the bad-handle policy."""

    def __init__(self, process: Process, retcode: int) -> None:
        super().__init__(f"process {process.koid} killed with return code {retcode}")
        self.process = process
        self.retcode = retcode


class ThreadState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    DEAD = "dead"


class Event:
    """A kernel object that is not a thread (for ZX_ERR_WRONG_TYPE)."""

    def __init__(self, koid: int) -> None:
        self.koid = koid

    def __repr__(self) -> str:
        return f"<Event koid={self.koid}>"


class ZirconKernel:
    """An emulated Zircon kernel's futex subsystem.  ``clock``: real by default, or a
    :class:`~futex.kernel.ManualClock`; deadlines are absolute ZX_CLOCK_MONOTONIC ns."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock: Clock = clock if clock is not None else RealClock()
        #: Priority inheritance with Zircon's rule; its lock is the kernel's thread lock.
        assert ZIRCON_POLICY.inheritance is not None
        self.policy = ZIRCON_POLICY
        self.pi = PiDomain(ZIRCON_POLICY.inheritance, on_reorder=self._on_reorder_thread_locked)
        self.lock = self.pi.lock
        self._koids = itertools.count(abi.ZX_KOID_FIRST)
        self._koid_lock = threading.Lock()
        self.processes: dict[int, Process] = {}

    def new_koid(self) -> int:
        with self._koid_lock:
            return next(self._koids)

    def new_process(self, *, bad_handle: BadHandlePolicy = BadHandlePolicy.ALLOW) -> Process:
        """A process with an empty address space, no threads, and the given job policy."""
        p = Process(self, bad_handle)
        self.processes[p.koid] = p
        return p

    @staticmethod
    def _on_reorder_thread_locked(w: PiWaiter) -> None:
        # A blocked thread's effective priority changed: its futex queue place follows.
        # (The PI domain calls this under its lock, the thread lock.)
        thread = w.task
        assert isinstance(thread, Thread)
        thread.process.futex.reposition(w.waiter, w.prio)

    def check_invariants(self) -> None:
        """Assert the core's invariants and Zircon's: every active futex has waiters, its
        wait queue and its inheritance queue agree, owners are live threads of the
        process that do not wait on the futex they own, priorities are up to date."""
        with self.lock:
            for p in self.processes.values():
                p.futex.check_invariants()
                queues = p.futex.queues()
                for key, state in p.states.items():
                    assert state.waiters, f"futex {key:#x} is active without waiters"
                    order = [pw.task for pw in state.waiters]
                    queued = queues.get(key, [])
                    assert [w.owner for w in queued] == order, (
                        f"futex {key:#x}: wait queue and inheritance queue disagree"
                    )
                    for w, pw in zip(queued, state.waiters, strict=True):
                        assert w.prio == pw.prio, (
                            f"futex {key:#x}: thread {pw.task.tid} queued at priority "
                            f"{w.prio}, inherits at {pw.prio}"
                        )
                    owner = state.owner
                    if owner is not None:
                        assert isinstance(owner, Thread) and owner.state is ThreadState.RUNNING
                        assert owner.process is p
                        assert owner.blocking_futex != key, "an owner waits on its own futex"
                for t in p.threads.values():
                    self.pi.check_task(t)


class Process(ProcessMemory):
    """A Zircon process: address space, futex context, handle table, threads."""

    def __init__(self, kernel: ZirconKernel, bad_handle: BadHandlePolicy) -> None:
        self.kernel = kernel
        self.koid = kernel.new_koid()
        self.bad_handle = bad_handle
        self.space = AddressSpace()
        policy = kernel.policy
        self.futex = FutexManager(order=policy.order, layout=policy.layout(), pi=kernel.pi)
        #: Active futexes: key -> owner and waiters (thread lock).
        self.states: dict[Key, PiState] = {}
        self.threads: dict[int, Thread] = {}
        self.handles: dict[int, Thread | Event] = {}
        self._handle_seq = itertools.count(1)
        #: ``None`` while alive; the return code once killed.
        self.retcode: int | None = None

    def __repr__(self) -> str:
        return f"<Process koid={self.koid} threads={sorted(self.threads)}>"

    def new_thread(self, name: str = "", *, priority: int = abi.ZX_PRIORITY_DEFAULT) -> Thread:
        """``zx_thread_create``: a thread that has not started."""
        if self.retcode is not None:
            raise RuntimeError(f"process {self.koid} is dead")
        t = Thread(self, name, priority)
        self.threads[t.koid] = t
        return t

    def new_event(self) -> int:
        """``zx_event_create``: a handle to a new event."""
        return self.handle(Event(self.kernel.new_koid()))

    def handle(self, obj: Thread | Event) -> int:
        """A new handle in this process to ``obj`` (a thread of any process, or an
        event).  Handle values have their two low bits set, as Zircon's do."""
        value = (next(self._handle_seq) << 2) | abi.ZX_HANDLE_FIXED_BITS_MASK
        self.handles[value] = obj
        return value

    def close(self, handle: int) -> None:
        """``zx_handle_close`` (the object lives on)."""
        del self.handles[handle]

    def kill(self, retcode: int) -> None:
        """``zx_task_kill``-like: every thread exits; the process keeps ``retcode``."""
        if self.retcode is not None:
            return
        self.retcode = retcode
        for t in list(self.threads.values()):
            if t.state is not ThreadState.DEAD:
                t.exit()

    def resolve_owner(self, handle: int) -> tuple[int, Thread | None]:
        """``ValidateFutexOwner`` for a futex call of this process: (deferred status,
        owner).  Rights are not checked (the handle is looked up with rights 0), so
        ACCESS_DENIED cannot happen."""
        if handle == abi.ZX_HANDLE_INVALID:
            return abi.ZX_OK, None
        obj = self.handles.get(handle)
        if obj is None:
            return abi.ZX_ERR_BAD_HANDLE, None
        if not isinstance(obj, Thread):
            return abi.ZX_ERR_WRONG_TYPE, None
        if obj.process is not self or obj.state is ThreadState.NEW:
            return abi.ZX_ERR_INVALID_ARGS, None
        if obj.state is not ThreadState.RUNNING:
            return abi.ZX_OK, None  # dying or dead: silently no owner
        return abi.ZX_OK, obj

    def owner_of(self, addr: int) -> Thread | None:
        """The owner of the futex at ``addr`` (None when unowned or inactive)."""
        with self.kernel.lock:
            state = self.states.get(addr)
            owner = None if state is None else state.owner
        assert owner is None or isinstance(owner, Thread)
        return owner


class Thread(CallerState[PendingWait]):
    """A Zircon thread: koid, priority, state, and the futex system calls it makes.

    Only a running thread that is not blocked in a call makes calls: every ``futex_*``
    method raises :class:`~futex.kernel.TaskStateError` (state ``"new"``, ``"exited"`` or
    ``"blocked"``) otherwise (see :mod:`futex.kernel.caller`); :meth:`wait_blocked` waits
    until the thread is blocked in a call."""

    def __init__(self, process: Process, name: str, priority: int) -> None:
        _check_priority(priority)
        self.process = process
        self.kernel = process.kernel
        self.koid = self.tid = process.kernel.new_koid()
        self.name = name
        self.state = ThreadState.NEW
        self.normal_prio = abi.ZX_PRIORITY_HIGHEST - priority
        self.prio = self.normal_prio
        self.pi_blocked_on: PiWaiter | None = None
        self.pi_states: list[PiState] = []
        #: The futex this thread is blocked on (``blocking_futex_id_``; follows requeues).
        self.blocking_futex: int | None = None
        #: ``blocked``: the futex call this thread is blocked in, if any.
        self._init_caller()

    def __repr__(self) -> str:
        return f"<Thread koid={self.koid} {self.name!r} {self.state.value} prio={self.priority}>"

    @property
    def running(self) -> bool:
        """Started and not dead: the thread may own futexes."""
        return self.state is ThreadState.RUNNING

    # -- scheduling ----------------------------------------------------------------------

    @property
    def priority(self) -> int:
        """Base priority (Zircon scale, 0..31)."""
        return abi.ZX_PRIORITY_HIGHEST - self.normal_prio

    @property
    def effective_priority(self) -> int:
        """Base priority raised by every waiter of every futex this thread owns,
        transitively (Zircon scale)."""
        return abi.ZX_PRIORITY_HIGHEST - self.prio

    def set_priority(self, priority: int) -> None:
        """Change the base priority (a profile change); inheritance follows."""
        _check_priority(priority)
        self.kernel.pi.set_normal_prio(self, abi.ZX_PRIORITY_HIGHEST - priority)

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """``zx_thread_start``: from now on the thread may run and own futexes."""
        if self.state is not ThreadState.NEW:
            raise RuntimeError(f"thread {self.koid} was already started")
        self.state = ThreadState.RUNNING

    def exit(self) -> None:
        """``zx_thread_exit`` (or the thread being killed): a blocked futex wait ends,
        then every futex the thread owns becomes unowned (``DisownAllQueues``); their
        waiters stay blocked."""
        if self.state is ThreadState.DEAD:
            raise TaskStateError(self, self.koid, "exited", "zx_thread_exit")
        pending = self.blocked
        if pending is not None:
            pending.kill()
        with self.kernel.lock:
            self.state = ThreadState.DEAD
            disown_all_thread_locked(self)
        self.process.threads.pop(self.koid, None)
        self._state_changed()  # wait_blocked: it will never block again

    def suspend(self) -> bool:
        """Suspend the thread and resume it at once: a futex wait it is blocked in is
        interrupted with ZX_ERR_INTERNAL_INTR_RETRY and restarted transparently, from the
        value check, with the same deadline (test ThreadSuspended).  Returns whether it
        was blocked."""
        pending = self.blocked
        return pending.interrupt() if pending is not None else False

    # -- system calls --------------------------------------------------------------------

    def _call_refusal(self) -> str | None:
        if self.state is ThreadState.RUNNING:
            return None
        return "new" if self.state is ThreadState.NEW else "exited"

    def futex_wait(
        self, value_ptr: int, current_value: int, new_futex_owner: int, deadline: int
    ) -> int:
        """``zx_futex_wait``, blocking the calling Python thread; returns the status."""
        return block(self.futex_wait_nb(value_ptr, current_value, new_futex_owner, deadline))

    def futex_wait_nb(
        self, value_ptr: int, current_value: int, new_futex_owner: int, deadline: int
    ) -> int | PendingWait:
        """``zx_futex_wait`` without blocking: the status, or a pending wait (cooperative
        schedulers: ``add_done_callback``)."""
        self.check_call("zx_futex_wait")
        return self._policy(
            syscalls.futex_wait(self, value_ptr, current_value, new_futex_owner, deadline)
        )

    def futex_wake(self, value_ptr: int, wake_count: int) -> int:
        """``zx_futex_wake``: wake up to ``wake_count`` (uint32) waiters; the futex
        becomes unowned."""
        self.check_call("zx_futex_wake")
        return syscalls.futex_wake(self, value_ptr, wake_count, assign_woken=False)

    def futex_wake_single_owner(self, value_ptr: int) -> int:
        """``zx_futex_wake_single_owner``: wake one waiter and make it the owner (if
        waiters remain)."""
        self.check_call("zx_futex_wake_single_owner")
        return syscalls.futex_wake(self, value_ptr, 1, assign_woken=True)

    def futex_requeue(
        self,
        value_ptr: int,
        wake_count: int,
        current_value: int,
        requeue_ptr: int,
        requeue_count: int,
        new_requeue_owner: int,
    ) -> int:
        """``zx_futex_requeue``."""
        self.check_call("zx_futex_requeue")
        return self._policy(syscalls.futex_requeue(
            self, value_ptr, wake_count, current_value, requeue_ptr, requeue_count,
            new_requeue_owner, assign_woken=False,
        ))

    def futex_requeue_single_owner(
        self,
        value_ptr: int,
        current_value: int,
        requeue_ptr: int,
        requeue_count: int,
        new_requeue_owner: int,
    ) -> int:
        """``zx_futex_requeue_single_owner``: wake one (it owns the wake futex)."""
        self.check_call("zx_futex_requeue_single_owner")
        return self._policy(syscalls.futex_requeue(
            self, value_ptr, 1, current_value, requeue_ptr, requeue_count,
            new_requeue_owner, assign_woken=True,
        ))

    def futex_get_owner(self, value_ptr: int, koid_ptr: int) -> int:
        """``zx_futex_get_owner``: store the owner's koid (or ZX_KOID_INVALID) as a
        uint64 at ``koid_ptr``; returns the status."""
        self.check_call("zx_futex_get_owner")
        return syscalls.futex_get_owner(self, value_ptr, koid_ptr)

    def get_owner(self, value_ptr: int) -> int:
        """The owner koid of the futex at ``value_ptr`` without a user pointer (a
        convenience over :meth:`futex_get_owner`; raises ValueError on a bad pointer).
        An observer, not a call of this thread: allowed in any state."""
        status, koid = syscalls.get_owner(self, value_ptr)
        if status != abi.ZX_OK:
            raise ValueError(f"zx_futex_get_owner({value_ptr:#x}): {abi.STATUS_NAMES[status]}")
        return koid

    # -- helpers -------------------------------------------------------------------------

    def _policy(self, r: _R) -> _R:
        """Enforce the job's bad-handle policy on a ZX_ERR_BAD_HANDLE result."""
        if r != abi.ZX_ERR_BAD_HANDLE or self.process.bad_handle is BadHandlePolicy.ALLOW:
            return r
        code = (
            abi.ZX_TASK_RETCODE_EXCEPTION_KILL
            if self.process.bad_handle is BadHandlePolicy.ALLOW_EXCEPTION
            else abi.ZX_TASK_RETCODE_POLICY_KILL
        )
        self.process.kill(code)
        raise ProcessKilled(self.process, code)



def _check_priority(priority: int) -> None:
    if not abi.ZX_PRIORITY_LOWEST <= priority <= abi.ZX_PRIORITY_HIGHEST:
        raise ValueError(
            f"a Zircon priority is {abi.ZX_PRIORITY_LOWEST}..{abi.ZX_PRIORITY_HIGHEST}, "
            f"got {priority}"
        )
