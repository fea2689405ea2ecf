"""The demo's cross-process scenario: worker processes share a counter under a
:class:`futex.sync.Mutex`; one is SIGKILLed inside its critical section; a survivor
recovers the lock, and the final count proves nothing was lost or counted twice.

Unlike the other scenarios this one runs on the **host** kernel: real processes (forked),
a real ``SIGKILL``, the lock in shared memory.  It is built on the kill test's engine
(:mod:`futex.sync.killtest`): each worker loops — acquire, a journaled transaction
(write the old values, mark INTENT, increment the counter and its own tally, mark CLEAN),
release.  Each round:

1. the victim is told to stop inside its next critical section, right after it wrote the
   incremented counter and before it committed (its journal is open), holding the lock;
2. the other workers block in ``acquire`` (asleep in FUTEX_WAIT, once their short spin is
   over);
3. the controller SIGKILLs the victim.  In ``robust-list`` mode the kernel's exit walk
   marks the lock word FUTEX_OWNER_DIED and wakes one waiter; in ``pid-liveness`` mode a
   waiter finds the holder dead at the end of its sleep slice (see
   :func:`futex.sync.robust_mode`);
4. that survivor's ``acquire`` raises :class:`~futex.sync.OwnerDied` with the lock held:
   it rolls the open transaction back from the journal, calls ``make_consistent()``,
   does its own increment and releases.  The demo measures kill → OwnerDied.

At the end every worker parks, the controller takes the lock once more, and the checks
compare the counter with the increments the workers committed.  Every wait is bounded: a
bound reached is a failed check, not a hang.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from futex.demo.display import show_report
from futex.demo.kernels import Check

if TYPE_CHECKING:
    from rich.console import Console

    from futex.sync.killtest import Controller, KillReport

__all__ = [
    "DEFAULT_KILLS",
    "DEFAULT_PROCESSES",
    "CrossprocReport",
    "Round",
    "crossproc_header",
    "run_crossproc",
    "run_crossproc_demo",
    "show_crossproc",
]

DEFAULT_PROCESSES = 3
DEFAULT_KILLS = 3
#: How long (seconds) a step may wait for the workers before it is a failed check.
DEFAULT_TIMEOUT = 10.0


@dataclass
class Round:
    """One kill: who held the lock, who recovered it, how fast."""

    number: int
    slot: int
    life: int
    pid: int
    counter_before: int
    counter_written: int
    asleep: int
    reporter_slot: int = -1
    reporter_pid: int = 0
    latency_ms: float | None = None
    reports: int = 0
    rollbacks: int = 0


@dataclass
class CrossprocReport:
    """The outcome of :func:`run_crossproc_demo`."""

    processes: int
    kills: int
    mode: str
    core: str = ""
    rounds: list[Round] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    counter: int = 0
    acquisitions: int = 0
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def latencies_ms(self) -> list[float]:
        return [r.latency_ms for r in self.rounds if r.latency_ms is not None]

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    def lines(self) -> list[str]:
        """The narrative as plain text: the rounds, the checks, the verdict last."""
        out: list[str] = []
        for r in self.rounds:
            out.append(
                f"round {r.number}: worker {r.slot} (pid {r.pid}) holds the lock inside its "
                f"critical section: journal open, counter {r.counter_before} -> "
                f"{r.counter_written} written, not committed; {r.asleep} worker(s) asleep "
                "in acquire")
            if r.latency_ms is None:
                out.append("         SIGKILL: no survivor got OwnerDied")
            else:
                out.append(
                    f"         SIGKILL -> worker {r.reporter_slot} (pid {r.reporter_pid}) got "
                    f"OwnerDied {r.latency_ms:.2f} ms later, rolled the counter back to "
                    f"{r.counter_before} from the journal, make_consistent(), released")
        out.append("checks:")
        for c in self.checks:
            out.append(f"  {'ok  ' if c.ok else 'FAIL'}  {c.detail}")
        if lat := self.latencies_ms:
            each = ", ".join(f"{x:.2f}" for x in lat)
            out.append(
                f"latency SIGKILL -> OwnerDied in a survivor: {each} ms (median "
                f"{statistics.median(lat):.2f} ms; {self.mode})")
        out.append(
            f"time: {self.elapsed:.2f} s, {self.acquisitions:,} acquisitions by "
            f"{self.processes} worker processes ({self.core})")
        failed = [c for c in self.checks if not c.ok]
        if not self.checks:
            out.append("result: FAIL (nothing ran)")
        elif failed:
            out.append(f"result: FAIL ({len(failed)} of {len(self.checks)} checks)")
        else:
            out.append(
                f"result: PASS: {self.kills} holder(s) SIGKILLed inside the critical section, "
                f"each recovered by exactly one survivor; counter {self.counter}, nothing "
                "lost, nothing counted twice")
        return out


class _Stuck(Exception):
    """A bounded wait ran out."""


def _until(cond: Callable[[], bool], what: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise _Stuck(f"timed out after {timeout:g} s waiting until {what}")
        time.sleep(0.0002)


def _asleep(pid: int) -> bool:
    """Whether process ``pid`` is sleeping (state S in /proc: for a worker in acquire,
    in FUTEX_WAIT)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].startswith(b"S")


