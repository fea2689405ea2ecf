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
notify(n)              seq += 1; if n and nwaiters: set W on the lock word, then
                       FUTEX_CMP_REQUEUE(seq → lock word, expected = seq, wake 0,
                       requeue n) (EAGAIN: re-read seq and retry)
notify_all()           notify(all)
=====================  ==============================================================

Why it works (Rust std ``sys/sync/condvar/futex.rs``; musl's process-shared
``pthread_cond_timedwait``): ``s`` is read under the lock and every notifier bumps
``seq`` before it wakes, so a notify between the release and the sleep makes the sleep
return at once — no lost wakeup.  A notify moves the sleepers onto the lock word instead
of waking them ("wait morphing", as NetBSD's libpthread ``pthread_cond_signal``): the
notifier holds the lock, so a waiter woken now would only run to sleep again on the
lock — on one CPU it even preempts the notifier to do so.  Each moved waiter is woken
by an unlock (the notifier's, then the previous waiter's), which wakes because the
notifier set W and every re-take keeps W (``assume``, glibc BZ #20973); no thundering
herd for ``notify_all``.  ``seq`` is 32 bits: a waiter that sleeps through exactly
2**32 notifies misses its wake (Rust accepts the same).

In pid-liveness mode (:func:`futex.sync.robust_mode`: no kernel help when a holder
dies) a notify wakes the waiters instead (FUTEX_WAKE(seq, n)), so that each re-takes
the lock through the lock's own acquire, which checks the holder's liveness while it
sleeps.

A woken waiter that leaves with an exception (KeyboardInterrupt, cancellation) wakes
one more if ``seq`` moved: the notify it may have consumed goes on to another waiter;
it re-takes the lock all the same, so a wake it took from the lock word goes on with
its unlock.  Spurious returns are possible, as for every condition variable: re-check
the predicate (:meth:`Condition.wait_for` does).

Dead participants.  The lock is robust: a notifier or a waiter that dies holding it
makes the next taker get :class:`~futex.sync.OwnerDied` — including a waiter re-taking
it in ``wait()``, which then raises OwnerDied with the lock held.  A waiter that dies
while asleep only leaves ``nwaiters`` one too high: notifies then always make their
requeue call (slower, never wrong).

Host kernel (robust-list mode).  The condition object is itself a
``futex.native._native.LockCore`` on its lock's word, so ``acquire``, ``release``,
``with`` and ``_is_owned`` are the C core's, as for the :attr:`~Condition.lock` object.
``wait``/``notify`` use fixed ``futex.native.Word`` objects and no generator, and
``wait`` releases and re-takes the lock through the C core (its spin, yield and signal
slices included).  The C acquire has no ``assume`` argument, so the re-take sets W
itself right after taking the word when the word lacked it — the reference's end state
(and so its unlock, which wakes).  The moment in between changes nothing: a word
without W has no sleeper in its futex queue (a sleeper sets W before it sleeps, a
notify before it requeues, and an unlock clears W only when its wake found nobody).
The emulated kernel and pid-liveness mode run the lock's Python algorithm (the
reference the C core is compared with) through :mod:`futex.sync.drive`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic as _monotonic
from typing import Any, Final, TypeVar

from futex.sync import drive
from futex.sync.drive import SIGNAL_SLICE, Algorithm, Sleep
from futex.sync.errors import NotOwnerError, OwnerDied
from futex.sync.layout import Primitive, native_class
from futex.sync.mutex import _DIED, LockStatistics, Mutex, RLock, W
from futex.sync.owner import ROBUST_LIST
from futex.sync.region import Region, Within
from futex.word import ALL, FutexWord

__all__ = ["Condition", "ConditionStatistics"]

T = TypeVar("T")

#: Offsets from the primitive's start.
SEQ: Final = 16
NWAITERS: Final = 20
LOCK: Final = 32
#: Header flag: the embedded lock is an RLock.
FLAG_RLOCK: Final = 1
#: Offsets of the lock word and of the RLock count from the primitive's start.
LOCK_WORD: Final = LOCK + 16
LOCK_COUNT: Final = LOCK + 20


@dataclass(frozen=True)
class ConditionStatistics:
    """A snapshot of a condition (``statistics()``)."""

    #: Threads in wait() (asleep, or re-taking the lock; a dead one stays counted).
    waiters: int
    #: The notify counter (modulo 2**32).
    seq: int
    #: The lock's snapshot.
    lock: LockStatistics


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
    #: The C lock core is in front (see the module docstring, "Host kernel").
    _core: bool = False
    # the host kernel's words, made once: a native Word serves every thread (an
    # emulated word is bound to a task, so there they are looked up per call)
    _seq: Any = None
    _nw: Any = None
    _lword: Any = None
    _count: Any = None

    def __init__(self, recursive: bool = True) -> None:
        """See :class:`futex.sync.layout.Primitive`."""

    # -- construction ---------------------------------------------------------------

    @classmethod
    def _impl(cls, region: Region) -> type[Primitive]:
        if region.kernel != "native" or region.owner().mode != ROBUST_LIST:
            return cls
        return native_class(cls, "LockCore", lambda c: (c._region.word(LOCK_WORD), True))

    def _bind(self) -> None:
        r = self._region
        if r.kernel == "native":
            self._seq, self._nw = r.word(SEQ), r.word(NWAITERS)
            self._lword, self._count = r.word(LOCK_WORD), r.word(LOCK_COUNT)
            core = _lock_core()
            self._core = core is not None and isinstance(self, core)

    def _init_fields(self, recursive: bool = True) -> None:
        lock = self._lock_at(bool(recursive))
        if not lock._claim():  # pragma: no cover - the condition's fields were zeroed
            raise RuntimeError("the Condition's lock is already initialised")
        lock._initialise()
        self._lock = lock

    def _flags(self) -> int:
        return FLAG_RLOCK if self._recursive else 0

    def _check_flags(self, flags: int) -> None:
        lock = self._lock_at(bool(flags & FLAG_RLOCK))
        lock._validate()
        self._lock = lock

    def _lock_at(self, recursive: bool) -> Mutex:
        """Adopt the lock kind; the lock object on bytes LOCK.. of the condition's own
        region (and the C core, if any, set to the same kind)."""
        self._recursive = recursive
        if self._core:
            core: Any = _lock_core()
            core.__init__(self, self._lword, recursive)
        kind = RLock if recursive else Mutex
        return kind._build(Within(self._region, LOCK, kind.SIZE, "the lock"))

    @property
    def lock(self) -> Mutex:
        """The condition's lock (an :class:`~futex.sync.RLock` unless made with
        ``recursive=False``)."""
        lock = self._lock
        if lock is None:  # pragma: no cover - every constructor sets it
            raise ValueError("the Condition is not initialised")
        return lock

    def _fields(self) -> tuple[FutexWord, FutexWord]:
        """The words seq and nwaiters, usable from the calling thread."""
        if self._seq is not None:
            return self._seq, self._nw
        r = self._region
        return r.word(SEQ), r.word(NWAITERS)

    # -- the lock (the C core's methods take over these on the host kernel) -----------

    def acquire(self, blocking: bool = True, timeout: float | None = -1) -> bool:
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

    # the C core's hooks: the lock's own (its messages, its on_owner_died)

    def _owner_died(self) -> None:
        self.lock._owner_died()

    def _owner_died_in_with(self) -> None:
        self.lock._owner_died_in_with()

    def _not_recoverable(self) -> None:
        self.lock._not_recoverable()

    def _not_owner(self, what: str) -> None:
        self.lock._not_owner(what)

    def _deadlock(self) -> None:
        self.lock._deadlock()

    # -- wait -----------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, sleep until notified or ``timeout`` seconds passed (None:
        no limit), re-take the lock; False iff the timeout expired.

        May return spuriously (re-check the condition).  Raises
        :class:`~futex.sync.OwnerDied`, with the lock held, when the lock's holder died
        while this thread slept; :class:`~futex.sync.NotOwnerError` without the lock.
        """
        if not self._core:
            return self._wait_steps(timeout)
        if not self._is_owned():
            raise NotOwnerError("cannot wait on un-acquired lock")
        deadline = None if timeout is None else _monotonic() + timeout
        seq = self._seq
        s = seq.load()
        self._nw.fetch_add(1)
        saved = 1  # release fully (the C release): an RLock's count to restore
        if self._recursive:
            saved = self._count.load()
            if saved > 1:
                self._count.store(1)
        self.release()
        try:
            woke = _sleep(seq, s, deadline)
        except BaseException:
            if seq.load() != s:
                seq.wake(1)  # pass on a notify this waiter may have consumed
            self._retake(saved, raise_died=False)  # the exception wins, as below
            raise
        self._retake(saved)
        return woke

    def _retake(self, saved: int, raise_died: bool = True) -> None:
        """C core: re-take the lock, restore the RLock count, leave the waiter count;
        OwnerDied (the lock held) if its holder died meanwhile."""
        died: OwnerDied | None = None
        try:
            try:
                self.acquire()
            except OwnerDied as exc:  # the lock is ours, inconsistent
                died = exc
            lw = self._lword
            if not lw.load() & W:  # assume = W (see the module docstring)
                lw.fetch_or(W)
            if saved > 1:
                self._count.store(saved)
        finally:
            self._nw.fetch_sub(1)
        if died is not None and raise_died:
            raise died

    def _wait_steps(self, timeout: float | None) -> bool:
        """:meth:`wait` through the lock's Python algorithm (emulated kernel,
        pid-liveness mode)."""
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
        thread.  Cancelled, it raises CancelledError with the lock held again.
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
        """:meth:`_end_wait` with the lock's sleeps awaited.  A cancellation meanwhile
        does not stop the re-take (as asyncio.Condition.wait: the lock is held again
        whatever happens); it is raised once the lock is back."""
        import asyncio

        from futex.sync import aio

        cancelled: asyncio.CancelledError | None = None
        while True:
            try:
                outcome = await aio.run_async(lock._acquire_steps(None, assume=W))
                break
            except asyncio.CancelledError as exc:  # the attempt left; take it again
                cancelled = exc
        self._after_retake(lock, saved, outcome, raise_died and cancelled is None)
        if cancelled is not None:
            raise cancelled

    def _begin_wait(self, lock: Mutex) -> tuple[int, int]:
        """Read seq, count this waiter and release the lock fully: (seq, saved count)."""
        seq, nwaiters = self._fields()
        s = seq.load()
        nwaiters.fetch_add(1)
        if isinstance(lock, RLock):
            return s, lock._release_save()
        lock.release()
        return s, 0

    def _sleep_steps(self, s: int, deadline: float | None) -> Algorithm[bool]:
        """Sleep on seq while it holds ``s`` (a drive generator): True once it moved,
        False at the deadline."""
        r = self._region
        seq = self._fields()[0]
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
        self._fields()[1].fetch_sub(1)
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
        allowed): moved onto the lock word, each runs once it can have the lock.  The
        caller must hold the lock."""
        if not self._core:
            self._check_owned("notify")
            if n < 0:
                raise ValueError("n must be >= 0")
            self._notify_steps(n)
            return
        if not self._is_owned():
            raise NotOwnerError("cannot notify on un-acquired lock")
        if n < 0:
            raise ValueError("n must be >= 0")
        seq = self._seq
        s = (seq.fetch_add(1) + 1) & 0xFFFF_FFFF
        if n and self._nw.load():
            _requeue(seq, s, self._lword, n)

    def notify_all(self) -> None:
        """Wake every waiter: they are moved onto the lock word and each is woken by the
        previous one's unlock.  The caller must hold the lock."""
        if not self._core:
            self._check_owned("notify")
            self._notify_steps(ALL)
            return
        if not self._is_owned():
            raise NotOwnerError("cannot notify on un-acquired lock")
        seq = self._seq
        s = (seq.fetch_add(1) + 1) & 0xFFFF_FFFF
        if self._nw.load():
            _requeue(seq, s, self._lword, ALL)

    def _notify_steps(self, n: int) -> None:
        """notify(n) with the words looked up for the calling thread (no C core)."""
        seq, nwaiters = self._fields()
        s = (seq.fetch_add(1) + 1) & 0xFFFF_FFFF
        if not n or not nwaiters.load():
            return
        r = self._region
        if r.owner().mode != ROBUST_LIST:
            # pid-liveness: a waiter parked on the lock word would not check the
            # holder's liveness; wake them into the lock's own (polling) acquire
            seq.wake(n)
            return
        _requeue(seq, s, r.word(LOCK_WORD), n)

    # -- observation and lifetime ---------------------------------------------------

    def close(self) -> None:
        """Let go of the memory; RuntimeError while this thread holds the lock (as
        :meth:`futex.sync.Mutex.close`: its node is on this thread's robust list)."""
        if not self._region.closed and self._lock is not None and self._is_owned():
            raise RuntimeError("close: release the Condition's lock first")
        super().close()

    def statistics(self) -> ConditionStatistics:
        seq, nwaiters = self._fields()
        return ConditionStatistics(
            waiters=nwaiters.load(),
            seq=seq.load(),
            lock=self.lock.statistics(),
        )


