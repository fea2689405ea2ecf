"""What went wrong when a schedule cannot go on: deadlock, lost wakeup, livelock.

The waiter query: a task blocked in a futex call has a
:class:`~futex.kernel.blocking.PendingWait` whose request holds its
:class:`~futex.kernel.Waiter`; while queued, the waiter's key names the word it sleeps on
*now* -- a requeue moves it to another key.  :func:`queued_address` reads it;
:func:`queued_tasks` lists each queue (for the trace's ``waiters``) through the core's
locked-bucket handles.

Classification, when no task can run and no timer is pending (spurious wake-ups are not
progress: a task that only a spurious wake-up could free is stuck):

- **lost wakeup**: some sleeper's word changed since it queued (or was requeued there):
  the value it slept on is gone, so a wake-up was due and never came; or the scenario's
  ``awaits`` predicate for that word holds (what it waits for is there);
- **deadlock**: every sleeper's word still holds the value it queued at (and no
  ``awaits`` holds): they wait for each other, or for a task that finished;
- **livelock**: the tasks that could still run only spin -- each re-reads words nobody
  changed since (see :mod:`futex.check.runtime`) -- or a schedule ran past ``max_steps``.

Messages name the stuck task first and say why, e.g. ``W2 sleeps forever in FUTEX_WAIT
on sem (queued at 0, now 1); other tasks finished; no timer pending``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from futex.check.trace import format_value
from futex.kernel import FutexManager, Waiter
from futex.kernel.blocking import PendingWait
from futex.kernel.keys import key_address

if TYPE_CHECKING:
    from futex.check.tasks import TaskState

__all__ = [
    "CALLS",
    "Sleeper",
    "Spinner",
    "classify_stuck",
    "judge_livelock",
    "judge_stuck",
    "livelock_message",
    "queued_address",
    "queued_tasks",
    "waiter_of",
]

#: The futex command a blocking operation sleeps in, by operation kind.
CALLS = {"wait": "FUTEX_WAIT", "lock_pi": "FUTEX_LOCK_PI", "lock_pi2": "FUTEX_LOCK_PI2"}


def waiter_of(pending: PendingWait) -> Waiter | None:
    """The waiter of a blocked call (plain, PI and requeue-PI waits have one)."""
    w = getattr(pending.request, "waiter", None)
    return w if isinstance(w, Waiter) else None


def queued_address(pending: PendingWait) -> int | None:
    """The address of the word the call's waiter is queued on now, or ``None`` if it is
    not queued (woken, or between a dequeue and its wake-up)."""
    w = waiter_of(pending)
    if w is None or not w.queued or w.key is None:
        return None
    return key_address(w.key)


def queued_tasks(
    manager: FutexManager,
    pendings: Iterable[PendingWait],
    names: Mapping[int, str],
    owners: Mapping[Any, str],
) -> dict[str, list[str]]:
    """The wait queues the blocked calls ``pendings`` are in: word name (``names`` by
    address) -> the names of the tasks queued there (``owners`` by kernel task), in wake
    order, read through the manager's locked-bucket handles."""
    out: dict[str, list[str]] = {}
    seen: set[object] = set()
    for p in pendings:
        if p.done():
            continue
        w = waiter_of(p)
        key = w.key if w is not None and w.queued else None
        if key is None or key in seen:
            continue
        seen.add(key)
        addr = key_address(key)
        with manager.lock_key(key) as h:
            out[names.get(addr, f"{addr:#x}")] = [owners.get(x.owner, "?") for x in h.waiters(key)]
    return out


class Sleeper(NamedTuple):
    """A task asleep in a futex call when the schedule could not go on."""

    task: str
    call: str
    word: str
    queued: int
    now: int
    requeued_from: str | None = None
    awaits: bool = False

    @property
    def lost(self) -> bool:
        """Whether a wake-up was due: the word changed, or ``awaits`` holds."""
        return self.now != self.queued or self.awaits

    def describe(self) -> str:
        moved = f"requeued from {self.requeued_from}; " if self.requeued_from else ""
        why = "; awaits holds" if self.awaits else ""
        return (
            f"{self.task} sleeps forever in {self.call} on {self.word} ({moved}queued at "
            f"{format_value(self.queued)}, now {format_value(self.now)}{why})"
        )


