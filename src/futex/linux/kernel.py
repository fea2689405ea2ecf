"""Processes and tasks of the emulated Linux kernel.

A :class:`LinuxKernel` owns a clock, a pid/tid namespace, and the shared futex table.  A
:class:`Process` is an address space (:class:`futex.memory.AddressSpace`) with its own
:class:`~futex.kernel.FutexManager` (private futexes); :meth:`Process.fork` gives a child
with a copy-on-write address space and a forked manager, so shared futexes on MAP_SHARED
memory or files meet across the two and private ones never do.  A :class:`Task` is a
thread of a process: it makes system calls.

Each task is meant to be driven by one Python thread (or one green thread) at a time;
tasks of one process may run on as many threads as they like.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from futex.kernel import (
    DEFAULT_QUEUE_PRIO,
    Clock,
    FutexManager,
    HashFn,
    PiState,
    PiWaiter,
    QueueOrder,
    RealClock,
    fold_hash,
)
from futex.kernel.blocking import PendingWait, block
from futex.kernel.caller import CallerState
from futex.linux import abi
from futex.linux.exit import exec_futex, exit_futex, futex_cleanup_begin
from futex.linux.facts import TASK_SIZE_MAX_4LEVEL, LinuxFacts
from futex.linux.futexhash import PrivateHash, futex_hash_allocate_default
from futex.linux.pi_exit import FutexExitMutex, FutexState
from futex.linux.policy import LINUX_POLICY
from futex.linux.syscalls import NAMES, sys_futex, syscall
from futex.memory import AddressSpace
from futex.memory.owner import ProcessMemory

__all__ = ["LinuxKernel", "Process", "Task"]

#: ``RESERVED_PIDS``: where pid allocation starts again once it passes ``pid_max``.
_RESERVED_PIDS = 300


class LinuxKernel:
    """An emulated Linux kernel's futex subsystem.

    ``clock``: a :class:`~futex.kernel.RealClock` by default; pass a
    :class:`~futex.kernel.ManualClock` to control time.  ``buckets``, ``hash_fn`` and
    ``order`` configure every process's futex manager (see
    :class:`~futex.kernel.FutexManager`).

    ``facts`` (a :class:`~futex.linux.facts.LinuxFacts`) or ``release`` (``"5.15"``:
    that mainline release on the default machine) say which Linux this kernel is: the
    newest modelled release on a CPU with protection keys unless given.
    :meth:`like_host` builds one that answers as the host it runs on.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        buckets: int | None = None,
        hash_fn: HashFn = fold_hash,
        order: QueueOrder = LINUX_POLICY.order,
        facts: LinuxFacts | None = None,
        release: str | None = None,
    ) -> None:
        if facts is not None and release is not None:
            raise ValueError("give facts or release, not both (facts carry a release)")
        if facts is None:
            facts = LinuxFacts.for_release(release) if release is not None else LinuxFacts()
        elif not isinstance(facts, LinuxFacts):
            raise TypeError(f"facts must be a LinuxFacts, got {type(facts).__name__}")
        #: What this kernel is: its release's futex family and the machine it models.
        self.facts = facts
        self.clock: Clock = clock if clock is not None else RealClock()
        #: The kernel's named differences from the other personalities.
        self.policy = LINUX_POLICY
        if buckets is None and hash_fn is fold_hash:
            self._root = FutexManager(order=order, layout=LINUX_POLICY.layout())
        else:
            self._root = FutexManager(buckets=buckets, hash_fn=hash_fn, order=order)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.processes: dict[int, Process] = {}
        self.tasks: dict[int, Task] = {}
        self._exited_calls: Counter[str] = Counter()  # calls of tasks that have exited

    @classmethod
    def like_host(cls, **options: Any) -> LinuxKernel:
        """A kernel whose facts are this host's, probed (:func:`futex.linux.host.probe`):
        it answers every futex call as the host's own kernel does.  ``options`` are the
        other constructor arguments (``clock``, ``buckets``...)."""
        from futex.linux.host import probe

        return cls(facts=probe().facts, **options)

    def new_process(self, *, space: AddressSpace | None = None) -> Process:
        """A new process with no tasks: an empty address space, or ``space`` -- an
        embedder's memory (an emulator's guest memory, :mod:`futex.integrations.qiling`)
        answering the calls futex.linux makes on a process's memory."""
        if space is None:
            space = AddressSpace(
                user_ptr_max=self.facts.user_ptr_max,
                exec_readable=not self.facts.protection_keys,
                task_size=TASK_SIZE_MAX_4LEVEL,
            )
        return Process(self, space, self._root.fork())

    def task(self, tid: int) -> Task | None:
        """The live task with this tid, if any."""
        return self.tasks.get(tid)

    def calls(self) -> Counter[str]:
        """Calls made so far by every task, live or exited: futex(2) by command name
        (``"OTHER"`` for unknown ones), the other futex-family system calls by name."""
        total: Counter[str] = Counter(self._exited_calls)
        for t in list(self.tasks.values()):
            total.update(dict(t.calls))  # a C-level copy: safe while t counts
        return total

    def _alloc_id_table_locked(self, wanted: int | None) -> int:
        """A free pid/tid: ``wanted``, or the next one (``alloc_pid``: below ``pid_max``,
        wrapping to 300 past it, as Linux skips the reserved low pids)."""
        top = min(abi.FUTEX_TID_MASK, self.facts.pid_max - 1)
        if wanted is not None:
            if not 0 < wanted <= top:
                raise ValueError(f"tid must be in 1..{top} (pid_max {self.facts.pid_max}), "
                                 f"got {wanted}")  # fmt: skip
            if wanted in self.tasks:
                raise ValueError(f"tid {wanted} is taken")
            return wanted
        for _ in range(top + 1):
            n = next(self._ids)
            if n > top:
                self._ids = itertools.count(min(_RESERVED_PIDS, top))
                n = next(self._ids)
            if n not in self.tasks and n not in self.processes:
                return n
        raise RuntimeError(f"no free pid below pid_max {self.facts.pid_max} (Linux: EAGAIN)")


