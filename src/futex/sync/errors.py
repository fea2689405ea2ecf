"""The exceptions of :mod:`futex.sync`.

=========================  ===========================================================
exception                  raised when
=========================  ===========================================================
:class:`OwnerDied`         an acquire took a lock whose holder died holding it (glibc's
                           EOWNERDEAD): the lock is held by the caller and inconsistent
:class:`LockNotRecoverable` the lock was released while inconsistent (ENOTRECOVERABLE)
:class:`LayoutError`       the memory at an offset is not the primitive asked for: wrong
                           magic, version or type, too small, misaligned, or already
                           initialised on ``create``
:class:`NotOwnerError`     release (or make_consistent) by a thread that does not hold
                           the lock
``BrokenBarrierError``     :class:`threading.BrokenBarrierError`, reused
=========================  ===========================================================
"""

from __future__ import annotations

from threading import BrokenBarrierError
from typing import Any

__all__ = [
    "BrokenBarrierError",
    "LayoutError",
    "LockNotRecoverable",
    "NotOwnerError",
    "OwnerDied",
]


class OwnerDied(RuntimeError):
    """The previous holder died holding the lock; this acquire took it.

    The lock *is held* by the thread that got this exception (``e.lock``) and is
    inconsistent: repair the data it protects, then call ``e.lock.make_consistent()``
    and release it.  Releasing it without ``make_consistent()`` makes the lock not
    recoverable (:class:`LockNotRecoverable` for every later acquire until ``reset()``),
    as a POSIX robust mutex does.
    """

    def __init__(self, lock: Any, message: str | None = None) -> None:
        super().__init__(
            message
            or "the holder of the lock died holding it: the lock is now held by this thread "
            "and inconsistent (repair the data, then make_consistent() and release())"
        )
        #: The lock, now held by the thread that caught this exception.
        self.lock = lock


class LockNotRecoverable(RuntimeError):
    """The lock was released while inconsistent; only ``reset()`` makes it usable again."""


class NotOwnerError(RuntimeError):
    """A release (or make_consistent) by a thread that does not hold the lock.

    A subclass of RuntimeError, which :mod:`threading` raises for releasing an unlocked
    lock; futex.sync's locks are owned, unlike ``threading.Lock``.
    """


class LayoutError(ValueError):
    """The memory at the given offset is not (or cannot hold) the primitive asked for."""
