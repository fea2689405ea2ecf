"""A futex wait in flight, and the two ways to block on it — for every personality.

:class:`PendingWait` is what a blocking futex call becomes once its waiter is queued.  It
settles exactly once, with the call's return value, when one of three events arrives:

- **wake**: a waker dequeued the waiter (its ``notify`` runs after the waker unlocked);
- **timeout**: the clock reached the deadline (a :class:`~futex.kernel.Timer` fires);
- **signal**: :meth:`PendingWait.interrupt` (Zircon: a suspension; LiteOS: a signal).

Whichever comes first, the request's ``complete`` decides what happened, as Linux's
``__futex_wait`` does after ``schedule()`` (and Zircon's ``FutexWait`` after
``BlockAndAssignOwnerLocked``): if a waker dequeued the waiter the call succeeds, even if
a timeout or signal raced with it; else a timeout gives the personality's timed-out
answer; else the personality's :class:`WaitOutcomes` policy says what a signal does — end
the call with a result, or restart it from the value check with the same absolute
deadline.  The outcomes come from the personality's
:class:`~futex.kernel.policy.FutexPolicy` (``policy.outcomes``, one object per kernel) and
are the only place the kernels differ here; what a request may add (its restart code, an
uninterruptible phase) is declared by :class:`~futex.kernel.request.Request`.

Blocking: a thread calls :meth:`PendingWait.wait`; a cooperative scheduler (green threads,
an emulator's guest threads) registers :meth:`PendingWait.add_done_callback` and resumes its
task when called.  Both are the same object over the same core.

Lock order: the pending wait's lock, then bucket locks (inside ``wait_complete`` and the
restart's ``wait_prepare``; the whole tree is in :mod:`futex.kernel.locking`).  Wakers
never hold a bucket lock when they notify, and callbacks run with no lock held.  Methods
named ``*_pending_locked`` require the pending wait's lock.

Callbacks are isolated
----------------------
A done callback is foreign code (the owner's scheduler) run on whatever thread settled the
call: a waker inside its own futex call, the clock's timer thread, a signaller, or the
owner itself when it registers on a call already over.  None of them owns the callback, so
its exception must reach none of them.  Invariants, whatever a callback raises:

- the thread that settled the call never sees the exception: the waker's futex call
  returns its own result, and every other waiter dequeued by the same wake is settled
  (no lost wakeup: Linux's ``wake_up_q`` cannot fail either);
- every other callback of the same call still runs, in registration order;
- the timer thread lives on (:mod:`futex.kernel.clock` isolates its callbacks the same
  way).

The exception is *logged* (logger ``futex.kernel.blocking``, level ERROR, with its
traceback) and dropped -- what :class:`concurrent.futures.Future` does with a raising
done callback.  It is deliberately not stored and re-raised from :meth:`PendingWait.result`
or :meth:`PendingWait.wait`: those report the futex call, which *did* complete -- its
effects (a PI lock now owned, a waiter dequeued) are real, and a ``result()`` that raised
would tell the owner the call failed while it holds the lock.  Only ``KeyboardInterrupt``
and ``SystemExit`` are not the callback's own (Ctrl-C lands in whatever the main thread is
running): they are held until the call's other callbacks have run, then re-raised, as
asyncio does with them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from futex.kernel.clock import Clock, Timer
from futex.kernel.locking import DEBUG_LOCKS, assert_held, new_lock
from futex.kernel.request import Deadline, Request
from futex.kernel.waiter import Waiter

__all__ = ["BlockingTask", "Deadline", "PendingWait", "Request", "WaitOutcomes", "block"]

_log = logging.getLogger(__name__)


class BlockingTask(Protocol):
    """What a pending wait needs of the task that blocks: its id, and a slot naming the
    call it is blocked in (``None`` when running)."""

    tid: int
    blocked: Any


class WaitOutcomes(Protocol):
    """A personality's answers for a blocked call that did not succeed (named policy)."""

    #: The result of a wait whose deadline passed (Linux -ETIMEDOUT, Zircon
    #: ZX_ERR_TIMED_OUT, LiteOS -LOS_ETIMEDOUT).
    timed_out: int
    #: The result of a call ended by :meth:`PendingWait.kill` (task exit).
    killed: int

    def on_signal(
        self, request: Request, deadline: Deadline | None, handler: bool, restart: bool
    ) -> int | None:
        """The result of a call interrupted by a signal that did not wake it, or ``None``
        to restart it from the value check with the same absolute deadline."""
        ...


