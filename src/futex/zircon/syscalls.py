"""Zircon's futex system calls: argument decoding and dispatch, in Zircon's order.

Mirrors ``sys_futex_*`` -> ``FutexContext::FutexWait`` / ``FutexWake`` / ``FutexRequeue``
/ ``FutexGetOwner`` (``zircon/kernel/object/futex_context.cc``).  Order of checks:

=========================  =============================================================
wait                       null or misaligned pointer -> INVALID_ARGS; the owner handle is
                           resolved now but its error is kept; under the thread lock: read
                           the word (fault -> INVALID_ARGS); mismatch -> BAD_STATE; the
                           kept owner error (BAD_HANDLE, WRONG_TYPE, INVALID_ARGS for a
                           thread of another process or not started); owner is the caller
                           or waits on this futex -> INVALID_ARGS; then the owner is
                           assigned and the thread blocks (an expired deadline still
                           assigns it)
wake / wake_single_owner   null or misaligned -> INVALID_ARGS; no waiters -> OK; wake up to
                           n; RELEASE: unowned (even n = 0); ASSIGN_WOKEN: the woken thread
                           owns it if waiters remain
requeue(_single_owner)     both pointers, and a requeue pointer outside the user address
                           range -> INVALID_ARGS; the same futex -> INVALID_ARGS (before
                           reading); read the wake word: mismatch -> BAD_STATE; kept owner
                           error; owner waits on either futex -> INVALID_ARGS; then wake,
                           move, assign (nothing changes before every check has passed)
get_owner                  pointer; owner koid or ZX_KOID_INVALID; store (fault or null ->
                           INVALID_ARGS)
=========================  =============================================================

Arguments are decoded as the C prototypes take them (:mod:`futex.zircon.decode`).  The
caller must be a running thread that is not blocked in a call
(:class:`~futex.kernel.TaskStateError` otherwise; see :mod:`futex.kernel.caller`).

The requeue pointer is never read: Zircon only checks that it is non-null and aligned
(``ValidateFutexPointer``) and keys by it.  One outside the user address range cannot be
keyed here, and ``docs/reference/syscalls/futex_requeue.md`` lists "not a valid userspace
pointer" under ZX_ERR_INVALID_ARGS, so it is refused with the pointer checks, before any
queue is touched ("if the call fails for any reason, no changes to ownership for either
futex are made").  An unmapped requeue pointer inside the range is a key like any other.

Ownership and inheritance: :mod:`futex.zircon.pi`; the operations: :mod:`futex.zircon.
waitwake`.

Lock order
----------
Zircon is the named exception in the core's lock-order tree (:mod:`futex.kernel`): its
PI domain lock is the kernel's *thread lock* (``kernel.lock``, as in the ThreadLock-era
Zircon kernel), and it is taken **before** the bucket locks, not after them:

1. a pending wait's own lock (a wait being queued, restarted or settled: the core's
   :class:`~futex.kernel.blocking.PendingWait`);
2. the thread lock (every wait, wake, requeue, exit and priority change of the kernel;
   functions that need it held end in ``_thread_locked``);
3. the core's bucket locks, by rank (taken and released inside the core's calls:
   ``try_wait_prepare``, ``wait_complete``, ``wake``, ``requeue``, ``reposition``).

Ownership and inheritance bookkeeping runs with no bucket lock held; woken waiters are
notified after the thread lock is released, and a pending wait's callbacks run with no
lock held.  The koid counter's lock is a leaf taken under none of these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from futex.kernel.blocking import PendingWait
from futex.zircon import abi
from futex.zircon.decode import (
    GET_OWNER,
    GET_OWNER_PTR,
    REQUEUE,
    WAIT,
    WAKE,
    bad_pointer,
    deadline_of,
    requeue_pointer_status,
    store_koid,
)
from futex.zircon.policy import ZIRCON_POLICY
from futex.zircon.waitwake import requeue, wait, wake

if TYPE_CHECKING:
    from futex.zircon.kernel import Thread

__all__ = [
    "futex_get_owner",
    "futex_requeue",
    "futex_wait",
    "futex_wake",
    "get_owner",
]


def futex_wait(
    thread: Thread, value_ptr: int, current_value: int, new_futex_owner: int, deadline: int
) -> int | PendingWait:
    """``sys_futex_wait`` -> ``FutexContext::FutexWait``."""
    value_ptr, current_value, new_futex_owner, deadline = WAIT.decode(
        value_ptr, current_value, new_futex_owner, deadline
    )
    if bad_pointer(value_ptr):
        return abi.ZX_ERR_INVALID_ARGS
    return wait(thread, value_ptr, current_value, new_futex_owner, deadline_of(deadline))


def futex_wake(thread: Thread, value_ptr: int, wake_count: int, *, assign_woken: bool) -> int:
    """``sys_futex_wake`` / ``sys_futex_wake_single_owner`` -> ``FutexContext::FutexWake``
    (RELEASE / ASSIGN_WOKEN)."""
    value_ptr, wake_count = WAKE.decode(value_ptr, wake_count)
    if bad_pointer(value_ptr):
        return abi.ZX_ERR_INVALID_ARGS
    return wake(thread, value_ptr, wake_count, assign_woken=assign_woken)


def futex_requeue(
    thread: Thread,
    value_ptr: int,
    wake_count: int,
    current_value: int,
    requeue_ptr: int,
    requeue_count: int,
    new_requeue_owner: int,
    *,
    assign_woken: bool,
) -> int:
    """``sys_futex_requeue`` / ``sys_futex_requeue_single_owner`` ->
    ``FutexContext::FutexRequeue``: the pointer checks, then :func:`~futex.zircon.
    waitwake.requeue`."""
    value_ptr, wake_count, current_value, requeue_ptr, requeue_count, new_requeue_owner = (
        REQUEUE.decode(
            value_ptr, wake_count, current_value, requeue_ptr, requeue_count, new_requeue_owner
        )
    )
    if bad_pointer(value_ptr) or bad_pointer(requeue_ptr):
        return abi.ZX_ERR_INVALID_ARGS
    status = requeue_pointer_status(thread.process, requeue_ptr)
    if status != abi.ZX_OK:
        return status
    if value_ptr == requeue_ptr and ZIRCON_POLICY.same_futex_requeue is not None:
        return ZIRCON_POLICY.same_futex_requeue
    return requeue(
        thread, value_ptr, wake_count, current_value, requeue_ptr, requeue_count,
        new_requeue_owner, assign_woken=assign_woken,
    )


def get_owner(thread: Thread, value_ptr: int) -> tuple[int, int]:
    """``FutexGetOwner`` without the store: (status, koid)."""
    (value_ptr,) = GET_OWNER_PTR.decode(value_ptr)
    if bad_pointer(value_ptr):
        return abi.ZX_ERR_INVALID_ARGS, abi.ZX_KOID_INVALID
    owner = thread.process.owner_of(value_ptr)
    return abi.ZX_OK, abi.ZX_KOID_INVALID if owner is None else owner.koid


def futex_get_owner(thread: Thread, value_ptr: int, koid_ptr: int) -> int:
    """``sys_futex_get_owner`` -> ``FutexContext::FutexGetOwner``."""
    value_ptr, koid_ptr = GET_OWNER.decode(value_ptr, koid_ptr)
    status, koid = get_owner(thread, value_ptr)
    if status != abi.ZX_OK:
        return status
    return store_koid(thread.process, koid_ptr, koid)
