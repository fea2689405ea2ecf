"""futex.sync — synchronization primitives in shared memory that survive a killed holder.

Locks, conditions, semaphores, reader/writer locks, barriers and events that live in
memory the caller chooses (any writable buffer at an offset, shared memory by name) or
allocate their own, and work across threads and unrelated processes.  Each algorithm is
written once, in Python, against :class:`futex.word.FutexWord` and a small owner
interface (:mod:`futex.sync.owner`), so it runs on the host kernel (``futex.native``,
with C fast paths) and on the emulated one (:mod:`futex.sync.emulated`), where it is
tested under chosen interleavings and a manual clock.

The owned primitives (:class:`Mutex`, :class:`RLock`, the lock under :class:`Condition`,
the writer side of :class:`RWLock`) keep the kernel's robust futex word, and their nodes
join the calling thread's robust list: when a holder dies — SIGKILL, ``os._exit``, a
thread that ends holding it — the kernel marks the word and wakes a waiter, who gets the
lock together with :class:`OwnerDied` (see :func:`robust_mode`).
"""

from __future__ import annotations

from futex.sync.barrier import Barrier
from futex.sync.condition import Condition, ConditionStatistics
from futex.sync.errors import (
    BrokenBarrierError,
    LayoutError,
    LockNotRecoverable,
    NotOwnerError,
    OwnerDied,
)
from futex.sync.event import Event, EventStatistics
from futex.sync.layout import Primitive
from futex.sync.mutex import LockStatistics, Mutex, RLock
from futex.sync.once import Once
from futex.sync.owner import PID_LIVENESS, ROBUST_LIST, robust_mode
from futex.sync.rwlock import RWLock
from futex.sync.semaphore import BoundedSemaphore, Semaphore, SemaphoreStatistics

__all__ = [
    "PID_LIVENESS",
    "ROBUST_LIST",
    "Barrier",
    "BoundedSemaphore",
    "BrokenBarrierError",
    "Condition",
    "ConditionStatistics",
    "Event",
    "EventStatistics",
    "LayoutError",
    "LockNotRecoverable",
    "LockStatistics",
    "Mutex",
    "NotOwnerError",
    "Once",
    "OwnerDied",
    "Primitive",
    "RLock",
    "RWLock",
    "Semaphore",
    "SemaphoreStatistics",
    "robust_mode",
]
