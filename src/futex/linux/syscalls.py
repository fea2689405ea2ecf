"""System-call dispatch: ``task.syscall(nr, *args)`` for the x86-64 numbers of the futex
family, and futex(2)'s own dispatch on its command (``sys_futex`` + ``do_futex`` of
``kernel/futex/syscalls.c``).  Nothing is decided here but which handler runs.

Each handler takes the task and the six raw register values and returns an int (>= 0 or
-errno) or a :class:`~futex.kernel.blocking.PendingWait`; any other number is ENOSYS, as
is a number the kernel's release does not have (:class:`~futex.linux.facts.LinuxFacts`).

futex(2) runs its checks in Linux's order:

1. ``sys_futex``: the registers are truncated (:mod:`futex.linux.decode`); a timeout
   pointer, for the commands that take one, is read (EFAULT) and validated (EINVAL) --
   before the command itself is looked at.
2. ``do_futex``: FUTEX_CLOCK_REALTIME with any command but WAIT_BITSET, WAIT_REQUEUE_PI
   and LOCK_PI2 is ENOSYS (FUTEX_WAIT took it before 5.13: see
   :mod:`futex.linux.decode`); unknown commands and FUTEX_FD are ENOSYS; LOCK_PI2 before
   5.14 is an unknown command, whose timeout is never read.
3. The command (:mod:`futex.linux.waitwake`, :mod:`futex.linux.pi`,
   :mod:`futex.linux.requeue_pi`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from futex.kernel import MATCH_ANY
from futex.kernel.blocking import PendingWait
from futex.kernel.decode import s32
from futex.kernel.request import Deadline
from futex.linux import abi, futex2, futexhash, robust
from futex.linux.decode import FUTEX_REGISTERS, read_timeout
from futex.linux.pi import futex_lock_pi, futex_unlock_pi
from futex.linux.requeue_pi import futex_cmp_requeue_pi, futex_wait_requeue_pi
from futex.linux.waitwake import futex_requeue, futex_wait, futex_wake, futex_wake_op

if TYPE_CHECKING:
    from futex.linux.kernel import Task

__all__ = ["NAMES", "NEEDS", "SYSCALLS", "sys_futex", "syscall"]

_COMMAND_NAMES = abi.COMMAND_NAMES


def sys_futex(
    task: Task, uaddr: int, op: int, val: int, utime: int, uaddr2: int, val3: int
) -> int | PendingWait:
    """The futex system call on ``task``: an int (>= 0 or -errno) or a blocked call."""
    uaddr, op, val, utime, uaddr2, val3 = FUTEX_REGISTERS.decode(uaddr, op, val, utime,
                                                                 uaddr2, val3)
    cmd = op & abi.FUTEX_CMD_MASK
    task.calls[_COMMAND_NAMES.get(cmd, "OTHER")] += 1  # Task.calls: futex(2) by command
    if cmd == abi.FUTEX_LOCK_PI2 and not task.kernel.facts.lock_pi2:
        return -abi.ENOSYS  # before 5.14 an unknown command, whose timeout is never read
    deadline: Deadline | None = None
    if utime and cmd in abi.TIMEOUT_COMMANDS:
        got = read_timeout(task, utime, cmd, op)
        if isinstance(got, int):
            return got
        deadline = got
    if (
        op & abi.FUTEX_CLOCK_REALTIME
        and cmd not in abi.CLOCK_REALTIME_COMMANDS
        and (cmd != abi.FUTEX_WAIT or task.kernel.facts.wait_rejects_clock_realtime)
    ):
        return -abi.ENOSYS
    private = bool(op & abi.FUTEX_PRIVATE_FLAG)
    if cmd == abi.FUTEX_WAIT or cmd == abi.FUTEX_WAIT_BITSET:
        bitset = MATCH_ANY if cmd == abi.FUTEX_WAIT else val3
        if not bitset:
            return -abi.EINVAL
        return futex_wait(task, uaddr, private, val, deadline, bitset)
    if cmd == abi.FUTEX_WAKE or cmd == abi.FUTEX_WAKE_BITSET:
        bitset = MATCH_ANY if cmd == abi.FUTEX_WAKE else val3
        if not bitset:
            return -abi.EINVAL
        return futex_wake(task, uaddr, private, bitset, s32(val))
    if cmd == abi.FUTEX_REQUEUE or cmd == abi.FUTEX_CMP_REQUEUE:
        cmpval = val3 if cmd == abi.FUTEX_CMP_REQUEUE else None
        return futex_requeue(task, uaddr, uaddr2, private, s32(val), s32(utime), cmpval)
    if cmd == abi.FUTEX_WAKE_OP:
        return futex_wake_op(task, uaddr, uaddr2, private, s32(val), s32(utime), val3)
    if cmd == abi.FUTEX_LOCK_PI or cmd == abi.FUTEX_LOCK_PI2:
        return futex_lock_pi(task, uaddr, private, deadline, False, op, utime)
    if cmd == abi.FUTEX_TRYLOCK_PI:
        return futex_lock_pi(task, uaddr, private, None, True)
    if cmd == abi.FUTEX_UNLOCK_PI:
        return futex_unlock_pi(task, uaddr, private)
    if cmd == abi.FUTEX_WAIT_REQUEUE_PI:
        return futex_wait_requeue_pi(task, uaddr, uaddr2, private, val, deadline, op, utime)
    if cmd == abi.FUTEX_CMP_REQUEUE_PI:
        return futex_cmp_requeue_pi(task, uaddr, uaddr2, private, s32(val), s32(utime), val3)
    return -abi.ENOSYS  # FUTEX_FD and unknown commands


# -- the system call table ------------------------------------------------------------------

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
    if not isinstance(nr, int):  # a register, like the arguments
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
