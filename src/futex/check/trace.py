"""The record of one schedule: a :class:`Step` per scheduling point taken, and the digest
of the operation sequence that replay compares.

A step is what one task did at one scheduling point (an atomic, a futex call, the return
from a blocking wait), or an event the schedule chose (``timer``: the clock jumped to the
earliest deadline; ``signal``: a spurious wake-up injected into a blocked task).  Steps
are recorded raw on the hot path -- the operation's kind, word and arguments, its raw
result, the words' values after it as a tuple, the wait queues -- and turned into text
only when read (:attr:`Step.operation`, :attr:`Step.result`, :attr:`Step.words`).

Raw results: an atomic's return value; for a futex call the kernel's own answer (``>= 0``
or ``-errno``, :data:`PENDING` for a wait that went to sleep); ``None`` for a store;
:class:`Raised` when the call raised.

The ops digest (:func:`ops_digest`) is a CRC-32 over ``task:kind:word`` of every step: two
runs with the same decisions have the same digest unless the scenario is nondeterministic
(a replay compares it).
"""

from __future__ import annotations

import errno
import os
import zlib
from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple

__all__ = ["PENDING", "Raised", "Step", "format_value", "ops_digest"]

#: The raw result of a futex call that went to sleep (the enter half of a blocking wait).
PENDING: Final = "pending"

#: Operation kinds that are futex calls (their raw results are kernel answers).
FUTEX_KINDS: Final = frozenset(
    {"wait", "wake", "requeue", "cmp_requeue", "wake_op", "lock_pi", "lock_pi2",
     "trylock_pi", "unlock_pi", "return"}
)  # fmt: skip


class Raised:
    """The raw result of an operation that raised."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"raises {type(self.error).__name__}: {self.error}"


def format_value(v: object) -> str:
    """A word value as the trace shows it: decimal when small, hex when it looks like a
    bit pattern (a PI word's ``FUTEX_WAITERS | tid``)."""
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0x10000:
        return f"{v:#x}"
    return str(v)


def _errno_name(r: int) -> str:
    code = -r
    name = errno.errorcode.get(code)
    return name if name is not None else f"errno {code} ({os.strerror(code)})"


def _kernel_result(kind: str, r: object) -> str:
    if r == PENDING:
        return "sleeps"
    if not isinstance(r, int):
        return repr(r)
    if kind == "return":
        if r == 0:
            return "woken"
        if r == -errno.EINTR:
            return "EINTR (spurious wake-up)"
        if r == -errno.ETIMEDOUT:
            return "timed out"
        return _errno_name(r)
    if r < 0:
        return _errno_name(r)
    if kind in ("wake", "wake_op"):
        return f"woke {r}"
    if kind in ("requeue", "cmp_requeue"):
        return f"woke+requeued {r}"
    if kind in ("lock_pi", "lock_pi2", "trylock_pi"):
        return "acquired"
    return str(r)


class Step(NamedTuple):
    """One step of a schedule (see the module docstring).

    ``step``: its index; ``task``: the task's name, or ``"timer"`` / ``"signal"`` for an
    event; ``kind`` / ``word`` / ``args``: the operation; ``raw``: its raw result;
    ``names`` / ``values``: every word of the schedule and its value after the step;
    ``waiters``: word name -> the tasks queued on it after the step, in wake order.
    (A named tuple: the engine builds one per step on its hot path.)
    """

    step: int
    task: str
    kind: str
    word: str
    args: tuple[object, ...]
    raw: object
    names: tuple[str, ...]
    values: tuple[int, ...]
    waiters: Mapping[str, list[str]]

    @property
    def operation(self) -> str:
        """The operation as text: ``sem.fetch_add(1)``, ``sem.wait(0)``, ``timer fires``."""
        kind, word, args = self.kind, self.word, self.args
        if kind == "timer":
            return f"timer fires (clock +{args[0]:g} s)" if args else "timer fires"
        if kind == "spurious":
            return f"spurious wake-up of {args[0]} (EINTR)"
        if kind == "return":
            return f"{word}: {args[0] if args else 'wait'} returns"
        text = ", ".join(
            a if isinstance(a, str) else format_value(a) for a in args if a is not None
        )
        return f"{word}.{kind}({text})"

    @property
    def result(self) -> str:
        """The result as text: a value, ``sleeps``, ``woken``, ``EAGAIN``, ``raises ...``."""
        kind, r = self.kind, self.raw
        if isinstance(r, Raised):
            return repr(r)
        if kind in ("timer", "spurious"):
            return str(r) if r else "-"
        if kind in FUTEX_KINDS:
            return _kernel_result(kind, r)
        if r is None:
            return "-"
        if kind == "cas" and self.args:
            return f"{format_value(r)} ({'swapped' if r == self.args[0] else 'failed'})"
        return format_value(r)

    @property
    def words(self) -> dict[str, int]:
        """Every word's value after the step."""
        return dict(zip(self.names, self.values, strict=True))

    def __repr__(self) -> str:
        return f"<Step {self.step} {self.task}: {self.operation} -> {self.result}>"

    def as_dict(self) -> dict[str, object]:
        """The step as plain data (for JSON reports)."""
        return {
            "step": self.step,
            "task": self.task,
            "operation": self.operation,
            "result": self.result,
            "words": self.words,
            "waiters": {k: list(v) for k, v in self.waiters.items()},
        }


def ops_digest(steps: Iterable[Step]) -> str:
    """8 hex digits over the sequence of (task, operation kind, word) of ``steps``."""
    crc = 0
    for s in steps:
        crc = zlib.crc32(f"{s.task}:{s.kind}:{s.word}\n".encode(), crc)
    return f"{crc:08x}"
