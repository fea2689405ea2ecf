"""Zircon's futex wait, wake and requeue over the core, with ownership
(``FutexContext::FutexWait`` / ``FutexWake`` / ``FutexRequeue``).

Each operation takes the kernel's thread lock, inside which the core takes bucket locks
(``try_wait_prepare``, ``wait_complete``, ``wake``, ``requeue``); the ownership and
inheritance bookkeeping of :mod:`futex.zircon.pi` runs under the thread lock with no
bucket lock held; woken waiters are notified once the thread lock is released.
Arguments arrive decoded (:mod:`futex.zircon.syscalls`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from futex.kernel import MATCH_ANY, Waiter, notify_all
from futex.kernel.blocking import PendingWait
from futex.kernel.request import Deadline
from futex.kernel.request import WaitRequest as CoreWaitRequest
from futex.zircon import abi
from futex.zircon.decode import load_word
from futex.zircon.pi import (
    assign_thread_locked,
    block_thread_locked,
    move_thread_locked,
    reset_if_idle_thread_locked,
    state_thread_locked,
    unblock_thread_locked,
    woken_thread_locked,
)
from futex.zircon.policy import ZIRCON_POLICY

if TYPE_CHECKING:
    from futex.zircon.kernel import Thread

__all__ = ["WaitRequest", "requeue", "wait", "wake"]


# -- wait ---------------------------------------------------------------------------------


class WaitRequest(CoreWaitRequest):
    """One ``zx_futex_wait``: the core's plain wait, extended with ownership — the word
    and the owner are checked and the owner assigned under the thread lock, and the
    thread joins the futex's inheritance queue as it queues."""

    __slots__ = ("handle", "owner", "owner_status", "thread")

    def __init__(self, thread: Thread, addr: int, expected: int, handle: int) -> None:
        process = thread.process
        waiter = Waiter(owner=thread, prio=thread.prio, tid=thread.koid)
        super().__init__(
            process.futex, process.space, addr, True, expected, waiter, ZIRCON_POLICY
        )
        self.thread = thread
        self.handle = handle
        self.owner_status = abi.ZX_OK
        self.owner: Thread | None = None

    def prepare(self, notify: Callable[[Waiter], None]) -> int | None:
        t = self.thread
        process = t.process
        # Resolved before any lock, reported after the value check (fxbug 34382).
        self.owner_status, self.owner = process.resolve_owner(self.handle)
        with t.kernel.lock:
            status, cur = load_word(process, self.addr)
            if status != abi.ZX_OK:
                return status
            if cur != self.val:
                return ZIRCON_POLICY.value_mismatch
            if self.owner_status != abi.ZX_OK:
                return self.owner_status
            owner = self.owner
            key = self.addr
            if owner is t or (owner is not None and owner.blocking_futex == key):
                return abi.ZX_ERR_INVALID_ARGS
            if owner is not None and not owner.running:
                owner = None  # died since it was resolved
            w = self.waiter
            w.prio = t.prio  # queued at its effective priority of now (a restart too)
            early = super().prepare(notify)
            if early is not None:
                return early  # the word changed between the two reads
            state = state_thread_locked(process, key)
            assign_thread_locked(process, state, owner, t)  # assigned first, then block
            block_thread_locked(process, state, t, w)
            t.blocking_futex = key
        return None

    def complete(self) -> int | None:
        """ZX_OK if a waker dequeued the thread (and did the bookkeeping); else it leaves
        its queues here, and ``None``."""
        t = self.thread
        with t.kernel.lock:
            result = super().complete()
            if result is None:
                unblock_thread_locked(t.process, t)
        return result


def wait(
    thread: Thread, addr: int, expected: int, owner_handle: int, deadline: Deadline | None
) -> int | PendingWait:
    """Block ``thread`` on the futex at ``addr`` (a valid pointer) while it holds
    ``expected``, naming the owner ``owner_handle``: the status, or the pending wait."""
    request = WaitRequest(thread, addr, expected, owner_handle)
    return PendingWait(
        thread, deadline, request, thread.kernel.clock, ZIRCON_POLICY.outcomes
    ).start()


# -- wake ---------------------------------------------------------------------------------


def wake(thread: Thread, addr: int, count: int, *, assign_woken: bool) -> int:
    """Wake up to ``count`` waiters of the futex at ``addr`` (a valid pointer).  RELEASE:
    the futex becomes unowned (even for a count of 0); ASSIGN_WOKEN: the woken thread owns
    it if waiters remain."""
    process = thread.process
    woken: list[Waiter] = []
    with thread.kernel.lock:
        state = process.states.get(addr)
        if state is None:
            return abi.ZX_OK if ZIRCON_POLICY.empty_wake is None else ZIRCON_POLICY.empty_wake
        process.futex.wake(process.space, addr, True, MATCH_ANY, count, woken)
        woken_thread_locked(woken)
        new_owner = woken[0].owner if assign_woken and woken and state.waiters else None
        thread.kernel.pi.attach(state, new_owner)
        reset_if_idle_thread_locked(process, state)
    notify_all(woken)
    return abi.ZX_OK


# -- requeue ------------------------------------------------------------------------------


def requeue(
    thread: Thread,
    addr: int,
    wake_count: int,
    expected: int,
    requeue_addr: int,
    requeue_count: int,
    owner_handle: int,
    *,
    assign_woken: bool,
) -> int:
    """``FutexRequeue`` once the pointers passed: the value check, the kept owner error,
    the owner check, then ``WakeAndRequeue``.  Nothing can fail once a queue or an owner
    has changed."""
    process = thread.process
    owner_status, owner = process.resolve_owner(owner_handle)
    pi = thread.kernel.pi
    woken: list[Waiter] = []
    with thread.kernel.lock:
        status, cur = load_word(process, addr)
        if status != abi.ZX_OK:
            return status
        if cur != expected:
            return ZIRCON_POLICY.value_mismatch
        if owner_status != abi.ZX_OK:
            return owner_status
        if owner is not None and owner.blocking_futex in (addr, requeue_addr):
            return abi.ZX_ERR_INVALID_ARGS
        if owner is not None and not owner.running:
            owner = None
        # Every check has passed: from here on the call changes state and cannot fail.
        src = process.states.get(addr)
        dst = process.states.get(requeue_addr)
        if dst is not None:
            pi.attach(dst, None)  # the old target owner goes first (WakeAndRequeue step 2)
        if src is not None:
            _, moved = process.futex.requeue(
                process.space, addr, requeue_addr, True,
                wake_count, requeue_count, None, woken,
            )
            woken_thread_locked(woken)
            if moved:
                if dst is None:
                    dst = state_thread_locked(process, requeue_addr)
                move_thread_locked(process, src, dst, requeue_addr)
            new_owner = woken[0].owner if assign_woken and woken and src.waiters else None
            pi.attach(src, new_owner)
            reset_if_idle_thread_locked(process, src)
        if dst is not None:
            if dst.waiters:  # owned only while it has waiters
                assign_thread_locked(process, dst, owner, None)
            reset_if_idle_thread_locked(process, dst)
    notify_all(woken)
    return abi.ZX_OK
