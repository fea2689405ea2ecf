"""futex_waitv (449) and the futex2 calls futex_wake / futex_wait / futex_requeue (454-456).

(Placeholder: implemented by the futex2 work of the PI/robust issue.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from futex.linux import abi
from futex.linux.blocking import PendingWait

if TYPE_CHECKING:
    from futex.linux.kernel import Task

__all__ = ["sys_futex_requeue", "sys_futex_wait", "sys_futex_waitv", "sys_futex_wake"]


def sys_futex_waitv(
    task: Task, waiters: int, nr: int, flags: int, timeout: int, clockid: int, _a5: int
) -> int | PendingWait:
    """futex_waitv(2)."""
    return -abi.ENOSYS


def sys_futex_wake(
    task: Task, uaddr: int, mask: int, nr: int, flags: int, _a4: int, _a5: int
) -> int:
    """futex_wake(2)."""
    return -abi.ENOSYS


def sys_futex_wait(
    task: Task, uaddr: int, val: int, mask: int, flags: int, timeout: int, clockid: int
) -> int | PendingWait:
    """futex_wait(2)."""
    return -abi.ENOSYS


def sys_futex_requeue(
    task: Task, waiters: int, flags: int, nr_wake: int, nr_requeue: int, _a4: int, _a5: int
) -> int:
    """futex_requeue(2)."""
    return -abi.ENOSYS
