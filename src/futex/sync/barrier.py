"""Barrier in shared memory: an arrival word and a generation word, both with a round.

Memory (32 bytes: the header, then the barrier):

====  =====  ==================================================================
off   type   field
====  =====  ==================================================================
16    u32    state: ``round << 16 | arrived`` (the round arrivals join)
20    u32    gen: bits 0-15 the open round (every earlier round is over);
             bits 16-29 the last round ended by ``reset()`` (low 14 bits),
             bit 30 "a reset happened", bit 31 BROKEN (the open round is broken)
24    u32    parties (1..65535)
28    u32    reserved
====  =====  ==================================================================

=========================  ==========================================================
transition                 steps
=========================  ==========================================================
wait, arriving             gen BROKEN: raise; state (R, a) → (R, a + 1); the arrival
                           index is ``a``; a full round (a == parties) is not joined:
                           sleep on gen until it moves, then retry
wait, the last party       (R, parties - 1) → (R, parties): the round is full; run
                           ``action``; commit: CAS gen (R, not BROKEN) → R + 1 and
                           wake all on gen; then state (R, parties) → (R + 1, 0)
wait, the others           sleep on gen while its round is R and it is not BROKEN;
                           gen's round past R: released, unless the last reset ended
                           round R (then broken); BROKEN at round R: broken
timeout, exception         CAS gen (R) → (R) | BROKEN, wake all, raise
                           (BrokenBarrierError, or the exception itself)
action raised              the same break; the action's exception propagates
abort()                    gen |= BROKEN; wake all
reset()                    CAS gen (G) → (G + 1, last reset = G, BROKEN cleared);
                           state → (G + 1, 0); wake all
=========================  ==========================================================

Why two words with a round (glibc's ``pthread_barrier_wait`` uses in/current-round
counters for the same job): a fast thread that leaves round R and arrives again joins
round R + 1 and waits for gen to pass R + 1 — it cannot lap into round R's release.
The gen word decides each round's fate with one CAS — committed by the last party, or
broken by a timeout, ``abort()`` or ``reset()`` — so a party either passes a round or
gets :class:`BrokenBarrierError` for it, never both.  The state word's round only
follows gen (anyone who sees it behind helps it forward).  A round counts only after
``action`` returned: a timeout while the action runs breaks that round.

BROKEN is sticky, as in :mod:`threading`: every ``wait`` raises until ``reset()``.
A wait interrupted by an exception (KeyboardInterrupt, cancellation) breaks the barrier
too — its arrival cannot be taken back, and the others must not wait for a party that
left.  ``wait()`` racing ``reset()`` may raise BrokenBarrierError.  A waiter that is
still asleep through two ``reset()`` calls (the second of a later round) returns as if
its round had been released.

``action`` and the default ``timeout`` are **process-local**: they are attributes of
this Python object, not of the shared memory.  The last party to arrive runs the
action of *its own* Barrier object (None in a process that attached without one: set
``barrier.action`` there).

Dead participants.  A barrier has no owner; nothing is repaired when a party dies:

- a party that dies *before arriving* makes the others wait for it: with a timeout they
  break the barrier (BrokenBarrierError in all), without one they wait forever —
  ``abort()`` or ``reset()`` from a live process frees them;
- a party that dies *while waiting* (after arriving) costs nothing: its arrival counts,
  the round completes;
- the last party dying *in the action* leaves the round full: the others (and new
  arrivals) wait as for a missing party; dying after the commit costs nothing (the next
  arrival moves the state word forward).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Final

from futex.sync import drive
from futex.sync.drive import Algorithm, Sleep
from futex.sync.errors import BrokenBarrierError
from futex.sync.layout import Primitive
from futex.word import ALL

__all__ = ["Barrier", "BrokenBarrierError"]

#: Offsets from the primitive's start.
STATE: Final = 16
GEN: Final = 20
PARTIES: Final = 24

ROUND: Final = 0xFFFF
BROKEN: Final = 0x8000_0000
RESET: Final = 0x4000_0000
RESET_SHIFT: Final = 16
RESET_MASK: Final = 0x3FFF
MAX_PARTIES: Final = 0xFFFF

# how a wait for a round ended
_RELEASED, _BROKEN, _WAITING = 0, 1, 2


def _after(a: int, b: int) -> bool:
    """Whether round ``a`` comes after round ``b`` (16-bit serial numbers)."""
    return 0 < (a - b) & ROUND < 0x8000


def _fate(g: int, rnd: int) -> int:
    """What the gen word ``g`` says of round ``rnd``."""
    if _after(g & ROUND, rnd):
        reset = (g >> RESET_SHIFT) & RESET_MASK
        if g & RESET and reset == rnd & RESET_MASK:
            return _BROKEN
        return _RELEASED
    if g & BROKEN:
        return _BROKEN
    return _WAITING


class Barrier(Primitive):
    """A barrier for ``parties`` threads or processes (threading's signature; see the
    module docstring).

    ``Barrier(parties, action=None, timeout=None)`` allocates its own shared memory;
    ``Barrier.create(buffer, offset, parties, action=None, timeout=None)`` /
    ``Barrier.attach(buffer, offset)`` use the caller's.  ``action`` and ``timeout``
    belong to this object (process-local): set the attributes after ``attach``.
    """

    TYPE = 7
    SIZE = 32
    #: Called by the last party to arrive before the others are released.
    action: Callable[[], object] | None = None
    #: The default timeout of :meth:`wait` (seconds; None: none).
    timeout: float | None = None

    def __init__(
        self,
        parties: int,
        action: Callable[[], object] | None = None,
        timeout: float | None = None,
    ) -> None:
        """See :class:`futex.sync.layout.Primitive`."""

    def _init_fields(
        self,
        parties: int | None = None,
        action: Callable[[], object] | None = None,
        timeout: float | None = None,
    ) -> None:
        if parties is None:
            raise TypeError("a Barrier needs its number of parties")
        parties = operator.index(parties)
        if not 1 <= parties <= MAX_PARTIES:
            raise ValueError(f"parties must be in 1..{MAX_PARTIES}, got {parties}")
        self._region.set_u32(PARTIES, parties)
        self.action = action
        self.timeout = timeout

    @property
    def parties(self) -> int:
        """The number of parties a round needs."""
        return self._region.u32(PARTIES)

    @property
    def n_waiting(self) -> int:
        """The number of parties that arrived in the open round (0 when broken)."""
        r = self._region
        g = r.word(GEN).load()
        if g & BROKEN:
            return 0
        s = r.word(STATE).load()
        return 0 if (s >> 16) != g & ROUND else s & 0xFFFF

    @property
    def broken(self) -> bool:
        """Whether the barrier is broken (until :meth:`reset`)."""
        return bool(self._region.word(GEN).load() & BROKEN)

    # -- wait -----------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> int:
        """Wait until ``parties`` have called wait (this round); returns this party's
        arrival index, 0..parties-1 (the last to arrive gets parties-1 and runs
        ``action``).  BrokenBarrierError when the barrier is or gets broken: a
        timeout (``timeout``, else the object's default), ``abort()``, ``reset()``."""
        if timeout is None:
            timeout = self.timeout
        r = self._region
        deadline = drive.deadline_after(timeout, r.monotonic)
        return drive.run(self._wait_steps(deadline))

    async def wait_async(self, timeout: float | None = None) -> int:
        """``await barrier.wait_async()``: :meth:`wait` for a coroutine (host kernel; the
        same algorithm, its sleeps awaited by :func:`futex.sync.aio.run_async`; the
        action, if this is the last party, runs in the loop's thread).  A cancelled
        waiter breaks the barrier, as any exception does."""
        from futex.sync import aio

        if timeout is None:
            timeout = self.timeout
        deadline = drive.deadline_after(timeout, self._region.monotonic)
        index: int = await aio.run_async(self._wait_steps(deadline))
        return index

    def _wait_steps(self, deadline: float | None) -> Algorithm[int]:
        """The whole of wait (a :mod:`futex.sync.drive` generator)."""
        r = self._region
        state, gen = r.word(STATE), r.word(GEN)
        parties = r.u32(PARTIES)
        native = r.kernel == "native"
        # arrive
        while True:
            g = gen.load()
            if g & BROKEN:
                raise BrokenBarrierError
            s = state.load()
            rnd, arrived = s >> 16, s & 0xFFFF
            if rnd != g & ROUND:
                if _after(g & ROUND, rnd):  # the state word lags gen: move it on
                    state.cas(s, (g & ROUND) << 16)
                continue  # (or our gen is stale: read it again)
            if arrived >= parties:  # full: the last party is committing this round
                if deadline is not None and deadline <= r.monotonic():
                    self._break_round(rnd)
                    raise BrokenBarrierError
                yield Sleep(gen, g, deadline, r.monotonic, native)
                continue
            last = arrived + 1 == parties
            if state.cas(s, s + 1) == s:
                break
        if last:
            return self._commit(rnd, parties)
        # wait for the round's fate
        try:
            while True:
                g = gen.load()
                fate = _fate(g, rnd)
                if fate == _RELEASED:
                    return arrived
                if fate == _BROKEN:
                    raise BrokenBarrierError
                if deadline is not None and deadline <= r.monotonic():
                    if gen.cas(g, g | BROKEN) == g:
                        gen.wake(ALL)
                        raise BrokenBarrierError
                    continue
                yield Sleep(gen, g, deadline, r.monotonic, native)
        except BrokenBarrierError:
            raise
        except BaseException:
            self._break_round(rnd)  # a party that leaves breaks its round
            raise

    def _commit(self, rnd: int, parties: int) -> int:
        """The last party: run the action, then release the round."""
        r = self._region
        state, gen = r.word(STATE), r.word(GEN)
        action = self.action
        if action is not None:
            try:
                action()
            except BaseException:
                self._break_round(rnd)
                raise
        while True:
            g = gen.load()
            fate = _fate(g, rnd)
            if fate == _RELEASED:  # a reset of a later round got there first
                break
            if fate == _BROKEN:
                raise BrokenBarrierError
            new = (g & ~ROUND & 0xFFFF_FFFF) | ((rnd + 1) & ROUND)
            if gen.cas(g, new) == g:
                gen.wake(ALL)
                break
        full = (rnd << 16) | parties
        state.cas(full, ((rnd + 1) & ROUND) << 16)
        return parties - 1

    def _break_round(self, rnd: int) -> None:
        """Break round ``rnd`` if it is still open and unbroken."""
        gen = self._region.word(GEN)
        while True:
            g = gen.load()
            if _fate(g, rnd) != _WAITING:
                return
            if gen.cas(g, g | BROKEN) == g:
                gen.wake(ALL)
                return

    # -- abort, reset ---------------------------------------------------------------

    def abort(self) -> None:
        """Break the barrier: waiters now and later get BrokenBarrierError until
        :meth:`reset`."""
        gen = self._region.word(GEN)
        gen.fetch_or(BROKEN)
        gen.wake(ALL)

    def reset(self) -> None:
        """Return the barrier to its empty state: parties waiting now get
        BrokenBarrierError; later waits work again (a broken barrier is mended)."""
        r = self._region
        state, gen = r.word(STATE), r.word(GEN)
        while True:
            g = gen.load()
            rnd = g & ROUND
            new = ((rnd + 1) & ROUND) | ((rnd & RESET_MASK) << RESET_SHIFT) | RESET
            if gen.cas(g, new) == g:
                break
        nxt = (rnd + 1) & ROUND
        s = state.load()
        while not _after(s >> 16, rnd):  # never move it backwards
            old = state.cas(s, nxt << 16)
            if old == s:
                break
            s = old
        gen.wake(ALL)
