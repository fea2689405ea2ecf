"""LiteOS-A's WAIT, WAKE and REQUEUE (``OsFutexWait``, ``OsFutexWake``,
``OsFutexRequeue`` of ``kernel/base/ipc/los_futex.c``) over the futex core, and the futex
node a task waits with.

A :class:`FutexNode` is the waiter LiteOS embeds in each task control block
(``LosTaskCB.futex``).  ``orphaned`` marks a node that a faithful ``wakeNumber <= 0`` wake
unlinked without waking (:func:`futex_wake`): it is set under the bucket lock *before*
the node is dequeued, so whoever sees the node out of its bucket sees the flag, and the
wait then ends only by its timeout, a signal or an exit.

The checks and their order are :mod:`futex.liteos.syscalls`'s docstring; registers
arrive decoded (:mod:`futex.liteos.decode`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from futex.kernel import MATCH_ANY, Waiter
from futex.kernel.blocking import PendingWait
from futex.kernel.request import WaitRequest as CoreWaitRequest
from futex.liteos import abi
from futex.liteos.decode import deadline_of, user_address_ok
from futex.liteos.policy import LITEOS_POLICY

if TYPE_CHECKING:
    from futex.kernel.keys import Key
    from futex.kernel.locked import LockedBucket
    from futex.liteos.kernel import Task

__all__ = ["FutexNode", "WaitRequest", "futex_requeue", "futex_wait", "futex_wake"]


class FutexNode(Waiter):
    """A task's futex node: a core waiter that can be orphaned (see the module docstring)."""

    __slots__ = ("orphaned",)

    def __init__(self, *, owner: object, prio: int, tid: int) -> None:
        super().__init__(owner=owner, prio=prio, tid=tid)
        self.orphaned = False


#: What a wake that finds nobody answers.
_EMPTY_WAKE = 0 if LITEOS_POLICY.empty_wake is None else LITEOS_POLICY.empty_wake


# -- WAIT --------------------------------------------------------------------------------


def _wait_param_check(task: Task, vaddr: int, flags: int, abs_time: int) -> int:
    """``OsFutexWaitParamCheck``: a LOS code, or LOS_OK."""
    if task.in_interrupt:  # OS_INT_ACTIVE
        return abi.LOS_EINTR
    if flags & ~abi.FUTEX_PRIVATE:
        return abi.LOS_EINVAL
    if not user_address_ok(vaddr):
        return abi.LOS_EINVAL
    # "if (flags && OsFutexKeyShmPermCheck(...))": flags is 0 or FUTEX_PRIVATE here, and
    # the check only fails for a shared futex (flags 0): it never runs on this path.
    if not abs_time:
        return abi.LOS_ETIMEDOUT  # before the value check (PR !751)
    return abi.LOS_OK


class WaitRequest(CoreWaitRequest):
    """One WAIT (``OsFutexWaitTask``): the core's plain wait with the task's futex node,
    which a faithful zero-count wake may orphan.  Under the bucket lock: copy the word in
    (fault: EINVAL), compare (EBADF), queue by priority."""

    __slots__ = ()

    def __init__(self, task: Task, uaddr: int, private: bool, val: int) -> None:
        # The priority is sampled here: a later set_priority does not move the node.
        node = FutexNode(owner=task, prio=task.priority, tid=task.tid)
        super().__init__(
            task.kernel.futex, task.process.target, uaddr, private, val, node, LITEOS_POLICY
        )

    @property
    def node(self) -> FutexNode:
        """The task's futex node (the request's waiter)."""
        node = self.waiter
        assert isinstance(node, FutexNode)
        return node

    def prepare(self, notify: Callable[[Waiter], None]) -> int | None:
        self.node.orphaned = False
        return super().prepare(notify)

    def complete(self) -> int | None:
        """0 if a waker dequeued the node; ``None`` if this call dequeued it, or if a
        faithful zero-count wake orphaned it (the wait goes on to its timeout)."""
        result = super().complete()
        return None if result is not None and self.node.orphaned else result


def futex_wait(task: Task, uaddr: int, flags: int, val: int, abs_time: int) -> int | PendingWait:
    """``OsFutexWait``: the checks, the timeout in ticks, then queue and block."""
    err = _wait_param_check(task, uaddr, flags, abs_time)
    if err:
        return -err
    kernel = task.kernel
    request = WaitRequest(task, uaddr, bool(flags & abi.FUTEX_PRIVATE), val)
    deadline = deadline_of(kernel, abs_time)
    return PendingWait(task, deadline, request, kernel.clock, LITEOS_POLICY.outcomes).start()


# -- WAKE --------------------------------------------------------------------------------


def futex_wake(task: Task, uaddr: int, flags: int, wake_number: int) -> int:
    """``OsFutexWake``: 0 when the key has waiters, EBADF when it has none."""
    if (flags & ~abi.FUTEX_PRIVATE) != abi.FUTEX_WAKE or not user_address_ok(uaddr):
        return -abi.LOS_EINVAL
    private = bool(flags & abi.FUTEX_PRIVATE)
    target = task.process.target
    if not private and not target.phys.paddr(target.space, uaddr):
        return -abi.LOS_EINVAL  # OsFutexKeyShmPermCheck: no physical page
    manager = task.kernel.futex
    if wake_number > 0:
        # Every LiteOS waiter matches any bitset and none is a PI waiter, so the core
        # wakes nobody exactly when the key has no head: OsFutexWakeTask's EBADF.
        woken = manager.wake(target, uaddr, private, MATCH_ANY, wake_number)
        return 0 if woken else _EMPTY_WAKE
    key = manager.key(target, uaddr, private)
    with manager.lock_key(key) as h:
        if not h.count(key):
            return _EMPTY_WAKE
        if task.kernel.faithful:
            _orphan_locked(h, key)
    return 0


def _orphan_locked(h: LockedBucket, key: Key) -> None:
    """LiteOS's ``wakeNumber <= 0`` path: ``OsFutexDeleteKeyFromFutexList`` +
    ``OsFutexDeinitFutexNode`` on the head — the whole ring leaves the bucket, unwoken."""
    for w in h.waiters(key):
        assert isinstance(w, FutexNode), f"not a LiteOS futex node: {w!r}"
        w.orphaned = True  # before the dequeue: see the module docstring
        h.dequeue(w)


# -- REQUEUE -----------------------------------------------------------------------------


def futex_requeue(
    task: Task, uaddr: int, flags: int, wake_number: int, count: int, new_uaddr: int
) -> int:
    """``OsFutexRequeue``: wake up to ``wake_number`` waiters of the old key in priority
    order, then move the first ``count`` remaining ones (its highest-priority waiters) to
    the new key, each inserted by priority.  EBADF if nothing was woken or moved."""
    if uaddr == new_uaddr and LITEOS_POLICY.same_futex_requeue is not None:
        return LITEOS_POLICY.same_futex_requeue
    if (flags & ~abi.FUTEX_PRIVATE) != abi.FUTEX_REQUEUE:
        return -abi.LOS_EINVAL
    if not user_address_ok(uaddr) or not user_address_ok(new_uaddr):
        return -abi.LOS_EINVAL
    private = bool(flags & abi.FUTEX_PRIVATE)
    # OsFutexRequeueRemoveOldKeyAndGetHead: waking nobody (with wakeNumber > 0) skips the
    # requeue, as does a count <= 0 — the core's requeue does both.
    woken, moved = task.kernel.futex.requeue(
        task.process.target, uaddr, new_uaddr, private, wake_number, count
    )
    return 0 if woken or moved else -abi.LOS_EBADF
