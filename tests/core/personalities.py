"""One adapter per kernel personality, for the behaviours the three kernels share
(``test_shared_behaviours.py``).

An adapter makes a kernel on the test's :class:`ManualClock` with one process, hands out
futex words and tasks, and calls wait / wake / requeue through the personality's public
system-call entry points (never the core or a personality's internals):

=============  ==========================================  =================================
personality    calls                                       answers (policy / abi)
=============  ==========================================  =================================
linux          ``Task.syscall_futex_nb``: FUTEX_WAIT with  woken 0; wake and requeue return
               a relative timespec, FUTEX_WAKE,            how many they woke (+ moved);
               FUTEX_CMP_REQUEUE (all private)             ``LINUX_POLICY``'s codes
zircon         ``Thread.futex_wait_nb`` (absolute          ZX_OK for every success;
               deadline), ``futex_wake``, ``futex_requeue``  ``ZIRCON_POLICY``'s codes
liteos         ``Task.syscall_futex_nb`` (``SysFutex``):   LOS_OK for every success, -EBADF
               FUTEX_WAIT with relative microseconds,      when nobody was woken or moved;
               FUTEX_WAKE, FUTEX_REQUEUE (all private)     ``LITEOS_POLICY``'s codes
=============  ==========================================  =================================

Urgency: an ``urgent`` task outranks the normal ones — SCHED_FIFO 50 against SCHED_OTHER
(Linux), priority 24 against ZX_PRIORITY_DEFAULT 16 (Zircon), 5 against the default 10
(LiteOS, lower is more urgent).
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from futex.kernel import ClockId, ManualClock
from futex.kernel.blocking import PendingWait
from futex.kernel.policy import FutexPolicy
from futex.linux import LinuxKernel
from futex.linux import Process as LinuxProcess
from futex.linux import Task as LinuxTask
from futex.linux import abi as linux_abi
from futex.linux.policy import LINUX_POLICY
from futex.liteos import LiteosKernel
from futex.liteos import Process as LiteosProcess
from futex.liteos import Task as LiteosTask
from futex.liteos import abi as liteos_abi
from futex.liteos.policy import LITEOS_POLICY
from futex.memory import PAGE_SIZE
from futex.zircon import Process as ZirconProcess
from futex.zircon import Thread, ZirconKernel
from futex.zircon import abi as zircon_abi
from futex.zircon.policy import ZIRCON_POLICY

__all__ = ["NAMES", "Personality", "make_personality"]

TaskT = TypeVar("TaskT")

#: The personalities, in the order the tests are parametrized.
NAMES = ("linux", "zircon", "liteos")


@dataclass(frozen=True, kw_only=True)
class Personality(ABC, Generic[TaskT]):
    """How one kernel's futexes are called, and what they answer.

    ``woken``, ``timed_out`` and ``mismatch`` are the results of a wait ended by a wake,
    by its deadline, and by a word that did not hold the expected value; the last two are
    the personality's policy (``outcomes.timed_out``, ``value_mismatch``).
    """

    name: str
    policy: FutexPolicy
    clock: ManualClock
    #: What a wait that a wake ended returns.
    woken: int

    @property
    def timed_out(self) -> int:
        """What a wait whose deadline passed returns."""
        return self.policy.outcomes.timed_out

    @property
    def mismatch(self) -> int:
        """What a wait on a word holding another value returns (at once)."""
        return self.policy.value_mismatch

    def word(self, value: int = 0) -> int:
        """A fresh futex word holding ``value`` (at the start of a page of its own)."""
        addr = self._mmap(PAGE_SIZE)
        self.store(addr, value)
        return addr

    def wait_blocks(
        self, task: TaskT, addr: int, val: int = 0, timeout_ns: int | None = None
    ) -> PendingWait:
        """A wait that must block."""
        r = self.wait(task, addr, val, timeout_ns)
        assert isinstance(r, PendingWait), f"{self.name}: the wait returned {r} at once"
        return r

    def wake_answer(self, woken: int) -> int:
        """What a wake that woke ``woken`` waiters returns."""
        if woken == 0 and self.policy.empty_wake is not None:
            return self.policy.empty_wake
        return woken

    def requeue_answer(self, woken: int, moved: int) -> int:
        """What a requeue that woke ``woken`` waiters and moved ``moved`` returns."""
        return woken + moved

    @abstractmethod
    def _mmap(self, length: int) -> int: ...

    @abstractmethod
    def store(self, addr: int, value: int) -> None:
        """Write the word at ``addr``."""

    @abstractmethod
    def task(self, urgent: bool = False) -> TaskT:
        """A new task of the process, more urgent than the others if ``urgent``."""

    @abstractmethod
    def wait(
        self, task: TaskT, addr: int, val: int, timeout_ns: int | None = None
    ) -> int | PendingWait:
        """Wait on ``addr`` while it holds ``val``, for ``timeout_ns`` (None: forever)."""

    @abstractmethod
    def wake(self, task: TaskT, addr: int, count: int) -> int:
        """Wake up to ``count`` waiters of ``addr``."""

    @abstractmethod
    def requeue(self, task: TaskT, src: int, dst: int, wake: int, count: int, val: int) -> int:
        """Wake ``wake`` waiters of ``src`` and move up to ``count`` more to ``dst``
        (``val``: the value ``src`` must hold, where the kernel compares)."""

    @abstractmethod
    def check(self) -> None:
        """The kernel's invariants hold."""


