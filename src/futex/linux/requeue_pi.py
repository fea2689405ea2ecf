"""Requeue-PI: FUTEX_WAIT_REQUEUE_PI and FUTEX_CMP_REQUEUE_PI (a condition variable
handing its waiters to a PI mutex; Linux ``kernel/futex/requeue.c``).

A WAIT_REQUEUE_PI waiter sleeps on the non-PI word ``uaddr`` and declares the PI word
``uaddr2`` it will be moved to.  Its life, as the ``Q_REQUEUE_PI_*`` states:

==========  ===============================================  =========================
phase       where it is                                      a timeout / a signal
==========  ===============================================  =========================
waiting     queued on ``uaddr`` (looks PI to plain ops:      ETIMEDOUT / restart
            WAKE, REQUEUE answer EINVAL)                     (ERESTARTNOINTR)
locked      CMP_REQUEUE_PI took ``uaddr2`` for it and woke   (returns 0, owns the lock)
            it (``requeue_pi_wake_futex``)
requeued    blocked on ``uaddr2``'s PI state, like a         ETIMEDOUT / EWOULDBLOCK
            LOCK_PI waiter; UNLOCK_PI hands it the lock      (not restartable: the
                                                             condvar word moved on)
==========  ===============================================  =========================

WAIT_REQUEUE_PI checks, in order: ``uaddr == uaddr2`` EINVAL; the timeout (syscall layer);
key of ``uaddr2`` for writing (EINVAL, EFAULT); ``futex_wait_setup`` on ``uaddr`` (EINVAL,
EFAULT, EAGAIN); the two keys equal: EINVAL.

CMP_REQUEUE_PI checks, in order: negative counts EINVAL; ``uaddr == uaddr2`` EINVAL;
``nr_wake != 1`` EINVAL; keys (``uaddr2`` for writing); equal keys EINVAL; ``*uaddr !=
val3`` EAGAIN; then ``futex_proxy_trylock_atomic``: read ``uaddr2`` (EFAULT); with a top
waiter that is not a WAIT_REQUEUE_PI waiter, or declared another target: EINVAL; try to
take ``uaddr2`` for it (WAITERS forced when more are to be moved): taken -> it wakes
owning the lock and counts 1; else the rest are moved onto the PI state (each must be a
WAIT_REQUEUE_PI waiter for this target, EINVAL otherwise; a deadlock stops the walk with
EDEADLK).  Returns woken + requeued.

When ``uaddr2`` names an owner in the middle of its futex exit (``futex_lock_pi_atomic``
-> EBUSY), ``futex_requeue`` drops its locks, waits for that exit to end
(``wait_for_owner_exiting``) and runs again from its keys and value check: the call is
then a pending wait (its request an :class:`~futex.linux.pi_exit.ExitAwareRequest`) that
no timeout (it has none) or signal ends, and its answer is that of the run after the exit
-- EAGAIN if ``uaddr`` moved meanwhile, the top waiter woken owning ``uaddr2`` if a robust
list handed it on (OWNER_DIED kept), ESRCH if the dead owner's TID is still there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from futex.kernel import (
    FutexError,
    Key,
    LockedBucket,
    MemoryFault,
    PiDeadlock,
    PiState,
    PiWaiter,
    Waiter,
    notify_all,
)
from futex.kernel.blocking import PendingWait
from futex.kernel.request import Deadline, Request
from futex.linux import abi
from futex.linux.decode import errno_of, reread_timeout
from futex.linux.pi import (
    Retry,
    finish_pi_wait,
    lock_pi_atomic_pi_locked,
    release_if_idle_pi_locked,
)
from futex.linux.pi_exit import (
    ExitAwareRequest,
    OwnerExiting,
    wait_for_owner_exiting,
)
from futex.linux.policy import LINUX_POLICY

if TYPE_CHECKING:
    from futex.linux.kernel import Task

__all__ = ["RequeuePiMark", "futex_cmp_requeue_pi", "futex_wait_requeue_pi"]


class RequeuePiMark:
    """``w.pi`` of a WAIT_REQUEUE_PI waiter still on its condition word: the target key
    it declared.  Plain operations see a PI-ish waiter and answer EINVAL."""

    __slots__ = ("key2", "task")

    def __init__(self, task: Task, key2: Key) -> None:
        self.task = task
        self.key2 = key2


class WaitRequeuePiRequest(Request):
    """One WAIT_REQUEUE_PI call, as a pending wait's request."""

    restart_code = abi.ERESTARTNOINTR

    __slots__ = ("bitset", "op", "private", "task", "uaddr", "uaddr2", "utime", "val", "waiter")

    def __init__(
        self,
        task: Task,
        uaddr: int,
        uaddr2: int,
        private: bool,
        val: int,
        op: int = 0,
        utime: int = 0,
    ) -> None:
        self.task = task
        self.op = op
        self.utime = utime
        self.uaddr = uaddr
        self.uaddr2 = uaddr2
        self.private = private
        self.val = val
        self.bitset = abi.FUTEX_BITSET_MATCH_ANY
        self.waiter: Waiter | None = None


    def refresh_deadline(self, deadline: Deadline | None) -> Deadline | int | None:
        """ERESTARTNOINTR runs the system call again: its timeout is read again."""
        return reread_timeout(self.task, self.op, self.utime)

    def signal_result(self) -> int | None:
        """After the requeue a signal ends the call with EWOULDBLOCK (the condvar word
        has moved on, a restart could only say so); before it, the call restarts."""
        w = self.waiter
        if w is not None and isinstance(w.pi, PiWaiter):
            return -abi.EWOULDBLOCK
        return None

    def prepare(self, notify: Callable[[Waiter], None]) -> int | None:
        task = self.task
        manager = task.process.futex
        space = task.process.space
        try:
            key2 = manager.key(space, self.uaddr2, self.private, write=True)
        except FutexError as exc:
            return errno_of(exc)
        w = Waiter(notify, owner=task, prio=task.queue_prio, tid=task.tid)
        w.pi = RequeuePiMark(task, key2)
        try:
            found = manager.try_wait_prepare(w, space, self.uaddr, self.private, self.val)
        except FutexError as exc:
            return errno_of(exc)
        if found is not None:
            return -abi.EAGAIN
        if w.key == key2:
            manager.wait_complete(w)
            return -abi.EINVAL
        self.waiter = w
        return None

    def complete(self) -> int | None:
        """0 once woken owning ``uaddr2`` (taken by the requeue, or handed over by
        UNLOCK_PI), else leave whichever queue it is on and answer ``None``."""
        return finish_pi_wait(self.task, self.waiter, self.uaddr2)

    def detach(self) -> None:
        if self.waiter is not None:
            self.waiter.notify = None


