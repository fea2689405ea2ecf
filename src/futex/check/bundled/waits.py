"""Waiting for a value: fastipc's semaphore, event and timed wait, broken and fixed.

reference/python_peers.md §2 lists the fastipc 0.1.5 defects measured on the host: a
``Semaphore`` whose post wakes only on 0 -> n (defect 3: 20/20 trials lost a waiter), a
timed wait that re-arms its full relative timeout after a spurious wake-up, and a
``NamedEvent.wait`` that maps the futex's EAGAIN ("the word already changed") to False,
indistinguishable from a timeout (defect 5).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Final

from futex.check.bundled._base import Entry, check, now_of
from futex.check.runtime import Scenario

__all__ = ["ENTRIES"]

FASTIPC: Final = "fastipc 0.1.5 (reference/python_peers.md §2"

# -- semaphores ------------------------------------------------------------------------------


def _sem_setup(env: Any) -> SimpleNamespace:
    return SimpleNamespace(sem=env.word("sem"), waiters=env.word("waiters"))


def _take(s: SimpleNamespace) -> bool:
    """One attempt: True when a token was taken; False when the count was 0."""
    while True:
        v = s.sem.load()
        if v == 0:
            return False
        if s.sem.cas(v, v - 1) == v:
            return True


def sem_wait_plain(s: SimpleNamespace) -> None:
    """fastipc's wait: take a token, else sleep while the count is 0."""
    while not _take(s):
        s.sem.wait(0)


def sem_post_on_zero(s: SimpleNamespace) -> None:
    """fastipc's post: add one, and wake only if the count was 0 (the bug: the second
    post of two finds 1 and wakes nobody, though a second waiter sleeps)."""
    if s.sem.fetch_add(1) == 0:
        s.sem.wake(1)


def sem_wait_counted(s: SimpleNamespace) -> None:
    """A waiter announces itself in ``waiters`` before it sleeps."""
    while not _take(s):
        s.waiters.fetch_add(1)
        s.sem.wait(0)
        s.waiters.fetch_sub(1)


def sem_post_counted(s: SimpleNamespace) -> None:
    """Add one, then wake one if anybody announced a wait (SC: a waiter that announced
    itself after this load sees the new count in its FUTEX_WAIT and does not sleep)."""
    s.sem.fetch_add(1)
    if s.waiters.load() > 0:
        s.sem.wake(1)


def semaphore_scenario(name: str, *, counted: bool) -> Scenario:
    """Two waiters take one token each; a poster posts twice (python_peers.md §2's test)."""
    wait, post = (sem_wait_counted, sem_post_counted) if counted else (
        sem_wait_plain, sem_post_on_zero)

    def poster(s: SimpleNamespace) -> None:
        post(s)
        post(s)

    def final(s: SimpleNamespace, results: dict[str, Any]) -> bool:
        return check(s.sem.peek() == 0, f"{s.sem.peek()} tokens left over")

    return Scenario(
        name=name,
        setup=_sem_setup,
        tasks=[("W1", wait), ("W2", wait), ("P", poster)],
        invariant=lambda s: check(s.sem.peek() <= 2, "more tokens than posts"),
        final=final,
        awaits={"sem": lambda v: v > 0},
    )


# -- events ----------------------------------------------------------------------------------


def _event_setup(env: Any) -> SimpleNamespace:
    return SimpleNamespace(flag=env.word("flag"))


def event_set(s: SimpleNamespace) -> None:
    s.flag.store(1)
    s.flag.wake(2**31 - 1)


def event_wait_eagain_false(s: SimpleNamespace) -> bool:
    """fastipc's ``NamedEvent.wait``: ``futex_wait(flag, 0) == 0``, so EAGAIN (the flag was
    already 1) returns False, as a timeout would.  The protocol's ``wait`` folds EAGAIN
    into True, so the kernel's value check is spelled out: a load just before the wait
    (the window between them only hides the bug, never invents it)."""
    if s.flag.load() != 0:
        return False  # EAGAIN: fastipc says "not set"
    return bool(s.flag.wait(0))


def event_wait_checked(s: SimpleNamespace) -> bool:
    """The fix: a changed word (EAGAIN) means set; re-check the flag after every return."""
    while s.flag.load() == 0:
        s.flag.wait(0)
    return True


