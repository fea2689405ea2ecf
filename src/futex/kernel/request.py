"""The call a pending wait stands for: the :class:`Request` base, and the one plain wait.

A :class:`~futex.kernel.blocking.PendingWait` drives a request through three required
steps and asks it a few optional questions, each answered here by default:

==========================  ==================================================  =========
hook                        what it answers                                     default
==========================  ==================================================  =========
``prepare(notify)``         queue the call's waiter(s): ``None``, or the        required
                            call's result (nothing left queued)
``complete()``              dequeue what is still queued: the result if a       required
                            waker (or a hand-off) decided it, else ``None``
``detach()``                forget the wake callback (the call is over)         required
``restart_code``            the personality's code for a signal that did not    ``None``
                            wake the call (Linux: ERESTARTSYS...); ``None``:
                            the personality's default
``signal_result()``         a result a signal gives whatever the code says      ``None``
``refresh_deadline(d)``     the deadline a restart runs with (a system call     ``d``
                            run again reads its timeout again), or a result
``uninterruptible()``       the call is in a phase no timeout or signal ends    ``False``
                            (see below; asked only if ``phased``)
``on_notify(w)``            whether the notify of ``w`` concerns the call now   ``True``
                            (``False`` drops a stale one; asked only if
                            ``phased``)
``phased``                  whether the two hooks above can answer other than   ``False``
                            by default (a class attribute: they sit on every
                            wake's path, so a pending wait skips them unless
                            it is set)
==========================  ==================================================  =========

**An uninterruptible, untimed phase.**  Linux's ``futex_lock_pi`` that finds the lock's
owner in the middle of its exit drops every lock and sleeps in ``wait_for_owner_exiting``
(TASK_UNINTERRUPTIBLE, before its hrtimer is started), then runs the whole call again.  A
request in such a phase answers ``uninterruptible()`` true: a timeout that fires then is
dropped (the deadline is looked at again when the call has queued once more), a signal
stays pending and is delivered once the phase is over, and only a notify the request
accepts (``on_notify``) ends the phase, after which ``complete()`` and ``prepare()`` run
the call again.

:class:`WaitRequest` is the plain wait every personality has (FUTEX_WAIT, ``zx_futex_wait``,
LiteOS's WAIT): one waiter, queued if the word holds the expected value; its answers are
the personality's (``policy.value_mismatch``, and the error ladder of
:func:`~futex.kernel.decode.error_code`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from futex.kernel.clock import ClockId
from futex.kernel.decode import error_code
from futex.kernel.errors import FutexError
from futex.kernel.waiter import MATCH_ANY, Waiter

if TYPE_CHECKING:
    from futex.kernel.manager import FutexManager
    from futex.kernel.policy import FutexPolicy
    from futex.kernel.target import FutexTarget

__all__ = ["Deadline", "Request", "WaitRequest"]

#: An absolute deadline: (clock, nanoseconds).
Deadline = tuple[ClockId, int]


class Request:
    """Base of every request: the three required steps and the optional hooks, with
    their defaults (see the module docstring)."""

    __slots__ = ()

    #: The code a signal that did not wake the call gets (``None``: the personality's
    #: default for the call's deadline).
    restart_code: int | None = None
    #: Whether ``uninterruptible()`` and ``on_notify()`` may answer other than by default:
    #: a pending wait asks them only then (they sit on every wake's path).
    phased: ClassVar[bool] = False

    def prepare(self, notify: Callable[[Waiter], None]) -> int | None:
        """Queue the call's waiter(s) with ``notify`` as their wake callback: ``None`` when
        queued, else the call's result (nothing left queued).  A restart runs this again
        (from the value check, like Linux's restart block)."""
        raise NotImplementedError

    def complete(self) -> int | None:
        """Dequeue what is still queued: the call's result if a waker (or a hand-off)
        already decided it, else ``None``."""
        raise NotImplementedError

    def detach(self) -> None:
        """Forget the wake callback (the call is over)."""
        raise NotImplementedError

    def signal_result(self) -> int | None:
        """The result a signal that did not wake the call ends it with, whatever the
        restart code says; ``None`` (default): the code decides."""
        return None

    def refresh_deadline(self, deadline: Deadline | None) -> Deadline | int | None:
        """The deadline a restart runs with (default: ``deadline``, the call's), or a
        result that ends the call (a timeout that now reads as bad)."""
        return deadline

    def uninterruptible(self) -> bool:
        """Whether the call is in a phase that no timeout or signal ends (default:
        never)."""
        return False

    def on_notify(self, w: Waiter) -> bool:
        """Called under the pending wait's lock when the notify of ``w`` arrives and the
        call is not over: whether to settle it now (default).  ``False`` drops a stale
        notification; accepting one may end an uninterruptible phase."""
        return True


class WaitRequest(Request):
    """One plain wait: ``waiter`` queued on the futex at ``addr`` of ``target`` if the
    word holds ``val`` (kept for restarts: Linux's restart block).  The wait's ``bitset``
    lives on its waiter (``waiter.bitset``, written only by a wait), not in a slot of
    its own: every blocked call carries one."""

    __slots__ = ("addr", "manager", "policy", "private", "target", "val", "waiter")

    def __init__(
        self,
        manager: FutexManager,
        target: FutexTarget,
        addr: int,
        private: bool,
        val: int,
        waiter: Waiter,
        policy: FutexPolicy,
        bitset: int = MATCH_ANY,
    ) -> None:
        self.manager = manager
        self.target = target
        self.addr = addr
        self.private = private
        self.val = val
        self.waiter = waiter
        self.policy = policy
        waiter.bitset = bitset

    def prepare(self, notify: Callable[[Waiter], None]) -> int | None:
        """Queue the waiter if the word holds ``val``: ``None``, or the policy's answer
        (``value_mismatch``, or the error ladder for a misaligned or faulting word)."""
        w = self.waiter
        w.notify = notify
        try:
            found = self.manager.try_wait_prepare(
                w, self.target, self.addr, self.private, self.val, w.bitset
            )
        except FutexError as exc:
            return error_code(exc, self.policy)
        return None if found is None else self.policy.value_mismatch

    @property
    def bitset(self) -> int:
        """The bits a wake must share with the wait (``FUTEX_WAIT_BITSET``'s ``val3``)."""
        return self.waiter.bitset

    def complete(self) -> int | None:
        """0 if a waker dequeued the waiter, else dequeue it and answer ``None``."""
        w = self.waiter
        if w.bucket is None:  # wait_complete's first look, without the call: woken
            return 0
        return 0 if self.manager.wait_complete(w) else None

    def detach(self) -> None:
        self.waiter.notify = None
