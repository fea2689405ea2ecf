"""Linux futex ABI constants (x86-64), data only.

The uapi values (``include/uapi/linux/futex.h``: commands, flags, FUTEX_WAKE_OP encoding,
the PI word, futex2) come from their one source, :mod:`futex.uapi`, shared with
:mod:`futex.native`; this module adds what the emulation needs besides: errno numbers
(``include/uapi/asm-generic/errno*.h``; Linux's whatever the host is), kernel-internal
restart codes, x86-64 system call numbers and layouts, time limits, scheduling priorities
(the core's :mod:`futex.kernel.pi` numbers, which are Linux's) and PR_FUTEX_HASH.
"""

from __future__ import annotations

from typing import Final

from futex.kernel.pi import DEFAULT_PRIO, MAX_RT_PRIO
from futex.uapi import (
    FUTEX2_MPOL,
    FUTEX2_NUMA,
    FUTEX2_PRIVATE,
    FUTEX2_SIZE_MASK,
    FUTEX2_SIZE_U8,
    FUTEX2_SIZE_U16,
    FUTEX2_SIZE_U32,
    FUTEX2_SIZE_U64,
    FUTEX_32,
    FUTEX_BITSET_MATCH_ANY,
    FUTEX_CLOCK_REALTIME,
    FUTEX_CMD_MASK,
    FUTEX_CMP_REQUEUE,
    FUTEX_CMP_REQUEUE_PI,
    FUTEX_FD,
    FUTEX_LOCK_PI,
    FUTEX_LOCK_PI2,
    FUTEX_OP,
    FUTEX_OP_ADD,
    FUTEX_OP_ANDN,
    FUTEX_OP_CMP_EQ,
    FUTEX_OP_CMP_GE,
    FUTEX_OP_CMP_GT,
    FUTEX_OP_CMP_LE,
    FUTEX_OP_CMP_LT,
    FUTEX_OP_CMP_NE,
    FUTEX_OP_OPARG_SHIFT,
    FUTEX_OP_OR,
    FUTEX_OP_SET,
    FUTEX_OP_XOR,
    FUTEX_OWNER_DIED,
    FUTEX_PRIVATE_FLAG,
    FUTEX_REQUEUE,
    FUTEX_TID_MASK,
    FUTEX_TRYLOCK_PI,
    FUTEX_UNLOCK_PI,
    FUTEX_WAIT,
    FUTEX_WAIT_BITSET,
    FUTEX_WAIT_REQUEUE_PI,
    FUTEX_WAITERS,
    FUTEX_WAITV_MAX,
    FUTEX_WAITV_SIZE,
    FUTEX_WAKE,
    FUTEX_WAKE_BITSET,
    FUTEX_WAKE_OP,
    ROBUST_LIST_LIMIT,
    SYS_futex_requeue,
    SYS_futex_wait,
    SYS_futex_waitv,
    SYS_futex_wake,
)

__all__ = [
    "CLOCK_REALTIME_COMMANDS",
    "COMMAND_NAMES",
    "DEFAULT_PRIO",
    "EAGAIN",
    "EBUSY",
    "EDEADLK",
    "EFAULT",
    "EINTR",
    "EINVAL",
    "ENOMEM",
    "ENOSYS",
    "EPERM",
    "ERESTARTNOINTR",
    "ERESTARTSYS",
    "ERESTART_RESTARTBLOCK",
    "ESRCH",
    "ETIMEDOUT",
    "EWOULDBLOCK",
    "FH_FLAG_IMMUTABLE",
    "FUTEX2_MPOL",
    "FUTEX2_NUMA",
    "FUTEX2_PRIVATE",
    "FUTEX2_SIZE_MASK",
    "FUTEX2_SIZE_U16",
    "FUTEX2_SIZE_U32",
    "FUTEX2_SIZE_U64",
    "FUTEX2_SIZE_U8",
    "FUTEX_32",
    "FUTEX_BITSET_MATCH_ANY",
    "FUTEX_CLOCK_REALTIME",
    "FUTEX_CMD_MASK",
    "FUTEX_CMP_REQUEUE",
    "FUTEX_CMP_REQUEUE_PI",
    "FUTEX_FD",
    "FUTEX_LOCK_PI",
    "FUTEX_LOCK_PI2",
    "FUTEX_OP",
    "FUTEX_OP_ADD",
    "FUTEX_OP_ANDN",
    "FUTEX_OP_CMP_EQ",
    "FUTEX_OP_CMP_GE",
    "FUTEX_OP_CMP_GT",
    "FUTEX_OP_CMP_LE",
    "FUTEX_OP_CMP_LT",
    "FUTEX_OP_CMP_NE",
    "FUTEX_OP_OPARG_SHIFT",
    "FUTEX_OP_OR",
    "FUTEX_OP_SET",
    "FUTEX_OP_XOR",
    "FUTEX_OWNER_DIED",
    "FUTEX_PRIVATE_FLAG",
    "FUTEX_REQUEUE",
    "FUTEX_TID_MASK",
    "FUTEX_TRYLOCK_PI",
    "FUTEX_UNLOCK_PI",
    "FUTEX_WAIT",
    "FUTEX_WAITERS",
    "FUTEX_WAITV_MAX",
    "FUTEX_WAITV_SIZE",
    "FUTEX_WAIT_BITSET",
    "FUTEX_WAIT_REQUEUE_PI",
    "FUTEX_WAKE",
    "FUTEX_WAKE_BITSET",
    "FUTEX_WAKE_OP",
    "KTIME_MAX",
    "KTIME_SEC_MAX",
    "MAX_RT_PRIO",
    "NSEC_PER_SEC",
    "PI_COMMANDS",
    "PR_FUTEX_HASH",
    "PR_FUTEX_HASH_GET_IMMUTABLE",
    "PR_FUTEX_HASH_GET_SLOTS",
    "PR_FUTEX_HASH_SET_SLOTS",
    "ROBUST_LIST_HEAD_SIZE",
    "ROBUST_LIST_LIMIT",
    "SCHED_FIFO",
    "SCHED_OTHER",
    "SCHED_RR",
    "SYS_futex",
    "SYS_futex_requeue",
    "SYS_futex_wait",
    "SYS_futex_waitv",
    "SYS_futex_wake",
    "SYS_get_robust_list",
    "SYS_prctl",
    "SYS_set_robust_list",
    "TIMEOUT_COMMANDS",
    "TIMESPEC_SIZE",
]

