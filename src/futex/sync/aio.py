"""Drive :mod:`futex.sync` algorithms on asyncio, and keep owned locks one coroutine at a time.

:func:`run_async` is :func:`futex.sync.drive.run` for coroutines: it steps the same
generator (see :mod:`futex.sync.drive`) in the event loop's thread — so every CAS, the
owner TID and the robust list are the loop thread's — and awaits each
:class:`~futex.sync.drive.Sleep` without blocking the loop and without a thread per
waiter: the process's reactor (:mod:`futex.sync.reactor`: one thread per 127 distinct
words, sleeping in futex_waitv) completes the coroutine's future when the word is woken
or no longer holds the expected value.  A deadline is a timer of the loop (the reactor
knows nothing about time): when it passes, the sleep's outcome is False.

Only words of the host kernel (:class:`futex.native.Word`) can be awaited: a sleep on any
other word (an emulated kernel's) raises TypeError.

Cancellation (sync_design §5)
    A coroutine cancelled while it awaits a sleep (``task.cancel()``, ``asyncio.wait_for``
    running out) first removes its registration from the reactor, then gets the
    CancelledError thrown into the algorithm, whose leaving step passes on a wake it may
    have consumed (``wake(1)``) before the error propagates.  A wake that reaches the
    reactor for an entry whose coroutines all left is passed on by the reactor.  The
    same holds for a deadline: the algorithm receives False and passes the wake on.

One coroutine per owned lock and loop (sync_design §3, "order within a loop")
    A lock's owner is a thread, and every coroutine of a loop runs in the loop's thread:
    to the futex word, all of them are one owner.  Two rules keep them apart:

    1. **In the algorithm**: driven for a coroutine, an acquire that finds the word held
       by its own thread's TID treats it as held by another owner — another coroutine of
       this loop holds it: set W and sleep until the release (which then wakes, whatever
       path releases: Python, the C core, ``with``).  Not a re-entry (RLock), not a
       deadlock error (Mutex).
    2. **The gate**: :func:`loop_gate` gives one :class:`asyncio.Lock` per (key, running
       loop); :func:`acquire_owned` holds it around the futex acquire, so this loop's
       coroutines attempt the lock one at a time, in FIFO order — one of them sleeps on
       the word, the others queue on the gate instead of all waking on each release.

    The gate is released once the acquire returns (taken, timed out, raised): holding it
    until the release would need every release path — the C core's ``release`` and
    ``__exit__`` included — to open it again.  How primitive authors use it::

        async def acquire_async(self, timeout: float | None = None) -> bool:
            return await aio.acquire_owned(self._gate_key, self._acquire_async, timeout)

        async def _acquire_async(self, deadline: float | None) -> bool:
            # rule 1: the algorithm's flag for "my TID means another coroutine"
            outcome = await aio.run_async(self._acquire_steps(deadline, loop_shared=True))
            ...                                  # outcome -> True / False / raise

        async def __aenter__(self) -> Self:
            await self.acquire_async()
            return self

        async def __aexit__(self, *exc: object) -> None:
            self.release()

    Key the gate by the futex word's address (``("futex.sync.lock", word.address)``), not
    by the Python object: two objects attached to the same memory are one lock.  A task
    that acquires again a lock it holds waits forever, as with :class:`asyncio.Lock` (an
    async acquire is not re-entrant; a synchronous ``with rlock:`` inside is).  Locks
    without an owner (Semaphore, Event, a Condition's sequence word) need neither rule:
    drive their algorithms with :func:`run_async` directly.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from futex.native import Word
from futex.sync.drive import Algorithm, Sleep
from futex.sync.reactor import Waiter, reactor

__all__ = ["acquire_owned", "loop_gate", "run_async"]

T = TypeVar("T")


async def run_async(algorithm: Algorithm[T]) -> T:
    """Drive ``algorithm`` to its result on the running event loop."""
    try:
        op = next(algorithm)
        while True:
            try:
                outcome = await _sleep(op)
            except BaseException as exc:  # CancelledError included: the algorithm leaves
                op = algorithm.throw(exc)
                continue
            op = algorithm.send(outcome)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def _sleep(op: object) -> bool:
    """Await one :class:`Sleep`: False iff its deadline passed."""
    if not isinstance(op, Sleep):
        raise TypeError(f"an algorithm must yield futex.sync.drive.Sleep, not {op!r}")
    word = op.word
    if not isinstance(word, Word):
        raise TypeError(
            "asyncio waits need the host kernel (futex.native.Word): cannot await a sleep "
            f"on {type(word).__module__}.{type(word).__qualname__}"
        )
    expected = op.expected
    if not -(2**31) <= expected < 2**32:
        raise ValueError(f"expected value {expected} is not a 32-bit value")
    expected &= 0xFFFFFFFF
    deadline, clock = op.deadline, op.clock
    if deadline is not None and clock() >= deadline:
        return False
    if word.load() != expected:
        return True  # as the kernel's EAGAIN: re-check
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bool] = loop.create_future()
    waiter = Waiter(loop, future)
    owner = reactor()
    owner.register(word, expected, waiter)
    timer: list[asyncio.TimerHandle] = []
    if deadline is not None:
        _arm_deadline(loop, future, deadline, clock, timer)
    try:
        return await future
    finally:
        if timer:
            timer[0].cancel()
        owner.unregister(waiter)


def _arm_deadline(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[bool],
    deadline: float,
    clock: Callable[[], float],
    timer: list[asyncio.TimerHandle],
) -> None:
    """Complete ``future`` with False once ``clock`` reaches ``deadline`` (re-checked: a
    loop timer may run a little early, and the loop's clock need not be ``clock``)."""

    def fire() -> None:
        if future.done():
            return
        left = deadline - clock()
        if left > 0:
            timer[:] = [loop.call_later(left, fire)]
        else:
            future.set_result(False)

    timer[:] = [loop.call_later(max(0.0, deadline - clock()), fire)]


# -- one coroutine per owned lock and loop ----------------------------------------------------


_gates: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, weakref.WeakValueDictionary[Hashable, asyncio.Lock]
] = weakref.WeakKeyDictionary()


