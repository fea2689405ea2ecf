"""System-call entry: ``task.syscall(nr, *args)`` for the x86-64 numbers of the futex
family.  Each handler takes the task and the six raw register values and returns an int
(>= 0 or -errno) or a :class:`~futex.linux.blocking.PendingWait`; any other number is
ENOSYS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from futex.linux import abi, futex2, futexhash, robust
from futex.linux.blocking import PendingWait
from futex.linux.syscalls import sys_futex

if TYPE_CHECKING:
    from futex.linux.kernel import Task

__all__ = ["SYSCALLS", "syscall"]

Handler = Callable[["Task", int, int, int, int, int, int], "int | PendingWait"]

SYSCALLS: dict[int, Handler] = {
    abi.SYS_futex: sys_futex,
    abi.SYS_set_robust_list: robust.sys_set_robust_list,
    abi.SYS_get_robust_list: robust.sys_get_robust_list,
    abi.SYS_futex_waitv: futex2.sys_futex_waitv,
    abi.SYS_futex_wake: futex2.sys_futex_wake,
    abi.SYS_futex_wait: futex2.sys_futex_wait,
    abi.SYS_futex_requeue: futex2.sys_futex_requeue,
    abi.SYS_prctl: futexhash.sys_prctl,  # PR_FUTEX_HASH only; other options EINVAL
}


#: Names under which :meth:`Task.calls` counts the calls (futex(2) counts by command).
NAMES: dict[int, str] = {
    abi.SYS_set_robust_list: "set_robust_list",
    abi.SYS_get_robust_list: "get_robust_list",
    abi.SYS_futex_waitv: "futex_waitv",
    abi.SYS_futex_wake: "futex_wake",
    abi.SYS_futex_wait: "futex_wait",
    abi.SYS_futex_requeue: "futex_requeue",
    abi.SYS_prctl: "prctl",
}


#: The :class:`~futex.linux.facts.LinuxFacts` field a system call needs (absent: ENOSYS).
NEEDS: dict[int, str] = {
    abi.SYS_futex_waitv: "futex_waitv",
    abi.SYS_futex_wake: "futex2",
    abi.SYS_futex_wait: "futex2",
    abi.SYS_futex_requeue: "futex2",
}


def syscall(task: Task, nr: int, args: tuple[int, ...]) -> int | PendingWait:
    """Dispatch system call ``nr`` with up to six register values (missing ones are 0).
    A number the kernel's release does not have is ENOSYS, as any unknown one."""
    if not isinstance(nr, int):  # a register, like the arguments (see _bad_register)
        raise TypeError(f"the system call number must be an int, got {type(nr).__name__}: {nr!r}")
    if len(args) > 6:
        raise TypeError(f"a system call takes at most 6 arguments, got {len(args)}")
    handler = SYSCALLS.get(nr)
    if handler is None:
        return -abi.ENOSYS
    need = NEEDS.get(nr)
    if need is not None and not getattr(task.kernel.facts, need):
        return -abi.ENOSYS
    name = NAMES.get(nr)
    if name is not None:
        task.calls[name] += 1
    a = (*args, 0, 0, 0, 0, 0, 0)
    return handler(task, a[0], a[1], a[2], a[3], a[4], a[5])
