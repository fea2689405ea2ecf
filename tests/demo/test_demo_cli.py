"""The demo's command line end to end: ``python -m futex demo`` on each kernel, its usage
errors, its behaviour in a pipeline (plain output, a reader that goes away), and the demo
without rich (the optional ``demo`` extra)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from futex.cli import COMMANDS, EXIT_BROKEN_PIPE, main
from futex.demo.display import NO_RICH_NOTE
from futex.demo.workload import KERNELS, new_ops
from futex.demo.zircon import CONSUMER_PRIORITY, PRODUCER_PRIORITY

#: How long a demo subprocess may take: generous, a hang fails instead of blocking.
STALL = 60.0


# -- the command line -------------------------------------------------------------------


def test_demo_plain_passes_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    # capacity 1: every take empties a full ring, so waiting producers get a notify_all
    rc = main(["demo", "--threads", "4", "--items", "300", "--capacity", "1", "--plain"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.startswith("futex demo on Linux futex(2): 2 producer(s) + 2 consumer(s)")
    calls_line = next(line for line in out.splitlines() if line.startswith("futex calls"))
    for command in ("WAIT", "WAKE", "CMP_REQUEUE"):
        assert f"{command} " in calls_line, out
    assert "result: PASS" in out
    assert "FAIL" not in out
    for check in ("exactly once", "no task blocked", "kernel invariants", "queues empty"):
        assert check in out
    assert "requeued" in out and "longest queue" in out and "items/s" in out
    assert "\x1b[" not in out  # --plain: no terminal control sequences


def test_ci_invocation(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["demo", "--threads", "4", "--items", "2000", "--plain"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "all 2000 items consumed exactly once" in out
    # the robust scenario runs by default, after the workload, then the cross-process one
    assert out.index("all 2000 items") < out.index("futex demo, robust futexes")
    assert out.index("futex demo, robust futexes") < out.index("futex demo, cross-process")
    assert out.count("result: PASS") == 3 and "FAIL" not in out


def test_robust_scenario_can_be_skipped_or_run_alone(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--items", "50", "--plain", "--no-robust"]) == 0
    out = capsys.readouterr().out
    assert "robust" not in out and out.count("result: PASS") == 1
    assert main(["demo", "--plain", "--robust-only"]) == 0
    out = capsys.readouterr().out
    assert "items consumed" not in out and out.count("result: PASS") == 1
    assert out.startswith("futex demo, robust futexes")


def test_zircon_plain_shows_ownership_and_inherited_priority(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc = main(["demo", "--kernel", "zircon", "--threads", "4", "--items", "300", "--plain"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.startswith("futex demo on Zircon zx_futex_*")
    calls_line = next(line for line in out.splitlines() if line.startswith("futex calls"))
    for call in ("zx_futex_wait", "zx_futex_wake_single_owner", "zx_futex_requeue"):
        assert f"{call} " in calls_line, out
    assert f"producers at priority {PRODUCER_PRIORITY}, consumers at {CONSUMER_PRIORITY}" in out
    assert "ownership of the mutex futex" in out and "timeline (" in out
    # the primed start: the first take requeues a producer onto the consumer's mutex
    assert f"base {CONSUMER_PRIORITY}, effective {PRODUCER_PRIORITY} (boosted by a waiter)" in out
    for check in ("owners released", "priorities restored", "kernel invariants"):
        assert check in out
    assert "robust-futex scenario runs on Linux only: skipped" in out
    assert out.count("result: PASS") == 1 and "FAIL" not in out and "\x1b[" not in out


def test_liteos_plain_shows_the_bucket_table(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["demo", "--kernel", "liteos", "--threads", "4", "--items", "300", "--plain"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.startswith("futex demo on LiteOS-A SysFutex")
    calls_line = next(line for line in out.splitlines() if line.startswith("futex calls"))
    for command in ("WAIT", "WAKE", "REQUEUE"):
        assert f"{command} " in calls_line, out
    assert "CMP_REQUEUE" not in out
    assert "g_futexHash has 80 buckets" in out
    for word in ("mutex", "not_empty", "not_full"):
        assert f"  {word:<9} key 0x" in out
    busiest = out[out.index("the busiest table seen") :]
    assert "#################### los_futex_pri.hash ####################" in busiest
    assert "hash -> index : " in busiest and "key(pid)" in busiest
    assert "the table at the end: empty" in out and "bucket table empty" in out
    assert out.count("result: PASS") == 1 and "FAIL" not in out and "\x1b[" not in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["demo", "--threads", "1"],
        ["demo", "--threads", "1025"],
        ["demo", "--threads", "99999999999"],
        ["demo", "--items", "-1"],
        ["demo", "--capacity", "0"],
        ["demo", "--items", "many"],
        ["demo", "--no-robust", "--robust-only"],
        ["demo", "--kernel", "windows"],
        ["demo", "--kernel"],
        ["demo", "--kernel", "zircon", "--robust-only"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


# -- the command line in a pipeline ------------------------------------------------------

#: The tests set these as they need: rich forces its live display by the first three, and
#: Python's stdout buffering (the usual block buffering on a pipe, or none) by the last.
_UNSET = ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR", "PYTHONUNBUFFERED")


def _child_env(**env: str) -> dict[str, str]:
    """The environment of a child interpreter: this one's, importing this checkout, with
    :data:`_UNSET` unset and ``env`` set."""
    base = {k: v for k, v in os.environ.items() if k not in _UNSET}
    base["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return {**base, **env}


def _futex_command(argv: list[str], **env: str) -> subprocess.Popen[bytes]:
    """``python -m futex argv`` with stdout and stderr to pipes, importing this checkout;
    stdout block-buffered unless ``env`` sets PYTHONUNBUFFERED."""
    return subprocess.Popen(
        [sys.executable, "-m", "futex", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_child_env(**env),
    )


def _finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    """Wait for ``proc`` (its stdout already closed or read); its status and stderr."""
    assert proc.stderr is not None
    try:
        err = proc.stderr.read()
        proc.wait(STALL)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"still running {STALL:g} s after its reader went away")
    finally:
        proc.stderr.close()
    return proc.returncode, err.decode()


#: Endless (2**32 - 1 items): the demo is still running when its reader goes away, so the
#: next write (a progress line at 1 s, or a live refresh) meets the closed pipe for sure.
ENDLESS = ["demo", "--items", str(0xFFFFFFFF)]
#: Colours and cursor moves of the live display.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (ENDLESS, {}),
        (ENDLESS, {"PYTHONUNBUFFERED": "1"}),
        ([*ENDLESS, "--kernel", "zircon"], {}),
        ([*ENDLESS, "--kernel", "liteos"], {}),
        (ENDLESS, {"FORCE_COLOR": "1"}),  # the live display, forced onto the pipe
    ],
    ids=["default", "unbuffered", "zircon", "liteos", "forced-live"],
)
def test_demo_into_head_exits_quietly(argv: list[str], env: dict[str, str]) -> None:
    """``python -m futex demo | head -1``: head reads the header line and exits; the
    demo's next write (the progress line at 1 s; the live display's next refresh) fails
    with EPIPE, and it exits 141 with nothing on stderr (no traceback, no "Exception
    ignored" at shutdown).  (Without a live display, stdout a pipe: --plain's lines.)"""
    proc = _futex_command(argv, **env)
    assert proc.stdout is not None
    head = proc.stdout.readline()
    proc.stdout.close()
    status, err = _finish(proc)
    assert ANSI.sub("", head.decode()).startswith("futex demo on "), head
    assert err == "", err
    assert status == EXIT_BROKEN_PIPE == 141


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--items", "100"],
        ["demo", "--robust-only"],
        ["demo", "--kernel", "zircon", "--items", "100", "--plain"],
        ["--help"],
        ["--version"],
        *([c.name, "--help"] for c in COMMANDS),
    ],
    ids=" ".join,
)
@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
def test_a_reader_gone_before_the_first_write(argv: list[str], unbuffered: bool) -> None:
    """``python -m futex ... | true``: the pipe has no reader from the start, whatever the
    subcommand writes fails, even what it leaves buffered for the exit: 141, stderr empty.

    Unbuffered (PYTHONUNBUFFERED), argparse's own ``--help``/``--version`` write fails in
    argparse, which ignores it from Python 3.11 on: those exit 0 there, as quietly."""
    proc = _futex_command(argv, **({"PYTHONUNBUFFERED": "1"} if unbuffered else {}))
    assert proc.stdout is not None
    proc.stdout.close()
    status, err = _finish(proc)
    assert err == "", err
    if unbuffered and ("--help" in argv or "--version" in argv):
        assert status in (0, EXIT_BROKEN_PIPE)
    else:
        assert status == EXIT_BROKEN_PIPE


