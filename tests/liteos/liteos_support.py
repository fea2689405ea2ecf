"""Shared by the LiteOS-A futex tests (``test_liteos_*.py``): op and LOS error names, and
the helpers that start a wait and set up one process with tasks of given priorities."""

from __future__ import annotations

from dataclasses import dataclass

from futex.liteos import (
    LiteosKernel,
    PendingWait,
    Process,
    QueuedTask,
    Task,
    abi,
)
from futex.memory import PAGE_SIZE

WAIT = abi.FUTEX_WAIT
WAKE = abi.FUTEX_WAKE
REQUEUE = abi.FUTEX_REQUEUE
PRIV = abi.FUTEX_PRIVATE
WAIT_P = WAIT | PRIV
WAKE_P = WAKE | PRIV
REQUEUE_P = REQUEUE | PRIV
FOREVER = abi.LOS_WAIT_FOREVER
EINVAL, EBADF, ETIMEDOUT, EINTR = abi.LOS_EINVAL, abi.LOS_EBADF, abi.LOS_ETIMEDOUT, abi.LOS_EINTR
MS = 10**6
US = 10**3


def pending(r: int | PendingWait) -> PendingWait:
    assert isinstance(r, PendingWait), f"expected the call to block, it returned {r}"
    return r


def wait(t: Task, addr: int, val: int = 0, us: int = FOREVER, flags: int = WAIT_P) -> PendingWait:
    return pending(t.syscall_futex_nb(addr, flags, val, us, 0))


def chain(*tasks: Task) -> tuple[QueuedTask, ...]:
    return tuple(QueuedTask(t.tid, t.priority) for t in tasks)


@dataclass(frozen=True)
class Setup:
    """A process, a private page (``addr``: its first word) and tasks of given priorities."""

    process: Process
    addr: int
    tasks: tuple[Task, ...]


def setup(k: LiteosKernel, *prios: int) -> Setup:
    """A new process of ``k`` with a fresh page and one task per priority in ``prios``."""
    p = k.new_process()
    tasks = tuple(p.new_task(priority=pr) for pr in prios)
    return Setup(process=p, addr=p.mmap(PAGE_SIZE), tasks=tasks)
