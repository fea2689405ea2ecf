"""Linux's futex uapi, data only: the one source of the numbers both Linux kernels here speak.

Two packages talk to a Linux kernel: :mod:`futex.linux` emulates one and :mod:`futex.native`
calls the host's.  Both take the values of ``include/uapi/linux/futex.h`` (and the futex2
system call numbers of ``include/uapi/asm-generic/unistd.h``, the same on every
architecture but alpha) from here: :mod:`futex.linux.abi` adds what only the emulation
needs (errno, x86-64 system call numbers and layouts, scheduling), :mod:`futex.native.abi`
what its callers need under its own short names.  This module imports nothing of the
package, so ``import futex.native`` does not load the emulator; the C extension's own
copies (``NF_*`` in ``futex/native/_native.h``) are checked against it by
``tests/native/test_abi_header.py``.
"""

from __future__ import annotations

from typing import Final

# -- futex(2) commands -----------------------------------------------------------------------
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

# -- flags or'ed into the command --------------------------------------------------------------
FUTEX_PRIVATE_FLAG: Final = 128
FUTEX_CLOCK_REALTIME: Final = 256
FUTEX_CMD_MASK: Final = ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME) & 0xFFFFFFFF

#: A wait or wake bitset that matches every other bitset.
FUTEX_BITSET_MATCH_ANY: Final = 0xFFFFFFFF

# -- FUTEX_WAKE_OP: FUTEX_OP(op, oparg, cmp, cmparg) --------------------------------------------
FUTEX_OP_SET: Final = 0  # *other = oparg
FUTEX_OP_ADD: Final = 1  # *other += oparg
FUTEX_OP_OR: Final = 2  # *other |= oparg
FUTEX_OP_ANDN: Final = 3  # *other &= ~oparg
FUTEX_OP_XOR: Final = 4  # *other ^= oparg
#: Or'ed into the op: use 1 << oparg instead of oparg.
FUTEX_OP_OPARG_SHIFT: Final = 8

FUTEX_OP_CMP_EQ: Final = 0  # wake on the other word if old == cmparg
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


# -- PI word layout ------------------------------------------------------------------------------
#: bit 31: some thread is queued in the kernel on this PI word.
FUTEX_WAITERS: Final = 0x80000000
#: bit 30: the owner died (robust futexes); the kernel sets it, userspace clears it.
FUTEX_OWNER_DIED: Final = 0x40000000
#: bits 0..29: the owner's tid.
FUTEX_TID_MASK: Final = 0x3FFFFFFF

# -- robust lists --------------------------------------------------------------------------------
#: Most entries the kernel walks on a robust list at exit.
ROBUST_LIST_LIMIT: Final = 2048

# -- futex2 --------------------------------------------------------------------------------------
FUTEX2_SIZE_U8: Final = 0x00
FUTEX2_SIZE_U16: Final = 0x01
FUTEX2_SIZE_U32: Final = 0x02
FUTEX2_SIZE_U64: Final = 0x03
FUTEX2_NUMA: Final = 0x04
FUTEX2_MPOL: Final = 0x08
FUTEX2_PRIVATE: Final = FUTEX_PRIVATE_FLAG
FUTEX2_SIZE_MASK: Final = 0x03
FUTEX_32: Final = FUTEX2_SIZE_U32
#: Most words one futex_waitv call takes.
FUTEX_WAITV_MAX: Final = 128
#: struct futex_waitv { u64 val; u64 uaddr; u32 flags; u32 __reserved; }
FUTEX_WAITV_SIZE: Final = 24

# -- futex2 system calls (asm-generic: every architecture but alpha) ---------------------------
SYS_futex_waitv: Final = 449
SYS_futex_wake: Final = 454
SYS_futex_wait: Final = 455
SYS_futex_requeue: Final = 456
