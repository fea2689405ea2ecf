"""Machinery every futex operation shares: keys to buckets, queueing and unqueueing under
the bucket lock, waking, statistics, fork and the invariant check.

Invariants (checked by :meth:`ManagerBase.check_invariants`):

(I1) a queued waiter is in exactly one queue, the queue of its ``key``, in the bucket its key
     hashes to, and ``w.bucket`` / ``w.queue`` name them;
(I2) a queue is never empty while it is in its bucket's dictionary, its links are
     consistent and its ``count`` is its length;
(I3) a bucket's ``count`` is the sum of its queues' lengths;
(I4) every queue is in the order the manager's :class:`QueueOrder` prescribes.

Every function named ``*_locked`` requires the caller to hold the lock of the bucket(s) it
touches (the whole lock order is in :mod:`futex.kernel.locking`).  Waiters dequeued by a
wake are returned to the caller, who calls their ``notify`` after releasing the locks
(Linux's ``wake_q``): nothing runs foreign code under a bucket lock.  Code outside the core
reaches the queues through locked-bucket handles (:meth:`ManagerBase.lock_key`,
:meth:`~ManagerBase.lock_keys`, :meth:`~ManagerBase.lock_waiter`; :mod:`futex.kernel.locked`),
which keep the invariants and the counters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from futex.kernel.buckets import (
    Bucket,
    BucketLayout,
    BucketTable,
    HashFn,
    SplitLayout,
    default_bucket_count,
    fold_hash,
)
from futex.kernel.errors import MisalignedAddress
from futex.kernel.keys import Key
from futex.kernel.locked import BucketSnapshot, LockedBucket, LockedPair, LockedWaiter
from futex.kernel.locking import DEBUG_LOCKS, assert_held
from futex.kernel.pi import PiDomain
from futex.kernel.target import FutexTarget
from futex.kernel.waiter import PRIORITY, QueueOrder, Waiter

_log = logging.getLogger(__name__)

__all__ = ["FutexStats", "ManagerBase", "notify_all"]


@dataclass(frozen=True)
class FutexStats:
    """What a manager's buckets have seen (exact: counted under the bucket locks)."""

    queued: int
    """Waiters queued now."""
    waits: int
    """Waits that queued a waiter."""
    wakes: int
    """Waiters woken."""
    requeues: int
    """Waiters moved to another key by a requeue."""
    longest_queue: int
    """The longest single-key queue seen."""
    buckets_used: int
    """Buckets holding waiters now."""
    busiest_bucket: int
    """The most waiters in one bucket now."""


def notify_all(woken: Iterable[Waiter]) -> None:
    """Tell each dequeued waiter's owner that it was woken (outside every bucket lock).

    Each notify runs isolated, as Linux's ``wake_up_q`` wakes every task it collected: an
    exception in one is logged (``futex.kernel.core``, ERROR) and the others still run;
    it never reaches the waker.  (Pending waits isolate their own callbacks already.)
    """
    for w in woken:
        notify = w.notify
        if notify is not None:
            try:
                notify(w)
            except Exception:
                _log.exception("a waiter's notify callback raised; the other waiters are told")