class Process(ProcessMemory):
    """An emulated process: an address space, its futex manager, and its tasks."""

    def __init__(self, kernel: LinuxKernel, space: AddressSpace, futex: FutexManager) -> None:
        self.kernel = kernel
        self.space = space
        self.futex = futex
        self.tasks: dict[int, Task] = {}
        #: The private futex hash (prctl PR_FUTEX_HASH; :mod:`futex.linux.futexhash`):
        #: None until the first CLONE_THREAD or SET_SLOTS, and in a forked child (new mm).
        self.futex_hash: PrivateHash | None = None
        with kernel._lock:
            self.pid = kernel._alloc_id_table_locked(None)
            kernel.processes[self.pid] = self

    def __repr__(self) -> str:
        return f"<Process pid={self.pid} tasks={sorted(self.tasks)}>"

    def new_task(
        self,
        tid: int | None = None,
        *,
        clear_child_tid: int = 0,
        policy: int = abi.SCHED_OTHER,
        priority: int = 0,
        nice: int = 0,
    ) -> Task:
        """A new task (thread) of this process.  The first one gets tid == pid unless a
        tid is given; a given tid must be free.

        ``clear_child_tid``: the CLONE_CHILD_CLEARTID address (0 stores nothing at exit).
        ``policy`` / ``priority`` / ``nice``: scheduling class (SCHED_OTHER with a nice
        value, or SCHED_FIFO / SCHED_RR with an RT priority 1..99); see
        :meth:`Task.set_scheduler`.
        """
        kernel = self.kernel
        with kernel._lock:
            if tid is None and not self.tasks and self.pid not in kernel.tasks:
                tid = self.pid
            else:
                tid = kernel._alloc_id_table_locked(tid)
            task = Task(self, tid)
            task.set_scheduler(policy, priority, nice)
            task.clear_child_tid = clear_child_tid
            if self.tasks:  # a CLONE_THREAD: copy_process sizes the default futex hash
                futex_hash_allocate_default(self, len(self.tasks))
            self.tasks[tid] = task
            kernel.tasks[tid] = task
        return task

    def fork(self) -> Process:
        """A child process: copy-on-write private memory, the same shared memory, a
        forked futex manager, no private futex hash (a new mm), and no tasks yet."""
        return Process(self.kernel, self.space.fork(), self.futex.fork())


