"""PI futexes against an exiting owner: the futex exit state and ``futex_exit_mutex``.

Linux (``kernel/futex/core.c``, ``kernel/futex/pi.c``; the 2019 series "futex: Add mutex
around futex exit" 3f186d974826, "futex: Provide state handling for exec() as well"
af8cbda2cfca, "futex: Provide distinct return value when owner is exiting" ac31c7ff8624,
"futex: Prevent exit livelock" 3ef240eaff36):

- Every task has a futex state, OK -> EXITING -> DEAD (:class:`FutexState`).
  ``futex_cleanup_begin`` takes the task's ``futex_exit_mutex`` and then, under the task's
  ``pi_lock``, makes the state EXITING; ``futex_cleanup_end`` stores the final state (DEAD
  at exit, OK again at exec) and releases the mutex.  The robust-list walk and the PI
  hand-over run in between (:mod:`futex.linux.exit`).
- ``attach_to_pi_owner`` (the first waiter of a PI futex looking up the word's TID) reads
  the owner's state under its ``pi_lock``: OK attaches; anything else goes to
  ``handle_exit_race``, which answers EBUSY while the state is not yet DEAD.  The caller
  (``futex_lock_pi`` for LOCK_PI / LOCK_PI2 / TRYLOCK_PI, ``futex_requeue`` for
  CMP_REQUEUE_PI, through ``futex_proxy_trylock_atomic``) drops every lock, blocks in
  ``wait_for_owner_exiting`` -- a plain ``mutex_lock`` of the owner's ``futex_exit_mutex``
  and an unlock -- and runs the whole call again (``goto retry``: keys, value check, word).
  The word keeps the FUTEX_WAITERS bit the failed attempt set.
- The wait is TASK_UNINTERRUPTIBLE and untimed: ``futex_lock_pi`` starts its hrtimer only
  once it is queued on the rt_mutex (``hrtimer_sleeper_start_expires`` right before
  ``rt_mutex_wait_proxy_lock``), and ``mutex_lock`` sleeps through signals.  An expired
  deadline or a pending signal is seen only after the retry, if the retry has to block:
  the timeout then gives ETIMEDOUT at once, the signal EINTR, which LOCK_PI turns into
  ERESTARTNOINTR (the call runs again).  A retry that takes the lock or fails never sees
  them.

Here ``futex_exit_mutex`` is a :class:`FutexExitMutex` on the task, and a call that must
wait for it is a pending wait whose request (an :class:`ExitAwareRequest`) holds an
:class:`OwnerExitWait`: the cooperative form gets the pending wait back, the threaded form
blocks on it like on any other wait, and the exit that releases the mutex runs the retry
on its own thread, as a waker does.  The wait is the core's *uninterruptible phase*
(:mod:`futex.kernel.request`): while it lasts a timeout or a signal changes nothing yet;
when the owner's exit mutex is released the call runs again, a deadline that has passed
then ends it with ETIMEDOUT only if it had to block, and a signal that arrived meanwhile
is delivered only then (LOCK_PI restarts, as for any signal).

Locks and their order: a pending wait's lock, then bucket locks, then the PI-domain lock
(which stands for ``pi_lock``: the state is written and read under it); a
:class:`FutexExitMutex`'s own lock is a leaf, taken under any of them and never held
while anything else is taken.  The exiting task calls the waiters it released with no lock
held; their retries take the locks above in order.  A CMP_REQUEUE_PI retry wakes the
waiters it requeues with its own pending-wait lock held (pending lock of the requeuer,
then those of the woken waiters): a waiting call never wakes anyone, so the order has no
cycle.

Not modelled: PF_KTHREAD owners (EPERM; the emulation has no kernel threads) and the
recursive-fault path ``futex_exit_recursive``.  Nothing needs modelling between
``exit_signals`` (PF_EXITING) and ``futex_cleanup_begin``: the state is still OK there and
a new waiter attaches to the exiting task as to any other (``exit_pi_state_list`` hands
its PI state on), which is what a task before :meth:`Task.begin_exit` does.
210d36d892de "futex: Clear stale exiting pointer in futex_lock_pi() retry path" fixed a
kernel warning only; it changes no answer.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from futex.kernel import Waiter
from futex.kernel.blocking import PendingWait
from futex.kernel.request import Request

if TYPE_CHECKING:
    from futex.linux.kernel import Task

__all__ = [
    "ExitAwareRequest",
    "FutexExitMutex",
    "FutexState",
    "OwnerExitWait",
    "OwnerExiting",
    "exiting_owner",
    "wait_for_owner_exiting",
]


class FutexState(enum.Enum):
    """``task->futex_state``."""

    OK = 0
    EXITING = 1
    DEAD = 2


class FutexExitMutex:
    """``task->futex_exit_mutex``: held by the task from ``futex_cleanup_begin`` to
    ``futex_cleanup_end``.

    Callers that found the task EXITING wait on it (:meth:`wait`); :meth:`release`
    hands them back to the releasing task, which calls them with no lock held.
    """

    __slots__ = ("_held", "_lock", "_waiters")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = False
        self._waiters: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        state = "held" if self._held else "free"
        return f"<FutexExitMutex {state} waiters={len(self._waiters)}>"

    @property
    def held(self) -> bool:
        """Whether the owning task is inside its futex cleanup."""
        return self._held

    @property
    def waiters(self) -> int:
        """How many calls wait for the cleanup to end."""
        return len(self._waiters)

    def acquire(self) -> None:
        """``mutex_lock`` by the task itself, at ``futex_cleanup_begin``."""
        with self._lock:
            if self._held:
                raise RuntimeError("the task's futex cleanup is already running")
            self._held = True

    def release(self) -> list[Callable[[], None]]:
        """``mutex_unlock`` at ``futex_cleanup_end``: the waiters, to be called by the
        caller once it holds no lock."""
        with self._lock:
            self._held = False
            waiters, self._waiters = self._waiters, []
        return waiters

    def wait(self, fn: Callable[[], None]) -> bool:
        """Call ``fn`` when the mutex is released: True if queued, False (nothing queued)
        when it is free already -- ``mutex_lock`` would not have slept."""
        with self._lock:
            if not self._held:
                return False
            self._waiters.append(fn)
            return True

    def cancel(self, fn: Callable[[], None]) -> None:
        """Forget ``fn`` if it is still queued."""
        with self._lock:
            if fn in self._waiters:
                self._waiters.remove(fn)


class OwnerExiting(Exception):
    """``handle_exit_race``'s EBUSY: the word's owner is between EXITING and DEAD.

    Raised under the bucket and PI-domain locks; the caller drops them and waits
    (:func:`wait_for_owner_exiting`) before it runs the call again."""

    def __init__(self, owner: Task) -> None:
        super().__init__(f"task {owner.tid} is exiting")
        self.owner = owner


class OwnerExitWait:
    """One call's ``wait_for_owner_exiting``: queued on ``owner``'s exit mutex until the
    owner's cleanup ends.

    ``token`` is what the call's ``notify`` is called with (a :class:`Waiter` never
    queued on a futex; its ``pi`` names this wait).  ``over`` becomes true, under the
    pending wait's lock, when that notification is taken.
    """

    __slots__ = ("_fire", "over", "owner", "token")

    def __init__(self, owner: Task, notify: Callable[[Waiter], None]) -> None:
        self.owner = owner
        self.over = False
        self.token = Waiter(notify, owner=owner, tid=owner.tid)
        self.token.pi = self
        token = self.token

        def fire() -> None:
            fn = token.notify
            if fn is not None:
                fn(token)

        self._fire = fire

    def __repr__(self) -> str:
        return f"<OwnerExitWait owner={self.owner.tid} over={self.over}>"

    def start(self) -> bool:
        """Queue on the owner's exit mutex; False when its cleanup is already over."""
        return self.owner.futex_exit_mutex.wait(self._fire)

    def cancel(self) -> None:
        """Stop waiting (the call ended, or its retry is under way)."""
        self.token.notify = None
        self.owner.futex_exit_mutex.cancel(self._fire)