class PendingWait:
    """A blocked futex call.  See the module docstring for how it settles.

    ``outcomes`` is the personality's policy for timeouts, signals and kills (its
    ``FutexPolicy.outcomes``)."""

    __slots__ = (
        "_callbacks",
        "_clock",
        "_event",
        "_held_signal",
        "_lock",
        "_outcomes",
        "_phased",
        "_rearm",
        "_request",
        "_result",
        "_timer",
        "deadline",
        "task",
    )

    def __init__(
        self,
        task: BlockingTask,
        deadline: Deadline | None,
        request: Request,
        clock: Clock,
        outcomes: WaitOutcomes,
    ) -> None:
        self.task = task
        self.deadline = deadline
        self._outcomes = outcomes
        self._request = request
        self._phased = request.phased  # whether to ask its uninterruptible/on_notify hooks
        self._clock = clock
        self._lock = new_lock()
        self._result: int | None = None
        self._callbacks: list[Callable[[PendingWait], None]] | None = None
        # A lock held until the call settles: cheaper than an Event for the one thread
        # that blocks in wait().
        self._event: threading.Lock | None = None
        self._timer: Timer | None = None
        # a signal held back by an uninterruptible phase of the request: (handler, restart)
        self._held_signal: tuple[bool, bool] | None = None
        self._rearm = False  # a restart changed the deadline: arm a new timer

    def __repr__(self) -> str:
        state = "pending" if self._result is None else f"done({self._result})"
        return f"<PendingWait tid={self.task.tid} {state} deadline={self.deadline}>"

    # -- outcome ----------------------------------------------------------------------------

    @property
    def outcomes(self) -> WaitOutcomes:
        """The personality's answers for a call that was not woken."""
        return self._outcomes

    @property
    def request(self) -> Request:
        """The call this pending wait stands for."""
        return self._request

    def done(self) -> bool:
        """Whether the call has finished."""
        return self._result is not None

    def result(self) -> int:
        """The call's return value (>= 0 or -errno).  Raises if it has not finished."""
        r = self._result
        if r is None:
            raise RuntimeError("the futex call is still blocked")
        return r

    def add_done_callback(self, fn: Callable[[PendingWait], None]) -> None:
        """Call ``fn(self)`` when the call finishes (now, if it has), with no lock held.

        An exception ``fn`` raises is logged and dropped, never passed to the thread that
        settled the call nor to this caller (see "Callbacks are isolated" in the module
        docstring): a callback behaves the same whether the call ended before or after
        it was registered."""
        with self._lock:
            if self._result is None:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        _run_callbacks(self, [fn])

    def wait(self, timeout: float | None = None) -> int:
        """Block the calling thread until the call finishes; return its result.

        ``timeout`` (seconds, real time) bounds only this thread's patience, not the
        futex call: on expiry ``TimeoutError`` is raised and the call stays blocked.
        """
        with self._lock:
            if self._result is None and self._event is None:
                self._event = threading.Lock()
                self._event.acquire()
            event = self._event
        if event is not None:
            if not event.acquire(timeout=-1 if timeout is None else timeout):
                raise TimeoutError("the futex call is still blocked")
            event.release()  # let any other waiter through too
        return self.result()

    # -- events -----------------------------------------------------------------------------

    def start(self) -> int | PendingWait:
        """Queue the wait and arm its timer: the call's result if it ends at once (value
        mismatch, fault, a deadline already past), else this pending wait.

        ``notify`` and ``task.blocked`` are in place before the waiter is queued, and the
        queueing runs under this wait's lock: a waker that dequeues it at once finds
        someone to tell, and is heard only once the wait is fully set up.  A request that
        starts in an uninterruptible phase is not timed out by a deadline already past:
        the deadline is looked at when it queues (see :mod:`futex.kernel.request`).
        """
        expired = False
        if self.deadline is not None:
            clock_id, when = self.deadline
            expired = self._clock.now(clock_id) >= when  # read before taking our lock
        with self._lock:
            self.task.blocked = self
            try:
                early = self._request.prepare(self._on_wake)
            except BaseException:
                # the call never got going (a bad argument type, Ctrl-C): whatever
                # the request does about its own state, the task is not blocked in it
                self.task.blocked = None
                raise
            if early is not None:
                self._finish_pending_locked(early)
                return early
            if expired and not (self._phased and self._request.uninterruptible()):
                # an expired hrtimer: queued, no sleep; success if a waker took it, else
                # timed out
                self._settle_pending_locked(True)
                assert self._result is not None
                return self._result
        if self.deadline is not None and not expired:
            clock_id, when = self.deadline
            self._timer = self._clock.call_at(clock_id, when, self._on_timeout)
        return self

    def interrupt(self, *, handler: bool = True, restart: bool = False) -> bool:
        """Deliver a signal to the blocked call.

        ``handler``: the signal has a handler (else it is ignored or stops the task);
        ``restart``: the handler was installed with SA_RESTART.  What follows is the
        personality's :meth:`WaitOutcomes.on_signal`.  Returns whether the call was still
        blocked.
        """
        with self._lock:
            if self._result is not None:
                return False
            callbacks = self._settle_pending_locked(False, (handler, restart))
        self._run(callbacks)
        return True

    def kill(self) -> bool:
        """End the call now, whatever the signal rules say (the task is exiting, or the
        thread blocked in it is gone): the policy's ``killed`` result unless the call had
        already succeeded.  Returns whether it was still blocked."""
        with self._lock:
            if self._result is not None:
                return False
            result = self._request.complete()
            callbacks = self._finish_pending_locked(
                self._outcomes.killed if result is None else result
            )
        self._run(callbacks)
        return True

    def _on_wake(self, w: Waiter) -> None:
        with self._lock:
            if self._result is not None or (self._phased and not self._request.on_notify(w)):
                return  # over already, or a notification the request no longer waits for
            callbacks = self._settle_pending_locked()
        if callbacks or self._rearm:  # _run's own test, first: the wake path is hot
            self._run(callbacks)

    def _on_timeout(self) -> None:
        with self._lock:
            if self._result is not None:
                return
            callbacks = self._settle_pending_locked(True)
        self._run(callbacks)

    def _settle_pending_locked(
        self, timed_out: bool = False, signal: tuple[bool, bool] | None = None
    ) -> list[Callable[[PendingWait], None]]:
        """Decide the outcome (``__futex_wait`` after ``schedule()``) of the event that
        arrived: a notify, the deadline (``timed_out``) or a signal (``signal``:
        ``(handler, restart)``); lock held.

        In an uninterruptible phase of the request nothing is decided: a timeout is
        dropped, a signal held back until the phase is over, and delivered once the call
        has run again (see :mod:`futex.kernel.request`)."""
        if DEBUG_LOCKS:
            assert_held(self._lock)
        if self._result is not None:
            return []
        request = self._request
        if self._phased and request.uninterruptible():
            # the hrtimer is not running yet: the timeout is dropped
            if signal is not None:  # TASK_UNINTERRUPTIBLE: the signal stays pending
                self._held_signal = signal
            return []
        result = request.complete()
        if result is not None:
            return self._finish_pending_locked(result)
        if timed_out:
            return self._finish_pending_locked(self._outcomes.timed_out)
        if signal is not None:
            handler, sa_restart = signal
            ended = self._outcomes.on_signal(request, self.deadline, handler, sa_restart)
            if ended is not None:
                return self._finish_pending_locked(ended)
        # A restart, or a notify that was not ours (spurious): wait again, as Linux does.
        result = self._restart_pending_locked()
        if result is not None:
            return self._finish_pending_locked(result)
        held = self._held_signal
        if held is not None and not request.uninterruptible():
            # the call queued again after an uninterruptible phase: the signal arrives now
            self._held_signal = None
            return self._settle_pending_locked(False, held)
        return []

    def _restart_pending_locked(self) -> int | None:
        """Run the wait again from its value check, keeping the absolute deadline; return
        a result, or ``None`` when queued again.

        A request restarted from scratch (ERESTARTNOINTR: the whole system call runs
        again) may re-read its timeout through ``refresh_deadline()``, which returns the
        new deadline or a result (a timespec that is now bad)."""
        got = self._request.refresh_deadline(self.deadline)
        if isinstance(got, int):
            return got
        if got != self.deadline:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.deadline = got
            self._rearm = got is not None
        result = self._request.prepare(self._on_wake)
        if result is not None or self.deadline is None:
            return result
        clock_id, when = self.deadline
        if self._clock.now(clock_id) < when:
            return None
        result = self._request.complete()
        return self._outcomes.timed_out if result is None else result

    def _finish_pending_locked(self, result: int) -> list[Callable[[PendingWait], None]]:
        self._result = result
        self._request.detach()  # break the waiter <-> pending cycle
        if self._timer is not None:
            self._timer.cancel()
        if self.task.blocked is self:
            self.task.blocked = None
        if self._event is not None:
            self._event.release()
        callbacks, self._callbacks = self._callbacks, None
        return callbacks or []

    def _run(self, callbacks: list[Callable[[PendingWait], None]]) -> None:
        """After an event, with no lock held: run the done callbacks (isolated: see the
        module docstring), or arm the timer of a restart that changed the deadline."""
        if callbacks:
            _run_callbacks(self, callbacks)
        if self._rearm:
            with self._lock:
                deadline = self.deadline if self._rearm and self._result is None else None
                self._rearm = False
            if deadline is not None:
                timer = self._clock.call_at(deadline[0], deadline[1], self._on_timeout)
                with self._lock:
                    if self._result is None and self.deadline == deadline:
                        self._timer = timer
                        return
                timer.cancel()


def _run_callbacks(pending: PendingWait, callbacks: list[Callable[[PendingWait], None]]) -> None:
    """Call each of ``callbacks`` with ``pending``, each isolated from the others and from
    the calling thread: an exception is logged and dropped; a ``KeyboardInterrupt`` or
    ``SystemExit`` (the calling thread's, not the callback's) is re-raised once every
    callback has run."""
    interrupt: BaseException | None = None
    for fn in callbacks:
        try:
            fn(pending)
        except (KeyboardInterrupt, SystemExit) as exc:
            if interrupt is None:
                interrupt = exc
        except BaseException:
            _log.exception("done callback %r of %r raised; ignored", fn, pending)
    if interrupt is not None:
        raise interrupt


def block(r: int | PendingWait) -> int:
    """The thread form of a blocking call: ``r`` if the call already ended, else wait for
    it.  If the waiting thread is interrupted (KeyboardInterrupt or the like), the call is
    ended first, so that no waiter stays queued for a thread that is gone."""
    if isinstance(r, int):
        return r
    try:
        return r.wait()
    except BaseException:
        r.kill()
        raise
