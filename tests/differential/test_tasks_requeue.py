"""Differential tests, several tasks, requeue: REQUEUE and CMP_REQUEUE moving waiters to
the tail of the target's queue (behind its own waiters, or where they are on the same
word), all of them, or none (a stale value).

Multi-task: real threads parked on the layout's words beside emulated tasks parked on the
same words (``harness.tasks``); the same calls on both; results, who woke and the words must
agree.  Each scenario runs on the three key kinds where it can (``KEY_KINDS``: private,
shared anonymous, shared file).
"""

from __future__ import annotations

import pytest

from tests.differential.harness.availability import UNAVAILABLE

if UNAVAILABLE:  # pragma: no cover - other hosts, or the extension not built
    pytest.skip(UNAVAILABLE, allow_module_level=True)

from futex.linux import abi
from tests.differential.harness.scenarios import KEY_KINDS, Words, results, run_scenario, woke
from tests.differential.harness.steps import Current
from tests.differential.harness.strategies import INT_MAX
from tests.differential.harness.tasks import MAIN, TaskDiffer


@pytest.mark.parametrize("kind", list(KEY_KINDS))
@pytest.mark.parametrize("cmp", [False, True], ids=["requeue", "cmp_requeue"])
def test_tasks_requeue_queues_behind_the_targets_waiters(
    tasks: TaskDiffer, kind: str, cmp: bool
) -> None:
    """w4 waits on B; w0..w3 on A.  Requeue A -> B: wake 1 (w0), move 2 (w1, w2) behind
    w4; then single wakes of B give w4, w1, w2 and of A w3.  CMP_REQUEUE with a stale
    value first: EAGAIN, nothing moves."""
    w = Words(kind)
    val3: int | Current
    if cmp:
        cmd, val3 = abi.FUTEX_CMP_REQUEUE, Current(w.a)
        stale = [w.fx(MAIN, w.a, cmd, 1, 2, w.b, Current(w.a, 1))]
    else:
        cmd, val3, stale = abi.FUTEX_REQUEUE, 0, []
    steps = [
        *w.zero(),
        w.wait(4, w.b),
        *(w.wait(k, w.a) for k in range(4)),
        *stale,
        w.fx(MAIN, w.a, cmd, 1, 2, w.b, val3),
        *(w.wake(w.b) for _ in range(3)),
        w.wake(w.b),
        w.wake(w.a),
    ]
    out = run_scenario(tasks, [None] * 5, steps)
    got = results(out)[5:]
    assert got == [-abi.EAGAIN] * cmp + [3, 1, 1, 1, 0, 1]
    assert woke(out)[5 + cmp :] == [[0], [4], [1], [2], [], [3]]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_requeue_everyone_then_wake_all(tasks: TaskDiffer, kind: str) -> None:
    """nr_wake 0: all three waiters move to B, none wake; a requeue of the now empty A
    moves nobody; a worker (not main) then wakes B's waiters."""
    w = Words(kind)
    steps = [
        *w.zero(),
        *(w.wait(k, w.a) for k in range(3)),
        w.fx(MAIN, w.a, abi.FUTEX_CMP_REQUEUE, 0, INT_MAX, w.b, Current(w.a)),
        w.fx(MAIN, w.a, abi.FUTEX_CMP_REQUEUE, 0, INT_MAX, w.b, Current(w.a)),
        w.wake(w.a, INT_MAX),
        w.wake(w.b, INT_MAX, who=3),
    ]
    out = run_scenario(tasks, [None] * 4, steps)
    assert results(out)[3:] == [3, 0, 0, 3]
    assert woke(out)[3:] == [[], [], [], [0, 1, 2]]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_requeue_onto_the_same_word_keeps_the_order(tasks: TaskDiffer, kind: str) -> None:
    """REQUEUE A -> A (the same key): w0 woken, w1 "requeued" where it is (counted: 2);
    single wakes then take w1 before w2 (a requeue that moved w1 to the tail would give
    w2 first).  WAKE_OP with both words A wakes on A twice (once per half)."""
    w = Words(kind)
    always = abi.FUTEX_OP(abi.FUTEX_OP_ADD, 0, abi.FUTEX_OP_CMP_EQ, 0)
    steps = [
        *w.zero(),
        *(w.wait(k, w.a) for k in range(5)),
        w.fx(MAIN, w.a, abi.FUTEX_REQUEUE, 1, 1, w.a),
        w.wake(w.a),
        w.fx(MAIN, w.a, abi.FUTEX_WAKE_OP, 1, 1, w.a, always),
        w.wake(w.a),
    ]
    out = run_scenario(tasks, [None] * 5, steps)
    assert results(out)[5:] == [2, 1, 2, 1]
    assert woke(out)[5:] == [[0], [1], [2, 3], [4]]
