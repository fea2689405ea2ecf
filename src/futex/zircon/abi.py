"""Zircon's numbers: status codes, handles, koids, time, priorities, job policy (data only).

Values from ``zircon/errors.h``, ``zircon/types.h``, ``zircon/syscalls/policy.h`` and
``zircon/syscalls/object.h``.
"""

from __future__ import annotations

from typing import Final

ZX_OK: Final = 0
ZX_ERR_INTERNAL: Final = -1
ZX_ERR_INTERNAL_INTR_RETRY: Final = -6
ZX_ERR_INVALID_ARGS: Final = -10
ZX_ERR_BAD_HANDLE: Final = -11
ZX_ERR_WRONG_TYPE: Final = -12
ZX_ERR_BAD_STATE: Final = -20
ZX_ERR_TIMED_OUT: Final = -21
ZX_ERR_ACCESS_DENIED: Final = -30
#: A kernel-internal status: the thread is being killed and never returns to user mode.
ZX_ERR_INTERNAL_INTR_KILLED: Final = -502

STATUS_NAMES: Final = {
    ZX_OK: "ZX_OK",
    ZX_ERR_INTERNAL: "ZX_ERR_INTERNAL",
    ZX_ERR_INTERNAL_INTR_RETRY: "ZX_ERR_INTERNAL_INTR_RETRY",
    ZX_ERR_INVALID_ARGS: "ZX_ERR_INVALID_ARGS",
    ZX_ERR_BAD_HANDLE: "ZX_ERR_BAD_HANDLE",
    ZX_ERR_WRONG_TYPE: "ZX_ERR_WRONG_TYPE",
    ZX_ERR_BAD_STATE: "ZX_ERR_BAD_STATE",
    ZX_ERR_TIMED_OUT: "ZX_ERR_TIMED_OUT",
    ZX_ERR_ACCESS_DENIED: "ZX_ERR_ACCESS_DENIED",
    ZX_ERR_INTERNAL_INTR_KILLED: "ZX_ERR_INTERNAL_INTR_KILLED",
}

ZX_HANDLE_INVALID: Final = 0
#: Every valid handle value has its two low bits set (ZX_HANDLE_FIXED_BITS_MASK).
ZX_HANDLE_FIXED_BITS_MASK: Final = 0x3
ZX_KOID_INVALID: Final = 0
#: The first koid handed out (lower ones are reserved).
ZX_KOID_FIRST: Final = 1024

ZX_TIME_INFINITE: Final = (1 << 63) - 1
ZX_TIME_INFINITE_PAST: Final = -(1 << 63)

ZX_PRIORITY_LOWEST: Final = 0
ZX_PRIORITY_DEFAULT: Final = 16
ZX_PRIORITY_HIGHEST: Final = 31

# ZX_POL_BAD_HANDLE actions (zx_policy_basic_v2_t.action).
ZX_POL_ACTION_ALLOW: Final = 0
ZX_POL_ACTION_DENY: Final = 1
ZX_POL_ACTION_ALLOW_EXCEPTION: Final = 2
ZX_POL_ACTION_DENY_EXCEPTION: Final = 3
ZX_POL_ACTION_KILL: Final = 4

ZX_TASK_RETCODE_POLICY_KILL: Final = -1026
ZX_TASK_RETCODE_EXCEPTION_KILL: Final = -1028

#: sizeof(zx_futex_t): futex words are 4-byte aligned ints.
FUTEX_ALIGN: Final = 4
