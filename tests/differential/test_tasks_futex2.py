"""Differential tests, several tasks, futex2: futex_waitv returns the index of the entry
woken, futex_wake's mask against futex(2) and futex2 waiters, futex_requeue.

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

from tests.differential.harness.scenarios import KEY_KINDS, Words, results, run_scenario, woke
from tests.differential.harness.steps import SYS_REQUEUE, SYS_WAIT, SYS_WAITV, SYS_WAKE, At, word
from tests.differential.harness.strategies import F2_PRIVATE, F2_U32, INT_MAX
from tests.differential.harness.tasks import BLOCKS, MAIN, Ptr, Set, TaskCall, TaskDiffer
from tests.support import host_has


@host_has("futex_waitv", "futex2")
@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_futex2_waitv_returns_the_woken_index(tasks: TaskDiffer, kind: str) -> None:
    """w0 sleeps in futex_waitv on (A, B); w1 in futex_wait on B (mask 1), w2 in FUTEX_WAIT
    on B.  futex_wake(B, mask 2) meets w0 (any mask: index 1) and w2 (a futex(2) waiter's
    bitset is all bits), not w1; futex_requeue moves w1 from B to A; FUTEX_WAKE of A
    takes it."""
    w = Words(kind)
    f2 = F2_U32 | (F2_PRIVATE if w.f else 0)
    vec = word("PRIV_RW", 0x400)

    def entry(i: int, a: At) -> list[Set]:
        base = 0x400 + 24 * i
        return [
            Set(word("PRIV_RW", base), 0),
            Set(word("PRIV_RW", base + 4), 0),
            Set(word("PRIV_RW", base + 8), Ptr(a)),
            Set(word("PRIV_RW", base + 12), Ptr(a, high=True)),
            Set(word("PRIV_RW", base + 16), f2),
            Set(word("PRIV_RW", base + 20), 0),
        ]

    steps = [
        *w.zero(),
        *entry(0, w.a),
        *entry(1, w.b),
        TaskCall(0, SYS_WAITV, (vec, 2, 0, 0, 0)),
        TaskCall(1, SYS_WAIT, (w.b, 0, 1, f2, 0, 0)),
        w.wait(2, w.b),
        TaskCall(MAIN, SYS_WAKE, (w.b, 2, INT_MAX, f2)),
        # futex_requeue's vector is (from, to): B, then A; wake 0, move 1
        *entry(0, w.b),
        *entry(1, w.a),
        TaskCall(MAIN, SYS_REQUEUE, (vec, 0, 0, 1)),
        w.wake(w.a),
    ]
    out = run_scenario(tasks, [None] * 3, steps)
    calls = [o for o in out if o is not None]
    assert results(out) == [BLOCKS] * 3 + [2, 1, 1]
    assert woke(out)[3:] == [[0, 2], [], [1]]
    assert sorted(calls[3].woken) == [(0, 1), (2, 0)]  # futex_waitv: index 1
