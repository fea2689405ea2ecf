"""Zircon futex ownership and priority inheritance (``OwnedWaitQueue``).

A futex is unowned or has one owner (``docs/reference/kernel_objects/futex.md``); a futex
without waiters has no owner (``ResetOwnerIfNoWaiters``); a dying or dead thread named as
owner means no owner; an owner that exits leaves its futexes unowned
(``DisownAllQueues``).  A proposed owner whose chain (owner -> futex it waits on -> that
futex's owner -> ...) leads back to the futex or to the blocking thread would close a
cycle: the owner is silently set to nothing and the call goes on
(``LockForOwnerReplacement``).

An active futex is a :class:`~futex.kernel.PiState` in ``Process.states`` (key -> owner
and inheritance queue).  Each waiting thread is queued twice, in step: in the core's wait
queue (wake order) and in its futex's :class:`~futex.kernel.PiState` (inheritance); the
PI domain's ``on_reorder`` hook keeps the two orders equal.

Every function here runs under the kernel's *thread lock* (``kernel.lock``, the PI
domain's lock): hence the ``_thread_locked`` suffix.  None takes a bucket lock except
through the core's public calls (``reposition``), which nest bucket locks inside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from futex.kernel import PiDeadlock, PiState, PiWaiter, Waiter
from futex.kernel.locking import DEBUG_LOCKS, assert_held

if TYPE_CHECKING:
    from futex.zircon.kernel import Process, Thread

__all__ = [
    "assign_thread_locked",
    "block_thread_locked",
    "disown_all_thread_locked",
    "move_thread_locked",
    "reset_if_idle_thread_locked",
    "state_thread_locked",
    "unblock_thread_locked",
    "woken_thread_locked",
]


def state_thread_locked(process: Process, key: int) -> PiState:
    """The active futex at ``key``, made active (unowned, no waiters) if it was not."""
    if DEBUG_LOCKS:
        assert_held(process.kernel.lock)
    state = process.states.get(key)
    if state is None:
        state = process.states[key] = PiState(key, None)
    return state


def assign_thread_locked(
    process: Process, state: PiState, owner: Thread | None, blocker: Thread | None
) -> None:
    """Make ``owner`` the owner of ``state``, or nobody if that would close a cycle
    (``blocker``: the thread about to block on ``state``, if any)."""
    if DEBUG_LOCKS:
        assert_held(process.kernel.lock)
    pi = process.kernel.pi
    if owner is not None and pi.would_cycle(state, owner, blocker):
        owner = None
    pi.attach(state, owner)


def reset_if_idle_thread_locked(process: Process, state: PiState) -> None:
    """``ResetOwnerIfNoWaiters``; an idle futex leaves the active table."""
    if DEBUG_LOCKS:
        assert_held(process.kernel.lock)
    if not state.waiters:
        process.kernel.pi.attach(state, None)
        if process.states.get(state.key) is state:
            del process.states[state.key]


def block_thread_locked(process: Process, state: PiState, t: Thread, w: Waiter) -> None:
    """``t``, just queued in the core as ``w``, joins ``state``'s inheritance queue and
    lends its priority up the owner chain (the caller records ``t.blocking_futex``)."""
    if DEBUG_LOCKS:
        assert_held(process.kernel.lock)
    pi = process.kernel.pi
    try:
        pw = pi.block(state, t)
    except PiDeadlock:
        # An owner chain longer than the PI walk follows: as for a cycle, the owner
        # becomes nothing and the wait goes on (LockForOwnerReplacement); block()
        # queued nothing, and with no owner it cannot fail.
        pi.attach(state, None)
        pw = pi.block(state, t)
    pw.waiter = w
    if w.prio != pw.prio:
        # The thread gave the futex up (it owned it: the new owner replaced it) and with
        # it the boost its waiters lent it, after it queued: it waits at its priority
        # now (OwnedWaitQueue::BlockAndAssignOwner assigns, then blocks).
        process.futex.reposition(w, pw.prio)


def unblock_thread_locked(process: Process, t: Thread) -> None:
    """``t`` dequeued itself from the core (timeout, suspension, kill): it leaves its
    inheritance queue, and the futex it waited on resets if it is now idle."""
    if DEBUG_LOCKS:
        assert_held(process.kernel.lock)
    pw = t.pi_blocked_on  # its state follows requeues
    t.blocking_futex = None
    if pw is not None:
        state = pw.state
        t.kernel.pi.unblock(pw)
        reset_if_idle_thread_locked(process, state)


def woken_thread_locked(woken: list[Waiter]) -> None:
    """Waiters a wake dequeued leave their inheritance queue."""
    for w in woken:
        t: Thread = w.owner
        if DEBUG_LOCKS:
            assert_held(t.kernel.lock)
        pw = t.pi_blocked_on
        if pw is not None:
            t.kernel.pi.unblock(pw)
        t.blocking_futex = None


def move_thread_locked(process: Process, src: PiState, dst: PiState, key: int) -> None:
    """The waiters the core moved to ``key`` move to ``dst``'s inheritance queue too, in
    the order they were moved (each to the tail of its priority group, as in the core)."""
    if DEBUG_LOCKS:
        assert_held(process.kernel.lock)
    pi = process.kernel.pi
    for pw in list(src.waiters):
        w = pw.waiter
        if w.key == key and w.queued:
            t: Thread = pw.task  # type: ignore[assignment]
            pi.unblock(pw)
            moved: PiWaiter = pi.block(dst, t)
            moved.waiter = w
            t.blocking_futex = key


def disown_all_thread_locked(thread: Thread) -> None:
    """``OwnedWaitQueue::DisownAllQueues``: every futex ``thread`` owns becomes unowned
    (its waiters stay blocked)."""
    if DEBUG_LOCKS:
        assert_held(thread.kernel.lock)
    for state in list(thread.pi_states):
        thread.kernel.pi.attach(state, None)
