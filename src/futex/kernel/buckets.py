"""Hash buckets: where a key's waiters live, and the lock that serializes them.

A :class:`BucketTable` is a fixed array of :class:`Bucket` s.  Each bucket has one lock
and a dictionary from key to that key's :class:`~futex.kernel.waiter.WaitQueue`, so an
operation on one key never walks the waiters of another key that hashes to the same
bucket: the cost of a call does not grow with the number of unrelated waiters.

Two tables serve a manager: a private one (private and shared-on-private-mapping keys; per
address space, like gVisor's per-``Manager`` buckets) and a shared one (mappable keys;
common to every manager forked from the same root, so shared futexes meet across
processes).

Lock order (``lock_two``): by ``rank``; private tables rank below shared tables and, in a
table, buckets rank by index.  A key pair that falls in one bucket locks it once (the
whole tree of locks is in :mod:`futex.kernel.locking`).  Counters (``waits``, ``wakes``,
``requeues``, ``longest``) are kept per bucket under its lock, so they are exact without a
global lock.

The queue primitives (``Bucket.*_locked``) are the core's alone: personalities reach a
bucket through the handles of :mod:`futex.kernel.locked`, which keep the counters.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from futex.kernel.errors import PiWaiterConflict
from futex.kernel.keys import Key
from futex.kernel.locking import DEBUG_LOCKS, assert_held, new_lock
from futex.kernel.waiter import QueueOrder, Waiter, WaitQueue

if TYPE_CHECKING:
    from futex.kernel.locked import LockedBucket

__all__ = [
    "Bucket",
    "BucketLayout",
    "BucketTable",
    "HashFn",
    "SplitLayout",
    "default_bucket_count",
    "fold_hash",
]

#: Maps a key to a non-negative integer; the table takes it modulo its size.
HashFn = Callable[[Key], int]


def default_bucket_count() -> int:
    """Linux's global table size: ``roundup_pow_of_two(256 * CPUs)``."""
    n = 256 * (os.cpu_count() or 1)
    return 1 << (n - 1).bit_length()


def fold_hash(key: Key) -> int:
    """gVisor's ``bucketIndexForAddr`` fold of the address (offset) bits, mixed with the
    identity of the address space or object for shared keys.

    The two low bits are always zero (alignment); folding shifted copies keeps neighbouring
    words in neighbouring buckets while spreading all 45 useful address bits.
    """
    a = key if isinstance(key, int) else key[-1] ^ hash(key[-2]) * 2654435761 & 281474976710655
    return (a >> 2) + (a >> 12) + (a >> 22) + (a >> 32) + (a >> 42)


class Bucket:
    """One hash bucket: a lock, the per-key queues, and exact counters."""

    __slots__ = (
        "count",
        "handle",
        "index",
        "lock",
        "longest",
        "queues",
        "rank",
        "requeues",
        "table",
        "waits",
        "wakes",
    )

    def __init__(self, table: BucketTable, index: int) -> None:
        self.table = table
        self.index = index
        self.rank = (table.rank << 40) | index
        self.lock = new_lock()
        self.queues: dict[Key, WaitQueue] = {}
        self.count = 0  # waiters queued here, all keys
        self.waits = 0  # waiters ever queued here by a wait
        self.wakes = 0  # waiters woken from here
        self.requeues = 0  # waiters moved away from here by a requeue
        self.longest = 0  # longest single-key queue seen here
        #: The locked-bucket handle of this bucket, made once (futex.kernel.locked).
        self.handle: LockedBucket | None = None

    def __repr__(self) -> str:
        return f"<Bucket {self.table.name}[{self.index}] waiters={self.count}>"

    # -- queue primitives (this bucket's lock held; no counter but count and longest) --------

    def enqueue_locked(self, order: QueueOrder, key: Key, w: Waiter) -> None:
        """Queue ``w`` on ``key`` where ``order`` puts it."""
        if DEBUG_LOCKS:
            assert_held(self.lock)
        q = self.queues.get(key)
        if q is None:
            q = self.queues[key] = WaitQueue(key)
        order.enqueue(q, w)
        w.key = key
        w.bucket = self
        self.count += 1
        if q.count > self.longest:
            self.longest = q.count

    def unlink_locked(self, w: Waiter) -> None:
        """Take ``w`` out of its queue, leaving ``w.bucket`` as it is (a move sets it)."""
        if DEBUG_LOCKS:
            assert_held(self.lock)
        q = w.queue
        assert q is not None and w.bucket is self
        q.unlink(w)
        if not q.count:
            del self.queues[q.key]
        self.count -= 1

    def dequeue_locked(self, w: Waiter) -> None:
        """Take ``w`` out of its queue; ``w.bucket`` becomes ``None`` (not queued)."""
        self.unlink_locked(w)
        w.bucket = None

    def wake_locked(self, key: Key, bitset: int, n: int, woken: list[Waiter]) -> int:
        """Dequeue up to ``n`` waiters of ``key`` whose bitset meets ``bitset``, in queue
        order, appending them to ``woken`` (``woken`` set, ``wakes`` counted); return how
        many.  Meeting a PI waiter raises :class:`PiWaiterConflict` (those already in
        ``woken`` stay woken)."""
        if DEBUG_LOCKS:
            assert_held(self.lock)
        q = self.queues.get(key)
        if q is None or n <= 0:
            return 0
        done = 0
        w = q.head
        while w is not None:
            nxt = w.next
            if w.pi is not None:  # futex_wake: a PI waiter here is user-space confusion
                self.wakes += done
                raise PiWaiterConflict(done)
            if w.bitset & bitset:
                self.dequeue_locked(w)
                w.woken = True
                woken.append(w)
                done += 1
                if done >= n:
                    break
            w = nxt
        self.wakes += done
        return done