@dataclass(frozen=True, kw_only=True)
class LinuxPersonality(Personality[LinuxTask]):
    """Linux futex(2), private ops; SCHED_OTHER tasks all queue at DEFAULT_PRIO."""

    kernel: LinuxKernel
    process: LinuxProcess

    def _mmap(self, length: int) -> int:
        return self.process.mmap(length)

    def store(self, addr: int, value: int) -> None:
        self.process.store_u32(addr, value)

    def task(self, urgent: bool = False) -> LinuxTask:
        if urgent:
            return self.process.new_task(policy=linux_abi.SCHED_FIFO, priority=50)
        return self.process.new_task()

    def wait(
        self, task: LinuxTask, addr: int, val: int, timeout_ns: int | None = None
    ) -> int | PendingWait:
        utime = 0
        if timeout_ns is not None:  # a relative struct timespec (CLOCK_MONOTONIC)
            utime = self.word()
            self.process.write(utime, struct.pack("<qq", *divmod(timeout_ns, 10**9)))
        op = linux_abi.FUTEX_WAIT | linux_abi.FUTEX_PRIVATE_FLAG
        return task.syscall_futex_nb(addr, op, val, utime, 0, 0)

    def wake(self, task: LinuxTask, addr: int, count: int) -> int:
        op = linux_abi.FUTEX_WAKE | linux_abi.FUTEX_PRIVATE_FLAG
        return task.syscall_futex(addr, op, count, 0, 0, 0)

    def requeue(self, task: LinuxTask, src: int, dst: int, wake: int, count: int, val: int) -> int:
        op = linux_abi.FUTEX_CMP_REQUEUE | linux_abi.FUTEX_PRIVATE_FLAG
        return task.syscall_futex(src, op, wake, count, dst, val)

    def check(self) -> None:
        for p in list(self.kernel.processes.values()):
            p.futex.check_invariants()


