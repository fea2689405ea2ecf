"""LiteOS-A's futex policy (see :mod:`futex.kernel.policy` for the three kernels side by
side), with its answers for a blocked wait that is not woken:

===================================  =======================================================
event                                result of the wait
===================================  =======================================================
woken by FUTEX_WAKE / REQUEUE        0
deadline passed (``OS_TASK_STATUS_   ``-LOS_ETIMEDOUT``; the node leaves the hash
TIMEOUT``)                           (``OsFutexDeleteTimeoutTaskNode``)
SIGKILL (``OsPendingTaskWake``)      0: the node leaves the hash and the task is woken as
                                     if by a wake — never ``-LOS_EINTR``, never restarted
task exit / kill                     0 (the task never sees it; its node leaves the hash)
===================================  =======================================================

Only SIGKILL reaches a futex waiter: ``OsPendingTaskWake`` returns early for any other
signal unless the task waits for signals (``OS_TASK_WAIT_SIGNAL``), so the personality
never delivers other signals here (:meth:`futex.liteos.Task.interrupt`).
"""

from __future__ import annotations

from futex.kernel.policy import FutexPolicy
from futex.kernel.request import Deadline, Request
from futex.kernel.waiter import PRIORITY
from futex.liteos.abi import LOS_EBADF, LOS_EINVAL, LOS_ETIMEDOUT
from futex.liteos.layout import LiteosLayout

__all__ = ["LITEOS_OUTCOMES", "LITEOS_POLICY", "LiteosOutcomes"]


class LiteosOutcomes:
    """LiteOS's answers: ``-LOS_ETIMEDOUT``; a signal or a kill ends the wait with 0."""

    timed_out = -LOS_ETIMEDOUT
    killed = 0

    def on_signal(
        self, request: Request, deadline: Deadline | None, handler: bool, restart: bool
    ) -> int | None:
        # los_signal.c OsPendingTaskWake, case OS_TASK_WAIT_FUTEX: the node is removed
        # from the hash (the core's complete() did that) and the task woken: 0.
        return 0

    def __repr__(self) -> str:
        return "<WaitOutcomes liteos>"


LITEOS_OUTCOMES = LiteosOutcomes()

LITEOS_POLICY = FutexPolicy(
    name="liteos",
    # OsFutexInsertTasktoPendList / OsSchedParamCompare: priority, FIFO among equals,
    # sampled at insertion.
    order=PRIORITY,
    layout=LiteosLayout,  # g_futexHash: 80 buckets, FNV-1a, private 0-63 / shared 64-79
    inheritance=None,
    ownership=False,
    outcomes=LITEOS_OUTCOMES,
    value_mismatch=-LOS_EBADF,  # OsFutexWaitTask: lockVal != val
    empty_wake=-LOS_EBADF,  # OsFutexWakeTask: no head for the key
    same_futex_requeue=-LOS_EINVAL,  # OsFutexRequeue: oldUserVaddr == newUserVaddr
    misaligned=-LOS_EINVAL,  # the parameter checks: an address not INT-aligned
    fault=-LOS_EINVAL,  # OsFutexWaitTask: LOS_ArchCopyFromUser failed
)
