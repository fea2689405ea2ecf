"""Fixtures of the LTP ports: each blocking case runs in both modes (a task parked on a
real thread, or cooperatively through its pending wait)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.linux.ltp.support import make_start
from tests.support import StartWait


@pytest.fixture(params=["cooperative", "threads"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def start(mode: str, run_blocking: Callable[..., Any]) -> StartWait:
    """``start(task, uaddr, op, val, utime=0, val3=0)``: a blocked wait, in ``mode``."""
    return make_start(mode, run_blocking)


@pytest.fixture
def start_coop(run_blocking: Callable[..., Any]) -> StartWait:
    return make_start("cooperative", run_blocking)
