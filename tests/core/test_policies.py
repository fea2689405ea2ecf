"""The three personalities differ only by named policy (issue 4's review criterion).

- The core (``futex.kernel``) imports no personality and names none in its code: every
  difference reaches it as a policy object.
- The three :class:`~futex.kernel.policy.FutexPolicy` objects differ in exactly the fields
  the table of :mod:`futex.kernel.policy` lists, with the values it gives.
- Each kernel is built from its policy: its managers use the policy's order and layout,
  its pending waits the policy's outcomes.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import pathlib
import tokenize

import pytest

import futex.kernel
from futex.kernel import ManualClock
from futex.kernel.blocking import PendingWait
from futex.kernel.buckets import SplitLayout
from futex.kernel.pi import OWNED_WAIT_QUEUE, RT_MUTEX
from futex.kernel.policy import FutexPolicy
from futex.kernel.waiter import PRIORITY
from futex.linux import LinuxKernel
from futex.linux.policy import LINUX_OUTCOMES, LINUX_POLICY
from futex.liteos import LITEOS_OUTCOMES, LiteosKernel, LiteosLayout
from futex.liteos.policy import LITEOS_POLICY
from futex.zircon import ZIRCON_OUTCOMES, ZirconKernel
from futex.zircon.policy import ZIRCON_POLICY

CORE = pathlib.Path(futex.kernel.__file__).parent
PERSONALITIES = ("linux", "zircon", "liteos")


def _code_tokens(path: pathlib.Path) -> list[str]:
    """Names and strings of a module's code, without comments and docstrings."""
    source = path.read_text()
    tree = ast.parse(source)
    docstrings = {
        (n.body[0].lineno, n.body[0].col_offset)
        for n in ast.walk(tree)
        if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
        and isinstance(n.body[0].value.value, str)
    }
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.STRING and tok.start in docstrings:
            continue
        if tok.type in (tokenize.NAME, tokenize.STRING):
            out.append(tok.string.lower())
    return out


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_names_no_personality(path: pathlib.Path) -> None:
    """ARCHITECTURE.md: futex.kernel knows no ABI and no personality."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert not node.module.startswith(tuple(f"futex.{p}" for p in PERSONALITIES))
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert not alias.name.startswith(tuple(f"futex.{p}" for p in PERSONALITIES))
    for tok in _code_tokens(path):
        assert not any(p in tok for p in PERSONALITIES), f"{path.name} names {tok!r} in code"


def test_the_three_policies_differ_by_the_documented_fields() -> None:
    """futex.kernel.policy's table, value by value."""
    policies = {p.name: p for p in (LINUX_POLICY, ZIRCON_POLICY, LITEOS_POLICY)}
    assert list(policies) == list(PERSONALITIES)
    fields = [f.name for f in dataclasses.fields(FutexPolicy)]
    differing = {
        f for f in fields if len({repr(getattr(p, f)) for p in policies.values()}) > 1
    }
    assert differing == {
        "name", "layout", "inheritance", "ownership", "outcomes", "value_mismatch",
        "empty_wake", "same_futex_requeue", "misaligned", "fault", "pi_conflict",
    }
    assert {p.order for p in policies.values()} == {PRIORITY}  # all priority, FIFO
    assert [p.inheritance for p in policies.values()] == [RT_MUTEX, OWNED_WAIT_QUEUE, None]
    assert [p.ownership for p in policies.values()] == [False, True, False]
    assert [p.outcomes for p in policies.values()] == [
        LINUX_OUTCOMES, ZIRCON_OUTCOMES, LITEOS_OUTCOMES,
    ]
    assert [p.value_mismatch for p in policies.values()] == [-11, -20, -9]  # EAGAIN,
    # ZX_ERR_BAD_STATE, LOS_EBADF
    assert [p.empty_wake for p in policies.values()] == [None, 0, -9]
    assert [p.same_futex_requeue for p in policies.values()] == [None, -10, -22]
    # the error ladder (futex.kernel.decode.error_code): EINVAL / INVALID_ARGS / EINVAL,
    # EFAULT / INVALID_ARGS / EINVAL, EINVAL / none / none
    assert [p.misaligned for p in policies.values()] == [-22, -10, -22]
    assert [p.fault for p in policies.values()] == [-14, -10, -22]
    assert [p.pi_conflict for p in policies.values()] == [-22, None, None]
    assert isinstance(LINUX_POLICY.layout(), SplitLayout)
    zircon_layout = ZIRCON_POLICY.layout()
    assert isinstance(zircon_layout, SplitLayout) and zircon_layout.private.size == 37
    assert isinstance(LITEOS_POLICY.layout(), LiteosLayout)
    assert [len(t.buckets) for t in LITEOS_POLICY.layout().tables()] == [80]