class Task(CallerState[PendingWait]):
    """A task (thread): the caller of system calls.

    A task blocked in a call (``blocked`` set), exiting, in its exec or exited makes no
    call: every call entry raises :class:`~futex.kernel.TaskStateError` (see
    :mod:`futex.kernel.caller`).  :meth:`wait_blocked` lets another real thread wait until
    the task is blocked in a call."""

    def __init__(self, process: Process, tid: int) -> None:
        self.process = process
        self.kernel = process.kernel
        self.tid = tid
        self.alive = True
        self.policy = abi.SCHED_OTHER
        self.rt_priority = 0
        self.nice = 0
        #: Linux's ``normal_prio``: 99 - rt_priority for RT tasks, 120 + nice otherwise.
        self.normal_prio = abi.DEFAULT_PRIO
        #: Effective priority: normal_prio, or a PI waiter's if more urgent (PI-boosted).
        self.prio = abi.DEFAULT_PRIO
        #: Where this task queues: ``min(normal_prio, MAX_RT_PRIO)`` (``__futex_queue``).
        self.queue_prio = DEFAULT_QUEUE_PRIO
        #: Priority inheritance: the PI wait this task is in, the PI states it owns.
        self.pi_blocked_on: PiWaiter | None = None
        self.pi_states: list[PiState] = []
        #: ``blocked``: the futex call this task is blocked in, if any.
        self._init_caller()
        #: Calls made by this task (see :meth:`LinuxKernel.calls`).
        self.calls: Counter[str] = Counter()
        #: CLONE_CHILD_CLEARTID address; set_robust_list's head and length.
        self.clear_child_tid = 0
        self.robust_list = 0
        self.robust_list_len = 0
        #: Linux ``futex_state``: OK; EXITING from the start of the futex cleanup of an
        #: exit or exec to its end; then DEAD (exit) or OK again (exec).  Written under
        #: the PI-domain lock (see :mod:`futex.linux.pi_exit`).
        self.futex_state = FutexState.OK
        #: Held across the futex cleanup; PI calls that found the task EXITING wait on it.
        self.futex_exit_mutex = FutexExitMutex()
        self._releasing: str | None = None  # "exit" / "exec" once begun, until finished
        #: How a blocking call waits for its :class:`PendingWait`: ``block`` parks the
        #: calling OS thread; a cooperative scheduler (futex.check's green tasks) puts its
        #: own here to switch task instead.  Takes the call's ``int | PendingWait``,
        #: returns its result.
        self.blocker: Callable[[int | PendingWait], int] = block

    def __repr__(self) -> str:
        state = " blocked" if self.blocked is not None else ""
        if self.futex_state is not FutexState.OK:
            state += f" {self.futex_state.name.lower()}"
        return f"<Task tid={self.tid} pid={self.process.pid}{state}>"

    def set_scheduler(self, policy: int, priority: int = 0, nice: int = 0) -> None:
        """sched_setscheduler: SCHED_OTHER with ``nice`` in -20..19, or SCHED_FIFO /
        SCHED_RR with ``priority`` in 1..99.  Raises ValueError otherwise, and
        PermissionError for an RT policy where the kernel's facts say this user may not
        use one (``LinuxFacts.rt_sched``)."""
        if policy == abi.SCHED_OTHER:
            if priority != 0 or not -20 <= nice <= 19:
                raise ValueError(
                    f"SCHED_OTHER takes priority 0 and nice in -20..19, got {priority}, {nice}"
                )
            normal = abi.DEFAULT_PRIO + nice
        elif policy in (abi.SCHED_FIFO, abi.SCHED_RR):
            if not 1 <= priority <= 99:
                raise ValueError(f"an RT policy takes priority 1..99, got {priority}")
            if not self.kernel.facts.rt_sched:
                raise PermissionError(
                    "sched_setscheduler: EPERM: this user may not use SCHED_FIFO / SCHED_RR "
                    "(LinuxFacts.rt_sched is false: no CAP_SYS_NICE, RLIMIT_RTPRIO 0)"
                )
            normal = abi.MAX_RT_PRIO - 1 - priority
        else:
            raise ValueError(f"unknown scheduling policy {policy}")
        self.policy, self.rt_priority, self.nice = policy, priority, nice
        self.queue_prio = min(normal, abi.MAX_RT_PRIO)
        self.process.futex.pi.set_normal_prio(self, normal)  # re-derives prio, boosts

    def _call_refusal(self) -> str | None:
        if not self.alive:
            return "exited"
        if self._releasing is not None:  # inside do_exit / execve: not in user mode
            return "exiting" if self._releasing == "exit" else "exec"
        return None

    def syscall(self, nr: int, *args: int) -> int:
        """System call ``nr`` (x86-64 numbers) with up to six raw register values; blocks
        like :meth:`syscall_futex`.  Numbers outside the futex family
        (futex 202, set/get_robust_list 273/274, futex_waitv 449, futex_wake/wait/requeue
        454-456) answer -ENOSYS."""
        self.check_call(_call_name(nr))
        return self.blocker(syscall(self, nr, args))

    def syscall_nb(self, nr: int, *args: int) -> int | PendingWait:
        """:meth:`syscall` without blocking (see :meth:`syscall_futex_nb`)."""
        self.check_call(_call_name(nr))
        return syscall(self, nr, args)

    def begin_exit(self) -> None:
        """Start exiting and stop where an exiting task preempted between the two futex
        states would be: a blocked call ends, ``futex_cleanup_begin`` runs (the futex
        state is EXITING, ``futex_exit_mutex`` held), and the cleanup has not run yet.

        PI calls that look this task up as an owner now wait for :meth:`exit` to finish
        (see :mod:`futex.linux.pi_exit`)."""
        self._begin("exit")
        pending = self.blocked
        if pending is not None:
            pending.kill()
        futex_cleanup_begin(self)
        self._state_changed()  # wait_blocked: it will never block again

    def begin_exec(self) -> None:
        """:meth:`begin_exit` for execve(2): ``futex_exec_release`` stopped after
        ``futex_cleanup_begin``; :meth:`exec` finishes it (the state becomes OK again)."""
        self._begin("exec")
        futex_cleanup_begin(self)

    def _begin(self, what: str) -> None:
        if not self.alive:
            raise RuntimeError(f"task {self.tid} has exited")
        if self._releasing is not None:
            raise RuntimeError(f"task {self.tid} is already in its {self._releasing}")
        self._releasing = what

    def _finish(self, what: str) -> None:
        if not self.alive:
            raise RuntimeError(f"task {self.tid} has already exited")
        if self._releasing not in (None, what):
            raise RuntimeError(f"task {self.tid} is in its {self._releasing}, not {what}")

    def exit(self) -> None:
        """Exit the task: a blocked call ends, then Linux's futex exit path runs (the
        futex state EXITING, robust list, PI state handed on, DEAD -- the calls that
        waited for it run again --, then CLONE_CHILD_CLEARTID store and wake) and the
        tid is freed.  After :meth:`begin_exit`, finishes that exit."""
        self._finish("exit")
        pending = self.blocked
        if pending is not None:
            pending.kill()
        exit_futex(self)
        self._releasing = None
        self.alive = False
        self._state_changed()  # wait_blocked: it will never block again
        kernel = self.kernel
        with kernel._lock:
            kernel.tasks.pop(self.tid, None)
            self.process.tasks.pop(self.tid, None)
            kernel._exited_calls.update(self.calls)

    def exec(self) -> None:
        """The futex side of execve(2): the same cleanup as exit (robust list, PI state),
        but the task lives on with its futex state OK again (Linux
        ``futex_exec_release``).  After :meth:`begin_exec`, finishes that exec."""
        self._finish("exec")
        exec_futex(self)
        self._releasing = None

    def syscall_futex(
        self, uaddr: int, futex_op: int, val: int, utime: int, uaddr2: int, val3: int
    ) -> int:
        """futex(2) with the six raw register values; blocks while the call waits (the
        calling thread, unless :attr:`blocker` says otherwise).  Returns what the kernel
        returns: >= 0, or -errno."""
        if not self.alive or self._releasing is not None or self._blocked is not None:
            self.check_call("futex(2)")  # raises (the guard's own test, inlined: hot path)
        return self.blocker(sys_futex(self, uaddr, futex_op, val, utime, uaddr2, val3))

    def syscall_futex_nb(
        self, uaddr: int, futex_op: int, val: int, utime: int, uaddr2: int, val3: int
    ) -> int | PendingWait:
        """futex(2) without blocking: the result, or a :class:`PendingWait` that settles
        when the call would return (for cooperative schedulers)."""
        if not self.alive or self._releasing is not None or self._blocked is not None:
            self.check_call("futex(2)")  # raises (as in syscall_futex)
        return sys_futex(self, uaddr, futex_op, val, utime, uaddr2, val3)

    def interrupt(self, *, handler: bool = True, restart: bool = False) -> bool:
        """Send the task a signal.  If it is blocked in a futex call, the call ends with
        -EINTR or restarts (see :mod:`futex.linux.policy`); returns whether it was."""
        pending = self.blocked
        return pending.interrupt(handler=handler, restart=restart) if pending else False


def _call_name(nr: object) -> str:
    """How :class:`~futex.kernel.TaskStateError` names system call ``nr``."""
    if nr == abi.SYS_futex:
        return "futex(2)"
    name = NAMES.get(nr) if isinstance(nr, int) else None
    return f"{name}(2)" if name is not None else f"system call {nr!r}"
