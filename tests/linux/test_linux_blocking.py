"""The core's pending wait under Linux's outcomes (futex.linux.policy): the object behind
both ways to block.

Linux semantics pinned here: ``__futex_wait`` returns 0 when a waker dequeued the waiter
even if a timeout or signal raced with it; ERESTARTSYS / ERESTART_RESTARTBLOCK turn into
EINTR or a restart per the signal's disposition (``futex_wait_restart`` keeps the absolute
deadline; the restarted wait checks the value again).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest

from futex.kernel import ClockId, ManualClock
from futex.linux import LinuxKernel, PendingWait, abi
from tests.support import wait_until

WAIT_PRIVATE = abi.FUTEX_WAIT | abi.FUTEX_PRIVATE_FLAG
WAKE_PRIVATE = abi.FUTEX_WAKE | abi.FUTEX_PRIVATE_FLAG
SEC = 10**9


def pending(r: int | PendingWait) -> PendingWait:
    assert isinstance(r, PendingWait), f"expected the call to block, it returned {r}"
    return r


def test_cooperative_wait_settles_once_and_runs_callbacks(kernel: LinuxKernel) -> None:
    p = kernel.new_process()
    t1, t2 = p.new_task(), p.new_task()
    a = p.mmap(4096)
    pw = pending(t1.syscall_futex_nb(a, WAIT_PRIVATE, 0, 0, 0, 0))
    seen: list[int] = []
    pw.add_done_callback(lambda w: seen.append(w.result()))
    assert t1.blocked is pw and not pw.done()
    with pytest.raises(RuntimeError, match="still blocked"):
        pw.result()
    assert t2.syscall_futex(a, WAKE_PRIVATE, 1, 0, 0, 0) == 1
    assert pw.done() and pw.result() == 0 and seen == [0]
    assert t1.blocked is None
    assert not t1.interrupt()  # nothing to interrupt any more
    late: list[int] = []
    pw.add_done_callback(lambda w: late.append(w.result()))  # runs at once when done
    assert late == [0]


def test_wake_beats_a_racing_timeout_and_signal(kernel: LinuxKernel, clock: ManualClock) -> None:
    """Linux __futex_wait: dequeued by a waker means success, whatever else happened."""
    p = kernel.new_process()
    t1, t2 = p.new_task(), p.new_task()
    a = p.mmap(4096)
    ts = p.mmap(4096)
    p.write(ts, struct.pack("<qq", 1, 0))
    pw = pending(t1.syscall_futex_nb(a, WAIT_PRIVATE, 0, ts, 0, 0))
    assert t2.syscall_futex(a, WAKE_PRIVATE, 1, 0, 0, 0) == 1
    clock.advance(2 * SEC)
    assert not t1.interrupt()
    assert pw.result() == 0


def test_restart_checks_the_value_again(kernel: LinuxKernel) -> None:
    """A restarted FUTEX_WAIT (no handler, or SA_RESTART) re-reads the word: EAGAIN now."""
    p = kernel.new_process()
    t = p.new_task()
    a = p.mmap(4096)
    pw = pending(t.syscall_futex_nb(a, WAIT_PRIVATE, 0, 0, 0, 0))
    assert t.interrupt(handler=False)
    assert not pw.done() and t.blocked is pw  # restarted and queued again
    assert t.interrupt(handler=True, restart=True)
    assert not pw.done()
    p.store_u32(a, 1)
    assert t.interrupt(handler=False)
    assert pw.result() == -abi.EAGAIN
    assert p.futex.stats().queued == 0


def test_restart_keeps_the_absolute_deadline(kernel: LinuxKernel, clock: ManualClock) -> None:
    """futex_wait_restart: the restarted wait times out at the original deadline."""
    p = kernel.new_process()
    t = p.new_task()
    a = p.mmap(4096)
    ts = p.mmap(4096)
    p.write(ts, struct.pack("<qq", 5, 0))
    start = clock.now(ClockId.MONOTONIC)
    pw = pending(t.syscall_futex_nb(a, WAIT_PRIVATE, 0, ts, 0, 0))
    clock.advance(3 * SEC)
    assert t.interrupt(handler=False)  # ERESTART_RESTARTBLOCK, no handler: restart
    clock.advance(2 * SEC - 1)
    assert not pw.done()
    clock.advance(1)
    assert pw.result() == -abi.ETIMEDOUT
    assert clock.now(ClockId.MONOTONIC) - start == 5 * SEC


def test_restart_past_the_deadline_times_out_at_once(kernel: LinuxKernel) -> None:
    """A restart whose deadline passed while it was being restarted returns ETIMEDOUT."""
    p = kernel.new_process()
    t = p.new_task()
    a = p.mmap(4096)
    ts = p.mmap(4096)
    p.write(ts, struct.pack("<qq", 1, 0))
    pw = pending(t.syscall_futex_nb(a, WAIT_PRIVATE, 0, ts, 0, 0))
    # Move the clock without firing the timer: cancel it the way a lost tick would look.
    assert pw._timer is not None
    pw._timer.cancel()
    assert isinstance(kernel.clock, ManualClock)
    kernel.clock.advance(2 * SEC)
    assert t.interrupt(handler=False)
    assert pw.result() == -abi.ETIMEDOUT


def test_thread_blocked_wait_is_woken(
    kernel: LinuxKernel, run_blocking: Callable[..., Any]
) -> None:
    p = kernel.new_process()
    t1, t2 = p.new_task(), p.new_task()
    a = p.mmap(4096)
    b = run_blocking(lambda: t1.syscall_futex(a, WAIT_PRIVATE, 0, 0, 0, 0), t1)
    assert t2.syscall_futex(a, WAKE_PRIVATE, 1, 0, 0, 0) == 1
    assert b.result() == 0


def test_wait_with_patience_raises_but_leaves_the_call_blocked(kernel: LinuxKernel) -> None:
    p = kernel.new_process()
    t = p.new_task()
    a = p.mmap(4096)
    pw = pending(t.syscall_futex_nb(a, WAIT_PRIVATE, 0, 0, 0, 0))
    with pytest.raises(TimeoutError):
        pw.wait(timeout=0)
    assert not pw.done() and t.interrupt()
    assert pw.wait() == -abi.EINTR


def test_real_clock_timeout_fires() -> None:
    """The RealClock's timer thread ends a timed wait (10 ms; bound generous)."""
    k = LinuxKernel()
    p = k.new_process()
    t = p.new_task()
    a = p.mmap(4096)
    ts = p.mmap(4096)
    p.write(ts, struct.pack("<qq", 0, 10_000_000))
    pw = pending(t.syscall_futex_nb(a, WAIT_PRIVATE, 0, ts, 0, 0))
    assert pw.wait(timeout=60) == -abi.ETIMEDOUT
    p.futex.check_invariants()