def _outcomes(r: int | PendingWait) -> object:
    """The outcomes of a blocked call (which is then killed: nothing stays queued)."""
    assert isinstance(r, PendingWait), f"expected the wait to block, it returned {r}"
    outcomes = r.outcomes
    r.kill()
    return outcomes


def test_each_kernel_is_built_from_its_policy() -> None:
    """Managers take the policy's order and layout; every blocked call, the core's one
    PendingWait class, takes the policy's outcomes."""
    clock = ManualClock()
    linux = LinuxKernel(clock=clock)
    lp = linux.new_process()
    assert linux.policy is LINUX_POLICY and lp.futex.order is LINUX_POLICY.order
    lt = lp.new_task()
    a = lp.mmap(4096)
    assert _outcomes(lt.syscall_futex_nb(a, 0x80, 0, 0, 0, 0)) is LINUX_POLICY.outcomes

    zircon = ZirconKernel(clock=clock)
    zp = zircon.new_process()
    assert zircon.policy is ZIRCON_POLICY and zp.futex.order is ZIRCON_POLICY.order
    assert zircon.pi.inheritance is ZIRCON_POLICY.inheritance
    zt = zp.new_thread()
    zt.start()
    z = zp.mmap(4096)
    assert _outcomes(zt.futex_wait_nb(z, 0, 0, 2**63 - 1)) is ZIRCON_POLICY.outcomes

    liteos = LiteosKernel(clock=clock)
    assert liteos.policy is LITEOS_POLICY and liteos.futex.order is LITEOS_POLICY.order
    assert isinstance(liteos.futex.layout, LiteosLayout)
    op = liteos.new_process()
    ot = op.new_task()
    o = op.mmap(4096)
    assert _outcomes(ot.syscall_futex_nb(o, 0x80, 0, 0xFFFFFFFF, 0)) is LITEOS_POLICY.outcomes


def test_value_mismatch_answer_per_kernel() -> None:
    """The same situation — a wait whose word differs — answered by each policy."""
    clock = ManualClock()
    lt = LinuxKernel(clock=clock).new_process().new_task()
    a = lt.process.mmap(4096)
    assert lt.syscall_futex(a, 0x80, 1, 0, 0, 0) == LINUX_POLICY.value_mismatch

    zp = ZirconKernel(clock=clock).new_process()
    zt = zp.new_thread()
    zt.start()
    z = zp.mmap(4096)
    assert zt.futex_wait(z, 1, 0, 0) == ZIRCON_POLICY.value_mismatch

    op = LiteosKernel(clock=clock).new_process()
    ot = op.new_task()
    o = op.mmap(4096)
    assert ot.syscall_futex(o, 0x80, 1, 100, 0) == LITEOS_POLICY.value_mismatch
    assert ot.syscall_futex(o, 0x81, 1, 0, 0) == LITEOS_POLICY.empty_wake
    assert ot.syscall_futex(o, 0x83, 1, 1, o) == LITEOS_POLICY.same_futex_requeue
