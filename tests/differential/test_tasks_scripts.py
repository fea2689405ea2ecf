"""Differential tests, several tasks, random: seeded random multi-task scripts
(``harness.scripts``), half of them with workers of several priorities where SCHED_FIFO
is allowed; then the count of what the multi-task tests did (``conftest`` runs it after
the last of them).  Fresh scripts outside the suite: ``python -m
tests.differential.harness.search N --scripts``.

Multi-task: real threads parked on the layout's words beside emulated tasks parked on the
same words (``harness.tasks``); the same calls on both; results, who woke and the words must
agree.
"""

from __future__ import annotations

import pytest

from tests.differential.harness.availability import UNAVAILABLE

if UNAVAILABLE:  # pragma: no cover - other hosts, or the extension not built
    pytest.skip(UNAVAILABLE, allow_module_level=True)

from tests.differential.harness.mismatch import ScenarioMismatch
from tests.differential.harness.scenarios import SCHED_FIFO_UNAVAILABLE
from tests.differential.harness.scripts import SCRIPT_PI, SCRIPT_PRIORITIES, RandomScript
from tests.differential.harness.tasks import TaskDiffer

#: Seeded random multi-task scripts run in CI (``RandomScript``); half of them with
#: workers of several priorities where SCHED_FIFO is allowed.
RANDOM_SCRIPTS = 60


def test_tasks_random_scripts(tasks: TaskDiffer) -> None:
    """Random scripts: idle workers wait (FUTEX_WAIT, WAIT_BITSET, futex_wait,
    futex_waitv, LOCK_PI, WAIT_REQUEUE_PI), the main thread or an idle worker wakes,
    requeues, wake_ops, unlocks; every step compared as in the scripted scenarios."""
    before = tasks.steps
    for seed in range(RANDOM_SCRIPTS):
        script = RandomScript(seed)
        workers = [None] * script.workers
        if seed % 2 and not SCHED_FIFO_UNAVAILABLE:
            workers = SCRIPT_PRIORITIES
        try:
            tasks.run(workers, script, ((SCRIPT_PI, script.pi_flag),))
        except ScenarioMismatch as exc:
            pytest.fail(f"RandomScript({seed}): host and emulator disagree:\n{exc}", pytrace=False)
    assert tasks.steps - before >= RANDOM_SCRIPTS * 20


def test_tasks_scenarios_ran(tasks: TaskDiffer) -> None:
    """The scenarios above made their calls and woke workers (a count for the notes)."""
    if tasks.steps == 0:
        pytest.skip("the scenarios did not run")
    print(f"\n{tasks.steps} calls in multi-task scenarios, {tasks.wakeups} workers woken")
    assert tasks.wakeups >= 50
