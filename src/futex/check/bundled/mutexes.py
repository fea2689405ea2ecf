"""Mutexes on one futex word: Drepper's three takes, two broken unlocks, fastipc's owner
field, and a PI word unlocked by a plain store.

Every lock scenario runs the same critical section in each task: lock, ``inside += 1``,
``inside -= 1``, unlock, where ``inside`` is a checked word, so the invariant
``inside <= 1`` (mutual exclusion) is checked after every step; the final check wants
the lock free and nobody inside.  Word values of the 3-state locks: 0 free, 1 locked,
2 locked with (possible) waiters (Drepper, "Futexes Are Tricky", take 2).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from types import SimpleNamespace
from typing import Any

from futex.check.bundled._base import Entry, check, lock3, unlock2
from futex.check.runtime import Scenario
from futex.linux.abi import FUTEX_TID_MASK
from futex.word import FutexWord

__all__ = ["ENTRIES"]

Lock = Callable[[FutexWord], None]
NAMES = ("A", "B", "C")


# -- the algorithms ------------------------------------------------------------------------


def take1_lock(m: FutexWord) -> None:
    """Drepper take 1: ``while ((c = atomic_inc(val)) != 0) futex_wait(&val, c + 1)``.

    Every failed attempt adds one, and a wait that fails (EAGAIN, another task added one
    in between) adds another: the word counts past the number of tasks and, given
    enough of them, wraps to 0 — two holders.  The unlock also calls the kernel on every
    release (a futile FUTEX_WAKE when nobody waits)."""
    while True:
        c = m.fetch_add(1)
        if c == 0:
            return
        m.wait(c + 1)


def take1_unlock(m: FutexWord) -> None:
    """Drepper take 1: ``val = 0; futex_wake(&val, 1)`` — always a system call."""
    m.store(0)
    m.wake(1)


def take2_lock(m: FutexWord) -> None:
    """Drepper take 2: cmpxchg(0, 1); else mark 2 (cmpxchg(1, 2)) and sleep on 2, then
    retry with cmpxchg(0, 2): a task that slept takes the lock as contended."""
    c = m.cas(0, 1)
    if c == 0:
        return
    while True:
        if c == 2 or m.cas(1, 2) != 0:
            m.wait(2)
        c = m.cas(0, 2)
        if c == 0:
            return


def unlock_no_wake(m: FutexWord) -> None:
    """Take 2's unlock without its FUTEX_WAKE: the word goes to 0, the sleeper stays."""
    if m.fetch_sub(1) != 1:
        m.store(0)


def two_state_lock(m: FutexWord) -> None:
    """A two-state lock: ``while cas(0, 1) != 0: wait(1)`` — it never marks 2."""
    while m.cas(0, 1) != 0:
        m.wait(1)


def two_state_unlock(m: FutexWord) -> None:
    """Wakes only if it saw 2 — which nobody writes: a sleeper is never woken."""
    if m.swap(0) == 2:
        m.wake(1)


def pi_lock(m: FutexWord) -> None:
    """A PI lock: FUTEX_LOCK_PI (the kernel takes a free word with the caller's TID, or
    sets FUTEX_WAITERS and sleeps; glibc tries ``cmpxchg(0, tid)`` in user space first,
    which leaves the same word)."""
    m.lock_pi()


def pi_unlock_store0(m: FutexWord) -> None:
    """The bug: a PI word released by a plain ``store(0)``.  A waiter queued in
    FUTEX_LOCK_PI (the word then holds ``tid | FUTEX_WAITERS``) is never handed the
    lock: only FUTEX_UNLOCK_PI does that."""
    m.store(0)


def pi_unlock(m: FutexWord) -> None:
    """glibc's PI unlock: ``cmpxchg(tid, 0)`` while nobody waits, else FUTEX_UNLOCK_PI
    (the kernel hands the lock to the top waiter)."""
    tid = m.load() & FUTEX_TID_MASK  # ours: we hold it
    if m.cas(tid, 0) != tid:
        m.unlock_pi()


