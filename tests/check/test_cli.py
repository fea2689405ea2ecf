"""``python -m futex check`` (futex.check.cli, issue 15 "CLI"): targets, options, the
report, JSON, replay, the exit codes (0 ok, 1 failure found, 2 usage, 3 incomplete with
--require-complete), ``--bundled`` and the progress display."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from futex.check import cli
from futex.check.cli import EXIT_FAILURE, EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, Progress

SCENARIO_FILE = textwrap.dedent("""
    from types import SimpleNamespace
    from futex.check import Scenario

    def setup(env):
        return SimpleNamespace(m=env.word("m"))

    def lock_no_wake(s):                 # take 2 whose unlock forgets FUTEX_WAKE
        c = s.m.cas(0, 1)
        while c != 0:
            if c == 2 or s.m.cas(1, 2) != 0:
                s.m.wait(2)
            c = s.m.cas(0, 2)
        if s.m.fetch_sub(1) != 1:
            s.m.store(0)

    def lock_ok(s):
        c = s.m.cas(0, 1)
        while c != 0:
            if c == 2 or s.m.cas(1, 2) != 0:
                s.m.wait(2)
            c = s.m.cas(0, 2)
        if s.m.fetch_sub(1) != 1:
            s.m.store(0)
            s.m.wake(1)

    BROKEN = Scenario(name="broken", setup=setup, tasks=[("A", lock_no_wake),
                                                         ("B", lock_no_wake)])
    SCENARIO = Scenario(name="fine", setup=setup, tasks=[("A", lock_ok), ("B", lock_ok)])

    def make():
        return SCENARIO

    NOT_A_SCENARIO = 42
