"""Constants of the host futex ABI that ``futex.native`` callers need (data only).

Values are Linux's uapi ones (``<linux/futex.h>``), the same on every architecture, and
come from one source, :mod:`futex.uapi` (which the emulated :mod:`futex.linux` shares);
some go by shorter names here.  ``ALL`` (INT_MAX) is not a uapi value but the largest
count the kernel takes.  The arch-dependent syscall numbers of futex(2) and gettid(2)
come from the C extension (``futex.native.SYS_futex``, ``futex.native.SYS_gettid``).  The
extension spells the values it uses once more (``NF_*`` in ``_native.h``, so that old uapi
headers still build); ``tests/native/test_abi_header.py`` checks that they agree.
"""

from __future__ import annotations

from typing import Final

from futex import uapi as _uapi

#: Wake or requeue "all": the kernel's counts are ints, so INT_MAX is as many as exist.
ALL: Final = 0x7FFF_FFFF
#: A wait or wake bitset that matches every other bitset (FUTEX_BITSET_MATCH_ANY).
BITSET_MATCH_ANY: Final = _uapi.FUTEX_BITSET_MATCH_ANY
#: Most words one futex_waitv call takes (FUTEX_WAITV_MAX).
WAITV_MAX: Final = _uapi.FUTEX_WAITV_MAX

# -- PI word layout ------------------------------------------------------------------------
FUTEX_WAITERS: Final = _uapi.FUTEX_WAITERS  # bit 31: a thread is queued in the kernel
FUTEX_OWNER_DIED: Final = _uapi.FUTEX_OWNER_DIED  # bit 30: the owner died (robust futexes)
FUTEX_TID_MASK: Final = _uapi.FUTEX_TID_MASK  # bits 0..29: the owner's tid

# -- raw futex(2) op words, for syscall_futex --------------------------------------------------
FUTEX_WAIT: Final = _uapi.FUTEX_WAIT
FUTEX_WAKE: Final = _uapi.FUTEX_WAKE
FUTEX_REQUEUE: Final = _uapi.FUTEX_REQUEUE
FUTEX_CMP_REQUEUE: Final = _uapi.FUTEX_CMP_REQUEUE
FUTEX_WAKE_OP: Final = _uapi.FUTEX_WAKE_OP
FUTEX_LOCK_PI: Final = _uapi.FUTEX_LOCK_PI
FUTEX_UNLOCK_PI: Final = _uapi.FUTEX_UNLOCK_PI
FUTEX_TRYLOCK_PI: Final = _uapi.FUTEX_TRYLOCK_PI
FUTEX_WAIT_BITSET: Final = _uapi.FUTEX_WAIT_BITSET
FUTEX_WAKE_BITSET: Final = _uapi.FUTEX_WAKE_BITSET
FUTEX_WAIT_REQUEUE_PI: Final = _uapi.FUTEX_WAIT_REQUEUE_PI
FUTEX_CMP_REQUEUE_PI: Final = _uapi.FUTEX_CMP_REQUEUE_PI
FUTEX_LOCK_PI2: Final = _uapi.FUTEX_LOCK_PI2
FUTEX_PRIVATE_FLAG: Final = _uapi.FUTEX_PRIVATE_FLAG
FUTEX_CLOCK_REALTIME: Final = _uapi.FUTEX_CLOCK_REALTIME

# -- futex2 syscalls (same number on every architecture but alpha), for syscall6 -------------
SYS_futex_waitv: Final = _uapi.SYS_futex_waitv
SYS_futex_wake: Final = _uapi.SYS_futex_wake
SYS_futex_wait: Final = _uapi.SYS_futex_wait
SYS_futex_requeue: Final = _uapi.SYS_futex_requeue
#: futex_waitv / futex2 flags: a 32-bit word; private (process-local) key.
FUTEX2_SIZE_U32: Final = _uapi.FUTEX2_SIZE_U32
FUTEX2_PRIVATE: Final = _uapi.FUTEX2_PRIVATE

# -- FUTEX_WAKE_OP: the operation on the second word (FUTEX_OP_*), and the comparison --------
OP_SET: Final = _uapi.FUTEX_OP_SET  # *other = oparg
OP_ADD: Final = _uapi.FUTEX_OP_ADD  # *other += oparg
OP_OR: Final = _uapi.FUTEX_OP_OR  # *other |= oparg
OP_ANDN: Final = _uapi.FUTEX_OP_ANDN  # *other &= ~oparg
OP_XOR: Final = _uapi.FUTEX_OP_XOR  # *other ^= oparg
#: Or'ed into the op: use 1 << oparg instead of oparg.
OP_OPARG_SHIFT: Final = _uapi.FUTEX_OP_OPARG_SHIFT

CMP_EQ: Final = _uapi.FUTEX_OP_CMP_EQ  # wake on the other word if old == cmparg
CMP_NE: Final = _uapi.FUTEX_OP_CMP_NE
CMP_LT: Final = _uapi.FUTEX_OP_CMP_LT
CMP_LE: Final = _uapi.FUTEX_OP_CMP_LE
CMP_GT: Final = _uapi.FUTEX_OP_CMP_GT
CMP_GE: Final = _uapi.FUTEX_OP_CMP_GE
