"""One schedule of a scenario: tasks, scheduling points, decisions, detection.

:func:`run_schedule` runs a :class:`Scenario` once on an emulated machine in its start
state (:mod:`futex.check.machine`: the same kernel, tids and addresses every time), asking
``chooser`` what to do at every scheduling point with a choice, and returns an
:class:`Outcome`.  The engine is :mod:`futex.check.schedule` (and
:mod:`futex.check.record`, the steps); tasks run as greenlets or
pooled threads (:mod:`futex.check.tasks`), identically; words are
:mod:`futex.check.words`; the record is :mod:`futex.check.trace`.

Scheduling points
-----------------
A task parks *before* every atomic and futex call of a checked word (its ``next_op``);
the schedule then picks what happens next.  A blocking call is two points: its *enter*
(the value check and the enqueue, atomic towards wakers as in Linux, made by the real
emulated kernel through the task's ``blocker`` hook) and its *return* (the woken task runs
later, at a point of its own, ``kind == "return"``).  Code between two points is local to
the task and runs at once.  At start every task runs to its first point, in order.

Options at a point, in canonical order: every runnable task (ascending), then ``timer``
when a timer is pending (it fires the earliest deadline: virtual time jumps), then a
spurious wake-up (``-EINTR`` through ``task.interrupt(handler=True, restart=False)``) of
each task blocked in a ``FUTEX_WAIT`` while the budget lasts.  The **default policy**
keeps running the current task while it can run, else the lowest-numbered runnable one,
else fires the timer; a **preemption** is running another task while the current one can
run (timer and spurious events are free).  When nothing can run the earliest timer fires;
with no timer either the schedule is over (:mod:`futex.check.detect` says why).

Spinning (after VSync's await model checking): a task whose last steps only re-observed
unchanged values -- the same atomic with the same arguments returning the same result,
no word changed since -- and whose next op repeats one of them is *spinning*: it is left
out of the runnable tasks while another task can run or a timer is pending, since running
it changes nothing.  When only spinners are left they run again, and once each has
repeated itself ``livelock_after`` times more the schedule is a livelock.  (A bounded
spin loop therefore gives up only when nothing else can run.)

Checks: an exception in a task ends the schedule (``assertion`` for an AssertionError,
else ``exception``); the invariant runs after every step (``invariant``); the final check
after the last task ends (``final``); ``max_steps`` steps end it as a livelock.  When the
schedule is over, the tasks still running are unwound (a ``BaseException`` raised at
their scheduling point) and the machine is reset for the next schedule.

The chooser is asked only at points with two options or more: ``point.step`` is the
index of that decision (``outcome.decisions[point.step]``), ``point.at`` the index the
step taken there gets in ``outcome.trace``.  It must answer one of ``point.options``.
"""

from __future__ import annotations

from futex.check.model import (
    ATOMICS,
    KINDS,
    TIMER,
    Choice,
    Chooser,
    Decision,
    OpInfo,
    Outcome,
    Point,
    Scenario,
    default_choice,
)
from futex.check.schedule import Run
from futex.check.tasks import make_backend

__all__ = [
    "ATOMICS",
    "KINDS",
    "TIMER",
    "Choice",
    "Chooser",
    "Decision",
    "OpInfo",
    "Outcome",
    "Point",
    "Scenario",
    "default_choice",
    "run_schedule",
]


def run_schedule(
    scenario: Scenario,
    chooser: Chooser | None,
    *,
    backend: str | None = None,
    max_steps: int = 2000,
    spurious: int | None = None,
) -> Outcome:
    """Run ``scenario`` once, asking ``chooser`` at every point with a choice (``None``:
    the default policy); ``backend`` "greenlet", "threads" or ``None`` (greenlet if
    installed); ``spurious`` overrides the scenario's spurious wake-up budget."""
    if max_steps < 1:
        raise ValueError("max_steps must be >= 1")
    run = Run(
        scenario,
        chooser,
        make_backend(backend),
        max_steps,
        scenario.spurious if spurious is None else spurious,
    )
    return run.run()
