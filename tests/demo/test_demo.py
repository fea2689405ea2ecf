"""The demo: the command line end to end, its workload on each kernel, and its futex
mutex and condition variable (one body per behaviour, run on Linux, Zircon and LiteOS-A)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from futex.cli import COMMANDS, EXIT_BROKEN_PIPE, main
from futex.demo import (
    KERNELS,
    DemoConfig,
    FutexCondvar,
    FutexMutex,
    FutexOps,
    LinuxOps,
    LiteosOps,
    Ring,
    ZirconOps,
    check_items,
    new_ops,
    run_demo,
)
from futex.demo_robust import describe_word, run_robust_demo
from futex.demo_robust_mutex import EOWNERDEAD, PTHREAD_MUTEX_INCONSISTENT, RobustList, RobustMutex
from futex.demo_zircon import CONSUMER_PRIORITY, PRODUCER_PRIORITY
from futex.kernel.pi import PiDomain
from futex.linux import LinuxKernel, Task, abi

TIMEOUT = 30.0
#: Stall bound for whole workload runs in tests: generous, a stall fails the "finished" check.
STALL = 60.0


def wait_for(cond: Callable[[], bool], what: str) -> None:
    """Poll until ``cond`` holds (state, not time); fail after TIMEOUT seconds."""
    end = time.monotonic() + TIMEOUT
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.0005)


def start(fn: Callable[[], None]) -> threading.Thread:
    th = threading.Thread(target=fn, daemon=True)
    th.start()
    return th


def join_all(threads: list[threading.Thread]) -> None:
    for th in threads:
        th.join(TIMEOUT)
        assert not th.is_alive(), f"{th.name} did not finish"


def failed(report: Any) -> list[Any]:
    return [c for c in report.checks if not c.ok]


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
    # the robust scenario runs by default, after the workload
    assert out.index("all 2000 items") < out.index("futex demo, robust futexes")
    assert out.count("result: PASS") == 2 and "FAIL" not in out


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


def _futex_command(argv: list[str], **env: str) -> subprocess.Popen[bytes]:
    """``python -m futex argv`` with stdout and stderr to pipes, importing this checkout;
    stdout block-buffered unless ``env`` sets PYTHONUNBUFFERED."""
    base = {k: v for k, v in os.environ.items() if k not in _UNSET}
    base["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.Popen(
        [sys.executable, "-m", "futex", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**base, **env},
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


def test_config_split_and_validation() -> None:
    assert (DemoConfig(threads=4).producers, DemoConfig(threads=4).consumers) == (2, 2)
    assert (DemoConfig(threads=5).producers, DemoConfig(threads=5).consumers) == (2, 3)
    with pytest.raises(ValueError):
        DemoConfig(threads=1)
    with pytest.raises(ValueError):
        DemoConfig(capacity=0)


# -- the workload on each kernel --------------------------------------------------------


@pytest.mark.parametrize("kernel", list(KERNELS))
@pytest.mark.parametrize(
    "config", [DemoConfig(2, 0, 1), DemoConfig(4, 300, 1), DemoConfig(7, 500, 3)], ids=str
)
def test_run_demo_passes_its_checks(kernel: str, config: DemoConfig) -> None:
    report = run_demo(config, kernel=kernel, stall_timeout=STALL)
    assert report.ok, failed(report)
    assert report.kernel == kernel
    assert report.stats.queued == 0
    assert set(report.word_buckets) == {"mutex", "not_empty", "not_full"}


def test_zircon_run_records_ownership_changes_and_a_boost() -> None:
    """The primed start makes it certain: with both producers asleep on ``not_full``, the
    first take's notify_all requeues one of them onto the mutex naming the consumer that
    holds it — which then inherits the producer's priority until its unlock."""
    report = run_demo(DemoConfig(4, 300, 2), kernel="zircon", stall_timeout=STALL)
    assert report.ok, failed(report)
    facts = report.facts
    assert facts["boosts"] >= 1 and facts["ownership changes"] >= 2, facts
    assert facts["owners"] >= 1 and facts["observations"] >= facts["ownership changes"]
    text = "\n".join(report.kernel_lines)
    assert "consumer-" in text and "(boosted by a waiter)" in text
    assert report.calls["zx_futex_requeue"] >= 1 and report.stats.requeues >= 1


