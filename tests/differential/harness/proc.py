"""What ``/proc`` shows of a host task: whether it sleeps in a given system call.

The harness waits *for a state*, never for a time: a task the kernel has woken is running
or TASK_WAKING (shown ``R``) before the waking call returns, so a task whose state is ``S``
and whose ``/proc/<pid>/task/<tid>/syscall`` shows the call sleeps in it.
"""

from __future__ import annotations

from collections.abc import Sequence

from tests.differential.harness.layout import U64

__all__ = [
    "asleep_in",
    "gone",
    "proc_args",
]


def proc_args(nr: int, args: Sequence[int]) -> list[str]:
    """How ``/proc/<pid>/task/<tid>/syscall`` shows a task asleep in this call (the
    number and the first two registers)."""
    return [str(nr), *(f"{a & U64:#x}" for a in (*args, 0, 0)[:2])]


def asleep_in(task_dir: str, signature: Sequence[str]) -> bool:
    """Whether the task at ``task_dir`` (``/proc/<pid>/task/<tid>``) sleeps (state S) in
    the system call ``signature`` (:func:`proc_args`): its state is read first, then its
    system call (a task that was asleep in it and is not woken stays there)."""
    try:
        with open(f"{task_dir}/stat") as f:
            stat = f.read()
        if stat[stat.rindex(")") + 2 :].split(" ", 1)[0] != "S":
            return False
        with open(f"{task_dir}/syscall") as f:
            fields = f.read().split()
    except (OSError, ValueError):
        return False  # gone (or /proc not readable)
    return fields[: len(signature)] == list(signature)


def gone(task_dir: str) -> bool:
    """Whether the task has exited (a zombie, or reaped)."""
    try:
        with open(f"{task_dir}/stat") as f:
            stat = f.read()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2 :].split(" ", 1)[0] in ("Z", "X")
