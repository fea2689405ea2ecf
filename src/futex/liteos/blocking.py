"""How a blocked LiteOS-A futex wait ends when it is not woken: the LiteOS
:class:`~futex.kernel.blocking.WaitOutcomes` policy, and the futex node a task waits with.

The blocking machinery is the core's (:mod:`futex.kernel.blocking`); LiteOS's answers are:

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

A :class:`FutexNode` is the waiter LiteOS embeds in each task control block
(``LosTaskCB.futex``).  ``orphaned`` marks a node that a faithful ``wakeNumber <= 0`` wake
unlinked without waking (:mod:`futex.liteos.syscalls`): it is set under the bucket lock
*before* the node is dequeued, so whoever sees the node out of its bucket sees the flag,
and the wait then ends only by its timeout, a signal or an exit.
"""

from __future__ import annotations

from typing import ClassVar

from futex.kernel.blocking import Deadline, Request, WaitOutcomes
from futex.kernel.blocking import PendingWait as _CorePendingWait
from futex.kernel.waiter import Waiter
from futex.liteos.abi import LOS_ETIMEDOUT

__all__ = ["LITEOS_OUTCOMES", "FutexNode", "LiteosOutcomes", "PendingWait"]


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


class PendingWait(_CorePendingWait):
    """A blocked LiteOS futex wait (see :mod:`futex.kernel.blocking` for how it settles)."""

    __slots__ = ()
    outcomes: ClassVar[WaitOutcomes] = LITEOS_OUTCOMES


class FutexNode(Waiter):
    """A task's futex node: a core waiter that can be orphaned (see the module docstring)."""

    __slots__ = ("orphaned",)

    def __init__(self, *, owner: object, prio: int, tid: int) -> None:
        super().__init__(owner=owner, prio=prio, tid=tid)
        self.orphaned = False
