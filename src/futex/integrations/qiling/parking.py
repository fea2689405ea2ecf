"""Parking a guest thread: how a handler that must wait hands the wait to its greenlet.

A system call handler runs inside a unicorn callback, where switching greenlets would
corrupt the emulation (Qiling's one rule: never give up control in a unicorn callback).
:func:`park` therefore only stops the emulation and sets the thread's ``sched_cb``; Qiling
saves the thread's context and calls ``sched_cb`` in the thread's own greenlet, where
``wait()`` may block on gevent.  The result ``wait()`` returns goes into rax of the thread's
*saved* context: Qiling restores that context before the thread runs again, and the live
registers belong to whichever thread ran last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["park"]

_MASK64 = (1 << 64) - 1


def park(ql: Any, th: Any, wait: Callable[[], int]) -> None:
    """Stop ``th`` (the current thread, inside a handler) and run ``wait()`` in its own
    greenlet; what it returns becomes the system call's result."""

    def resume(thread: Any) -> None:
        result = wait()
        thread.restore()
        ql.arch.regs.rax = result & _MASK64
        thread.save()

    ql.emu_stop()
    th.sched_cb = resume
