"""The locking contract of the futex core and of every personality built on it.

The lock order
--------------
Every lock in the package has a place in one order; a thread that holds a lock takes only
locks below it (skipping levels freely), top to bottom::

    task table lock              a kernel's pid/tid/koid table (``_table_locked``); a new
    │                            task's scheduling, and its default futex hash, are set
    │                            under it
    └── private-hash lock        a process's futex hash being replaced (Linux's
        │                        ``mm->futex_hash_lock``: queued waiters are rehashed)
        └── pending-wait lock    PendingWait._lock: one blocked call's state
            └── bucket locks     Bucket.lock: a key's queue; two at once in rank order
                │  by rank       (private tables below shared ones, then by index; a
                │                pair in one bucket is locked once)
                └── PI domain    PiDomain.lock: every PiState, every task's PI fields
                    │ lock
                    └── leaves   locks never held while another is taken: a task's exit
                                 mutex, a clock's timer lock, a caller's watch
                                 condition, id counters, the emulated memory's lock

**The named exception: a thread lock above the buckets.**  Zircon's ThreadLock-era kernel
serializes every futex operation with one *thread lock*, and the Zircon personality uses
its PI domain lock as that lock (``ZirconKernel.lock is ZirconKernel.pi.lock``) and takes
it *before* the bucket locks: under it the core's wait, wake and requeue take their
bucket locks.  The order there is pending-wait lock -> thread lock (the PI domain lock)
-> bucket locks.  The two orders never meet: a PI domain serves one kernel, and a Zircon
kernel never takes its domain lock under a bucket lock (its PI bookkeeping runs with no
bucket lock held), so no cycle exists.

What runs with no lock held: a waiter's ``notify`` (wakers collect the dequeued waiters
and call :func:`~futex.kernel.core.notify_all` after unlocking, as Linux's ``wake_q``
does), a pending wait's done callbacks, and timer callbacks.

Names carry the contract
------------------------
A function's suffix names the innermost lock its caller must hold; by the order above the
caller also holds the locks that protect the data it touches on the way:

=====================  ================================================================
suffix                 the caller holds
=====================  ================================================================
``_locked``            the bucket lock(s) of the keys it touches, and nothing else is
                       implied
``_pi_locked``         the PI domain lock (Zircon: the thread lock)
``_pending_locked``    the pending wait's lock
``_thread_locked``     Zircon's thread lock
``_table_locked``      a kernel's task (pid, koid) table lock
``_mm_locked``         the emulated memory's lock (:mod:`futex.memory`): a leaf,
                       taken under bucket locks to read a word, holding no other lock
=====================  ================================================================

Checking it
-----------
:func:`assert_held` is called at the top of the core's ``_locked`` functions (and of the
handle methods of :mod:`futex.kernel.locked`, the PI domain's methods, and the pending
wait's ``_pending_locked`` ones) when the environment variable ``FUTEX_DEBUG_LOCKS`` is
``1`` as the package is imported (:data:`DEBUG_LOCKS`): then every lock made by
:func:`new_lock` (bucket, PI domain and pending-wait locks) records its owning thread, and
:func:`assert_held` raises ``AssertionError`` when the calling thread does not hold the
lock.  Otherwise nothing is checked and the locks are plain ``threading.Lock`` s.  CI runs
the whole suite once so (``.ci/run``, its third run).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

__all__ = ["DEBUG_LOCKS", "LockLike", "OwnedLock", "assert_held", "new_lock"]

#: Whether locks track their owner and :func:`assert_held` checks (read once, at import).
DEBUG_LOCKS = os.environ.get("FUTEX_DEBUG_LOCKS", "") == "1"


class LockLike(Protocol):
    """What the package needs of a lock: ``threading.Lock``'s interface."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...

    def locked(self) -> bool: ...

    def __enter__(self) -> bool: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class OwnedLock:
    """A ``threading.Lock`` that knows which thread holds it (``FUTEX_DEBUG_LOCKS=1``).

    Releasing it from a thread that does not hold it raises ``RuntimeError``: the locks
    made by :func:`new_lock` are only ever released by their holder."""

    __slots__ = ("_lock", "owner")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: The ``threading.get_ident()`` of the holder, or ``None``.
        self.owner: int | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = threading.get_ident()
        if self.owner == me:
            raise RuntimeError(f"{self!r}: the holder takes it again (self-deadlock)")
        got = self._lock.acquire(blocking, timeout)
        if got:
            self.owner = me
        return got

    def release(self) -> None:
        if self.owner != threading.get_ident():
            raise RuntimeError(f"{self!r}: released by a thread that does not hold it")
        self.owner = None
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<OwnedLock owner={self.owner}>"


#: ``new_lock()``: a lock of the core's lock tree -- a plain ``threading.Lock``, or an
#: :class:`OwnedLock` when ``FUTEX_DEBUG_LOCKS=1``.
new_lock: Callable[[], LockLike] = OwnedLock if DEBUG_LOCKS else threading.Lock


def assert_held(lock: LockLike) -> None:
    """Raise ``AssertionError`` unless the calling thread holds ``lock`` (an
    :class:`OwnedLock`; a plain lock is only checked to be held by someone).

    Call sites guard the call with the flag, ``if DEBUG_LOCKS: assert_held(lock)``, so
    that a normal run pays one global read and no call on the hot paths."""
    if isinstance(lock, OwnedLock):
        if lock.owner != threading.get_ident():
            raise AssertionError(f"{lock!r} is not held by this thread")
    elif not lock.locked():
        raise AssertionError(f"{lock!r} is not held")
