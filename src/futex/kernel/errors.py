"""Kernel-level errors of the futex core; the personalities translate them.

=====================  =========================  =================  ==============
core error             meaning                    Linux              Zircon
=====================  =========================  =================  ==============
``MisalignedAddress``  word not 4-byte aligned    EINVAL             INVALID_ARGS
``MemoryFault``        word or key inaccessible   EFAULT             (fault path)
``ValueMismatch``      word != expected value     EAGAIN             BAD_STATE
``PiWaiterConflict``   plain op met a PI waiter   EINVAL             -
=====================  =========================  =================  ==============

:class:`TaskStateError` is not a futex outcome but a misuse of the emulator: a task asked
to make a call in a state in which its thread of control cannot be running in user mode
(blocked in another call, exited or exiting, not started).  Every personality raises it
at every call entry.
"""

from __future__ import annotations

__all__ = [
    "FutexError",
    "MemoryFault",
    "MisalignedAddress",
    "PiWaiterConflict",
    "TaskStateError",
    "ValueMismatch",
]


class FutexError(Exception):
    """Base of the errors the futex core raises."""


class MisalignedAddress(FutexError):
    """A futex address that is not aligned to the 4-byte word."""

    def __init__(self, addr: int) -> None:
        super().__init__(f"futex address {addr:#x} is not 4-byte aligned")
        self.addr = addr


class ValueMismatch(FutexError):
    """The futex word did not hold the expected value (the wait or compare did not start)."""

    def __init__(self, addr: int, expected: int, found: int) -> None:
        # No message formatting here: a mismatch is a hot, expected outcome.
        self.addr = addr
        self.expected = expected
        self.found = found

    def __str__(self) -> str:
        return f"word at {self.addr:#x} holds {self.found:#x}, expected {self.expected:#x}"


class MemoryFault(FutexError):
    """An access the address space does not allow (unmapped, protection, past EOF).

    Raised by a :class:`~futex.kernel.FutexTarget`; Linux answers EFAULT.
    """

    def __init__(self, addr: int, access: str, why: str) -> None:
        super().__init__(f"{access} fault at {addr:#x}: {why}")
        self.addr = addr
        self.access = access
        self.why = why


class PiWaiterConflict(FutexError):
    """A plain wake or requeue met a PI waiter on the key (Linux: EINVAL).  Waiters
    already dequeued before the conflict stay woken, as Linux's ``wake_q`` does."""

    def __init__(self, done: int = 0) -> None:
        super().__init__("a plain futex operation met a PI waiter")
        self.done = done


class TaskStateError(RuntimeError):
    """A task (Linux task, Zircon thread, LiteOS task) was asked to make a call while it
    cannot: it is ``"blocked"`` in another call, has ``"exited"``, is ``"exiting"`` (or
    in its ``"exec"``), or is ``"new"`` (a Zircon thread not started).

    A real thread blocked in the kernel or dead makes no system call, so the emulator
    refuses the call instead of answering it; nothing changed.  ``task`` is the task,
    ``state`` one of the words above, ``call`` the refused call (or ``wait_blocked``, for
    a task that exited: it will never block).
    """

    def __init__(self, task: object, tid: int, state: str, call: str) -> None:
        what = {
            "blocked": "is blocked in a futex call",
            "exited": "has exited",
            "exiting": "is exiting",
            "exec": "is in its exec",
            "new": "is new (not started)",
        }.get(state, f"is {state}")
        super().__init__(f"{type(task).__name__.lower()} {tid} {what}: {call} refused")
        self.task = task
        self.tid = tid
        self.state = state
        self.call = call
