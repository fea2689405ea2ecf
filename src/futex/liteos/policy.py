"""LiteOS-A's futex policy (see :mod:`futex.kernel.policy` for the three kernels side by
side)."""

from __future__ import annotations

from futex.kernel.policy import FutexPolicy
from futex.kernel.waiter import PRIORITY
from futex.liteos.abi import LOS_EBADF, LOS_EINVAL
from futex.liteos.blocking import LITEOS_OUTCOMES
from futex.liteos.layout import LiteosLayout

__all__ = ["LITEOS_POLICY"]

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
)