COMMAND_NAMES: Final = {
    FUTEX_WAIT: "WAIT",
    FUTEX_WAKE: "WAKE",
    FUTEX_FD: "FD",
    FUTEX_REQUEUE: "REQUEUE",
    FUTEX_CMP_REQUEUE: "CMP_REQUEUE",
    FUTEX_WAKE_OP: "WAKE_OP",
    FUTEX_LOCK_PI: "LOCK_PI",
    FUTEX_UNLOCK_PI: "UNLOCK_PI",
    FUTEX_TRYLOCK_PI: "TRYLOCK_PI",
    FUTEX_WAIT_BITSET: "WAIT_BITSET",
    FUTEX_WAKE_BITSET: "WAKE_BITSET",
    FUTEX_WAIT_REQUEUE_PI: "WAIT_REQUEUE_PI",
    FUTEX_CMP_REQUEUE_PI: "CMP_REQUEUE_PI",
    FUTEX_LOCK_PI2: "LOCK_PI2",
}

#: Commands whose fourth argument is a timeout pointer (``futex_cmd_has_timeout``).
TIMEOUT_COMMANDS: Final = frozenset(
    {FUTEX_WAIT, FUTEX_LOCK_PI, FUTEX_LOCK_PI2, FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI}
)
#: Commands that accept FUTEX_CLOCK_REALTIME (``do_futex``).
CLOCK_REALTIME_COMMANDS: Final = frozenset(
    {FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI, FUTEX_LOCK_PI2}
)
#: The PI commands (``kernel/futex/pi.c`` and requeue-PI).
PI_COMMANDS: Final = frozenset(
    {
        FUTEX_LOCK_PI,
        FUTEX_UNLOCK_PI,
        FUTEX_TRYLOCK_PI,
        FUTEX_WAIT_REQUEUE_PI,
        FUTEX_CMP_REQUEUE_PI,
        FUTEX_LOCK_PI2,
    }
)

# Time
NSEC_PER_SEC: Final = 1_000_000_000
KTIME_MAX: Final = (1 << 63) - 1
KTIME_SEC_MAX: Final = KTIME_MAX // NSEC_PER_SEC
TIMESPEC_SIZE: Final = 16  # struct __kernel_timespec { s64 tv_sec; s64 tv_nsec; }

# errno (asm-generic)
EPERM: Final = 1
ESRCH: Final = 3
EINTR: Final = 4
EAGAIN: Final = 11
ENOMEM: Final = 12
EFAULT: Final = 14
EINVAL: Final = 22
EDEADLK: Final = 35
ENOSYS: Final = 38
ETIMEDOUT: Final = 110
EWOULDBLOCK: Final = EAGAIN
#: errno of SET_SLOTS after the process went back to the global hash for good
EBUSY: Final = 16

# Kernel-internal restart codes (never returned to user space)
ERESTARTSYS: Final = 512
ERESTARTNOINTR: Final = 513
ERESTART_RESTARTBLOCK: Final = 516

# x86-64 system call numbers of the futex family (the futex2 ones are asm-generic: uapi)
SYS_futex: Final = 202
SYS_set_robust_list: Final = 273
SYS_get_robust_list: Final = 274

# Robust lists (struct robust_list_head on x86-64: next, futex_offset, list_op_pending)
ROBUST_LIST_HEAD_SIZE: Final = 24

# Scheduling (for PI and queue order); MAX_RT_PRIO and DEFAULT_PRIO (nice 0) are the
# core's (futex.kernel.pi), which are Linux's.
SCHED_OTHER: Final = 0
SCHED_FIFO: Final = 1
SCHED_RR: Final = 2

# prctl(2) and PR_FUTEX_HASH (include/uapi/linux/prctl.h; see futex.linux.futexhash)
SYS_prctl: Final = 157
PR_FUTEX_HASH: Final = 78
PR_FUTEX_HASH_SET_SLOTS: Final = 1
PR_FUTEX_HASH_GET_SLOTS: Final = 2
#: Linux 6.16 only (removed in 6.17 with the flag below): is the private hash immutable?
PR_FUTEX_HASH_GET_IMMUTABLE: Final = 3
#: Linux 6.16 only: SET_SLOTS's fourth argument, "make the private hash immutable".
FH_FLAG_IMMUTABLE: Final = 1
