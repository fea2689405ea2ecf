"""Linux's futex policy (see :mod:`futex.kernel.policy` for the three kernels side by
side), with its answers for a blocked call that was not woken: Linux's restart rules.

A timeout gives ``-ETIMEDOUT``; a signal gives ``ERESTARTSYS`` (no timeout) or
``ERESTART_RESTARTBLOCK`` (timeout), which signal delivery turns into ``-EINTR`` or a
transparent restart:

=====================  =====================  ===================  ==================
interrupted wait       handler, SA_RESTART    handler, no restart  no handler
=====================  =====================  ===================  ==================
no timeout             restart                -EINTR               restart
with a timeout         -EINTR                 -EINTR               restart, same
                                                                   absolute deadline
=====================  =====================  ===================  ==================

A restart runs the wait again from the value check (so it may now return ``-EAGAIN``).  A
request may fix its own code (``restart_code``: LOCK_PI is ERESTARTNOINTR, always
restarted; futex2 waits use ERESTARTSYS even with a timeout) or decide the result itself
(``signal_result()``: requeue-PI after the requeue gives EWOULDBLOCK).  A call killed
(its task exits) ends with ``-EINTR``.
"""

from __future__ import annotations

from futex.kernel.buckets import SplitLayout, default_bucket_count, fold_hash
from futex.kernel.pi import RT_MUTEX
from futex.kernel.policy import FutexPolicy
from futex.kernel.request import Deadline, Request
from futex.kernel.waiter import PRIORITY
from futex.linux.abi import (
    EAGAIN,
    EFAULT,
    EINTR,
    EINVAL,
    ERESTART_RESTARTBLOCK,
    ERESTARTSYS,
    ETIMEDOUT,
)

__all__ = ["LINUX_OUTCOMES", "LINUX_POLICY", "LinuxOutcomes"]


class LinuxOutcomes:
    """Linux's answers: -ETIMEDOUT, -EINTR for a killed call, and the restart table."""

    timed_out = -ETIMEDOUT
    killed = -EINTR

    def on_signal(
        self, request: Request, deadline: Deadline | None, handler: bool, restart: bool
    ) -> int | None:
        result = request.signal_result()
        if result is not None:
            return result
        code = request.restart_code
        if code is None:
            code = ERESTART_RESTARTBLOCK if deadline is not None else ERESTARTSYS
        if handler and (code == ERESTART_RESTARTBLOCK or (code == ERESTARTSYS and not restart)):
            return -EINTR
        return None

    def __repr__(self) -> str:
        return "<WaitOutcomes linux>"


LINUX_OUTCOMES = LinuxOutcomes()


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
    misaligned=-EINVAL,  # get_futex_key: the address is not u32-aligned
    fault=-EFAULT,
    pi_conflict=-EINVAL,  # futex_wake / futex_requeue met a PI waiter
)
