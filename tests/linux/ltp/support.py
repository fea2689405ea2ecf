"""Shared by the LTP ports (``tests/linux/ltp/test_*.py``): futex ops and flags, timespecs in an
emulated process's memory, and ``make_start`` (a wait blocked on a real thread or
cooperatively)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest

from futex.kernel import ManualClock
from futex.linux import PendingWait, Process, Task, abi
from futex.memory import PAGE_SIZE, PROT_READ, PROT_WRITE
from tests.support import StartWait, Wait

RW = PROT_READ | PROT_WRITE
PRIV = abi.FUTEX_PRIVATE_FLAG
INT_MAX = 0x7FFFFFFF
MS = 1_000_000
US = 1_000
SEC = abi.NSEC_PER_SEC

WAIT = abi.FUTEX_WAIT
WAKE = abi.FUTEX_WAKE
WAIT_BITSET = abi.FUTEX_WAIT_BITSET
CMP_REQUEUE = abi.FUTEX_CMP_REQUEUE

#: Private and shared variants of an op: LTP runs most cases with ``opflags`` 0 and
#: FUTEX_PRIVATE_FLAG.
FLAGS = pytest.mark.parametrize("flags", [PRIV, 0], ids=["private", "shared"])


# -- helpers -----------------------------------------------------------------------------------


def timespec(p: Process, sec: int, nsec: int) -> int:
    """A ``struct __kernel_timespec`` in ``p``'s memory; returns its address."""
    a = p.mmap(PAGE_SIZE)
    p.write(a, struct.pack("<qq", sec, nsec))
    return a


def timespec_ns(p: Process, ns: int) -> int:
    return timespec(p, ns // SEC, ns % SEC)


def make_start(mode: str, run_blocking: Callable[..., Any]) -> StartWait:
    def start(task: Task, uaddr: int, op: int, val: int, utime: int = 0, val3: int = 0) -> Wait:
        """Start a wait on ``task`` and return once it is queued (it must block)."""
        if mode == "cooperative":
            r = task.syscall_futex_nb(uaddr, op, val, utime, 0, val3)
            assert isinstance(r, PendingWait), f"the wait returned {r} instead of blocking"
            assert task.blocked is r
            return Wait(r)
        b = run_blocking(lambda: task.syscall_futex(uaddr, op, val, utime, 0, val3), task)
        pending = task.blocked
        assert pending is not None, f"the wait returned {b.result()} instead of blocking"
        return Wait(pending, b)

    return start


def done_count(waits: list[Wait]) -> int:
    return sum(w.done() for w in waits)


def assert_timers_idle(clock: ManualClock) -> None:
    assert clock.pending() == [], "a finished wait left its timeout armed"
