"""A typed snapshot of ``g_futexHash``, and LiteOS's ``OsFutexHashShow`` text.

LiteOS keeps two levels per bucket: ``lockList`` holds one *head* per (key, pid), sorted by
ascending key (``OsFutexInsertNewFutexKeyToHash``: among equal keys — the same address in
two processes — a new head goes first), and each head's ring holds that key's waiters in
wake order: priority (0 first), FIFO among equals.  The core keeps the same facts as one
queue per key in its bucket; :func:`snapshot` lays them out as LiteOS does.

The order of heads with equal addresses is recovered from the order in which the core's
bucket received their queues (a bucket snapshot lists its keys oldest queue first): a
queue is created exactly when LiteOS inserts a new head (first waiter of a key, or the
first waiter moved to a key without waiters) and keeps its place while heads are
promoted, as ``OsFutexReplaceQueueListHeadNode`` keeps it.

Each bucket is copied under its lock (the core's ``bucket_snapshots``); the table as a
whole is not one atomic snapshot while other threads call the kernel.  Priorities are
those the waiters queued with (LiteOS samples them at insertion; later changes do not
reorder).  LiteOS's debug print shows a stale node (timed out, not yet reaped) as
``-1(-1)``; this emulator reaps at the event, so chains never hold one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from futex.kernel.keys import Key
from futex.liteos import abi

if TYPE_CHECKING:
    from futex.kernel.manager import FutexManager

__all__ = ["BucketView", "FutexTable", "HeadView", "QueuedTask", "format_chain", "snapshot"]


@dataclass(frozen=True)
class QueuedTask:
    """One waiter: its task id and the priority it queued with."""

    tid: int
    priority: int

    def __str__(self) -> str:
        return f"{self.tid}({self.priority})"


def format_chain(waiters: tuple[QueuedTask, ...] | list[QueuedTask]) -> str:
    """The ``taskID(priority)`` chain LiteOS prints and its tests annotate:
    ``"30(20) -> 31(22) ->"``."""
    return "".join(f"{w} -> " for w in waiters).rstrip()


@dataclass(frozen=True)
class HeadView:
    """One entry of a bucket's ``lockList``: a key and its waiters in wake order."""

    pid: int
    """The process of a private futex; ``OS_INVALID`` for a shared one."""
    address: int
    """The key: the user virtual address (private) or the physical address (shared)."""
    waiters: tuple[QueuedTask, ...]

    @property
    def key(self) -> Key:
        return (self.pid, self.address)

    @property
    def shared(self) -> bool:
        return self.pid == abi.OS_INVALID

    def chain(self) -> str:
        """See :func:`format_chain`."""
        return format_chain(self.waiters)

    def tids(self) -> list[int]:
        return [w.tid for w in self.waiters]


@dataclass(frozen=True)
class BucketView:
    """A non-empty bucket: its index (0..63 private, 64..79 shared) and its heads."""

    index: int
    heads: tuple[HeadView, ...]

    @property
    def shared(self) -> bool:
        return self.index >= abi.FUTEX_INDEX_SHARED_POS


@dataclass(frozen=True)
class FutexTable:
    """The non-empty buckets of ``g_futexHash``, by ascending index."""

    buckets: tuple[BucketView, ...]

    def heads(self) -> Iterator[HeadView]:
        for b in self.buckets:
            yield from b.heads

    def head(self, key: Key) -> HeadView | None:
        """The head of ``key`` (``(pid, address)``), if anyone waits on it."""
        for h in self.heads():
            if h.key == key:
                return h
        return None

    def waiters(self, key: Key) -> tuple[QueuedTask, ...]:
        """The waiters of ``key`` in wake order (empty when nobody waits)."""
        h = self.head(key)
        return () if h is None else h.waiters

    def bucket(self, index: int) -> BucketView | None:
        for b in self.buckets:
            if b.index == index:
                return b
        return None

    @property
    def empty(self) -> bool:
        return not self.buckets

    def count(self) -> int:
        """Waiters in the whole table."""
        return sum(len(h.waiters) for h in self.heads())

    def render(self) -> str:
        """The table as ``OsFutexHashShow`` prints it (pid -1 for shared keys)."""
        lines = ["#################### los_futex_pri.hash ####################"]
        for b in self.buckets:
            lines.append(f"hash -> index : {b.index}")
            for h in b.heads:
                pid = -1 if h.shared else h.pid
                lines.append(f"key(pid)           : {h.address:#x}({pid}) : -> {h.chain()}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def snapshot(manager: FutexManager) -> FutexTable:
    """Copy the table, bucket by bucket, each under its lock
    (:meth:`~futex.kernel.FutexManager.bucket_snapshots`)."""
    buckets: list[BucketView] = []
    for s in manager.bucket_snapshots():
        queues = [
            (key, tuple(QueuedTask(w.tid, w.prio) for w in waiters)) for key, waiters in s.queues
        ]
        # Ascending address; among equal addresses the newest head first.
        order = sorted(range(len(queues)), key=lambda i: (_address(queues[i][0]), -i))
        heads = []
        for i in order:
            key, queued = queues[i]
            assert isinstance(key, tuple)
            heads.append(HeadView(key[0], key[1], queued))
        buckets.append(BucketView(s.index, tuple(heads)))
    return FutexTable(tuple(buckets))


def _address(key: Key) -> int:
    assert isinstance(key, tuple)
    address: int = key[1]
    return address
