"""What tests share besides fixtures: bounds for real-thread tests, waiting for state,
running a blocking call on a thread, and skip markers probed from the host.

(Fixtures live in ``tests/conftest.py``; this is the importable half.)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from futex.linux import PendingWait
from futex.linux.facts import CHANGES
from futex.linux.host import probe

__all__ = [
    "STATE_TIMEOUT",
    "Blocking",
    "StartWait",
    "Wait",
    "asleep_in_futex",
    "host_has",
    "in_syscall",
    "restart_rule_ids",
    "wait_until",
]

#: Generous bound for real-thread tests: how long to wait for a state before failing.
STATE_TIMEOUT = 30.0


def host_has(*features: str) -> pytest.MarkDecorator:
    """Skip unless this host's kernel has every one of ``features`` (``LinuxFacts`` fields,
    probed): the reason names what is missing and since when Linux has it."""
    facts = probe().facts
    since = {c.field: c.since for c in CHANGES}
    missing = [f"{f} (Linux {since.get(f, '?')}+)" for f in features if not getattr(facts, f)]
    return pytest.mark.skipif(
        bool(missing), reason=f"the host kernel has no {', '.join(missing)}"
    )


def in_syscall(tid: int, pid: int | None = None) -> list[int] | None:
    """``[nr, arg0..arg5]`` of the syscall host thread ``tid`` (of this process, or of
    ``pid``) is asleep in, or None if it runs or is gone (``/proc/.../task/tid/syscall``).
    Skips the test where the kernel has no such file (built without
    CONFIG_HAVE_ARCH_TRACEHOOK): a test cannot see a thread asleep there."""
    if not os.path.exists("/proc/self/syscall"):
        pytest.skip("/proc/<pid>/syscall is missing here: cannot tell a thread is asleep")
    base = "/proc/self" if pid is None else f"/proc/{pid}"
    try:
        with open(f"{base}/task/{tid}/syscall") as fh:
            fields = fh.read().split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    if not fields or fields[0] in ("running", "-1"):
        return None
    return [int(fields[0])] + [int(f, 16) for f in fields[1:7]]


def asleep_in_futex(tid: int, addr: int) -> bool:
    """Whether host thread ``tid`` of this process sleeps in futex(2) on ``addr``."""
    from futex.native import SYS_futex

    s = in_syscall(tid)
    return s is not None and s[0] == SYS_futex and s[1] == addr


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


def restart_rule_ids(rules: list[tuple[bool, bool, bool, Any]]) -> list[str]:
    """Test ids for a table of signal-restart rules ``(timed, handler, sa_restart, _)``:
    ``timed-handler-SA_RESTART``, ``untimed-nohandler``..."""
    return [
        f"{'timed' if timed else 'untimed'}-{'handler' if handler else 'nohandler'}"
        f"{'-SA_RESTART' if sa_restart else ''}"
        for timed, handler, sa_restart, _ in rules
    ]
