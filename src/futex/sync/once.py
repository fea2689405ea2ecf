"""Once in shared memory: run a function once across threads and processes, robustly.

Memory (64 bytes: the header, then a node shaped exactly as a :class:`~futex.sync.Mutex`
node, so that the runner's node joins its robust list):

====  =====  ==================================================================
off   type   field
====  =====  ==================================================================
16    u32    word: 0 not run; TID[|W] running (the runner's node is linked);
             OD[|W] the runner died; COMPLETE = 0x3FFFFFFF done
20..  40     the rest of the lock node (see :mod:`futex.sync.mutex`)
====  =====  ==================================================================

=====================  ==============================================================
transition             steps
=====================  ==============================================================
call, COMPLETE         return (nothing runs)
call, 0                take the word as a Mutex does (pending, CAS 0 → TID, link);
                       run the function
call, running          sleep as a Mutex waiter; woken to COMPLETE: return; woken to
                       a free word (the runner raised): take it and run
call, OD               the runner died: take the word (poisoned) and run again
function returned      unlink; store COMPLETE; wake all
function raised        unlink; release as a Mutex (the next caller runs it)
=====================  ==============================================================

Why a lock word (sync_design §1.8, Rust std ``sys/sync/once/futex.rs`` with POISONED
detected by the kernel): COMPLETE is 0x3FFFFFFF, never a TID (pid_max <= 2**22), and it
is the value a Mutex stores when released while inconsistent (NOTRECOVERABLE).  So the
runner is an ordinary robust lock holder — the kernel marks OWNER_DIED if it dies
mid-call and wakes a waiter, who runs the function again with ``poisoned=True``
(:meth:`Once.call_once_force`) — and completion is a release that leaves the word
COMPLETE: waiters that find it return.

Dead participants.  A runner that dies makes the next caller run the function again
(the kernel's robust-list walk; in pid-liveness mode, after a waiter's liveness check).
A caller that dies while waiting costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from futex.sync import drive
from futex.sync.layout import Primitive
from futex.sync.mutex import _DIED, CONSISTENT, INCONSISTENT, NOTRECOVERABLE, STATE, WORD, Mutex
from futex.sync.region import Region

__all__ = ["Once"]

#: The word of a Once whose function has completed.
COMPLETE: Final = NOTRECOVERABLE


class _Complete(Exception):
    """The word became COMPLETE while this caller waited."""


class _OnceLock(Mutex):
    """The Once's word driven as a robust Mutex (pure Python: the C core would raise
    LockNotRecoverable where a Once returns)."""

    @classmethod
    def _impl(cls, region: Region) -> type[Primitive]:
        return cls

    def _not_recoverable(self) -> None:
        raise _Complete


class Once(Primitive):
    """Run a function once (see the module docstring).

    ``Once()`` allocates its own shared memory; ``Once.create(buffer, offset)`` /
    ``Once.attach(buffer, offset)`` use the caller's.
    """

    TYPE = 9
    SIZE = 64

    def _bind(self) -> None:
        self._lock = _OnceLock._build(self._region)

    @property
    def done(self) -> bool:
        """Whether the function has completed (in any process)."""
        return bool(self._region.word(WORD).load() == COMPLETE)

    def call_once(self, fn: Callable[[], object]) -> bool:
        """Run ``fn()`` unless it has completed; True when this call ran it to completion.

        Concurrent callers wait for the runner; if it raises, the next caller runs ``fn``;
        if it died, the next caller runs ``fn`` again (see :meth:`call_once_force` to
        know).  Calling it again from inside ``fn`` raises RuntimeError (it would wait
        for itself).
        """
        return self.call_once_force(lambda poisoned: fn())

    def call_once_force(self, fn: Callable[[bool], object]) -> bool:
        """:meth:`call_once` with ``fn(poisoned)``: ``poisoned`` is True when an earlier
        runner died while running it (its work may be half done)."""
        if self.done:
            return False
        lock = self._lock
        try:
            outcome = drive.run(lock._acquire_steps(None))
        except _Complete:
            return False
        r = self._region
        try:
            fn(outcome == _DIED)
        except BaseException:
            r.set_u32(STATE, CONSISTENT)  # a plain release: the next caller runs fn
            Mutex.release(lock)
            raise
        r.set_u32(STATE, INCONSISTENT)  # released inconsistent: the word becomes COMPLETE
        Mutex.release(lock)
        return True