""")


@pytest.fixture
def target(tmp_path: Path) -> str:
    path = tmp_path / "mylocks.py"
    path.write_text(SCENARIO_FILE)
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_file_target_failure_report(capsys: pytest.CaptureFixture[str], target: str) -> None:
    code, out, _ = _run(capsys, f"{target}:BROKEN", "--preemptions", "1", "--plain")
    assert code == EXIT_FAILURE
    # the five parts: verdict and how found, why, trace table, switches, replay
    assert out.startswith("LOST WAKEUP after ")
    assert "dfs <=1 preemption, seed 0" in out
    assert "B sleeps forever in FUTEX_WAIT on m (queued at 2, now 0" in out
    assert "step  task  operation" in out and "words after" in out and "waiters" in out
    assert "except: preempt A->B" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("replay:"))
    replay = line.split()[1]
    assert f"python -m futex check {target}:BROKEN --replay {replay}" in out
    # the replay string reproduces it in one run
    code, out, _ = _run(capsys, f"{target}:BROKEN", "--replay", replay)
    assert code == EXIT_FAILURE
    assert out.startswith("LOST WAKEUP on replay (1 schedule)")


def test_file_target_default_name_and_certificate(
    capsys: pytest.CaptureFixture[str], target: str
) -> None:
    code, out, _ = _run(capsys, target, "--preemptions", "3", "--plain")
    assert code == EXIT_OK
    assert out.startswith("OK: complete for")
    assert "certificate: complete for" in out
    code, out, _ = _run(capsys, f"{target}:make", "--preemptions", "1")  # a factory
    assert code == EXIT_OK


def test_json_report(capsys: pytest.CaptureFixture[str], target: str) -> None:
    code, out, err = _run(capsys, f"{target}:BROKEN", "--json")
    assert code == EXIT_FAILURE
    data = json.loads(out)
    assert data["ok"] is False and data["failure"]["kind"] == "lost-wakeup"
    assert data["failure"]["preemptions"] == 1
    first = data["failure"]["trace"][0]
    assert set(first) == {"step", "task", "operation", "result", "words", "waiters"}
    assert data["replay"].startswith("v1:") and data["deviations"]
    assert "exploring" not in err  # no progress display with --json
    code, out, _ = _run(capsys, f"{target}:BROKEN", "--json", "--replay", data["replay"])
    assert code == EXIT_FAILURE and json.loads(out)["failure"]["kind"] == "lost-wakeup"


@pytest.mark.parametrize("strategy", ["pct", "random", "portfolio"])
def test_other_strategies(capsys: pytest.CaptureFixture[str], target: str, strategy: str) -> None:
    code, out, _ = _run(
        capsys,
        f"{target}:BROKEN",
        "--strategy",
        strategy,
        "--schedules",
        "2000",
        "--seed",
        "3",
        "--plain",
    )
    assert code == EXIT_FAILURE and "LOST WAKEUP" in out and "seed 3" in out


def test_require_complete_exit_3(capsys: pytest.CaptureFixture[str], target: str) -> None:
    code, out, _ = _run(capsys, target, "--schedules", "3", "--require-complete")
    assert code == EXIT_INCOMPLETE
    assert "not complete: the schedule budget ran out" in out
    code, _, _ = _run(capsys, target, "--schedules", "3")
    assert code == EXIT_OK


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope.py:X"], "no such file"),
        (["bundled:nope"], "no bundled scenario 'nope'"),
        (["{t}:MISSING"], "has no 'MISSING'; scenarios there: BROKEN, SCENARIO"),
        (["{t}:NOT_A_SCENARIO"], "is not a futex.check.Scenario"),
        (["{t}", "--replay", "v9:xyz"], "--replay:"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], target: str, argv: list[str], message: str
) -> None:
    code, _, err = _run(capsys, *(a.format(t=target) for a in argv))
    assert code == EXIT_USAGE
    assert message in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bundled:drepper_take2", "--bundled"],
        ["x.py", "--depth", "2"],
        ["x.py", "--strategy", "nope"],
        ["x.py", "--seconds", "0"],
        ["x.py", "--seconds", "nan"],
        ["x.py", "--seconds", "soon"],
    ],
)
def test_argument_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == EXIT_USAGE
    if "--seconds" in argv:  # futex._argtypes.positive_float names what was wrong
        err = capsys.readouterr().err
        assert "argument --seconds:" in err
        assert ("not a number" if argv[-1] == "soon" else "must be positive") in err


def test_bundled_target_designated_check(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "bundled:pi_unlock_store0", "--plain")
    assert code == EXIT_FAILURE
    assert "designated: DFS(preemptions=1); expected: lost-wakeup" in out
    assert "verdict: found lost-wakeup (as expected)" in out
    code, out, _ = _run(capsys, "bundled:pi_unlock_pi", "--plain")
    assert code == EXIT_OK
    assert "certificate: complete for all schedules" in out and "pct depth 3" in out


def test_bundled_target_with_options_explores(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "bundled:drepper_take1", "--preemptions", "1", "--plain")
    assert code == EXIT_OK  # take 1's counter needs 2 preemptions
    code, out, _ = _run(capsys, "bundled:drepper_take1", "--preemptions", "2", "--plain")
    assert code == EXIT_FAILURE and out.startswith("INVARIANT after")


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--list")
    assert code == EXIT_OK and "semaphore_no_waiter_count" in out and "drepper_take3" in out


def test_bundled_all(capsys: pytest.CaptureFixture[str]) -> None:
    """--bundled: exit 0 only if every broken one is found and every twin passes; a
    table; well under the 30 s of the acceptance (2 cores)."""
    began = time.perf_counter()
    code, out, _ = _run(capsys, "--bundled", "--plain")
    elapsed = time.perf_counter() - began
    assert code == EXIT_OK, out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["name", "expected", "verdict"]
    assert any(
        ln.startswith("semaphore_no_waiter_count") and "found lost-wakeup" in ln for ln in lines
    )
    assert any(ln.startswith("drepper_take2 ") and "passed" in ln for ln in lines)
    assert "broken algorithms found by their designated strategy" in out
    assert elapsed < 30


def test_bundled_json(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from futex.check import bundled

    keep = {n: bundled.ALL[n] for n in ("mutex_two_state", "drepper_take3")}
    monkeypatch.setattr(bundled, "ALL", keep)
    code, out, _ = _run(capsys, "--bundled", "--json")
    data = json.loads(out)
    assert code == EXIT_OK and data["ok"]
    assert [e["name"] for e in data["entries"]] == ["mutex_two_state", "drepper_take3"]
    assert data["entries"][0]["replayed"] is True


def test_bundled_wrong_verdict_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A twin presented as broken is "MISSED": the run exits 1."""
    import dataclasses

    from futex.check import bundled

    twin = bundled.ALL["drepper_take2"]
    monkeypatch.setattr(bundled, "ALL", {"x": dataclasses.replace(twin, kind="lost-wakeup")})
    code, out, _ = _run(capsys, "--bundled", "--plain")
    assert code == EXIT_FAILURE and "MISSED" in out


