"""Shared by the PI futex tests (``test_pi_*.py``): op and errno names, and :class:`Lab`
(one process, one PI word and the calls on it)."""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

from futex.kernel import ClockId, ManualClock
from futex.linux import LinuxKernel, PendingWait, Process, Task, abi
from tests.support import STATE_TIMEOUT, Blocking

LOCK_PI = abi.FUTEX_LOCK_PI
LOCK_PI2 = abi.FUTEX_LOCK_PI2
TRYLOCK_PI = abi.FUTEX_TRYLOCK_PI
UNLOCK_PI = abi.FUTEX_UNLOCK_PI
PRIV = abi.FUTEX_PRIVATE_FLAG
CLOCK_RT = abi.FUTEX_CLOCK_REALTIME
W = abi.FUTEX_WAITERS
OD = abi.FUTEX_OWNER_DIED
TID = abi.FUTEX_TID_MASK
SEC = 10**9
#: A TID no task has (the host measurements used the same value).
NO_TASK = 0x3FFFFFF0

EDEADLK = -abi.EDEADLK
EPERM = -abi.EPERM
ESRCH = -abi.ESRCH
EINVAL = -abi.EINVAL
EFAULT = -abi.EFAULT
EAGAIN = -abi.EAGAIN
ETIMEDOUT = -abi.ETIMEDOUT
ENOSYS = -abi.ENOSYS


def pending(r: int | PendingWait) -> PendingWait:
    assert isinstance(r, PendingWait), f"expected the call to block, it returned {r}"
    return r


def now(r: int | PendingWait) -> int:
    assert isinstance(r, int), f"expected the call to return at once, it blocked: {r!r}"
    return r


class Lab:
    """One process, one PI word (``a``), and the calls on it.

    ``private``: private ops on a MAP_PRIVATE page; else shared ops (no
    FUTEX_PRIVATE_FLAG) on a MAP_SHARED page.
    """

    def __init__(self, kernel: LinuxKernel, private: bool) -> None:
        self.kernel = kernel
        clock = kernel.clock
        assert isinstance(clock, ManualClock)
        self.clock = clock
        self.private = private
        self.p: Process = kernel.new_process()
        self.fl = PRIV if private else 0
        self.page = self.p.mmap(4096, shared=not private)
        self.a = self.page
        self.b = self.page + 64  # a second word on the same page
        self._scratch = self.p.mmap(4096)
        self.tasks: list[Task] = []

    # -- tasks and memory ---------------------------------------------------------------------

    def task(self, policy: int = abi.SCHED_OTHER, priority: int = 0, nice: int = 0) -> Task:
        t = self.p.new_task(policy=policy, priority=priority, nice=nice)
        self.tasks.append(t)
        return t

    def rt(self, priority: int) -> Task:
        return self.task(abi.SCHED_FIFO, priority)

    def word(self, addr: int | None = None) -> int:
        return self.p.load_u32(self.a if addr is None else addr)

    def set(self, value: int, addr: int | None = None) -> None:
        self.p.store_u32(self.a if addr is None else addr, value)

    def timespec(self, sec: int, nsec: int = 0) -> int:
        self.p.write(self._scratch, struct.pack("<qq", sec, nsec))
        return self._scratch

    def realtime_in(self, ns: int) -> int:
        """A timespec pointer: absolute CLOCK_REALTIME ``ns`` from now."""
        t = self.clock.now(ClockId.REALTIME) + ns
        return self.timespec(t // SEC, t % SEC)

    def monotonic_in(self, ns: int) -> int:
        t = self.clock.now(ClockId.MONOTONIC) + ns
        return self.timespec(t // SEC, t % SEC)

    # -- calls ----------------------------------------------------------------------------------

    def call(
        self, t: Task, cmd: int, addr: int | None = None, utime: int = 0, extra: int = 0
    ) -> int | PendingWait:
        return t.syscall_futex_nb(self.a if addr is None else addr, cmd | self.fl | extra, 0,
                                  utime, 0, 0)

    def lock(self, t: Task, addr: int | None = None, utime: int = 0) -> int | PendingWait:
        return self.call(t, LOCK_PI, addr, utime)

    def blocks(self, t: Task, addr: int | None = None, utime: int = 0,
               cmd: int = LOCK_PI) -> PendingWait:
        return pending(self.call(t, cmd, addr, utime))

    def trylock(self, t: Task, addr: int | None = None) -> int:
        return now(self.call(t, TRYLOCK_PI, addr))

    def unlock(self, t: Task, addr: int | None = None) -> int:
        return now(self.call(t, UNLOCK_PI, addr))

    # -- gVisor's helpers: the user-space CAS first, the system call if it fails ----------

    def ulock(self, t: Task, trylock: bool = False) -> int:
        if self.p.cas_u32(self.a, 0, t.tid) == 0:
            return 0
        return t.syscall_futex(self.a, (TRYLOCK_PI if trylock else LOCK_PI) | self.fl, 0, 0, 0, 0)

    def uunlock(self, t: Task) -> int:
        if self.p.cas_u32(self.a, t.tid, 0) == t.tid:
            return 0
        return t.syscall_futex(self.a, UNLOCK_PI | self.fl, 0, 0, 0, 0)

    # -- observation ----------------------------------------------------------------------------

    def queued(self) -> int:
        return self.p.futex.stats().queued

    def check(self) -> None:
        """PI invariants of every task the test made."""
        for t in self.tasks:
            self.p.futex.pi.check_task(t)


def checked_lab(kernel: LinuxKernel, private: bool) -> Iterator[Lab]:
    """A :class:`Lab` for a fixture: its PI invariants are checked after the test."""
    x = Lab(kernel, private)
    yield x
    x.check()


def run_threads(fns: list[Callable[[], Any]]) -> list[Any]:
    """Start every ``fn`` on its own thread at once (a barrier) and return their results."""
    barrier = threading.Barrier(len(fns))

    def gated(fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            barrier.wait(STATE_TIMEOUT)
            return fn()

        return run

    runs = [Blocking(gated(fn)) for fn in fns]
    return [r.result() for r in runs]
