"""The futex exit state machine (OK -> EXITING -> DEAD) and PI calls against an exiting owner.

Every test names the kernel source it pins (``torvalds/linux`` ``kernel/futex/core.c``:
``futex_cleanup_begin``, ``futex_cleanup_end``, ``futex_exit_release``,
``futex_exec_release``, ``wait_for_owner_exiting``; ``kernel/futex/pi.c``:
``attach_to_pi_owner``, ``handle_exit_race``, ``futex_lock_pi``; ``kernel/futex/requeue.c``:
``futex_proxy_trylock_atomic``, ``futex_requeue``) and the 2019 commits that made the
behaviour: 3f186d974826 "futex: Add mutex around futex exit", af8cbda2cfca "futex: Provide
state handling for exec() as well", ac31c7ff8624 "futex: Provide distinct return value when
owner is exiting", 3ef240eaff36 "futex: Prevent exit livelock".  The selftest
``futex_lock_pi_exiting`` (owner exits with a blocked waiter: 0, EOWNERDEAD or ESRCH) is
the end-to-end form of the same cases.

These are tests against the kernel's source, not against the host: a real task cannot be
held between FUTEX_STATE_EXITING and FUTEX_STATE_DEAD from user space (the window is a few
instructions inside ``do_exit``), so no differential test can pin the answers.
:meth:`Task.begin_exit` stops an emulated task exactly there.

Blocking uses the cooperative form on a ManualClock unless the test says "threaded": then a
real thread blocks in ``syscall_futex`` and the test waits for state (the owner's exit
mutex has a waiter), never for time.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from futex.kernel import ClockId, ManualClock
from futex.linux import LinuxKernel, PendingWait, Process, Task, abi
from futex.linux.pi_exit import FutexState, exiting_owner
from tests.support import STATE_TIMEOUT, Blocking, wait_until

PRIV = abi.FUTEX_PRIVATE_FLAG
LOCK_PI = abi.FUTEX_LOCK_PI
LOCK_PI2 = abi.FUTEX_LOCK_PI2
TRYLOCK_PI = abi.FUTEX_TRYLOCK_PI
UNLOCK_PI = abi.FUTEX_UNLOCK_PI
WAIT_RQ = abi.FUTEX_WAIT_REQUEUE_PI
CMP_RQ = abi.FUTEX_CMP_REQUEUE_PI
W = abi.FUTEX_WAITERS
OD = abi.FUTEX_OWNER_DIED
SEC = 10**9
INT_MAX = 0x7FFFFFFF

ESRCH = -abi.ESRCH
EAGAIN = -abi.EAGAIN
EINTR = -abi.EINTR
ETIMEDOUT = -abi.ETIMEDOUT

OK, EXITING, DEAD = FutexState.OK, FutexState.EXITING, FutexState.DEAD


def pending(r: int | PendingWait) -> PendingWait:
    assert isinstance(r, PendingWait), f"expected the call to block, it returned {r}"
    assert not r.done()
    return r


class Scene:
    """One process; a PI word ``a`` (and ``cv``, a condition word, for requeue-PI) on a
    private or a shared page; an owner that holds ``a``; robust lists and timespecs in
    scratch memory."""

    def __init__(self, kernel: LinuxKernel, private: bool) -> None:
        self.kernel = kernel
        clock = kernel.clock
        assert isinstance(clock, ManualClock)
        self.clock = clock
        self.p: Process = kernel.new_process()
        self.fl = PRIV if private else 0
        page = self.p.mmap(4096, shared=not private)
        self.a = page
        self.cv = page + 64
        self._scratch = self.p.mmap(4096)
        self.tasks: list[Task] = []
        self.owner = self.task()
        self.p.store_u32(self.a, self.owner.tid)  # the owner took it in user space

    def task(self) -> Task:
        t = self.p.new_task()
        self.tasks.append(t)
        return t

    def word(self, addr: int | None = None) -> int:
        return self.p.load_u32(self.a if addr is None else addr)

    def robust(self, t: Task, *, padding: int = 0, lock: bool = True) -> None:
        """Register a robust list for ``t`` whose last entry is ``a``, marked PI (glibc's
        PTHREAD_PRIO_INHERIT robust mutex), after ``padding`` entries of unowned words
        (they only make the exit's walk longer); ``lock=False`` leaves ``a`` off."""
        size = 32 + 16 * (padding + 1)
        base = self.p.mmap(-(-size // 4096) * 4096)
        head, off = base, -8  # an entry's word sits 8 bytes before it (futex_offset)
        entries = [(base + 40 + 16 * i, 0) for i in range(padding)]
        if lock:
            entries.append((self.a - off, 1))
        links = [*entries, (head, 0)]
        self.p.write(head, struct.pack("<Qq", links[0][0] | links[0][1], off))
        self.p.write(head + 16, struct.pack("<Q", 0))  # list_op_pending
        for (entry, _), (nxt, pi) in zip(entries, links[1:], strict=True):
            self.p.write(entry, struct.pack("<Q", nxt | pi))
        assert t.syscall(abi.SYS_set_robust_list, head, abi.ROBUST_LIST_HEAD_SIZE) == 0

    def realtime_in(self, ns: int) -> int:
        """A timespec pointer: absolute CLOCK_REALTIME ``ns`` from now (LOCK_PI's)."""
        return self._timespec(self.clock.now(ClockId.REALTIME) + ns)

    def monotonic_in(self, ns: int) -> int:
        """The same on CLOCK_MONOTONIC (LOCK_PI2's default)."""
        return self._timespec(self.clock.now(ClockId.MONOTONIC) + ns)

    def _timespec(self, t: int) -> int:
        self.p.write(self._scratch, struct.pack("<qq", t // SEC, t % SEC))
        return self._scratch

    def call(self, t: Task, cmd: int, utime: int = 0) -> int | PendingWait:
        return t.syscall_futex_nb(self.a, cmd | self.fl, 0, utime, 0, 0)

    def lock(self, t: Task, cmd: int = LOCK_PI, utime: int = 0) -> int | PendingWait:
        return self.call(t, cmd, utime)

    def unlock(self, t: Task) -> int:
        r = self.call(t, UNLOCK_PI)
        assert isinstance(r, int)
        return r

    def wait_rq(self, t: Task) -> PendingWait:
        r = t.syscall_futex_nb(self.cv, WAIT_RQ | self.fl, 0, 0, self.a, 0)
        assert isinstance(r, PendingWait) and not r.done()
        return r

    def cmp_requeue(self, t: Task, nr_requeue: int) -> int | PendingWait:
        return t.syscall_futex_nb(self.cv, CMP_RQ | self.fl, 1, nr_requeue, self.a, 0)

    def queued(self) -> int:
        return self.p.futex.stats().queued

    def check(self) -> None:
        """PI invariants of every task, and no call left waiting on an exit mutex."""
        for t in self.tasks:
            self.p.futex.pi.check_task(t)
            assert t.futex_exit_mutex.waiters == 0
            assert t.futex_exit_mutex.held == (t.futex_state is EXITING)


@pytest.fixture(params=[True, False], ids=["private", "shared"])
def s(kernel: LinuxKernel, request: pytest.FixtureRequest) -> Iterator[Scene]:
    x = Scene(kernel, request.param)
    yield x
    x.check()


@pytest.fixture
def ps(kernel: LinuxKernel) -> Iterator[Scene]:
    """Private only, where the key kind is beside the point."""
    x = Scene(kernel, True)
    yield x
    x.check()


LOCKS = pytest.mark.parametrize("cmd", [LOCK_PI, LOCK_PI2, TRYLOCK_PI],
                                ids=["LOCK_PI", "LOCK_PI2", "TRYLOCK_PI"])


# =====================================================================================
# The state machine
# =====================================================================================


def test_exit_moves_ok_exiting_dead_holding_the_exit_mutex(ps: Scene) -> None:
    """futex_exit_release = futex_cleanup_begin (futex_exit_mutex, then EXITING under
    pi_lock) + futex_cleanup + futex_cleanup_end (DEAD, mutex released) -- 3f186d974826.
    Between the two the task is alive and findable by its TID; once exited it is gone."""
    t = ps.owner
    assert t.futex_state is OK and not t.futex_exit_mutex.held
    t.begin_exit()
    assert t.futex_state is EXITING and t.futex_exit_mutex.held
    assert t.alive and ps.kernel.task(t.tid) is t
    assert "exiting" in repr(t)
    t.exit()
    assert t.futex_state is DEAD and not t.futex_exit_mutex.held
    assert not t.alive and ps.kernel.task(t.tid) is None
    other = ps.task()
    other.exit()  # exit() alone does both halves, as before
    assert other.futex_state is DEAD and not other.futex_exit_mutex.held


def test_exec_ends_in_ok(ps: Scene) -> None:
    """futex_exec_release (af8cbda2cfca): the same begin / cleanup / end, ending in
    FUTEX_STATE_OK -- the task lives on; a second exec runs the machine again."""
    t = ps.owner
    t.begin_exec()
    assert t.futex_state is EXITING and t.futex_exit_mutex.held
    t.exec()
    assert t.futex_state is OK and not t.futex_exit_mutex.held and t.alive
    t.exec()
    assert t.futex_state is OK and not t.futex_exit_mutex.held


def test_begin_and_finish_must_match(ps: Scene) -> None:
    """One cleanup at a time: the exit mutex is the task's own (mutex_lock in
    futex_cleanup_begin); an exit begun is finished by exit(), an exec by exec()."""
    t = ps.owner
    t.begin_exit()
    with pytest.raises(RuntimeError):
        t.begin_exit()
    with pytest.raises(RuntimeError):
        t.begin_exec()
    with pytest.raises(RuntimeError):
        t.exec()
    t.exit()
    with pytest.raises(RuntimeError):
        t.exit()
    with pytest.raises(RuntimeError):
        t.begin_exit()
    u = ps.task()
    u.begin_exec()
    with pytest.raises(RuntimeError):
        u.exit()
    u.exec()


def test_begin_exit_ends_the_tasks_own_blocked_call(ps: Scene) -> None:
    """do_exit: the exiting task is no longer in a system call when its futex cleanup
    begins (a fatal signal ended it): its blocked LOCK_PI returns and leaves the lock."""
    waiter = ps.task()
    pw = pending(ps.lock(waiter))
    waiter.begin_exit()
    assert pw.result() == EINTR
    assert ps.queued() == 0 and waiter.pi_blocked_on is None
    waiter.exit()
    assert ps.unlock(ps.owner) == 0


# =====================================================================================
# LOCK_PI / LOCK_PI2 / TRYLOCK_PI against an owner in EXITING
# =====================================================================================


@LOCKS
def test_exiting_robust_owner_hands_owner_died_after_the_wait(s: Scene, cmd: int) -> None:
    """attach_to_pi_owner -> handle_exit_race: state EXITING -> EBUSY; futex_lock_pi drops
    its locks and waits in wait_for_owner_exiting (mutex_lock on futex_exit_mutex), then
    `goto retry` (3ef240eaff36).  TRYLOCK_PI takes the same path: the EBUSY case comes
    before the trylock.  While it waits the word keeps the FUTEX_WAITERS bit the attempt
    set, and nothing is queued.  The exit's robust walk (handle_futex_death) makes the
    word WAITERS | OWNER_DIED; the retry finds TID 0 and no waiter and takes it, keeping
    OWNER_DIED (glibc: EOWNERDEAD)."""
    owner, waiter = s.owner, s.task()
    s.robust(owner)
    owner.begin_exit()
    pw = pending(s.lock(waiter, cmd))
    assert exiting_owner(pw) is owner and waiter.blocked is pw
    assert owner.futex_exit_mutex.waiters == 1
    assert s.word() == owner.tid | W
    assert s.queued() == 0 and not owner.pi_states
    owner.exit()
    assert pw.result() == 0
    assert s.word() == OD | waiter.tid
    assert waiter.blocked is None and not waiter.pi_states
    assert s.unlock(waiter) == 0 and s.word() == 0


@LOCKS
def test_exiting_owner_without_robust_list_is_esrch(s: Scene, cmd: int) -> None:
    """handle_exit_race after the wait: the owner is DEAD (still findable until it is
    released, then not at all -- the same answer), the word still holds its TID, unchanged
    since the attempt -> ESRCH ("the exiting task did not have a robust list").  The word
    keeps WAITERS."""
    owner, waiter = s.owner, s.task()
    owner.begin_exit()
    pw = pending(s.lock(waiter, cmd))
    owner.exit()
    assert pw.result() == ESRCH
    assert s.word() == owner.tid | W
    assert s.queued() == 0
    assert s.lock(waiter, cmd) == ESRCH  # DEAD and gone: at once, as before this change


def test_robust_list_not_naming_the_lock_is_esrch(ps: Scene) -> None:
    """handle_futex_death only touches words the dying task owns that its list names: a
    robust list elsewhere leaves the word alone, and the retry answers ESRCH."""
    owner, waiter = ps.owner, ps.task()
    ps.robust(owner)
    ps.p.store_u32(ps.a, 0)
    b = ps.a + 128  # another word the owner holds, not on its list
    ps.p.store_u32(b, owner.tid)
    owner.begin_exit()
    pw = pending(waiter.syscall_futex_nb(b, LOCK_PI | ps.fl, 0, 0, 0, 0))
    owner.exit()
    assert pw.result() == ESRCH
    assert ps.word(b) == owner.tid | W and ps.word() == 0


def test_word_changed_during_the_wait_is_read_again(ps: Scene) -> None:
    """The retry is the whole call again (futex_lock_pi's retry: label): user space
    clearing the word while the caller waits lets the retry take it (TID 0, no waiter);
    an owner that is alive by then gets a PI state and the caller blocks on it."""
    owner, w1, w2, other = ps.owner, ps.task(), ps.task(), ps.task()
    owner.begin_exit()
    pw1 = pending(ps.lock(w1))
    pw2 = pending(ps.lock(w2))
    assert owner.futex_exit_mutex.waiters == 2
    ps.p.store_u32(ps.a, other.tid)  # another task took it in user space meanwhile
    owner.exit()
    assert not pw1.done() and not pw2.done()  # both now PI waiters on `other`
    assert exiting_owner(pw1) is None and ps.queued() == 2
    assert ps.word() == other.tid | W and other.pi_states
    assert ps.unlock(other) == 0
    assert pw1.result() == 0 and ps.word() == w1.tid | W
    assert ps.unlock(w1) == 0
    assert pw2.result() == 0 and ps.word() == w2.tid | W
    assert ps.unlock(w2) == 0 and ps.word() == 0


def test_trylock_retry_that_finds_a_live_owner_is_ewouldblock(ps: Scene) -> None:
    """TRYLOCK_PI after the wait: the word now names a live task, so the retry attaches
    a PI state to it and rt_mutex_futex_trylock fails: EWOULDBLOCK (WAITERS set)."""
    owner, waiter, other = ps.owner, ps.task(), ps.task()
    owner.begin_exit()
    pw = pending(ps.lock(waiter, TRYLOCK_PI))
    ps.p.store_u32(ps.a, other.tid)
    owner.exit()
    assert pw.result() == -abi.EWOULDBLOCK
    assert ps.word() == other.tid | W and ps.queued() == 0 and not other.pi_states


def test_retry_meeting_another_exiting_owner_waits_again(ps: Scene) -> None:
    """Each retry is a full futex_lock_pi_atomic: if the word now names a second task
    that is itself in EXITING, the caller waits on that task's exit mutex in turn."""
    first, second, waiter = ps.owner, ps.task(), ps.task()
    ps.robust(second)
    first.begin_exit()
    second.begin_exit()
    pw = pending(ps.lock(waiter))
    ps.p.store_u32(ps.a, second.tid)
    first.exit()
    assert not pw.done() and exiting_owner(pw) is second
    assert second.futex_exit_mutex.waiters == 1 and first.futex_exit_mutex.waiters == 0
    second.exit()
    assert pw.result() == 0 and ps.word() == OD | waiter.tid
    assert ps.unlock(waiter) == 0


def test_several_callers_run_again_in_order(ps: Scene) -> None:
    """futex_cleanup_end releases futex_exit_mutex once; every waiter gets it in turn and
    retries.  The first retry takes the OWNER_DIED word; the next finds it owned by the
    first and blocks on it (attach_to_pi_owner of a live owner)."""
    owner, w1, w2 = ps.owner, ps.task(), ps.task()
    ps.robust(owner)
    owner.begin_exit()
    pw1, pw2 = pending(ps.lock(w1)), pending(ps.lock(w2, LOCK_PI2))
    owner.exit()
    assert pw1.result() == 0 and not pw2.done()
    assert ps.word() == OD | W | w1.tid
    assert ps.unlock(w1) == 0
    assert pw2.result() == 0 and ps.word() == W | w2.tid  # wake_futex_pi drops OWNER_DIED
    assert ps.unlock(w2) == 0


@pytest.mark.parametrize("robust", [True, False], ids=["robust", "not-robust"])
def test_pi_waiter_already_queued_attaches_without_waiting(ps: Scene, robust: bool) -> None:
    """Only the first waiter looks at the owner's state (attach_to_pi_owner);
    futex_lock_pi_atomic with a waiter queued goes to attach_to_pi_state, which does not:
    a caller arriving while the owner is EXITING queues behind the first at once.  The
    exit's exit_pi_state_list hands the lock to the top waiter, whose
    fixup_pi_state_owner sets OWNER_DIED (pi_state->owner was NULL) -- robust list or
    not."""
    owner, w1, w2 = ps.owner, ps.task(), ps.task()
    if robust:
        ps.robust(owner)
    pw1 = pending(ps.lock(w1))
    owner.begin_exit()
    pw2 = pending(ps.lock(w2))
    assert exiting_owner(pw2) is None and owner.futex_exit_mutex.waiters == 0
    assert ps.queued() == 2
    r = ps.lock(ps.task(), TRYLOCK_PI)
    assert r == -abi.EWOULDBLOCK  # attached, then rt_mutex_futex_trylock fails
    owner.exit()
    assert pw1.result() == 0 and not pw2.done()
    assert ps.word() == OD | W | w1.tid
    assert ps.unlock(w1) == 0
    assert pw2.result() == 0 and ps.word() == W | w2.tid
    assert ps.unlock(w2) == 0


# =====================================================================================
# Timeouts and signals: wait_for_owner_exiting is untimed and uninterruptible
# =====================================================================================


@pytest.mark.parametrize("cmd", [LOCK_PI, LOCK_PI2], ids=["LOCK_PI", "LOCK_PI2"])
def test_deadline_passing_during_the_wait_changes_nothing_until_the_retry(
    ps: Scene, cmd: int
) -> None:
    """futex_lock_pi sets its hrtimer up but starts it only once queued on the rt_mutex
    (hrtimer_sleeper_start_expires before rt_mutex_wait_proxy_lock); mutex_lock in
    wait_for_owner_exiting has no timeout.  A deadline that passes during the wait ends
    nothing; a retry that takes the lock returns 0 (robust owner)."""
    owner, waiter = ps.owner, ps.task()
    ps.robust(owner)
    owner.begin_exit()
    # LOCK_PI2: CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME
    utime = ps.realtime_in(5 * SEC) if cmd == LOCK_PI else ps.monotonic_in(5 * SEC)
    pw = pending(ps.lock(waiter, cmd, utime))
    ps.clock.advance(60 * SEC)
    assert not pw.done() and exiting_owner(pw) is owner
    owner.exit()
    assert pw.result() == 0 and ps.word() == OD | waiter.tid
    assert ps.unlock(waiter) == 0


def test_expired_deadline_applies_only_if_the_retry_blocks(ps: Scene) -> None:
    """The same from the other side: after the wait the retry must block (the word names
    a live owner now), and the expired hrtimer ends it at once with ETIMEDOUT -- queued
    first, so the word keeps WAITERS; the caller leaves the PI state."""
    owner, waiter, other = ps.owner, ps.task(), ps.task()
    owner.begin_exit()
    pw = pending(ps.lock(waiter, LOCK_PI, ps.realtime_in(SEC)))
    ps.clock.advance(2 * SEC)
    ps.p.store_u32(ps.a, other.tid)
    owner.exit()
    assert pw.result() == ETIMEDOUT
    assert ps.word() == other.tid | W
    assert ps.queued() == 0 and not other.pi_states and waiter.pi_blocked_on is None


def test_deadline_past_at_entry_still_waits_for_the_exit(ps: Scene) -> None:
    """An absolute deadline already past when LOCK_PI is called: futex_lock_pi_atomic
    runs first (EBUSY), the wait for the owner follows, and only a retry that blocks sees
    the expired timer.  Here the robust owner's lock is taken: 0."""
    owner, waiter = ps.owner, ps.task()
    ps.robust(owner)
    owner.begin_exit()
    pw = pending(ps.lock(waiter, LOCK_PI, ps.realtime_in(-10 * SEC)))
    assert exiting_owner(pw) is owner
    owner.exit()
    assert pw.result() == 0 and ps.word() == OD | waiter.tid
    assert ps.unlock(waiter) == 0
    # and with no exiting owner the expired deadline is ETIMEDOUT at once, as before
    ps.p.store_u32(ps.a, ps.task().tid)
    assert ps.lock(waiter, LOCK_PI, ps.realtime_in(-10 * SEC)) == ETIMEDOUT


def test_deadline_still_ahead_keeps_running_after_the_retry(ps: Scene) -> None:
    """A retry that blocks with its deadline still ahead sleeps on the rt_mutex with the
    same absolute deadline (the timeout is not read again: `goto retry`, not a
    restart)."""
    owner, waiter, other = ps.owner, ps.task(), ps.task()
    owner.begin_exit()
    utime = ps.realtime_in(10 * SEC)
    pw = pending(ps.lock(waiter, LOCK_PI, utime))
    ps.p.write(utime, struct.pack("<qq", 0, 0))  # would be long past if read again
    ps.p.store_u32(ps.a, other.tid)
    owner.exit()
    assert not pw.done() and ps.queued() == 1
    ps.clock.advance(10 * SEC - 1)
    assert not pw.done()
    ps.clock.advance(1)
    assert pw.result() == ETIMEDOUT
    assert ps.word() == other.tid | W and ps.queued() == 0


@LOCKS
def test_signal_during_the_wait_is_not_seen_if_the_retry_ends_the_call(
    ps: Scene, cmd: int
) -> None:
    """mutex_lock sleeps TASK_UNINTERRUPTIBLE: a signal during the wait ends nothing (the
    call is still blocked, so interrupt() says True).  A retry that returns (ESRCH here)
    returns; the signal is delivered on the way out, no restart."""
    owner, waiter = ps.owner, ps.task()
    owner.begin_exit()
    pw = pending(ps.lock(waiter, cmd))
    assert waiter.interrupt(handler=True, restart=False)
    assert not pw.done() and exiting_owner(pw) is owner
    owner.exit()
    assert pw.result() == ESRCH


def test_signal_during_the_wait_restarts_lock_pi_once_it_blocks(ps: Scene) -> None:
    """... and a LOCK_PI retry that has to block meets the pending signal in
    rt_mutex_wait_proxy_lock: -EINTR, which futex_lock_pi returns as ERESTARTNOINTR --
    the call runs again (reading its timeout again) and blocks: the caller is still a
    PI waiter and gets the lock on UNLOCK_PI."""
    owner, waiter, other = ps.owner, ps.task(), ps.task()
    owner.begin_exit()
    pw = pending(ps.lock(waiter))
    assert waiter.interrupt(handler=True, restart=False)
    ps.p.store_u32(ps.a, other.tid)
    owner.exit()
    assert not pw.done() and ps.queued() == 1 and waiter.pi_blocked_on is not None
    assert ps.unlock(other) == 0
    assert pw.result() == 0 and ps.word() == W | waiter.tid
    assert ps.unlock(waiter) == 0


def test_waiting_caller_that_exits_leaves_the_mutex(ps: Scene) -> None:
    """A caller killed while it waits (the emulation's task exit ends its call) stops
    waiting: nothing is left on the owner's exit mutex, and the owner's exit wakes nobody.
    """
    owner, waiter = ps.owner, ps.task()
    owner.begin_exit()
    pw = pending(ps.lock(waiter))
    waiter.exit()
    assert pw.result() == EINTR and owner.futex_exit_mutex.waiters == 0
    owner.exit()
    assert ps.word() == owner.tid | W


# =====================================================================================
# CMP_REQUEUE_PI: futex_proxy_trylock_atomic -> EBUSY -> wait_for_owner_exiting
# =====================================================================================


def test_cmp_requeue_pi_waits_then_hands_owner_died_to_the_top_waiter(s: Scene) -> None:
    """futex_requeue: futex_proxy_trylock_atomic -> futex_lock_pi_atomic for the top
    waiter -> EBUSY; the requeuer drops both bucket locks, waits for the owner's exit and
    runs again from its keys.  The robust walk left WAITERS | OWNER_DIED; the retry takes
    the word for the top waiter (OWNER_DIED kept, WAITERS forced as more are moved), wakes
    it owning the lock, and requeues the other onto its PI state: 2."""
    owner, t1, t2, waker = s.owner, s.task(), s.task(), s.task()
    s.robust(owner)
    r1, r2 = s.wait_rq(t1), s.wait_rq(t2)
    owner.begin_exit()
    pw = pending(s.cmp_requeue(waker, INT_MAX))
    assert exiting_owner(pw) is owner and waker.blocked is pw
    assert s.word() == owner.tid | W and not r1.done()
    owner.exit()
    assert pw.result() == 2
    assert r1.result() == 0 and not r2.done()
    assert s.word() == OD | W | t1.tid
    assert s.unlock(t1) == 0
    assert r2.result() == 0 and s.word() == W | t2.tid
    assert s.unlock(t2) == 0


def test_cmp_requeue_pi_on_a_dead_non_robust_owner_is_esrch(s: Scene) -> None:
    """The retry's futex_lock_pi_atomic for the top waiter finds the DEAD owner's TID
    unchanged: handle_exit_race ESRCH, which futex_requeue returns; the waiter stays on the
    condition word (futex_requeue_pi_complete rewinds it)."""
    owner, t1, waker = s.owner, s.task(), s.task()
    r1 = s.wait_rq(t1)
    owner.begin_exit()
    pw = pending(s.cmp_requeue(waker, 0))
    waker.interrupt(handler=True)  # uninterruptible: nothing happens yet
    assert not pw.done()
    owner.exit()
    assert pw.result() == ESRCH and not r1.done()
    assert s.word() == owner.tid | W
    s.p.store_u32(s.a, 0)
    assert s.cmp_requeue(waker, 0) == 1 and r1.result() == 0
    assert s.word() == t1.tid
    assert s.unlock(t1) == 0


def test_cmp_requeue_pi_retry_checks_the_condition_word_again(ps: Scene) -> None:
    """`goto retry` in futex_requeue re-reads *uaddr1 against cmpval: a condition word
    that moved while the requeuer waited is EAGAIN."""
    owner, t1, waker = ps.owner, ps.task(), ps.task()
    ps.robust(owner)
    r1 = ps.wait_rq(t1)
    owner.begin_exit()
    pw = pending(ps.cmp_requeue(waker, 0))
    ps.p.store_u32(ps.cv, 1)
    owner.exit()
    assert pw.result() == EAGAIN and not r1.done()
    assert ps.word() == OD | W  # the robust walk's doing; nobody took it
    assert t1.interrupt(handler=True)  # still on the condvar: restarts, then EAGAIN
    assert r1.result() == EAGAIN


# =====================================================================================
# exec: futex_exec_release's state window
# =====================================================================================


def test_lock_pi_racing_exec_attaches_to_the_task_after_it(ps: Scene) -> None:
    """futex_exec_release runs the same state machine (af8cbda2cfca); a caller that found
    the task EXITING waits and retries, and -- as wait_for_owner_exiting says -- may then
    find it OK again: with no robust list the word still names it, so the caller gets a
    PI state owned by the exec'd task and blocks on it (boosting it)."""
    owner, waiter = ps.owner, ps.task()
    waiter.set_scheduler(abi.SCHED_FIFO, 40)
    owner.begin_exec()
    pw = pending(ps.lock(waiter))
    owner.exec()
    assert owner.futex_state is OK and owner.alive
    assert not pw.done() and exiting_owner(pw) is None
    assert owner.prio == waiter.prio and owner.pi_states
    assert ps.unlock(owner) == 0
    assert pw.result() == 0 and ps.word() == W | waiter.tid
    assert owner.prio == owner.normal_prio
    assert ps.unlock(waiter) == 0


def test_lock_pi_racing_exec_with_a_robust_list_takes_it(ps: Scene) -> None:
    """With a robust list naming the lock, exec's futex_cleanup walks it like exit's: the
    retry finds WAITERS | OWNER_DIED and takes the lock."""
    owner, waiter = ps.owner, ps.task()
    ps.robust(owner)
    owner.begin_exec()
    pw = pending(ps.lock(waiter, TRYLOCK_PI))
    owner.exec()
    assert pw.result() == 0 and ps.word() == OD | waiter.tid
    assert owner.robust_list == 0


# =====================================================================================
# Threaded: a real thread blocks in the call until another finishes the exit
# =====================================================================================


def _threaded(fn: Callable[[], Any], owner: Task) -> Blocking:
    """Run ``fn`` on a thread; return once it waits on ``owner``'s exit mutex."""
    b = Blocking(fn)
    wait_until(
        lambda: owner.futex_exit_mutex.waiters == 1 or not b.thread.is_alive(),
        "the call waits on the owner's exit mutex",
    )
    assert b.thread.is_alive(), "the call did not block"
    return b


@pytest.mark.parametrize("cmd", [LOCK_PI, TRYLOCK_PI], ids=["LOCK_PI", "TRYLOCK_PI"])
def test_threaded_call_blocks_until_the_exit_ends(ps: Scene, cmd: int) -> None:
    """Threaded: syscall_futex blocks its thread in wait_for_owner_exiting; the exit
    finished on the main thread releases futex_exit_mutex and the retry's answer comes
    back to the blocked thread (robust owner: 0, OWNER_DIED)."""
    owner, waiter = ps.owner, ps.task()
    ps.robust(owner)
    owner.begin_exit()
    b = _threaded(lambda: waiter.syscall_futex(ps.a, cmd | ps.fl, 0, 0, 0, 0), owner)
    assert ps.word() == owner.tid | W
    owner.exit()
    assert b.result() == 0
    assert ps.word() == OD | waiter.tid
    assert ps.unlock(waiter) == 0


def test_threaded_exit_on_its_own_thread(ps: Scene) -> None:
    """Threaded, both sides: the owner's exit runs on one thread and the caller blocks
    on another; the caller's retry runs on the exiting thread (as a waker's wake does)
    and the caller's thread returns ESRCH (no robust list)."""
    owner, waiter = ps.owner, ps.task()
    owner.begin_exit()
    b = _threaded(lambda: waiter.syscall_futex(ps.a, LOCK_PI | ps.fl, 0, 0, 0, 0), owner)
    exiting = Blocking(owner.exit)
    exiting.result()
    assert b.result() == ESRCH
    assert owner.futex_state is DEAD


def test_threaded_cmp_requeue_pi(ps: Scene) -> None:
    """Threaded CMP_REQUEUE_PI: the requeuer's thread blocks while uaddr2's owner exits,
    then returns the retry's count; the woken waiter owns the lock."""
    owner, t1, waker = ps.owner, ps.task(), ps.task()
    ps.robust(owner)
    r1 = ps.wait_rq(t1)
    owner.begin_exit()
    b = _threaded(lambda: waker.syscall_futex(ps.cv, CMP_RQ | ps.fl, 1, 0, ps.a, 0), owner)
    owner.exit()
    assert b.result() == 1 and r1.result() == 0
    assert ps.word() == OD | t1.tid
    assert ps.unlock(t1) == 0


def _race_once(x: Scene, robust: bool, nwaiters: int) -> list[int]:
    """One owner exiting while ``nwaiters`` threads call LOCK_PI (and UNLOCK_PI when they
    get it); the calls' results."""
    owner = x.owner
    x.robust(owner, padding=1500, lock=robust)  # a long walk: a wide EXITING window
    waiters = [x.task() for _ in range(nwaiters)]
    barrier = threading.Barrier(nwaiters + 1)
    errors: list[str] = []

    def take(t: Task) -> int:
        barrier.wait(STATE_TIMEOUT)
        r = t.syscall_futex(x.a, LOCK_PI | x.fl, 0, 0, 0, 0)
        if r == 0:
            if x.word() & abi.FUTEX_TID_MASK != t.tid:
                errors.append(f"{t.tid} owns the lock, the word says {x.word():#x}")
            # glibc clears OWNER_DIED once it owns the lock (EOWNERDEAD): else an
            # UNLOCK_PI racing a new waiter's WAITERS bit is EINVAL (wake_futex_pi
            # compares the TID bits with the whole value it read first).
            old = x.word()
            while old & OD and (seen := x.p.cas_u32(x.a, old, old & ~OD)) != old:
                old = seen
            u = t.syscall_futex(x.a, UNLOCK_PI | x.fl, 0, 0, 0, 0)
            if u != 0:
                errors.append(f"unlock by {t.tid} returned {u}")
        return r

    def die() -> None:
        barrier.wait(STATE_TIMEOUT)
        owner.exit()

    runs = [Blocking(lambda t=t: take(t)) for t in waiters]
    Blocking(die).result()
    results = [r.result() for r in runs]
    assert errors == []
    return results


@pytest.mark.parametrize("robust", [True, False], ids=["robust", "not-robust"])
def test_threaded_race_of_exit_and_lock_pi(kernel: LinuxKernel, robust: bool) -> None:
    """Threaded, unscripted: an owner exits (begin and end in one go) while other threads
    call LOCK_PI on its lock, as the selftest futex_lock_pi_exiting's stress case does.
    Whichever interleaving happens, every call returns (no livelock: 3ef240eaff36) with 0
    -- owning the word, and unlocking it -- or, with no robust list, ESRCH; nothing is
    left queued or waiting on an exit mutex.  The owner's robust list is long, so that
    some calls meet it in EXITING (a few percent of them, measured) and wait."""
    for _ in range(40):
        x = Scene(kernel, True)
        results = _race_once(x, robust, 3)
        assert all(r == 0 or (r == ESRCH and not robust) for r in results), results
        assert x.queued() == 0
        x.check()
