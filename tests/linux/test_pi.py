"""PI futexes: FUTEX_LOCK_PI / LOCK_PI2 / TRYLOCK_PI / UNLOCK_PI and priority inheritance.

Every test names its source:

- **gVisor** ``test/syscalls/linux/futex.cc`` PIBasic, PIConcurrency, PIWaiters, PITryLock,
  PITryLockConcurrency (the project's notes: ``shared/reference/gvisor.md`` 4.2, rows
  20-24), private and shared like the original's ``SharedPrivate`` instantiation.  Where
  gVisor differs from Linux (gvisor.md 2.8-2.9) these tests follow Linux.
- **Linux**: ``kernel/futex/pi.c`` (``futex_lock_pi_atomic``, ``attach_to_pi_state``'s
  validity table, ``futex_unlock_pi`` / ``wake_futex_pi``, ``fixup_pi_state_owner``,
  ``exit_pi_state_list``), ``futex(2)`` ERRORS (zircon_liteos_linux.md C.4, C.5).  Answers
  marked *host* were measured on this machine's kernel (Linux 6.18, x86-64) with
  ``tests/support/hostfutex.py`` before being written down here.
- **rt_mutex** (``kernel/locking/rtmutex.c``): priority inheritance scenarios of our own.
  ``Task.prio`` is Linux's ``task->prio`` (``/proc/<tid>/stat`` field 18 is ``prio - 100``):
  ``rt_mutex_setprio`` makes it ``min(normal_prio, top_pi_waiter->task->prio)``, where the
  top waiter is chosen in waiter order (RT priority, then FIFO: every non-RT waiter counts
  as DEFAULT_PRIO for the *order*).

Blocking scenarios use the cooperative form (``syscall_futex_nb`` -> ``PendingWait``); real
threads only where concurrency is the point.  Time is a ManualClock.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import futex.linux.pi as linux_pi
from futex.kernel import ClockId, ManualClock
from futex.linux import LinuxKernel, PendingWait, Process, Task, abi
from futex.memory import PROT_NONE, PROT_READ, PROT_WRITE
from tests.support import STATE_TIMEOUT, Blocking, wait_until

LOCK_PI = abi.FUTEX_LOCK_PI
LOCK_PI2 = abi.FUTEX_LOCK_PI2
TRYLOCK_PI = abi.FUTEX_TRYLOCK_PI
UNLOCK_PI = abi.FUTEX_UNLOCK_PI
PRIV = abi.FUTEX_PRIVATE_FLAG
CLOCK_RT = abi.FUTEX_CLOCK_REALTIME
W = abi.FUTEX_WAITERS
OD = abi.FUTEX_OWNER_DIED
TID = abi.FUTEX_TID_MASK
SEC = 10**9
#: A TID no task has (the host measurements used the same value).
NO_TASK = 0x3FFFFFF0

EDEADLK = -abi.EDEADLK
EPERM = -abi.EPERM
ESRCH = -abi.ESRCH
EINVAL = -abi.EINVAL
EFAULT = -abi.EFAULT
EAGAIN = -abi.EAGAIN
ETIMEDOUT = -abi.ETIMEDOUT
ENOSYS = -abi.ENOSYS


def pending(r: int | PendingWait) -> PendingWait:
    assert isinstance(r, PendingWait), f"expected the call to block, it returned {r}"
    return r


def now(r: int | PendingWait) -> int:
    assert isinstance(r, int), f"expected the call to return at once, it blocked: {r!r}"
    return r


class Lab:
    """One process, one PI word (``a``), and the calls on it.

    ``private``: private ops on a MAP_PRIVATE page; else shared ops (no
    FUTEX_PRIVATE_FLAG) on a MAP_SHARED page.
    """

    def __init__(self, kernel: LinuxKernel, private: bool) -> None:
        self.kernel = kernel
        clock = kernel.clock
        assert isinstance(clock, ManualClock)
        self.clock = clock
        self.private = private
        self.p: Process = kernel.new_process()
        self.fl = PRIV if private else 0
        self.page = self.p.mmap(4096, shared=not private)
        self.a = self.page
        self.b = self.page + 64  # a second word on the same page
        self._scratch = self.p.mmap(4096)
        self.tasks: list[Task] = []

    # -- tasks and memory ---------------------------------------------------------------------

    def task(self, policy: int = abi.SCHED_OTHER, priority: int = 0, nice: int = 0) -> Task:
        t = self.p.new_task(policy=policy, priority=priority, nice=nice)
        self.tasks.append(t)
        return t

    def rt(self, priority: int) -> Task:
        return self.task(abi.SCHED_FIFO, priority)

    def word(self, addr: int | None = None) -> int:
        return self.p.load_u32(self.a if addr is None else addr)

    def set(self, value: int, addr: int | None = None) -> None:
        self.p.store_u32(self.a if addr is None else addr, value)

    def timespec(self, sec: int, nsec: int = 0) -> int:
        self.p.write(self._scratch, struct.pack("<qq", sec, nsec))
        return self._scratch

    def realtime_in(self, ns: int) -> int:
        """A timespec pointer: absolute CLOCK_REALTIME ``ns`` from now."""
        t = self.clock.now(ClockId.REALTIME) + ns
        return self.timespec(t // SEC, t % SEC)

    def monotonic_in(self, ns: int) -> int:
        t = self.clock.now(ClockId.MONOTONIC) + ns
        return self.timespec(t // SEC, t % SEC)

    # -- calls ----------------------------------------------------------------------------------

    def call(
        self, t: Task, cmd: int, addr: int | None = None, utime: int = 0, extra: int = 0
    ) -> int | PendingWait:
        return t.syscall_futex_nb(self.a if addr is None else addr, cmd | self.fl | extra, 0,
                                  utime, 0, 0)

    def lock(self, t: Task, addr: int | None = None, utime: int = 0) -> int | PendingWait:
        return self.call(t, LOCK_PI, addr, utime)

    def blocks(self, t: Task, addr: int | None = None, utime: int = 0,
               cmd: int = LOCK_PI) -> PendingWait:
        return pending(self.call(t, cmd, addr, utime))

    def trylock(self, t: Task, addr: int | None = None) -> int:
        return now(self.call(t, TRYLOCK_PI, addr))

    def unlock(self, t: Task, addr: int | None = None) -> int:
        return now(self.call(t, UNLOCK_PI, addr))

    # -- gVisor's helpers: the user-space CAS first, the system call if it fails ----------

    def ulock(self, t: Task, trylock: bool = False) -> int:
        if self.p.cas_u32(self.a, 0, t.tid) == 0:
            return 0
        return t.syscall_futex(self.a, (TRYLOCK_PI if trylock else LOCK_PI) | self.fl, 0, 0, 0, 0)

    def uunlock(self, t: Task) -> int:
        if self.p.cas_u32(self.a, t.tid, 0) == t.tid:
            return 0
        return t.syscall_futex(self.a, UNLOCK_PI | self.fl, 0, 0, 0, 0)

    # -- observation ----------------------------------------------------------------------------

    def queued(self) -> int:
        return self.p.futex.stats().queued

    def check(self) -> None:
        """PI invariants of every task the test made."""
        for t in self.tasks:
            self.p.futex.pi.check_task(t)


@pytest.fixture(params=[True, False], ids=["private", "shared"])
def lab(kernel: LinuxKernel, request: pytest.FixtureRequest) -> Iterator[Lab]:
    x = Lab(kernel, request.param)
    yield x
    x.check()


@pytest.fixture
def plab(kernel: LinuxKernel) -> Iterator[Lab]:
    """Private only: the priority-inheritance scenarios, where the key kind is beside the
    point."""
    x = Lab(kernel, True)
    yield x
    x.check()


def run_threads(fns: list[Callable[[], Any]]) -> list[Any]:
    """Start every ``fn`` on its own thread at once (a barrier) and return their results."""
    barrier = threading.Barrier(len(fns))

    def gated(fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            barrier.wait(STATE_TIMEOUT)
            return fn()

        return run

    runs = [Blocking(gated(fn)) for fn in fns]
    return [r.result() for r in runs]


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


# =====================================================================================
# Linux: errors and the word protocol
# =====================================================================================


@pytest.mark.parametrize("cmd", [LOCK_PI, LOCK_PI2, TRYLOCK_PI], ids=["LOCK_PI", "LOCK_PI2",
                                                                      "TRYLOCK_PI"])
def test_owner_gets_edeadlk(lab: Lab, cmd: int) -> None:
    """Linux futex_lock_pi_atomic: the word's TID is the caller's -> EDEADLK, whatever the
    other bits, the word untouched (host)."""
    t = lab.task()
    for bits in (0, W, OD, W | OD):
        lab.set(t.tid | bits)
        assert now(lab.call(t, cmd)) == EDEADLK, hex(bits)
        assert lab.word() == t.tid | bits
    # checked before an already expired deadline matters (host)
    lab.set(t.tid)
    if cmd != TRYLOCK_PI:
        past = lab.realtime_in(-SEC) if cmd == LOCK_PI else lab.monotonic_in(-SEC)
        assert now(lab.call(t, cmd, utime=past)) == EDEADLK
    assert lab.queued() == 0


def test_unlock_by_non_owner_is_eperm(lab: Lab) -> None:
    """Linux futex_unlock_pi: the word's TID is not the caller's -> EPERM, word untouched
    (host: word 0, another TID), also while the owner has kernel waiters."""
    owner, waiter, other = lab.task(), lab.task(), lab.task()
    for word in (0, W, OD, owner.tid, owner.tid | W, owner.tid | OD, NO_TASK):
        lab.set(word)
        assert lab.unlock(other) == EPERM, hex(word)
        assert lab.word() == word
    lab.set(owner.tid)
    pw = lab.blocks(waiter)
    assert lab.unlock(other) == EPERM
    assert lab.word() == owner.tid | W
    assert not pw.done()
    assert lab.unlock(owner) == 0
    assert pw.result() == 0
    assert lab.unlock(waiter) == 0


@pytest.mark.parametrize("cmd", [LOCK_PI, LOCK_PI2, TRYLOCK_PI], ids=["LOCK_PI", "LOCK_PI2",
                                                                      "TRYLOCK_PI"])
def test_tid_naming_no_task_is_esrch_and_keeps_waiters(lab: Lab, cmd: int) -> None:
    """Linux attach_to_pi_owner -> handle_exit_race: no task has the word's TID -> ESRCH;
    FUTEX_WAITERS, set before the lookup, stays (host: 0x3ffffff0 -> 0xbffffff0; with
    OWNER_DIED 0xfffffff0).  Nothing is queued."""
    t = lab.task()
    gone = lab.task()
    gone_tid = gone.tid
    gone.exit()
    lab.tasks.remove(gone)
    for tid in (NO_TASK, gone_tid):
        for bits in (0, OD, W):
            lab.set(tid | bits)
            assert now(lab.call(t, cmd)) == ESRCH, (tid, hex(bits))
            assert lab.word() == tid | bits | W
            assert lab.queued() == 0
    assert t.pi_states == [] and t.pi_blocked_on is None


def test_exited_owner_without_waiters_is_esrch(lab: Lab) -> None:
    """Linux: an owner that took the lock in user space and exited leaves its TID in the
    word; nothing in the kernel knows it, so LOCK_PI finds no task -> ESRCH."""
    owner, t = lab.task(), lab.task()
    assert lab.ulock(owner) == 0
    owner.exit()
    lab.tasks.remove(owner)
    assert now(lab.lock(t)) == ESRCH
    assert lab.word() == owner.tid | W


def test_plain_waiter_on_the_word_makes_pi_ops_einval(lab: Lab) -> None:
    """Linux attach_to_pi_state row [3] and futex_unlock_pi: the key's top waiter is a
    plain FUTEX_WAIT waiter (no pi_state) -> EINVAL for LOCK_PI, LOCK_PI2, TRYLOCK_PI and
    UNLOCK_PI; the word untouched; a dead TID gives EINVAL, not ESRCH (host).  EDEADLK is
    checked before."""
    t, waiter = lab.task(), lab.task()
    lab.set(0)
    pw = pending(waiter.syscall_futex_nb(lab.a, abi.FUTEX_WAIT | lab.fl, 0, 0, 0, 0))
    for cmd in (LOCK_PI, LOCK_PI2, TRYLOCK_PI):
        assert now(lab.call(t, cmd)) == EINVAL
        assert lab.word() == 0
    lab.set(NO_TASK)
    assert now(lab.lock(t)) == EINVAL
    assert lab.word() == NO_TASK
    lab.set(t.tid)
    assert lab.unlock(t) == EINVAL
    assert lab.word() == t.tid
    assert now(lab.lock(t)) == EDEADLK
    lab.set(0)
    # the waiter is blocked (it makes no call): another task of the process wakes it
    assert now(t.syscall_futex_nb(lab.a, abi.FUTEX_WAKE | lab.fl, 1, 0, 0, 0)) == 1
    assert pw.result() == 0
    assert lab.queued() == 0


def test_word_changed_under_kernel_waiters_is_einval(lab: Lab) -> None:
    """Linux attach_to_pi_state rows [7]/[9] and futex_unlock_pi: with kernel waiters, a
    word whose TID is not the PI state's owner is inconsistent -> EINVAL (host, all of it):
    for the owner, for the task the word now names (UNLOCK_PI), for a third task; the
    owner's UNLOCK_PI is EPERM (the word is not its own).  A dead TID is EINVAL, not ESRCH.
    Put back, the lock works on."""
    owner, waiter, named, third = lab.task(), lab.task(), lab.task(), lab.task()
    lab.set(owner.tid)
    pw = lab.blocks(waiter)
    assert lab.word() == owner.tid | W

    lab.set(W | named.tid)
    assert now(lab.lock(owner)) == EINVAL
    assert lab.trylock(owner) == EINVAL
    assert lab.unlock(owner) == EPERM
    assert lab.unlock(named) == EINVAL
    assert now(lab.lock(third)) == EINVAL
    assert lab.trylock(third) == EINVAL
    assert lab.word() == W | named.tid

    for word in (W | NO_TASK, 0, W):  # [9] a dead TID, [9] TID 0, [7] no OWNER_DIED
        lab.set(word)
        assert now(lab.lock(owner)) == EINVAL, hex(word)
        assert now(lab.lock(third)) == EINVAL, hex(word)
        assert lab.word() == word

    assert not pw.done()
    lab.set(W | owner.tid)
    assert lab.unlock(owner) == 0
    assert pw.result() == 0
    assert lab.word() == W | waiter.tid
    assert lab.unlock(waiter) == 0
    assert lab.word() == 0


def test_owner_died_tid_zero_attaches_and_exit_hands_over(lab: Lab) -> None:
    """Linux attach_to_pi_state row [6]: OWNER_DIED with TID 0 while the PI state has an
    owner -> attach (the caller blocks).  The owner can no longer unlock (EPERM: TID 0); at
    its exit the top waiter gets the lock and ``fixup_pi_state_owner`` writes
    OWNER_DIED | WAITERS | its TID; the next hand-off writes WAITERS | TID (host:
    0xc0000000 -> 0xc000<w1> -> 0x8000<z> -> 0)."""
    owner, w1, z = lab.task(), lab.task(), lab.task()
    lab.set(owner.tid)
    pw1 = lab.blocks(w1)
    lab.set(W | OD)
    pz = lab.blocks(z)
    assert lab.word() == W | OD
    assert lab.unlock(owner) == EPERM
    owner.exit()
    lab.tasks.remove(owner)
    assert pw1.result() == 0
    assert lab.word() == OD | W | w1.tid
    assert not pz.done()
    assert lab.unlock(w1) == 0
    assert pz.result() == 0
    assert lab.word() == W | z.tid
    assert lab.unlock(z) == 0
    assert lab.word() == 0
    assert lab.queued() == 0


def test_owner_died_tid_zero_calls_by_the_owner_itself(lab: Lab) -> None:
    """Linux, row [6] reached by the PI state's own owner (host-measured quirks):

    - TRYLOCK_PI attaches, ``rt_mutex_futex_trylock`` fails (the caller holds it):
      EWOULDBLOCK, and ``fixup_pi_owner`` (pi_state->owner == current) rewrites the word
      to OWNER_DIED | WAITERS | caller (0xc0000000 -> 0xc000<tid>);
    - LOCK_PI attaches, ``task_blocks_on_rt_mutex`` says EDEADLK, but
      ``rt_mutex_cleanup_proxy_lock`` finds the caller owning the rt_mutex: 0, and the word
      stays WAITERS | OWNER_DIED.
    """
    owner, waiter = lab.task(), lab.task()
    lab.set(owner.tid)
    pw = lab.blocks(waiter)
    lab.set(W | OD)
    assert lab.trylock(owner) == EAGAIN
    assert lab.word() == OD | W | owner.tid
    lab.set(W | OD)
    assert now(lab.lock(owner)) == 0
    assert lab.word() == W | OD
    assert not pw.done()
    lab.set(OD | W | owner.tid)
    assert lab.unlock(owner) == 0
    assert pw.result() == 0
    assert lab.word() == W | waiter.tid
    assert lab.unlock(waiter) == 0


def test_contended_trylock_sets_waiters(lab: Lab) -> None:
    """Linux futex_lock_pi_atomic sets FUTEX_WAITERS and attaches before TRYLOCK_PI gives
    up: EWOULDBLOCK, word owner | WAITERS (host), nothing queued; the owner's CAS unlock
    then fails and UNLOCK_PI (no kernel waiters) writes 0.  With kernel waiters the word is
    left as it is."""
    owner, t, waiter = lab.task(), lab.task(), lab.task()
    assert lab.ulock(owner) == 0
    assert lab.trylock(t) == EAGAIN
    assert lab.word() == owner.tid | W
    assert lab.queued() == 0
    assert owner.pi_states == [] and owner.prio == abi.DEFAULT_PRIO
    assert lab.p.cas_u32(lab.a, owner.tid, 0) == owner.tid | W
    assert lab.unlock(owner) == 0
    assert lab.word() == 0

    assert lab.ulock(owner) == 0
    pw = lab.blocks(waiter)
    assert lab.trylock(t) == EAGAIN
    assert lab.word() == owner.tid | W
    assert lab.queued() == 1
    assert lab.unlock(owner) == 0
    assert pw.result() == 0
    assert lab.unlock(waiter) == 0


def test_unlock_hands_off_with_waiters_bit(lab: Lab) -> None:
    """Linux wake_futex_pi: the new word is FUTEX_WAITERS | new owner's TID, even when no
    other waiter remains (host: 0x8000<tid>); OWNER_DIED is dropped.  The new owner's own
    UNLOCK_PI then finds no kernel waiter and writes 0."""
    owner, w1, w2 = lab.task(), lab.task(), lab.task()
    lab.set(owner.tid)
    p1 = lab.blocks(w1)
    lab.set(OD | W | owner.tid)
    p2 = lab.blocks(w2)
    assert lab.unlock(owner) == 0
    assert p1.result() == 0 and not p2.done()
    assert lab.word() == W | w1.tid
    assert w1.blocked is None and w2.blocked is p2
    assert lab.unlock(w1) == 0
    assert p2.result() == 0
    assert lab.word() == W | w2.tid  # the last waiter: WAITERS all the same
    assert lab.queued() == 0
    assert lab.unlock(w2) == 0
    assert lab.word() == 0


def test_unlock_without_kernel_waiters_writes_zero(lab: Lab) -> None:
    """Linux futex_unlock_pi: no kernel waiter -> CAS to 0, dropping WAITERS and
    OWNER_DIED (host)."""
    t = lab.task()
    for bits in (0, W, OD, W | OD):
        lab.set(t.tid | bits)
        assert lab.unlock(t) == 0, hex(bits)
        assert lab.word() == 0


@pytest.mark.parametrize("cmd", [LOCK_PI, LOCK_PI2, TRYLOCK_PI], ids=["LOCK_PI", "LOCK_PI2",
                                                                      "TRYLOCK_PI"])
def test_taking_an_unowned_word(lab: Lab, cmd: int) -> None:
    """Linux futex_lock_pi_atomic, TID 0 and no kernel waiter: take it as
    ``(word & OWNER_DIED) | tid`` -- OWNER_DIED kept, a stale WAITERS cleared (host:
    0x40000000 -> 0x4000<tid>, 0xc0000000 -> 0x4000<tid>, 0x80000000 -> tid)."""
    t = lab.task()
    for word, expect in ((0, t.tid), (W, t.tid), (OD, OD | t.tid), (OD | W, OD | t.tid)):
        lab.set(word)
        assert now(lab.call(t, cmd)) == 0, hex(word)
        assert lab.word() == expect, hex(word)
    assert lab.unlock(t) == 0
    assert lab.word() == 0


def test_uncontended_lock_ignores_an_expired_deadline(lab: Lab) -> None:
    """Linux: the word is taken before any sleep, so a deadline in the past does not
    matter (host: LOCK_PI and LOCK_PI2 return 0)."""
    t = lab.task()
    assert now(lab.lock(t, utime=lab.realtime_in(-10 * SEC))) == 0
    assert lab.unlock(t) == 0
    assert now(lab.call(t, LOCK_PI2, utime=lab.timespec(1))) == 0
    assert lab.word() == t.tid
    assert lab.unlock(t) == 0


@pytest.mark.parametrize("count", [1, 0])
def test_plain_wake_meeting_a_pi_waiter_is_einval(lab: Lab, count: int) -> None:
    """Linux futex_wake: a matching waiter with a pi_state -> EINVAL, before the bitset and
    the count are looked at (host: WAKE 1 and 0, WAKE_BITSET)."""
    owner, waiter = lab.task(), lab.task()
    lab.set(owner.tid)
    pw = lab.blocks(waiter)
    assert now(owner.syscall_futex_nb(lab.a, abi.FUTEX_WAKE | lab.fl, count, 0, 0, 0)) == EINVAL
    assert now(owner.syscall_futex_nb(lab.a, abi.FUTEX_WAKE_BITSET | lab.fl, count, 0, 0,
                                      1)) == EINVAL
    assert not pw.done()
    assert lab.unlock(owner) == 0
    assert pw.result() == 0
    assert lab.unlock(waiter) == 0


def test_wake_op_and_requeue_meeting_a_pi_waiter_are_einval(lab: Lab) -> None:
    """Linux futex_wake_op / futex_requeue meeting a PI waiter -> EINVAL (host):

    - WAKE_OP with the PI word as uaddr1: EINVAL after uaddr2 was written;
    - WAKE_OP with the PI word as uaddr2 and the comparison true: EINVAL;
    - REQUEUE (1, 1) and (0, 1): EINVAL; REQUEUE (0, 0) never looks: 0;
    - CMP_REQUEUE: EINVAL; with a compare value that differs: EAGAIN first.

    The PI waiter stays blocked and still gets the lock.
    """
    owner, waiter = lab.task(), lab.task()
    lab.set(owner.tid)
    lab.set(0, lab.b)
    pw = lab.blocks(waiter)
    fl = lab.fl

    def call(uaddr: int, cmd: int, val: int, val2: int, uaddr2: int, val3: int) -> int:
        return now(owner.syscall_futex_nb(uaddr, cmd | fl, val, val2, uaddr2, val3))

    set6 = abi.FUTEX_OP(abi.FUTEX_OP_SET, 6, abi.FUTEX_OP_CMP_EQ, 0)
    assert call(lab.a, abi.FUTEX_WAKE_OP, 1, 1, lab.b, set6) == EINVAL
    assert lab.word(lab.b) == 6
    add0_ne0 = abi.FUTEX_OP(abi.FUTEX_OP_ADD, 0, abi.FUTEX_OP_CMP_NE, 0)
    assert call(lab.b, abi.FUTEX_WAKE_OP, 1, 1, lab.a, add0_ne0) == EINVAL
    assert lab.word() == owner.tid | W
    assert call(lab.a, abi.FUTEX_REQUEUE, 1, 1, lab.b, 0) == EINVAL
    assert call(lab.a, abi.FUTEX_REQUEUE, 0, 1, lab.b, 0) == EINVAL
    assert call(lab.a, abi.FUTEX_REQUEUE, 0, 0, lab.b, 0) == 0
    assert call(lab.a, abi.FUTEX_CMP_REQUEUE, 1, 1, lab.b, owner.tid | W) == EINVAL
    assert call(lab.a, abi.FUTEX_CMP_REQUEUE, 1, 1, lab.b, 0) == EAGAIN
    assert not pw.done()
    assert lab.queued() == 1
    assert lab.unlock(owner) == 0
    assert pw.result() == 0
    assert lab.word() == W | waiter.tid
    assert lab.unlock(waiter) == 0


# -- timeouts -----------------------------------------------------------------------------


def test_lock_pi_timeout_is_absolute_realtime(lab: Lab) -> None:
    """Linux futex_init_timeout: LOCK_PI's timeout is an absolute CLOCK_REALTIME time.  It
    fires when realtime passes it (by time going on or by clock_settime), never on
    monotonic time alone; the timed-out waiter leaves, the word keeps WAITERS."""
    clock = lab.clock
    owner, waiter = lab.task(), lab.task()
    lab.set(owner.tid)
    pw = lab.blocks(waiter, utime=lab.realtime_in(5 * SEC))
    clock.advance(5 * SEC - 1)
    assert not pw.done()
    clock.advance(1)
    assert pw.result() == ETIMEDOUT
    assert lab.word() == owner.tid | W
    assert lab.queued() == 0
    assert waiter.pi_blocked_on is None

    # set_realtime alone fires it; a step back in realtime delays it
    start = clock.now(ClockId.REALTIME)
    pw = lab.blocks(waiter, utime=lab.realtime_in(100 * SEC))
    clock.set_realtime(start - 50 * SEC)
    clock.advance(100 * SEC)  # realtime is now start + 50 s
    assert not pw.done()
    clock.set_realtime(start + 100 * SEC)
    assert pw.result() == ETIMEDOUT
    assert lab.queued() == 0

    # a deadline already past: still queued first (WAITERS set), then ETIMEDOUT (host)
    lab.set(owner.tid)
    assert now(lab.lock(waiter, utime=lab.realtime_in(-10 * SEC))) == ETIMEDOUT
    assert lab.word() == owner.tid | W
    assert lab.queued() == 0
    assert lab.unlock(owner) == 0
    assert lab.word() == 0


def test_lock_pi2_clocks(lab: Lab) -> None:
    """Linux: LOCK_PI2 is absolute CLOCK_MONOTONIC by default, CLOCK_REALTIME with
    FUTEX_CLOCK_REALTIME; LOCK_PI, TRYLOCK_PI and UNLOCK_PI with FUTEX_CLOCK_REALTIME are
    ENOSYS (host)."""
    clock = lab.clock
    owner, waiter = lab.task(), lab.task()
    lab.set(owner.tid)
    pw = lab.blocks(waiter, utime=lab.monotonic_in(5 * SEC), cmd=LOCK_PI2)
    clock.set_realtime(clock.now(ClockId.REALTIME) + 1000 * SEC)
    assert not pw.done()
    clock.advance(5 * SEC)
    assert pw.result() == ETIMEDOUT

    pw = pending(lab.call(waiter, LOCK_PI2, utime=lab.realtime_in(5 * SEC), extra=CLOCK_RT))
    clock.set_realtime(clock.now(ClockId.REALTIME) + 5 * SEC)
    assert pw.result() == ETIMEDOUT

    # a deadline past on the monotonic clock (1 s after boot)
    assert now(lab.call(waiter, LOCK_PI2, utime=lab.timespec(1))) == ETIMEDOUT
    assert lab.word() == owner.tid | W
    for cmd in (LOCK_PI, TRYLOCK_PI, UNLOCK_PI):
        assert now(lab.call(owner, cmd, extra=CLOCK_RT)) == ENOSYS
    assert lab.word() == owner.tid | W
    assert lab.queued() == 0
    assert lab.unlock(owner) == 0


def test_bad_timeouts(lab: Lab) -> None:
    """Linux sys_futex reads and checks the timeout before anything else: EINVAL for
    tv_nsec out of range or tv_sec < 0, EFAULT for an unmapped pointer -- before EDEADLK
    (host).  TRYLOCK_PI and UNLOCK_PI take no timeout: the pointer is not read (host)."""
    t = lab.task()
    lab.set(t.tid)
    for cmd in (LOCK_PI, LOCK_PI2):
        assert now(lab.call(t, cmd, utime=lab.timespec(1, SEC))) == EINVAL
        assert now(lab.call(t, cmd, utime=lab.timespec(-1, 0))) == EINVAL
        hole = lab.p.mmap(4096)
        lab.p.munmap(hole, 4096)
        assert now(lab.call(t, cmd, utime=hole)) == EFAULT
    lab.set(0)
    assert now(lab.call(t, TRYLOCK_PI, utime=8)) == 0
    assert lab.word() == t.tid
    assert now(lab.call(t, UNLOCK_PI, utime=8)) == 0
    assert lab.word() == 0


# -- signals and races ----------------------------------------------------------------------


def test_signal_restarts_lock_pi(lab: Lab) -> None:
    """Linux futex_lock_pi returns ERESTARTNOINTR on a signal: the call restarts whatever
    the disposition, never EINTR; the waiter stays queued (and its boost stays); a restart
    keeps the absolute deadline."""
    clock = lab.clock
    owner, waiter = lab.task(), lab.rt(50)
    lab.set(owner.tid)
    pw = lab.blocks(waiter)
    assert owner.prio == 49
    for handler, restart in ((True, False), (True, True), (False, False)):
        assert waiter.interrupt(handler=handler, restart=restart)
        assert not pw.done() and waiter.blocked is pw
        assert lab.queued() == 1
        assert owner.prio == 49
    assert lab.word() == owner.tid | W
    assert lab.unlock(owner) == 0
    assert pw.result() == 0
    assert lab.word() == W | waiter.tid
    assert owner.prio == abi.DEFAULT_PRIO

    # with a timeout: restarted, and ETIMEDOUT at the original deadline
    pw = lab.blocks(owner, utime=lab.realtime_in(5 * SEC))
    clock.advance(2 * SEC)
    assert owner.interrupt(handler=True)
    assert not pw.done()
    clock.advance(3 * SEC - 1)
    assert not pw.done()
    clock.advance(1)
    assert pw.result() == ETIMEDOUT
    assert lab.unlock(waiter) == 0
    assert lab.word() == 0


def test_handoff_at_the_deadline_instant_wins(lab: Lab) -> None:
    """Linux: an unlock that hands the lock over at the instant the timeout expires -- the
    waiter owns the lock and returns 0."""
    clock = lab.clock
    owner, waiter = lab.task(), lab.task()
    lab.set(owner.tid)
    deadline = clock.now(ClockId.REALTIME) + 5 * SEC
    results: list[int] = []
    clock.call_at(ClockId.REALTIME, deadline, lambda: results.append(lab.unlock(owner)))
    pw = lab.blocks(waiter, utime=lab.timespec(deadline // SEC, deadline % SEC))
    clock.advance(5 * SEC)
    assert results == [0]
    assert pw.result() == 0
    assert lab.word() == W | waiter.tid
    assert lab.unlock(waiter) == 0


@pytest.mark.parametrize("event", ["timeout", "signal"])
def test_handoff_racing_a_timeout_or_signal_wins(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, event: str
) -> None:
    """Linux rt_mutex_cleanup_proxy_lock / fixup_pi_owner: a waiter whose timeout (or
    signal) is handled after the unlocker made it the owner, before the wake reached it,
    returns 0 and owns the lock.  The race is forced: the timer fires (or the signal
    arrives) between the hand-off and the delivery of the wake."""
    clock = lab.clock
    owner, waiter = lab.task(), lab.task()
    lab.set(owner.tid)
    pw = lab.blocks(waiter, utime=lab.realtime_in(5 * SEC))
    original = linux_pi.notify_all
    raced: list[bool] = []

    def late_notify(woken: Any) -> None:
        if woken and not raced:
            raced.append(True)
            if event == "timeout":
                clock.advance(5 * SEC)
            else:
                waiter.interrupt(handler=True)
        original(woken)

    monkeypatch.setattr(linux_pi, "notify_all", late_notify)
    assert lab.unlock(owner) == 0
    assert raced == [True]
    assert pw.result() == 0
    assert lab.word() == W | waiter.tid
    assert lab.queued() == 0
    monkeypatch.undo()
    assert lab.unlock(waiter) == 0
    assert lab.word() == 0


# -- addresses and memory --------------------------------------------------------------------


def test_misaligned_and_unmapped(lab: Lab) -> None:
    """Linux: the key comes first for LOCK_PI / LOCK_PI2 / TRYLOCK_PI (misaligned EINVAL,
    even unmapped); UNLOCK_PI reads the word first (unmapped EFAULT, even misaligned)
    (host)."""
    t = lab.task()
    hole = lab.p.mmap(4096)
    lab.p.munmap(hole, 4096)
    for cmd in (LOCK_PI, LOCK_PI2, TRYLOCK_PI):
        for off in (1, 2, 3):
            assert now(lab.call(t, cmd, lab.a + off)) == EINVAL
        assert now(lab.call(t, cmd, hole)) == EFAULT
        assert now(lab.call(t, cmd, hole + 1)) == EINVAL
    assert lab.unlock(t, hole) == EFAULT
    assert lab.unlock(t, hole + 1) == EFAULT
    assert lab.word() == 0


def test_unlock_reads_the_word_unaligned_first(lab: Lab) -> None:
    """Linux futex_unlock_pi: ``get_user`` on the raw address, then the TID check (EPERM),
    then the key (EINVAL): a misaligned address whose 4 bytes hold the caller's TID is
    EINVAL, else EPERM; 4 bytes running into an unmapped page are EFAULT (host)."""
    t = lab.task()
    lab.p.write(lab.a + 5, struct.pack("<I", t.tid))
    assert lab.unlock(t, lab.a + 5) == EINVAL
    lab.p.write(lab.a + 5, b"\0\0\0\0")
    assert lab.unlock(t, lab.a + 5) == EPERM
    two = lab.p.mmap(8192, shared=not lab.private)
    lab.p.munmap(two + 4096, 4096)
    assert lab.unlock(t, two + 4094) == EFAULT
    assert now(lab.lock(t, two + 4094)) == EINVAL


def test_read_only_and_inaccessible_words(lab: Lab) -> None:
    """Linux: LOCK_PI / TRYLOCK_PI need to write the word (a CAS), UNLOCK_PI too; a shared
    key is taken for writing (FOLL_WRITE) first, a private key checks nothing.  Measured
    on the host, read-only page, (LOCK_PI, TRYLOCK_PI, UNLOCK_PI):

    ================  =========================  =========================
    word              private                    shared
    ================  =========================  =========================
    0, WAITERS, OD    EFAULT, EFAULT, EPERM      EFAULT, EFAULT, EPERM
    own TID (| W)     EDEADLK, EDEADLK, EFAULT   EFAULT, EFAULT, EFAULT
    other / dead TID  EFAULT, EFAULT, EPERM      EFAULT, EFAULT, EPERM
    ================  =========================  =========================

    PROT_NONE: EFAULT for all three.  The word never changes.
    """
    t, other = lab.task(), lab.task()
    own = (EDEADLK, EDEADLK, EFAULT) if lab.private else (EFAULT, EFAULT, EFAULT)
    cases = [
        (0, (EFAULT, EFAULT, EPERM)),
        (W, (EFAULT, EFAULT, EPERM)),
        (OD, (EFAULT, EFAULT, EPERM)),
        (t.tid, own),
        (t.tid | W, own),
        (other.tid, (EFAULT, EFAULT, EPERM)),
        (other.tid | W, (EFAULT, EFAULT, EPERM)),
        (NO_TASK, (EFAULT, EFAULT, EPERM)),
    ]
    for word, expect in cases:
        lab.set(word)
        lab.p.mprotect(lab.page, 4096, PROT_READ)
        got = (now(lab.lock(t)), lab.trylock(t), lab.unlock(t))
        lab.p.mprotect(lab.page, 4096, PROT_READ | PROT_WRITE)
        assert got == expect, hex(word)
        assert lab.word() == word
    lab.set(t.tid)
    lab.p.mprotect(lab.page, 4096, PROT_NONE)
    got = (now(lab.lock(t)), lab.trylock(t), lab.unlock(t))
    lab.p.mprotect(lab.page, 4096, PROT_READ | PROT_WRITE)
    assert got == (EFAULT, EFAULT, EFAULT)
    assert lab.queued() == 0


def test_shared_pi_lock_across_processes(kernel: LinuxKernel) -> None:
    """Linux: a shared PI futex on MAP_SHARED memory works across processes (the TID
    names a task of another process): block, boost, hand off."""
    lab = Lab(kernel, False)
    child = lab.p.fork()
    parent_task = lab.task()
    child_task = child.new_task(policy=abi.SCHED_FIFO, priority=10)
    assert lab.ulock(parent_task) == 0
    pw = pending(child_task.syscall_futex_nb(lab.a, LOCK_PI, 0, 0, 0, 0))
    assert child.load_u32(lab.a) == parent_task.tid | W
    assert parent_task.prio == 89
    assert lab.unlock(parent_task) == 0
    assert pw.result() == 0
    assert parent_task.prio == abi.DEFAULT_PRIO
    assert lab.word() == W | child_task.tid
    assert now(child_task.syscall_futex_nb(lab.a, UNLOCK_PI, 0, 0, 0, 0)) == 0
    assert lab.word() == 0
    for t in (parent_task, child_task):
        lab.p.futex.pi.check_task(t)


# =====================================================================================
# Priority inheritance (rt_mutex)
# =====================================================================================


def test_rt_waiter_boosts_a_normal_owner(plab: Lab) -> None:
    """rt_mutex: a SCHED_FIFO waiter boosts the SCHED_OTHER owner to its priority
    (99 - rt_priority; host: /proc stat priority -51 for rt_priority 50); released, the
    owner is back to its own and the new owner runs at its own."""
    owner, waiter = plab.task(), plab.rt(50)
    assert (owner.prio, waiter.prio) == (120, 49)
    assert plab.ulock(owner) == 0
    pw = plab.blocks(waiter)
    assert owner.prio == 49 and owner.normal_prio == 120
    plab.check()
    assert plab.unlock(owner) == 0
    assert pw.result() == 0
    assert owner.prio == 120
    assert waiter.prio == 49
    assert plab.unlock(waiter) == 0
    assert waiter.prio == 49


@pytest.mark.parametrize("order", ["bottom_up", "top_down"])
def test_boost_follows_a_chain_of_locks(plab: Lab, order: str) -> None:
    """rt_mutex_adjust_prio_chain: A (FIFO 60) waits on L1 held by B, B waits on L2 held
    by C: C runs at A's priority, whichever wait came first; released step by step, each
    owner loses the boost when it gives up the lock that carried it."""
    a_task, b_task, c_task = plab.rt(60), plab.task(), plab.task()
    l1, l2 = plab.a, plab.b
    plab.set(b_task.tid, l1)
    plab.set(c_task.tid, l2)
    if order == "bottom_up":
        pa = plab.blocks(a_task, l1)
        pb = plab.blocks(b_task, l2)
    else:
        pb = plab.blocks(b_task, l2)
        assert c_task.prio == 120
        pa = plab.blocks(a_task, l1)
    assert (a_task.prio, b_task.prio, c_task.prio) == (39, 39, 39)
    plab.check()

    assert plab.unlock(c_task, l2) == 0  # B gets L2, C loses the boost
    assert pb.result() == 0
    assert c_task.prio == 120 and b_task.prio == 39
    assert plab.word(l2) == W | b_task.tid
    assert plab.unlock(b_task, l2) == 0  # B still holds L1, which A waits on
    assert b_task.prio == 39
    assert plab.unlock(b_task, l1) == 0
    assert pa.result() == 0
    assert (a_task.prio, b_task.prio, c_task.prio) == (39, 120, 120)
    assert plab.unlock(a_task, l1) == 0
    assert plab.word(l1) == 0 and plab.word(l2) == 0


@pytest.mark.parametrize(
    ("owner_nice", "waiter_nice", "during"),
    [(0, -10, 110), (10, 0, 120), (0, 5, 120)],
)
def test_normal_waiter_sets_owner_prio_to_its_own(
    plab: Lab, owner_nice: int, waiter_nice: int, during: int
) -> None:
    """rt_mutex_setprio: prio = min(normal_prio, top waiter's task->prio), for SCHED_OTHER
    waiters too (host, /proc/<tid>/stat priority: a nice -10 waiter takes a nice 0 owner
    from 20 to 10; a nice 0 waiter a nice 10 owner from 30 to 20; a nice 5 waiter leaves
    a nice 0 owner at 20).  Released, the owner is back to 120 + nice."""
    owner = plab.task(nice=owner_nice)
    waiter = plab.task(nice=waiter_nice)
    assert plab.ulock(owner) == 0
    pw = plab.blocks(waiter)
    assert owner.prio == during
    assert waiter.prio == 120 + waiter_nice
    plab.check()
    assert plab.unlock(owner) == 0
    assert pw.result() == 0
    assert owner.prio == 120 + owner_nice
    assert plab.unlock(waiter) == 0


def test_normal_waiters_queue_fifo_whatever_their_nice(plab: Lab) -> None:
    """rt_mutex (__waiter_prio): every non-RT waiter counts as DEFAULT_PRIO, so they queue
    FIFO and the *first* is the owner's top waiter (host: a nice 5 waiter, then a nice -10
    one: the nice 0 owner stays at 20; the first times out: 10; the lock goes to the
    second)."""
    clock = plab.clock
    owner = plab.task()
    x = plab.task(nice=5)
    y = plab.task(nice=-10)
    assert plab.ulock(owner) == 0
    px = plab.blocks(x, utime=plab.realtime_in(1 * SEC))
    py = plab.blocks(y, utime=plab.realtime_in(5 * SEC))
    assert owner.prio == 120
    clock.advance(1 * SEC)
    assert px.result() == ETIMEDOUT
    assert owner.prio == 110
    plab.check()
    assert plab.unlock(owner) == 0
    assert py.result() == 0
    assert owner.prio == 120
    assert plab.word() == W | y.tid
    assert plab.unlock(y) == 0


def test_a_waiter_that_times_out_takes_its_boost_away(plab: Lab) -> None:
    """rt_mutex: a waiter leaving on timeout deboosts the owner (and the next waiter's
    priority applies)."""
    clock = plab.clock
    owner, hi, lo = plab.task(), plab.rt(80), plab.rt(10)
    assert plab.ulock(owner) == 0
    plo = plab.blocks(lo)
    phi = plab.blocks(hi, utime=plab.realtime_in(2 * SEC))
    assert owner.prio == 19
    clock.advance(2 * SEC)
    assert phi.result() == ETIMEDOUT
    assert owner.prio == 89
    assert hi.pi_blocked_on is None
    plab.check()
    assert plab.unlock(owner) == 0
    assert plo.result() == 0
    assert owner.prio == 120
    assert plab.unlock(lo) == 0


def test_an_exiting_waiter_takes_its_boost_away(plab: Lab) -> None:
    """Linux: a task that exits while blocked in LOCK_PI leaves the rt_mutex; the owner is
    deboosted, the word keeps WAITERS."""
    owner, waiter = plab.task(), plab.rt(70)
    assert plab.ulock(owner) == 0
    plab.blocks(waiter)
    assert owner.prio == 29
    waiter.exit()
    plab.tasks.remove(waiter)
    assert owner.prio == 120
    assert owner.pi_states == [] or all(not s.waiters for s in owner.pi_states)
    assert plab.queued() == 0
    assert plab.word() == owner.tid | W
    assert plab.unlock(owner) == 0
    assert plab.word() == 0


def test_deadlock_cycle_is_edeadlk(plab: Lab) -> None:
    """rt_mutex chain walk (futex uses RT_MUTEX_FULL_CHAINWALK): A holds L1 and waits on
    L2; B holds L2 and LOCK_PIs L1 -> EDEADLK, nothing queued, but L1's word has gained
    WAITERS (host: 0x8000<A>).  TRYLOCK_PI does no chain walk: EWOULDBLOCK (host)."""
    a_task, b_task = plab.task(), plab.task()
    l1, l2 = plab.a, plab.b
    plab.set(a_task.tid, l1)
    plab.set(b_task.tid, l2)
    pa = plab.blocks(a_task, l2)
    assert now(plab.lock(b_task, l1)) == EDEADLK
    assert plab.word(l1) == a_task.tid | W
    assert b_task.pi_blocked_on is None and b_task.blocked is None
    assert plab.queued() == 1
    assert plab.trylock(b_task, l1) == EAGAIN
    assert now(plab.call(b_task, LOCK_PI2, l1)) == EDEADLK
    plab.check()
    assert plab.unlock(b_task, l2) == 0
    assert pa.result() == 0
    assert plab.word(l2) == W | a_task.tid
    assert plab.unlock(a_task, l2) == 0
    assert plab.unlock(a_task, l1) == 0
    assert plab.word(l1) == 0 and plab.word(l2) == 0


def test_deadlock_through_a_longer_chain(plab: Lab) -> None:
    """rt_mutex: A holds L1, waits L2 (B's); B waits L3 (C's); C's LOCK_PI on L1 closes the
    cycle -> EDEADLK."""
    a_task, b_task, c_task = plab.task(), plab.task(), plab.task()
    l1, l2, l3 = plab.a, plab.a + 128, plab.a + 256
    plab.set(a_task.tid, l1)
    plab.set(b_task.tid, l2)
    plab.set(c_task.tid, l3)
    pa = plab.blocks(a_task, l2)
    pb = plab.blocks(b_task, l3)
    assert now(plab.lock(c_task, l1)) == EDEADLK
    assert c_task.pi_blocked_on is None
    assert plab.queued() == 2
    assert plab.unlock(c_task, l3) == 0
    assert pb.result() == 0
    assert plab.unlock(b_task, l3) == 0
    assert plab.unlock(b_task, l2) == 0
    assert pa.result() == 0
    assert plab.unlock(a_task, l2) == 0
    assert plab.unlock(a_task, l1) == 0


def test_raising_a_blocked_waiters_priority_propagates(plab: Lab) -> None:
    """sched_setscheduler -> rt_mutex_adjust_pi: a blocked waiter made RT boosts the owner
    at once and moves up in the wait order; made SCHED_OTHER again, the boost goes."""
    owner, first, second = plab.task(), plab.task(), plab.rt(10)
    assert plab.ulock(owner) == 0
    p1 = plab.blocks(first)
    p2 = plab.blocks(second)
    assert owner.prio == 89
    first.set_scheduler(abi.SCHED_FIFO, 30)
    assert first.prio == 69 and owner.prio == 69
    plab.check()
    first.set_scheduler(abi.SCHED_OTHER)
    assert owner.prio == 89
    first.set_scheduler(abi.SCHED_RR, 20)
    assert owner.prio == 79
    plab.check()
    assert plab.unlock(owner) == 0  # `first` is now the top waiter
    assert p1.result() == 0 and not p2.done()
    assert plab.word() == W | first.tid
    assert owner.prio == 120
    assert first.prio == 79  # its own; `second` (89) does not boost it
    assert plab.unlock(first) == 0
    assert p2.result() == 0
    assert plab.unlock(second) == 0


def test_owner_rescheduled_while_boosted(plab: Lab) -> None:
    """__sched_setscheduler: a boosted owner's new normal priority applies only if more
    urgent than the boost (rt_effective_prio)."""
    owner, waiter = plab.task(), plab.rt(50)
    assert plab.ulock(owner) == 0
    pw = plab.blocks(waiter)
    owner.set_scheduler(abi.SCHED_FIFO, 10)
    assert owner.normal_prio == 89 and owner.prio == 49
    owner.set_scheduler(abi.SCHED_FIFO, 70)
    assert owner.prio == 29
    owner.set_scheduler(abi.SCHED_OTHER, nice=5)
    assert owner.prio == 49
    plab.check()
    assert plab.unlock(owner) == 0
    assert pw.result() == 0
    assert owner.prio == 125
    assert plab.unlock(waiter) == 0


def test_pi_waiters_get_the_lock_in_priority_order(plab: Lab) -> None:
    """rt_mutex waiter order: highest RT priority first, FIFO among equals, every
    SCHED_OTHER waiter after the RT ones in arrival order; each UNLOCK_PI hands the lock
    to the next one, whose boost then comes from those still waiting."""
    owner = plab.task()
    arrivals = [
        ("other", plab.task()),
        ("fifo10a", plab.rt(10)),
        ("fifo50", plab.rt(50)),
        ("fifo10b", plab.task(abi.SCHED_RR, 10)),
        ("nice-10", plab.task(nice=-10)),
    ]
    assert plab.ulock(owner) == 0
    waits = {name: plab.blocks(t) for name, t in arrivals}
    tasks = dict(arrivals)
    assert owner.prio == 49
    # who gets the lock next, and the new owner's prio: its own, or its top waiter's
    # task->prio ("other" owns with "nice-10" waiting: 110, as measured on the host)
    expected = [("fifo50", 49), ("fifo10a", 89), ("fifo10b", 89), ("other", 110),
                ("nice-10", 110)]
    current = owner
    for i, (name, prio) in enumerate(expected):
        assert plab.unlock(current) == 0
        assert waits[name].result() == 0, name
        nxt = tasks[name]
        assert plab.word() == W | nxt.tid
        assert current.prio == current.normal_prio
        for later, _ in expected[i + 1:]:
            assert not waits[later].done()
        assert nxt.prio == prio, name
        plab.check()
        current = nxt
    assert plab.unlock(current) == 0
    assert plab.word() == 0


def test_pi_boost_tracks_the_top_waiter_of_each_lock_held(plab: Lab) -> None:
    """rt_mutex_adjust_prio: an owner of two contended locks runs at the more urgent of
    their top waiters; releasing one leaves the other's boost."""
    owner, w1, w2 = plab.task(), plab.rt(20), plab.rt(60)
    l1, l2 = plab.a, plab.b
    plab.set(owner.tid, l1)
    plab.set(owner.tid, l2)
    p1 = plab.blocks(w1, l1)
    assert owner.prio == 79
    p2 = plab.blocks(w2, l2)
    assert owner.prio == 39
    assert plab.unlock(owner, l2) == 0
    assert p2.result() == 0
    assert owner.prio == 79
    assert plab.unlock(owner, l1) == 0
    assert p1.result() == 0
    assert owner.prio == 120
    assert plab.unlock(w1, l1) == 0 and plab.unlock(w2, l2) == 0