def futex_wait_requeue_pi(
    task: Task,
    uaddr: int,
    uaddr2: int,
    private: bool,
    val: int,
    deadline: Deadline | None,
    op: int = 0,
    utime: int = 0,
) -> int | PendingWait:
    """WAIT_REQUEUE_PI: 0 once the caller owns the PI futex at ``uaddr2``, or -errno."""
    if uaddr == uaddr2:
        return -abi.EINVAL
    request = WaitRequeuePiRequest(task, uaddr, uaddr2, private, val, op, utime)
    return PendingWait(task, deadline, request, task.kernel.clock, LINUX_POLICY.outcomes).start()


def futex_cmp_requeue_pi(
    task: Task,
    uaddr: int,
    uaddr2: int,
    private: bool,
    nr_wake: int,
    nr_requeue: int,
    cmpval: int,
) -> int | PendingWait:
    """CMP_REQUEUE_PI; see the module docstring for the order of checks.  An int, or a
    pending wait while ``uaddr2``'s owner is exiting."""
    if nr_wake < 0 or nr_requeue < 0 or uaddr == uaddr2 or nr_wake != 1:
        return -abi.EINVAL
    request = CmpRequeuePiRequest(task, uaddr, uaddr2, private, nr_requeue, cmpval)
    try:
        return request.attempt()
    except OwnerExiting as busy:
        request.busy = busy.owner
    return PendingWait(task, None, request, task.kernel.clock, LINUX_POLICY.outcomes).start()


