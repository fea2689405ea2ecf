"""Constants of the host futex ABI that ``futex.native`` callers need (data only).

Values are Linux's uapi ones (``<linux/futex.h>``) and are the same on every
architecture; the arch-dependent syscall numbers of futex(2) and gettid(2) come from
the C extension (``futex.native.SYS_futex``, ``futex.native.SYS_gettid``).
"""

from __future__ import annotations

from typing import Final

#: Wake or requeue "all": the kernel's counts are ints, so INT_MAX is as many as exist.
ALL: Final = 0x7FFF_FFFF
#: A wait or wake bitset that matches every other bitset (FUTEX_BITSET_MATCH_ANY).
BITSET_MATCH_ANY: Final = 0xFFFF_FFFF
#: Most words one futex_waitv call takes (FUTEX_WAITV_MAX).
WAITV_MAX: Final = 128

# -- PI word layout ----------------------------------------------------------------------
#: bit 31: some thread is queued in the kernel on this PI word.
FUTEX_WAITERS: Final = 0x8000_0000
#: bit 30: the owner died (robust futexes); the kernel sets it, userspace clears it.
FUTEX_OWNER_DIED: Final = 0x4000_0000
#: bits 0..29: the owner's tid.
FUTEX_TID_MASK: Final = 0x3FFF_FFFF

# -- FUTEX_WAKE_OP: the operation on the second word, and the comparison ---------------------
OP_SET: Final = 0  # *other = oparg
OP_ADD: Final = 1  # *other += oparg
OP_OR: Final = 2  # *other |= oparg
OP_ANDN: Final = 3  # *other &= ~oparg
OP_XOR: Final = 4  # *other ^= oparg
#: Or'ed into the op: use 1 << oparg instead of oparg.
OP_OPARG_SHIFT: Final = 8

CMP_EQ: Final = 0  # wake on the other word if old == cmparg
CMP_NE: Final = 1
CMP_LT: Final = 2
CMP_LE: Final = 3
CMP_GT: Final = 4
CMP_GE: Final = 5

# -- raw futex(2) op words, for syscall_futex ----------------------------------------------
FUTEX_WAIT: Final = 0
FUTEX_WAKE: Final = 1
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

# -- futex2 syscalls (same number on every architecture but alpha), for syscall6 -------------
SYS_futex_waitv: Final = 449
SYS_futex_wake: Final = 454
SYS_futex_wait: Final = 455
SYS_futex_requeue: Final = 456
#: futex_waitv / futex2 flags: a 32-bit word; private (process-local) key.
FUTEX2_SIZE_U32: Final = 0x02
FUTEX2_PRIVATE: Final = 128
