"""How a blocked Zircon futex wait ends when it is not woken (the Zircon policy for the
core's :class:`~futex.kernel.blocking.PendingWait`).

- deadline passed: ``ZX_ERR_TIMED_OUT``;
- suspension (:meth:`Thread.suspend`): ``ZX_ERR_INTERNAL_INTR_RETRY``, which the vDSO
  turns into a transparent restart of the call — from the value check, with the same
  absolute deadline (test ThreadSuspended: no spurious ZX_ERR_TIMED_OUT);
- the thread killed: ``ZX_ERR_INTERNAL_INTR_KILLED`` (never seen by user code).

Zircon has no signals; "interrupt" means suspension.
"""

from __future__ import annotations

from typing import ClassVar

from futex.kernel.blocking import Deadline, PendingWait, Request, WaitOutcomes
from futex.zircon.abi import ZX_ERR_INTERNAL_INTR_KILLED, ZX_ERR_TIMED_OUT

__all__ = ["ZIRCON_OUTCOMES", "ZirconOutcomes", "ZirconPendingWait"]


class ZirconOutcomes:
    timed_out = ZX_ERR_TIMED_OUT
    killed = ZX_ERR_INTERNAL_INTR_KILLED

    def on_signal(
        self, request: Request, deadline: Deadline | None, handler: bool, restart: bool
    ) -> int | None:
        return None  # ZX_ERR_INTERNAL_INTR_RETRY: always restarted

    def __repr__(self) -> str:
        return "<WaitOutcomes zircon>"


ZIRCON_OUTCOMES = ZirconOutcomes()


class ZirconPendingWait(PendingWait):
    """A blocked ``zx_futex_wait``."""

    __slots__ = ()
    outcomes: ClassVar[WaitOutcomes] = ZIRCON_OUTCOMES
