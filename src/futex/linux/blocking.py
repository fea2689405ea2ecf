"""How a blocked Linux futex call ends when it is not woken: Linux's restart rules.

The blocking machinery itself is the core's (:mod:`futex.kernel.blocking`); this module is
the Linux policy for it.  A timeout gives ``-ETIMEDOUT``; a signal gives ``ERESTARTSYS``
(no timeout) or ``ERESTART_RESTARTBLOCK`` (timeout), which signal delivery turns into
``-EINTR`` or a transparent restart:

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
(``signal_result()``: requeue-PI after the requeue gives EWOULDBLOCK).
"""

from __future__ import annotations

from typing import ClassVar

from futex.kernel.blocking import Deadline, Request, WaitOutcomes
from futex.kernel.blocking import PendingWait as _CorePendingWait
from futex.linux.abi import EINTR, ERESTART_RESTARTBLOCK, ERESTARTSYS, ETIMEDOUT

__all__ = ["LINUX_OUTCOMES", "Deadline", "LinuxOutcomes", "PendingWait"]


class LinuxOutcomes:
    """Linux's answers: -ETIMEDOUT, -EINTR for a killed call, and the restart table."""

    timed_out = -ETIMEDOUT
    killed = -EINTR

    def on_signal(
        self, request: Request, deadline: Deadline | None, handler: bool, restart: bool
    ) -> int | None:
        decided = getattr(request, "signal_result", None)
        if decided is not None and (result := decided()) is not None:
            assert isinstance(result, int)
            return result
        code = getattr(request, "restart_code", None)
        if not isinstance(code, int):
            code = ERESTART_RESTARTBLOCK if deadline is not None else ERESTARTSYS
        if handler and (code == ERESTART_RESTARTBLOCK or (code == ERESTARTSYS and not restart)):
            return -EINTR
        return None

    def __repr__(self) -> str:
        return "<WaitOutcomes linux>"


LINUX_OUTCOMES = LinuxOutcomes()


class PendingWait(_CorePendingWait):
    """A blocked Linux futex call (see :mod:`futex.kernel.blocking` for how it settles)."""

    __slots__ = ()
    outcomes: ClassVar[WaitOutcomes] = LINUX_OUTCOMES