class BucketTable:
    """A fixed-size array of buckets with a hash function."""

    def __init__(self, size: int, hash_fn: HashFn, *, rank: int, name: str) -> None:
        if size < 1:
            raise ValueError(f"a bucket table needs at least one bucket, got {size}")
        self.size = size
        self.hash_fn = hash_fn
        self.rank = rank
        self.name = name
        self.buckets = [Bucket(self, i) for i in range(size)]

    def bucket_for(self, key: Key) -> Bucket:
        return self.buckets[self.hash_fn(key) % self.size]

    def __repr__(self) -> str:
        return f"<BucketTable {self.name} size={self.size}>"


class BucketLayout(Protocol):
    """Where a manager's keys live: its tables, and which bucket holds a key (named
    policy: :class:`SplitLayout` for Linux and Zircon, LiteOS-A's single 80-bucket table in
    :mod:`futex.liteos`)."""

    def tables(self) -> tuple[BucketTable, ...]:
        """Every table of the layout (for stats, snapshots and invariant checks)."""
        ...

    def bucket_of(self, key: Key) -> Bucket:
        """The bucket ``key`` hashes to."""
        ...

    def fork(self) -> BucketLayout:
        """The layout of a manager for a new address space."""
        ...


class SplitLayout:
    """Linux's (and gVisor's) two tables: private and shared-on-private keys in a table of
    the address space, mappable keys in a table common to every forked manager."""

    __slots__ = ("private", "shared")

    def __init__(self, private: BucketTable, shared: BucketTable) -> None:
        self.private = private
        self.shared = shared

    @classmethod
    def new(cls, size: int, hash_fn: HashFn) -> SplitLayout:
        return cls(
            BucketTable(size, hash_fn, rank=0, name="private"),
            BucketTable(size, hash_fn, rank=1, name="shared"),
        )

    def tables(self) -> tuple[BucketTable, ...]:
        return self.private, self.shared

    def bucket_of(self, key: Key) -> Bucket:
        table = self.private if isinstance(key, int) or len(key) == 3 else self.shared
        return table.buckets[table.hash_fn(key) % table.size]

    def fork(self) -> SplitLayout:
        p = self.private
        return SplitLayout(BucketTable(p.size, p.hash_fn, rank=0, name="private"), self.shared)


def lock_two(b1: Bucket, b2: Bucket) -> None:
    """Lock two buckets in rank order (once when they are the same bucket)."""
    if b1 is b2:
        b1.lock.acquire()
    elif b1.rank < b2.rank:
        b1.lock.acquire()
        b2.lock.acquire()
    else:
        b2.lock.acquire()
        b1.lock.acquire()


def unlock_two(b1: Bucket, b2: Bucket) -> None:
    """Release what :func:`lock_two` took, in reverse order."""
    if b1 is b2:
        b1.lock.release()
    elif b1.rank < b2.rank:
        b2.lock.release()
        b1.lock.release()
    else:
        b1.lock.release()
        b2.lock.release()