# -- lock scenarios ------------------------------------------------------------------------


def _lock_setup(env: Any) -> SimpleNamespace:
    return SimpleNamespace(m=env.word("m"), inside=env.word("inside"))


def _critical(lock: Lock, unlock: Lock, s: SimpleNamespace) -> None:
    lock(s.m)
    s.inside.fetch_add(1)
    s.inside.fetch_sub(1)
    unlock(s.m)


def lock_scenario(
    name: str, lock: Lock, unlock: Lock, *, tasks: int = 2, bound: int | None = None,
    pi: bool = False,
) -> Scenario:
    """``tasks`` tasks each take ``lock`` once around a checked critical section.

    ``bound``: the word may never exceed it (the take-1 counter's proxy for the 2^32
    wrap).  ``pi``: the word holds a TID (free = 0, any TID bits = held)."""

    def invariant(s: SimpleNamespace) -> bool:
        inside = s.inside.peek()
        check(inside <= 1, f"mutual exclusion: {inside} tasks inside the critical section")
        if bound is not None:
            v = s.m.peek()
            check(v <= bound, f"the lock word counted to {v} with {tasks} tasks (> {bound}): "
                  "enough tasks wrap it to 0 and two hold the lock")
        return True

    def final(s: SimpleNamespace, results: dict[str, Any]) -> bool:
        v = s.m.peek()
        held = v & FUTEX_TID_MASK if pi else v
        check(held == 0, f"the lock is still held at the end (m = {v:#x})")
        return check(s.inside.peek() == 0, "a task is still inside the critical section")

    return Scenario(
        name=name,
        setup=_lock_setup,
        tasks=[(NAMES[i], partial(_critical, lock, unlock)) for i in range(tasks)],
        invariant=invariant,
        final=final,
        awaits={"m": (lambda v: v & FUTEX_TID_MASK == 0) if pi else (lambda v: v == 0)},
    )


# -- fastipc's owner field -----------------------------------------------------------------


def _owner_setup(env: Any) -> SimpleNamespace:
    return SimpleNamespace(state=env.word("state"), owner=env.word("owner"),
                           inside=env.word("inside"))


def _owner_body(release_owner_first: bool, me: int, s: SimpleNamespace) -> None:
    lock3(s.state)
    s.owner.store(me)
    s.inside.fetch_add(1)
    s.inside.fetch_sub(1)
    if s.owner.load() != me:
        raise RuntimeError("cannot release a mutex not owned by this process")
    if release_owner_first:  # the fix: clear the owner while the lock is still ours
        s.owner.store(0)
        if s.state.swap(0) == 2:
            s.state.wake(1)
    else:  # fastipc: xchg(state, 0), then owner = 0 — possibly over the next holder's
        old = s.state.swap(0)
        s.owner.store(0)
        if old == 2:
            s.state.wake(1)


def owner_scenario(name: str, *, fixed: bool) -> Scenario:
    """Two "processes" (ids 1 and 2) lock, check the owner field, and unlock."""

    def final(s: SimpleNamespace, results: dict[str, Any]) -> bool:
        check(s.state.peek() == 0, f"the lock is still held (state = {s.state.peek()})")
        return check(s.owner.peek() == 0, f"the owner field says {s.owner.peek()} at the end")

    return Scenario(
        name=name,
        setup=_owner_setup,
        tasks=[("A", partial(_owner_body, fixed, 1)), ("B", partial(_owner_body, fixed, 2))],
        invariant=lambda s: check(s.inside.peek() <= 1, "mutual exclusion violated"),
        final=final,
        awaits={"state": lambda v: v == 0},
    )


# -- the entries -----------------------------------------------------------------------------

DREPPER = 'Drepper, "Futexes Are Tricky" (2011)'