# =====================================================================================
# Exit of an owner (exit_pi_state_list + fixup_pi_state_owner)
# =====================================================================================


def test_exit_hands_the_lock_to_the_top_waiter(lab: Lab) -> None:
    """Linux exit_pi_state_list: the PI state loses its owner (pi_state->owner = NULL) and
    the rt_mutex goes to the top waiter, whose fixup_pi_state_owner writes
    ``(word & OWNER_DIED) | WAITERS | tid`` with OWNER_DIED added because the state had no
    owner (host: a plain thread exit gives 0xc000<tid>).  The next hand-off is the usual
    WAITERS | tid."""
    owner, w1, w2 = lab.task(), lab.task(), lab.rt(10)
    assert lab.ulock(owner) == 0
    p1 = lab.blocks(w1)
    p2 = lab.blocks(w2)
    assert owner.prio == 89
    owner.exit()
    lab.tasks.remove(owner)
    assert p2.result() == 0  # the RT waiter is the top waiter
    assert not p1.done()
    assert lab.word() == OD | W | w2.tid
    assert w2.prio == 89
    lab.check()
    assert lab.unlock(w2) == 0
    assert p1.result() == 0
    assert lab.word() == W | w1.tid
    assert lab.unlock(w1) == 0
    assert lab.word() == 0
    assert lab.queued() == 0