def _round(ctl: Controller, number: int, timeout: float) -> Round:
    from futex.sync import killtest as kt

    a, c = ctl.arena, ctl.arena.cells
    slot = (number - 1) % ctl.cfg.workers
    life, pid = ctl.lives[slot], ctl.pids[slot]
    c[kt.STALL] = life
    _until(lambda: c[a.phase + life] == kt.STALLED,
           f"worker {slot} stops inside its critical section", timeout)
    log = {c[kt.J_LOG + 2 * i]: c[kt.J_LOG + 2 * i + 1] for i in range(c[kt.J_N])}
    rnd = Round(number, slot, life, pid, log.get(kt.COUNTER, 0), c[kt.COUNTER], 0)
    others = [(s, p) for s, p in ctl.pids.items() if s != slot]

    def waiting() -> list[int]:
        return [s for s, p in others
                if c[a.phase + ctl.lives[s]] == kt.ACQUIRING and _asleep(p)]

    with contextlib.suppress(_Stuck):  # best effort: a spinning waiter is woken the same
        _until(lambda: len(waiting()) == len(others), "the others sleep", min(timeout, 1.0))
    rnd.asleep = len(waiting())
    reports, rollbacks = c[kt.REPORTS], c[kt.ROLLBACKS]
    ctl.kill(slot)
    c[kt.STALL] = 0
    try:
        _until(lambda: c[kt.REPORTS] != reports, "a survivor gets OwnerDied", timeout)
        rnd.latency_ms = ((c[kt.REPORT_US] - c[a.kill_us + life]) & 0xFFFF_FFFF) / 1000
        who = c[kt.REPORTER]
        rnd.reporter_slot = next((s for s, x in ctl.lives.items() if x == who), -1)
        rnd.reporter_pid = ctl.pids.get(rnd.reporter_slot, 0)
    finally:
        ctl.reap(True)
        rnd.reports, rnd.rollbacks = c[kt.REPORTS] - reports, c[kt.ROLLBACKS] - rollbacks
        ctl.spawn(slot)
    return rnd


