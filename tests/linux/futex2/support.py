"""Shared by the futex2 tests (``tests/linux/futex2/test_*.py``): the futex_waitv / futex_wake /
futex_wait / futex_requeue numbers and flags, and helpers that lay out their arguments
(``struct futex_waitv[]``, absolute timespecs, words) in an emulated process's memory.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest

from futex.kernel import ClockId, ManualClock
from futex.linux import PendingWait, Process, Task, abi
from futex.memory import PAGE_SIZE
from tests.support import StartWait, Wait

SYS_WAITV = abi.SYS_futex_waitv
SYS_WAKE = abi.SYS_futex_wake
SYS_WAIT = abi.SYS_futex_wait
SYS_REQUEUE = abi.SYS_futex_requeue

U32F = abi.FUTEX2_SIZE_U32  # FUTEX_32
PRIV = abi.FUTEX2_PRIVATE
NUMA = abi.FUTEX2_NUMA
MPOL = abi.FUTEX2_MPOL
ANY = abi.FUTEX_BITSET_MATCH_ANY
CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_TAI = 11
SEC = abi.NSEC_PER_SEC
MS = 1_000_000
U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF
INT_MAX = 0x7FFFFFFF

LEGACY_WAKE_PRIVATE = abi.FUTEX_WAKE | abi.FUTEX_PRIVATE_FLAG

#: private and shared futex2 words
SHARING = pytest.mark.parametrize("sharing", [U32F | PRIV, U32F], ids=["private", "shared"])


# -- helpers -----------------------------------------------------------------------------------


def waitv_array(p: Process, entries: list[tuple[int, int, int]], reserved: int = 0) -> int:
    """``struct futex_waitv[]`` in ``p``'s memory from ``(val, uaddr, flags)`` triples."""
    data = b"".join(struct.pack("<QQII", v, a, f, reserved) for v, a, f in entries)
    a = p.mmap(max(len(data), 1))
    p.write(a, data)
    return a


def timespec(p: Process, ns: int) -> int:
    """An absolute ``struct __kernel_timespec`` in ``p``'s memory."""
    a = p.mmap(PAGE_SIZE)
    p.write(a, struct.pack("<qq", ns // SEC, ns % SEC))
    return a


def in_ns(clock: ManualClock, ns: int, clock_id: ClockId = ClockId.MONOTONIC) -> int:
    return clock.now(clock_id) + ns


def make_start(mode: str, run_blocking: Callable[..., Any]) -> StartWait:
    """``start(task, nr, *args)``: system call ``nr`` blocked on ``task`` (it must block),
    on a real thread (``threads``) or cooperatively (``cooperative``)."""

    def begin(task: Task, nr: int, *args: int) -> Wait:
        if mode == "cooperative":
            r = task.syscall_nb(nr, *args)
            assert isinstance(r, PendingWait), f"the call returned {r} instead of blocking"
            assert task.blocked is r
            return Wait(r)
        b = run_blocking(lambda: task.syscall(nr, *args), task)
        pending = task.blocked
        assert pending is not None, f"the call returned {b.result()} instead of blocking"
        return Wait(pending, b)

    return begin


def blocked(r: int | PendingWait) -> PendingWait:
    assert isinstance(r, PendingWait), f"expected the call to block, it returned {r}"
    return r


def queued(p: Process) -> int:
    return p.futex.stats().queued


def words(p: Process, n: int, value: int = 0, stride: int = 4) -> list[int]:
    base = p.mmap(max(n * stride, 1))
    for i in range(n):
        p.store_u32(base + i * stride, value)
    return [base + i * stride for i in range(n)]