def test_liteos_run_records_the_table() -> None:
    """Primed: both producers queue on ``not_full`` before any consumer runs, and the
    adapter snapshots that table, so the busiest table seen holds two waiters or more."""
    report = run_demo(DemoConfig(4, 300, 2), kernel="liteos", stall_timeout=STALL)
    assert report.ok, failed(report)
    assert report.facts["peak waiters"] >= 2 and report.facts["buckets seen"] >= 1
    text = "\n".join(report.kernel_lines)
    busiest = text[text.index("the busiest table seen") : text.index("the table at the end")]
    assert "hash -> index : " in busiest
    assert re.search(r"key\(pid\) +: 0x[0-9a-f]+\(1\) : -> \d+\((12|20)\) ->", busiest)
    assert report.calls["REQUEUE"] >= 1 and "CMP_REQUEUE" not in report.calls


def test_progress_carries_the_kernel_view() -> None:
    seen: dict[str, list[Any]] = {k: [] for k in KERNELS}
    for kernel in KERNELS:
        run_demo(DemoConfig(4, 200, 1), kernel=kernel, on_progress=seen[kernel].append)
    assert all(p.status == "" and p.detail == () for p in seen["linux"])
    last = seen["zircon"][-1]  # the final sample, after the workers finished
    assert last.status.startswith("mutex futex: no owner;") and "boosts so far" in last.status
    last = seen["liteos"][-1]
    assert last.status == "bucket table: empty"
    assert any("los_futex_pri.hash" in line for line in last.detail)
    assert all(p.produced == p.consumed == 200 for p in (seen[k][-1] for k in KERNELS))


# -- the final check itself -------------------------------------------------------------


def test_check_items_accepts_a_correct_run() -> None:
    # 2 producers: odd items from producer 0, even from producer 1
    assert all(c.ok for c in check_items([[1, 2, 4], [3, 5, 6]], 6, 2))


def test_check_items_catches_loss_duplicates_and_reordering() -> None:
    def failed(consumed: list[list[int]]) -> set[str]:
        return {c.name for c in check_items(consumed, 4, 2) if not c.ok}

    assert failed([[1, 2, 3]]) == {"count", "exactly once"}  # 4 lost
    assert failed([[1, 2, 3, 3]]) == {"exactly once", "fifo"}  # 3 twice, 4 lost
    assert failed([[3, 2, 1, 4]]) == {"fifo"}  # producer 0's 1 after its 3
    assert failed([[1, 2, 3, 4, 9]]) == {"count", "exactly once"}  # a stray item


# -- the mutex --------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_mutex_mutual_exclusion_under_contention(kernel: str) -> None:
    ops = new_ops(kernel)
    a = ops.mmap(4096)
    mutex: FutexMutex[Any] = FutexMutex(ops, a)
    counter = a + 64
    main_task = ops.new_task("main", "consumer")
    n_threads, rounds = 6, 300
    tasks = [ops.new_task(f"worker-{i}", "producer") for i in range(n_threads)]
    inside: list[int] = []
    overlaps: list[list[int]] = []

    def worker(t: Any) -> None:
        me = ops.task_id(t)
        for _ in range(rounds):
            mutex.lock(t)
            inside.append(me)
            if len(inside) != 1:
                overlaps.append(list(inside))
            v = ops.load(counter)
            time.sleep(0)  # give the GIL away inside the critical section
            ops.store(counter, v + 1)
            inside.remove(me)
            mutex.unlock(t)

    # Hold the lock until every worker sleeps in the kernel, so contention is certain.
    mutex.lock(main_task)
    threads = [start(partial(worker, t)) for t in tasks]
    wait_for(lambda: ops.stats().queued == n_threads, "every worker sleeps")
    assert mutex.contested(mutex.word)
    assert mutex.word == ops.contested(ops.locked_value(main_task))
    mutex.unlock(main_task)
    join_all(threads)

    assert overlaps == []
    assert ops.load(counter) == n_threads * rounds
    assert mutex.word == 0
    stats = ops.stats()
    assert stats.queued == 0 and stats.waits == stats.wakes >= n_threads
    assert all(ops.blocked(t) is None for t in tasks)
    assert len(ops.calls()) == 2  # a wait and a wake: nothing else
    ops.check_invariants()
    assert all(c.ok for c in ops.extra_checks())


