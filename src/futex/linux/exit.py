"""What task exit and exec do for futexes (Linux ``futex_exit_release`` / ``mm_release``).

(Placeholder: implemented by the robust-list work of the PI/robust issue.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from futex.linux.kernel import Task

__all__ = ["exec_futex", "exit_futex"]


def exit_futex(task: Task) -> None:
    """Futex cleanup of an exiting task: robust list, PI state, CLONE_CHILD_CLEARTID."""


def exec_futex(task: Task) -> None:
    """Futex cleanup at exec: the same as exit, but the task lives on."""
