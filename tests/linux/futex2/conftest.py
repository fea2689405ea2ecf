"""Fixtures of the futex2 tests: a blocking call runs in both modes (a task parked on a
real thread, or cooperatively through its pending wait)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.linux.futex2.support import make_start
from tests.support import StartWait


@pytest.fixture(params=["cooperative", "threads"])
def start(request: pytest.FixtureRequest, run_blocking: Callable[..., Any]) -> StartWait:
    """``start(task, nr, *args)``: system call ``nr`` blocked on ``task`` (it must block)."""
    return make_start(str(request.param), run_blocking)
