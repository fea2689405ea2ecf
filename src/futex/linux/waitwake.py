"""Wait, wake, requeue and wake_op of futex(2) (Linux ``kernel/futex/waitwake.c`` and
``requeue.c``, non-PI), over the core's operations.

Arguments arrive decoded (:mod:`futex.linux.syscalls`); each command runs its own checks
(bitset 0 EINVAL, negative requeue counts EINVAL), then the keys in order (misaligned
EINVAL, inaccessible EFAULT), then the word.

Counts: legacy WAKE, WAKE_BITSET and both halves of WAKE_OP wake at least one waiter
(``if (++ret >= nr_wake) break`` comes after the wake), so a count <= 0 acts as 1; REQUEUE
and CMP_REQUEUE wake exactly up to ``val`` and return woken + requeued.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from futex.kernel import FutexError, MemoryFault, Waiter
from futex.kernel.blocking import PendingWait
from futex.kernel.decode import s32
from futex.kernel.request import Deadline, WaitRequest
from futex.linux import abi
from futex.linux.decode import errno_of, wake_op_fields
from futex.linux.policy import LINUX_POLICY

if TYPE_CHECKING:
    from futex.linux.kernel import Task

__all__ = ["futex_requeue", "futex_wait", "futex_wake", "futex_wake_op"]


def futex_wait(
    task: Task, uaddr: int, private: bool, val: int, deadline: Deadline | None, bitset: int
) -> int | PendingWait:
    """``futex_wait``: queue if the word holds ``val``; ETIMEDOUT at once if the deadline
    has already passed (after the value check, as Linux's expired hrtimer)."""
    process = task.process
    space = process.space
    if private and not uaddr & 3:
        # Fast path: a private key cannot fail for an aligned address, so a word that
        # already differs answers EAGAIN now — a linearizable early check; a fault or a
        # match goes the full way (the key, then the check under the bucket lock).
        try:
            if uaddr <= space.user_ptr_max and space.load_u32(uaddr) != val:
                return -abi.EAGAIN
        except MemoryFault:
            pass
    waiter = Waiter(owner=task, prio=task.queue_prio, tid=task.tid)
    request = WaitRequest(process.futex, space, uaddr, private, val, waiter, LINUX_POLICY, bitset)
    return PendingWait(task, deadline, request, task.kernel.clock, LINUX_POLICY.outcomes).start()


def futex_wake(task: Task, uaddr: int, private: bool, bitset: int, nr_wake: int) -> int:
    """``futex_wake``: up to ``nr_wake`` (at least one) waiters whose bitset meets
    ``bitset``; the number woken, or -errno."""
    process = task.process
    try:
        return process.futex.wake(process.space, uaddr, private, bitset, max(nr_wake, 1))
    except FutexError as exc:
        return errno_of(exc)


def futex_requeue(
    task: Task,
    uaddr: int,
    uaddr2: int,
    private: bool,
    nr_wake: int,
    nr_requeue: int,
    cmpval: int | None,
) -> int:
    """``futex_requeue`` (non-PI): negative counts EINVAL first; returns woken + moved."""
    if nr_wake < 0 or nr_requeue < 0:
        return -abi.EINVAL
    try:
        woken, moved = task.process.futex.requeue(
            task.process.space, uaddr, uaddr2, private, nr_wake, nr_requeue, cmpval
        )
    except FutexError as exc:
        return errno_of(exc)
    return woken + moved


class _UnknownCompare(Exception):
    pass


_UPDATES: dict[int, Callable[[int, int], int]] = {
    abi.FUTEX_OP_SET: lambda old, arg: arg,
    abi.FUTEX_OP_ADD: lambda old, arg: old + arg,
    abi.FUTEX_OP_OR: lambda old, arg: old | arg,
    abi.FUTEX_OP_ANDN: lambda old, arg: old & ~arg,
    abi.FUTEX_OP_XOR: lambda old, arg: old ^ arg,
}

_COMPARES: dict[int, Callable[[int, int], bool]] = {
    abi.FUTEX_OP_CMP_EQ: lambda a, b: a == b,
    abi.FUTEX_OP_CMP_NE: lambda a, b: a != b,
    abi.FUTEX_OP_CMP_LT: lambda a, b: a < b,
    abi.FUTEX_OP_CMP_LE: lambda a, b: a <= b,
    abi.FUTEX_OP_CMP_GT: lambda a, b: a > b,
    abi.FUTEX_OP_CMP_GE: lambda a, b: a >= b,
}


def futex_wake_op(
    task: Task, uaddr: int, uaddr2: int, private: bool, nr_wake: int, nr_wake2: int, encoded: int
) -> int:
    """``futex_wake_op`` + ``futex_atomic_op_inuser``.

    Arguments are signed 12-bit; a shift operand outside 0..31 is masked to 5 bits.  An
    unknown operation is ENOSYS after the keys and before memory is touched; an unknown
    comparison is ENOSYS after the word was written.  The comparison is on the signed old
    value.
    """
    kind, cmp, oparg, cmparg = wake_op_fields(encoded)
    manager = task.process.futex
    space = task.process.space
    update = _UPDATES.get(kind)
    try:
        if update is None:
            manager.key(space, uaddr, private)
            manager.key(space, uaddr2, private, write=True)
            return -abi.ENOSYS
        compare = _COMPARES.get(cmp)

        def cond(old: int) -> bool:
            if compare is None:
                raise _UnknownCompare
            return compare(s32(old), cmparg)

        return manager.wake_op(
            space,
            uaddr,
            uaddr2,
            private,
            max(nr_wake, 1),
            max(nr_wake2, 1),
            lambda old: update(old, oparg),
            cond,
        )
    except _UnknownCompare:
        return -abi.ENOSYS
    except FutexError as exc:
        return errno_of(exc)
