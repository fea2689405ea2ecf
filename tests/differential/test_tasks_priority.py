"""Differential tests, several tasks, priorities (SCHED_FIFO threads beside emulated tasks
of the same class and priority): wakes, requeues, PI unlocks and requeue-PI go by priority;
priority inheritance through a chain reorders a lock's waiters.

Multi-task: real threads parked on the layout's words beside emulated tasks parked on the
same words (``harness.tasks``); the same calls on both; results, who woke and the words must
agree.  Each scenario runs on the three key kinds where it can (``KEY_KINDS``: private,
shared anonymous, shared file).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.differential.harness.availability import UNAVAILABLE

if UNAVAILABLE:  # pragma: no cover - other hosts, or the extension not built
    pytest.skip(UNAVAILABLE, allow_module_level=True)

from futex.linux import abi
from tests.differential.harness.scenarios import (
    FIFO,
    KEY_KINDS,
    PRIORITIES,
    PRIORITY_ORDER,
    Words,
    needs_sched_fifo,
    results,
    run_scenario,
    woke,
)
from tests.differential.harness.steps import Current
from tests.differential.harness.strategies import CMP_REQUEUE_PI, INT_MAX, WAIT_REQUEUE_PI
from tests.differential.harness.tasks import BLOCKS, MAIN, Set, Step, TaskDiffer, Tid


@needs_sched_fifo
@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_wake_in_priority_order(tasks: TaskDiffer, kind: str) -> None:
    w = Words(kind)
    steps = [*w.zero(), *(w.wait(k, w.a) for k in range(5)), *(w.wake(w.a) for _ in range(5))]
    out = run_scenario(tasks, PRIORITIES, steps)
    assert woke(out)[5:] == PRIORITY_ORDER


@needs_sched_fifo
@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_requeue_keeps_priority_order(tasks: TaskDiffer, kind: str) -> None:
    """Requeued waiters keep their priorities in the target's queue: all five move A -> B
    (behind nobody), then single wakes of B go by priority."""
    w = Words(kind)
    steps = [
        *w.zero(),
        *(w.wait(k, w.a) for k in range(5)),
        w.fx(MAIN, w.a, abi.FUTEX_CMP_REQUEUE, 0, INT_MAX, w.b, Current(w.a)),
        *(w.wake(w.b) for _ in range(5)),
    ]
    out = run_scenario(tasks, PRIORITIES, steps)
    assert woke(out)[6:] == PRIORITY_ORDER


@needs_sched_fifo
@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_unlock_pi_hands_the_lock_in_priority_order(tasks: TaskDiffer, kind: str) -> None:
    """PI waiters queue on the lock by priority: the owner's unlock goes to the most urgent
    one (w1, then w3, w4, w0, w2, each unlocking in turn)."""
    w = Words(kind)
    order = [k for [k] in PRIORITY_ORDER]
    steps = [Set(w.pi, Tid(MAIN)), *(w.lock(k, w.pi) for k in range(5)), w.unlock(MAIN, w.pi)]
    steps += [w.unlock(k, w.pi) for k in order]
    out = run_scenario(tasks, PRIORITIES, steps, ((w.pi, w.f),))
    assert woke(out)[5:] == [*PRIORITY_ORDER, []]


@needs_sched_fifo
@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_requeue_pi_keeps_priority_order(tasks: TaskDiffer, kind: str) -> None:
    """Requeue-PI waiters of several priorities moved onto an owned PI lock: the lock goes
    to them by priority."""
    w = Words(kind)
    steps: list[Step] = [Set(w.a, 0), Set(w.pi, Tid(MAIN))]
    steps += [w.fx(k, w.a, WAIT_REQUEUE_PI, Current(w.a), 0, w.pi) for k in range(5)]
    steps += [w.fx(MAIN, w.a, CMP_REQUEUE_PI, 1, INT_MAX, w.pi, Current(w.a))]
    steps += [w.unlock(MAIN, w.pi), *(w.unlock(k, w.pi) for [k] in PRIORITY_ORDER)]
    out = run_scenario(tasks, PRIORITIES, steps, ((w.pi, w.f),))
    assert woke(out)[5:] == [[], *PRIORITY_ORDER, []]


@needs_sched_fifo
@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_priority_inheritance_reorders_the_lock_waiters(tasks: TaskDiffer, kind: str) -> None:
    """A chain: w0 (FIFO 10) owns P1 and waits for P2 (the main thread's) behind nobody,
    w1 (FIFO 20) queues for P2 ahead of it; w2 (FIFO 30) waits for P1 and lends w0 its
    priority, which moves w0 ahead of w1 on P2's lock: main's unlock of P2 goes to w0."""
    w = Words(kind)
    p1, p2 = w.pi, w.pi2
    steps = [
        Set(p1, 0),
        Set(p2, Tid(MAIN)),
        w.lock(0, p1),
        w.lock(0, p2),
        w.lock(1, p2),
        w.lock(2, p1),
        w.unlock(MAIN, p2),  # -> w0 (boosted to 30), not w1 (20)
        w.unlock(0, p1),  # -> w2
        w.unlock(0, p2),  # -> w1
        w.unlock(2, p1),
        w.unlock(1, p2),
    ]
    workers: list[Any] = [(FIFO, 10), (FIFO, 20), (FIFO, 30)]
    out = run_scenario(tasks, workers, steps, ((p1, w.f), (p2, w.f)))
    assert results(out) == [0, BLOCKS, BLOCKS, BLOCKS, 0, 0, 0, 0, 0]
    assert woke(out)[4:] == [[0], [2], [1], [], []]
