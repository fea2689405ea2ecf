"""Shared fixtures.

- ``kernel``: a :class:`LinuxKernel` on a :class:`ManualClock`; after the test, every
  process's futex manager must pass ``check_invariants()`` (the scenario left the queues
  consistent).
- ``run_blocking``: run a blocking call on a real thread and wait (for state, not time)
  until a given task is blocked in it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import Phase, settings

from futex.kernel import ManualClock
from futex.linux import LinuxKernel, PendingWait, Task
from futex.linux.facts import CHANGES
from futex.linux.host import probe

#: Generous bound for real-thread tests: how long to wait for a state before failing.
STATE_TIMEOUT = 30.0


# On CI a failing property reports its first counterexample at once: shrinking a
# differential disagreement can take minutes (run the test locally to get it shrunk).
settings.register_profile(
    "futex-ci", phases=tuple(p for p in Phase if p is not Phase.shrink), database=None
)
if os.environ.get("CI"):
    settings.load_profile("futex-ci")


def pytest_report_header() -> list[str]:
    """The host facts the differential tests build their emulator from (probed)."""
    return ["futex host probe:", *(f"  {line}" for line in probe().describe())]


def host_has(*features: str) -> pytest.MarkDecorator:
    """Skip unless this host's kernel has every one of ``features`` (``LinuxFacts`` fields,
    probed): the reason names what is missing and since when Linux has it."""
    facts = probe().facts
    since = {c.field: c.since for c in CHANGES}
    missing = [f"{f} (Linux {since.get(f, '?')}+)" for f in features if not getattr(facts, f)]
    return pytest.mark.skipif(
        bool(missing), reason=f"the host kernel has no {', '.join(missing)}"
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def kernel(clock: ManualClock) -> Iterator[LinuxKernel]:
    k = LinuxKernel(clock=clock)
    yield k
    for p in list(k.processes.values()):
        p.futex.check_invariants()


def wait_until(cond: Callable[[], bool], what: str, timeout: float = STATE_TIMEOUT) -> None:
    """Poll ``cond`` until it holds; fail the test after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.0005)


class Blocking:
    """A call running on its own thread; ``result()`` joins it."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._value: list[Any] = []
        self._error: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self._value.append(fn())
        except BaseException as exc:  # re-raised in result()
            self._error.append(exc)

    def result(self, timeout: float = STATE_TIMEOUT) -> Any:
        self.thread.join(timeout)
        if self.thread.is_alive():
            pytest.fail("blocking call did not return")
        if self._error:
            raise self._error[0]
        return self._value[0]


@pytest.fixture
def run_blocking() -> Callable[..., Blocking]:
    """``run_blocking(fn, task)``: start ``fn`` on a thread and return once ``task`` is
    blocked in a futex call (or ``fn`` has already returned)."""

    def start(fn: Callable[[], Any], task: Task | None = None) -> Blocking:
        b = Blocking(fn)
        if task is not None:
            wait_until(
                lambda: task.blocked is not None or not b.thread.is_alive(),
                f"task {task.tid} blocks",
            )
        return b

    return start


class Wait:
    """A futex wait in flight, whichever way its task blocks."""

    def __init__(self, pending: PendingWait, blocking: Any = None) -> None:
        self.pending = pending
        self.blocking = blocking

    def done(self) -> bool:
        return self.pending.done()

    def result(self) -> int:
        """The call's return value; the call must have finished (every event that ends a
        wait settles it synchronously, on the thread that delivers the event)."""
        assert self.pending.done(), f"the wait is still blocked: {self.pending!r}"
        if self.blocking is not None:
            r: int = self.blocking.result()
            assert r == self.pending.result()
            return r
        return self.pending.result()


StartWait = Callable[..., Wait]
