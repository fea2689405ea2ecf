"""Zircon's futex policy (see :mod:`futex.kernel.policy` for the three kernels side by
side), with its answers for a blocked wait that is not woken:

- deadline passed: ``ZX_ERR_TIMED_OUT``;
- suspension (:meth:`Thread.suspend`): ``ZX_ERR_INTERNAL_INTR_RETRY``, which the vDSO
  turns into a transparent restart of the call — from the value check, with the same
  absolute deadline (test ThreadSuspended: no spurious ZX_ERR_TIMED_OUT);
- the thread killed: ``ZX_ERR_INTERNAL_INTR_KILLED`` (never seen by user code).

Zircon has no signals; "interrupt" means suspension.
"""

from __future__ import annotations

from futex.kernel.buckets import SplitLayout
from futex.kernel.pi import OWNED_WAIT_QUEUE
from futex.kernel.policy import FutexPolicy
from futex.kernel.request import Deadline, Request
from futex.kernel.waiter import PRIORITY
from futex.zircon.abi import (
    ZX_ERR_BAD_STATE,
    ZX_ERR_INTERNAL_INTR_KILLED,
    ZX_ERR_INVALID_ARGS,
    ZX_ERR_TIMED_OUT,
    ZX_OK,
)

__all__ = [
    "FUTEX_CONTEXT_BUCKETS",
    "ZIRCON_OUTCOMES",
    "ZIRCON_POLICY",
    "ZirconOutcomes",
    "futex_id_hash",
]

#: Buckets of a futex context's table (``FutexContext::Init``, regular processes).
FUTEX_CONTEXT_BUCKETS = 37


class ZirconOutcomes:
    """Zircon's answers: ZX_ERR_TIMED_OUT; a suspension always restarts the wait."""

    timed_out = ZX_ERR_TIMED_OUT
    killed = ZX_ERR_INTERNAL_INTR_KILLED

    def on_signal(
        self, request: Request, deadline: Deadline | None, handler: bool, restart: bool
    ) -> int | None:
        return None  # ZX_ERR_INTERNAL_INTR_RETRY: always restarted

    def __repr__(self) -> str:
        return "<WaitOutcomes zircon>"


ZIRCON_OUTCOMES = ZirconOutcomes()


def futex_id_hash(key: object) -> int:
    """``FutexId``: the address shifted past its always-zero low bits is the hash."""
    assert isinstance(key, int)
    return key >> 2


def _zircon_layout() -> SplitLayout:
    return SplitLayout.new(FUTEX_CONTEXT_BUCKETS, futex_id_hash)


ZIRCON_POLICY = FutexPolicy(
    name="zircon",
    # WaitQueueCollection::Peek (ThreadLock era): the highest effective priority first,
    # FIFO among equals; a waiter whose effective priority changes moves.
    order=PRIORITY,
    layout=_zircon_layout,
    inheritance=OWNED_WAIT_QUEUE,
    ownership=True,
    outcomes=ZIRCON_OUTCOMES,
    value_mismatch=ZX_ERR_BAD_STATE,
    empty_wake=ZX_OK,
    same_futex_requeue=ZX_ERR_INVALID_ARGS,
    # ValidateFutexPointer and every user-memory fault: no EFAULT for Zircon futexes.
    misaligned=ZX_ERR_INVALID_ARGS,
    fault=ZX_ERR_INVALID_ARGS,
)
