"""The demo workload on OpenHarmony LiteOS-A: ``SysFutex``, its 80-bucket table and
priority-ordered queues, and why a plain ``FUTEX_REQUEUE`` is enough for the condvar.

The calls: ``FUTEX_WAIT`` forever (``absTime`` ``LOS_WAIT_FOREVER``; a value mismatch is
``-EBADF``), ``FUTEX_WAKE`` (0 when it woke someone, ``-EBADF`` when nobody waited: both
fine), and ``FUTEX_REQUEUE`` with ``val`` = 1 (wake one) and ``absTime`` reused as the
requeue count (``INT_MAX``: all the others).  The mutex word is Drepper's 0 / 1 / 2.

Plain REQUEUE, no compare value
-------------------------------
LiteOS-A has no ``FUTEX_CMP_REQUEUE``.  Linux's compare exists for condition variables
whose broadcast can race with *another* change of the condvar word between reading it
and the requeue — a broadcast or signal made without the mutex, or (old glibc) one that
dropped its internal lock before calling the kernel; the waiters that change concerns
would be moved onto the mutex with nobody left to wake them for it.  Here that cannot
happen:

- ``seq`` changes only under the mutex (every notify holds it, which the condvar checks),
  and the notifier holds it from its increment through the requeue: no other notify, and
  no new waiter (a waiter reads ``seq`` under the mutex too), comes in between;
- a waiter that read the old ``seq`` but is not queued yet is not the requeue's concern:
  its own ``FUTEX_WAIT`` compares ``seq`` under the bucket lock, sees the increment and
  returns ``-EBADF`` without sleeping;
- every waiter queued on ``seq`` at the requeue was queued before the increment, so waking
  it (or moving it to the mutex) is right; and the one the requeue wakes re-takes the
  mutex marked contested, so the moved ones are woken one per unlock (the argument of
  :class:`futex.demo.sync.FutexCondvar`, which never needed the compare).

So the compare could only fail for a notify made without the mutex.  musl relies on the
same property: its ``pthread_cond_timedwait`` hands waiters to the mutex with a plain
``FUTEX_REQUEUE`` (``unlock_requeue``) while holding the mutex.

Priorities (0 most urgent .. 31): producers :data:`PRODUCER_PRIORITY`, consumers
:data:`CONSUMER_PRIORITY`; each queue is in wake order, priority first, FIFO among equals,
which the table shows as ``tid(priority)`` chains.

Observation: the adapter snapshots ``g_futexHash`` (:meth:`LiteosKernel.table`) after every
wait that queued, once when the ring is primed (the producers asleep on ``not_full``) and
whenever the watcher samples its view for a display; it keeps the busiest snapshot (the
first with the most waiters), the buckets ever seen holding waiters, and the latest one.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from futex.demo.kernels import INT_MAX, CallCounter, Check, FutexCallError, FutexOps, View
from futex.kernel import FutexManager
from futex.liteos import FutexTable, LiteosKernel, Process, Task, abi, futex_index

__all__ = ["CONSUMER_PRIORITY", "PRODUCER_PRIORITY", "LiteosOps", "TableWatch"]

PRODUCER_PRIORITY = 12
CONSUMER_PRIORITY = 20

WAIT = abi.FUTEX_WAIT | abi.FUTEX_PRIVATE
WAKE = abi.FUTEX_WAKE | abi.FUTEX_PRIVATE
REQUEUE = abi.FUTEX_REQUEUE | abi.FUTEX_PRIVATE


@dataclass
class TableWatch:
    """What the snapshots of the table have shown."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    snapshots: int = 0
    busiest: FutexTable | None = None
    busiest_at: float = 0.0
    busiest_count: int = 0
    latest: FutexTable | None = None
    buckets_seen: set[int] = field(default_factory=set)

    def record(self, table: FutexTable, at: float) -> None:
        count = table.count()
        with self.lock:
            self.snapshots += 1
            self.latest = table
            self.buckets_seen.update(b.index for b in table.buckets)
            if count > self.busiest_count:
                self.busiest, self.busiest_at, self.busiest_count = table, at, count


