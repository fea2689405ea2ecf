"""futex.sync.Event: one word with a generation count, threading.Event's API.

threading.Event's contract (``Lib/threading.py`` docs: wait "returns True if and only if
the internal flag has been set to true, either before the wait call or after the wait
starts"), the generation word of sync_design §1.6, and the peer defects it avoids:
fastipc's NamedEvent returned False for an event that was already set, and an Event that
is a plain flag misses a set() quickly followed by clear() (sync_design §5 broken
variant 7).  Waits are detected by state (``env.wait_blocked``), timeouts run on the
emulated kernel's ManualClock.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from futex.sync.event import Event
from tests.support import STATE_TIMEOUT
from tests.sync.harness import Env, open_env

WORD = 16
SET, WAITERS = 1, 2


def _word(env: Env, ev: Any) -> int:
    return int.from_bytes(env.read(ev.offset + WORD, 4), "little")


def _wait(ev: Any) -> bool:
    return bool(ev.wait())


def test_wait_after_set_returns_true_at_once(env: Env) -> None:
    """A wait on an event that is already set returns True without sleeping, here and in
    another process (threading docs; fastipc's NamedEvent returned False: python_peers.md).
    A zero timeout on a clear event returns False."""
    ev = env.make(Event)
    assert not ev.is_set()
    assert ev.wait(0) is False
    ev.set()
    assert ev.is_set()
    assert ev.wait() is True and ev.wait(0) is True
    assert env.start(lambda e: (e.is_set(), e.wait(0), e.wait()), ev).result() == (
        True, True, True)


def test_set_wakes_every_waiter(env: Env) -> None:
    """set() wakes all waiters with True (threading.Event.set: "All threads waiting for
    it to become true are awakened"); the word ends SET without WAITERS."""
    ev = env.make(Event)
    handles = [env.start(_wait, ev) for _ in range(3)]
    for h in handles:
        env.wait_blocked(h, "a waiter sleeps on the clear event")
    assert _word(env, ev) & WAITERS
    ev.set()
    assert [h.result() for h in handles] == [True, True, True]
    assert _word(env, ev) & (SET | WAITERS) == SET


def test_a_set_then_clear_pulse_wakes_the_waiters_with_true(env: Env) -> None:
    """set() immediately followed by clear() still wakes every waiter *with True*: they
    were notified while the flag was set (threading: the waiters of a Condition-based
    Event return True).  The generation moved, so a waiter that wakes to a cleared word
    does not go back to sleep (sync_design §1.6; broken variant 7, "Event as a plain
    flag")."""
    ev = env.make(Event)
    handles = [env.start(_wait, ev) for _ in range(3)]
    for h in handles:
        env.wait_blocked(h, "a waiter sleeps on the clear event")
    ev.set()
    ev.clear()
    assert [h.result() for h in handles] == [True, True, True]
    assert not ev.is_set()
    assert ev.statistics().generation == 1


def test_timeout_returns_false_only_after_the_deadline(kernel_env: Env) -> None:
    """wait(timeout) on a clear event returns False, not before the timeout on the
    kernel's CLOCK_MONOTONIC (threading docs: "returns False if the wait timed out").
    Emulated: asleep 1 ms before the deadline on the ManualClock, False at it."""
    env = kernel_env
    ev = env.make(Event)
    timeout = 5.0 if env.manual_clock else 0.05

    def timed(ev: Any) -> tuple[bool, float]:
        t0 = env.monotonic()
        return ev.wait(timeout), env.monotonic() - t0

    h = env.start(timed, ev)
    if env.manual_clock:
        env.wait_blocked(h, "the timed wait sleeps")
        env.advance(timeout - 0.001)
        assert env.blocked(h), "the timed wait ended before its deadline"
        env.advance(0.001)
    ok, elapsed = h.result()
    assert ok is False
    assert timeout <= elapsed < STATE_TIMEOUT


def test_set_is_idempotent_and_clear_keeps_the_generation(kernel_env: Env) -> None:
    """The generation counts clear -> set transitions only: a second set() changes
    nothing, clear() only drops SET (the C core's and the reference's word format)."""
    env = kernel_env
    ev = env.make(Event)
    ev.set()
    ev.set()
    assert _word(env, ev) == 4 | SET
    ev.clear()
    ev.clear()
    assert _word(env, ev) == 4
    ev.set()
    assert ev.statistics().generation == 2
    assert ev.statistics().set is True and ev.statistics().waiters is False


def test_a_waiter_that_dies_costs_one_wake_call(kernel_env: Env) -> None:
    """Issue 13: a waiter that dies asleep leaves only the WAITERS bit (forged here, the
    memory a killed waiter leaves); the next set() makes one wake call with nobody to
    wake and drops the bit; nothing else changes (module docstring, "Dead
    participants")."""
    env = kernel_env
    ev = env.make(Event)
    env.word(ev.offset + WORD).set(WAITERS)
    ev.set()
    assert _word(env, ev) == 4 | SET
    assert ev.wait(0) is True


def test_cross_process_set_and_wait(process_env: Env) -> None:
    """An Event shared with another process: the child waits, the parent sets; then the
    child sets a second event the parent waits on (multiprocessing.Event's use)."""
    env = process_env
    go, back = env.make(Event), env.make(Event)

    def child(go: Any, back: Any) -> bool:
        ok = go.wait(STATE_TIMEOUT)
        back.set()
        return bool(ok)

    h = env.start(child, go, back)
    env.wait_blocked(h, "the child waits for the event")
    go.set()
    assert back.wait(STATE_TIMEOUT) is True
    assert h.result() is True


def test_c_core_and_python_reference_write_the_same_words() -> None:
    """C versus Python differential (sync_design §5 "All"): the same script through the
    C core and through the Python reference methods leaves the same word each step."""
    from futex.native import _native

    core = getattr(_native, "EventCore", None)
    if core is None:
        pytest.skip("futex.native._native.EventCore is not built")
    with open_env("native", "threads") as env:
        a, b = env.make(Event), env.make(Event)
        assert isinstance(a, core)
        for name, args in [("set", ()), ("wait", (0,)), ("clear", ()), ("wait", (0,)),
                           ("is_set", ()), ("set", ()), ("set", ()), ("clear", ()),
                           ("set", ()), ("wait", (None,)), ("is_set", ())]:
            got = getattr(a, name)(*args), getattr(Event, name)(b, *args)
            assert got[0] == got[1], name
            assert _word(env, a) == _word(env, b), name


def test_wait_async() -> None:
    """asyncio (sync_design §3): ``await ev.wait_async()`` sleeps without blocking the
    loop and returns True once a thread sets the event; False at its timeout."""
    pytest.importorskip("futex.sync.aio")
    with open_env("native", "threads") as env:
        ev = env.make(Event)

        async def main() -> tuple[bool, bool, bool]:
            late = await ev.wait_async(timeout=0.01)
            task = asyncio.ensure_future(ev.wait_async())
            while not ev.statistics().waiters:
                await asyncio.sleep(0.001)
            await asyncio.get_running_loop().run_in_executor(None, ev.set)
            got = await asyncio.wait_for(task, STATE_TIMEOUT)
            return late, got, await ev.wait_async(0)

        assert asyncio.run(main()) == (False, True, True)
