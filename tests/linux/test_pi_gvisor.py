"""PI futexes: gVisor's tests of FUTEX_LOCK_PI / TRYLOCK_PI / UNLOCK_PI.

Source: **gVisor** ``test/syscalls/linux/futex.cc`` PIBasic, PIConcurrency, PIWaiters,
PITryLock, PITryLockConcurrency (the project's notes: ``shared/reference/gvisor.md`` 4.2,
rows 20-24), private and shared like the original's ``SharedPrivate`` instantiation.  Where
gVisor differs from Linux (gvisor.md 2.8-2.9) these tests follow Linux
(``test_pi_linux.py``).

Real threads where concurrency is the point; time is a ManualClock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from futex.linux import LinuxKernel, Task
from tests.linux.pi_support import (
    EAGAIN,
    EDEADLK,
    EPERM,
    TID,
    Lab,
    W,
    checked_lab,
    now,
    run_threads,
)
from tests.support import STATE_TIMEOUT, Blocking, wait_until


@pytest.fixture(params=[True, False], ids=["private", "shared"])
def lab(kernel: LinuxKernel, request: pytest.FixtureRequest) -> Iterator[Lab]:
    yield from checked_lab(kernel, request.param)


# =====================================================================================
# gVisor test/syscalls/linux/futex.cc
# =====================================================================================


def test_gvisor_pi_basic(lab: Lab) -> None:
    """gVisor PIBasic (row 20): CAS lock gives tid; LOCK_PI by the owner EDEADLK; CAS unlock
    gives 0; UNLOCK_PI by a non-owner EPERM."""
    t = lab.task()
    assert lab.word() == 0
    assert lab.ulock(t) == 0
    assert lab.word() == t.tid
    assert now(lab.lock(t)) == EDEADLK
    assert lab.uunlock(t) == 0
    assert lab.word() == 0
    assert lab.unlock(t) == EPERM


def test_gvisor_pi_concurrency(lab: Lab) -> None:
    """gVisor PIConcurrency (row 21), scaled: threads x iterations of lock_pi, check that
    the word's TID is ours, unlock_pi.  The critical section also checks mutual
    exclusion."""
    threads, iterations = 8, 40
    tasks = [lab.task() for _ in range(threads)]
    inside: list[int] = []
    errors: list[str] = []

    def body(t: Task) -> int:
        done = 0
        for i in range(iterations):
            r = lab.ulock(t)
            if r != 0:
                errors.append(f"lock_pi of {t.tid} returned {r} at {i}")
                return done
            if lab.word() & TID != t.tid:
                errors.append(f"{t.tid} holds the lock, the word says {lab.word():#x}")
            inside.append(t.tid)
            if len(inside) != 1:
                errors.append(f"two owners at once: {inside}")
            time.sleep(0.0002)  # gVisor sleeps 5 ms; this only invites contention
            inside.remove(t.tid)
            r = lab.uunlock(t)
            if r != 0:
                errors.append(f"unlock_pi of {t.tid} returned {r} at {i}")
                return done
            done += 1
        return done

    results = run_threads([lambda t=t: body(t) for t in tasks])
    assert errors == []
    assert results == [iterations] * threads
    assert lab.word() == 0
    assert lab.queued() == 0


def test_gvisor_pi_waiters(lab: Lab, run_blocking: Callable[..., Blocking]) -> None:
    """gVisor PIWaiters (row 22): main locks; a thread's lock_pi blocks; the word becomes
    exactly main's tid | FUTEX_WAITERS; main's unlock hands over; the thread unlocks."""
    main, other = lab.task(), lab.task()
    assert lab.ulock(main) == 0
    assert lab.word() == main.tid

    def thread() -> tuple[int, int]:
        return lab.ulock(other), lab.uunlock(other)

    b = run_blocking(thread, other)
    wait_until(lambda: lab.word() == main.tid | W, "the word gains FUTEX_WAITERS")
    assert lab.word() == main.tid | W
    assert lab.uunlock(main) == 0  # the CAS fails (WAITERS): the kernel hands over
    assert b.result() == (0, 0)
    assert lab.word() == 0
    assert lab.queued() == 0


def test_gvisor_pi_trylock(lab: Lab) -> None:
    """gVisor PITryLock (row 23): trylock gives tid; the owner's second trylock EDEADLK;
    another task's trylock EAGAIN; unlock succeeds."""
    owner, other = lab.task(), lab.task()
    assert lab.ulock(owner, trylock=True) == 0
    assert lab.word() == owner.tid
    assert lab.trylock(owner) == EDEADLK
    assert lab.ulock(other, trylock=True) == EAGAIN
    assert lab.uunlock(owner) == 0
    assert lab.word() == 0


def test_gvisor_pi_trylock_concurrency(lab: Lab) -> None:
    """gVisor PITryLockConcurrency (row 24): threads each need 10 successful trylocks,
    spinning on failure; each checks the word's TID and unlocks."""
    threads, successes = 10, 10
    tasks = [lab.task() for _ in range(threads)]
    errors: list[str] = []

    def body(t: Task) -> int:
        done = 0
        end = time.monotonic() + STATE_TIMEOUT
        while done < successes:
            r = lab.ulock(t, trylock=True)
            if r == EAGAIN:
                if time.monotonic() > end:
                    errors.append(f"{t.tid} starved")
                    return done
                time.sleep(0)
                continue
            if r != 0:
                errors.append(f"trylock of {t.tid} returned {r}")
                return done
            if lab.word() & TID != t.tid:
                errors.append(f"{t.tid} holds the lock, the word says {lab.word():#x}")
            time.sleep(0.0002)
            r = lab.uunlock(t)
            if r != 0:
                errors.append(f"unlock of {t.tid} returned {r}")
                return done
            done += 1
        return done

    results = run_threads([lambda t=t: body(t) for t in tasks])
    assert errors == []
    assert results == [successes] * threads
    assert lab.word() == 0
    assert lab.queued() == 0
