"""Linux's futex policy (see :mod:`futex.kernel.policy` for the three kernels side by
side)."""

from __future__ import annotations

from futex.kernel.buckets import SplitLayout, default_bucket_count, fold_hash
from futex.kernel.pi import RT_MUTEX
from futex.kernel.policy import FutexPolicy
from futex.kernel.waiter import PRIORITY
from futex.linux.abi import EAGAIN
from futex.linux.blocking import LINUX_OUTCOMES

__all__ = ["LINUX_POLICY"]


def _linux_layout() -> SplitLayout:
    # futex_init: roundup_pow_of_two(256 * CPUs) buckets; gVisor's fold hash.
    return SplitLayout.new(default_bucket_count(), fold_hash)


LINUX_POLICY = FutexPolicy(
    name="linux",
    order=PRIORITY,  # __futex_queue's plist: min(normal_prio, MAX_RT_PRIO), FIFO
    layout=_linux_layout,
    inheritance=RT_MUTEX,  # FUTEX_LOCK_PI's rt_mutex
    ownership=False,  # only the PI word names an owner (its TID)
    outcomes=LINUX_OUTCOMES,
    value_mismatch=-EAGAIN,
    empty_wake=None,  # FUTEX_WAKE returns how many it woke: 0
    same_futex_requeue=None,  # futex_requeue: allowed, nothing moves
)