def event_scenario(name: str, wait: Any) -> Scenario:
    """A setter sets the event; a waiter waits for it (no timeout): it must say True."""

    def final(s: SimpleNamespace, results: dict[str, Any]) -> bool:
        return check(results.get("W") is True,
                     f"W's wait() returned {results.get('W')!r} although the event was set")

    return Scenario(name=name, setup=_event_setup, tasks=[("S", event_set), ("W", wait)],
                    final=final, awaits={"flag": lambda v: v != 0})


# -- timed waits -----------------------------------------------------------------------------

#: The waiter's timeout and the ticker's (virtual seconds).
TIMEOUT: Final = 1.0
TICK: Final = 0.5


def _timed_setup(env: Any) -> SimpleNamespace:
    return SimpleNamespace(flag=env.word("flag"), tick=env.word("tick"), now=now_of(env))


def timed_wait_rearm(s: SimpleNamespace) -> tuple[bool, float, float]:
    """fastipc: ``while flag == 0: if not futex_wait(flag, 0, timeout): return False`` —
    each wait gets the full relative timeout again, so after a spurious wake-up (EINTR)
    at T/2 it asks the kernel to sleep until 1.5 T."""
    start = s.now()
    asked = 0.0
    while s.flag.load() == 0:
        asked = max(asked, s.now() - start + TIMEOUT)
        if not s.flag.wait(0, TIMEOUT):
            return False, s.now() - start, asked
    return True, s.now() - start, asked


def timed_wait_deadline(s: SimpleNamespace) -> tuple[bool, float, float]:
    """The fix: an absolute deadline; each wait gets what is left of it."""
    start = s.now()
    deadline = start + TIMEOUT
    asked = 0.0
    while s.flag.load() == 0:
        left = deadline - s.now()
        asked = max(asked, s.now() - start + left)
        if left <= 0 or not s.flag.wait(0, left):
            return s.flag.load() != 0, s.now() - start, asked
    return True, s.now() - start, asked


def ticker(s: SimpleNamespace) -> None:
    """Moves virtual time: its own timeout of T/2 fires first."""
    s.tick.wait(0, TICK)


def timed_scenario(name: str, wait: Any) -> Scenario:
    """W waits up to T for a flag nobody sets; a ticker's timer fires at T/2; one
    spurious wake-up may be injected: W must never ask the kernel to sleep past T.

    (The check is on the deadlines W asks for, not on when it returns: a relative
    timeout computed just before the call overruns by however long the task is
    descheduled in between, and the checker may fire the ticker's timer exactly there.)"""

    def final(s: SimpleNamespace, results: dict[str, Any]) -> bool:
        ok, took, asked = results["W"]
        check(not ok, "W saw the flag set, but nobody sets it")
        return check(asked <= TIMEOUT + 1e-6,
                     f"W asked FUTEX_WAIT to sleep until {asked:g} s after it began, with a "
                     f"{TIMEOUT:g} s timeout (it returned after {took:g} s)")

    return Scenario(name=name, setup=_timed_setup, tasks=[("W", wait), ("T", ticker)],
                    final=final, spurious=1)


# -- musl's pthread_once (before commit 0d0c2f40) and its fix ----------------------------------

MUSL_ONCE: Final = "musl commit 0d0c2f403446 (\"fix deadlock race in pthread_once\")"


def _once_setup(env: Any) -> SimpleNamespace:
    return SimpleNamespace(control=env.word("control"), waiters=env.word("waiters"),
                           runs=env.word("runs"))


def _once_wait(s: SimpleNamespace) -> None:
    """musl's ``__wait(control, &waiters, 1)`` (its 10,000-spin prelude left out)."""
    s.waiters.fetch_add(1)
    while s.control.load() == 1:
        s.control.wait(1)
    s.waiters.fetch_sub(1)


def _once_run(s: SimpleNamespace) -> bool:
    s.runs.fetch_add(1)  # init()
    s.control.store(2)
    if s.waiters.load():
        s.control.wake(2**31 - 1)
    return True


def once_swap(s: SimpleNamespace) -> bool:
    """musl before 0d0c2f40: ``switch (a_swap(control, 1))`` — a caller that arrives just
    after the runner finished swaps 2 back to 1 for a moment, and "the status was
    immediately changed back, but with no wake call, meaning that waiters which arrived
    during this short window could block forever"."""
    if s.control.load() == 2:
        return False
    while True:
        old = s.control.swap(1)
        if old == 0:
            return _once_run(s)
        if old == 1:
            _once_wait(s)
            continue
        s.control.store(2)  # old == 2: put it back -- without a wake
        return False