def run_crossproc_demo(
    processes: int = DEFAULT_PROCESSES, kills: int = DEFAULT_KILLS, *,
    timeout: float = DEFAULT_TIMEOUT,
) -> CrossprocReport:
    """Run the scenario: ``processes`` workers (at least 2: someone must survive),
    ``kills`` rounds; ``timeout`` bounds every wait."""
    from futex.sync import killtest as kt
    from futex.sync.owner import robust_mode

    if processes < 2 or kills < 1:
        raise ValueError(f"need >= 2 processes and >= 1 kill, got {processes}, {kills}")
    cfg = kt.KillConfig(workers=processes, kills=kills, drain_every=0, nice=0,
                        drain_timeout=timeout, acquire_timeout=timeout)
    ctl = kt.Controller(cfg)
    a, c = ctl.arena, ctl.arena.cells
    report = CrossprocReport(processes, kills, robust_mode(), ctl.report.core)
    start = time.monotonic()
    try:
        for s in range(processes):
            ctl.spawn(s)
        _until(lambda: all(c[a.slot(s) + kt.S_OPS] for s in range(processes)),
               "every worker has incremented the counter", timeout)
        for n in range(1, kills + 1):
            report.rounds.append(_round(ctl, n, timeout))
        ctl.drain(final=True)
    except _Stuck as exc:
        report.check("stuck", False, f"stuck: {exc}")
    finally:
        ctl.stop()
        report.elapsed = time.monotonic() - start
    ctl.judge()
    r = ctl.report
    report.counter, report.acquisitions = r.counter, r.acquisitions
    _checks(report, r, ctl)
    ctl.arena.close()
    return report


def _checks(report: CrossprocReport, r: KillReport, ctl: Controller) -> None:
    from futex.sync import killtest as kt

    stalled = [d for d in ctl.deaths if d[1] == kt.STALLED]
    report.check("killed", len(stalled) == report.kills == r.kills,
                 f"{len(stalled)} of {r.kills} kill(s) hit a worker holding the lock inside "
                 f"its critical section (its phase word at death: stalled)")
    once = all(x.reports == 1 and x.latency_ms is not None for x in report.rounds)
    report.check("reported", once and r.reports == report.kills and not r.attributed,
                 f"each death reported to exactly one survivor: {r.reports} OwnerDied "
                 f"for {report.kills} kill(s)")
    report.check("rolled back", all(x.rollbacks == 1 for x in report.rounds)
                 and r.rollbacks == report.kills,
                 f"{r.rollbacks} open transaction(s) rolled back from the journal, one per kill")
    report.check("counter", r.counter == r.committed,
                 f"counter {r.counter} == {r.committed} increments committed by the workers "
                 "(none lost, none counted twice)")
    st = ctl.arena.mutex.statistics()
    free = not st.locked and not st.inconsistent and not st.not_recoverable
    report.check("lock", free, f"the Mutex is free and consistent at the end ({st.mode})")
    report.check("processes", r.started == r.reaped and not ctl.pids and not ctl.dying,
                 f"no stray process: {r.started} workers forked, {r.reaped} reaped")
    for p in r.problems:
        report.check("kill test", False, p)


# -- showing it -----------------------------------------------------------------------------


def crossproc_header(processes: int, mode: str) -> str:
    how = ("the kernel marks a dead holder's lock FUTEX_OWNER_DIED and wakes a waiter"
           if mode == "robust-list" else "waiters check the holder's liveness every slice")
    return (f"futex demo, cross-process: {processes} worker processes share a counter under "
            f"a futex.sync.Mutex in shared memory; holders are SIGKILLed inside their "
            f"critical section and a survivor recovers the lock ({mode}: {how})")


def show_crossproc(report: CrossprocReport, console: Console | None) -> None:
    """Show the scenario: in colour on ``console``, or plain lines if it is None."""
    header = crossproc_header(report.processes, report.mode)
    show_report(header, report.lines(), report.ok, "round", console)


def run_crossproc(processes: int, kills: int, console: Console | None, *,
                  timeout: float = DEFAULT_TIMEOUT) -> int:
    """Run and show the scenario (the command line's entry): exit status 0 iff every
    check passed."""
    report = run_crossproc_demo(processes, kills, timeout=timeout)
    show_crossproc(report, console)
    return 0 if report.ok else 1
