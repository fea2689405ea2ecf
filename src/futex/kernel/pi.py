"""Priority inheritance: the rt_mutex behind a PI futex, without the futex word.

A :class:`PiState` is the kernel side of one contended PI futex (Linux ``futex_pi_state``
with its ``rt_mutex``): an owner task and the tasks blocked on it, ordered as rt_mutex
orders them — by priority, FIFO among equals.  The word protocol (TID, WAITERS,
OWNER_DIED) belongs to the personality; this module only knows tasks and priorities.

Priorities are Linux's numbers: lower is more urgent; 0..99 are real-time, 100..139 are
SCHED_OTHER (120 + nice).  Waiters are *ordered* by ``__waiter_prio``: an RT task by its
priority, every other task as DEFAULT_PRIO (120), so non-RT waiters queue FIFO whatever
their nice value.  A task's effective priority is the most urgent of its own
``normal_prio`` and the priority of the *task* at the top of every PI state it owns
(``rt_mutex_setprio`` with ``__rt_effective_prio``: the top waiter's ``prio``, so a lone
nice -10 waiter lends 110); a change walks the chain owner -> lock the owner is blocked on
-> that lock's owner, as ``rt_mutex_adjust_prio_chain`` does.  Blocking on a lock whose
owner chain leads back to the blocker is a deadlock (EDEADLK), detected by the same walk,
as is a chain longer than ``MAX_LOCK_DEPTH``.

The ordering rule is a named policy (:class:`Inheritance`): :data:`RT_MUTEX` is Linux's
above; :data:`OWNED_WAIT_QUEUE` is Zircon's, where waiters are ordered by their effective
priority, so an owner inherits the most urgent priority of all its waiters, transitively.
A domain may also be told (``on_reorder``) when a blocked waiter's place changes, so a
personality whose futex queue *is* the PI queue (Zircon) keeps the two in step.

Locking: every PI state and every task's PI fields are protected by one
:class:`PiDomain` lock (Linux has per-task ``pi_lock`` and per-lock ``wait_lock``; one lock
is enough here).  Lock order: bucket lock, then the domain lock (the whole tree, and the
one personality that takes the domain lock first, are in :mod:`futex.kernel.locking`).
:meth:`PiDomain.attach`, :meth:`~PiDomain.block`, :meth:`~PiDomain.unblock` and
:meth:`~PiDomain.hand_off` require the domain lock; :meth:`~PiDomain.set_normal_prio` takes
it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from futex.kernel.errors import FutexError
from futex.kernel.keys import Key
from futex.kernel.locking import DEBUG_LOCKS, assert_held, new_lock

__all__ = [
    "DEFAULT_PRIO",
    "OWNED_WAIT_QUEUE",
    "RT_MUTEX",
    "Inheritance",
    "MAX_LOCK_DEPTH",
    "MAX_RT_PRIO",
    "PiDeadlock",
    "PiDomain",
    "PiState",
    "PiTask",
    "PiWaiter",
    "waiter_prio",
]

#: Linux's ``MAX_RT_PRIO``: priorities below it are real-time.
MAX_RT_PRIO = 100
#: Linux's ``DEFAULT_PRIO``: a SCHED_OTHER task at nice 0 (``MAX_RT_PRIO + 20``).
DEFAULT_PRIO = 120
#: Longest owner chain the walk follows before it calls it a deadlock (max_lock_depth).
MAX_LOCK_DEPTH = 1024


class PiDeadlock(FutexError):
    """Blocking would close an owner chain on itself (or the chain is too long)."""


class PiTask(Protocol):
    """What priority inheritance needs of a task."""

    tid: int
    normal_prio: int
    #: Effective priority, written by this module.
    prio: int
    #: The PI waiter this task is blocked in, if any (written by this module).
    pi_blocked_on: PiWaiter | None
    #: PI states this task owns (written by this module).
    pi_states: list[PiState]


def waiter_prio(task: PiTask) -> int:
    """How urgently ``task`` waits: its effective priority if real-time, else 120."""
    return task.prio if task.prio < MAX_RT_PRIO else DEFAULT_PRIO


@dataclass(frozen=True)
class Inheritance:
    """How a PI queue orders its waiters, and so what an owner inherits (named policy)."""

    name: str
    #: The priority a blocked task queues at (lower is more urgent).
    waiter_prio: Callable[[PiTask], int]


def _effective(task: PiTask) -> int:
    return task.prio


#: Linux's rt_mutex: RT waiters by priority, every other waiter as DEFAULT_PRIO (FIFO).
RT_MUTEX = Inheritance("rt_mutex", waiter_prio)
#: Zircon's OwnedWaitQueue: every waiter by its effective priority (the max rule).
OWNED_WAIT_QUEUE = Inheritance("owned_wait_queue", _effective)


class PiWaiter:
    """A task blocked on a :class:`PiState` (Linux ``rt_mutex_waiter``)."""

    __slots__ = ("owner_died", "prio", "seq", "state", "task", "waiter")

    def __init__(self, task: PiTask, state: PiState, seq: int, prio: int) -> None:
        self.task = task
        self.state = state
        self.prio = prio
        self.seq = seq
        #: The futex-queue waiter this PI wait goes with (set by the caller).
        self.waiter: Any = None
        #: Handed the lock by a dying owner (``exit_pi_state_list``).
        self.owner_died = False

    def order(self) -> tuple[int, int]:
        return self.prio, self.seq


class PiState:
    """The kernel side of one PI futex: owner and ordered waiters."""

    __slots__ = ("key", "owner", "waiters")

    def __init__(self, key: Key, owner: PiTask | None) -> None:
        self.key = key
        self.owner = owner
        self.waiters: list[PiWaiter] = []

    def top(self) -> PiWaiter | None:
        return self.waiters[0] if self.waiters else None

    def __repr__(self) -> str:
        owner = None if self.owner is None else self.owner.tid
        return f"<PiState key={self.key!r} owner={owner} waiters={len(self.waiters)}>"


class PiDomain:
    """The lock and the bookkeeping of priority inheritance for a set of tasks (one per
    kernel, shared by every manager forked from the root)."""

    def __init__(
        self,
        inheritance: Inheritance = RT_MUTEX,
        on_reorder: Callable[[PiWaiter], None] | None = None,
    ) -> None:
        self.lock = new_lock()
        self._seq = itertools.count()
        self.inheritance = inheritance
        self._waiter_prio = inheritance.waiter_prio
        #: Called (domain lock held) when a blocked waiter's priority, and so its place,
        #: changed.
        self.on_reorder = on_reorder

    def would_cycle(self, state: PiState, owner: PiTask, blocker: PiTask | None) -> bool:
        """Whether making ``owner`` the owner of ``state`` (with ``blocker`` about to block
        on it) closes a cycle: the chain owner -> the queue it is blocked on -> that
        queue's owner -> ... reaches ``state`` or ``blocker`` (Zircon's cycle check in
        ``OwnedWaitQueue``)."""
        cur: PiTask | None = owner
        depth = 0
        while cur is not None:
            if cur is blocker or depth > MAX_LOCK_DEPTH:
                return True
            w = cur.pi_blocked_on
            if w is None:
                return False
            if w.state is state:
                return True
            cur = w.state.owner
            depth += 1
        return False

    # -- ownership ----------------------------------------------------------------------------

    def attach(self, state: PiState, owner: PiTask | None) -> None:
        """Make ``owner`` the owner of ``state`` (domain lock held)."""
        if DEBUG_LOCKS:
            assert_held(self.lock)
        old = state.owner
        if old is owner:
            return
        if old is not None:
            old.pi_states.remove(state)
            self._adjust_pi_locked(old)
        state.owner = owner
        if owner is not None:
            owner.pi_states.append(state)
            self._adjust_pi_locked(owner)

    # -- waiters --------------------------------------------------------------------------------

    def block(self, state: PiState, task: PiTask) -> PiWaiter:
        """Queue ``task`` on ``state`` and boost the owner chain (domain lock held).

        Raises :class:`PiDeadlock`, with nothing queued, if the chain from the owner leads
        back to ``task`` or is longer than ``MAX_LOCK_DEPTH``.
        """
        if DEBUG_LOCKS:
            assert_held(self.lock)
        owner = state.owner
        depth = 0
        while owner is not None:
            if owner is task:
                raise PiDeadlock(f"task {task.tid} would wait on itself through the chain")
            depth += 1
            if depth > MAX_LOCK_DEPTH:
                raise PiDeadlock("owner chain deeper than max_lock_depth")
            blocked = owner.pi_blocked_on
            owner = None if blocked is None else blocked.state.owner
        w = PiWaiter(task, state, next(self._seq), self._waiter_prio(task))
        self._insert(state, w)
        task.pi_blocked_on = w
        if state.owner is not None:
            self._adjust_pi_locked(state.owner)
        return w

    def unblock(self, w: PiWaiter) -> None:
        """Take ``w`` off its state (timeout, signal, or a hand-off to it); the old owner
        chain loses the boost (domain lock held)."""
        if DEBUG_LOCKS:
            assert_held(self.lock)
        state = w.state
        if w in state.waiters:
            state.waiters.remove(w)
        if w.task.pi_blocked_on is w:
            w.task.pi_blocked_on = None
        if state.owner is not None:
            self._adjust_pi_locked(state.owner)

    def hand_off(self, state: PiState) -> PiTask | None:
        """Give ``state`` to its top waiter (``wake_futex_pi``): unblock it, make it the
        owner.  Returns the new owner, or ``None`` when nobody waits."""
        if not state.waiters:
            self.attach(state, None)
            return None
        top = state.waiters[0]
        self.unblock(top)
        self.attach(state, top.task)
        return top.task

    # -- priorities -------------------------------------------------------------------------

    def set_normal_prio(self, task: PiTask, prio: int) -> None:
        """A scheduling change (sched_setscheduler): re-derive and propagate."""
        with self.lock:
            task.normal_prio = prio
            self._adjust_pi_locked(task)

    def effective_prio(self, task: PiTask) -> int:
        prio = task.normal_prio
        for state in task.pi_states:
            waiters = state.waiters  # its top waiter lends its priority
            if waiters and waiters[0].task.prio < prio:
                prio = waiters[0].task.prio
        return prio

    def _insert(self, state: PiState, w: PiWaiter) -> None:
        waiters = state.waiters
        pos = len(waiters)
        key = w.order()
        while pos > 0 and waiters[pos - 1].order() > key:
            pos -= 1
        waiters.insert(pos, w)

    def _adjust_pi_locked(self, task: PiTask) -> None:
        """``rt_mutex_adjust_prio_chain``: recompute ``task``'s effective priority and
        carry a change down the chain of locks it is blocked on (domain lock held)."""
        if DEBUG_LOCKS:
            assert_held(self.lock)
        depth = 0
        cur: PiTask | None = task
        while cur is not None and depth <= MAX_LOCK_DEPTH:
            depth += 1
            prio = self.effective_prio(cur)
            if prio == cur.prio:
                return
            cur.prio = prio
            w = cur.pi_blocked_on
            if w is None:
                return
            state = w.state
            new = self._waiter_prio(cur)
            if new != w.prio:  # it moves to the tail of its new priority group
                state.waiters.remove(w)
                w.prio = new
                w.seq = next(self._seq)
                self._insert(state, w)
                if self.on_reorder is not None:
                    self.on_reorder(w)
            cur = state.owner  # the owner may lend this task's new priority on

    def check_task(self, task: Any) -> None:
        """Assert the PI invariants of ``task``: its priority is what its states imply,
        and it waits where it says it does."""
        assert task.prio == self.effective_prio(task), f"task {task.tid} prio is stale"
        w = task.pi_blocked_on
        if w is not None:
            assert w in w.state.waiters, f"task {task.tid} is not in the waiters it names"
        for state in task.pi_states:
            assert state.owner is task
