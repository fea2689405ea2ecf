"""Shared fixtures.

- ``kernel``: a :class:`LinuxKernel` on a :class:`ManualClock`; after the test, every
  process's futex manager must pass ``check_invariants()`` (the scenario left the queues
  consistent).
- ``run_blocking``: run a blocking call on a real thread and wait (for state, not time)
  until a given task is blocked in it.
- ``mem``: a page of MAP_SHARED anonymous host memory (shared with fork children), closed
  after the test unless a ``futex.native.Word`` still exports it.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import Phase, settings

from futex.kernel import ManualClock
from futex.kernel.locking import DEBUG_LOCKS
from futex.linux import LinuxKernel, Task
from futex.linux.host import probe
from tests.support import Blocking, wait_until

# On CI a failing property reports its first counterexample at once: shrinking a
# differential disagreement can take minutes (run the test locally to get it shrunk).
settings.register_profile(
    "futex-ci", phases=tuple(p for p in Phase if p is not Phase.shrink), database=None
)
if os.environ.get("CI"):
    settings.load_profile("futex-ci")


def pytest_report_header() -> list[str]:
    """The host facts the differential tests build their emulator from (probed)."""
    checks = "on" if DEBUG_LOCKS else "off (FUTEX_DEBUG_LOCKS=1 turns them on)"
    return [
        "futex host probe:",
        *(f"  {line}" for line in probe().describe()),
        f"futex lock checks: {checks}",
    ]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def kernel(clock: ManualClock) -> Iterator[LinuxKernel]:
    k = LinuxKernel(clock=clock)
    yield k
    for p in list(k.processes.values()):
        p.futex.check_invariants()


@pytest.fixture
def run_blocking() -> Callable[..., Blocking]:
    """``run_blocking(fn, task)``: start ``fn`` on a thread and return once ``task`` is
    blocked in a futex call (or ``fn`` has already returned)."""

    def start(fn: Callable[[], Any], task: Task | None = None) -> Blocking:
        b = Blocking(fn)
        if task is not None:
            wait_until(
                lambda: task.blocked is not None or not b.thread.is_alive(),
                f"task {task.tid} blocks",
            )
            pending = task.blocked
            if pending is not None:
                # ``blocked`` is set before the wait is queued, under the pending wait's
                # lock (PendingWait.start): once the lock is free the waiter is on its
                # queue, so a wake or requeue the test makes next counts it (seen: a
                # CMP_REQUEUE of 100 waiters counting 99 on a loaded machine)
                with pending._lock:
                    pass
        return b

    return start


@pytest.fixture
def mem() -> Iterator[mmap.mmap]:
    m = mmap.mmap(-1, mmap.PAGESIZE)
    yield m
    with contextlib.suppress(BufferError):  # a Word still holds it; freed with the Word
        m.close()
