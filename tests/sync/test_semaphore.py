"""futex.sync.Semaphore and BoundedSemaphore: glibc's 32-bit sem_t with threading's API.

The algorithm is glibc's (``nptl/sem_post.c``, ``nptl/sem_waitcommon.c``: value =
count << 1 | waiters bit, ``__sem_wait_32_finish``), the API threading's
(``Lib/threading.py``: argument errors, "Semaphore released too many times").  The
generic lock suite (``test_generic_lock.py``) already runs Semaphore(1) and
BoundedSemaphore(1) through exclusion, progress, nowait and timeouts; here are the
semaphore's own cases (sync_design §5): fastipc's lost wakeup (two waiters, two posts),
BoundedSemaphore over-release, ``release(n)``, a woken waiter that leaves passing the
wake on, what a dead participant costs (issue 13), and the C core against the Python
reference.  Waits are detected by state (``env.wait_blocked``), never by sleeping.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest

from futex.sync.semaphore import BoundedSemaphore, Semaphore
from tests.support import STATE_TIMEOUT, wait_until
from tests.sync.harness import Env, open_env

VALUE, NWAITERS, BOUND = 16, 20, 24


def _words(env: Env, sem: Any) -> tuple[int, int]:
    """(value word, nwaiters) of ``sem`` straight from memory."""
    raw = env.read(sem.offset + VALUE, 8)
    return int.from_bytes(raw[:4], "little"), int.from_bytes(raw[4:], "little")


def _acquire(sem: Any) -> bool:
    return bool(sem.acquire())


def test_two_waiters_two_posts_both_wake_fastipc_lost_wakeup(env: Env) -> None:
    """Two waiters asleep on count 0, two releases back to back: both get a token.
    fastipc's semaphore woke only on a 0 -> 1 transition and left one asleep
    (python_peers.md; sync_design §1.4 "Pitfall", §5 broken variant 6); glibc wakes on
    every post while the waiters bit is set (sem_post.c)."""
    sem = env.make(Semaphore, 0)
    handles = [env.start(_acquire, sem) for _ in range(2)]
    for h in handles:
        env.wait_blocked(h, "a waiter sleeps on count 0")
    wait_until(lambda: _words(env, sem)[1] == 2, "both waiters are counted")
    sem.release()
    sem.release()
    assert [h.result() for h in handles] == [True, True]
    assert _words(env, sem) == (0, 0)  # no token, no waiter, the waiters bit cleared


def test_release_n_wakes_n_and_no_more(kernel_env: Env) -> None:
    """release(n) adds n tokens and wakes n sleepers (threading: "release(n=1) ... wake
    up n threads"; glibc sem_post wakes on every post): of three waiters, release(2)
    lets exactly two through; the third sleeps until the next release."""
    env = kernel_env
    sem = env.make(Semaphore, 0)
    handles = [env.start(_acquire, sem) for _ in range(3)]
    for h in handles:
        env.wait_blocked(h, "a waiter sleeps on count 0")
    sem.release(2)
    wait_until(lambda: sum(h.done() for h in handles) == 2, "two waiters got a token")
    (rest,) = [h for h in handles if not h.done()]
    env.wait_blocked(rest, "the third still sleeps")
    assert sem._value() == 0
    sem.release(1)
    assert [h.result() for h in handles] == [True, True, True]
    assert _words(env, sem) == (0, 0)


def test_release_n_argument_errors(kernel_env: Env) -> None:
    """threading.Semaphore.release: "n must be one or more" (ValueError); acquire:
    "can't specify timeout for non-blocking acquire"; the initial value must be >= 0."""
    env = kernel_env
    sem = env.make(Semaphore, 2)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="n must be one or more"):
            sem.release(bad)
    with pytest.raises(TypeError):
        sem.release(1.5)
    with pytest.raises(ValueError, match="can't specify timeout"):
        sem.acquire(False, 1.0)
    assert sem._value() == 2
    with pytest.raises(ValueError, match="initial value must be >= 0"):
        env.make(Semaphore, -1)
    with pytest.raises(ValueError, match="initial value must be <="):
        env.make(Semaphore, 1 << 30)


def test_bounded_over_release_raises_and_changes_nothing(kernel_env: Env) -> None:
    """BoundedSemaphore.release past the initial value raises ValueError (threading:
    "Semaphore released too many times") and leaves the count as it was; release(n)
    counts all n against the bound.  A plain Semaphore counts up."""
    env = kernel_env
    b = env.make(BoundedSemaphore, 2)
    with pytest.raises(ValueError, match="released too many times"):
        b.release()
    assert b.acquire(False)
    with pytest.raises(ValueError, match="released too many times"):
        b.release(2)
    assert b._value() == 1
    b.release()
    assert b._value() == 2
    assert b.statistics().bound == 2
    s = env.make(Semaphore, 2)
    s.release(3)
    assert s._value() == 5


def test_bound_survives_attach(kernel_env: Env) -> None:
    """The bound is in shared memory (+24): a BoundedSemaphore attached elsewhere refuses
    the same over-release; attaching it as the other type is a LayoutError naming it."""
    env = kernel_env
    b = env.make(BoundedSemaphore, 1)
    other = BoundedSemaphore.attach(env.memory(), b.offset)
    with pytest.raises(ValueError, match="released too many times"):
        other.release()
    from futex.sync import LayoutError

    with pytest.raises(LayoutError, match="BoundedSemaphore, not a Semaphore"):
        Semaphore.attach(env.memory(), b.offset)


def test_a_woken_waiter_that_leaves_passes_the_wake_on(kernel_env: Env) -> None:
    """A waiter woken by a release that then leaves without the token (an exception
    right after the wake: KeyboardInterrupt from a signal handler, a cancellation) wakes
    the next sleeper, so the token is not stranded (sync_design §1.1 "Leaving after a
    wake", §5 broken variant 4; glibc's timed waits redo the wake).  The first waiter is
    driven by hand so that the exception lands exactly after its wake; futex queues are
    FIFO within a priority (Linux plist), so the release wakes it first."""
    env = kernel_env
    sem = env.make(Semaphore, 0)

    def interrupted(sem: Any) -> str:
        steps = Semaphore._acquire_steps(sem, None)
        op = next(steps)
        assert op.word.wait(op.expected)  # asleep in the kernel until the release
        with pytest.raises(KeyboardInterrupt):
            steps.throw(KeyboardInterrupt())
        return "left"

    first = env.start(interrupted, sem)
    env.wait_blocked(first, "the hand-driven waiter sleeps")
    second = env.start(_acquire, sem)
    env.wait_blocked(second, "the second waiter sleeps")
    sem.release()
    assert first.result() == "left"
    assert second.result() is True
    assert _words(env, sem) == (0, 0)


def test_a_timed_out_waiter_leaves_the_words_clean(kernel_env: Env) -> None:
    """The last waiter to leave clears the waiters bit and drops out of nwaiters
    (glibc __sem_wait_32_finish); a later release makes no wake call."""
    env = kernel_env
    sem = env.make(Semaphore, 0)
    timeout = 2.0 if env.manual_clock else 0.05
    h = env.start(lambda s: s.acquire(timeout=timeout), sem)
    if env.manual_clock:
        env.wait_blocked(h, "the timed waiter sleeps")
        env.advance(timeout)
    assert h.result() is False
    assert _words(env, sem) == (0, 0)
    sem.release()
    assert _words(env, sem) == (2, 0)


def test_a_waiter_that_dies_asleep_costs_only_wake_calls(kernel_env: Env) -> None:
    """Issue 13 (unowned primitives lose nothing when a participant dies): a waiter that
    dies asleep leaves itself counted in nwaiters and the waiters bit set — forged here,
    exactly the memory a killed process leaves (the real kill is the next test) — so
    later releases always make a wake call; no token is lost and a live waiter still
    gets its token (module docstring, "Dead participants")."""
    env = kernel_env
    sem = env.make(Semaphore, 0)
    env.word(sem.offset + NWAITERS).add(1)
    env.word(sem.offset + VALUE).set(1)
    live = env.start(_acquire, sem)
    env.wait_blocked(live, "a live waiter sleeps")
    sem.release()
    assert live.result() is True
    assert _words(env, sem) == (1, 1)  # the dead one still counted: the bit stays
    sem.release()
    assert sem.acquire(False)
    assert sem._value() == 0


def test_a_process_killed_holding_tokens_leaks_them() -> None:
    """No owner, no recovery (sync_design §1.4 "No owner"): a process SIGKILLed after
    taking a token leaves the count one lower for good; a process SIGKILLed while asleep
    in acquire leaves nwaiters high but blocks nobody — a release still wakes the
    survivors."""
    with open_env("native", "processes") as env:
        sem = env.make(Semaphore, 1)
        gate = env.shared()

        def hold_then_hang(sem: Any) -> None:
            assert sem.acquire()
            gate.set(1)
            gate.wait_for(99, STATE_TIMEOUT)

        holder = env.start(hold_then_hang, sem)
        gate.wait_for(1)
        sleeper = env.start(_acquire, sem)
        env.wait_blocked(sleeper, "a process sleeps on count 0")
        os.kill(holder.pid, signal.SIGKILL)
        os.kill(sleeper.pid, signal.SIGKILL)
        holder.stop()
        sleeper.stop()
        assert sem._value() == 0  # the holder's token is gone with it
        assert _words(env, sem)[1] == 1  # the killed sleeper is still counted
        survivor = env.start(_acquire, sem)
        env.wait_blocked(survivor, "a live process sleeps")
        sem.release()
        assert survivor.result() is True


def test_cross_process_handoff(process_env: Env) -> None:
    """Tokens pass between processes both ways (a semaphore's use across fork; glibc
    sem_t pshared): a child waits for the parent's release, then releases twice."""
    env = process_env
    sem = env.make(Semaphore, 0)

    def child(sem: Any) -> bool:
        ok = sem.acquire(timeout=STATE_TIMEOUT)
        sem.release(2)
        return bool(ok)

    h = env.start(child, sem)
    env.wait_blocked(h, "the child sleeps on count 0")
    sem.release()
    assert h.result() is True
    assert sem.acquire(timeout=STATE_TIMEOUT) and sem.acquire(timeout=STATE_TIMEOUT)
    assert sem._value() == 0


def test_with_statement_and_statistics(kernel_env: Env) -> None:
    """``with sem:`` takes and gives back a token (threading.Semaphore's __enter__ returns
    True); statistics() reports the value, the waiters bit and nwaiters."""
    env = kernel_env
    sem = env.make(Semaphore, 1)
    with sem as got:
        assert got is True
        assert sem.statistics().value == 0
    st = sem.statistics()
    assert (st.value, st.waiters, st.nwaiters) == (1, False, 0)
    assert st.bound == 0x3FFF_FFFF


def _native_core() -> Any:
    from futex.native import _native

    core = getattr(_native, "SemCore", None)
    if core is None:
        pytest.skip("futex.native._native.SemCore is not built")
    return core


def test_c_core_and_python_reference_write_the_same_words() -> None:
    """C versus Python differential (sync_design §5 "All"): the same script of
    operations through the C core and through the Python reference methods (called on
    the class, on their own memory) leaves the same words after every step."""
    core = _native_core()
    with open_env("native", "threads") as env:
        a = env.make(BoundedSemaphore, 3)
        b = env.make(BoundedSemaphore, 3)
        assert isinstance(a, core)
        script: list[tuple[str, tuple[Any, ...]]] = [
            ("acquire", (False,)), ("acquire", (True, 0)), ("release", (2,)),
            ("release", (1,)), ("acquire", (False,)), ("acquire", (False,)),
            ("acquire", (False,)), ("acquire", (False,)), ("acquire", (True, 0.0)),
            ("release", (3,)),
        ]
        for name, args in script:
            outcomes = []
            for method in (getattr(a, name), getattr(BoundedSemaphore, name).__get__(b)):
                try:
                    outcomes.append(("ok", method(*args)))
                except ValueError as exc:
                    outcomes.append(("ValueError", str(exc)))
            assert outcomes[0] == outcomes[1], (name, args)
            assert _words(env, a) == _words(env, b), (name, args)
            assert a._value() == BoundedSemaphore._value(b)


def test_acquire_async_and_async_with() -> None:
    """asyncio (sync_design §3): ``await sem.acquire_async()`` sleeps without blocking
    the loop and is woken by a release from a thread; a timeout returns False;
    ``async with`` gives the token back."""
    pytest.importorskip("futex.sync.aio")
    with open_env("native", "threads") as env:
        sem = env.make(Semaphore, 0)

        async def main() -> tuple[bool, bool, int]:
            late = await sem.acquire_async(timeout=0.01)
            task = asyncio.ensure_future(sem.acquire_async())
            loop = asyncio.get_running_loop()
            while sem.statistics().nwaiters == 0:
                await asyncio.sleep(0.001)
            await loop.run_in_executor(None, sem.release)
            got = await asyncio.wait_for(task, STATE_TIMEOUT)
            sem.release()
            async with sem:
                inside = sem._value()
            return late, got, inside

        assert asyncio.run(main()) == (False, True, 0)
        assert sem._value() == 1