def test_exit_with_owner_died_already_in_the_word(lab: Lab) -> None:
    """Linux: OWNER_DIED already in the word (as a robust-list walk leaves it) stays
    (host: 0xc000<tid> whether user space set OWNER_DIED or not)."""
    owner, waiter = lab.task(), lab.task()
    assert lab.ulock(owner) == 0
    pw = lab.blocks(waiter)
    lab.set(OD | W | owner.tid)
    owner.exit()
    lab.tasks.remove(owner)
    assert pw.result() == 0
    assert lab.word() == OD | W | waiter.tid
    assert lab.unlock(waiter) == 0
    assert lab.word() == 0


def test_exit_of_an_owner_of_several_locks(plab: Lab) -> None:
    """Linux exit_pi_state_list walks every PI state the task owns: each lock goes to its
    own top waiter; an uncontended one keeps the dead TID (ESRCH for the next locker)."""
    owner, w1, w2, late = plab.task(), plab.task(), plab.task(), plab.task()
    l1, l2, l3 = plab.a, plab.b, plab.a + 128
    for addr in (l1, l2, l3):
        plab.set(owner.tid, addr)
    p1 = plab.blocks(w1, l1)
    p2 = plab.blocks(w2, l2)
    owner.exit()
    plab.tasks.remove(owner)
    assert p1.result() == 0 and p2.result() == 0
    assert plab.word(l1) == OD | W | w1.tid
    assert plab.word(l2) == OD | W | w2.tid
    assert plab.word(l3) == owner.tid
    assert now(plab.lock(late, l3)) == ESRCH
    assert plab.unlock(w1, l1) == 0 and plab.unlock(w2, l2) == 0
    assert plab.queued() == 0