@dataclass(frozen=True, kw_only=True)
class ZirconPersonality(Personality[Thread]):
    """Zircon's zx_futex_* calls, without owners (ZX_HANDLE_INVALID)."""

    kernel: ZirconKernel
    process: ZirconProcess

    def _mmap(self, length: int) -> int:
        return self.process.mmap(length)

    def store(self, addr: int, value: int) -> None:
        self.process.store_u32(addr, value)

    def task(self, urgent: bool = False) -> Thread:
        priority = 24 if urgent else zircon_abi.ZX_PRIORITY_DEFAULT
        t = self.process.new_thread(priority=priority)
        t.start()
        return t

    def wait(
        self, task: Thread, addr: int, val: int, timeout_ns: int | None = None
    ) -> int | PendingWait:
        deadline = zircon_abi.ZX_TIME_INFINITE
        if timeout_ns is not None:  # an absolute deadline on the monotonic clock
            deadline = self.clock.now(ClockId.MONOTONIC) + timeout_ns
        return task.futex_wait_nb(addr, val, zircon_abi.ZX_HANDLE_INVALID, deadline)

    def wake(self, task: Thread, addr: int, count: int) -> int:
        return task.futex_wake(addr, count)

    def requeue(self, task: Thread, src: int, dst: int, wake: int, count: int, val: int) -> int:
        return task.futex_requeue(src, wake, val, dst, count, zircon_abi.ZX_HANDLE_INVALID)

    def wake_answer(self, woken: int) -> int:
        return zircon_abi.ZX_OK

    def requeue_answer(self, woken: int, moved: int) -> int:
        return zircon_abi.ZX_OK

    def check(self) -> None:
        self.kernel.check_invariants()


@dataclass(frozen=True, kw_only=True)
class LiteosPersonality(Personality[LiteosTask]):
    """LiteOS-A's SysFutex, private ops; timeouts in microseconds, rounded up to ticks."""

    kernel: LiteosKernel
    process: LiteosProcess

    def _mmap(self, length: int) -> int:
        return self.process.mmap(length)

    def store(self, addr: int, value: int) -> None:
        self.process.store_u32(addr, value)

    def task(self, urgent: bool = False) -> LiteosTask:
        if urgent:
            return self.process.new_task(priority=5)
        return self.process.new_task()

    def wait(
        self, task: LiteosTask, addr: int, val: int, timeout_ns: int | None = None
    ) -> int | PendingWait:
        us = liteos_abi.LOS_WAIT_FOREVER if timeout_ns is None else timeout_ns // 1000
        op = liteos_abi.FUTEX_WAIT | liteos_abi.FUTEX_PRIVATE
        return task.syscall_futex_nb(addr, op, val, us, 0)

    def wake(self, task: LiteosTask, addr: int, count: int) -> int:
        op = liteos_abi.FUTEX_WAKE | liteos_abi.FUTEX_PRIVATE
        return task.syscall_futex(addr, op, count, 0, 0)

    def requeue(self, task: LiteosTask, src: int, dst: int, wake: int, count: int, val: int) -> int:
        # OsFutexRequeue has no compare value: ``val`` is not passed.
        op = liteos_abi.FUTEX_REQUEUE | liteos_abi.FUTEX_PRIVATE
        return task.syscall_futex(src, op, wake, count, dst)

    def wake_answer(self, woken: int) -> int:
        return liteos_abi.LOS_OK if woken else super().wake_answer(0)

    def requeue_answer(self, woken: int, moved: int) -> int:
        return liteos_abi.LOS_OK if woken or moved else -liteos_abi.LOS_EBADF

    def check(self) -> None:
        self.kernel.futex.check_invariants()


def make_personality(name: str, clock: ManualClock) -> Personality[Any]:
    """The adapter of personality ``name`` (one of :data:`NAMES`) on ``clock``."""
    if name == "linux":
        linux = LinuxKernel(clock=clock)
        return LinuxPersonality(
            name=name,
            policy=LINUX_POLICY,
            clock=clock,
            woken=0,
            kernel=linux,
            process=linux.new_process(),
        )
    if name == "zircon":
        zircon = ZirconKernel(clock=clock)
        return ZirconPersonality(
            name=name,
            policy=ZIRCON_POLICY,
            clock=clock,
            woken=zircon_abi.ZX_OK,
            kernel=zircon,
            process=zircon.new_process(),
        )
    if name == "liteos":
        liteos = LiteosKernel(clock=clock)
        return LiteosPersonality(
            name=name,
            policy=LITEOS_POLICY,
            clock=clock,
            woken=liteos_abi.LOS_OK,
            kernel=liteos,
            process=liteos.new_process(),
        )
    raise ValueError(f"unknown personality {name!r}")