def test_mutex_uncontended_makes_no_system_call(kernel: LinuxKernel) -> None:
    p = kernel.new_process()
    ops = LinuxOps(p)
    mutex = FutexMutex(ops, p.mmap(4096))
    t = p.new_task()
    for _ in range(10):
        mutex.lock(t)
        assert mutex.word == 1
        assert not mutex.try_lock(t)
        mutex.unlock(t)
    assert mutex.try_lock(t)
    mutex.unlock(t)
    assert mutex.word == 0
    assert sum(kernel.calls().values()) == 0
    with pytest.raises(RuntimeError):
        mutex.unlock(t)  # not locked


def test_zircon_mutex_word_names_the_owner_and_a_waiter_boosts_it() -> None:
    """libsync's word: the holder's handle (bits 0 and 1 set); a waiter clears bit 0 and
    names the holder in zx_futex_wait, so the kernel records the owner and lends it the
    waiter's priority; the unlock hands the futex over with wake_single_owner."""
    ops = ZirconOps()
    mutex = FutexMutex(ops, ops.mmap(4096))
    ops.watch({"mutex": mutex.addr})
    low = ops.new_task("holder", "consumer")
    high = ops.new_task("waiter", "producer")
    mutex.lock(low)
    handle = ops.locked_value(low)
    assert mutex.word == handle and handle & 3 == 3 and not mutex.contested(handle)

    def waiter() -> None:
        mutex.lock(high)
        mutex.unlock(high)

    th = start(waiter)
    wait_for(lambda: ops.facts()["boosts"] == 1, "the waiter's wait is observed")
    assert ops.process.owner_of(mutex.addr) is low
    assert mutex.word == handle & ~1 and mutex.contested(mutex.word)
    assert (low.priority, low.effective_priority) == (CONSUMER_PRIORITY, PRODUCER_PRIORITY)
    mutex.unlock(low)  # zx_futex_wake_single_owner: the waiter runs and takes the lock
    join_all([th])
    assert mutex.word == 0 and ops.process.owner_of(mutex.addr) is None
    assert low.effective_priority == CONSUMER_PRIORITY
    # the waiter took the lock contested (it cannot know who else waits): its unlock wakes
    assert ops.calls() == {"zx_futex_wait": 1, "zx_futex_wake_single_owner": 2}
    tl = ops.timeline
    assert (tl.changes, tl.boosts) == (2, 1)  # holder owns it boosted, then nobody
    assert tl.threads["holder"].peak == PRODUCER_PRIORITY
    ops.check_invariants()


# -- the condition variable -------------------------------------------------------------


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_notify_all_wakes_one_and_requeues_the_rest_onto_the_mutex(kernel: str) -> None:
    ops = new_ops(kernel)
    a = ops.mmap(4096)
    mutex: FutexMutex[Any] = FutexMutex(ops, a)
    cv = FutexCondvar(ops, a + 4, mutex)
    ops.watch({"mutex": mutex.addr})
    flag = a + 64
    notifier = ops.new_task("notifier", "consumer")
    n = 5
    tasks = [ops.new_task(f"waiter-{i}", "producer") for i in range(n)]
    done: list[int] = []

    def waiter(t: Any) -> None:
        mutex.lock(t)
        while ops.load(flag) == 0:
            cv.wait(t)
        done.append(ops.task_id(t))
        mutex.unlock(t)

    threads = [start(partial(waiter, t)) for t in tasks]
    wait_for(
        lambda: ops.stats().queued == n and cv.waiters == n and mutex.word == 0,
        "every waiter sleeps on the condvar word",
    )
    before = ops.calls()

    mutex.lock(notifier)
    ops.store(flag, 1)
    r = cv.notify_all(notifier)
    assert r in (n, None)  # woken + moved, where the kernel tells
    calls = ops.calls() - before  # (the woken waiter may have called wait already)
    assert sum(k for n, k in calls.items() if "REQUEUE" in n.upper()) == 1
    assert not [n for n in calls if "WAKE" in n.upper()]  # one requeue call, no wake
    assert ops.stats().requeues == n - 1
    # The woken one and the moved ones all wait for the mutex now, on one key.
    wait_for(lambda: ops.stats().queued == n, "the woken waiter sleeps on the mutex too")
    (queue,) = ops.manager.queues().values()
    assert len(queue) == n
    assert done == []  # they need the mutex, which the notifier holds
    if isinstance(ops, ZirconOps):  # the requeue named the holder: it inherits
        assert ops.process.owner_of(a) is notifier
        assert notifier.effective_priority == PRODUCER_PRIORITY
    if isinstance(ops, LiteosOps):  # the table shows them queued on the mutex key
        head = ops.liteos.table().head(ops.process.futex_key(a))
        assert head is not None and len(head.waiters) == n
    mutex.unlock(notifier)

    join_all(threads)
    assert sorted(done) == sorted(ops.task_id(t) for t in tasks)
    # Each requeued waiter was woken by a mutex unlock, none got lost.
    stats = ops.stats()
    assert stats.queued == 0 and stats.waits == stats.wakes
    assert mutex.word == 0 and cv.waiters == 0
    assert all(ops.blocked(t) is None for t in [*tasks, notifier])
    ops.check_invariants()
    assert all(c.ok for c in ops.extra_checks())


