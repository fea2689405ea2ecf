"""Event in shared memory: one word with a generation count.

Memory (32 bytes: the header, then the word):

====  =====  ==================================================================
off   type   field
====  =====  ==================================================================
16    u32    word: bit 0 SET, bit 1 WAITERS, bits 2-31 a generation count
20..  -      reserved
====  =====  ==================================================================

=====================  ==============================================================
transition             steps
=====================  ==============================================================
set()                  SET already: nothing; else CAS v → ((v + 4) | SET) & ~WAITERS,
                       and wake all if WAITERS was set
clear()                fetch_and(~SET)
wait()                 SET: True; else remember the generation g; loop: SET or the
                       generation moved past g → True; CAS v → v | WAITERS;
                       FUTEX_WAIT(word, v | WAITERS)
=====================  ==============================================================

Why the generation: a ``set()`` quickly followed by ``clear()`` must still wake every
waiter *with True* (``threading.Event`` does: its waiters were notified while the flag
was set).  A waiter that wakes to a cleared word sees that the generation moved since
it began and returns True; a flag alone would send it back to sleep (fastipc's Event
also returns False for an event that was already set).  SET and WAITERS are never both
set: WAITERS is CASed only onto a clear word, and ``set()`` drops it.  The generation
has 30 bits: a waiter that sleeps through exactly 2**30 set/clear pairs would miss one.

Dead participants.  An event has no owner and holds nothing: a process that dies while
waiting costs at most one wasted wake-up call in the next ``set()`` (its WAITERS bit);
one that dies before calling ``set()`` simply never sets it — waiters with a timeout
return False, those without wait until someone else sets it.

On the host kernel a C core (``futex.native._native.EventCore``) runs this algorithm for
``set``/``clear``/``is_set``/``wait``; the Python methods below are the reference, which
the emulated kernel runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from futex.sync import drive
from futex.sync.drive import Algorithm, Sleep
from futex.sync.layout import Primitive, native_class
from futex.sync.region import Region
from futex.word import ALL

__all__ = ["Event", "EventStatistics"]

#: Offset of the word from the primitive's start.
WORD: Final = 16
SET: Final = 1
WAITERS: Final = 2
GEN: Final = 4
GEN_MASK: Final = 0xFFFF_FFFC


@dataclass(frozen=True)
class EventStatistics:
    """A snapshot of an event (``statistics()``)."""

    set: bool
    #: The WAITERS bit: someone may be asleep.
    waiters: bool
    #: How many times the event went from clear to set (modulo 2**30).
    generation: int


def _done(v: int, gen0: int) -> bool:
    """Whether a waiter that began at generation ``gen0`` may return True on ``v``."""
    return bool(v & SET) or (v & GEN_MASK) != gen0


class Event(Primitive):
    """An event in shared memory (threading's signature; see the module docstring).

    ``Event()`` allocates its own shared memory; ``Event.create(buffer, offset)`` /
    ``Event.attach(buffer, offset)`` use the caller's.  It starts clear.
    """

    TYPE = 8
    SIZE = 32

    @classmethod
    def _impl(cls, region: Region) -> type[Primitive]:
        if region.kernel != "native":
            return cls
        return native_class(cls, "EventCore", lambda e: (e._region.word(WORD),))

    def is_set(self) -> bool:
        """Whether the event is set now."""
        return bool(self._region.word(WORD).load() & SET)

    def set(self) -> None:
        """Set the event (a new generation) and wake every waiter."""
        word = self._region.word(WORD)
        v = word.load()
        while True:
            if v & SET:
                return  # set already: nobody can be asleep
            old = word.cas(v, ((v + GEN) | SET) & ~WAITERS & 0xFFFF_FFFF)
            if old == v:
                break
            v = old
        if v & WAITERS:
            word.wake(ALL)

    def clear(self) -> None:
        """Clear the event."""
        word = self._region.word(WORD)
        if word.load() & SET:
            word.fetch_and(~SET & 0xFFFF_FFFF)

    def wait(self, timeout: float | None = None) -> bool:
        """True once the event is set, or was set since this call began (a ``set()``
        quickly followed by ``clear()`` counts); False when ``timeout`` seconds passed
        first (None: wait forever)."""
        return drive.run(self._wait_steps(timeout))

    async def wait_async(self, timeout: float | None = None) -> bool:
        """``await event.wait_async()``: :meth:`wait` for a coroutine (host kernel; the
        same algorithm, its sleep awaited by :func:`futex.sync.aio.run_async`)."""
        from futex.sync import aio

        result: bool = await aio.run_async(self._wait_steps(timeout))
        return result

    def _wait_steps(self, timeout: float | None) -> Algorithm[bool]:
        """The whole of wait (a :mod:`futex.sync.drive` generator): no sleep when the
        event is set or ``timeout`` has already passed.  A waiter that leaves owes
        nobody a wake: ``set()`` wakes all."""
        r = self._region
        word = r.word(WORD)
        v = word.load()
        if v & SET:
            return True
        deadline = drive.deadline_after(timeout, r.monotonic)
        if deadline is not None and deadline <= r.monotonic():
            return False
        gen0 = v & GEN_MASK
        while True:
            if _done(v, gen0):
                return True
            if not v & WAITERS:
                old = word.cas(v, v | WAITERS)
                if old != v:
                    v = old
                    continue
                v |= WAITERS
            woke = yield Sleep(word, v, deadline, r.monotonic, r.kernel == "native")
            v = word.load()
            if not woke:
                return _done(v, gen0)

    def statistics(self) -> EventStatistics:
        v = self._region.word(WORD).load()
        return EventStatistics(set=bool(v & SET), waiters=bool(v & WAITERS), generation=v >> 2)

