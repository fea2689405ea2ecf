"""Linux's argument decoding: register layouts, timeouts and errno, for every futex call.

Registers are truncated as the C prototypes do (:class:`~futex.kernel.decode.RegisterLayout`;
a non-int raises ``TypeError`` naming the register):

==================  ===========================================================
call                registers (C types)
==================  ===========================================================
futex(2)            ``u32 *uaddr``, ``int op`` (as u32), ``u32 val``, ``utime``
                    pointer (or ``u32 val2``), ``u32 *uaddr2``, ``u32 val3``
futex_waitv         ``waiters`` pointer, ``unsigned int nr_futexes``, ``unsigned
                    int flags``, ``timeout`` pointer, ``int clockid``
futex_wake          ``uaddr``, ``unsigned long mask``, ``int nr``, ``unsigned int
                    flags``
futex_wait          ``uaddr``, ``unsigned long val``, ``unsigned long mask``,
                    ``unsigned int flags``, ``timeout`` pointer, ``int clockid``
futex_requeue       ``waiters`` pointer, ``unsigned int flags``, ``int nr_wake``,
                    ``int nr_requeue``
==================  ===========================================================

Timeouts (``get_timespec64`` + ``futex_init_timeout``, :func:`read_timeout`): the
timespec is read (EFAULT) and validated (EINVAL: ``tv_sec < 0`` or ``tv_nsec`` outside
``[0, 1e9)``).  WAIT's timeout is relative to CLOCK_MONOTONIC; WAIT_BITSET and
WAIT_REQUEUE_PI/LOCK_PI2 are absolute on the monotonic clock, or realtime with
FUTEX_CLOCK_REALTIME; LOCK_PI is absolute on CLOCK_REALTIME.  Before 5.13
(``LinuxFacts.wait_rejects_clock_realtime`` false; 4fbf5d6837bf reverted 4.5's
337f13046ff0) FUTEX_WAIT took FUTEX_CLOCK_REALTIME too, and its relative timeout, added to
CLOCK_MONOTONIC's now, was armed as an absolute CLOCK_REALTIME deadline -- which a wall
clock ahead of the uptime has already passed.

Errors of the core answer what :data:`~futex.linux.policy.LINUX_POLICY` says
(:func:`errno_of`: misaligned EINVAL, fault EFAULT, value mismatch EAGAIN, a PI waiter met
by a plain operation EINVAL).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from futex.kernel import ClockId, FutexError, MemoryFault
from futex.kernel.decode import RegisterLayout, error_code, sign_extend
from futex.kernel.request import Deadline
from futex.linux import abi
from futex.linux.policy import LINUX_POLICY

if TYPE_CHECKING:
    from futex.linux.kernel import Task

__all__ = [
    "FUTEX2_REQUEUE_REGISTERS",
    "FUTEX2_WAITV_REGISTERS",
    "FUTEX2_WAIT_REGISTERS",
    "FUTEX2_WAKE_REGISTERS",
    "FUTEX_REGISTERS",
    "errno_of",
    "read_timeout",
    "reread_timeout",
    "wake_op_fields",
]

_TIMESPEC = struct.Struct("<qq")

#: futex(2): ``sys_futex``'s prototype.
FUTEX_REGISTERS = RegisterLayout(
    "futex register",
    uaddr="u64", futex_op="u32", val="u32", utime="u64", uaddr2="u64", val3="u32",
)
#: futex_waitv(2).
FUTEX2_WAITV_REGISTERS = RegisterLayout(
    "futex register",
    waiters="u64", nr_futexes="u32", flags="u32", timeout="u64", clockid="s32",
)
#: futex_wake(2).
FUTEX2_WAKE_REGISTERS = RegisterLayout(
    "futex register", uaddr="u64", mask="u64", nr="s32", flags="u32"
)
#: futex_wait(2).
FUTEX2_WAIT_REGISTERS = RegisterLayout(
    "futex register",
    uaddr="u64", val="u64", mask="u64", flags="u32", timeout="u64", clockid="s32",
)
#: futex_requeue(2).
FUTEX2_REQUEUE_REGISTERS = RegisterLayout(
    "futex register", waiters="u64", flags="u32", nr_wake="s32", nr_requeue="s32"
)


def errno_of(exc: FutexError) -> int:
    """The -errno Linux answers for a core error (or a target's subclass of one); any
    other error is raised again."""
    return error_code(exc, LINUX_POLICY)


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


def reread_timeout(task: Task, op: int, utime: int) -> Deadline | int | None:
    """The deadline a restarted call reads from ``utime`` (or -errno), as sys_futex does:
    ERESTARTNOINTR runs the whole system call again."""
    if not utime:
        return None
    return read_timeout(task, utime, op & abi.FUTEX_CMD_MASK, op)


def wake_op_fields(encoded: int) -> tuple[int, int, int, int]:
    """FUTEX_WAKE_OP's ``val3``: ``(op, cmp, oparg, cmparg)``, the arguments signed
    12-bit and a shifted ``oparg`` (FUTEX_OP_OPARG_SHIFT) already ``1 << (oparg & 31)``."""
    kind = (encoded >> 28) & 7
    cmp = (encoded >> 24) & 0xF
    oparg = sign_extend((encoded >> 12) & 0xFFF, 12)
    cmparg = sign_extend(encoded & 0xFFF, 12)
    if encoded & (abi.FUTEX_OP_OPARG_SHIFT << 28):
        oparg = 1 << (oparg & 31)
    return kind, cmp, oparg, cmparg
