"""Robust futex lists: ``set_robust_list`` / ``get_robust_list`` and the exit-time walk.

(Placeholder: implemented by the robust-list work of the PI/robust issue.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from futex.linux import abi

if TYPE_CHECKING:
    from futex.linux.kernel import Task

__all__ = ["exit_robust_list", "sys_get_robust_list", "sys_set_robust_list"]


def sys_set_robust_list(task: Task, head: int, length: int, *_: int) -> int:
    """set_robust_list(2)."""
    return -abi.ENOSYS


def sys_get_robust_list(task: Task, pid: int, head_ptr: int, len_ptr: int, *_: int) -> int:
    """get_robust_list(2)."""
    return -abi.ENOSYS


def exit_robust_list(task: Task) -> None:
    """Walk the task's robust list at exit or exec (Linux ``exit_robust_list``)."""
