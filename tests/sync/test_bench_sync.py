"""``python -m futex bench`` (futex.benchcli, issue 13 §7): a smoke run of the benchmark at
tiny counts, the shape of its table and JSON, and the harness's promises — every trial
bounded, every forked worker reaped, a worker's failure reported as the row's status.

The figures themselves are not checked (they are this host's); what is pinned is that
every row of issue 13 §7 is there, each with a figure or a reason, that the peers that
cannot run (posix_ipc not installed, futex.sync primitives not there yet) say so instead of
failing the run, and that the targets of issue 13 are printed beside the ratios they judge.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import pathlib
import signal
import time
from typing import Any

import pytest

from futex import benchcli
from futex.benchcli import peers
from futex.benchcli.cfloor import CFloor
from futex.benchcli.harness import FULL, QUICK, BenchFailure, Ctl, Procs, Row, Target
from futex.benchcli.uncontended import bench_uncontended

SECTIONS = (
    "1. uncontended",
    "2. contended counter",
    "3. ping-pong",
    "4. semaphore producer/consumer",
    "5. condition round trip",
    "6. RWLock read-heavy",
    "7. holder SIGKILLed",
)
HAVE_POSIX_IPC = importlib.util.find_spec("posix_ipc") is not None
HAVE_SYNC = importlib.util.find_spec("futex.sync") is not None


def _children() -> set[int] | None:
    """This process's live children (``/proc/self/task/*/children``), or None when the
    kernel does not list them (CONFIG_PROC_CHILDREN)."""
    out: set[int] = set()
    try:
        for task in pathlib.Path("/proc/self/task").iterdir():
            out.update(int(p) for p in (task / "children").read_text().split())
    except OSError:
        return None
    return out


def _helpers(pids: set[int]) -> set[int]:
    """multiprocessing's resource tracker (started once per process when shared memory is
    made; it is not the benchmark's worker)."""
    keep = set()
    for pid in pids:
        try:
            cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" in cmd:
            keep.add(pid)
    return keep


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run at the smallest counts: ``--quick --scale 0.01 --json``; its JSON, its
    printed table and its children before and after."""
    path = tmp_path_factory.mktemp("bench") / "figures.json"
    before = _children()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = benchcli.main(["--quick", "--scale", "0.01", "--json", str(path)])
    after = _children()
    return {
        "status": status,
        "res": json.loads(path.read_text()),
        "text": out.getvalue(),
        "before": before,
        "after": after,
    }


def test_the_smoke_run_succeeds_and_prints_every_section(smoke: dict[str, Any]) -> None:
    """Issue 13 §7: all sections in one run, a plain-text table with the targets."""
    assert smoke["status"] == 0
    text = smoke["text"]
    for title in SECTIONS:
        assert title in text
    assert "row" in text and "figure" in text and "ratio" in text and "target" in text
    assert "Targets (issue 13)" in text


def test_every_row_has_a_figure_or_a_reason(smoke: dict[str, Any]) -> None:
    """A row without a figure says why; no row failed (a failed check — lost updates, a
    worker's error, a timeout — would say "failed: ...")."""
    rows = smoke["res"]["rows"]
    assert {s for s in SECTIONS if any(r["section"].startswith(s) for r in rows)} == set(SECTIONS)
    for r in rows:
        assert r["section"].startswith(SECTIONS), r["section"]
        assert (r["value"] is None) == bool(r["status"]), r
        assert not r["status"].startswith("failed"), r
        if r["ratio"] is not None:
            assert r["baseline"] and r["value"] is not None


def test_the_multiprocessing_baselines_always_measure(smoke: dict[str, Any]) -> None:
    """multiprocessing is the baseline of most sections: it is always there."""
    by = {(r["section"][:2], r["name"]): r for r in smoke["res"]["rows"]}
    for key in (
        ("1.", "multiprocessing.Lock acquire()+release()"),
        ("1.", "with multiprocessing.Lock(): pass"),
        ("1.", "multiprocessing.RLock acquire()+release()"),
        ("2.", "multiprocessing.Lock"),
        ("4.", "multiprocessing.Semaphore"),
        ("6.", "multiprocessing.Lock for reads and writes"),
    ):
        assert by[key]["value"] is not None and by[key]["value"] > 0, by[key]


def test_peers_that_cannot_run_say_why(smoke: dict[str, Any]) -> None:
    """posix_ipc rows measure when it is installed and say "not installed" otherwise;
    multiprocessing.Lock and posix_ipc never recover a killed holder's lock."""
    rows = smoke["res"]["rows"]
    for r in (r for r in rows if r["name"].startswith("posix_ipc") and "7." not in r["section"]):
        if HAVE_POSIX_IPC:
            assert r["value"] is not None or r["status"].startswith("skipped"), r
        else:
            assert r["status"] in ("not installed", "") or r["status"].startswith("skipped"), r
    recovery = {r["name"]: r for r in rows if r["section"].startswith("7.")}
    assert recovery["multiprocessing.Lock"]["status"].startswith("never")
    if HAVE_POSIX_IPC:
        assert recovery["posix_ipc.Semaphore"]["status"].startswith("never")
    else:
        assert recovery["posix_ipc.Semaphore"]["status"] == "not installed"


def test_futex_sync_rows_measure_or_say_not_available(smoke: dict[str, Any]) -> None:
    for r in smoke["res"]["rows"]:
        if "futex.sync" in r["name"] and r["value"] is None:
            assert r["status"].startswith(("not available", "skipped")), r
    if HAVE_SYNC:
        by = {r["name"]: r for r in smoke["res"]["rows"]}
        killed = by["futex.sync.Mutex (OwnerDied)"]
        if killed["value"] is not None:  # OwnerDied came, with the lock held
            assert killed["unit"] == "ms" and killed["target"] == "< 1 ms median"


def test_targets_sit_beside_the_ratios_they_judge(smoke: dict[str, Any]) -> None:
    targets = {t["row"]: t for t in smoke["res"]["targets"]}
    assert targets["futex.sync.Mutex acquire()+release()"]["target"] == "<= 1x"
    assert targets["with futex.sync.Mutex(): pass"]["target"] == "<= 0.6x"
    assert targets["futex.sync.Mutex"]["target"] == ">= 1.3x"
    assert targets["futex.sync.Mutex (OwnerDied)"]["target"] == "< 1 ms median"
    assert any(name.startswith("futex.sync.Event, pinned") for name in targets) or not any(
        r["name"].startswith("posix_ipc.Semaphore, pinned") for r in smoke["res"]["rows"]
    )
    for t in targets.values():
        assert t["met"] in ("ok", "MISSED") or t["met"].startswith("n/a")


def test_no_worker_outlives_the_run(smoke: dict[str, Any]) -> None:
    """Every forked worker (and every C floor process) is reaped before the run returns."""
    before, after = smoke["before"], smoke["after"]
    if before is None or after is None:
        pytest.skip("this kernel does not list a process's children (CONFIG_PROC_CHILDREN)")
    assert after - before - _helpers(after) == set()


# -- the harness --------------------------------------------------------------------------------


def test_a_hung_trial_is_killed_at_its_deadline() -> None:
    """Workers block without timeouts inside timed loops; the parent bounds the trial and
    SIGKILLs and reaps what is left."""

    def hang(ctl: Ctl) -> list[int]:
        ctl.ready_go()
        time.sleep(60)
        return []

    t0 = time.monotonic()
    with pytest.raises(BenchFailure, match="timed out"), Procs(0.3) as ps:
        ps.start([hang])
    assert time.monotonic() - t0 < 30
    kid = ps.kids[0]
    assert kid.status is not None and os.WIFSIGNALED(kid.status)
    assert os.WTERMSIG(kid.status) == signal.SIGKILL


def test_a_worker_error_is_the_trials_failure() -> None:
    def broken(ctl: Ctl) -> list[int]:
        ctl.ready_go()
        raise ValueError("the check failed")

    with pytest.raises(BenchFailure, match="ValueError: the check failed"), Procs(30) as ps:
        ps.start([broken])


def test_results_come_back_in_order() -> None:
    def body(n: int) -> Any:
        def run(ctl: Ctl) -> list[int]:
            ctl.ready_go()
            return [n, os.getpid()]

        return run

    with Procs(30) as ps:
        res = ps.start([body(1), body(2)])
    assert [r[0] for r in res] == [1, 2]
    assert res[0][1] != res[1][1] != os.getpid()


def test_a_primitive_failing_mid_run_fails_its_row_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """One row's exception is that row's status ("failed: ..."); the section goes on."""

    class Breaks:
        calls = 0

        def acquire(self) -> bool:
            Breaks.calls += 1
            if Breaks.calls > 1:  # the probe passes, the timed loop fails
                raise RuntimeError("broken on purpose")
            return True

        def release(self) -> None:
            pass

        def __enter__(self) -> Breaks:
            self.acquire()
            return self

        def __exit__(self, *exc: object) -> None:
            self.release()

    real = peers.sync_attr
    monkeypatch.setattr(peers, "sync_attr", lambda name: Breaks if name == "Mutex" else real(name))
    rows = {r.name: r for r in bench_uncontended(QUICK.scaled(0.01), CFloor(None, "no C"))}
    assert rows["futex.sync.Mutex acquire()+release()"].status == (
        "failed: RuntimeError: broken on purpose"
    )
    assert rows["futex.sync.Mutex acquire()+release()"].samples == []
    assert rows["multiprocessing.Lock acquire()+release()"].samples
    assert rows["C floor: Drepper futex mutex (no owner) lock+unlock"].status == "no C"


# -- ratios, fallbacks, targets, options -------------------------------------------------------


def test_a_missing_baseline_falls_back_and_leaves_the_target_unjudged() -> None:
    """The ping-pong target is against posix_ipc's pinned figure: without it the ratio is
    against multiprocessing.Semaphore and the target says n/a."""
    psem, msem = "posix_ipc.Semaphore, pinned", "multiprocessing.Semaphore, pinned"
    rows = [
        Row("3", psem, "µs", status="not installed"),
        Row("3", msem, "µs", value=8.0),
        Row(
            "3",
            "futex.sync.Event",
            "µs",
            value=4.0,
            baseline=psem,
            fallback=msem,
            target=Target("<=", 1.1, against=psem),
        ),
    ]
    benchcli._finish(rows)
    assert rows[2].baseline == msem and rows[2].ratio == 0.5
    assert rows[2].target_status.startswith("n/a")
    rows[0].status, rows[0].value = "", 3.0
    rows[2].baseline, rows[2].ratio = psem, None
    benchcli._finish(rows)
    assert rows[2].ratio == pytest.approx(4 / 3) and rows[2].target_status == "MISSED"


def test_scaled_counts_stay_positive() -> None:
    tiny = QUICK.scaled(0.0001)
    assert min(tiny.pair_n, tiny.counter_n, tiny.rounds, tiny.items) >= 10
    assert tiny.trials >= 1 and tiny.recover_k >= 1 and tiny.repeats >= 3
    assert FULL.scaled(2).pair_n == 2 * FULL.pair_n


def test_bad_options_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--scale", "0"], ["--scale", "x"], ["--bogus"]):
        with pytest.raises(SystemExit) as exc:
            benchcli.main(argv)
        assert exc.value.code == 2
    assert "--scale" in capsys.readouterr().err


def test_plot_without_matplotlib_is_refused_before_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    monkeypatch.setattr(benchcli, "_have_matplotlib", lambda: False)
    monkeypatch.setattr(benchcli, "run_bench", lambda cfg: pytest.fail("the run started"))
    assert benchcli.main(["--plot", str(tmp_path / "x.png")]) == 2
    assert "matplotlib" in capsys.readouterr().err


@pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None, reason="matplotlib is not installed"
)
def test_plot_draws_a_png(smoke: dict[str, Any], tmp_path: pathlib.Path) -> None:
    path = tmp_path / "ratios.png"
    benchcli.plot(smoke["res"], str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