def test_not_a_terminal_means_plain_output() -> None:
    """Without ``--plain``, stdout a pipe: the plain lines, one report line each, with no
    terminal control sequences and nothing running into the next line."""
    proc = _futex_command(["demo", "--kernel", "zircon", "--items", "300", "--no-robust"])
    out, err = proc.communicate(timeout=STALL)
    text = out.decode()
    assert proc.returncode == 0, text + err.decode()
    assert err == b"" and "\x1b" not in text
    lines = text.splitlines()
    assert lines[0].startswith("futex demo on Zircon")
    assert lines[0].endswith("until the ring is full")  # not wrapped at 80 columns
    assert "checks:" in lines  # a line of its own
    assert lines[-1].startswith("result: PASS: all 300 items")


def test_a_forced_live_display_ends_its_region_with_a_newline() -> None:
    """FORCE_COLOR=1 forces rich's live display onto the pipe: its last line (the kernel
    panel) is ended before the report, which starts a line of its own."""
    proc = _futex_command(
        ["demo", "--kernel", "zircon", "--items", "300", "--no-robust"], FORCE_COLOR="1"
    )
    out, err = proc.communicate(timeout=STALL)
    text = ANSI.sub("", out.decode())
    assert proc.returncode == 0, text + err.decode()
    assert "checks:" in [line.strip() for line in text.splitlines()]
    assert "\nchecks:\n" in text.replace("\r", "")