def test_liteos_requeue_moves_waiters_in_priority_order() -> None:
    """LiteOS's plain REQUEUE wakes the most urgent waiter and moves the others to the
    mutex key, each inserted by priority (FIFO among equals)."""
    ops = LiteosOps()
    a = ops.mmap(4096)
    mutex: FutexMutex[Any] = FutexMutex(ops, a)
    cv = FutexCondvar(ops, a + 4, mutex)
    flag = a + 64
    notifier = ops.process.new_task(priority=5)
    tasks = [ops.process.new_task(priority=p) for p in (20, 12, 25, 12)]

    def waiter(t: Any) -> None:
        mutex.lock(t)
        while ops.load(flag) == 0:
            cv.wait(t)
        mutex.unlock(t)

    threads = []
    for i, t in enumerate(tasks, 1):  # one at a time, so the FIFO order among equals is known
        threads.append(start(partial(waiter, t)))
        wait_for(lambda i=i: ops.stats().queued == i and mutex.word == 0, "it sleeps")
    cv_key, mutex_key = ops.process.futex_key(a + 4), ops.process.futex_key(a)
    assert [(w.tid, w.priority) for w in ops.liteos.table().waiters(cv_key)] == [
        (tasks[1].tid, 12),
        (tasks[3].tid, 12),
        (tasks[0].tid, 20),
        (tasks[2].tid, 25),
    ]
    mutex.lock(notifier)
    ops.store(flag, 1)
    assert cv.notify_all(notifier) is None  # REQUEUE answers 0: someone was woken or moved
    assert ops.calls()["REQUEUE"] == 1
    table = ops.liteos.table()
    assert table.waiters(cv_key) == ()
    moved = [w.tid for w in table.waiters(mutex_key)]
    # tasks[1] (first of the most urgent) was woken; it may already wait for the mutex,
    # queued by its priority 12 ahead of the moved 12 — or not yet.
    assert [t for t in moved if t != tasks[1].tid] == [tasks[3].tid, tasks[0].tid, tasks[2].tid]
    mutex.unlock(notifier)
    join_all(threads)
    assert ops.liteos.table().empty


