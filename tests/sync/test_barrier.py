"""futex.sync.Barrier: a round word and a generation word, threading.Barrier's API.

threading.Barrier's contract (``Lib/threading.py`` docs: ``wait`` returns an index in
range(parties), the action runs in one thread before the others are released, a
timeout/abort/reset/raising action puts the barrier in the broken state and raises
BrokenBarrierError, ``reset`` mends it) on the algorithm of sync_design §1.7 (glibc's
``nptl/pthread_barrier_wait.c`` keeps rounds apart the same way); the cases are
sync_design §5's Barrier row: a fast thread across rounds, a timeout breaks, abort,
reset, n_waiting, an action that raises — plus what a dead party costs (issue 13).
Waits are detected by state; timeouts run on the emulated kernel's ManualClock.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from futex.sync import BrokenBarrierError
from futex.sync.barrier import Barrier
from tests.support import STATE_TIMEOUT, wait_until
from tests.sync.harness import Env, Handle, open_env

STATE, GEN = 16, 20


def _wait(b: Any) -> int:
    return int(b.wait())


def _broken(b: Any) -> str:
    try:
        b.wait()
    except BrokenBarrierError:
        return "broken"
    return "passed"


def _arrived(env: Env, b: Any, handles: list[Handle], n: int) -> None:
    """Wait until ``n`` parties arrived in the open round and every worker of
    ``handles`` sleeps in the kernel."""
    wait_until(
        lambda: b.n_waiting == n and all(env.blocked(h) for h in handles),
        f"{n} parties wait at the barrier",
    )


def test_one_round_gives_distinct_indices(env: Env) -> None:
    """Each of the parties gets a distinct index in range(parties), the last to arrive
    parties - 1 (threading.Barrier.wait), in threads and across processes."""
    b = env.make(Barrier, 3)
    handles = [env.start(_wait, b) for _ in range(2)]
    _arrived(env, b, handles, 2)
    assert b.wait() == 2
    assert sorted(h.result() for h in handles) == [0, 1]
    assert b.n_waiting == 0 and not b.broken


def test_a_fast_thread_cannot_lap_into_the_next_round(kernel_env: Env) -> None:
    """The last party of a round, arriving again at once, joins the next round and
    waits there even though the others of the old round have not run yet: the round
    number keeps rounds apart (sync_design §1.7; §5 broken variant 8, "barrier without a
    round number")."""
    env = kernel_env
    b = env.make(Barrier, 2)
    go = env.shared()

    def slow(b: Any) -> tuple[int, int]:
        first = b.wait()
        go.wait_for(1)
        return first, b.wait()

    def fast(b: Any) -> tuple[int, int]:
        return b.wait(), b.wait()

    a = env.start(slow, b)
    _arrived(env, b, [a], 1)
    f = env.start(fast, b)
    env.wait_blocked(f, "the fast party waits in round 2")
    wait_until(lambda: b.n_waiting == 1, "the fast party arrived in round 2")
    assert not f.done()
    go.set(1)
    assert a.result() == (0, 1)
    assert f.result() == (1, 0)


def test_many_rounds_across_processes(env: Env) -> None:
    """Round after round with three parties, in threads and in forked processes: every
    round hands out indices {0, 1, 2} (threading.Barrier is reusable)."""
    b = env.make(Barrier, 3)
    rounds = 5 if env.kernel == "emulated" else 30

    def party(b: Any) -> list[int]:
        return [b.wait(STATE_TIMEOUT) for _ in range(rounds)]

    handles = [env.start(party, b) for _ in range(2)]
    mine = [b.wait(STATE_TIMEOUT) for _ in range(rounds)]
    others = [h.result() for h in handles]
    for r in range(rounds):
        assert sorted([mine[r], others[0][r], others[1][r]]) == [0, 1, 2]


def test_a_timeout_breaks_the_barrier_for_everyone(kernel_env: Env) -> None:
    """A wait that times out breaks the barrier: it and every other waiter raise
    BrokenBarrierError, later waits raise at once, until reset() (threading docs: "If the
    call times out, the barrier is put into the broken state").  Emulated: not before
    the deadline on the ManualClock."""
    env = kernel_env
    b = env.make(Barrier, 3)
    timeout = 5.0 if env.manual_clock else 0.05

    def timed(b: Any) -> tuple[str, float]:
        t0 = env.monotonic()
        try:
            b.wait(timeout)
        except BrokenBarrierError:
            return "broken", env.monotonic() - t0
        return "passed", 0.0

    other = env.start(_broken, b)
    _arrived(env, b, [other], 1)
    t = env.start(timed, b)
    if env.manual_clock:
        _arrived(env, b, [other, t], 2)
        env.advance(timeout - 0.001)
        assert env.blocked(t), "the timed wait ended before its deadline"
        env.advance(0.001)
    outcome, elapsed = t.result()
    assert outcome == "broken" and elapsed >= timeout
    assert other.result() == "broken"
    assert b.broken and b.n_waiting == 0
    with pytest.raises(BrokenBarrierError):
        b.wait()
    b.reset()
    assert not b.broken
    handles = [env.start(_wait, b) for _ in range(2)]
    assert b.wait() in (0, 1, 2)
    assert len({h.result() for h in handles}) == 2


def test_the_default_timeout_is_the_objects(kernel_env: Env) -> None:
    """Barrier(parties, timeout=t): wait() without a timeout uses t (threading); it is a
    process-local attribute (not in shared memory)."""
    env = kernel_env
    b = env.make(Barrier, 2, timeout=3.0 if env.manual_clock else 0.05)
    h = env.start(_broken, b)
    if env.manual_clock:
        _arrived(env, b, [h], 1)
        env.advance(3.0)
    assert h.result() == "broken"
    assert Barrier.attach(env.memory(), b.offset).timeout is None


def test_abort_breaks_waiters_now_and_later(env: Env) -> None:
    """abort() puts the barrier in the broken state: current waiters and later waits
    raise BrokenBarrierError, until reset() (threading.Barrier.abort)."""
    b = env.make(Barrier, 3)
    handles = [env.start(_broken, b) for _ in range(2)]
    _arrived(env, b, handles, 2)
    b.abort()
    assert [h.result() for h in handles] == ["broken", "broken"]
    assert b.broken
    assert env.start(_broken, b).result() == "broken"
    b.reset()
    assert not b.broken
    handles = [env.start(_wait, b) for _ in range(2)]
    assert sorted([b.wait(), *(h.result() for h in handles)]) == [0, 1, 2]


def test_reset_breaks_the_waiting_round_and_leaves_the_barrier_usable(env: Env) -> None:
    """reset() with parties waiting: they get BrokenBarrierError, and the barrier is not
    left broken — the next round works (threading.Barrier.reset: "Any threads waiting on
    it will receive the BrokenBarrierError exception")."""
    b = env.make(Barrier, 2)
    h = env.start(_broken, b)
    _arrived(env, b, [h], 1)
    b.reset()
    assert h.result() == "broken"
    assert not b.broken and b.n_waiting == 0
    h = env.start(_wait, b)
    assert sorted([b.wait(), h.result()]) == [0, 1]


def test_n_waiting_counts_the_arrived(kernel_env: Env) -> None:
    """n_waiting is the number of parties waiting in the open round (threading), 0 once
    released or broken; parties is what the barrier was made with."""
    env = kernel_env
    b = env.make(Barrier, 4)
    assert (b.parties, b.n_waiting) == (4, 0)
    handles = []
    for n in (1, 2, 3):
        handles.append(env.start(_wait, b))
        _arrived(env, b, handles, n)
    assert b.wait() == 3
    assert sorted(h.result() for h in handles) == [0, 1, 2]
    assert b.n_waiting == 0


def test_the_action_runs_once_before_the_others_are_released(env: Env) -> None:
    """The last party runs the action before anyone is released (threading: "called by
    one of the threads when they are released"): the others see its effect.  The action
    is process-local: this object's."""
    ran = env.shared()
    b = env.make(Barrier, 3, action=lambda: ran.add(1))

    def party(b: Any) -> int:
        b.wait()
        return ran.load()

    handles = [env.start(party, b) for _ in range(2)]
    _arrived(env, b, handles, 2)
    b.wait()
    assert [h.result() for h in handles] == [1, 1]
    assert ran.load() == 1


def test_an_action_that_raises_breaks_the_barrier(kernel_env: Env) -> None:
    """An action that raises: its exception propagates in the last party, the others get
    BrokenBarrierError and the barrier is broken (threading: "If the call [to action]
    raises an error, the barrier is put into the broken state")."""
    env = kernel_env

    def boom() -> None:
        raise ZeroDivisionError("action")

    b = env.make(Barrier, 2, action=boom)
    h = env.start(_broken, b)
    _arrived(env, b, [h], 1)
    with pytest.raises(ZeroDivisionError):
        b.wait()
    assert h.result() == "broken"
    assert b.broken


def test_an_exception_in_a_waiter_breaks_the_barrier(kernel_env: Env) -> None:
    """A waiter left by an exception (KeyboardInterrupt after its wake, a cancellation)
    breaks the barrier: its arrival cannot be taken back, and the others must not wait
    for it (module docstring).  Driven by hand so the exception lands in the sleep."""
    env = kernel_env
    b = env.make(Barrier, 3)

    def interrupted(b: Any) -> str:
        steps = Barrier._wait_steps(b, None)
        next(steps)  # arrived, about to sleep
        with pytest.raises(KeyboardInterrupt):
            steps.throw(KeyboardInterrupt())
        return "left"

    other = env.start(_broken, b)
    _arrived(env, b, [other], 1)
    assert env.start(interrupted, b).result() == "left"
    assert other.result() == "broken"
    assert b.broken


def test_parties_must_fit_16_bits(kernel_env: Env) -> None:
    """parties in 1..65535 (the arrived count has 16 bits) else ValueError; a barrier of
    one party never waits."""
    env = kernel_env
    for bad in (0, -1, 65536):
        with pytest.raises(ValueError, match=r"parties must be in 1\.\.65535"):
            env.make(Barrier, bad)
    assert env.make(Barrier, 65535).parties == 65535
    one = env.make(Barrier, 1)
    assert [one.wait(), one.wait()] == [0, 0]


def test_a_party_that_dies_after_arriving_costs_nothing(kernel_env: Env) -> None:
    """Issue 13: a party that dies while waiting has arrived — its count stays in the
    state word (forged here: the memory a killed waiter leaves) and the round completes
    when the others arrive; one that never arrives makes the others time out (the
    timeout test).  Module docstring, "Dead participants"."""
    env = kernel_env
    b = env.make(Barrier, 3)
    env.word(b.offset + STATE).add(1)  # a party arrived, then died asleep
    h = env.start(_wait, b)
    _arrived(env, b, [h], 2)
    assert b.wait() == 2
    assert h.result() == 1


def test_wait_async() -> None:
    """asyncio: ``await barrier.wait_async()`` waits without blocking the loop; a thread
    completes the round."""
    pytest.importorskip("futex.sync.aio")
    with open_env("native", "threads") as env:
        b = env.make(Barrier, 2)

        async def main() -> int:
            task = asyncio.ensure_future(b.wait_async())
            while b.n_waiting == 0:
                await asyncio.sleep(0.001)
            thread = threading.Thread(target=b.wait)
            thread.start()
            index: int = await asyncio.wait_for(task, STATE_TIMEOUT)
            thread.join()
            return index

        assert asyncio.run(main()) == 0
