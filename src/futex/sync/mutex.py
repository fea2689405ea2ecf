"""Mutex and RLock: robust, owned locks in shared memory (glibc's robust "take 2").

Memory (64 bytes: the header, then a 40-byte node shaped like glibc's
``pthread_mutex_t`` so that it can join glibc's per-thread robust list):

====  ====  =====  ===========================================================
off   node  type   field
====  ====  =====  ===========================================================
16    0     u32    lock word (below)
20    4     u32    RLock recursion count (owner-only)
24    8     u32    state: 0 consistent, 1 inconsistent (OwnerDied taken)
28    12    u32    owner pid (pid-liveness mode)
32    16    u64    pid-liveness mode: the owner thread's start time; robust-list
                   mode, while linked: the address of the object the link keeps
                   alive (process-local), so the memory stays mapped
40    24    u64    robust list ``prev`` (process-local address)
48    32    u64    robust list ``next``: the list points here; futex_offset -32
56    40    u32    spin estimate (the C path's adaptive spin)
60    44    u32    owner TID of the pid-liveness record, written last
====  ====  =====  ===========================================================

The lock word is the kernel's robust format (W = FUTEX_WAITERS, OD = FUTEX_OWNER_DIED):

=================  ============================================================
word               meaning
=================  ============================================================
0                  free
W                  free, waiters may remain: the next unlock still wakes one
TID                held by TID, nobody asleep
TID | W            held, someone may sleep
OD, OD | W         the holder died; the kernel set OD (and woke one if W)
NOTRECOVERABLE     released while inconsistent: acquires raise LockNotRecoverable
=================  ============================================================

============================  =================================================
transition                    steps
============================  =================================================
acquire, free (0 or W)        pending = node; CAS v → TID | (v & W) | assume;
                              link node; pending = 0
acquire, held                 CAS v → v | W; FUTEX_WAIT(word, v | W); assume = W
acquire, OD                   CAS v → TID | (v & W) | assume; state = inconsistent;
                              raise OwnerDied (the lock is held)
leave after sleeping          (timeout, exception) wake 1: pass the wake on
release, TID                  pending = node; unlink; CAS TID → 0; pending = 0
release, TID | W              pending; unlink; swap → W; wake 1; if nobody woke:
                              CAS W → 0; pending = 0
release, inconsistent         pending; unlink; store NOTRECOVERABLE; wake all
============================  =================================================

Why: ``assume`` is glibc's ``assume_other_futex_waiters`` — a thread that has slept
takes the lock with W, since others may sleep too (glibc BZ #20973 dropped it on an
owner-died takeover).  The free W word is what keeps a waiter from sleeping forever
when a just-woken waiter is SIGKILLed while the unlocker re-takes the lock through the
fast path (measured: glibc's robust mutex loses that wakeup; sync_design §8).  The
kernel wakes one waiter on a dead thread's pending op only when the word's TID bits
are 0 (``handle_futex_death``), which both free forms satisfy.

On the host kernel a C core (``futex.native._native.LockCore``) runs this same
algorithm for ``acquire``/``release``/``with`` (plus a short adaptive spin); the Python
methods below are the reference, which the emulated kernel runs and the tests compare
the C core against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from futex.sync import drive
from futex.sync.drive import Algorithm, Sleep
from futex.sync.errors import LockNotRecoverable, NotOwnerError, OwnerDied
from futex.sync.layout import Primitive, native_class
from futex.sync.owner import ROBUST_LIST, Owner
from futex.sync.region import Region
from futex.word import ALL

__all__ = ["LockStatistics", "Mutex", "RLock"]

W: Final = 0x8000_0000
OD: Final = 0x4000_0000
TID_MASK: Final = 0x3FFF_FFFF
NOTRECOVERABLE: Final = 0x3FFF_FFFF
CONSISTENT: Final = 0
INCONSISTENT: Final = 1

#: Offsets from the primitive's start.
WORD: Final = 16
COUNT: Final = 20
STATE: Final = 24
PID: Final = 28
START: Final = 32
RECORD_TID: Final = 60
#: Longest sleep between two liveness checks in pid-liveness mode (seconds).
LIVENESS_SLICE: Final = 0.02

# acquire outcomes
_TAKEN, _DIED, _TIMEOUT = 0, 1, 2


@dataclass(frozen=True)
class LockStatistics:
    """A snapshot of a lock (``statistics()``)."""

    locked: bool
    #: TID of the holder (0: free, or the holder died).
    owner: int
    #: The WAITERS bit: someone may be asleep.
    waiters: bool
    #: Taken after its holder died and not yet made consistent.
    inconsistent: bool
    not_recoverable: bool
    #: Recursion depth (RLock; 1 for a held Mutex).
    count: int
    #: ``"robust-list"`` or ``"pid-liveness"`` (see :mod:`futex.sync.owner`).
    mode: str


def _timeout_arg(blocking: bool, timeout: float | None) -> float | None:
    """threading's (blocking, timeout) rules; the timeout in seconds or None."""
    if not blocking:
        if timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking call")
        return 0.0
    if timeout is None or timeout == -1:  # None: as multiprocessing.Lock
        return None
    if timeout < 0:
        raise ValueError("timeout value must be a non-negative number")
    return float(timeout)