def test_notify_one_is_a_wake_and_no_waiters_costs_nothing(kernel: LinuxKernel) -> None:
    p = kernel.new_process()
    ops = LinuxOps(p)
    a = p.mmap(4096)
    mutex = FutexMutex(ops, a)
    cv = FutexCondvar(ops, a + 4, mutex)
    flag = a + 64
    notifier, sleeper = p.new_task(), p.new_task()

    mutex.lock(notifier)
    assert cv.notify_one(notifier) == 0
    assert cv.notify_all(notifier) == 0
    mutex.unlock(notifier)
    assert sum(kernel.calls().values()) == 0  # nobody waits: no system call

    def waiter() -> None:
        mutex.lock(sleeper)
        while p.load_u32(flag) == 0:
            cv.wait(sleeper)
        mutex.unlock(sleeper)

    th = start(waiter)
    wait_for(lambda: sleeper.blocked is not None and cv.waiters == 1, "the waiter sleeps")
    mutex.lock(notifier)
    p.store_u32(flag, 1)
    assert cv.notify_one(notifier) == 1
    mutex.unlock(notifier)
    join_all([th])
    assert kernel.calls()["CMP_REQUEUE"] == 0
    assert kernel.calls()["WAKE"] >= 1


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_notify_requires_the_mutex(kernel: str) -> None:
    ops: FutexOps[Any] = new_ops(kernel)
    a = ops.mmap(4096)
    cv = FutexCondvar(ops, a + 4, FutexMutex(ops, a))
    with pytest.raises(RuntimeError):
        cv.notify_all(ops.new_task("t"))


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_ring_is_fifo_single_threaded(kernel: str) -> None:
    ops: FutexOps[Any] = new_ops(kernel)
    ring: Ring[Any] = Ring(ops, capacity=3, producers=1)
    t = ops.new_task("t")
    for item in (7, 8, 9):
        ring.put(t, item)
    assert [ring.take(t), ring.take(t)] == [7, 8]
    ring.put(t, 10)
    ring.producer_done(t)
    assert [ring.take(t), ring.take(t), ring.take(t)] == [9, 10, None]
    assert ring.words()["mutex"] == 0
    assert ops.total_calls() == 0  # never had to wait


# -- the robust-futex scenario ----------------------------------------------------------

W, OD = abi.FUTEX_WAITERS, abi.FUTEX_OWNER_DIED


