"""What task exit and exec do for futexes (Linux ``exit_mm_release`` / ``exec_mm_release``).

Linux, ``kernel/fork.c`` and ``kernel/futex/core.c``::

    exit_mm_release(tsk, mm):  futex_exit_release(tsk); mm_release(tsk, mm)
    exec_mm_release(tsk, mm):  futex_exec_release(tsk); mm_release(tsk, mm)

Both futex halves run ``futex_cleanup``: the robust list is walked
(:func:`futex.linux.robust.exit_robust_list`) and the head set to NULL, then the PI futexes
the task still owns are handed on (:func:`futex.linux.pi.exit_pi_state_list`) -- each in
the bucket its waiters queued in, which for a private PI futex of another process (its word
names this task's TID) is that process's, never this one's.  Exit and exec differ only in
the task's futex state afterwards (DEAD or OK again): after exec the task lives on with no
robust list.

The futex state machine (``futex_cleanup_begin`` / ``futex_cleanup_end``; the states and
the mutex are in :mod:`futex.linux.pi_exit`)::

    futex_exit_release:  begin (OK -> EXITING, futex_exit_mutex taken)
                         futex_cleanup
                         end (EXITING -> DEAD, futex_exit_mutex released)
    futex_exec_release:  the same, ending in OK

``begin`` takes the task's exit mutex first and then sets EXITING under the PI-domain lock
(Linux: ``pi_lock``), so a LOCK_PI / TRYLOCK_PI / CMP_REQUEUE_PI that looks the owner up
either attached before (and ``exit_pi_state_list`` hands its PI state on) or sees EXITING
and waits on the mutex.  ``end`` stores the final state, releases the mutex and lets the
calls that waited run again, on the exiting task's thread, before ``mm_release``.  Between
the two the task is alive and findable by its TID; once DEAD, the calls find it (until
:meth:`Task.exit` unhashes it) but never attach to it: ``handle_exit_race`` answers.
:meth:`Task.begin_exit` / :meth:`Task.begin_exec` stop a task right after ``begin`` -- where
an exiting task preempted there leaves it -- and :meth:`Task.exit` / :meth:`Task.exec`
finish; called alone they do both, as before.

``mm_release`` then does CLONE_CHILD_CLEARTID (the address ``set_tid_address`` or clone
recorded): if the address space has other users (``mm_users > 1``), store 0 there (a 4-byte
``put_user``, faults ignored) and wake one waiter with a *shared* FUTEX_WAKE (``do_futex``
without FUTEX_PRIVATE_FLAG; errors ignored) -- how ``pthread_join`` learns a thread has
gone.  Either way the address is forgotten.  The last user of an address space stores
nothing: nobody is left to look (measured on the host: a single-threaded child's
``set_tid_address`` word in MAP_SHARED memory keeps its value after ``_exit``; a thread's
becomes 0).  ``mm_users`` is modelled as the number of live tasks of the process, the
exiting one included: the emulation has no other ways to share an ``mm`` (``CLONE_VM``
without ``CLONE_THREAD``, ``vfork``) nor transient references to one.

Not modelled: ``futex_exit_recursive`` (a fault during exit), the compat robust list, and
PF_EXITING before ``futex_cleanup_begin`` (the futex state is still OK there, so nothing
futex-visible depends on it).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from futex.linux.pi import exit_pi_state_list
from futex.linux.pi_exit import FutexState
from futex.linux.robust import exit_robust_list, put_user, wake_shared_one
from futex.memory import MemoryFault

if TYPE_CHECKING:
    from futex.linux.kernel import Task

__all__ = ["exec_futex", "exit_futex", "futex_cleanup_begin", "futex_cleanup_end"]


def futex_cleanup(task: Task) -> None:
    """Linux ``futex_cleanup``: walk and drop the robust list, then hand on PI futexes."""
    if task.robust_list:
        exit_robust_list(task)
        task.robust_list = 0
    exit_pi_state_list(task)


def mm_release(task: Task) -> None:
    """The CLONE_CHILD_CLEARTID part of Linux ``mm_release``."""
    addr = task.clear_child_tid
    if not addr:
        return
    if _mm_users(task) > 1:
        # "if userspace has not set up a proper pointer then tough luck"
        with contextlib.suppress(MemoryFault):
            put_user(task.process.space, addr, b"\0\0\0\0")
        wake_shared_one(task, addr)
    task.clear_child_tid = 0


def _mm_users(task: Task) -> int:
    return sum(1 for t in list(task.process.tasks.values()) if t.alive)


def futex_cleanup_begin(task: Task) -> None:
    """Linux ``futex_cleanup_begin``: take the task's exit mutex, then make its futex
    state EXITING under the PI-domain lock."""
    task.futex_exit_mutex.acquire()
    with task.process.futex.pi.lock:
        task.futex_state = FutexState.EXITING


def futex_cleanup_end(task: Task, state: FutexState) -> None:
    """Linux ``futex_cleanup_end``: store the final state (DEAD, or OK after exec), then
    release the exit mutex; the calls that waited on it run again now, with no lock
    held."""
    with task.process.futex.pi.lock:
        task.futex_state = state
    for retry in task.futex_exit_mutex.release():
        retry()


def _release(task: Task, state: FutexState) -> None:
    if task.futex_state is not FutexState.EXITING:  # not begun by Task.begin_exit/exec
        futex_cleanup_begin(task)
    futex_cleanup(task)
    futex_cleanup_end(task, state)
    mm_release(task)


def exit_futex(task: Task) -> None:
    """Futex cleanup of an exiting task (``futex_exit_release``, then ``mm_release``):
    the state machine around the robust list and the PI states, ending DEAD, then
    CLONE_CHILD_CLEARTID.  A cleanup already begun (EXITING) is finished."""
    _release(task, FutexState.DEAD)


def exec_futex(task: Task) -> None:
    """Futex cleanup at exec: the same as exit, but the task lives on (state OK again).

    To be called once the other tasks of the process are gone (``de_thread``) and before
    the address space is replaced: the robust list is walked in the old memory and cleared,
    PI futexes are handed on, and the CLONE_CHILD_CLEARTID address is forgotten (stored to
    and woken only if the old address space still has other users).
    """
    _release(task, FutexState.OK)