def test_kernel_option_parsing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--kernel", "windows"])
    err = capsys.readouterr().err
    assert "invalid choice: 'windows'" in err and "linux" in err and "liteos" in err
    with pytest.raises(SystemExit):
        main(["demo", "--kernel", "liteos", "--robust-only"])
    assert "robust-futex scenario runs on Linux only" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0
    assert "--kernel {linux,zircon,liteos}" in capsys.readouterr().out
    assert tuple(KERNELS) == ("linux", "zircon", "liteos")
    with pytest.raises(ValueError, match="unknown kernel"):
        new_ops("windows")


# -- without rich -----------------------------------------------------------------------

#: ``python -m futex`` where rich cannot be imported, as after ``pip install .`` without
#: the ``demo`` extra: None in ``sys.modules`` makes every import of rich (or of one of its
#: modules) raise ImportError.
NO_RICH = (
    "import runpy, sys; sys.modules['rich'] = None; "
    "runpy.run_module('futex', run_name='__main__', alter_sys=True)"
)


def _without_rich(argv: list[str], **env: str) -> tuple[int, str, str]:
    """Run ``python -m futex argv`` without rich: its status, stdout and stderr."""
    run = subprocess.run(
        [sys.executable, "-c", NO_RICH, *argv],
        capture_output=True,
        text=True,
        env=_child_env(**env),
        timeout=STALL,
    )
    return run.returncode, run.stdout, run.stderr


#: The checks every workload run prints, on every kernel.
WORKLOAD_CHECKS = (
    "finished",
    "errors",
    "count",
    "exactly once",
    "fifo",
    "no task blocked",
    "kernel invariants",
    "queues empty",
    "ring words",
)


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_the_demo_runs_without_rich(kernel: str) -> None:
    """Without rich, and with FORCE_COLOR=1 asking for the live display: the plain lines,
    every check passing, and one line on stderr saying how to get the live display."""
    argv = ["demo", "--kernel", kernel, "--threads", "4", "--items", "300"]
    status, out, err = _without_rich(argv, FORCE_COLOR="1")
    assert status == 0, out + err
    assert err == NO_RICH_NOTE + "\n"
    assert "pip install 'futex[demo]'" in err
    assert "\x1b" not in out
    lines = out.splitlines()
    assert lines[0].startswith("futex demo on ")
    assert "checks:" in lines
    for check in WORKLOAD_CHECKS:
        assert re.search(rf"^  ok    {re.escape(check)} ", out, re.MULTILINE), (check, out)
    assert "FAIL" not in out
    # Linux: the workload, the robust scenario and the cross-process one
    assert out.count("result: PASS") == (3 if kernel == "linux" else 1)
    if kernel == "linux":  # the robust-futex scenario's narrative, checked
        assert "futex demo, robust futexes" in out
        assert "pthread_mutex_lock = 130 (EOWNERDEAD)" in out


def test_plain_without_rich_says_nothing_on_stderr() -> None:
    """``--plain`` asked for the plain lines: no note."""
    status, out, err = _without_rich(["demo", "--items", "100", "--plain"])
    assert (status, err) == (0, ""), out + err
    assert out.count("result: PASS") == 3


def test_the_command_line_and_the_robust_mutex_do_not_import_rich() -> None:
    """Only the live display imports rich, when it draws: importing the command line, the
    workload, the display and the robust mutex the tests share imports none of it."""
    code = (
        "import sys; "
        "import futex.cli, futex.demo.robust_mutex, futex.demo.workload, futex.demo.display; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_child_env(),
        timeout=STALL,
    )
    assert (run.returncode, run.stderr) == (0, ""), run.stderr
    assert run.stdout.strip() == "[]"
