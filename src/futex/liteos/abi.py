"""OpenHarmony LiteOS-A futex ABI constants, data only.

Values from ``kernel/base/include/los_futex_pri.h`` (commands, flags), the ``los_futex.c``
hash layout, ``kernel/include/los_typedef.h`` (LOS error codes), ``los_hash.h`` (FNV-1a),
``los_vm_common.h`` / ``los_vm_zone.h`` (the user address range, ARM with an MMU and no
TEE) and ``kernel/common/los_config.h`` (tick rate, task priorities).  LiteOS-A is a
32-bit little-endian kernel: pointers and keys are 4 bytes.
"""

from __future__ import annotations

from typing import Final

# SysFutex ``flags``: the command is ``flags & FUTEX_MASK`` (los_futex_pri.h)
FUTEX_WAIT: Final = 0
FUTEX_WAKE: Final = 1
FUTEX_REQUEUE: Final = 3
FUTEX_WAKE_OP: Final = 5  # defined, not implemented (-EINVAL)
FUTEX_LOCK_PI: Final = 6  # defined, not implemented (-EINVAL)
FUTEX_UNLOCK_PI: Final = 7  # defined, not implemented (-EINVAL)
FUTEX_TRYLOCK_PI: Final = 8  # defined, not implemented (-EINVAL)
FUTEX_WAIT_BITSET: Final = 9  # defined, not implemented (-EINVAL)
FUTEX_PRIVATE: Final = 128
FUTEX_MASK: Final = 0x3

# Return codes: SysFutex returns 0 or -code (los_typedef.h)
LOS_OK: Final = 0
LOS_NOK: Final = 1
LOS_EINTR: Final = 4
LOS_EBADF: Final = 9
LOS_EINVAL: Final = 22
LOS_ETIMEDOUT: Final = 110

#: ``absTime`` meaning "no timeout"; also what a tick count capped by OsNS2Tick equals.
LOS_WAIT_FOREVER: Final = 0xFFFFFFFF
#: The ``pid`` of a shared futex node (any process matches by physical address).
OS_INVALID: Final = 0xFFFFFFFF

# g_futexHash: 64 private buckets, then 16 shared ones (los_futex.c)
FUTEX_INDEX_PRIVATE_MAX: Final = 64
FUTEX_INDEX_SHARED_MAX: Final = 16
FUTEX_INDEX_MAX: Final = FUTEX_INDEX_PRIVATE_MAX + FUTEX_INDEX_SHARED_MAX
FUTEX_INDEX_SHARED_POS: Final = FUTEX_INDEX_PRIVATE_MAX
FUTEX_HASH_PRIVATE_MASK: Final = FUTEX_INDEX_PRIVATE_MAX - 1
FUTEX_HASH_SHARED_MASK: Final = FUTEX_INDEX_SHARED_MAX - 1

# LOS_HashFNV32aBuf (los_hash.h)
FNV1_32A_INIT: Final = 0x811C9DC5
FNV_32_PRIME: Final = 0x01000193
#: Bytes of a key hashed: ``sizeof(UINTPTR)`` on 32-bit ARM.
KEY_BYTES: Final = 4

# The user address range (los_vm_common.h; KERNEL_ASPACE_BASE from los_vm_zone.h)
KERNEL_ASPACE_BASE: Final = 0x40000000
USER_ASPACE_BASE: Final = 0x01000000
USER_ASPACE_SIZE: Final = KERNEL_ASPACE_BASE - USER_ASPACE_BASE - 0x01000000
USER_ASPACE_TOP_MAX: Final = USER_ASPACE_BASE + USER_ASPACE_SIZE
#: Where the mmap region starts (USER_MAP_BASE) and how big it is (USER_MAP_SIZE).
USER_MAP_BASE: Final = USER_ASPACE_TOP_MAX >> 1
USER_MAP_SIZE: Final = USER_ASPACE_SIZE >> 3

# Time (los_config.h, los_sys.c)
LOSCFG_BASE_CORE_TICK_PER_SECOND: Final = 1000
OS_SYS_NS_PER_SECOND: Final = 1_000_000_000
OS_SYS_NS_PER_US: Final = 1000
#: OsNS2Tick saturates here (OS_MAX_VALUE).
OS_MAX_VALUE: Final = 0xFFFFFFFF

# Task priorities: 0 is the most urgent (los_task.h, los_config.h)
OS_TASK_PRIORITY_HIGHEST: Final = 0
OS_TASK_PRIORITY_LOWEST: Final = 31
LOSCFG_BASE_CORE_TSK_DEFAULT_PRIO: Final = 10

#: The only signal that reaches a task blocked in a futex wait (los_signal.c).
SIGKILL: Final = 9