def _gate(loop: asyncio.AbstractEventLoop, key: Hashable) -> asyncio.Lock:
    per_loop = _gates.get(loop)
    if per_loop is None:
        per_loop = _gates[loop] = weakref.WeakValueDictionary()
    gate = per_loop.get(key)
    if gate is None:
        gate = per_loop[key] = asyncio.Lock()
    return gate


def loop_gate(key: Hashable) -> asyncio.Lock:
    """The :class:`asyncio.Lock` of ``key`` for the running loop: one per key and loop,
    the same object as long as anyone holds a reference to it (weak on both sides: an
    unused gate is unlocked and has no waiters, so a new one is the same gate)."""
    return _gate(asyncio.get_running_loop(), key)


async def acquire_owned(
    key: Hashable,
    acquire: Callable[[float | None], Awaitable[bool]],
    timeout: float | None = None,
) -> bool:
    """Acquire an owned lock from a coroutine: hold ``key``'s gate of the running loop
    while ``await acquire(deadline)`` runs (``deadline`` absolute on
    :func:`time.monotonic`; None: none).  Returns what ``acquire`` returns, or False if
    the deadline passed while waiting at the gate; exceptions and cancellation
    propagate (the gate is released in every case).  ``timeout=0`` tries without
    waiting at the gate either."""
    if timeout is not None and not timeout >= 0:
        raise ValueError("timeout must be a non-negative number or None")
    deadline = None if timeout is None else time.monotonic() + timeout
    gate = loop_gate(key)
    if deadline is not None and gate.locked():
        try:
            await asyncio.wait_for(gate.acquire(), deadline - time.monotonic())
        except asyncio.TimeoutError:
            return False
    else:
        await gate.acquire()
    try:
        return await acquire(deadline)
    finally:
        gate.release()
