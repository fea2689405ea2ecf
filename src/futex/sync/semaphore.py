"""Semaphore and BoundedSemaphore in shared memory (glibc's 32-bit ``sem_t``).

Memory (32 bytes: the header, then the semaphore; glibc ``nptl/sem_post.c`` and
``sem_waitcommon.c``, the variant without 64-bit atomics):

====  =====  ==================================================================
off   type   field
====  =====  ==================================================================
16    u32    value: ``count << 1 | WAITERS`` (bit 0: someone may sleep on it)
20    u32    nwaiters: acquirers in the slow path (a count, never a futex)
24    u32    bound: a BoundedSemaphore's initial value (Semaphore: 0x7FFFFFFF)
28    u32    reserved
====  =====  ==================================================================

=============================  ===================================================
transition                     steps
=============================  ===================================================
acquire, a token (count > 0)   CAS v → v - 2 (WAITERS kept)
acquire, none                  nwaiters += 1; loop: a token → CAS v → v - 2;
                               count 0 → CAS v → WAITERS, FUTEX_WAIT(value,
                               WAITERS); then leave (below)
leave (after the slow path)    the one that reads nwaiters == 1 clears WAITERS;
                               nwaiters -= 1; if someone joined meanwhile: set
                               WAITERS again and wake as many as there are
                               tokens (glibc ``__sem_wait_32_finish``)
leave without a token          (timeout, exception) tokens left and WAITERS set:
                               wake 1 — the wake it may have consumed goes on
release(n)                     CAS v → v + 2n; if WAITERS was set, wake n
=============================  ===================================================

Why: every ``release`` wakes while WAITERS is set, not only a 0 → 1 transition —
waking only on 0 → 1 loses a wakeup when two waiters sleep and two posts land before
the first woken one runs (fastipc's bug; see the tests).  Waiters sleep only while the
value is exactly WAITERS (count 0), so a post between their check and their sleep
makes the sleep return at once.

Dead participants.  A semaphore has no owner, so the kernel cannot repair anything
when a process dies:

- a process that dies *holding tokens* leaks them: the count stays lower for good (use
  :class:`futex.sync.Mutex` where a dead holder must be detected);
- a process that dies *asleep* (or between ``nwaiters += 1`` and its leave) leaves
  ``nwaiters`` one too high: WAITERS is then never cleared, so every later
  ``release`` makes a wake call — slower, never wrong; no token is lost and nobody
  sleeps through a post;
- a process that dies after being woken but before taking the token: the token stays
  in the count, and the next ``release`` or acquirer finds it.

On the host kernel a C core (``futex.native._native.SemCore``) runs this algorithm for
``acquire``/``release``/``with``/``_value``; the Python methods below are the reference,
which the emulated kernel runs.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Final

from futex.sync import drive
from futex.sync.drive import Algorithm, Sleep
from futex.sync.layout import Primitive, native_class
from futex.sync.region import Region

__all__ = ["BoundedSemaphore", "Semaphore", "SemaphoreStatistics"]

#: Offsets from the primitive's start.
VALUE: Final = 16
NWAITERS: Final = 20
BOUND: Final = 24

WAITERS: Final = 1
UNIT: Final = 2
#: Largest count (the value word stays below 2**31).
VALUE_MAX: Final = 0x3FFF_FFFF
#: The bound field of an unbounded Semaphore.
UNBOUNDED: Final = 0x7FFF_FFFF


@dataclass(frozen=True)
class SemaphoreStatistics:
    """A snapshot of a semaphore (``statistics()``)."""

    #: Tokens available now.
    value: int
    #: The WAITERS bit: someone may be asleep.
    waiters: bool
    #: Acquirers in the slow path (a dead one stays counted).
    nwaiters: int
    #: The largest count release() allows (BoundedSemaphore: its initial value).
    bound: int


class Semaphore(Primitive):
    """A counting semaphore in shared memory (threading's signature; see the module
    docstring).

    ``Semaphore(value=1)`` allocates its own shared memory;
    ``Semaphore.create(buffer, offset, value=1)`` / ``Semaphore.attach(buffer, offset)``
    use the caller's.  Tokens have no owner: any thread or process may release.
    """

    TYPE = 4
    SIZE = 32
    _bounded: bool = False

    def __init__(self, value: int = 1) -> None:
        """See :class:`futex.sync.layout.Primitive`: ``value`` is the initial count."""

    @classmethod
    def _impl(cls, region: Region) -> type[Primitive]:
        if region.kernel != "native":
            return cls
        return native_class(cls, "SemCore", lambda s: (s._region.word(VALUE), s._bounded))

    def _init_fields(self, value: int = 1) -> None:
        value = operator.index(value)
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        if value > VALUE_MAX:
            raise ValueError(f"semaphore initial value must be <= {VALUE_MAX:#x}")
        r = self._region
        r.set_u32(BOUND, value if self._bounded else UNBOUNDED)
        r.word(VALUE).store(value * UNIT)

    # -- acquire --------------------------------------------------------------------

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a token (threading's signature); True when taken, False when
        ``blocking`` is false or ``timeout`` seconds passed without one."""
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        if self._try():
            return True
        r = self._region
        deadline = drive.deadline_after(timeout, r.monotonic)
        if not blocking or (deadline is not None and deadline <= r.monotonic()):
            return False
        return drive.run(self._acquire_steps(deadline))

    def _try(self) -> bool:
        """Take a token if there is one (the fast path)."""
        word = self._region.word(VALUE)
        v = word.load()
        while v >= UNIT:
            old = word.cas(v, v - UNIT)
            if old == v:
                return True
            v = old
        return False

    def _acquire_steps(self, deadline: float | None) -> Algorithm[bool]:
        """The slow path of acquire (a :mod:`futex.sync.drive` generator)."""
        r = self._region
        word, nwaiters = r.word(VALUE), r.word(NWAITERS)
        nwaiters.fetch_add(1)
        taken = False
        try:
            v = word.load()
            while True:
                if v >= UNIT:
                    old = word.cas(v, v - UNIT)
                    if old == v:
                        taken = True
                        return True
                    v = old
                    continue
                if v != WAITERS:  # count 0 without WAITERS: announce the sleep
                    old = word.cas(v, WAITERS)
                    if old != v:
                        v = old
                        continue
                woke = yield Sleep(word, WAITERS, deadline, r.monotonic, r.kernel == "native")
                if not woke:
                    taken = self._try()  # a token that came with the deadline counts
                    return taken
                v = word.load()
        finally:
            self._leave()
            if not taken:
                v = word.load()
                if v >= UNIT and v & WAITERS:
                    word.wake(1)  # pass on a wake this waiter may have been given

    def _leave(self) -> None:
        """Leave the slow path (glibc's ``__sem_wait_32_finish``)."""
        r = self._region
        word, nwaiters = r.word(VALUE), r.word(NWAITERS)
        last = nwaiters.load() == 1
        if last:
            word.fetch_and(~WAITERS & 0xFFFF_FFFF)
        before = nwaiters.fetch_sub(1)
        if last and before > 1:  # someone joined after the guess: restore WAITERS
            v = word.fetch_or(WAITERS)
            if v >= UNIT:
                word.wake(v >> 1)

    # -- release --------------------------------------------------------------------

    def release(self, n: int = 1) -> None:
        """Add ``n`` tokens and wake up to ``n`` sleepers.  ValueError (nothing changes)
        when the count would pass the bound (BoundedSemaphore) or the maximum."""
        n = operator.index(n)
        if n < 1:
            raise ValueError("n must be one or more")
        r = self._region
        word = r.word(VALUE)
        top = VALUE_MAX
        if self._bounded:
            top = min(top, r.u32(BOUND))
        v = word.load()
        while True:
            if (v >> 1) + n > top:
                if self._bounded:
                    raise ValueError("Semaphore released too many times")
                raise ValueError(
                    f"Semaphore released too many times: the count cannot exceed {VALUE_MAX:#x}"
                )
            old = word.cas(v, v + n * UNIT)
            if old == v:
                break
            v = old
        if v & WAITERS:
            word.wake(n)  # n, not only on 0 -> n: fastipc's lost wakeup

    def _value(self) -> int:
        """The count now (a snapshot)."""
        return self._region.word(VALUE).load() >> 1

    def statistics(self) -> SemaphoreStatistics:
        r = self._region
        v = r.word(VALUE).load()
        bound = r.u32(BOUND)
        return SemaphoreStatistics(
            value=v >> 1,
            waiters=bool(v & WAITERS),
            nwaiters=r.word(NWAITERS).load(),
            bound=min(bound, VALUE_MAX),
        )

    # -- with -----------------------------------------------------------------------

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- asyncio (host kernel) ------------------------------------------------------

    async def acquire_async(self, timeout: float | None = None) -> bool:
        """``await sem.acquire_async()``: :meth:`acquire` for a coroutine — the same
        algorithm, its sleeps awaited on the running loop (:func:`futex.sync.aio.run_async`;
        a cancelled waiter passes on the wake it may have consumed)."""
        if self._try():
            return True
        from futex.sync import aio

        r = self._region
        deadline = drive.deadline_after(timeout, r.monotonic)
        if deadline is not None and deadline <= r.monotonic():
            return False
        taken: bool = await aio.run_async(self._acquire_steps(deadline))
        return taken

    async def __aenter__(self) -> bool:
        return await self.acquire_async()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class BoundedSemaphore(Semaphore):
    """A :class:`Semaphore` whose ``release`` raises ValueError past its initial value."""

    TYPE = 5
    _bounded = True