def once_cas(s: SimpleNamespace) -> bool:
    """The fix: ``a_cas(control, 0, 1)``, so a finished once is never reverted."""
    if s.control.load() == 2:
        return False
    while True:
        old = s.control.cas(0, 1)
        if old == 0:
            return _once_run(s)
        if old == 1:
            _once_wait(s)
            continue
        return False


def once_scenario(name: str, call: Any) -> Scenario:
    """Three callers of one pthread_once: the init runs once, and every caller returns."""

    def final(s: SimpleNamespace, results: dict[str, Any]) -> bool:
        check(s.runs.peek() == 1, f"init ran {s.runs.peek()} times")
        return check(sorted(results.values()) == [False, False, True],
                     f"pthread_once results {results}")

    return Scenario(name=name, setup=_once_setup,
                    tasks=[("T1", call), ("T2", call), ("T3", call)], final=final,
                    awaits={"control": lambda v: v != 1})


# -- the entries -----------------------------------------------------------------------------

ENTRIES = [
    Entry(
        "once_swap_reverts",
        once_scenario("once_swap_reverts", once_swap),
        f"{MUSL_ONCE}: pthread_once entered with a_swap(control, 1)",
        "T2 runs init; T1, which saw 0 before, swaps the finished 2 back to 1; T3 arrives, "
        "sees 1 and sleeps; T1 restores 2 without a wake",
        "lost-wakeup", 2, twin="once_cas",
    ),
    Entry(
        "once_cas",
        once_scenario("once_cas", once_cas),
        f"{MUSL_ONCE}, the fix: a_cas(control, 0, 1)",
        "a finished once stays 2",
        None, 2, twin="once_swap_reverts", pct=500,
    ),
    Entry(
        "semaphore_no_waiter_count",
        semaphore_scenario("semaphore_no_waiter_count", counted=False),
        f"{FASTIPC}, defect 3: Semaphore.post wakes only on a 0 -> n transition)",
        "W1 and W2 sleep on 0; P posts 0 -> 1 (wakes W1) and 1 -> 2 (wakes nobody); W1 "
        "takes one: W2 sleeps with a token there",
        "lost-wakeup", 0, twin="semaphore_waiter_count",
    ),
    Entry(
        "semaphore_waiter_count",
        semaphore_scenario("semaphore_waiter_count", counted=True),
        "a counting semaphore with a waiter count (the post wakes whenever anybody waits)",
        "waiters announce themselves before FUTEX_WAIT; the post reads the count after "
        "adding",
        None, 2, twin="semaphore_no_waiter_count", pct=500,
    ),
    Entry(
        "event_eagain_false",
        event_scenario("event_eagain_false", event_wait_eagain_false),
        f"{FASTIPC}, defect 5: NamedEvent.wait maps the futex's EAGAIN to False)",
        "S sets the event first; W's FUTEX_WAIT(0) fails with EAGAIN and W reports "
        "\"not set\"",
        "final", 0, twin="event_eagain_set",
    ),
    Entry(
        "event_eagain_set",
        event_scenario("event_eagain_set", event_wait_checked),
        "an event wait that re-checks the flag after every return (EAGAIN = changed)",
        "a set flag is reported as set, however the wait ended",
        None, 3, twin="event_eagain_false", pct=500,
    ),
    Entry(
        "timed_wait_rearm",
        timed_scenario("timed_wait_rearm", timed_wait_rearm),
        f"{FASTIPC}: \"the full relative timeout is re-armed after each spurious wake, "
        "so waits can overrun\")",
        "W waits T; the ticker moves time to T/2; an injected EINTR wakes W, which "
        "re-arms T and times out at 1.5 T",
        "final", 0, twin="timed_wait_deadline",
    ),
    Entry(
        "timed_wait_deadline",
        timed_scenario("timed_wait_deadline", timed_wait_deadline),
        "a timed wait against an absolute deadline (what is left after each wake-up)",
        "W times out at T whatever wakes it early",
        None, 2, twin="timed_wait_rearm", pct=500,
    ),
]
