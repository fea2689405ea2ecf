"""Wait and wake: the two-phase wait, wake with a bitset, and wake_op.

Why a waiter cannot be lost
---------------------------
A wait blocks only if the condition on the word held at the moment it was queued
(``futex_wait_setup``): (a) ``wait_prepare`` takes the bucket lock, (b) reads the word and,
if it still holds the expected value, (c) queues the waiter, all before releasing the lock.
A waker (A) changes the word first, then (B) takes the same bucket lock to look for waiters.
Either (B) comes after (c), and the waker finds the waiter, or it comes before (a), and
then (b) reads the changed word and the wait does not start.  The bucket lock is the whole
argument; the core never reads a bucket without it.

``wait_prepare`` never blocks.  Whoever called it blocks however it likes (a thread on an
event, a green thread in its scheduler, the checker by switching tasks) and must then call
``wait_complete`` — woken, timed out or interrupted — which dequeues the waiter if a waker
did not, following it through requeues (lock-and-revalidate on ``w.bucket``).
"""

from __future__ import annotations

from collections.abc import Callable

from futex.kernel.buckets import lock_two, unlock_two
from futex.kernel.core import ManagerBase, notify_all
from futex.kernel.errors import ValueMismatch
from futex.kernel.target import FutexTarget
from futex.kernel.waiter import MATCH_ANY, Waiter

__all__ = ["WaitWakeOps"]


class WaitWakeOps(ManagerBase):
    def wait_prepare(
        self,
        w: Waiter,
        target: FutexTarget,
        addr: int,
        private: bool,
        val: int,
        bitset: int = MATCH_ANY,
    ) -> None:
        """Queue ``w`` on the futex at ``addr`` if the word holds ``val``.

        Raises :class:`MisalignedAddress`, :class:`MemoryFault` (key or load), or
        :class:`ValueMismatch` (nothing queued).  On return the caller owes one
        :meth:`wait_complete`.  ``bitset`` is stored as given; a zero bitset is never woken
        (the personalities reject it first).
        """
        found = self.try_wait_prepare(w, target, addr, private, val, bitset)
        if found is not None:
            raise ValueMismatch(addr, val, found)

    def try_wait_prepare(
        self,
        w: Waiter,
        target: FutexTarget,
        addr: int,
        private: bool,
        val: int,
        bitset: int = MATCH_ANY,
    ) -> int | None:
        """:meth:`wait_prepare` for hot paths: a value mismatch is returned (the word
        found), not raised; ``None`` means queued."""
        key = self.key(target, addr, private)
        w.bitset = bitset
        w.woken = False
        b = self.bucket_of(key)
        with b.lock:
            cur = target.load_u32(addr)  # (b): under the lock
            if cur != val:
                return cur
            b.enqueue_locked(self.order, key, w)  # (c)
            b.waits += 1
        return None

    def wait_complete(self, w: Waiter) -> bool:
        """Finish a wait: dequeue ``w`` if it is still queued.  Returns ``True`` if a waker
        had dequeued it (the wait succeeded), ``False`` if this call did."""
        while True:
            b = w.bucket
            if b is None:
                return True
            with b.lock:
                if w.bucket is not b:  # requeued meanwhile: follow it
                    continue
                b.dequeue_locked(w)
                return False

    def wake(
        self,
        target: FutexTarget,
        addr: int,
        private: bool,
        bitset: int,
        n: int,
        woken: list[Waiter] | None = None,
    ) -> int:
        """Wake up to ``n`` waiters on ``addr`` whose bitset meets ``bitset``; return how
        many.  ``n <= 0`` wakes none (Linux's "wake at least one" is the personality's).

        With ``woken`` the dequeued waiters are appended to it and *not* notified: a caller
        that holds a lock of its own (Zircon's thread lock) notifies them with
        :func:`~futex.kernel.core.notify_all` once it holds none."""
        key = self.key(target, addr, private)
        b = self.bucket_of(key)
        defer = woken is not None
        out: list[Waiter] = woken if woken is not None else []
        try:
            with b.lock:
                done = b.wake_locked(key, bitset, n, out)
        finally:
            if out and not defer:
                notify_all(out)
        return done

    def reposition(self, w: Waiter, prio: int) -> bool:
        """A queued waiter's priority changed (it inherited or lost a boost): give it
        ``prio`` and the place in its queue a new waiter of that priority would take.
        Returns whether it was still queued."""
        while True:
            b = w.bucket
            if b is None:
                w.prio = prio
                return False
            with b.lock:
                if w.bucket is not b:  # requeued meanwhile: follow it
                    continue
                key = w.key
                assert key is not None
                b.unlink_locked(w)
                w.prio = prio
                b.enqueue_locked(self.order, key, w)
                return True

    def wake_op(
        self,
        target: FutexTarget,
        addr1: int,
        addr2: int,
        private: bool,
        nwake1: int,
        nwake2: int,
        update: Callable[[int], int],
        compare: Callable[[int], bool],
    ) -> int:
        """Linux ``futex_wake_op``: under both bucket locks, atomically replace the word at
        ``addr2`` by ``update(old)``, wake up to ``nwake1`` waiters on ``addr1`` and, if
        ``compare(old)``, up to ``nwake2`` on ``addr2``.  Returns the number woken.

        Keys are taken in order (``addr1`` for reading, ``addr2`` for writing).  An error
        from ``compare`` propagates after the word was written and before anyone is woken,
        as Linux's unknown-comparison ENOSYS does.
        """
        k1 = self.key(target, addr1, private)
        k2 = self.key(target, addr2, private, write=True)
        b1, b2 = self.bucket_of(k1), self.bucket_of(k2)
        woken: list[Waiter] = []
        lock_two(b1, b2)
        try:
            old = target.update_u32(addr2, update)
            cond = compare(old)
            done = b1.wake_locked(k1, MATCH_ANY, nwake1, woken)
            if cond:
                done += b2.wake_locked(k2, MATCH_ANY, nwake2, woken)
        finally:
            unlock_two(b1, b2)
            notify_all(woken)
        return done