class CmpRequeuePiRequest(ExitAwareRequest):
    """One CMP_REQUEUE_PI call.  It queues nothing: it is pending only while it waits
    for an exiting owner of ``uaddr2`` (``exit_wait``), and then runs again."""

    __slots__ = ("busy", "cmpval", "nr_requeue", "private", "task", "uaddr", "uaddr2")

    def __init__(
        self, task: Task, uaddr: int, uaddr2: int, private: bool, nr_requeue: int, cmpval: int
    ) -> None:
        self.exit_wait = None
        self.task = task
        self.uaddr = uaddr
        self.uaddr2 = uaddr2
        self.private = private
        self.nr_requeue = nr_requeue
        self.cmpval = cmpval
        #: The exiting owner an attempt ran into, not yet waited for.
        self.busy: Task | None = None

    def prepare(self, notify: Callable[[Waiter], None]) -> int | None:
        while True:
            owner, self.busy = self.busy, None
            if owner is not None and wait_for_owner_exiting(self, owner, notify):
                return None
            try:
                return self.attempt()
            except OwnerExiting as busy:
                self.busy = busy.owner

    def complete(self) -> int | None:
        """Stop waiting for the owner (the call runs again, or is killed)."""
        self.end_exit_wait()
        return None

    def attempt(self) -> int:
        """``futex_requeue`` from its ``retry:`` label: the answer, or raise
        :class:`OwnerExiting` (every lock dropped, the woken waiters told)."""
        task = self.task
        manager = task.process.futex
        space = task.process.space
        try:
            k1 = manager.key(space, self.uaddr, self.private)
            k2 = manager.key(space, self.uaddr2, self.private, write=True)
        except FutexError as exc:
            return errno_of(exc)
        if k1 == k2:
            return -abi.EINVAL
        while True:
            woken: list[Waiter] = []
            try:
                with manager.lock_keys(k1, k2) as (h1, h2), manager.pi.lock:
                    return _requeue_waiters_pi_locked(
                        task, self.uaddr, self.uaddr2, h1, h2, k1, k2, self.nr_requeue,
                        self.cmpval, woken,
                    )
            except Retry:
                continue
            except MemoryFault:
                return -abi.EFAULT
            finally:
                notify_all(woken)


def _requeue_waiters_pi_locked(
    task: Task,
    uaddr: int,
    uaddr2: int,
    h1: LockedBucket,
    h2: LockedBucket,
    k1: Key,
    k2: Key,
    nr_requeue: int,
    cmpval: int,
    woken: list[Waiter],
) -> int:
    """``futex_requeue``'s requeue-PI body: both bucket locks and the PI-domain lock
    held."""
    space = task.process.space
    domain = task.process.futex.pi
    if space.load_u32(uaddr) != cmpval:
        return -abi.EAGAIN
    # futex_proxy_trylock_atomic reads the PI word first, page faults disabled; a fault
    # goes to fault_in_user_writeable
    space.load_u32_nofault(uaddr2)
    top = h1.head(k1)
    if top is None:
        return 0
    if not isinstance(top.pi, RequeuePiMark) or top.pi.key2 != k2:
        return -abi.EINVAL
    owner_task: Task = top.pi.task
    got = lock_pi_atomic_pi_locked(task, uaddr2, h2, k2, owner_task, set_waiters=nr_requeue > 0)
    count = 0
    state: PiState | None = None
    if isinstance(got, int):
        if got != 1:
            return got
        top.pi = None  # requeue_pi_wake_futex: it owns uaddr2
        h1.wake(top, woken)
        count = 1
        # the state lock_pi_atomic_pi_locked just attached (set_waiters): the newest of the owner's
        # with this key -- a private key is an address, which the owner may also hold a
        # PI state at in another process (its states are listed in attach order)
        state = next((s for s in reversed(owner_task.pi_states) if s.key == k2), None)
    else:
        state = got
    # "Requeue nr_requeue waiters and possibly one more" when the lock was not taken.
    limit = nr_requeue if count else nr_requeue + 1
    moved = 0
    try:
        for w in h1.waiters(k1):
            if moved >= limit:
                break
            mark = w.pi
            if not isinstance(mark, RequeuePiMark) or mark.key2 != k2 or state is None:
                return -abi.EINVAL
            try:
                pw = domain.block(state, mark.task)
            except PiDeadlock:
                return -abi.EDEADLK
            h1.move(w, h2, k2)
            w.pi = pw
            pw.waiter = w
            moved += 1
            count += 1
    finally:
        if state is not None:
            release_if_idle_pi_locked(task, state)
    return count
