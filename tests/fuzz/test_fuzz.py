"""CI's slice of the fuzz harness (``tests/fuzz/fuzz_kernels.py``, which says what it generates
and checks, and how to run it long and replay a finding).

- ``test_slice``: a few thousand derandomized calls per personality, every invariant
  checked after every step; a finding fails it, unless it is one of :data:`OPEN` (a known
  defect with its own strict xfail below, which its fix flips).
- the harness itself: episodes are deterministic, every op renders to runnable Python, a
  callback error the kernels only log is caught, the shrinker finds a minimal reproducer.
- open findings, as minimal reproducers marked ``xfail(strict=True)`` (none now).
"""

from __future__ import annotations

from typing import Any

import pytest

from futex.kernel import ClockId
from futex.liteos import abi as los
from tests.fuzz.fuzz_kernels import (
    PERSONALITIES,
    Fail,
    Finding,
    Liteos,
    Op,
    R,
    fuzz,
    main,
    reproducer,
    run_episode,
    shrink,
)

#: Calls per personality in CI (about a second each, with every check on every step; the
#: Linux slice's episodes cover every modelled release on both CPU models).
SLICE = {"linux": 5000, "zircon": 4000, "liteos": 5000}
SEED = 20260

#: Signatures of open findings (each with a strict xfail reproducer) -> the defect.  None
#: open: the one the harness found (a Zircon owner waiting on its own futex queued at its
#: boosted priority) is fixed; its reproducer is now tests/zircon/test_zircon.py's
#: ``test_owner_that_waits_on_its_futex_queues_at_its_own_priority``.
OPEN: dict[str, str] = {}


@pytest.mark.parametrize("personality", list(PERSONALITIES))
def test_slice(personality: str) -> None:
    rep = fuzz(personality, SLICE[personality], SEED, check_every=1)
    assert rep.calls >= SLICE[personality] and rep.episodes >= 12 and rep.steps > rep.calls
    new = [f for f in rep.findings if f.signature not in OPEN]
    assert not new, "\n\n".join(f"{f.describe()}\n{f.reproducer}" for f in new)


@pytest.mark.parametrize("personality", list(PERSONALITIES))
def test_episodes_are_deterministic_and_render_to_runnable_python(personality: str) -> None:
    seed = SEED * 10**6 + 3
    fz, log, _, f = run_episode(personality, seed)
    again = run_episode(personality, seed)[1]
    assert f is None and log == again and fz.calls > 20
    tasks = ", ".join(o.bind for o in log if o.method in ("new_task", "new_thread"))
    tail = f"assert not any(t.blocked for t in [{tasks}])"  # the exits at the end ran too
    exec(reproducer(personality, seed, log, tail), {})  # the same ops, from the script


def test_replayed_ops_give_the_same_world() -> None:
    seed = SEED * 10**6 + 7
    fz, log, body, _ = run_episode("linux", seed)
    fz2, log2, _, _ = run_episode("linux", seed, 1, log[:body])
    assert log2 == log and fz2.calls == fz.calls


def test_a_callback_error_the_kernel_only_logs_is_a_finding() -> None:
    fz = PERSONALITIES["liteos"](1)
    fz.env["boom"] = lambda: 1 // 0
    with pytest.raises(Fail) as info:
        fz.apply(Op("", "clock", "call_at", (ClockId.MONOTONIC, 0, R("boom"))))
    kind, detail, _ = info.value.args
    assert kind == "exception" and "logged" in detail and "ZeroDivisionError" in detail


class _NoTimeouts(Liteos):
    """A harness whose LiteOS is 'broken': a wait that times out is a finding."""

    def allowed(self, op: Op, args: list[Any], r: int, task: Any) -> bool:
        return r != -los.LOS_ETIMEDOUT and super().allowed(op, args, r, task)


def test_shrinking_finds_a_minimal_reproducer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PERSONALITIES, "liteos", _NoTimeouts)
    rep = fuzz("liteos", 2000, 5, shrinking=False)
    f = rep.findings[0]
    _, log, body, g = run_episode("liteos", f.seed)
    assert isinstance(g, Finding) and g.signature == f.signature
    small = shrink(g, log[:body])
    lines = small.reproducer.splitlines()
    calls = [line for line in lines if line.startswith("t") and "syscall" in line]
    assert small.signature == f.signature and len(calls) == 1, small.reproducer
    assert len(lines) < 16, small.reproducer


def test_the_cli_reports_calls_per_second(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--personality", "liteos", "--calls", "300", "--seed", "2"]) == 0
    assert "calls/s, 1M calls in" in capsys.readouterr().out