class Mutex(Primitive):
    """A robust, owned lock in shared memory (see the module docstring).

    ``Mutex()`` allocates its own shared memory; ``Mutex.create(buffer, offset)`` /
    ``Mutex.attach(buffer_or_name, offset)`` use the caller's.  ``on_owner_died``: a
    function called with the lock held when an acquire inside ``with`` finds the holder
    died; returning marks the lock consistent, raising makes it not recoverable.
    Without it, ``acquire`` raises :class:`OwnerDied` with the lock held.
    """

    TYPE = 1
    SIZE = 64
    _recursive: bool = False
    on_owner_died: Callable[[Mutex], object] | None = None

    @classmethod
    def _impl(cls, region: Region) -> type[Primitive]:
        if region.kernel != "native" or region.owner().mode != ROBUST_LIST:
            return cls
        return native_class(cls, "LockCore", lambda m: (m._region.word(WORD), m._recursive))

    def _bind(self) -> None:
        self._node = self._region.address(WORD)

    def _init_fields(self, on_owner_died: Callable[[Mutex], object] | None = None) -> None:
        if on_owner_died is not None:
            self.on_owner_died = on_owner_died

    # -- acquire --------------------------------------------------------------------

    def acquire(self, blocking: bool = True, timeout: float | None = -1) -> bool:
        """Take the lock (threading's signature); True when taken, False on timeout.

        Raises :class:`OwnerDied` (the lock then held) if the holder died holding it,
        :class:`LockNotRecoverable` if it was released inconsistent, RuntimeError for a
        Mutex this thread already holds (an RLock counts instead).
        """
        t = _timeout_arg(blocking, timeout)
        r = self._region
        outcome = drive.run(self._acquire_steps(drive.deadline_after(t, r.monotonic)))
        if outcome == _DIED:
            self._owner_died()
        return outcome != _TIMEOUT

    def _acquire_steps(
        self, deadline: float | None, assume: int = 0, *, loop_shared: bool = False
    ) -> Algorithm[int]:
        """The acquire algorithm (a :mod:`futex.sync.drive` generator).

        ``assume``: W after a sleep elsewhere (Condition's relock).  ``loop_shared``: the
        caller is a coroutine (:mod:`futex.sync.aio`): the word held by this thread's TID
        means another coroutine of the loop holds it, so wait as for any holder.
        """
        r, node = self._region, self._node
        word = r.word(WORD)
        own = r.owner()
        tid = own.tid
        robust = own.mode == ROBUST_LIST
        if robust:
            own.pending(node)
        slept = False
        taken = False
        try:
            while True:
                v = word.load()
                if v & TID_MASK == 0:  # free (0, W) or the holder died (OD, OD|W)
                    if word.cas(v, tid | (v & W) | assume) != v:
                        continue
                    self._took(own, node)
                    taken = True
                    if v & OD:
                        r.set_u32(STATE, INCONSISTENT)
                        return _DIED
                    return _TAKEN
                if v == NOTRECOVERABLE:
                    self._not_recoverable()
                if v & TID_MASK == tid and not loop_shared:
                    if self._recursive:
                        r.set_u32(COUNT, r.u32(COUNT) + 1)
                        taken = True
                        if robust:  # already linked: nothing is pending
                            own.pending(0)
                        return _TAKEN
                    self._deadlock()
                if deadline is not None and deadline - r.monotonic() <= 0:
                    return _TIMEOUT
                if not v & W and word.cas(v, v | W) != v:
                    continue
                until = deadline
                if not robust:
                    now = r.monotonic() + LIVENESS_SLICE
                    until = now if deadline is None else min(deadline, now)
                slept = True  # before the yield: an exception thrown in there passes it on
                assume = W
                woke = yield Sleep(word, v | W, until, r.monotonic, r.kernel == "native")
                if robust:  # the thread's one pending slot may have served another op
                    own.pending(node)
                elif not woke:
                    self._check_holder(own, v | W)
        finally:
            if not taken and slept:
                word.wake(1)  # a wake this thread consumed goes on to the next waiter
            if robust and not taken:
                own.pending(0)

    def _took(self, own: Owner, node: int) -> None:
        r = self._region
        if self._recursive:
            r.set_u32(COUNT, 1)
        if own.mode == ROBUST_LIST:
            own.link(node, self)
            own.pending(0)
        else:
            own.link(node, self)
            r.set_u32(PID, own.pid)
            r.set_u64(START, own.start_time())
            r.set_u32(RECORD_TID, own.tid)  # last: the record is whole

    def _check_holder(self, own: Owner, seen: int) -> None:
        """pid-liveness mode: if the holder of ``seen`` is dead, mark the word OD.

        The record (pid, start time) is judged only when its TID, written last, is the
        word's: a record being written, or an earlier holder's, proves nothing, and then
        only "no such thread" (``/proc/<tid>``: a TID is not reused while its thread
        lives) counts as dead."""
        r = self._region
        tid = seen & TID_MASK
        if r.u32(RECORD_TID) == tid:
            alive = own.alive(r.u32(PID), tid, r.u64(START))
        else:
            alive = own.alive(0, tid, 0)
        if not alive:
            self._region.word(WORD).cas(seen, (seen & W) | OD)

    # -- release --------------------------------------------------------------------

    def release(self) -> None:
        """Release the lock; :class:`NotOwnerError` if this thread does not hold it."""
        r, node = self._region, self._node
        word = r.word(WORD)
        own = r.owner()
        tid = own.tid
        v = word.load()
        if v & TID_MASK != tid or v == NOTRECOVERABLE:
            self._not_owner("release")
        if self._recursive:
            count = r.u32(COUNT)
            if count > 1:
                r.set_u32(COUNT, count - 1)
                return
            r.set_u32(COUNT, 0)
        own.pending(node)
        own.unlink(node, self)
        if r.u32(STATE) == INCONSISTENT:
            word.store(NOTRECOVERABLE)
            word.wake(ALL)
        elif word.cas(tid, 0) != tid:
            word.swap(W)
            if word.wake(1) == 0:
                word.cas(W, 0)
        own.pending(0)

    def locked(self) -> bool:
        """Whether the lock is held (by anyone; a dead holder's lock counts)."""
        v = self._region.word(WORD).load()
        return v not in (0, W)

    def _is_owned(self) -> bool:
        """Whether the calling thread holds the lock."""
        v = self._region.word(WORD).load()
        return v != NOTRECOVERABLE and v & TID_MASK == self._region.owner().tid

    # -- robustness -----------------------------------------------------------------

    def make_consistent(self) -> None:
        """Mark the lock consistent after :class:`OwnerDied` (the caller holds it)."""
        if not self._is_owned():
            self._not_owner("make_consistent")
        if self._region.u32(STATE) != INCONSISTENT:
            raise RuntimeError("make_consistent: the lock is not inconsistent")
        self._region.set_u32(STATE, CONSISTENT)

    def reset(self) -> None:
        """Make a not-recoverable lock usable again (free and consistent)."""
        if self._region.word(WORD).load() != NOTRECOVERABLE:
            raise ValueError("reset: the lock is not in the not-recoverable state")
        self._region.set_u32(STATE, CONSISTENT)
        self._region.set_u32(COUNT, 0)
        self._region.word(WORD).cas(NOTRECOVERABLE, 0)

    @property
    def consistent(self) -> bool:
        return self._region.u32(STATE) == CONSISTENT

    def statistics(self) -> LockStatistics:
        r = self._region
        v = self._region.word(WORD).load()
        nr = v == NOTRECOVERABLE
        owner = 0 if nr else v & TID_MASK
        count = r.u32(COUNT) if self._recursive else int(bool(owner))
        return LockStatistics(
            locked=self.locked() and not nr,
            owner=owner,
            waiters=bool(v & W) and not nr,
            inconsistent=r.u32(STATE) == INCONSISTENT,
            not_recoverable=nr,
            count=count if owner else 0,
            mode=r.owner().mode if r.kernel == "native" else ROBUST_LIST,
        )

    # -- hooks (the C core calls these on its rare paths) ----------------------------

    def _owner_died(self) -> None:
        raise OwnerDied(self)

    def _owner_died_in_with(self) -> None:
        """``with`` took a dead holder's lock: ``on_owner_died`` repairs (the body cannot
        run if ``__enter__`` raises), else OwnerDied as from acquire."""
        hook = self.on_owner_died
        if hook is None:
            self._owner_died()
            return
        try:
            hook(self)
        except BaseException:
            self.release()  # inconsistent: the lock becomes not recoverable
            raise
        self.make_consistent()

    def _not_recoverable(self) -> None:
        raise LockNotRecoverable(
            f"the {self._public().__name__} was released while inconsistent (its holder "
            "had died and nobody called make_consistent()); reset() makes it usable again"
        )

    def _not_owner(self, what: str) -> None:
        v = self._region.word(WORD).load()
        holder = "nobody" if v in (0, W) else (
            "a thread that died" if v & OD else f"thread {v & TID_MASK}")
        raise NotOwnerError(
            f"{what}: this thread ({self._region.owner().tid}) does not hold the "
            f"{self._public().__name__} ({holder} does)"
        )

    def _deadlock(self) -> None:
        raise RuntimeError(
            "acquire would deadlock: this thread already holds the Mutex (use RLock for "
            "re-entry)"
        )

    def close(self) -> None:
        """Let go of the memory; RuntimeError while this thread holds the lock (its node
        is on this thread's robust list, which must never point into unmapped memory)."""
        if not self._region.closed and self._is_owned():
            raise RuntimeError(f"close: release the {self._public().__name__} first")
        super().close()

    # -- with -----------------------------------------------------------------------

    def __enter__(self) -> Mutex:
        if drive.run(self._acquire_steps(None)) == _DIED:
            self._owner_died_in_with()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- asyncio (host kernel) --------------------------------------------------------

    async def acquire_async(self, timeout: float | None = None) -> bool:
        """Take the lock from a coroutine (:mod:`futex.sync.aio`): no thread per waiter,
        the event loop's thread becomes the owner (release from that thread: any
        coroutine of the loop, or ``async with``).  True when taken, False on timeout
        (None: forever); OwnerDied / LockNotRecoverable as :meth:`acquire`.  The loop's
        coroutines take it one at a time in FIFO order; not re-entrant (a task that
        acquires again a lock it holds waits, as with asyncio.Lock).  A cancelled
        acquire leaves the lock as if it had never waited.  Host kernel only."""
        return await self._acquire_async(timeout, in_with=False)

    async def _acquire_async(self, timeout: float | None, in_with: bool) -> bool:
        from futex.sync import aio

        if self._region.kernel != "native":
            raise TypeError(
                "asyncio waits need the host kernel (futex.native.Word): this "
                f"{self._public().__name__} is on the emulated kernel"
            )

        async def attempt(deadline: float | None) -> bool:
            outcome = await aio.run_async(
                Mutex._acquire_steps(self, deadline, loop_shared=True)
            )
            if outcome == _DIED:
                if in_with:
                    self._owner_died_in_with()
                else:
                    self._owner_died()
            return outcome != _TIMEOUT

        return await aio.acquire_owned(("futex.sync.lock", self._node), attempt, timeout)

    async def __aenter__(self) -> Mutex:
        await self._acquire_async(None, in_with=True)  # on_owner_died runs as in `with`
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class RLock(Mutex):
    """A re-entrant :class:`Mutex`: the holder may acquire it again, and releases it as
    many times.  An owner-died takeover starts the count at 1."""

    TYPE = 2
    _recursive = True

    def _release_save(self) -> int:
        """Release fully (for Condition.wait); returns the count to restore."""
        count = self._region.u32(COUNT)
        self._region.set_u32(COUNT, 1)
        self.release()
        return count

    def _acquire_restore(self, count: int) -> None:
        self._region.set_u32(COUNT, count)