class ExitAwareRequest(Request):
    """A request that may wait for an exiting owner (LOCK_PI / LOCK_PI2 / TRYLOCK_PI,
    CMP_REQUEUE_PI): ``exit_wait`` (``None``: not waiting), read and written under the
    pending wait's lock.  Its ``complete()`` must end the exit wait (cancelling it) and
    answer ``None``: the call then runs again.

    The exit wait is the core's uninterruptible phase: it lasts until the owner's exit
    notifies the exit wait's token (``over``); a token of an exit wait the call has
    given up is dropped."""

    __slots__ = ("exit_wait",)

    phased = True

    #: The exit wait under way (``None``: none); a subclass sets it in its ``__init__``.
    exit_wait: OwnerExitWait | None

    def uninterruptible(self) -> bool:
        """``wait_for_owner_exiting``: TASK_UNINTERRUPTIBLE, the hrtimer not started."""
        ew = self.exit_wait
        return ew is not None and not ew.over

    def end_exit_wait(self) -> OwnerExitWait | None:
        """Stop waiting for the exiting owner (from ``complete()``: the call runs again,
        or is killed): the exit wait that was under way, now cancelled, or ``None``."""
        ew, self.exit_wait = self.exit_wait, None
        if ew is not None:
            ew.cancel()
        return ew

    def detach(self) -> None:
        """Forget the exit wait's callback (the call is over)."""
        if self.exit_wait is not None:
            self.exit_wait.cancel()

    def on_notify(self, w: Waiter) -> bool:
        """A notification of an exit wait's token ends that wait (``over``), if it is the
        current one; any other is the core's business."""
        mark = w.pi
        if not isinstance(mark, OwnerExitWait):
            return True
        if self.exit_wait is not mark:
            return False  # a wait the call has given up (killed)
        mark.over = True
        return True


def exiting_owner(pw: PendingWait) -> Task | None:
    """The task whose futex cleanup the pending call ``pw`` waits for, if any."""
    request = pw.request
    ew = request.exit_wait if isinstance(request, ExitAwareRequest) else None
    return None if ew is None else ew.owner


def wait_for_owner_exiting(
    request: ExitAwareRequest, owner: Task, notify: Callable[[Waiter], None]
) -> bool:
    """Make ``request`` wait for ``owner``'s cleanup (called from ``prepare``, under the
    pending wait's lock, with no bucket lock held).  False when the cleanup has ended
    already: the caller retries at once."""
    ew = OwnerExitWait(owner, notify)
    request.exit_wait = ew  # before the exit can fire: its notify needs the pending lock
    if ew.start():
        return True
    request.exit_wait = None
    return False
