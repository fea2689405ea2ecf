"""Requeue: wake some waiters of one futex and move others to a second futex.

Linux ``futex_requeue`` (non-PI): under both bucket locks, optionally check the first word
against a compare value, then walk the first key's queue in order: the first ``nwake``
waiters are woken, the next ``nreq`` are moved, and the walk stops.  Bitsets are ignored.

A moved waiter keeps its bitset and priority and joins the second key's queue where a new
waiter of its priority would (the tail of its priority group).  Requeueing onto the same
key moves nothing: the waiters stay where they are and are only counted, so the call ends
(Linux's ``requeue_futex`` skips the list move when both keys share a bucket).  Linux also
keeps a moved waiter's place when two *different* keys share a bucket; bucket sharing is
an accident of the hash, which differs here, so this core always queues a waiter moved to
another key at the tail — what Linux does whenever the two buckets differ.

``w.bucket`` changes under both locks, so ``wait_complete`` of a moved waiter finds it
(lock-and-revalidate).
"""

from __future__ import annotations

from futex.kernel.buckets import Bucket, lock_two, unlock_two
from futex.kernel.core import ManagerBase, notify_all
from futex.kernel.errors import PiWaiterConflict, ValueMismatch
from futex.kernel.keys import Key
from futex.kernel.locking import DEBUG_LOCKS, assert_held
from futex.kernel.target import FutexTarget
from futex.kernel.waiter import MATCH_ANY, Waiter

__all__ = ["RequeueOps"]


class RequeueOps(ManagerBase):
    def requeue(
        self,
        target: FutexTarget,
        addr1: int,
        addr2: int,
        private: bool,
        nwake: int,
        nreq: int,
        cmpval: int | None = None,
        woken: list[Waiter] | None = None,
    ) -> tuple[int, int]:
        """Wake up to ``nwake`` waiters on ``addr1`` and move up to ``nreq`` more to
        ``addr2``; return ``(woken, requeued)``.

        With ``cmpval`` the word at ``addr1`` must hold it, else :class:`ValueMismatch`
        and nothing changes.  Counts below zero act as zero (the personalities validate).
        ``woken``: as for :meth:`wake` (the caller notifies).
        """
        k1 = self.key(target, addr1, private)
        k2 = self.key(target, addr2, private)
        b1, b2 = self.bucket_of(k1), self.bucket_of(k2)
        defer = woken is not None
        if woken is None:
            woken = []
        moved = 0
        lock_two(b1, b2)
        try:
            if cmpval is not None:
                cur = target.load_u32(addr1)
                if cur != cmpval:
                    raise ValueMismatch(addr1, cmpval, cur)
            done = b1.wake_locked(k1, MATCH_ANY, nwake, woken)
            if nreq > 0 and k1 in b1.queues:
                moved = self._requeue_locked(b1, b2, k1, k2, nreq)
        finally:
            unlock_two(b1, b2)
            if woken and not defer:
                notify_all(woken)
        return done, moved

    def _requeue_locked(self, b1: Bucket, b2: Bucket, k1: Key, k2: Key, nreq: int) -> int:
        if DEBUG_LOCKS:
            assert_held(b1.lock)
            assert_held(b2.lock)
        q = b1.queues[k1]
        same = k1 == k2  # same key: count the waiters, leave them where they are
        moved = 0
        w = q.head
        try:
            while w is not None and moved < nreq:
                nxt = w.next
                if w.pi is not None:  # futex_requeue: never requeue a PI waiter
                    raise PiWaiterConflict(moved)
                if not same:
                    b1.unlink_locked(w)
                    b2.enqueue_locked(self.order, k2, w)
                moved += 1
                w = nxt
        finally:
            if not same:
                b1.requeues += moved
        return moved