class LiteosOps(FutexOps[Task]):
    """``SysFutex`` of :mod:`futex.liteos` on private futexes (module docstring)."""

    kernel = "liteos"
    title = "LiteOS-A SysFutex (80-bucket table, priority queues)"

    def __init__(self, process: Process | None = None) -> None:
        self.process = process if process is not None else LiteosKernel().new_process()
        self.liteos = self.process.kernel
        super().__init__(self.process.space)
        self._calls = CallCounter()
        self.tables = TableWatch()

    def mmap(self, length: int) -> int:
        return self.process.mmap(length)

    def new_task(self, name: str, role: str = "") -> Task:
        priority = {"producer": PRODUCER_PRIORITY, "consumer": CONSUMER_PRIORITY}.get(
            role, abi.LOSCFG_BASE_CORE_TSK_DEFAULT_PRIO
        )
        return self._named(self.process.new_task(priority), name)

    def task_id(self, task: Task) -> int:
        return task.tid

    def blocked(self, task: Task) -> object | None:
        return task.blocked

    # -- calls -------------------------------------------------------------------------

    def wait(self, task: Task, addr: int, expected: int, owner: int = 0) -> bool:
        self._calls.add("WAIT")
        pending = task.syscall_futex_nb(addr, WAIT, expected, abi.LOS_WAIT_FOREVER, 0)
        if isinstance(pending, int):
            r = pending
        else:
            self._snapshot()  # the table holds this waiter (unless already woken)
            try:
                r = pending.wait()
            except BaseException:
                pending.kill()  # the Python thread is leaving: leave no node queued
                raise
        if r == -abi.LOS_EBADF:
            return False
        if r != 0:
            raise FutexCallError(f"FUTEX_WAIT returned {r}")
        return True

    def wake(self, task: Task, addr: int, n: int) -> int | None:
        self._calls.add("WAKE")
        r = task.syscall_futex(addr, WAKE, min(n, INT_MAX), 0, 0)
        if r == -abi.LOS_EBADF:
            return 0  # nobody waited
        if r != 0:
            raise FutexCallError(f"FUTEX_WAKE returned {r}")
        return 1 if n == 1 else None

    def requeue(
        self, task: Task, addr: int, expected: int, target: int, owner: int
    ) -> tuple[bool, int | None]:
        # No compare value: see "Plain REQUEUE" in the module docstring.
        self._calls.add("REQUEUE")
        r = task.syscall_futex(addr, REQUEUE, 1, INT_MAX, target)
        if r == -abi.LOS_EBADF:
            return True, 0  # nobody woken or moved
        if r != 0:
            raise FutexCallError(f"FUTEX_REQUEUE returned {r}")
        return True, None

    # -- observation -------------------------------------------------------------------

    def _snapshot(self) -> FutexTable:
        table = self.liteos.table()
        self.tables.record(table, time.perf_counter() - self.t0)
        return table

    @property
    def manager(self) -> FutexManager:
        return self.liteos.futex

    def calls(self) -> Counter[str]:
        return self._calls.snapshot()

    def check_invariants(self) -> None:
        self.liteos.futex.check_invariants()

    def bucket_index(self, addr: int) -> int:
        return futex_index(self.process.futex_key(addr))

    def view(self) -> View:
        table = self._snapshot()
        status = (
            "bucket table: empty"
            if table.empty
            else f"bucket table: {table.count()} waiter(s) in bucket(s) "
            + ", ".join(str(b.index) for b in table.buckets)
        )
        return View(status, (status, *self._key_lines(table), *table.render().splitlines()))

    def _key_lines(self, table: FutexTable | None = None) -> list[str]:
        out = []
        for name, addr in self.words.items():
            key = self.process.futex_key(addr)
            line = f"{name:<9} key {addr:#x}({self.process.pid}) -> bucket {futex_index(key)}"
            if table is not None and (head := table.head(key)) is not None:
                line += f": {head.chain()}"
            out.append(line)
        return out

    def extra_checks(self) -> list[Check]:
        table = self.liteos.table()
        return [
            Check(
                "bucket table empty",
                table.empty,
                "no futex node left in g_futexHash" if table.empty else table.render(),
            )
        ]

    def report_lines(self) -> list[str]:
        w = self.tables
        with w.lock:
            busiest, at, count = w.busiest, w.busiest_at, w.busiest_count
            seen = ", ".join(map(str, sorted(w.buckets_seen))) or "none"
            snapshots = w.snapshots
        out = [
            f"liteos: g_futexHash has {abi.FUTEX_INDEX_MAX} buckets (0..63 private, 64..79 "
            f"shared); producers at priority {PRODUCER_PRIORITY}, consumers at "
            f"{CONSUMER_PRIORITY} (0 most urgent); queues in wake order: priority, then FIFO",
            *("  " + line for line in self._key_lines()),
            f"  {snapshots} table snapshots (each queued wait, each sample): buckets seen "
            f"holding waiters: {seen}; at most {count} waiter(s) at once",
        ]
        if busiest is None:
            out.append("  no snapshot found a waiter queued")
        else:
            out.append(f"  the busiest table seen ({at * 1000:.2f} ms, {count} waiter(s)):")
            out.extend("    " + line for line in busiest.render().splitlines())
        final = self.liteos.table()
        out.append("  the table at the end" + (": empty" if final.empty else ":"))
        if not final.empty:
            out.extend("    " + line for line in final.render().splitlines())
        return out

    def facts(self) -> dict[str, int]:
        w = self.tables
        with w.lock:
            return {
                "snapshots": w.snapshots,
                "peak waiters": w.busiest_count,
                "buckets seen": len(w.buckets_seen),
            }