class Spinner(NamedTuple):
    """A task that only re-reads unchanged words."""

    task: str
    op: str
    word: str
    value: object
    repeats: int

    def describe(self) -> str:
        return (
            f"{self.task} spins: {self.word}.{self.op} returned {format_value(self.value)} "
            f"{self.repeats + 1} times and nobody changes it"
        )


def _others(mentioned: set[str], finished: Sequence[str]) -> str:
    rest = [t for t in finished if t not in mentioned]
    if not rest:
        return ""
    return "; other tasks finished" if mentioned else "; every task finished"


def classify_stuck(
    sleepers: Sequence[Sleeper], finished: Sequence[str]
) -> tuple[str, str, str | None]:
    """``(kind, message, task)`` for a schedule where nothing can run and no timer is
    pending: ``"lost-wakeup"`` or ``"deadlock"`` (see the module docstring)."""
    lost = [s for s in sleepers if s.lost]
    if lost:
        first = lost[0]
        parts = [first.describe()]
        parts += [s.describe() for s in sleepers if s is not first]
        message = "; ".join(parts) + _others({s.task for s in sleepers}, finished)
        return "lost-wakeup", message + "; no timer pending", first.task
    if not sleepers:  # cannot happen: a schedule with nothing to run has sleepers
        return "deadlock", "no task can run; no timer pending", None
    message = "deadlock: " + "; ".join(s.describe() for s in sleepers)
    message += _others({s.task for s in sleepers}, finished)
    return "deadlock", message + "; no timer pending", sleepers[0].task


def livelock_message(
    spinners: Sequence[Spinner], sleepers: Sequence[Sleeper], finished: Sequence[str]
) -> str:
    """The message of a livelock: every task that can run spins."""
    parts = [s.describe() for s in spinners] + [s.describe() for s in sleepers]
    mentioned = {s.task for s in spinners} | {s.task for s in sleepers}
    return "livelock: " + "; ".join(parts) + _others(mentioned, finished) + "; no timer pending"


Awaits = Mapping[str, Callable[[int], object]] | None


def sleeper_of(
    t: TaskState, names: Mapping[int, str], load: Callable[[int], int], awaits: Awaits
) -> Sleeper:
    """What task ``t``, asleep, sleeps on: the word it is queued on now, the value it
    queued at, the value now, whether its ``awaits`` predicate holds."""
    p = t.pending
    addr = queued_address(p) if p is not None else None
    if addr is None:
        addr = t.wait_addr
    word = names.get(addr, f"{addr:#x}")
    now = load(addr)
    holds = False
    pred = (awaits or {}).get(word)
    if pred is not None:
        try:
            holds = bool(pred(now))
        except Exception:  # a predicate that cannot judge this value does not hold
            holds = False
    kind = t.op.kind if t.op is not None else "wait"
    return Sleeper(t.name, CALLS.get(kind, kind), word, t.wait_value, now, t.requeued_from,
                   holds)  # fmt: skip


def _sleepers_and_finished(
    tasks: Sequence[TaskState], names: Mapping[int, str], load: Callable[[int], int],
    awaits: Awaits,
) -> tuple[list[Sleeper], list[str]]:  # fmt: skip
    from futex.check.tasks import BLOCKED, DONE

    sleepers = [sleeper_of(t, names, load, awaits) for t in tasks if t.state == BLOCKED]
    return sleepers, [t.name for t in tasks if t.state == DONE]


def judge_stuck(
    tasks: Sequence[TaskState], names: Mapping[int, str], load: Callable[[int], int],
    awaits: Awaits,
) -> tuple[str, str, str | None]:  # fmt: skip
    """``(kind, message, task)`` of a schedule where some task sleeps, nothing can run
    and no timer is pending (:func:`classify_stuck`)."""
    return classify_stuck(*_sleepers_and_finished(tasks, names, load, awaits))


def judge_livelock(
    spinning: Sequence[TaskState], tasks: Sequence[TaskState], names: Mapping[int, str],
    load: Callable[[int], int], awaits: Awaits,
) -> str:  # fmt: skip
    """The message of a livelock: ``spinning`` only repeat observations."""
    spinners = []
    for t in spinning:
        op, seen = t.op, t.seen
        assert op is not None and seen is not None
        value = seen.get((op.kind, op.word, t.args))
        spinners.append(Spinner(t.name, op.kind, op.word, value, t.stale))
    return livelock_message(spinners, *_sleepers_and_finished(tasks, names, load, awaits))
