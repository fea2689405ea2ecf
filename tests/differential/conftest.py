"""Fixtures of the differential tests: the layout reserved on the host once for the package
(with the watchdog and the peer thread), a single-task ``Differ`` per test module (its
tally counts that module's runs) and the ``TaskDiffer`` the multi-task tests share.

``test_tasks_scenarios_ran`` counts what the multi-task tests did: it runs right after the
last of them, whatever order their modules are collected in.

The harness is imported inside the fixtures: on a host without it (``availability``) the
test modules skip before they need it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.differential.harness.differ import Differ
    from tests.differential.harness.host_layout import HostLayout
    from tests.differential.harness.tasks import TaskDiffer
    from tests.differential.harness.watchdog import Watchdog

#: The test that counts what the tests using ``tasks`` did.
TASKS_SUMMARY = "test_tasks_scenarios_ran"


@dataclass(frozen=True)
class HostSide:
    """The layout reserved on the host, and the watchdog that ends its blocked calls."""

    layout: HostLayout
    watchdog: Watchdog


@pytest.fixture(scope="package")
def host() -> Iterator[HostSide]:
    from tests.differential.harness.host_layout import host_layout

    with host_layout() as (layout, watchdog):
        yield HostSide(layout, watchdog)


@pytest.fixture(scope="module")
def differ(host: HostSide) -> Differ:
    from tests.differential.harness.differ import Differ

    return Differ(host.layout, host.watchdog)


@pytest.fixture(scope="package")
def tasks(host: HostSide) -> TaskDiffer:
    from tests.differential.harness.tasks import TaskDiffer

    return TaskDiffer(host.layout)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move ``test_tasks_scenarios_ran`` right after the last test of this package that
    uses ``tasks``."""
    here = Path(__file__).parent

    def ours(item: pytest.Item) -> bool:
        return here in item.path.parents

    found = [i for i, it in enumerate(items) if ours(it) and it.name == TASKS_SUMMARY]
    if len(found) != 1:
        return
    summary = items.pop(found[0])
    users = [
        i for i, it in enumerate(items) if ours(it) and "tasks" in getattr(it, "fixturenames", ())
    ]
    items.insert(users[-1] + 1 if users else found[0], summary)