def test_wake_in_the_window_after_queueing_is_never_lost(kernel: LinuxKernel) -> None:
    """A FUTEX_WAKE that dequeues a waiter right after it was queued, before the call
    has returned to its caller, must end that wait with 0 (found by the demo: the waiter
    used to be queued before anyone could be told, and slept forever in no queue).

    The waker runs on another thread inside that window: the wait's queueing step is
    wrapped so that, once the waiter is queued, it lets the waker in and waits until the
    waker has dequeued it."""
    import threading

    p = kernel.new_process()
    waiter, waker = p.new_task(), p.new_task()
    a = p.mmap(4096)
    manager = p.futex
    real = manager.try_wait_prepare
    woke: list[int] = []

    def wrapped(w: Any, *args: Any) -> int | None:
        found = real(w, *args)
        t = threading.Thread(
            target=lambda: woke.append(waker.syscall_futex(a, WAKE_PRIVATE, 1, 0, 0, 0))
        )
        t.start()
        wait_until(lambda: w.woken, "the waker dequeued the waiter")
        return found

    manager.try_wait_prepare = wrapped  # type: ignore[method-assign]
    r = waiter.syscall_futex_nb(a, WAIT_PRIVATE, 0, 0, 0, 0)
    manager.try_wait_prepare = real  # type: ignore[method-assign]
    result = r if isinstance(r, int) else r.wait(timeout=30)
    assert result == 0
    wait_until(lambda: woke == [1], "the waker returned 1")
    assert waiter.blocked is None
