"""Fixtures of the LiteOS-A futex tests: a kernel on the test's ManualClock, safe by default
or ``faithful`` (the wakeNumber <= 0 defect kept), whose table must pass
``check_invariants()`` after the test."""

from __future__ import annotations

from typing import Any

import pytest

from futex.kernel import ManualClock
from futex.liteos import LiteosKernel


@pytest.fixture
def lk(clock: ManualClock) -> Any:
    k = LiteosKernel(clock=clock)
    yield k
    k.futex.check_invariants()


@pytest.fixture
def faithful_lk(clock: ManualClock) -> Any:
    k = LiteosKernel(clock=clock, faithful=True)
    yield k
    k.futex.check_invariants()
