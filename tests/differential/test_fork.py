"""Differential tests across fork: a real ``os.fork()`` child beside an emulated
``Process.fork()`` child on the same layout (``harness.fork``).  Shared futexes on
MAP_SHARED memory (anonymous, or a file through two mappings) meet across it; private
futexes, and shared ones on private memory (copied on write: keyed by the address space),
do not.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.differential.harness.availability import UNAVAILABLE

if UNAVAILABLE:  # pragma: no cover - other hosts, or the extension not built
    pytest.skip(UNAVAILABLE, allow_module_level=True)

from futex.linux import abi
from tests.differential.harness.differ import Differ
from tests.differential.harness.fork import ForkCase, ForkSide, run_fork_case
from tests.differential.harness.mismatch import ScenarioMismatch
from tests.differential.harness.steps import At, Current, word
from tests.differential.harness.strategies import LOCK_PI, PRIVATE, UNLOCK_PI, WAKE
from tests.differential.harness.tasks import MAIN, Tid


def fs(uaddr: At, op: int, **kw: Any) -> ForkSide:
    """A fork case's call (``ForkSide``)."""
    return ForkSide(uaddr, op, **kw)


SH, SH2 = word("SHARED_RW", 0x200), word("SHARED_RW", 0x204)
FSH, FSH_ALIAS = word("FILE_SHARED_RW", 0x200), word("FILE_SHARED_RO", 0x200)
PRIV = word("PRIV_RW", 0x200)
FPRIV = word("FILE_PRIV_RW", 0x200)
WAIT_SH = fs(SH, abi.FUTEX_WAIT, val=Current(SH))
INC_IF_0 = abi.FUTEX_OP(abi.FUTEX_OP_ADD, 1, abi.FUTEX_OP_CMP_EQ, 0)
EINTR = -abi.EINTR
#: name -> (case, what the host must see: the waker's results, signalled, the sleeper's)
FORK_CASES: dict[str, tuple[ForkCase, tuple[list[int], bool, list[int]]]] = {
    "shared-anon-child-sleeps": (
        ForkCase("child", WAIT_SH, (fs(SH, WAKE, val=1),)),
        ([1], False, [0]),
    ),
    "shared-anon-parent-sleeps": (
        ForkCase("parent", WAIT_SH, (fs(SH, WAKE, val=1),)),
        ([1], False, [0]),
    ),
    "shared-file-alias-child-sleeps": (
        ForkCase("child", fs(FSH, abi.FUTEX_WAIT, val=Current(FSH)), (fs(FSH_ALIAS, WAKE, val=1),)),
        ([1], False, [0]),
    ),
    "shared-file-parent-sleeps": (
        ForkCase("parent", fs(FSH, abi.FUTEX_WAIT, val=Current(FSH)), (fs(FSH, WAKE, val=1),)),
        ([1], False, [0]),
    ),
    "requeue-across-fork": (
        ForkCase(
            "child",
            WAIT_SH,
            (
                fs(SH, abi.FUTEX_CMP_REQUEUE, val=0, utime=1, uaddr2=SH2, val3=Current(SH)),
                fs(SH, WAKE, val=1),
                fs(SH2, WAKE, val=1),
            ),
        ),
        ([1, 0, 1], False, [0]),
    ),
    "wake-op-by-the-child": (
        ForkCase(
            "parent",
            WAIT_SH,
            (fs(SH, abi.FUTEX_WAKE_OP, val=1, utime=1, uaddr2=SH2, val3=INC_IF_0),),
            stores=((SH2, 0),),
        ),
        ([1], False, [0]),
    ),
    "private-op-child-sleeps": (
        ForkCase(
            "child",
            fs(SH, abi.FUTEX_WAIT | PRIVATE, val=Current(SH)),
            (fs(SH, WAKE | PRIVATE, val=1), fs(SH, WAKE, val=1)),
        ),
        ([0, 0], True, [EINTR]),
    ),
    "private-op-parent-sleeps": (
        ForkCase(
            "parent",
            fs(SH, abi.FUTEX_WAIT | PRIVATE, val=Current(SH)),
            (fs(SH, WAKE | PRIVATE, val=1), fs(SH, WAKE, val=1)),
        ),
        ([0, 0], True, [EINTR]),
    ),
    "private-anon-page-child-sleeps": (
        ForkCase("child", fs(PRIV, abi.FUTEX_WAIT, val=Current(PRIV)), (fs(PRIV, WAKE, val=1),)),
        ([0], True, [EINTR]),
    ),
    "private-anon-page-parent-sleeps": (
        ForkCase("parent", fs(PRIV, abi.FUTEX_WAIT, val=Current(PRIV)), (fs(PRIV, WAKE, val=1),)),
        ([0], True, [EINTR]),
    ),
    "private-file-page-child-sleeps": (
        ForkCase("child", fs(FPRIV, abi.FUTEX_WAIT, val=Current(FPRIV)), (fs(FPRIV, WAKE, val=1),)),
        ([0], True, [EINTR]),
    ),
    "pi-lock-across-fork": (
        ForkCase(
            "child",
            fs(SH, LOCK_PI),
            (fs(SH, UNLOCK_PI),),
            after=(fs(SH, UNLOCK_PI),),
            stores=((SH, Tid(MAIN)),),
        ),
        ([0], False, [0, 0]),
    ),
}


@pytest.mark.parametrize("name", list(FORK_CASES))
def test_fork(differ: Differ, name: str) -> None:
    """A real fork and an emulated one: shared futexes on MAP_SHARED memory (anonymous, or
    a file through two mappings) meet across it; private futexes, and shared ones on
    private memory (copied on write: keyed by the address space), do not."""
    case, want = FORK_CASES[name]
    try:
        host, emulated = run_fork_case(differ.layout, case)
    except ScenarioMismatch as exc:
        pytest.fail(f"host and emulator disagree:\n{exc}", pytrace=False)
    assert host == emulated, f"host {host} != emulator {emulated}"
    assert (host.wakes, host.signalled, host.sleeper) == want
