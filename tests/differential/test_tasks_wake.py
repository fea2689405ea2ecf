"""Differential tests, several tasks, waking: who a wake takes from a word's waiters, and
in what order (FIFO among equal priorities, the oldest first), by count, by bitset, and a
FUTEX_WAKE_OP's wakes on both its words.

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
from tests.differential.harness.strategies import INT_MAX, WAKE, WAKE_BITSET
from tests.differential.harness.tasks import BLOCKS, MAIN, Set, TaskDiffer


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_wake_one_at_a_time_is_fifo(tasks: TaskDiffer, kind: str) -> None:
    """Four threads park on one word in turn; single wakes take them in that order (equal
    priorities: FIFO), the fifth wake finds nobody."""
    w = Words(kind)
    steps = [*w.zero(), *(w.wait(k, w.a) for k in range(4)), *(w.wake(w.a) for _ in range(5))]
    out = run_scenario(tasks, [None] * 4, steps)
    assert woke(out)[4:] == [[0], [1], [2], [3], []]
    assert results(out)[4:] == [1, 1, 1, 1, 0]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_wake_several_takes_the_oldest(tasks: TaskDiffer, kind: str) -> None:
    """A wake of 2 takes the two oldest of five waiters; of another word, nobody; of 0,
    one (legacy FUTEX_WAKE wakes at least one); of INT_MAX, the rest."""
    w = Words(kind)
    steps = [
        *w.zero(),
        *(w.wait(k, w.a) for k in range(5)),
        w.wake(w.a, 2),
        w.wake(w.b, INT_MAX),  # another word: nobody
        w.wake(w.a, 0),  # a count <= 0 wakes one
        w.wake(w.a, INT_MAX),
    ]
    out = run_scenario(tasks, [None] * 5, steps)
    assert woke(out)[5:] == [[0, 1], [], [2], [3, 4]]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_wake_bitset_picks_matching_waiters(tasks: TaskDiffer, kind: str) -> None:
    """WAIT_BITSET waiters with bitsets 1, 2, 3, 4 and a plain WAIT (all bits); wakes by
    bitset take the matching ones, oldest first."""
    w = Words(kind)
    bitsets = [1, 2, 3, 4]
    waits = [
        w.fx(k, w.a, abi.FUTEX_WAIT_BITSET, Current(w.a), 0, 0, b) for k, b in enumerate(bitsets)
    ]
    steps = [
        *w.zero(),
        *waits,
        w.wait(4, w.a),
        w.fx(MAIN, w.a, WAKE_BITSET, INT_MAX, 0, 0, 2),  # 2 & {1,2,3,4,ANY}: w1 w2 w4
        w.fx(MAIN, w.a, WAKE_BITSET, 1, 0, 0, 8),  # nobody
        w.fx(MAIN, w.a, WAKE_BITSET, 1, 0, 0, 4),  # w3
        w.fx(MAIN, w.a, WAKE, 1),  # plain wake: ANY, the rest
    ]
    out = run_scenario(tasks, [None] * 5, steps)
    assert woke(out)[5:] == [[1, 2, 4], [], [3], [0]]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_wake_op_wakes_on_both_words(tasks: TaskDiffer, kind: str) -> None:
    """w0, w1 wait on A, w2, w3 on B (B holds 5).  WAKE_OP(A, 1, B: B += 1, if old == 5)
    wakes w0 and w2 (B is 6 after); again with "if old == 5" wakes only w1; a WAKE_OP
    that sets B = 0 if old > 3 wakes w3."""
    w = Words(kind)
    add_if_5 = abi.FUTEX_OP(abi.FUTEX_OP_ADD, 1, abi.FUTEX_OP_CMP_EQ, 5)
    set0_if_gt3 = abi.FUTEX_OP(abi.FUTEX_OP_SET, 0, abi.FUTEX_OP_CMP_GT, 3)
    steps = [
        Set(w.a, 0),
        Set(w.b, 5),
        w.wait(0, w.a),
        w.wait(1, w.a),
        w.wait(2, w.b),
        w.wait(3, w.b),
        w.fx(MAIN, w.a, abi.FUTEX_WAKE_OP, 1, 1, w.b, add_if_5),
        w.fx(MAIN, w.a, abi.FUTEX_WAKE_OP, 1, 1, w.b, add_if_5),
        w.fx(MAIN, w.a, abi.FUTEX_WAKE_OP, 1, 1, w.b, set0_if_gt3),
    ]
    out = run_scenario(tasks, [None] * 4, steps)
    assert results(out) == [BLOCKS] * 4 + [2, 1, 1]
    assert woke(out)[4:] == [[0, 2], [1], [3]]
