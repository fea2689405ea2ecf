"""futex(2) argument decoding: ``sys_futex`` and ``do_futex`` of ``kernel/futex/syscalls.c``.

The six register values arrive as Python ints and are truncated as the C prototype does
(``u32 *uaddr``, ``int op``, ``u32 val``, ``utime`` pointer or ``u32 val2``, ``u32
*uaddr2``, ``u32 val3``).  The checks run in Linux's order:

1. ``sys_futex``: a timeout pointer, for the commands that take one, is read (EFAULT) and
   validated (EINVAL: ``tv_sec < 0`` or ``tv_nsec`` outside ``[0, 1e9)``) — before the
   command itself is looked at.  WAIT's timeout is relative to CLOCK_MONOTONIC; WAIT_BITSET
   and WAIT_REQUEUE_PI/LOCK_PI2 are absolute on the monotonic clock, or realtime with
   FUTEX_CLOCK_REALTIME; LOCK_PI is absolute on CLOCK_REALTIME.
2. ``do_futex``: FUTEX_CLOCK_REALTIME with any command but WAIT_BITSET, WAIT_REQUEUE_PI
   and LOCK_PI2 is ENOSYS; unknown commands and FUTEX_FD are ENOSYS.  Before 5.13
   (``LinuxFacts.wait_rejects_clock_realtime`` false; 4fbf5d6837bf reverted 4.5's
   337f13046ff0) FUTEX_WAIT took the flag too, and its relative timeout, added to
   CLOCK_MONOTONIC's now, was armed as an absolute CLOCK_REALTIME deadline -- which a wall
   clock ahead of the uptime has already passed.
3. The command: its own argument checks (bitset 0 EINVAL, negative requeue counts EINVAL),
   then the keys in order (misaligned EINVAL, inaccessible EFAULT), then the word.

Counts: legacy WAKE, WAKE_BITSET and both halves of WAKE_OP wake at least one waiter
(``if (++ret >= nr_wake) break`` comes after the wake), so a count <= 0 acts as 1; REQUEUE
and CMP_REQUEUE wake exactly up to ``val`` and return woken + requeued.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from futex.kernel import (
    MATCH_ANY,
    ClockId,
    MemoryFault,
    MisalignedAddress,
    PiWaiterConflict,
    ValueMismatch,
    Waiter,
)
from futex.linux import abi
from futex.linux.blocking import Deadline, PendingWait
from futex.linux.pi import futex_lock_pi, futex_unlock_pi
from futex.linux.policy import LINUX_POLICY
from futex.linux.requeue_pi import futex_cmp_requeue_pi, futex_wait_requeue_pi

if TYPE_CHECKING:
    from futex.linux.kernel import Task

__all__ = ["sys_futex"]

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF
_TIMESPEC = struct.Struct("<qq")


def _s32(v: int) -> int:
    v &= _U32
    return v - (1 << 32) if v & 0x80000000 else v


def _sext12(v: int) -> int:
    return v - 0x1000 if v & 0x800 else v


_ERRNO: dict[type[Exception], int] = {
    MisalignedAddress: -abi.EINVAL,
    MemoryFault: -abi.EFAULT,
    ValueMismatch: LINUX_POLICY.value_mismatch,
    PiWaiterConflict: -abi.EINVAL,
}


def _errno_of(exc: Exception) -> int:
    """The -errno Linux answers for a core error (or a target's subclass of one)."""
    for cls in type(exc).__mro__:
        if cls in _ERRNO:
            return _ERRNO[cls]
    raise exc


def _bad_register(**regs: object) -> NoReturn:
    for name, value in regs.items():
        if not isinstance(value, int):
            raise TypeError(
                f"futex register {name} must be an int, got {type(value).__name__}: {value!r}"
            )
    raise TypeError("futex registers must be ints")


def read_timeout(task: Task, utime: int, cmd: int, op: int) -> Deadline | int:
    """``get_timespec64`` + ``futex_init_timeout``: the absolute deadline, or -errno."""
    try:
        raw = task.process.space.read(utime, abi.TIMESPEC_SIZE)
    except MemoryFault:
        return -abi.EFAULT
    tv_sec, tv_nsec = _TIMESPEC.unpack(raw)
    if tv_sec < 0 or not 0 <= tv_nsec < abi.NSEC_PER_SEC:
        return -abi.EINVAL
    t = abi.KTIME_MAX if tv_sec >= abi.KTIME_SEC_MAX else tv_sec * abi.NSEC_PER_SEC + tv_nsec
    if cmd == abi.FUTEX_WAIT:
        # ktime_add_safe: an overflowing sum saturates to KTIME_SEC_MAX seconds
        t += task.kernel.clock.now(ClockId.MONOTONIC)
        t = t if t <= abi.KTIME_MAX else abi.KTIME_SEC_MAX * abi.NSEC_PER_SEC
        if op & abi.FUTEX_CLOCK_REALTIME and not task.kernel.facts.wait_rejects_clock_realtime:
            # before 5.13: the monotonic sum armed on CLOCK_REALTIME (337f13046ff0's bug)
            return ClockId.REALTIME, t
        return ClockId.MONOTONIC, t
    if cmd == abi.FUTEX_LOCK_PI or op & abi.FUTEX_CLOCK_REALTIME:
        return ClockId.REALTIME, t
    return ClockId.MONOTONIC, t


def sys_futex(
    task: Task, uaddr: int, op: int, val: int, utime: int, uaddr2: int, val3: int
) -> int | PendingWait:
    """The futex system call on ``task``: an int (>= 0 or -errno) or a blocked call."""
    try:
        uaddr &= _U64
        op &= _U32
        val &= _U32
        utime &= _U64
        uaddr2 &= _U64
        val3 &= _U32
    except TypeError:
        _bad_register(uaddr=uaddr, futex_op=op, val=val, utime=utime, uaddr2=uaddr2, val3=val3)
    cmd = op & abi.FUTEX_CMD_MASK
    task.count_call(cmd)
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
        try:
            return task.process.futex.wake(
                task.process.space, uaddr, private, bitset, max(_s32(val), 1)
            )
        except (MisalignedAddress, MemoryFault, PiWaiterConflict) as exc:
            return _errno_of(exc)
    if cmd == abi.FUTEX_REQUEUE or cmd == abi.FUTEX_CMP_REQUEUE:
        cmpval = val3 if cmd == abi.FUTEX_CMP_REQUEUE else None
        return futex_requeue(task, uaddr, uaddr2, private, _s32(val), _s32(utime), cmpval)
    if cmd == abi.FUTEX_WAKE_OP:
        return futex_wake_op(task, uaddr, uaddr2, private, _s32(val), _s32(utime), val3)
    if cmd == abi.FUTEX_LOCK_PI or cmd == abi.FUTEX_LOCK_PI2:
        return futex_lock_pi(task, uaddr, private, deadline, False, op, utime)
    if cmd == abi.FUTEX_TRYLOCK_PI:
        return futex_lock_pi(task, uaddr, private, None, True)
    if cmd == abi.FUTEX_UNLOCK_PI:
        return futex_unlock_pi(task, uaddr, private)
    if cmd == abi.FUTEX_WAIT_REQUEUE_PI:
        return futex_wait_requeue_pi(task, uaddr, uaddr2, private, val, deadline, op, utime)
    if cmd == abi.FUTEX_CMP_REQUEUE_PI:
        return futex_cmp_requeue_pi(task, uaddr, uaddr2, private, _s32(val), _s32(utime), val3)
    return -abi.ENOSYS  # FUTEX_FD and unknown commands


class WaitRequest:
    """One FUTEX_WAIT / WAIT_BITSET: its waiter and arguments, kept for restarts (the
    restart block of ``futex_wait_restart``)."""

    __slots__ = ("bitset", "manager", "private", "space", "uaddr", "val", "waiter")

    def __init__(self, task: Task, uaddr: int, private: bool, val: int, bitset: int) -> None:
        self.manager = task.process.futex
        self.space = task.process.space
        self.uaddr = uaddr
        self.private = private
        self.val = val
        self.bitset = bitset
        self.waiter = Waiter(owner=task, prio=task.queue_prio, tid=task.tid)

    def prepare(self, notify: Callable[[Waiter], None]) -> int | None:
        """Queue the waiter if the word holds ``val``: ``None``, or the call's -errno."""
        w = self.waiter
        w.notify = notify
        try:
            if self.manager.try_wait_prepare(
                w, self.space, self.uaddr, self.private, self.val, self.bitset
            ) is None:
                return None
        except (MisalignedAddress, MemoryFault) as exc:
            return _errno_of(exc)
        return -abi.EAGAIN

    def complete(self) -> int | None:
        """0 if a waker dequeued the waiter, else dequeue it and answer ``None``."""
        return 0 if self.manager.wait_complete(self.waiter) else None

    def detach(self) -> None:
        self.waiter.notify = None


def futex_wait(
    task: Task, uaddr: int, private: bool, val: int, deadline: Deadline | None, bitset: int
) -> int | PendingWait:
    """``futex_wait``: queue if the word holds ``val``; ETIMEDOUT at once if the deadline
    has already passed (after the value check, as Linux's expired hrtimer)."""
    if private and not uaddr & 3:
        # Fast path: a private key cannot fail for an aligned address, so a word that
        # already differs answers EAGAIN now — a linearizable early check; a fault or a
        # match goes the full way (the key, then the check under the bucket lock).
        space = task.process.space
        try:
            if uaddr <= space.user_ptr_max and space.load_u32(uaddr) != val:
                return -abi.EAGAIN
        except MemoryFault:
            pass
    request = WaitRequest(task, uaddr, private, val, bitset)
    return PendingWait(task, deadline, request, task.kernel.clock).start()


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
    except (MisalignedAddress, MemoryFault, ValueMismatch, PiWaiterConflict) as exc:
        return _errno_of(exc)
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
    kind = (encoded >> 28) & 7
    cmp = (encoded >> 24) & 0xF
    oparg = _sext12((encoded >> 12) & 0xFFF)
    cmparg = _sext12(encoded & 0xFFF)
    if encoded & (abi.FUTEX_OP_OPARG_SHIFT << 28):
        oparg = 1 << (oparg & 31)
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
            return compare(_s32(old), cmparg)

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
    except (MisalignedAddress, MemoryFault, PiWaiterConflict) as exc:
        return _errno_of(exc)
