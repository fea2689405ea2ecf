"""Differential tests, single task, explicit: every command (the sixteen, and unknown ones)
x PRIVATE x CLOCK_REALTIME, each with the cases every command gets (``harness.cases_plain``)
and, for the PI and requeue-PI commands, their own (``harness.cases_pi``,
``harness.cases_requeue_pi``), which must all be compared in full: none skipped, the peer's
calls never refused.
"""

from __future__ import annotations

import pytest

from tests.differential.harness.availability import UNAVAILABLE

if UNAVAILABLE:  # pragma: no cover - other hosts, or the extension not built
    pytest.skip(UNAVAILABLE, allow_module_level=True)

from tests.differential.harness.cases import COMBOS, argument_sets, combo_id, special_argument_sets
from tests.differential.harness.differ import Differ
from tests.differential.harness.mismatch import Mismatch


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_every_command_and_flag(differ: Differ, combo: tuple[int, int]) -> None:
    cmd, flags = combo
    op = cmd | flags
    failures: list[tuple[str, Mismatch | str]] = []
    for label, steps in argument_sets(op):
        bad = differ.run(steps)
        if bad is not None:
            failures.append((label, bad))
    special = special_argument_sets(op)
    for label, steps in special:
        skipped, refused = differ.tally.skipped, sum(differ.tally.peer_refused.values())
        bad = differ.run(steps)
        if bad is not None:
            failures.append((label, bad))
        elif differ.tally.skipped != skipped:
            failures.append((label, f"harness: a call was skipped\n  {steps}"))
        elif sum(differ.tally.peer_refused.values()) != refused:
            failures.append((label, f"harness: the peer's calls were refused\n  {steps}"))
    if failures:
        report = "\n".join(f"[{label}] {bad}" for label, bad in failures)
        pytest.fail(f"{len(failures)} disagreement(s):\n{report}", pytrace=False)