class ManagerBase:
    """Tables, key lookup, locked-bucket handles and observation; the operations are
    mixed in on top (the queue primitives are the buckets', :mod:`futex.kernel.buckets`).

    Policies (how the kernels differ, never by branching on which kernel this is):
    ``order`` (:class:`QueueOrder`: where a new waiter queues), ``layout``
    (:class:`BucketLayout`: which bucket holds a key; default Linux's two tables of
    ``buckets`` buckets hashed by ``hash_fn``) and ``pi`` (:class:`PiDomain` with its
    inheritance rule).
    """

    #: The bucket ``key`` hashes to (the layout's, bound once: this is a hot path).
    bucket_of: Callable[[Key], Bucket]

    def __init__(
        self,
        *,
        buckets: int | None = None,
        hash_fn: HashFn = fold_hash,
        order: QueueOrder = PRIORITY,
        layout: BucketLayout | None = None,
        pi: PiDomain | None = None,
    ) -> None:
        if layout is None:
            size = default_bucket_count() if buckets is None else buckets
            layout = SplitLayout.new(size, hash_fn)
        self.order = order
        self.layout = layout
        self.bucket_of = layout.bucket_of
        #: Priority inheritance bookkeeping, common to every manager forked from this one.
        self.pi = pi if pi is not None else PiDomain()

    @property
    def private(self) -> BucketTable:
        """The first table of the layout (the address space's own, for a split layout)."""
        return self.layout.tables()[0]

    @property
    def shared(self) -> BucketTable:
        """The last table of the layout (common to forked managers, for a split one)."""
        return self.layout.tables()[-1]

    # -- keys and buckets -------------------------------------------------------------------

    @staticmethod
    def key(target: FutexTarget, addr: int, private: bool, write: bool = False) -> Key:
        """The key of ``addr``: alignment first (EINVAL), then the target's checks."""
        if addr & 3:
            raise MisalignedAddress(addr)
        return target.futex_key(addr, private, write)

    # -- locked-bucket handles (futex.kernel.locked) ----------------------------------------

    def lock_key(self, key: Key) -> LockedBucket:
        """``with manager.lock_key(key) as h``: the bucket lock of ``key`` held, ``h`` its
        handle (:class:`~futex.kernel.locked.LockedBucket`)."""
        b = self.bucket_of(key)
        h = b.handle  # _handle(b), inlined: every PI call takes this path
        if h is None or h.order is not self.order:
            h = b.handle = LockedBucket(b, self.order)
        return h

    def lock_keys(self, k1: Key, k2: Key) -> LockedPair:
        """``with manager.lock_keys(k1, k2) as (h1, h2)``: both bucket locks held, taken in
        rank order; ``h1 is h2`` when the keys share a bucket."""
        return LockedPair(self._handle(self.bucket_of(k1)), self._handle(self.bucket_of(k2)))

    def _handle(self, b: Bucket) -> LockedBucket:
        """``b``'s handle, made once (it holds no state of its own but the bucket and the
        queue order, so every thread may share it)."""
        h = b.handle
        if h is None or h.order is not self.order:
            h = b.handle = LockedBucket(b, self.order)
        return h

    def lock_waiter(self, w: Waiter) -> LockedWaiter:
        """``with manager.lock_waiter(w) as h``: the lock of the bucket ``w`` is queued in
        (following requeues), ``h`` its handle -- or ``None``, no lock held, when ``w`` is
        not queued."""
        return LockedWaiter(w, self._handle)

    # -- observation ------------------------------------------------------------------------

    def _tables(self) -> tuple[BucketTable, ...]:
        return self.layout.tables()

    def stats(self) -> FutexStats:
        """Counters over this manager's private table and the shared table it uses."""
        queued = waits = wakes = requeues = longest = used = busiest = 0
        for table in self._tables():
            for b in table.buckets:
                with b.lock:
                    queued += b.count
                    waits += b.waits
                    wakes += b.wakes
                    requeues += b.requeues
                    longest = max(longest, b.longest)
                    busiest = max(busiest, b.count)
                    used += bool(b.count)
        return FutexStats(queued, waits, wakes, requeues, longest, used, busiest)

    def queues(self) -> dict[Key, list[Waiter]]:
        """A snapshot of every non-empty queue, in wake order."""
        out: dict[Key, list[Waiter]] = {}
        for table in self._tables():
            for b in table.buckets:
                with b.lock:
                    for key, q in b.queues.items():
                        out[key] = list(q)
        return out

    def bucket_index(self, key: Key) -> int:
        """The index, in its table, of the bucket ``key`` hashes to (for diagnostics:
        which keys share a bucket)."""
        return self.bucket_of(key).index

    def queued_keys(self) -> list[Key]:
        """Every key with waiters now (each bucket read under its lock, one at a time)."""
        out: list[Key] = []
        for table in self._tables():
            for b in table.buckets:
                with b.lock:
                    out.extend(b.queues)
        return out

    def bucket_snapshots(self) -> list[BucketSnapshot]:
        """Every bucket holding waiters, table by table and in index order, each copied
        under its lock: its keys oldest queue first, their waiters in wake order."""
        out: list[BucketSnapshot] = []
        for table in self._tables():
            for b in table.buckets:
                with b.lock:
                    if not b.queues:
                        continue
                    queues = tuple((key, tuple(q)) for key, q in b.queues.items())
                out.append(BucketSnapshot(table.name, b.index, queues))
        return out

    def check_invariants(self) -> None:
        """Assert (I1)-(I4) of the module docstring; raises ``AssertionError`` on a breach."""
        for table in self._tables():
            for b in table.buckets:
                with b.lock:
                    self._check_bucket_locked(table, b)

    def _check_bucket_locked(self, table: BucketTable, b: Bucket) -> None:
        if DEBUG_LOCKS:
            assert_held(b.lock)
        total = 0
        for key, q in b.queues.items():
            assert q.key == key, f"queue keyed {q.key!r} filed under {key!r}"
            assert q.count > 0, f"empty queue for {key!r} left in {b!r}"
            assert table.bucket_for(key) is b, f"{key!r} is in {b!r}, hashes elsewhere"
            n = 0
            prev: Waiter | None = None
            w = q.head
            while w is not None:
                assert w.prev is prev, f"broken back link at {w!r}"
                assert w.queue is q and w.bucket is b, f"{w!r} does not point at its queue"
                assert w.key == key, f"{w!r} queued under {key!r}"
                if prev is not None:
                    assert self.order.in_order(prev, w), f"{prev!r} before {w!r} breaks order"
                n += 1
                assert n <= q.count, f"queue for {key!r} is longer than its count"
                prev, w = w, w.next
            assert q.tail is prev, f"tail of {key!r} is not its last waiter"
            assert n == q.count, f"queue for {key!r} has {n} waiters, count {q.count}"
            total += n
        assert total == b.count, f"{b!r} counts {b.count}, holds {total}"
