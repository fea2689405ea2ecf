"""Differential tests, several tasks, PI locks: UNLOCK_PI handing the lock to the oldest
waiter (LOCK_PI, LOCK_PI2), a non-owner's unlock, TRYLOCK_PI meanwhile; plain wakes and
requeues meeting a PI waiter.

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
from tests.differential.harness.strategies import LOCK_PI2, TRYLOCK_PI
from tests.differential.harness.tasks import BLOCKS, MAIN, Set, TaskDiffer, Tid
from tests.support import host_has


@host_has("lock_pi2")  # w2 waits in LOCK_PI2
@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_unlock_pi_hands_the_lock_on_in_fifo_order(tasks: TaskDiffer, kind: str) -> None:
    """The main thread owns a PI word; three workers block in LOCK_PI (w2 in LOCK_PI2):
    FUTEX_WAITERS set.  Each UNLOCK_PI by the owner hands the lock to the oldest waiter
    (the word then names it, FUTEX_WAITERS kept while others wait); a non-owner's unlock
    is EPERM, a TRYLOCK_PI meanwhile EWOULDBLOCK (EDEADLK for the owner)."""
    w = Words(kind)
    steps = [
        Set(w.pi, Tid(MAIN)),
        w.lock(0, w.pi),
        w.lock(1, w.pi),
        w.fx(2, w.pi, LOCK_PI2),
        w.unlock(3, w.pi),  # w3 does not own it: EPERM
        w.fx(3, w.pi, TRYLOCK_PI),  # held: EWOULDBLOCK
        w.fx(MAIN, w.pi, TRYLOCK_PI),  # the owner: EDEADLK
        w.unlock(MAIN, w.pi),  # -> w0
        w.unlock(MAIN, w.pi),  # main no longer owns it: EPERM
        w.fx(0, w.pi, TRYLOCK_PI),  # the new owner: EDEADLK
        w.unlock(0, w.pi),  # -> w1
        w.unlock(1, w.pi),  # -> w2
        w.unlock(2, w.pi),  # nobody waits: 0
        w.fx(3, w.pi, TRYLOCK_PI),  # free: taken
        w.unlock(3, w.pi),
    ]
    out = run_scenario(tasks, [None] * 4, steps, ((w.pi, w.f),))
    assert results(out) == [BLOCKS] * 3 + [
        -abi.EPERM,
        -abi.EWOULDBLOCK,
        -abi.EDEADLK,
        0,
        -abi.EPERM,
        -abi.EDEADLK,
        0,
        0,
        0,
        0,
        0,
    ]
    assert woke(out)[3:] == [[], [], [], [0], [], [], [1], [2], [], [], []]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_plain_wake_of_pi_waiters_is_einval(tasks: TaskDiffer, kind: str) -> None:
    """FUTEX_WAKE (and REQUEUE) meeting a LOCK_PI waiter: EINVAL, nobody woken; the lock
    still goes to it on unlock."""
    w = Words(kind)
    steps = [
        Set(w.pi, Tid(MAIN)),
        w.lock(0, w.pi),
        w.wake(w.pi),
        w.fx(MAIN, w.pi, abi.FUTEX_REQUEUE, 0, 1, w.b),
        w.unlock(MAIN, w.pi),
        w.unlock(0, w.pi),
    ]
    out = run_scenario(tasks, [None], steps, ((w.pi, w.f),))
    assert results(out) == [BLOCKS, -abi.EINVAL, -abi.EINVAL, 0, 0]
    assert woke(out) == [[], [], [], [0], []]