def test_robust_demo_output_shows_recovery_and_boost(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["demo", "--plain", "--robust-only"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "FAIL" not in out and "\x1b[" not in out
    lines = out.splitlines()
    assert lines[-1].startswith("result: PASS")
    a = out.index("(a) robust PI mutex")
    b = out.index("(b) plain robust mutex")
    pi, plain = out[a:b], out[b:]
    # (a): boosted while the SCHED_FIFO waiter blocks, back to normal once the owner exits
    assert "SCHED_FIFO 50, prio 49" in pi
    assert "owner prio 120 -> 49: boosted" in pi
    assert "owner prio 49 -> 120: the boost is gone" in pi
    # the waiter's FUTEX_LOCK_PI returned owning the lock with OWNER_DIED: EOWNERDEAD
    assert "FUTEX_LOCK_PI = 0, word on return 0xc000" in pi
    assert "(OWNER_DIED | WAITERS | tid" in pi
    assert f"pthread_mutex_lock = {EOWNERDEAD} (EOWNERDEAD)" in pi
    assert "pthread_mutex_consistent = 0" in pi and "FUTEX_UNLOCK_PI = 0" in pi
    assert "word 0x00000000 (unlocked)" in pi
    # (b): the exit walk left OWNER_DIED | WAITERS with the TID cleared, and woke the waiter
    assert "FUTEX_WAIT = 0 (woken by the exit walk), word when woken 0xc0000000" in plain
    assert f"pthread_mutex_lock = {EOWNERDEAD} (EOWNERDEAD)" in plain
    assert "FUTEX_WAKE = 0; word 0x00000000 (unlocked)" in plain
    # numbered steps
    assert "  1. owner" in pi and "  4. waiter FUTEX_LOCK_PI returned 0" in pi


def test_robust_demo_report() -> None:
    report = run_robust_demo()
    assert report.ok, "\n".join(report.lines())
    a, b = report.parts
    assert (a.label, b.label) == ("a", "b")
    assert a.calls == {"LOCK_PI": 1, "UNLOCK_PI": 1, "set_robust_list": 2}
    assert b.calls == {"WAIT": 1, "WAKE": 1, "set_robust_list": 2}
    assert len(report.checks) >= 30
    assert not [th for th in threading.enumerate() if th.name.startswith("robust-")]
    assert run_robust_demo("b").ok
    with pytest.raises(ValueError):
        run_robust_demo("c")


def test_robust_demo_fails_when_the_boost_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kernel without priority inheritance: every other step still works, but the checks
    of the boost fail, and so does the command."""
    monkeypatch.setattr(PiDomain, "effective_prio", lambda self, task: task.normal_prio)
    rc = main(["demo", "--plain", "--robust-only"])
    out = capsys.readouterr().out
    assert rc == 1
    fails = [line.strip() for line in out.splitlines() if line.lstrip().startswith("FAIL")]
    assert len(fails) == 2, out
    assert "owner prio 120 -> 120" in fails[0] and "expected (120, 49)" in fails[0]
    assert "expected (49, 120)" in fails[1]
    assert out.splitlines()[-1].startswith("result: FAIL (2 of")


def test_robust_demo_fails_on_a_wrong_word(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exit walk that forgets FUTEX_OWNER_DIED on plain robust words: the waiter is still
    woken but takes the lock as if it were free (no EOWNERDEAD): the checks say so."""
    import futex.linux.robust as robust

    real = robust.handle_futex_death

    def forgetful(task: Task, uaddr: int, pi: bool, pending_op: bool) -> bool:
        p = task.process
        uval = p.load_u32(uaddr)
        if pi or uval & abi.FUTEX_TID_MASK != task.tid:
            return real(task, uaddr, pi, pending_op)
        p.store_u32(uaddr, 0)  # unlocked, no OWNER_DIED
        robust.wake_shared_one(task, uaddr)
        return False

    monkeypatch.setattr(robust, "handle_futex_death", forgetful)
    report = run_robust_demo("b", timeout=5.0)
    assert not report.ok
    failed = [c.detail for c in report.checks if not c.ok]
    assert any("pthread_mutex_lock = 0" in d and f"expected {EOWNERDEAD}" in d for d in failed)
    assert any("word when woken 0x00000000" in d for d in failed), failed


def test_robust_demo_turns_a_lost_wake_into_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """No robust-list walk at exit: the plain waiter is never woken.  The step's bounded
    wait fails it, the blocked task is made to exit so no thread is left behind."""
    monkeypatch.setattr("futex.linux.exit.exit_robust_list", lambda task: None)
    report = run_robust_demo("b", timeout=1.0)
    assert not report.ok
    failed = [c.detail for c in report.checks if not c.ok]
    assert failed[0].startswith("stuck: timed out after 1 s waiting until the waiter's")
    assert "blocked tasks [" in failed[1]
    assert not [th for th in threading.enumerate() if th.name.startswith("robust-")]


def test_describe_word() -> None:
    assert describe_word(0) == "0x00000000 (unlocked)"
    assert describe_word(7) == "0x00000007 (tid 7)"
    assert describe_word(OD | W | 7) == "0xc0000007 (OWNER_DIED | WAITERS | tid 7)"
    assert describe_word(OD | W) == "0xc0000000 (OWNER_DIED | WAITERS)"


@pytest.mark.parametrize("pi", [False, True])
def test_robust_mutex_single_task(kernel: LinuxKernel, pi: bool) -> None:
    """Uncontended: no futex call; the robust list follows the mutex; an owner who dies
    without waiters leaves exactly OWNER_DIED, and the next locker gets EOWNERDEAD (PI:
    through FUTEX_LOCK_PI, then OWNER_DIED cleared by glibc; plain: the CAS drops it)."""
    p = kernel.new_process()
    mem = p.mmap(4096)
    t, u = p.new_task(), p.new_task()
    rt, ru = RobustList(t, mem), RobustList(u, mem + 0x40)
    assert rt.register() == 0 and ru.register() == 0
    m = RobustMutex(p, mem + 0x100, pi=pi)
    assert m.lock(rt).result == 0
    assert rt.entries() == [m.entry | pi] and rt.pending == 0
    assert m.value == t.tid and m.owner == t.tid
    assert m.unlock(rt) is None
    assert rt.entries() == [] and m.value == 0
    assert m.lock(rt).result == 0
    t.exit()
    assert m.value == OD
    out = m.lock(ru)
    # PI: the CAS 0 -> tid fails on OWNER_DIED, so glibc asks the kernel, which takes the
    # word for it (TID 0, no waiters) keeping OWNER_DIED
    assert (out.result, out.syscall) == (EOWNERDEAD, "LOCK_PI" if pi else None)
    assert m.value == u.tid and m.owner == PTHREAD_MUTEX_INCONSISTENT
    assert m.consistent(ru) == 0 and m.consistent(ru) == abi.EINVAL
    assert m.unlock(ru) is None and m.value == 0
    assert u.calls == ({"set_robust_list": 1, "LOCK_PI": 1} if pi else {"set_robust_list": 1})
