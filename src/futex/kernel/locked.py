"""Locked-bucket handles: how code outside the core reaches a futex queue.

A personality that must look at a queue and act on it under the same bucket lock (a PI
lock deciding whether to queue, an unlock handing the lock to the top waiter, requeue-PI
moving waiters onto a PI state) takes the lock through its manager and works on the
handle it gets:

.. code-block:: python

    with manager.lock_key(key) as h:            # the bucket lock of key is held
        top = h.head(key)
        ...
    with manager.lock_keys(k1, k2) as (h1, h2):  # both, in rank order (h1 is h2 when
        ...                                      # the keys share a bucket)
    with manager.lock_waiter(w) as h:            # the bucket w is queued in, following
        if h is None: ...                        # requeues; None: w is not queued

The handle keeps the core's invariants itself: (I1)-(I4) of :mod:`futex.kernel.core`, and
the counters of :class:`~futex.kernel.core.FutexStats` -- ``enqueue`` counts a wait,
``wake`` a wake, ``move`` a requeue.  A handle is valid only inside its ``with``;
personalities never touch a :class:`~futex.kernel.buckets.Bucket`, a queue, or a
manager's ``*_locked`` primitives (an AST test, ``tests/core/test_layering.py``, keeps
them out).  Woken waiters are collected in a list and told with
:func:`~futex.kernel.core.notify_all` once every lock is released.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from futex.kernel.buckets import Bucket, lock_two, unlock_two
from futex.kernel.keys import Key
from futex.kernel.locking import DEBUG_LOCKS, assert_held
from futex.kernel.waiter import QueueOrder, Waiter

__all__ = ["BucketSnapshot", "LockedBucket", "LockedPair", "LockedWaiter"]


class LockedBucket:
    """A handle on one bucket whose lock the ``with`` holds (see the module docstring).

    Every method requires the lock: call them inside the ``with`` only.  A handle keeps
    no state of its own (its bucket, and the queue order new waiters follow), so one
    handle per bucket serves every thread."""

    __slots__ = ("_bucket", "_lock", "order")

    def __init__(self, bucket: Bucket, order: QueueOrder) -> None:
        self._bucket = bucket
        self._lock = bucket.lock  # the bucket's, read once: __enter__/__exit__ are hot
        #: Where a waiter this handle queues goes (the manager's queue order).
        self.order = order

    def __enter__(self) -> LockedBucket:
        self._lock.acquire()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._lock.release()

    def __repr__(self) -> str:
        return f"<LockedBucket {self._bucket!r}>"

    # -- reading ------------------------------------------------------------------------------

    def head(self, key: Key) -> Waiter | None:
        """The first waiter of ``key`` (the one a wake takes first), or ``None``."""
        b = self._bucket
        if DEBUG_LOCKS:
            assert_held(b.lock)
        q = b.queues.get(key)
        return None if q is None else q.head

    def waiters(self, key: Key) -> Iterator[Waiter]:
        """The waiters of ``key`` in wake order.  The waiter just yielded may be dequeued,
        woken or moved before the next one is asked for; no other change is allowed
        while iterating."""
        b = self._bucket
        if DEBUG_LOCKS:
            assert_held(b.lock)
        q = b.queues.get(key)
        return iter(()) if q is None else iter(q)

    def count(self, key: Key) -> int:
        """How many waiters ``key`` has."""
        b = self._bucket
        if DEBUG_LOCKS:
            assert_held(b.lock)
        q = b.queues.get(key)
        return 0 if q is None else q.count

    def keys(self) -> list[Key]:
        """The keys with waiters in this bucket, oldest queue first (a snapshot)."""
        b = self._bucket
        if DEBUG_LOCKS:
            assert_held(b.lock)
        return list(b.queues)

    def holds(self, w: Waiter) -> bool:
        """Whether ``w`` is queued in this bucket."""
        if DEBUG_LOCKS:
            assert_held(self._bucket.lock)
        return w.bucket is self._bucket

    # -- changing -----------------------------------------------------------------------------

    def enqueue(self, key: Key, w: Waiter) -> None:
        """Queue ``w`` on ``key`` (a wait: counted in ``waits``).  ``key`` must hash to
        this bucket: it is the key the handle was taken for."""
        b = self._bucket
        b.enqueue_locked(self.order, key, w)
        b.waits += 1

    def dequeue(self, w: Waiter) -> None:
        """Take ``w`` out of its queue in this bucket, unwoken (nothing counted)."""
        self._bucket.dequeue_locked(w)

    def wake(self, w: Waiter, woken: list[Waiter]) -> None:
        """Dequeue ``w`` as woken: ``w.woken`` is set, the wake counted, and ``w`` appended
        to ``woken`` (to be told with ``notify_all`` after the locks are released)."""
        b = self._bucket
        b.dequeue_locked(w)
        w.woken = True
        b.wakes += 1
        woken.append(w)

    def wake_matching(self, key: Key, bitset: int, n: int, woken: list[Waiter]) -> int:
        """Wake up to ``n`` waiters of ``key`` whose bitset meets ``bitset``, in queue
        order (see :meth:`~futex.kernel.buckets.Bucket.wake_locked`); return how many."""
        return self._bucket.wake_locked(key, bitset, n, woken)

    def move(self, w: Waiter, dst: LockedBucket, key: Key) -> None:
        """Requeue ``w`` onto ``key`` in ``dst`` (whose lock is held too; it may be this
        handle): counted as a requeue here.  ``w`` joins its new queue where a new waiter
        of its priority would, and is never seen unqueued on the way (``wait_complete``
        follows it)."""
        self._relink(w, dst, key)
        self._bucket.requeues += 1

    def rehash(self, w: Waiter, dst: LockedBucket, key: Key) -> None:
        """:meth:`move` without counting a requeue: the futex did not change, its key's
        place did (a process's private hash went away)."""
        self._relink(w, dst, key)

    def _relink(self, w: Waiter, dst: LockedBucket, key: Key) -> None:
        self._bucket.unlink_locked(w)
        dst._bucket.enqueue_locked(dst.order, key, w)


class LockedPair:
    """``manager.lock_keys(k1, k2)``: both buckets locked in rank order for the ``with``,
    which gives ``(h1, h2)`` -- the same handle twice when the keys share a bucket."""

    __slots__ = ("_h1", "_h2")

    def __init__(self, h1: LockedBucket, h2: LockedBucket) -> None:
        self._h1 = h1
        self._h2 = h2

    def __enter__(self) -> tuple[LockedBucket, LockedBucket]:
        lock_two(self._h1._bucket, self._h2._bucket)
        return self._h1, self._h2

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        unlock_two(self._h1._bucket, self._h2._bucket)


class LockedWaiter:
    """``manager.lock_waiter(w)``: the lock of the bucket ``w`` is queued in, taken and
    checked again until it is still ``w``'s (a requeue may move it meanwhile: the core's
    lock-and-revalidate).  The ``with`` gives its handle, or ``None`` -- no lock held --
    when ``w`` is not queued (a waker, or a hand-off, dequeued it)."""

    __slots__ = ("_bucket", "_handle_of", "_waiter")

    def __init__(self, w: Waiter, handle_of: Callable[[Bucket], LockedBucket]) -> None:
        self._waiter = w
        self._handle_of = handle_of
        self._bucket: Bucket | None = None

    def __enter__(self) -> LockedBucket | None:
        w = self._waiter
        while True:
            b = w.bucket
            if b is None:
                return None
            b.lock.acquire()
            if w.bucket is b:
                self._bucket = b
                return self._handle_of(b)
            b.lock.release()  # requeued meanwhile: follow it

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        b, self._bucket = self._bucket, None
        if b is not None:
            b.lock.release()


@dataclass(frozen=True)
class BucketSnapshot:
    """One bucket's queues at one instant (``manager.bucket_snapshots()``)."""

    #: The name of the table the bucket is in.
    table: str
    #: The bucket's index in its table.
    index: int
    #: ``(key, waiters in wake order)`` for every key with waiters, oldest queue first.
    queues: tuple[tuple[Key, tuple[Waiter, ...]], ...]
