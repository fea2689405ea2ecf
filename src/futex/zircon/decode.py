"""Zircon system-call arguments as the C prototypes take them, and user pointers.

Arguments are the C prototype's (``zircon/syscalls.h``): pointers are 64-bit
(``uintptr_t``), counts ``uint32_t``, ``current_value`` a 32-bit ``zx_futex_t``, handles
``zx_handle_t`` (``uint32_t``), deadlines ``zx_time_t`` (``int64_t``); a Python int out
of range is truncated as the C call would (``wake_count=-1`` is ``UINT32_MAX``),
anything else raises ``TypeError`` naming the argument (the register layouts below, over
the core's :class:`~futex.kernel.decode.RegisterLayout`).

Pointers: ``ValidateFutexPointer`` refuses a null or misaligned one
(:func:`bad_pointer`); a pointer the futex context cannot key, or a fault reading or
writing user memory, is ``ZX_ERR_INVALID_ARGS`` too (Zircon has no EFAULT for futexes:
``ZIRCON_POLICY.misaligned`` and ``.fault``, through the core's
:func:`~futex.kernel.decode.error_code`).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from futex.kernel import ClockId, FutexError
from futex.kernel.decode import RegisterLayout, error_code
from futex.kernel.request import Deadline
from futex.zircon import abi
from futex.zircon.policy import ZIRCON_POLICY

if TYPE_CHECKING:
    from futex.zircon.kernel import Process

__all__ = [
    "GET_OWNER",
    "GET_OWNER_PTR",
    "REQUEUE",
    "WAIT",
    "WAKE",
    "bad_pointer",
    "deadline_of",
    "load_word",
    "requeue_pointer_status",
    "store_koid",
]

_KOID = struct.Struct("<Q")

#: ``zx_futex_wait(const zx_futex_t*, zx_futex_t, zx_handle_t, zx_time_t)``.
WAIT = RegisterLayout(
    "zx_futex_wait argument",
    value_ptr="u64", current_value="u32", new_futex_owner="u32", deadline="s64",
)
#: ``zx_futex_wake(const zx_futex_t*, uint32_t)`` (and ``_single_owner``'s pointer).
WAKE = RegisterLayout("zx_futex_wake argument", value_ptr="u64", wake_count="u32")
#: ``zx_futex_requeue(value_ptr, wake_count, current_value, requeue_ptr, requeue_count,
#: new_requeue_owner)``.
REQUEUE = RegisterLayout(
    "zx_futex_requeue argument",
    value_ptr="u64", wake_count="u32", current_value="u32", requeue_ptr="u64",
    requeue_count="u32", new_requeue_owner="u32",
)
#: ``zx_futex_get_owner(const zx_futex_t*, zx_koid_t*)``.
GET_OWNER = RegisterLayout("zx_futex_get_owner argument", value_ptr="u64", koid="u64")
#: The futex pointer alone (the owner lookup without the store).
GET_OWNER_PTR = RegisterLayout("zx_futex_get_owner argument", value_ptr="u64")


def bad_pointer(addr: int) -> bool:
    """``ValidateFutexPointer``: null or not ``sizeof(zx_futex_t)``-aligned."""
    return addr == 0 or addr % abi.FUTEX_ALIGN != 0


def requeue_pointer_status(process: Process, addr: int) -> int:
    """ZX_OK when the futex at ``addr`` (aligned) has a key here, else the policy's
    answer: outside the user address range is "not a valid userspace pointer"
    (``futex_requeue.md``), ZX_ERR_INVALID_ARGS."""
    try:
        process.futex.key(process.space, addr, True)
    except FutexError as exc:
        return error_code(exc, ZIRCON_POLICY)
    return abi.ZX_OK


def deadline_of(deadline: int) -> Deadline | None:
    """A ``zx_time_t`` deadline: absolute ZX_CLOCK_MONOTONIC ns, or none when infinite."""
    return None if deadline == abi.ZX_TIME_INFINITE else (ClockId.MONOTONIC, deadline)


def load_word(process: Process, addr: int) -> tuple[int, int]:
    """``(ZX_OK, word)`` at ``addr``, or ``(status, 0)`` when the read faults."""
    try:
        return abi.ZX_OK, process.space.load_u32(addr)
    except FutexError as exc:
        return error_code(exc, ZIRCON_POLICY), 0


def store_koid(process: Process, koid_ptr: int, koid: int) -> int:
    """Store ``koid`` as a uint64 at ``koid_ptr``: ZX_OK, or ZX_ERR_INVALID_ARGS for a
    null pointer or a fault."""
    if koid_ptr == 0:
        return abi.ZX_ERR_INVALID_ARGS
    try:
        process.space.write(koid_ptr, _KOID.pack(koid))
    except FutexError as exc:
        return error_code(exc, ZIRCON_POLICY)
    return abi.ZX_OK
