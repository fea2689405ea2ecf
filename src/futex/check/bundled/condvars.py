"""Condition variables on futex words: a sequence read on the wrong side of the unlock,
musl's flag ABA, and a broadcast that requeues onto an uncontended mutex.

Every scenario protects its predicate words with a correct mutex on word ``m``
(Drepper's take 3, :func:`~futex.check.bundled._base.lock3`) and uses the condition
variable the way POSIX requires: the predicate is read and written under the mutex, and
a waiter loops on it.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Final

from futex.check.bundled._base import Entry, check, lock3, lock_contended, unlock2
from futex.check.runtime import Scenario
from futex.word import ALL, FutexWord

__all__ = ["ENTRIES"]

Wait = Callable[[SimpleNamespace, float | None], None]
Notify = Callable[[SimpleNamespace], None]

# -- a sequence condvar: read the sequence before or after unlocking --------------------------


def seq_wait_after_unlock(s: SimpleNamespace, timeout: float | None = None) -> None:
    """The naive wait: unlock, *then* read the sequence.  A signal that lands between
    the two is already counted in what the waiter reads, so it sleeps through it."""
    unlock2(s.m)
    seq = s.cv.load()
    s.cv.wait(seq, timeout)
    lock3(s.m)


def seq_wait_before_unlock(s: SimpleNamespace, timeout: float | None = None) -> None:
    """Read the sequence while the mutex is held, then unlock and sleep on that value:
    any signal after the unlock changes the word, and FUTEX_WAIT returns EAGAIN."""
    seq = s.cv.load()
    unlock2(s.m)
    s.cv.wait(seq, timeout)
    lock3(s.m)


def seq_signal(s: SimpleNamespace) -> None:
    s.cv.fetch_add(1)
    s.cv.wake(1)


def seq_broadcast(s: SimpleNamespace) -> None:
    s.cv.fetch_add(1)
    s.cv.wake(ALL)


def _seq_setup(env: Any) -> SimpleNamespace:
    return SimpleNamespace(m=env.word("m"), cv=env.word("cv"), go=env.word("go"))


def seq_scenario(name: str, wait: Wait) -> Scenario:
    """W waits for ``go``; S sets it under the mutex, unlocks, and signals."""

    def waiter(s: SimpleNamespace) -> bool:
        lock3(s.m)
        while s.go.load() == 0:
            wait(s, None)
        unlock2(s.m)
        return True

    def setter(s: SimpleNamespace) -> None:
        lock3(s.m)
        s.go.store(1)
        unlock2(s.m)
        seq_signal(s)

    return Scenario(name=name, setup=_seq_setup, tasks=[("W", waiter), ("S", setter)],
                    final=_mutex_free)


def _mutex_free(s: SimpleNamespace, results: dict[str, Any]) -> bool:
    return check(s.m.peek() == 0, f"the mutex is still held at the end (m = {s.m.peek()})")


# -- musl's flag condvar (before commit 97c5b5a8) and its fix ---------------------------------

#: W2's timeout (virtual seconds): its deadline has already passed, so its wait only
#: polls -- but it still stores ``block = 1`` first.
GIVE_UP: Final = 0.0


def flag_wait(s: SimpleNamespace, timeout: float | None, token: int) -> None:
    """musl before 97c5b5a8: ``block = 1``, unlock, ``futex_wait(&block, 1)``, relock.
    The signal stores 0; a later waiter's ``block = 1`` hides that 1 -> 0 from an
    earlier waiter that has not reached its FUTEX_WAIT yet (ABA)."""
    s.block.store(1)
    unlock2(s.m)
    s.block.wait(1, timeout)
    lock3(s.m)


def token_wait(s: SimpleNamespace, timeout: float | None, token: int) -> None:
    """musl 97c5b5a8's fix: store the caller's own token (musl: its TID), which no other
    task writes: if ``block`` still holds it, no signal has happened."""
    s.block.store(token)
    unlock2(s.m)
    s.block.wait(token, timeout)
    lock3(s.m)


def block_broadcast(s: SimpleNamespace) -> None:
    s.block.store(0)
    s.block.wake(ALL)


def _flag_setup(env: Any) -> SimpleNamespace:
    return SimpleNamespace(m=env.word("m"), block=env.word("block"), go1=env.word("go1"),
                           go2=env.word("go2"))


def flag_scenario(name: str, wait: Callable[[SimpleNamespace, float | None, int], None],
                  ) -> Scenario:
    """W1 waits for ``go1``; S sets it and broadcasts; W2 checks ``go2`` (nobody sets
    it) with one timed wait whose deadline has passed (a poll).  W1 must finish."""

    def w1(s: SimpleNamespace) -> None:
        lock3(s.m)
        while s.go1.load() == 0:
            wait(s, None, 1)
        unlock2(s.m)

    def setter(s: SimpleNamespace) -> None:
        lock3(s.m)
        s.go1.store(1)
        unlock2(s.m)
        block_broadcast(s)

    def w2(s: SimpleNamespace) -> None:
        lock3(s.m)
        if s.go2.load() == 0:
            wait(s, GIVE_UP, 2)  # one timed wait (a poll), then give up
        unlock2(s.m)

    return Scenario(name=name, setup=_flag_setup, tasks=[("W1", w1), ("S", setter), ("W2", w2)],
                    final=_mutex_free)


# -- broadcast by requeue ---------------------------------------------------------------------


def requeue_wait(s: SimpleNamespace, timeout: float | None = None) -> None:
    """Sequence-before-unlock wait; it may come back requeued onto ``m``, so it relocks
    marking ``m`` contended (its own unlock must then wake the others moved there)."""
    seq = s.cv.load()
    unlock2(s.m)
    s.cv.wait(seq, timeout)
    lock_contended(s.m)


def requeue_broadcast_uncontended(s: SimpleNamespace) -> None:
    """Under the mutex: bump the sequence and move every waiter onto ``m`` (none woken:
    they would only find the mutex held).  The bug: ``m`` still says 1, "no waiters", so
    the unlock that follows wakes nobody."""
    seq = s.cv.fetch_add(1) + 1
    try:
        s.cv.cmp_requeue(s.m, seq, 0, ALL)
    except BlockingIOError:  # the sequence moved on: wake everybody instead
        s.cv.wake(ALL)


def requeue_broadcast_contended(s: SimpleNamespace) -> None:
    """The fix: mark ``m`` contended (2) before requeueing onto it, so the unlock wakes
    one requeued waiter, which relocks as contended and wakes the next."""
    s.m.store(2)  # we hold m: 1 or 2 -> 2
    seq = s.cv.fetch_add(1) + 1
    try:
        s.cv.cmp_requeue(s.m, seq, 0, ALL)
    except BlockingIOError:
        s.cv.wake(ALL)


def requeue_scenario(name: str, broadcast: Notify) -> Scenario:
    """W waits for ``go``; S sets it and broadcasts under the mutex, then unlocks."""

    def waiter(s: SimpleNamespace) -> bool:
        lock3(s.m)
        while s.go.load() == 0:
            requeue_wait(s)
        unlock2(s.m)
        return True

    def setter(s: SimpleNamespace) -> None:
        lock3(s.m)
        s.go.store(1)
        broadcast(s)
        unlock2(s.m)

    return Scenario(name=name, setup=_seq_setup, tasks=[("W", waiter), ("S", setter)],
                    final=_mutex_free, awaits={"m": lambda v: v == 0})


# -- glibc's condvar before 2.25: a later waiter steals a signal (BZ 13165) -------------------


def _steal_setup(env: Any) -> SimpleNamespace:
    return SimpleNamespace(
        lock=env.word("lock"), total=env.word("total"), wakeup=env.word("wakeup"),
        woken=env.word("woken"), futex=env.word("futex"), cv=env.word("cv"),
        in_a=env.word("inA"), in_c=env.word("inC"), in_d=env.word("inD"), s1=env.word("s1"),
    )


def _announce(flag: FutexWord) -> None:
    """The scenario's monitor, not the algorithm's: "this task is now enrolled"."""
    flag.store(1)
    flag.wake(ALL)


def _gate(flag: FutexWord) -> None:
    """Sleep until ``flag`` is set (orders the signals after the enrollments)."""
    while flag.load() == 0:
        flag.wait(0)


def glibc_old_wait(s: SimpleNamespace, timeout: float | None, enrolled: FutexWord) -> None:
    """glibc < 2.25 ``pthread_cond_(timed)wait`` (nptl, simplified: no broadcast
    sequence, no cancellation, no user mutex): enroll under the internal lock
    (``total_seq++``, ``futex++``, ``seq = wakeup_seq``), then sleep on ``futex`` until
    ``wakeup_seq != seq`` and ``woken_seq != wakeup_seq`` -- a signal nobody consumed yet,
    whichever waiter it was for; a timeout counts itself as a signal.  Then ``woken_seq++``.
    """
    lock3(s.lock)
    s.total.fetch_add(1)
    s.futex.fetch_add(1)
    _announce(enrolled)
    seq = s.wakeup.load()
    while True:
        value = s.futex.load()
        unlock2(s.lock)
        woke = s.futex.wait(value, timeout)
        lock3(s.lock)
        val = s.wakeup.load()
        if val != seq and s.woken.load() != val:
            break  # consume a signal -- possibly one sent before this task enrolled
        if not woke:  # ETIMEDOUT: count it as a wake-up of its own
            s.wakeup.fetch_add(1)
            s.futex.fetch_add(1)
            break
    s.woken.fetch_add(1)
    unlock2(s.lock)


def glibc_old_signal(s: SimpleNamespace) -> None:
    """glibc < 2.25 ``pthread_cond_signal``: if anybody is enrolled and not yet
    signalled, ``wakeup_seq++``, ``futex++``, FUTEX_WAKE one."""
    lock3(s.lock)
    if s.total.load() > s.wakeup.load():
        s.wakeup.fetch_add(1)
        s.futex.fetch_add(1)
        s.futex.wake(1)
    unlock2(s.lock)


def seq_enrolled_wait(s: SimpleNamespace, timeout: float | None, enrolled: FutexWord) -> None:
    """The sequence condvar: a signal changes ``cv``, so it reaches exactly the tasks that
    read ``cv`` before it (FUTEX_WAKE wakes one queued there; EAGAIN the rest)."""
    seq = s.cv.load()
    _announce(enrolled)
    s.cv.wait(seq, timeout)


def steal_scenario(name: str, wait: Callable[[SimpleNamespace, float | None, FutexWord], None],
                   signal: Notify) -> Scenario:
    """A enrolls; B signals once (A is the only waiter: A must wake); then C enrolls and
    D makes a timed wait whose deadline has passed; B signals again.  Two signals,
    three waiters: C or D may be left out (D times out), never A."""

    def a(s: SimpleNamespace) -> None:
        wait(s, None, s.in_a)

    def b(s: SimpleNamespace) -> None:
        _gate(s.in_a)
        signal(s)
        _announce(s.s1)
        _gate(s.in_c)
        _gate(s.in_d)
        signal(s)

    def c(s: SimpleNamespace) -> None:
        _gate(s.s1)
        wait(s, None, s.in_c)

    def d(s: SimpleNamespace) -> None:
        _gate(s.s1)
        wait(s, 0.0, s.in_d)

    # A last: the default order lets the late waiters run before A leaves its wait
    return Scenario(name=name, setup=_steal_setup,
                    tasks=[("C", c), ("D", d), ("B", b), ("A", a)])


# -- the entries -----------------------------------------------------------------------------

MUSL: Final = "musl commit 97c5b5a87c3d (\"fix ABA race in cond vars\")"

GLIBC: Final = ("glibc BZ 13165 (\"pthread_cond_wait() can consume a signal that was sent "
                 "before it started waiting\"; cf. BZ 12875), fixed by glibc 2.25's new condvar")

ENTRIES = [
    Entry(
        "condvar_signal_steal",
        steal_scenario("condvar_signal_steal", glibc_old_wait, glibc_old_signal),
        f"{GLIBC}: the pre-2.25 nptl algorithm (total/wakeup/woken sequences)",
        "B signals A; before A leaves its wait, C enrolls, B signals again (waking C), D's "
        "expired wait consumes the first signal: woken == wakeup, A sleeps again for good",
        "deadlock", 1, twin="condvar_signal_seq", pct_depth=3,
    ),
    Entry(
        "condvar_signal_seq",
        steal_scenario("condvar_signal_seq", seq_enrolled_wait, seq_signal),
        "a sequence condvar: a signal reaches only the tasks enrolled before it",
        "A is always woken by the first signal",
        None, 0, twin="condvar_signal_steal", pct=1000,
    ),
    Entry(
        "condvar_seq_after_unlock",
        seq_scenario("condvar_seq_after_unlock", seq_wait_after_unlock),
        "the naive sequence condvar (\"Futexes Are Tricky\"'s event-counter pattern read "
        "on the wrong side of the unlock)",
        "W finds go = 0 and unlocks; S sets go, bumps the sequence and wakes nobody; W "
        "reads the new sequence and sleeps on it forever",
        "deadlock", 1, twin="condvar_seq_before_unlock",
    ),
    Entry(
        "condvar_seq_before_unlock",
        seq_scenario("condvar_seq_before_unlock", seq_wait_before_unlock),
        "a sequence condvar that reads the sequence under the mutex",
        "a signal after the unlock changes the word: W's FUTEX_WAIT returns EAGAIN",
        None, 3, twin="condvar_seq_after_unlock", pct=500,
    ),
    Entry(
        "condvar_flag_aba",
        flag_scenario("condvar_flag_aba", flag_wait),
        f"{MUSL}: \"a waiter could miss the 1->0 transition of block if another thread "
        "set block to 1 again after the signal function set block to 0\"",
        "W1 sets block = 1 and unlocks; S broadcasts (block = 0, nobody asleep); W2 sets "
        "block = 1 and polls; W1's FUTEX_WAIT(block, 1) sleeps for good",
        "deadlock", 2, twin="condvar_token_aba",
    ),
    Entry(
        "condvar_token_aba",
        flag_scenario("condvar_token_aba", token_wait),
        f"{MUSL}, the fix: each waiter stores its own token (its TID) in block",
        "a later waiter's store changes the word: the earlier waiter's FUTEX_WAIT returns",
        None, 2, twin="condvar_flag_aba", pct=500,
    ),
    Entry(
        "condvar_requeue_uncontended",
        requeue_scenario("condvar_requeue_uncontended", requeue_broadcast_uncontended),
        "broadcast by FUTEX_CMP_REQUEUE onto the mutex without marking it contended (why "
        "glibc's requeueing broadcast relies on waiters relocking with the contended "
        "value 2; futex(2): FUTEX_CMP_REQUEUE)",
        "W sleeps on cv; S locks, bumps the sequence, requeues W onto m and unlocks "
        "1 -> 0 without a wake: W sleeps on a free mutex",
        "lost-wakeup", 0, twin="condvar_requeue_contended",
    ),
    Entry(
        "condvar_requeue_contended",
        requeue_scenario("condvar_requeue_contended", requeue_broadcast_contended),
        "broadcast by FUTEX_CMP_REQUEUE after storing 2 in the held mutex",
        "the unlock sees 2 and wakes the requeued waiter",
        None, 4, twin="condvar_requeue_uncontended", pct=500,
    ),
]
