"""Processes and tasks of the emulated LiteOS-A kernel.

A :class:`LiteosKernel` owns a clock, the tick rate, the physical page frames, and the
one futex table every process shares (``g_futexHash``, :class:`~futex.liteos.layout.
LiteosLayout`) with its single :class:`~futex.kernel.FutexManager`; private keys carry the
pid, so one manager serves all processes.  A :class:`Process` is an address space with a
pid; :meth:`Process.fork` gives a child with a copy-on-write address space (shared
mappings stay shared, so shared futexes meet across the two by physical address).  A
:class:`Task` is a thread: it has a priority 0..31 (0 most urgent) and makes ``SysFutex``
calls, blocking the calling Python thread (:meth:`Task.syscall_futex`) or not
(:meth:`Task.syscall_futex_nb`, for cooperative schedulers).

Process ids and task ids are separate namespaces, as in LiteOS.  A task waits on at most
one futex (its node is embedded in its control block): a blocked task makes no calls.
Addresses are 32-bit; mmap places mappings in LiteOS's map region (``USER_MAP_BASE``
upward) unless told where.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Container, Iterator

from futex.kernel import Clock, FutexManager, Key, RealClock
from futex.kernel.blocking import PendingWait, block
from futex.kernel.caller import CallerState
from futex.kernel.locking import DEBUG_LOCKS, assert_held
from futex.liteos import abi
from futex.liteos.decode import ns_to_ticks
from futex.liteos.layout import LiteosLayout
from futex.liteos.memory import PHYS_BASE, FutexTarget, PhysicalMemory, find_free
from futex.liteos.policy import LITEOS_POLICY
from futex.liteos.syscalls import sys_futex
from futex.liteos.table import FutexTable, snapshot
from futex.memory import PAGE_SIZE, AddressSpace
from futex.memory.owner import ProcessMemory

__all__ = ["LiteosKernel", "Process", "Task"]


class LiteosKernel:
    """An emulated LiteOS-A kernel's futex subsystem.

    ``clock``: a :class:`~futex.kernel.RealClock` by default; a
    :class:`~futex.kernel.ManualClock` controls time.  ``tick_hz``: the scheduler tick
    (LOSCFG_BASE_CORE_TICK_PER_SECOND, default 1000), to which timeouts round up.
    ``faithful``: replicate LiteOS's zero-count wake, which orphans every waiter of the
    key (see :mod:`futex.liteos.syscalls`); the default wakes nobody and unlinks nothing.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        tick_hz: int = abi.LOSCFG_BASE_CORE_TICK_PER_SECOND,
        faithful: bool = False,
        phys_base: int = PHYS_BASE,
    ) -> None:
        if not 1 <= tick_hz <= abi.OS_SYS_NS_PER_SECOND:
            raise ValueError(f"tick_hz must be in 1..{abi.OS_SYS_NS_PER_SECOND}, got {tick_hz}")
        self.clock: Clock = clock if clock is not None else RealClock()
        self.tick_hz = tick_hz
        #: Nanoseconds per tick, as OsNS2Tick computes it (integer division).
        self.ns_per_tick = abi.OS_SYS_NS_PER_SECOND // tick_hz
        self.faithful = faithful
        #: The kernel's named differences from the other personalities.
        self.policy = LITEOS_POLICY
        layout = LITEOS_POLICY.layout()
        assert isinstance(layout, LiteosLayout)
        self.layout = layout
        self.futex = FutexManager(order=LITEOS_POLICY.order, layout=self.layout)
        self.phys = PhysicalMemory(phys_base)
        self._pids = itertools.count(1)
        self._tids = itertools.count(1)
        #: The task/pid table lock: guards ``processes``, ``tasks`` and the id counters
        #: (a leaf: never held with a bucket lock).
        self._table_lock = threading.Lock()
        self.processes: dict[int, Process] = {}
        self.tasks: dict[int, Task] = {}

    def __repr__(self) -> str:
        mode = "faithful" if self.faithful else "safe"
        return f"<LiteosKernel {self.tick_hz} Hz {mode} processes={sorted(self.processes)}>"

    def new_process(self, pid: int | None = None) -> Process:
        """A new process with an empty address space and no tasks."""
        return Process(self, AddressSpace(user_ptr_max=abi.USER_ASPACE_TOP_MAX), pid)

    def task(self, tid: int) -> Task | None:
        """The live task with this id, if any."""
        return self.tasks.get(tid)

    def ticks(self, microseconds: int) -> int:
        """The ticks a WAIT of ``microseconds`` sleeps (``OsNS2Tick``, saturating)."""
        return ns_to_ticks(microseconds * abi.OS_SYS_NS_PER_US, self.tick_hz)

    def table(self) -> FutexTable:
        """A snapshot of ``g_futexHash``: buckets, heads sorted by key, waiters in wake
        order (see :mod:`futex.liteos.table`)."""
        return snapshot(self.futex)

    def _alloc_table_locked(
        self, ids: Iterator[int], taken: Container[int], wanted: int | None, what: str
    ) -> int:
        """A free id: ``wanted`` if given (and free), else the next unused one from
        ``ids`` (the table lock held)."""
        if DEBUG_LOCKS:
            assert_held(self._table_lock)
        if wanted is not None:
            if not 0 <= wanted < abi.OS_INVALID:
                raise ValueError(f"{what} must be in 0..{abi.OS_INVALID - 1:#x}, got {wanted}")
            if wanted in taken:
                raise ValueError(f"{what} {wanted} is taken")
            return wanted
        while True:
            n = next(ids)
            if n not in taken:
                return n


