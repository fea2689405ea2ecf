"""Linux futex ABI constants (x86-64), data only.

Values from ``include/uapi/linux/futex.h`` and ``include/uapi/asm-generic/errno*.h``; the
errno numbers are Linux's whatever the host is.
"""

from __future__ import annotations

from typing import Final

# futex(2) commands
FUTEX_WAIT: Final = 0
FUTEX_WAKE: Final = 1
FUTEX_FD: Final = 2
FUTEX_REQUEUE: Final = 3
FUTEX_CMP_REQUEUE: Final = 4
FUTEX_WAKE_OP: Final = 5
FUTEX_LOCK_PI: Final = 6
FUTEX_UNLOCK_PI: Final = 7
FUTEX_TRYLOCK_PI: Final = 8
FUTEX_WAIT_BITSET: Final = 9
FUTEX_WAKE_BITSET: Final = 10
FUTEX_WAIT_REQUEUE_PI: Final = 11
FUTEX_CMP_REQUEUE_PI: Final = 12
FUTEX_LOCK_PI2: Final = 13

FUTEX_PRIVATE_FLAG: Final = 128
FUTEX_CLOCK_REALTIME: Final = 256
FUTEX_CMD_MASK: Final = ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME) & 0xFFFFFFFF

FUTEX_BITSET_MATCH_ANY: Final = 0xFFFFFFFF

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
#: PI commands (issue: PI futexes); ENOSYS until implemented.
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

# FUTEX_WAKE_OP encoding: FUTEX_OP(op, oparg, cmp, cmparg)
FUTEX_OP_SET: Final = 0
FUTEX_OP_ADD: Final = 1
FUTEX_OP_OR: Final = 2
FUTEX_OP_ANDN: Final = 3
FUTEX_OP_XOR: Final = 4
FUTEX_OP_OPARG_SHIFT: Final = 8

FUTEX_OP_CMP_EQ: Final = 0
FUTEX_OP_CMP_NE: Final = 1
FUTEX_OP_CMP_LT: Final = 2
FUTEX_OP_CMP_LE: Final = 3
FUTEX_OP_CMP_GT: Final = 4
FUTEX_OP_CMP_GE: Final = 5


def FUTEX_OP(op: int, oparg: int, cmp: int, cmparg: int) -> int:
    """Encode a FUTEX_WAKE_OP operation (``val3``) as the uapi macro does."""
    return (
        ((op & 0xF) << 28) | ((cmp & 0xF) << 24) | ((oparg & 0xFFF) << 12) | (cmparg & 0xFFF)
    )


# PI word layout (issue: PI futexes)
FUTEX_WAITERS: Final = 0x80000000
FUTEX_OWNER_DIED: Final = 0x40000000
FUTEX_TID_MASK: Final = 0x3FFFFFFF

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

# Kernel-internal restart codes (never returned to user space)
ERESTARTSYS: Final = 512
ERESTARTNOINTR: Final = 513
ERESTART_RESTARTBLOCK: Final = 516

# x86-64 system call numbers
SYS_futex: Final = 202

# x86-64 system call numbers of the futex family
SYS_set_robust_list: Final = 273
SYS_get_robust_list: Final = 274
SYS_futex_waitv: Final = 449
SYS_futex_wake: Final = 454
SYS_futex_wait: Final = 455
SYS_futex_requeue: Final = 456

# Robust lists (struct robust_list_head on x86-64: next, futex_offset, list_op_pending)
ROBUST_LIST_HEAD_SIZE: Final = 24
ROBUST_LIST_LIMIT: Final = 2048

# futex2 (include/uapi/linux/futex.h)
FUTEX2_SIZE_U8: Final = 0x00
FUTEX2_SIZE_U16: Final = 0x01
FUTEX2_SIZE_U32: Final = 0x02
FUTEX2_SIZE_U64: Final = 0x03
FUTEX2_NUMA: Final = 0x04
FUTEX2_MPOL: Final = 0x08
FUTEX2_PRIVATE: Final = FUTEX_PRIVATE_FLAG
FUTEX2_SIZE_MASK: Final = 0x03
FUTEX_32: Final = FUTEX2_SIZE_U32
FUTEX_WAITV_MAX: Final = 128
#: struct futex_waitv { u64 val; u64 uaddr; u32 flags; u32 __reserved; }
FUTEX_WAITV_SIZE: Final = 24

# Scheduling (for PI and queue order)
SCHED_OTHER: Final = 0
SCHED_FIFO: Final = 1
SCHED_RR: Final = 2
MAX_RT_PRIO: Final = 100
DEFAULT_PRIO: Final = 120  # nice 0

# prctl(2) and PR_FUTEX_HASH (include/uapi/linux/prctl.h; see futex.linux.futexhash)
SYS_prctl: Final = 157
#: errno of SET_SLOTS after the process went back to the global hash for good
EBUSY: Final = 16
PR_FUTEX_HASH: Final = 78
PR_FUTEX_HASH_SET_SLOTS: Final = 1
PR_FUTEX_HASH_GET_SLOTS: Final = 2
#: Linux 6.16 only (removed in 6.17 with the flag below): is the private hash immutable?
PR_FUTEX_HASH_GET_IMMUTABLE: Final = 3
#: Linux 6.16 only: SET_SLOTS's fourth argument, "make the private hash immutable".
FH_FLAG_IMMUTABLE: Final = 1