def test_progress_plain_lines() -> None:
    buf = io.StringIO()
    p = Progress(plain=True, file=buf, every=1.0)
    p(10, 0.1, "dfs <=2 preemptions")
    p(2000, 1.2, "dfs <=2 preemptions")
    p(2100, 1.3, "dfs <=2 preemptions")
    p(4000, 2.4, "dfs <=2 preemptions")
    p.close()
    assert buf.getvalue().splitlines() == [
        "  exploring: 2,000 schedules, 1.2 s (dfs <=2 preemptions)",
        "  exploring: 4,000 schedules, 2.4 s (dfs <=2 preemptions)",
    ]


def test_progress_not_a_terminal_is_plain() -> None:
    buf = io.StringIO()  # not a tty: no rich status even without --plain
    p = Progress(plain=False, file=buf, every=0.0)
    p(5, 0.5, "pct depth 3")
    p.close()
    assert buf.getvalue() == "  exploring: 5 schedules, 0.5 s (pct depth 3)\n"


def test_python_dash_m_futex_check() -> None:
    from futex.cli import COMMANDS

    if "check" not in {c.name for c in COMMANDS}:
        pytest.skip("futex.cli does not dispatch `check` yet (/tmp/coord15/cli_check.diff)")
    proc = subprocess.run(
        [sys.executable, "-m", "futex", "check", "bundled:mutex_two_state"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == EXIT_FAILURE
    assert "LOST WAKEUP" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "futex", "check"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == EXIT_USAGE


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _found(name: str = "mutex_two_state") -> Any:
    from futex.check import bundled
    from futex.check.exploring import Budget, explore

    entry = bundled.get(name)
    return explore(entry.scenario, entry.strategy(), Budget(schedules=200))


def test_report_rich_on_a_terminal() -> None:
    pytest.importorskip("rich")
    from futex.check import report

    buf = _Tty()
    report.show(_found(), target="bundled:mutex_two_state", file=buf)
    out = buf.getvalue()
    assert "LOST WAKEUP after" in out and "minimal trace:" in out
    assert "operation" in out and "words after" in out and "┃" in out  # a rich table
    assert "--replay v1:" in out


def test_report_plain_without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich is optional: without it a terminal gets the plain text."""
    from futex.check import report

    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.console", None)
    buf = _Tty()
    result = _found()
    report.show(result, file=buf)
    assert buf.getvalue() == report.text(result) + "\n"
    assert Progress(plain=False, file=_Tty(), every=0.0)._status is None


def test_report_as_dict_success_and_replayed_ok() -> None:
    from futex.check import bundled, report
    from futex.check.exploring import Budget, explore
    from futex.check.replaying import replay

    entry = bundled.get("drepper_take3")
    result = explore(entry.scenario, entry.strategy(), Budget(schedules=None))
    data = report.as_dict(result)
    assert data["ok"] and data["complete"] and data["certificate"].startswith("complete for")
    assert "failure" not in data
    json.dumps(data)
    outcome = replay(entry.scenario, _default_replay(entry.scenario))
    text = report.outcome_text(outcome, scenario=entry.name)
    assert text.startswith("OK: the replayed schedule passes")


def _default_replay(scenario: Any) -> str:
    """The replay string of the default schedule (no deviation)."""
    from futex.check import run_schedule

    return f"v1:{run_schedule(scenario, None).ops_digest}:"