class Process(ProcessMemory):
    """An emulated LiteOS process: a pid, an address space, its tasks."""

    def __init__(self, kernel: LiteosKernel, space: AddressSpace, pid: int | None = None) -> None:
        self.kernel = kernel
        self.space = space
        self.tasks: dict[int, Task] = {}
        with kernel._table_lock:
            self.pid = kernel._alloc_table_locked(kernel._pids, kernel.processes, pid, "pid")
            kernel.processes[self.pid] = self
        #: The core's view of this process's memory (keys carry the pid).
        self.target = FutexTarget(space, self.pid, kernel.phys)

    def __repr__(self) -> str:
        return f"<Process pid={self.pid} tasks={sorted(self.tasks)}>"

    def new_task(
        self, priority: int = abi.LOSCFG_BASE_CORE_TSK_DEFAULT_PRIO, tid: int | None = None
    ) -> Task:
        """A new task of this process with ``priority`` (0..31, default 10)."""
        _check_priority(priority)
        kernel = self.kernel
        with kernel._table_lock:
            tid = kernel._alloc_table_locked(kernel._tids, kernel.tasks, tid, "tid")
            task = Task(self, tid, priority)
            self.tasks[tid] = task
            kernel.tasks[tid] = task
        return task

    def fork(self) -> Process:
        """A child process: copy-on-write private memory, the same shared memory, no
        tasks yet."""
        return Process(self.kernel, self.space.fork())

    # -- futex keys --------------------------------------------------------------------------

    def paddr(self, addr: int) -> int:
        """``LOS_PaddrQuery``: the physical address of ``addr`` (0 without a frame)."""
        return self.kernel.phys.paddr(self.space, addr)

    def futex_key(self, addr: int, private: bool = True) -> Key:
        """The key a futex op on ``addr`` uses: ``(pid, addr)`` with FUTEX_PRIVATE,
        ``(OS_INVALID, paddr)`` without (for :meth:`FutexTable.head`)."""
        return self.target.futex_key(addr, private)

    # -- memory (futex.memory.owner.ProcessMemory) -------------------------------------------

    def mmap_place(self, length: int) -> int | None:
        """Without an address, a mapping goes to the lowest free range of the map region
        ``[USER_MAP_BASE, USER_ASPACE_TOP_MAX)``."""
        if length <= 0:
            return None
        size = (length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        return find_free(self.space, size, abi.USER_MAP_BASE, abi.USER_ASPACE_TOP_MAX)


def _check_priority(priority: int) -> None:
    if not abi.OS_TASK_PRIORITY_HIGHEST <= priority <= abi.OS_TASK_PRIORITY_LOWEST:
        raise ValueError(
            f"a LiteOS task priority is {abi.OS_TASK_PRIORITY_HIGHEST}.."
            f"{abi.OS_TASK_PRIORITY_LOWEST} (0 most urgent), got {priority}"
        )


class Task(CallerState[PendingWait]):
    """A LiteOS task (thread): the caller of ``SysFutex``.

    A blocked or exited task makes no call: :meth:`syscall_futex` raises
    :class:`~futex.kernel.TaskStateError` (see :mod:`futex.kernel.caller`);
    :meth:`wait_blocked` waits until the task is blocked in a call."""

    def __init__(self, process: Process, tid: int, priority: int) -> None:
        self.process = process
        self.kernel = process.kernel
        self.tid = tid
        #: 0 (most urgent) .. 31; a wait queues with the priority it had when it started.
        self.priority = priority
        self.alive = True
        #: Calls made with this set behave as from interrupt context (OS_INT_ACTIVE):
        #: a WAIT answers -LOS_EINTR before any other check.
        self.in_interrupt = False
        #: ``blocked``: the futex wait this task is blocked in, if any.
        self._init_caller()

    def __repr__(self) -> str:
        state = " blocked" if self.blocked is not None else ""
        return f"<Task tid={self.tid} pid={self.process.pid} prio={self.priority}{state}>"

    def set_priority(self, priority: int) -> None:
        """``LOS_TaskPriSet``: 0..31.  A wait already queued keeps its place."""
        _check_priority(priority)
        self.priority = priority

    def _call_refusal(self) -> str | None:
        return None if self.alive else "exited"

    def syscall_futex_nb(
        self, uaddr: int, flags: int, val: int, abs_time: int, new_uaddr: int
    ) -> int | PendingWait:
        """``SysFutex`` without blocking: the result (0 or a negated LOS code), or a
        :class:`~futex.kernel.blocking.PendingWait` that settles when the wait would return."""
        self.check_call("SysFutex")
        return sys_futex(self, uaddr, flags, val, abs_time, new_uaddr)

    def syscall_futex(self, uaddr: int, flags: int, val: int, abs_time: int, new_uaddr: int) -> int:
        """``SysFutex(uAddr, flags, val, absTime, newUserAddr)``; blocks the calling thread
        while the call waits.  Returns 0 or a negated LOS code."""
        return block(self.syscall_futex_nb(uaddr, flags, val, abs_time, new_uaddr))

    def interrupt(self, signo: int = abi.SIGKILL) -> bool:
        """Send signal ``signo`` to the task (``OsTcbDispatch`` → ``OsPendingTaskWake``).

        Only SIGKILL reaches a futex wait: its node leaves the hash and the wait returns 0
        (never -EINTR).  Any other signal leaves the wait blocked.  Returns whether a wait
        was ended.
        """
        pending = self.blocked
        if pending is None or signo != abi.SIGKILL:
            return False
        return pending.interrupt()

    def exit(self) -> None:
        """Exit the task: a blocked wait ends and its node leaves the hash
        (``OsTaskReleaseHoldLock``); the tid is freed."""
        if not self.alive:
            raise RuntimeError(f"task {self.tid} has already exited")
        pending = self.blocked
        if pending is not None:
            pending.kill()
        self.alive = False
        self._state_changed()  # wait_blocked: it will never block again
        kernel = self.kernel
        with kernel._table_lock:
            kernel.tasks.pop(self.tid, None)
            self.process.tasks.pop(self.tid, None)
