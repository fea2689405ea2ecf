"""Differential tests, several tasks, signals: SIGUSR1 (a handler without SA_RESTART) to
each kind of blocked worker ends its call (EINTR, EWOULDBLOCK once requeued onto a PI
lock) or restarts it (PI locks, a requeue-PI wait still on its condition word).

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
from tests.differential.harness.steps import SYS_WAIT, Current
from tests.differential.harness.strategies import (
    ANY,
    CMP_REQUEUE_PI,
    F2_PRIVATE,
    F2_U32,
    WAIT_REQUEUE_PI,
)
from tests.differential.harness.tasks import BLOCKS, MAIN, Set, Signal, TaskCall, TaskDiffer, Tid
from tests.support import host_has


@host_has("futex2")  # a worker waits in futex_wait
@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_signals_end_or_restart_blocked_calls(tasks: TaskDiffer, kind: str) -> None:
    """SIGUSR1 (a handler without SA_RESTART) to each kind of blocked worker: FUTEX_WAIT,
    WAIT_BITSET and futex_wait end with EINTR; LOCK_PI restarts (still blocked, its lock
    handed over later); WAIT_REQUEUE_PI restarts while on its condition word (again
    blocked; after its word changed, EAGAIN), and once requeued onto the PI lock ends with
    EWOULDBLOCK."""
    w = Words(kind)
    f2 = F2_U32 | (F2_PRIVATE if w.f else 0)

    def wrq(k: int) -> TaskCall:
        return w.fx(k, w.a, WAIT_REQUEUE_PI, Current(w.a), 0, w.pi)

    steps = [
        Set(w.a, 0),
        Set(w.b, 0),
        Set(w.pi, Tid(MAIN)),
        w.wait(0, w.b),
        w.fx(1, w.b, abi.FUTEX_WAIT_BITSET, Current(w.b), 0, 0, 6),
        TaskCall(2, SYS_WAIT, (w.b, 0, ANY, f2, 0, 0)),
        w.lock(3, w.pi),
        wrq(4),
        wrq(5),
        *(Signal(k) for k in range(6)),  # EINTR x3, restart x3
        Set(w.a, 1),
        Signal(5),  # restarts: the word changed, EAGAIN
        w.fx(MAIN, w.a, CMP_REQUEUE_PI, 1, 1, w.pi, Current(w.a)),  # w4 onto P: 1
        Signal(4),  # requeued: EWOULDBLOCK
        w.unlock(MAIN, w.pi),  # -> w3
        w.unlock(3, w.pi),
    ]
    out = run_scenario(tasks, [None] * 6, steps, ((w.pi, w.f),))
    eintr, again, wouldblock = -abi.EINTR, -abi.EAGAIN, -abi.EWOULDBLOCK
    got = results(out)[6:]
    assert got == [eintr, eintr, eintr, BLOCKS, BLOCKS, BLOCKS, again, 1, wouldblock, 0, 0]
    assert woke(out)[-2:] == [[3], []]