ENTRIES = [
    Entry(
        "mutex_unlock_no_wake",
        lock_scenario("mutex_unlock_no_wake", take2_lock, unlock_no_wake),
        f"{DREPPER}, take 2 with the FUTEX_WAKE of its unlock removed",
        "A locks; B marks 2 and sleeps; A's unlock stores 0 without waking: B sleeps on a "
        "free lock",
        "lost-wakeup", 1, twin="drepper_take2",
    ),
    Entry(
        "mutex_two_state",
        lock_scenario("mutex_two_state", two_state_lock, two_state_unlock),
        "a two-state futex lock (0/1) whose unlock wakes only on the contended value 2, "
        f"which no locker writes (checker_design §6; the state take 2 adds, {DREPPER})",
        "B sleeps on 1; A's unlock swaps 0, sees 1, wakes nobody",
        "lost-wakeup", 1, twin="drepper_take2",
    ),
    Entry(
        "drepper_take1",
        lock_scenario("drepper_take1", take1_lock, take1_unlock, tasks=3, bound=3),
        f"{DREPPER}, take 1 (\"Mutex, Take 1\"): atomic_inc + futex_wait(c + 1)",
        "B and C increment, B's wait fails (EAGAIN) and it increments again: the counter "
        "passes the number of tasks (the 2^32 wrap's proxy); every unlock calls the kernel",
        "invariant", 2, twin="drepper_take2",
    ),
    Entry(
        "drepper_take2",
        lock_scenario("drepper_take2", take2_lock, unlock2),
        f"{DREPPER}, take 2 (\"Mutex, Take 2\")",
        "3-state lock: waiters mark 2, the unlock wakes iff it saw 2",
        None, 4, twin="mutex_unlock_no_wake", pct=500,
    ),
    Entry(
        "drepper_take3",
        lock_scenario("drepper_take3", lock3, unlock2),
        f"{DREPPER}, take 3 (\"Mutex, Take 3\"): xchg(2) instead of repeated cmpxchg",
        "take 2 with one xchg per attempt",
        None, 4, twin="drepper_take1", pct=500,
    ),
    Entry(
        "drepper_take2_x3",
        lock_scenario("drepper_take2_x3", take2_lock, unlock2, tasks=3, bound=3),
        f"{DREPPER}, take 2, with take 1's three tasks and counter bound",
        "take 2 never counts past 2",
        None, 2, twin="drepper_take1", pct=500,
    ),
    Entry(
        "owner_field_race",
        owner_scenario("owner_field_race", fixed=False),
        "fastipc 0.1.5 Mutex.release: xchg(state, 0) then owner = 0 (reference/"
        "python_peers.md §2, defect 2: 1 run in 5 of the contended benchmark)",
        "A releases the state; B acquires and records itself; A's owner = 0 erases it: "
        "B's release raises \"not owned by this process\"",
        "exception", 2, twin="owner_field_cleared_first",
    ),
    Entry(
        "owner_field_cleared_first",
        owner_scenario("owner_field_cleared_first", fixed=True),
        "fastipc's Mutex with the release order fixed: owner = 0 before xchg(state, 0)",
        "the owner field is written only by the holder",
        None, 4, twin="owner_field_race", pct=500,
    ),
    Entry(
        "pi_unlock_store0",
        lock_scenario("pi_unlock_store0", pi_lock, pi_unlock_store0, pi=True),
        "a PI futex released by a plain store (futex(2): \"FUTEX_UNLOCK_PI ... wakes the top "
        "waiter\"; the fast path may only cmpxchg(tid, 0) while FUTEX_WAITERS is clear)",
        "A holds; B's FUTEX_LOCK_PI sets FUTEX_WAITERS and sleeps; A stores 0: B is never "
        "handed the lock",
        "lost-wakeup", 1, twin="pi_unlock_pi",
    ),
    Entry(
        "pi_unlock_pi",
        lock_scenario("pi_unlock_pi", pi_lock, pi_unlock, pi=True),
        "glibc's PI mutex unlock: cmpxchg(tid, 0), else FUTEX_UNLOCK_PI",
        "the kernel hands the lock to the top waiter",
        None, 2, twin="pi_unlock_store0", pct=500,
    ),
]
