"""Differential tests, several tasks, requeue-PI: WAIT_REQUEUE_PI waiters moved by
CMP_REQUEUE_PI onto an owned PI lock, or taking a free one; plain and requeue-PI waiters
mixed on one word.

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
from tests.differential.harness.strategies import CMP_REQUEUE_PI, INT_MAX, WAIT_REQUEUE_PI
from tests.differential.harness.tasks import BLOCKS, MAIN, Set, TaskCall, TaskDiffer, Tid


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_requeue_pi_onto_an_owned_lock(tasks: TaskDiffer, kind: str) -> None:
    """Three workers wait in WAIT_REQUEUE_PI on A for PI word P, which the main thread
    owns.  CMP_REQUEUE_PI moves all three onto P's lock (nobody can take it: 3, none
    woken); a plain wake of A finds nobody; then UNLOCK_PI hands P on: main -> w0 -> w1
    -> w2, each returning 0 from its WAIT_REQUEUE_PI owning P."""
    w = Words(kind)

    def wrq(k: int) -> TaskCall:
        return w.fx(k, w.a, WAIT_REQUEUE_PI, Current(w.a), 0, w.pi)

    steps = [
        Set(w.a, 0),
        Set(w.pi, Tid(MAIN)),
        *(wrq(k) for k in range(3)),
        w.fx(MAIN, w.a, CMP_REQUEUE_PI, 1, INT_MAX, w.pi, Current(w.a)),
        w.wake(w.a),
        w.unlock(MAIN, w.pi),
        w.unlock(0, w.pi),
        w.unlock(1, w.pi),
        w.unlock(2, w.pi),
    ]
    out = run_scenario(tasks, [None] * 3, steps, ((w.pi, w.f),))
    assert results(out) == [BLOCKS] * 3 + [3, 0, 0, 0, 0, 0]
    assert woke(out)[3:] == [[], [], [0], [1], [2], []]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_requeue_pi_takes_a_free_lock(tasks: TaskDiffer, kind: str) -> None:
    """P is free: CMP_REQUEUE_PI(nr_wake 1, nr_requeue 1) makes the oldest waiter (w0) take
    P and return, requeues w1 onto P, leaves w2 on A (2); a plain wake of A meets w2, a
    requeue-PI waiter: EINVAL.  w0's unlock hands P to w1; another CMP_REQUEUE_PI moves
    w2 onto P; w1's unlock hands it to w2."""
    w = Words(kind)

    def wrq(k: int) -> TaskCall:
        return w.fx(k, w.a, WAIT_REQUEUE_PI, Current(w.a), 0, w.pi)

    def take(nr_requeue: int) -> TaskCall:
        return w.fx(MAIN, w.a, CMP_REQUEUE_PI, 1, nr_requeue, w.pi, Current(w.a))

    steps = [
        Set(w.a, 0),
        Set(w.pi, 0),
        *(wrq(k) for k in range(3)),
        take(1),
        w.wake(w.a),
        w.unlock(0, w.pi),
        take(INT_MAX),
        w.unlock(1, w.pi),
        w.unlock(2, w.pi),
    ]
    out = run_scenario(tasks, [None] * 3, steps, ((w.pi, w.f),))
    assert results(out) == [BLOCKS] * 3 + [2, -abi.EINVAL, 0, 1, 0, 0]
    assert woke(out)[3:] == [[0], [], [1], [], [2], []]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_mixed_plain_and_requeue_pi_waiters(tasks: TaskDiffer, kind: str) -> None:
    """A holds plain waiters and requeue-PI waiters in turn: w0 WAIT, w1 WAIT_REQUEUE_PI,
    w2 WAIT, w3 WAIT_REQUEUE_PI.  A wake stops at the first requeue-PI waiter with EINVAL,
    the plain waiters before it woken all the same; a REQUEUE likewise; CMP_REQUEUE_PI
    stops at a plain waiter (EINVAL) after taking P for the requeue-PI ones before it."""
    w = Words(kind)

    def wrq(k: int) -> TaskCall:
        return w.fx(k, w.a, WAIT_REQUEUE_PI, Current(w.a), 0, w.pi)

    def take(nr_requeue: int) -> TaskCall:
        return w.fx(MAIN, w.a, CMP_REQUEUE_PI, 1, nr_requeue, w.pi, Current(w.a))

    steps = [
        Set(w.a, 0),
        Set(w.pi, 0),
        w.wait(0, w.a),
        wrq(1),
        w.wait(2, w.a),
        wrq(3),
        w.wake(w.a, INT_MAX),  # w0 woken, then w1: EINVAL
        w.fx(MAIN, w.a, abi.FUTEX_REQUEUE, 1, INT_MAX, w.b),  # w1 first: EINVAL
        take(INT_MAX),  # w1 takes P, then w2: EINVAL
        w.wake(w.a, 1),  # w2
        take(INT_MAX),  # w3 requeued onto P (w1 owns it): 1
        w.unlock(1, w.pi),  # -> w3
        w.unlock(3, w.pi),
    ]
    out = run_scenario(tasks, [None] * 4, steps, ((w.pi, w.f),))
    assert results(out)[4:] == [-abi.EINVAL, -abi.EINVAL, -abi.EINVAL, 1, 1, 0, 0]
    assert woke(out)[4:] == [[0], [], [1], [2], [], [3], []]