def _lock_core() -> Any:
    """futex.native's LockCore type, or None (an extension without it)."""
    from futex.native import _native

    return getattr(_native, "LockCore", None)


def _sleep(seq: Any, s: int, deadline: float | None) -> bool:
    """Sleep on the host kernel's word ``seq`` while it holds ``s``: True once it moved,
    False at ``deadline`` (absolute, :func:`time.monotonic`).  :func:`futex.sync.drive.sleep`
    inline (no generator, no Sleep object): the main thread sleeps in slices of at most
    :data:`~futex.sync.drive.SIGNAL_SLICE`, so its signal handlers run meanwhile."""
    if seq.load() != s:
        return True
    main: bool | None = None
    while True:
        left: float | None = None
        if deadline is not None:
            left = deadline - _monotonic()
            if left <= 0:
                return bool(seq.load() != s)
        if main is None:
            main = threading.current_thread() is threading.main_thread()
        if main and (left is None or left > SIGNAL_SLICE):
            left = SIGNAL_SLICE
        if seq.wait(s, left) and seq.load() != s:
            return True


def _requeue(seq: FutexWord, s: int, lock_word: FutexWord, n: int) -> None:
    """Move up to ``n`` sleepers of ``seq`` (which held ``s``) onto ``lock_word``, whose
    W makes the holder's unlock wake the first of them."""
    lock_word.fetch_or(W)
    while True:
        try:
            seq.cmp_requeue(lock_word, s, 0, n)
            return
        except BlockingIOError:  # another notify moved seq: requeue from there
            s = seq.load()
