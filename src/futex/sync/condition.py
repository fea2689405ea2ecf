"""Condition in shared memory: a sequence counter, a waiter count and a robust lock.

Memory (96 bytes: the header, the condition's two words, then its lock):

====  =====  ==================================================================
off   type   field
====  =====  ==================================================================
16    u32    seq: bumped by every notify (the futex waiters sleep on)
20    u32    nwaiters: threads between "about to sleep" and "lock re-taken"
24    8      reserved
32    64     the lock: a whole :class:`~futex.sync.RLock` (default) or
             :class:`~futex.sync.Mutex`, header included; header flags bit 0
             of the condition says which (1: RLock)
====  =====  ==================================================================

=====================  ==============================================================
operation              steps (the caller holds the lock)
=====================  ==============================================================
wait(timeout)          s = seq; nwaiters += 1; release the lock fully; FUTEX_WAIT(seq,
                       s, deadline) until seq moved or the deadline; re-take the lock
                       with ``assume = W``; nwaiters -= 1
notify(n)              seq += 1; if nwaiters: FUTEX_WAKE(seq, n)
notify_all()           seq += 1; if nwaiters: set W on the lock word, then
                       FUTEX_CMP_REQUEUE(seq → lock word, expected = seq, wake 0,
                       requeue all) (EAGAIN: re-read seq and retry)
=====================  ==============================================================

Why it works (Rust std ``sys/sync/condvar/futex.rs``; musl's process-shared
``pthread_cond_timedwait``): ``s`` is read under the lock and every notifier bumps
``seq`` before it wakes, so a notify between the release and the sleep makes the sleep
return at once — no lost wakeup.  ``notify_all`` moves the sleepers onto the lock word
instead of waking them all (no thundering herd): each is woken by the previous one's
unlock, which wakes because the notifier set W and every re-take keeps W (``assume``,
glibc BZ #20973).  ``seq`` is 32 bits: a waiter that sleeps through exactly 2**32
notifies misses its wake (Rust accepts the same).

In pid-liveness mode (:func:`futex.sync.robust_mode`: no kernel help when a holder
dies) ``notify_all`` wakes every waiter instead, so that each re-takes the lock through
the lock's own acquire, which checks the holder's liveness while it sleeps.

A woken waiter that leaves with an exception (KeyboardInterrupt, cancellation) wakes
one more if ``seq`` moved: the notify it may have consumed goes on to another waiter.
Spurious returns are possible, as for every condition variable: re-check the predicate
(:meth:`Condition.wait_for` does).

Dead participants.  The lock is robust: a notifier or a waiter that dies holding it
makes the next taker get :class:`~futex.sync.OwnerDied` — including a waiter re-taking
it in ``wait()``, which then raises OwnerDied with the lock held.  A waiter that dies
while asleep only leaves ``nwaiters`` one too high: notifies then always make their
wake/requeue call (slower, never wrong).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from futex.sync import drive
from futex.sync.drive import Algorithm, Sleep
from futex.sync.errors import NotOwnerError, OwnerDied
from futex.sync.layout import Primitive
from futex.sync.mutex import _DIED, LockStatistics, Mutex, RLock, W
from futex.sync.owner import ROBUST_LIST, Owner
from futex.sync.region import Region
from futex.word import ALL, FutexWord

__all__ = ["Condition", "ConditionStatistics"]

T = TypeVar("T")

#: Offsets from the primitive's start.
SEQ: Final = 16
NWAITERS: Final = 20
LOCK: Final = 32
#: Header flag: the embedded lock is an RLock.
FLAG_RLOCK: Final = 1
#: Offset of the lock word from the primitive's start.
LOCK_WORD: Final = LOCK + 16


@dataclass(frozen=True)
class ConditionStatistics:
    """A snapshot of a condition (``statistics()``)."""

    #: Threads in wait() (asleep, or re-taking the lock; a dead one stays counted).
    waiters: int
    #: The notify counter (modulo 2**32).
    seq: int
    #: The lock's snapshot.
    lock: LockStatistics


class _Within(Region):
    """``size`` bytes at ``base`` of another region: the same memory, the same buffer
    export and words (the embedded lock's region; it closes with its container)."""

    def __init__(self, parent: Region, base: int, size: int) -> None:
        self._parent = parent
        self._base = base
        self.size = size
        self.kernel = parent.kernel
        self.offset = int(getattr(parent, "offset", 0)) + base

    @property
    def closed(self) -> bool:
        return self._parent.closed

    @closed.setter
    def closed(self, value: bool) -> None:
        pass  # the container's flag is the one that counts

    def word(self, off: int) -> FutexWord:
        return self._parent.word(self._base + off)

    def address(self, off: int) -> int:
        return self._parent.address(self._base + off)

    def read(self, off: int, n: int) -> bytes:
        return self._parent.read(self._base + off, n)

    def write(self, off: int, data: bytes) -> None:
        self._parent.write(self._base + off, data)

    def owner(self) -> Owner:
        return self._parent.owner()

    @property
    def monotonic(self) -> Callable[[], float]:
        return self._parent.monotonic

    def reduce(self) -> tuple[Any, ...] | None:
        where = self._parent.reduce()
        return None if where is None else (where[0], where[1] + self._base)

    def describe(self) -> str:
        return f"{self._parent.describe()} +{self._base}"

    def close(self) -> None:
        """Nothing: the memory is its container's, closed with it."""


class Condition(Primitive):
    """A condition variable with its own robust lock, in shared memory (threading's
    signature, without a ``lock`` argument: the lock lives inside the condition).

    ``Condition(recursive=True)`` allocates its own shared memory;
    ``Condition.create(buffer, offset, recursive=True)`` /
    ``Condition.attach(buffer, offset)`` use the caller's.  ``recursive=False`` makes
    the lock a :class:`~futex.sync.Mutex` instead of an :class:`~futex.sync.RLock`.
    :attr:`lock` is that lock; ``acquire``/``release``/``with`` are its.
    """

    TYPE = 3
    SIZE = 96
    _lock: Mutex | None = None
    _recursive: bool = True

    def __init__(self, recursive: bool = True) -> None:
        """See :class:`futex.sync.layout.Primitive`."""

    # -- construction ---------------------------------------------------------------

    def _init_fields(self, recursive: bool = True) -> None:
        self._recursive = bool(recursive)
        lock = self._lock_at()
        if not lock._claim():  # pragma: no cover - the condition's fields were zeroed
            raise RuntimeError("the Condition's lock is already initialised")
        lock._initialise()
        self._lock = lock

    def _flags(self) -> int:
        return FLAG_RLOCK if self._recursive else 0

    def _check_flags(self, flags: int) -> None:
        self._recursive = bool(flags & FLAG_RLOCK)
        lock = self._lock_at()
        lock._validate()
        self._lock = lock

    def _lock_at(self) -> Mutex:
        """The lock object on bytes LOCK.. of the condition's own region."""
        kind = RLock if self._recursive else Mutex
        return kind._build(_Within(self._region, LOCK, kind.SIZE))

    @property
    def lock(self) -> Mutex:
        """The condition's lock (an :class:`~futex.sync.RLock` unless made with
        ``recursive=False``)."""
        lock = self._lock
        if lock is None:  # pragma: no cover - every constructor sets it
            raise ValueError("the Condition is not initialised")
        return lock

    # -- the lock -------------------------------------------------------------------

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """The lock's acquire (see :meth:`futex.sync.Mutex.acquire`)."""
        return self.lock.acquire(blocking, timeout)

    def release(self) -> None:
        self.lock.release()

    def __enter__(self) -> Condition:
        self.lock.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()

    def _is_owned(self) -> bool:
        return self.lock._is_owned()

    def _check_owned(self, what: str) -> Mutex:
        lock = self.lock
        if not lock._is_owned():
            raise NotOwnerError(f"cannot {what} on un-acquired lock")
        return lock

    # -- wait -----------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, sleep until notified or ``timeout`` seconds passed (None:
        no limit), re-take the lock; False iff the timeout expired.

        May return spuriously (re-check the condition).  Raises
        :class:`~futex.sync.OwnerDied`, with the lock held, when the lock's holder died
        while this thread slept; :class:`~futex.sync.NotOwnerError` without the lock.
        """
        lock = self._check_owned("wait")
        r = self._region
        deadline = drive.deadline_after(timeout, r.monotonic)
        s, saved = self._begin_wait(lock)
        try:
            outcome = drive.run(self._sleep_steps(s, deadline))
        except BaseException:
            # the exception wins over OwnerDied: the lock is held either way, and
            # lock.consistent says whether its holder died
            self._end_wait(lock, saved, raise_died=False)
            raise
        self._end_wait(lock, saved)
        return outcome

    async def wait_async(self, timeout: float | None = None) -> bool:
        """``await cond.wait_async()``: :meth:`wait` for a coroutine (host kernel).

        The lock is released, the sleep on seq is awaited on the running loop
        (:func:`futex.sync.aio.run_async`), and the lock is re-taken in the loop's
        thread, which owns it afterwards.  Take the lock synchronously (``with cond:``
        around the ``await``): a coroutine of the same loop must not hold it across an
        ``await`` of its own, since to the lock word all of a loop's coroutines are one
        thread.
        """
        from futex.sync import aio

        lock = self._check_owned("wait")
        r = self._region
        deadline = drive.deadline_after(timeout, r.monotonic)
        s, saved = self._begin_wait(lock)
        try:
            outcome: bool = await aio.run_async(self._sleep_steps(s, deadline))
        except BaseException:
            await self._end_wait_async(lock, saved, raise_died=False)
            raise
        await self._end_wait_async(lock, saved)
        return outcome

    async def _end_wait_async(self, lock: Mutex, saved: int, raise_died: bool = True) -> None:
        """:meth:`_end_wait` with the lock's sleeps awaited."""
        from futex.sync import aio

        outcome = await aio.run_async(lock._acquire_steps(None, assume=W))
        self._after_retake(lock, saved, outcome, raise_died)

    def _begin_wait(self, lock: Mutex) -> tuple[int, int]:
        """Read seq, count this waiter and release the lock fully: (seq, saved count)."""
        r = self._region
        s = r.word(SEQ).load()
        r.word(NWAITERS).fetch_add(1)
        if isinstance(lock, RLock):
            return s, lock._release_save()
        lock.release()
        return s, 0

    def _sleep_steps(self, s: int, deadline: float | None) -> Algorithm[bool]:
        """Sleep on seq while it holds ``s`` (a drive generator): True once it moved,
        False at the deadline."""
        r = self._region
        seq = r.word(SEQ)
        left = False
        try:
            while True:
                if seq.load() != s:
                    return True
                woke = yield Sleep(seq, s, deadline, r.monotonic, r.kernel == "native")
                if not woke:
                    return seq.load() != s
        except BaseException:
            left = True
            raise
        finally:
            if left and seq.load() != s:
                seq.wake(1)  # pass on a notify this waiter may have consumed

    def _end_wait(self, lock: Mutex, saved: int, raise_died: bool = True) -> None:
        """Re-take the lock (assume W: others may sleep on it after a requeue), then
        leave the waiter count; OwnerDied if its holder died meanwhile."""
        outcome = drive.run(lock._acquire_steps(None, assume=W))
        self._after_retake(lock, saved, outcome, raise_died)

    def _after_retake(self, lock: Mutex, saved: int, outcome: int, raise_died: bool) -> None:
        if isinstance(lock, RLock):
            lock._acquire_restore(saved)
        self._region.word(NWAITERS).fetch_sub(1)
        if outcome == _DIED and raise_died:
            raise OwnerDied(lock)

    def wait_for(self, predicate: Callable[[], T], timeout: float | None = None) -> T:
        """Wait until ``predicate()`` is true (threading's ``wait_for``): its last result,
        falsy when ``timeout`` seconds passed first."""
        clock = self._region.monotonic
        end: float | None = None
        wait = timeout
        result = predicate()
        while not result:
            if wait is not None:
                if end is None:
                    end = clock() + wait
                else:
                    wait = end - clock()
                    if wait <= 0:
                        break
            self.wait(wait)
            result = predicate()
        return result

    # -- notify ---------------------------------------------------------------------

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` waiters (at least ``n`` if there are; spurious extras are
        allowed).  The caller must hold the lock."""
        self._check_owned("notify")
        if n < 0:
            raise ValueError("n must be >= 0")
        r = self._region
        r.word(SEQ).fetch_add(1)
        if n and r.word(NWAITERS).load():
            r.word(SEQ).wake(n)

    def notify_all(self) -> None:
        """Wake every waiter: they are moved onto the lock word and each is woken by the
        previous one's unlock.  The caller must hold the lock."""
        self._check_owned("notify")
        r = self._region
        seq = r.word(SEQ)
        s = (seq.fetch_add(1) + 1) & 0xFFFF_FFFF
        if not r.word(NWAITERS).load():
            return
        if r.owner().mode != ROBUST_LIST:
            # pid-liveness: a waiter parked on the lock word would not check the
            # holder's liveness; wake them all into the lock's own (polling) acquire
            seq.wake(ALL)
            return
        lock_word = r.word(LOCK_WORD)
        lock_word.fetch_or(W)  # our unlock will wake the first one requeued
        while True:
            try:
                seq.cmp_requeue(lock_word, s, 0, ALL)
                return
            except BlockingIOError:  # another notify moved seq: requeue from there
                s = seq.load()

    # -- asyncio and observation ----------------------------------------------------

    def statistics(self) -> ConditionStatistics:
        r = self._region
        return ConditionStatistics(
            waiters=r.word(NWAITERS).load(),
            seq=r.word(SEQ).load(),
            lock=self.lock.statistics(),
        )

