"""The caller's side of a system call, for every personality: when a task may call, and
waiting (from another real thread) until it is blocked in a call.

:class:`CallerState` is mixed into :class:`futex.linux.Task`, :class:`futex.zircon.Thread`
and :class:`futex.liteos.Task`.

**The guard.**  A task makes a call from user mode; a task blocked in a call is asleep in
the kernel and a task that exited no longer runs, so neither makes another call.  Every
call entry runs :meth:`CallerState.check_call` first, which raises
:class:`~futex.kernel.errors.TaskStateError` (a ``RuntimeError``) naming the task and its
state — ``"blocked"``, or the personality's own (``"exited"``; Linux ``"exiting"`` /
``"exec"`` between ``begin_exit``/``begin_exec`` and their end; Zircon ``"new"`` before
``zx_thread_start``) — and changes nothing.  Controls applied *to* a task from outside
(exit, a signal or suspension, a priority change) are not calls and are not refused.

**blocked.**  ``task.blocked`` is the :class:`~futex.kernel.blocking.PendingWait` the task
is blocked in, or ``None``.  The pending wait sets it before it queues and clears it when
it settles, under its lock and *before* its done-callbacks run: a cooperative scheduler
that resumes the task from a done-callback may call again at once.

**wait_blocked.**  :meth:`CallerState.wait_blocked` blocks the calling real thread until
the task is blocked in a call (the replacement for ``while task.blocked is None: pass``),
without polling: setting ``blocked`` notifies a condition variable when (and only when)
some thread is waiting on it.  It returns the pending wait the task is blocked in; if the
first call that blocked after ``wait_blocked`` was called has already ended (woken before
the waiting thread looked), that pending wait is returned, ``done()``, rather than waiting
for another block.  It raises ``TimeoutError`` after
``timeout`` seconds (real time), and :class:`~futex.kernel.errors.TaskStateError` when the
task exits (or already has): it will never block again.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

from futex.kernel.blocking import PendingWait
from futex.kernel.errors import TaskStateError

__all__ = ["FINAL_STATES", "CallerState"]

_W = TypeVar("_W", bound=PendingWait)

#: States from which a task never makes (or blocks in) a call again.
FINAL_STATES = frozenset({"exited", "exiting"})


class CallerState(Generic[_W]):
    """Mixin: ``blocked``, the call guard and :meth:`wait_blocked` (see the module
    docstring).  The task calls :meth:`_init_caller` in its ``__init__``, overrides
    :meth:`_call_refusal`, and calls :meth:`_state_changed` when it exits."""

    tid: int

    def _init_caller(self) -> None:
        self._blocked: _W | None = None
        self._last_blocked: _W | None = None
        self._blocks = 0  # pending waits begun so far
        self._watchers = 0  # threads in wait_blocked
        self._watch = threading.Condition(threading.Lock())

    @property
    def blocked(self) -> _W | None:
        """The call this task is blocked in, if any."""
        return self._blocked

    @blocked.setter
    def blocked(self, value: _W | None) -> None:
        self._blocked = value
        if value is not None:
            self._last_blocked = value
            self._blocks += 1
            if self._watchers:  # read after the writes above: see wait_blocked
                self._state_changed()

    def _call_refusal(self) -> str | None:
        """The state that keeps this task from calling, other than being blocked
        (``"exited"``...), or ``None``.  Overridden by each personality."""
        return None

    def _state_changed(self) -> None:
        """Wake the threads in :meth:`wait_blocked` to look again (a block began, or the
        task exited)."""
        with self._watch:
            self._watch.notify_all()

    def check_call(self, call: str) -> None:
        """The guard every call entry runs first: raise
        :class:`~futex.kernel.errors.TaskStateError` if this task is exited (or otherwise
        unable to run) or blocked in a call."""
        state = self._call_refusal()
        if state is None and self._blocked is not None:
            state = "blocked"
        if state is not None:
            raise TaskStateError(self, self.tid, state, call)

    def wait_blocked(self, timeout: float | None = None) -> _W:
        """Block the calling thread until this task is blocked in a call; return that
        call's pending wait (``done()`` if it already ended: see the module docstring).

        ``timeout``: seconds of real time, then ``TimeoutError``.  Raises
        :class:`~futex.kernel.errors.TaskStateError` if the task exits (or has exited).
        """
        end = None if timeout is None else time.monotonic() + timeout
        with self._watch:
            # Counted before the first look: a setter that misses the count wrote
            # ``blocked`` before we look (and we see it); one that sees it notifies, and
            # cannot do so before we wait (it needs the lock).
            self._watchers += 1
            try:
                start = self._blocks
                while True:
                    current = self._blocked
                    if current is not None:
                        return current
                    if self._blocks != start:  # a call blocked and already ended
                        last = self._last_blocked
                        assert last is not None
                        return last
                    state = self._call_refusal()
                    if state in FINAL_STATES:
                        assert state is not None
                        raise TaskStateError(self, self.tid, state, "wait_blocked")
                    remaining = None if end is None else end - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise TimeoutError(f"task {self.tid} did not block in a call")
                    self._watch.wait(remaining)
            finally:
                self._watchers -= 1
