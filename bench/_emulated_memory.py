"""Section 5 of ``bench_emulated.py``: bytes per queued waiter (tracemalloc).

Parks ``n`` waiters on one word and on ``n`` distinct words, in the core layer (bare
``Waiter`` + ``FutexManager.wait_prepare``) and in the syscall layer (tasks blocked with
``syscall_futex_nb``: ``Waiter`` + ``PendingWait``), and reports the bytes Python's
allocators handed out while doing it, per waiter.  The tasks exist before the traced
region (their cost is a separate reference row), and each syscall-layer task has made
one call before it, so the traced bytes are those of the wait alone.
"""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable
from typing import Any

from _emulated_common import EAGAIN, WAIT_PRIVATE, Config, collect, new_process, park
from _timing import expect, log

from futex.kernel import Waiter
from futex.linux import Task

# -- 5. memory -------------------------------------------------------------------------------


def _traced(run: Callable[[], None]) -> tuple[int, tracemalloc.Snapshot, tracemalloc.Snapshot]:
    collect()
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot()
        base = tracemalloc.get_traced_memory()[0]
        run()
        grown = tracemalloc.get_traced_memory()[0] - base
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return grown, before, after


def _mem_core(n: int, distinct: bool) -> int:
    """Bytes to park ``n`` bare Waiters with ``FutexManager.wait_prepare``."""
    _, p, _ = new_process()
    a = p.mmap(n * 4)
    addrs = [a + 4 * i for i in range(n)] if distinct else [a] * n
    m, space = p.futex, p.space
    keep: list[Waiter | None] = [None] * n

    def core() -> None:
        for i, addr in enumerate(addrs):
            w = Waiter()
            m.wait_prepare(w, space, addr, True, 0)
            keep[i] = w

    grown, _, _ = _traced(core)
    expect(m.stats().queued, n, "core waiters queued")
    return grown


def _mem_syscall(n: int, distinct: bool) -> tuple[int, tracemalloc.Snapshot, tracemalloc.Snapshot]:
    """Bytes to park ``n`` tasks with ``syscall_futex_nb`` (the tasks exist beforehand)."""
    _, p, _ = new_process()
    a = p.mmap(n * 4)
    addrs = [a + 4 * i for i in range(n)] if distinct else [a] * n
    tasks = [p.new_task() for _ in range(n)]
    for task, addr in zip(tasks, addrs, strict=True):  # the calls Counter gets "WAIT"
        expect(task.syscall_futex(addr, WAIT_PRIVATE, 1, 0, 0, 0), EAGAIN, "warm-up")

    def sysc() -> None:
        for task, addr in zip(tasks, addrs, strict=True):
            park(task, addr, WAIT_PRIVATE)

    out = _traced(sysc)
    expect(p.futex.stats().queued, n, "syscall waiters queued")
    return out


def _mem_task(n: int) -> int:
    """Bytes to create ``n`` tasks (a reference: not per waiter)."""
    _, p, _ = new_process()
    made: list[Task] = []

    def make_tasks() -> None:
        for _ in range(n):
            made.append(p.new_task())

    grown, _, _ = _traced(make_tasks)
    return grown


def bench_memory(cfg: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    log(f"5. bytes per queued waiter (tracemalloc, {cfg.mem_n:,} waiters)")
    n = cfg.mem_n
    rows: list[dict[str, Any]] = []
    breakdown: list[dict[str, Any]] = []

    def record(layer: str, words: str, grown: int, what: str) -> None:
        rows.append(
            {
                "layer": layer,
                "words": words,
                "n": n,
                "bytes_total": grown,
                "bytes_per_waiter": grown / n,
                "counts": what,
            }
        )

    for distinct in (False, True):
        words = f"{n:,} distinct words" if distinct else "one word"
        queue = " + its queue" if distinct else ""
        record("core", words, _mem_core(n, distinct), "Waiter" + queue)
        collect()
        grown, before, after = _mem_syscall(n, distinct)
        record("syscall_futex_nb", words, grown, "Waiter + PendingWait" + queue)
        if not distinct:
            for diff in after.compare_to(before, "lineno")[:8]:
                if diff.size_diff <= 0:
                    continue
                frame = diff.traceback[0]
                breakdown.append(
                    {
                        "site": f"{os.path.relpath(frame.filename)}:{frame.lineno}",
                        "bytes_per_waiter": diff.size_diff / n,
                        "blocks_per_waiter": diff.count_diff / n,
                    }
                )
        collect()
    record("reference: Task", "-", _mem_task(n), "Task + calls Counter + registry")
    collect()
    return rows, breakdown
