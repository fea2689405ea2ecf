"""PI futexes: FUTEX_LOCK_PI / LOCK_PI2 / TRYLOCK_PI / UNLOCK_PI as Linux answers them.

Source: **Linux** ``kernel/futex/pi.c`` (``futex_lock_pi_atomic``, ``attach_to_pi_state``'s
validity table, ``futex_unlock_pi`` / ``wake_futex_pi``, ``fixup_pi_state_owner``),
``futex(2)`` ERRORS (zircon_liteos_linux.md C.4, C.5).  Answers marked *host* were measured
on this machine's kernel (Linux 6.18, x86-64) with ``tests/support/hostfutex.py`` before
being written down here.  gVisor's PI tests are in ``test_pi_gvisor.py``, priority
inheritance and exit in ``test_pi_inheritance.py``.

Blocking scenarios use the cooperative form (``syscall_futex_nb`` -> ``PendingWait``); real
threads only where concurrency is the point.  Time is a ManualClock.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pytest

import futex.linux.pi as linux_pi
from futex.kernel import ClockId
from futex.linux import LinuxKernel, abi
from futex.memory import PROT_NONE, PROT_READ, PROT_WRITE
from tests.linux.pi_support import (
    CLOCK_RT,
    EAGAIN,
    EDEADLK,
    EFAULT,
    EINVAL,
    ENOSYS,
    EPERM,
    ESRCH,
    ETIMEDOUT,
    LOCK_PI,
    LOCK_PI2,
    NO_TASK,
    OD,
    SEC,
    TRYLOCK_PI,
    UNLOCK_PI,
    Lab,
    W,
    checked_lab,
    now,
    pending,
)


@pytest.fixture(params=[True, False], ids=["private", "shared"])
def lab(kernel: LinuxKernel, request: pytest.FixtureRequest) -> Iterator[Lab]:
    yield from checked_lab(kernel, request.param)


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
