"""Waiters and the per-key wait queues that hold them.

Synchronization of a :class:`Waiter` (gVisor's ``Waiter`` contract):

- Before :meth:`FutexManager.wait_prepare` succeeds, and after :meth:`wait_complete`
  returns, the waiter belongs to its caller alone.
- While queued, ``key``, ``bucket``, ``queue``, ``prev`` and ``next`` are protected by the
  lock of the bucket the waiter is in; ``bitset`` and ``prio`` do not change.
- ``bucket`` may be read without the lock (it is a single reference), but may change under
  the reader's feet when a requeue moves the waiter: readers lock it and re-check
  (``wait_complete``'s lock-and-revalidate loop).
- ``woken`` is set, under the bucket lock, by whoever dequeued the waiter to wake it.

Queue order is a named policy (:class:`QueueOrder`): Linux orders a bucket by priority and
FIFO within a priority (``__futex_queue``'s plist keyed by ``min(normal_prio,
MAX_RT_PRIO)``); gVisor is pure FIFO.  Lower ``prio`` values come first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from futex.kernel.keys import Key

if TYPE_CHECKING:
    from futex.kernel.buckets import Bucket

__all__ = ["DEFAULT_QUEUE_PRIO", "FIFO", "MATCH_ANY", "PRIORITY", "QueueOrder", "WaitQueue",
           "Waiter"]

#: Where a task that is not real-time queues in Linux's futex queues: ``__futex_queue``'s
#: ``min(normal_prio, MAX_RT_PRIO)`` is ``MAX_RT_PRIO`` (100) for every SCHED_OTHER task,
#: whatever its nice value (not the scheduler's DEFAULT_PRIO, 120: see
#: :mod:`futex.kernel.pi`).
DEFAULT_QUEUE_PRIO = 100

#: The bitset that matches every waiter (FUTEX_BITSET_MATCH_ANY).
MATCH_ANY = 0xFFFFFFFF


class Waiter:
    """One blocked (or about to block) futex wait.

    ``notify`` is called with the waiter, outside every bucket lock, after a waker has
    dequeued it; the blocking layer uses it to resume whatever waits (a thread, a green
    thread, a checker task).  ``owner`` is free for the caller (the task that waits).
    """

    __slots__ = (
        "bitset",
        "bucket",
        "key",
        "next",
        "notify",
        "owner",
        "pi",
        "prev",
        "prio",
        "queue",
        "tid",
        "woken",
    )

    def __init__(
        self,
        notify: Callable[[Waiter], None] | None = None,
        *,
        owner: Any = None,
        prio: int = DEFAULT_QUEUE_PRIO,
        tid: int = 0,
    ) -> None:
        self.notify = notify
        self.owner = owner
        self.prio = prio
        self.tid = tid
        self.key: Key | None = None
        self.bitset = MATCH_ANY
        self.bucket: Bucket | None = None
        self.queue: WaitQueue | None = None
        self.prev: Waiter | None = None
        self.next: Waiter | None = None
        self.woken = False
        #: The PI wait this futex waiter stands for (a LOCK_PI waiter), else ``None``.
        self.pi: Any = None

    @property
    def queued(self) -> bool:
        """Whether the waiter is in a queue (racy without the bucket lock)."""
        return self.bucket is not None

    def __repr__(self) -> str:
        state = "queued" if self.bucket is not None else ("woken" if self.woken else "idle")
        return f"<Waiter {state} key={self.key!r} prio={self.prio} bitset={self.bitset:#x}>"


class WaitQueue:
    """The waiters of one key inside one bucket: an intrusive doubly linked list.

    Append, unlink and pop-front are O(1); a priority insertion walks back from the tail
    past waiters of lower priority (O(1) when all share a priority, the common case).
    """

    __slots__ = ("count", "head", "key", "tail")

    def __init__(self, key: Key) -> None:
        self.key = key
        self.head: Waiter | None = None
        self.tail: Waiter | None = None
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Waiter]:
        w = self.head
        while w is not None:
            nxt = w.next
            yield w
            w = nxt

    def append(self, w: Waiter) -> None:
        w.queue = self
        w.next = None
        w.prev = tail = self.tail
        if tail is None:
            self.head = w
        else:
            tail.next = w
        self.tail = w
        self.count += 1

    def insert_after(self, pos: Waiter | None, w: Waiter) -> None:
        """Insert ``w`` after ``pos`` (``None``: at the head)."""
        if pos is self.tail:
            self.append(w)
            return
        w.queue = self
        w.prev = pos
        if pos is None:
            w.next = self.head
            self.head = w
        else:
            w.next = pos.next
            pos.next = w
        assert w.next is not None
        w.next.prev = w
        self.count += 1

    def unlink(self, w: Waiter) -> None:
        prev, nxt = w.prev, w.next
        if prev is None:
            self.head = nxt
        else:
            prev.next = nxt
        if nxt is None:
            self.tail = prev
        else:
            nxt.prev = prev
        w.prev = w.next = None
        w.queue = None
        self.count -= 1


class QueueOrder:
    """A queueing rule: where a new waiter goes in its key's queue."""

    name = "abstract"

    def enqueue(self, queue: WaitQueue, w: Waiter) -> None:
        raise NotImplementedError

    def in_order(self, a: Waiter, b: Waiter) -> bool:
        """Whether ``a`` may stand before ``b`` (for invariant checks)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<QueueOrder {self.name}>"


class _Fifo(QueueOrder):
    """First come, first woken (gVisor's bucket lists)."""

    name = "fifo"

    def enqueue(self, queue: WaitQueue, w: Waiter) -> None:
        queue.append(w)

    def in_order(self, a: Waiter, b: Waiter) -> bool:
        return True


class _Priority(QueueOrder):
    """Lower ``prio`` first, FIFO among equals (Linux's plist; LiteOS-A; Zircon's best
    thread with priorities mapped so that lower is better)."""

    name = "priority"

    def enqueue(self, queue: WaitQueue, w: Waiter) -> None:
        pos = queue.tail
        prio = w.prio
        while pos is not None and pos.prio > prio:
            pos = pos.prev
        queue.insert_after(pos, w)

    def in_order(self, a: Waiter, b: Waiter) -> bool:
        return a.prio <= b.prio


FIFO: QueueOrder = _Fifo()
PRIORITY: QueueOrder = _Priority()
