"""Zircon's futex policy (see :mod:`futex.kernel.policy` for the three kernels side by
side)."""

from __future__ import annotations

from futex.kernel.buckets import SplitLayout
from futex.kernel.pi import OWNED_WAIT_QUEUE
from futex.kernel.policy import FutexPolicy
from futex.kernel.waiter import PRIORITY
from futex.zircon.abi import ZX_ERR_BAD_STATE, ZX_ERR_INVALID_ARGS, ZX_OK
from futex.zircon.blocking import ZIRCON_OUTCOMES

__all__ = ["FUTEX_CONTEXT_BUCKETS", "ZIRCON_POLICY", "futex_id_hash"]

#: Buckets of a futex context's table (``FutexContext::Init``, regular processes).
FUTEX_CONTEXT_BUCKETS = 37


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
)
