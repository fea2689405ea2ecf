"""The kill test: worker processes share a journaled counter under a :class:`~futex.sync.Mutex`
while a controller SIGKILLs them at random moments (issue 13; sync_design §8).

Workers (forked) loop: acquire (an :class:`~futex.sync.OwnerDied` is repaired from the
journal, then ``make_consistent``), a transaction, release.  The controller SIGKILLs a
random worker every 0..``max_gap`` s and forks its successor.  Every ``drain_every`` kills
it *drains*: workers park outside the lock, so each waiter must get it alone within
``drain_timeout`` (a just-woken waiter killed while the lock is handed over loses a wakeup
that the next contention would hide); then it takes the lock itself and checks the state.
Every other drain follows a few kill-free ms instead (:meth:`Controller.quiet`).

Shared memory: the Mutex, then 32-bit cells.  Each worker incarnation is a *life* whose
phase word (starting, idle, acquiring, taken, taken-od, held, releasing, parked, stalled)
freezes when it is killed: deaths are judged against it, not against the lock word, which
the kernel rewrites during the exit.  The transaction (undo log: old values, INTENT,
updates, CLEAN) updates the counter, the worker's tally of committed increments,
``inside`` (the holder's life; cleared before release), the life's committed iteration
and, after an OwnerDied, the report for the life found ``inside``.  A kill anywhere in it
is rolled back once; a report counts once its reporter commits.  Judged at the end:
counter == committed increments; a life killed holding after its commit is reported
exactly once, no life twice, none alive; reports == kills of a holder - kills of a
reporter before its commit + some kills inside acquire/release (where the word's owner is
unknown); a normal acquire never finds a dead holder's mark, a release finds its own;
every drain passed, no acquire timed out; every process forked was reaped.
"""

from __future__ import annotations

import mmap
import os
import random
import signal
import statistics
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from futex.sync.errors import LockNotRecoverable, OwnerDied
from futex.sync.mutex import Mutex
from futex.sync.owner import robust_mode
from futex.word import ALL

__all__ = ["PHASES", "Arena", "Controller", "KillConfig", "KillReport", "main", "run_kill_test"]

STARTING, IDLE, ACQUIRING, TAKEN, TAKEN_OD, HELD, RELEASING, PARKED, STALLED = range(9)
PHASES: Final = ("starting", "idle", "acquiring", "taken", "taken-od", "held", "releasing",
                 "parked", "stalled")
#: The word is certainly the victim's: from acquire's return to the call of release.
HOLDING: Final = frozenset({TAKEN, TAKEN_OD, HELD, STALLED})
#: Whether the word was the victim's is unknown: inside acquire or release.
WINDOW: Final = frozenset({ACQUIRING, RELEASING})

# cells (index = byte offset / 4); the Mutex occupies cells 0-15
DRAIN, _, COUNTER, INSIDE, REPORTS, UNATTRIBUTED, ROLLBACKS, FAILS = range(16, 24)
FAIL_CODE, FAIL_LIFE, FAIL_VALUE, STALL, REPORT_US, REPORTER = range(24, 30)
J_STATE, J_N, J_LOG = 32, 33, 34  # undo log: J_N pairs (cell, old value) from J_LOG
S_LIFE, S_DONE, S_PARKED, S_OPS = range(4)  # per worker slot (and one for the controller)
_SLOTS, _SLOT = 64, 4
_CLEAN, _INTENT = 0, 1
#: The controller's life (it settles the lock at drains); workers' lives start above.
CONTROLLER_LIFE: Final = 1

F_TIMEOUT, F_UNREPORTED, F_EXCLUSION, F_NOT_RECOVERABLE, F_CRASH = range(1, 6)
_FAIL_TEXT: Final = {
    F_TIMEOUT: "an acquire ran into its timeout (a hang: lost wakeup or unrecovered lock)",
    F_UNREPORTED: "a normal acquire found a dead holder's mark (a death not reported)",
    F_EXCLUSION: "a holder found another's mark at release (two holders at once)",
    F_NOT_RECOVERABLE: "an acquire raised LockNotRecoverable",
    F_CRASH: "a worker raised an unexpected exception",
}


@dataclass(frozen=True)
class KillConfig:
    """What :func:`run_kill_test` does (times in seconds)."""

    workers: int = 3
    kills: int = 10_000
    max_gap: float = 0.002
    drain_every: int = 25
    drain_timeout: float = 5.0
    acquire_timeout: float = 10.0
    seed: int | None = None
    #: The workers' niceness: the controller forks a successor per kill, and busy
    #: workers on two CPUs would starve it (its speed is not what the test measures).
    #: Each worker loops in a second thread: a main thread's waits are cut into slices
    #: for signal handlers (<= 50 ms) that re-check the word, which would heal a lost
    #: wakeup within a slice and hide it from the drains.
    nice: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.workers <= 64:
            raise ValueError(f"workers must be in 1..64, got {self.workers}")
        if min(self.kills, self.drain_every) < 0 or self.max_gap < 0:
            raise ValueError("kills, drain_every and max_gap must be >= 0")
        if min(self.drain_timeout, self.acquire_timeout) <= 0:
            raise ValueError("the timeouts must be > 0")


class Arena:
    """The shared memory of a kill test (see the module docstring) and what runs on it:
    the critical section, a worker's loop."""

    def __init__(self, workers: int, lives: int) -> None:
        self.workers, self.lives = workers, lives
        # per life: phase, iteration, committed iteration, reports, kill time, latency
        self.phase = _SLOTS + _SLOT * (workers + 1)
        self.iter, self.txn, self.rep, self.kill_us, self.lat_us = (
            self.phase + lives * k for k in range(1, 6))
        self.mm = mmap.mmap(-1, (4 * (self.lat_us + lives) + 4095) // 4096 * 4096)
        self.mutex = Mutex.create(self.mm, 0)
        self.cells = memoryview(self.mm).cast("I")
        self._words: dict[int, Any] = {}
        self.drain = self.word(DRAIN)
        self.t0 = time.monotonic_ns()

    def word(self, cell: int) -> Any:
        """The futex word of ``cell`` (a :class:`futex.native.Word`)."""
        w = self._words.get(cell)
        if w is None:
            from futex.native import Word

            w = self._words[cell] = Word(self.mm, 4 * cell)
        return w

    def slot(self, s: int) -> int:
        return _SLOTS + _SLOT * s

    def now_us(self) -> int:
        """Microseconds since the arena was made (CLOCK_MONOTONIC, shared by processes)."""
        return (time.monotonic_ns() - self.t0) // 1000 & 0xFFFF_FFFF

    def committed(self) -> int:
        return sum(self.cells[self.slot(s) + S_DONE] for s in range(self.workers + 1))

    def fail(self, code: int, life: int, value: int) -> None:
        """Record a failure a worker saw (the first one's details are kept)."""
        self.word(FAILS).fetch_add(1)
        if self.word(FAIL_CODE).cas(0, code) == 0:
            self.cells[FAIL_LIFE], self.cells[FAIL_VALUE] = life, value & 0xFFFF_FFFF

    def failure(self) -> str | None:
        c, code = self.cells, self.cells[FAIL_CODE]
        return None if not c[FAILS] else (
            f"{c[FAILS]} worker failure(s), first: life {c[FAIL_LIFE]}: "
            f"{_FAIL_TEXT.get(code, f'code {code}')} (value {c[FAIL_VALUE]})")

    def close(self) -> None:
        self.mutex.close()
        for w in self._words.values():
            w.release()
        self.cells.release()
        self.mm.close()

    # -- the critical section ------------------------------------------------------

    def repair(self) -> bool:
        """Roll an open transaction back; idempotent (a repairer killed midway leaves the
        journal open for the next)."""
        c = self.cells
        if c[J_STATE] != _INTENT:
            return False
        for i in reversed(range(c[J_N])):
            c[c[J_LOG + 2 * i]] = c[J_LOG + 2 * i + 1]
        c[J_STATE] = _CLEAN
        return True

    def section(self, slot: int, life: int, died: bool) -> None:
        """The holder's transaction (the lock is held; ``died``: taken with OwnerDied)."""
        c = self.cells
        rolled = self.repair() if died else False
        who = c[INSIDE]
        if not died and (who or c[J_STATE] != _CLEAN):
            self.fail(F_UNREPORTED, life, who)
        done = self.slot(slot) + S_DONE
        ups = [(INSIDE, life), (COUNTER, c[COUNTER] + 1), (done, c[done] + 1),
               (self.txn + life, c[self.iter + life])]
        if died:
            now = self.now_us()
            ups += [(REPORTS, c[REPORTS] + 1), (REPORT_US, now), (REPORTER, life)]
            if rolled:
                ups.append((ROLLBACKS, c[ROLLBACKS] + 1))
            if 0 < who < self.lives:
                ups += [(self.rep + who, c[self.rep + who] + 1),
                        (self.lat_us + who, now - c[self.kill_us + who])]
            else:
                ups.append((UNATTRIBUTED, c[UNATTRIBUTED] + 1))
        for i, (cell, _) in enumerate(ups):
            c[J_LOG + 2 * i], c[J_LOG + 2 * i + 1] = cell, c[cell]
        c[J_N] = len(ups)
        c[J_STATE] = _INTENT
        for cell, value in ups:
            c[cell] = value & 0xFFFF_FFFF
            if cell == COUNTER and c[STALL] == life:  # the demo's victim stops here
                c[self.phase + life] = STALLED
                self._sleep(lambda: True, self.word(STALL), life)  # until SIGKILLed
        c[J_STATE] = _CLEAN
        if died:
            self.mutex.make_consistent()

    def _sleep(self, cond: Callable[[], bool], word: Any, value: int) -> None:
        """Sleep on ``word`` while ``cond()`` (ends if the controller is gone)."""
        parent = os.getppid()
        while cond() and os.getppid() == parent:
            word.wait(value, 0.05)

    # -- a worker process ----------------------------------------------------------

    def work(self, slot: int, life: int, cfg: KillConfig) -> int:
        """A worker's loop (in the forked child); returns its exit status."""
        c, m = self.cells, self.mutex
        ph, it, ops = self.phase + life, self.iter + life, self.slot(slot) + S_OPS
        parent, n, timeout = os.getppid(), 0, cfg.acquire_timeout
        c[ph] = IDLE
        while True:
            if epoch := c[DRAIN]:  # park outside the lock until the drain ends
                c[ph] = PARKED
                c[self.slot(slot) + S_PARKED] = epoch
                self._sleep(lambda: c[DRAIN] == epoch, self.drain, epoch)
                c[ph] = IDLE
                continue
            n += 1
            if not n & 63 and os.getppid() != parent:
                return 3  # orphaned: the controller is gone
            c[it] = n
            c[ph] = ACQUIRING
            died = False
            try:
                got = m.acquire(True, timeout)
                c[ph] = TAKEN if got else IDLE
            except OwnerDied:
                c[ph] = TAKEN_OD
                got = died = True
            except LockNotRecoverable:
                self.fail(F_NOT_RECOVERABLE, life, 0)
                return 4
            if not got:
                self.fail(F_TIMEOUT, life, m.statistics().owner)
                continue
            self.section(slot, life, died)
            c[ph] = HELD
            c[ops] += 1
            c[ph] = RELEASING
            if c[INSIDE] != life:
                self.fail(F_EXCLUSION, life, c[INSIDE])
            c[INSIDE] = 0
            m.release()
            c[ph] = IDLE


@dataclass
class KillReport:
    """The outcome of :func:`run_kill_test` (see the module docstring for the checks)."""

    config: KillConfig
    mode: str
    core: str
    #: The seed of the victims and gaps (the timing itself is the host's).
    seed: int = 0
    kills: int = 0
    deaths: Counter[str] = field(default_factory=Counter)
    #: kills of a life holding the lock (taken, taken-od, held, stalled); of those, after a
    #: normal take before its commit (``heads``: one report each finds nobody inside) and
    #: of a reporter before its commit (``subsumed``: the next one reports the chain once)
    held: int = 0
    heads: int = 0
    subsumed: int = 0
    #: kills inside acquire/release (the word may or may not have been taken)
    window: int = 0
    reports: int = 0
    attributed: int = 0
    unattributed: int = 0
    rollbacks: int = 0
    counter: int = 0
    committed: int = 0
    acquisitions: int = 0
    drains: int = 0
    started: int = 0
    reaped: int = 0
    elapsed: float = 0.0
    latency_us: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.kills == self.config.kills

    @property
    def cycles_per_second(self) -> float:
        return self.kills / self.elapsed if self.elapsed else 0.0

    def lines(self) -> list[str]:
        """The report as plain text, the verdict last."""
        cfg, el = self.config, self.elapsed or 1.0
        phases = ", ".join(f"{k} {v}" for k, v in sorted(self.deaths.items())) or "none"
        out = [
            f"kill test ({self.mode}, {self.core}): {cfg.workers} workers, {self.kills} "
            f"SIGKILLs 0-{cfg.max_gap * 1000:g} ms apart, a drain every {cfg.drain_every} "
            f"(seed {self.seed})",
            f"  victims' phase at death: {phases}",
            f"  OwnerDied reports {self.reports} = {self.held} kills of a holder - "
            f"{self.subsumed} of a reporter before its commit + "
            f"{self.reports - self.held + self.subsumed} of {self.window} inside "
            "acquire/release",
            f"  {self.attributed} reports for the life found inside, {self.unattributed} found "
            f"nobody ({self.heads} + <= {self.window}); {self.rollbacks} rollbacks",
            f"  counter {self.counter} {'==' if self.counter == self.committed else '!='} "
            f"committed increments {self.committed}",
            f"  {self.drains} drains passed; processes started {self.started}, "
            f"reaped {self.reaped}",
            f"  {self.elapsed:.2f} s: {self.cycles_per_second:,.0f} kill cycles/s, "
            f"{self.acquisitions:,} acquisitions ({self.acquisitions / el:,.0f}/s)",
        ]
        if lat := self.latency_us:
            out.append(
                f"  kill -> OwnerDied report: median {statistics.median(lat) / 1000:.2f} ms, "
                f"max {max(lat) / 1000:.2f} ms ({len(lat)} attributed reports)")
        out.extend(f"  FAIL {p}" for p in self.problems)
        out.append("result: PASS" if self.ok else f"result: FAIL ({len(self.problems)})")
        return out


class Controller:
    """The parent: forks, kills, reaps and respawns workers; drains; judges."""

    def __init__(self, cfg: KillConfig) -> None:
        self.cfg = cfg
        seed = cfg.seed if cfg.seed is not None else random.randrange(1 << 32)
        self.rng = random.Random(seed)
        self.arena = Arena(cfg.workers, cfg.kills + cfg.workers + CONTROLLER_LIFE + 1)
        self.next_life = CONTROLLER_LIFE + 1
        self.pids: dict[int, int] = {}  # slot -> pid
        self.lives: dict[int, int] = {}  # slot -> life
        self.dying: dict[int, int] = {}  # pid -> life, killed, not yet reaped
        self.deaths: list[tuple[int, int, int]] = []  # (life, phase, iteration) at death
        core = "C core" if type(self.arena.mutex) is not Mutex else "Python reference"
        self.report = KillReport(cfg, robust_mode(), core, seed)

    def spawn(self, slot: int) -> int:
        a, life, cfg = self.arena, self.next_life, self.cfg
        self.next_life += 1
        a.cells[a.phase + life] = STARTING
        a.cells[a.slot(slot) + S_LIFE] = life
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child (coverage does not follow it)
            codes = [70]

            def run() -> None:
                try:
                    codes[0] = a.work(slot, life, cfg)
                except BaseException:
                    traceback.print_exc()  # on the run's stderr: what the crash was
                    a.fail(F_CRASH, life, 0)

            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.nice(cfg.nice)
                t = threading.Thread(target=run)
                t.start()
                t.join()
            finally:
                os._exit(codes[0])
        self.pids[slot], self.lives[slot] = pid, life
        self.report.started += 1
        return life

    def victim(self) -> int:
        """A random worker that has started its loop (waits for one, bounded)."""
        a, end = self.arena, time.monotonic() + self.cfg.drain_timeout
        while True:
            ready = [s for s in self.pids if a.cells[a.phase + self.lives[s]] != STARTING]
            if ready or time.monotonic() > end:
                return self.rng.choice(ready or list(self.pids))
            time.sleep(0.0001)

    def kill(self, slot: int) -> None:
        """SIGKILL the worker of ``slot`` (reaped later: its phase is read then)."""
        a, life, pid = self.arena, self.lives[slot], self.pids.pop(slot)
        a.cells[a.kill_us + life] = a.now_us()
        os.kill(pid, signal.SIGKILL)
        self.dying[pid] = life
        self.report.kills += 1

    def reap(self, block: bool) -> None:
        """Reap killed workers (all if ``block``), recording their phase at death."""
        a = self.arena
        for pid, life in list(self.dying.items()):
            got, status = os.waitpid(pid, 0 if block else os.WNOHANG)
            if got:
                del self.dying[pid]
                self.report.reaped += 1
                if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
                    self.report.problems.append(f"life {life} exited ({status:#x}) before "
                                                "its kill")
                self.deaths.append((life, a.cells[a.phase + life], a.cells[a.iter + life]))

    def quiet(self) -> None:
        """Let every worker start, then run for a few ms without kills: waiters that no
        release wakes accumulate (frequent kills would heal them: a killed waiter's
        pending op wakes another on a free word); a drain right after a kill instead
        catches a wakeup lost by the kill before contention heals it."""
        a, end = self.arena, time.monotonic() + self.cfg.drain_timeout
        while time.monotonic() < end and any(
                a.cells[a.phase + self.lives[s]] == STARTING for s in self.pids):
            time.sleep(0.0002)
        time.sleep(0.005)

    def drain(self, final: bool = False) -> bool:
        """Park every worker outside the lock (each waiter must get it alone within the
        bound), settle the lock, check the shared state, let them go on (unless
        ``final``: they stay parked); False on a problem."""
        a, c = self.arena, self.arena.cells
        epoch = self.report.drains + 1
        a.drain.store(epoch)
        end = time.monotonic() + self.cfg.drain_timeout
        while late := [s for s in self.pids if c[a.slot(s) + S_PARKED] != epoch]:
            for s in late:
                if (got := os.waitpid(self.pids[s], os.WNOHANG))[0]:
                    self.report.reaped += 1
                    del self.pids[s]
                    self.report.problems.append(f"worker life {self.lives[s]} exited by "
                                                f"itself ({got[1]:#x})")
                    return False
            if time.monotonic() > end:
                life, st = self.lives[late[0]], a.mutex.statistics()
                self.report.problems.append(
                    f"drain {epoch}: worker life {life} ({PHASES[c[a.phase + life]]}) did "
                    f"not get the lock alone within {self.cfg.drain_timeout:g} s: a hang "
                    f"(lock owner {st.owner}, waiters bit {st.waiters}, inconsistent "
                    f"{st.inconsistent})")
                return False
            time.sleep(0.0002)
        self.reap(True)
        self.settle(f"drain {epoch}")
        self.report.drains += 1
        if not final:
            a.drain.store(0)
            a.drain.wake(ALL)
        return not self.report.problems

    def settle(self, when: str) -> None:
        """Take the lock once (reporting a dead holder); check the shared state."""
        a, c, m = self.arena, self.arena.cells, self.arena.mutex
        try:
            died = False
            if not m.acquire(True, self.cfg.drain_timeout):
                self.report.problems.append(f"{when}: the lock stayed held (a hang)")
                return
        except OwnerDied:
            died = True
        try:  # never leave the node linked on this thread's robust list
            a.section(self.cfg.workers, CONTROLLER_LIFE, died)
        finally:
            c[INSIDE] = 0
            m.release()
        if a.committed() != c[COUNTER] or c[J_STATE] != _CLEAN:
            self.report.problems.append(f"{when}: counter {c[COUNTER]} != committed "
                                        f"{a.committed()} (journal state {c[J_STATE]})")
        if (failure := a.failure()) is not None:
            self.report.problems.append(f"{when}: {failure}")

    def stop(self) -> None:
        """SIGKILL and reap every worker (not judged: parked after the last drain, or the
        run is over) and the victims not reaped yet."""
        for pid in self.pids.values():
            os.kill(pid, signal.SIGKILL)
        for pid in self.pids.values():
            os.waitpid(pid, 0)
            self.report.reaped += 1
        self.pids.clear()
        self.reap(True)

    def judge(self) -> None:
        """Check the accounting (the module docstring says what)."""
        a, c, r = self.arena, self.arena.cells, self.report
        r.counter, r.committed = c[COUNTER], a.committed()
        r.reports, r.unattributed, r.rollbacks = c[REPORTS], c[UNATTRIBUTED], c[ROLLBACKS]
        r.acquisitions = sum(c[a.slot(s) + S_OPS] for s in range(self.cfg.workers))
        bad = r.problems.append
        for life, phase, it in self.deaths:
            name, n, committed = PHASES[phase], c[a.rep + life], c[a.txn + life] == it
            r.deaths[name] += 1
            r.held += phase in HOLDING
            r.window += phase in WINDOW
            if n:
                r.latency_us.append(c[a.lat_us + life])
            if n > 1 or (n and phase not in HOLDING | WINDOW):
                bad(f"life {life} (killed {name}) was reported {n} time(s)")
            elif phase in HOLDING and committed and n != 1:
                bad(f"life {life} killed {name} after its commit was never reported")
            elif phase == HELD and not committed:
                bad(f"life {life} killed {name}: its committed transaction was undone")
            elif phase in HOLDING and not committed:
                r.heads += phase != TAKEN_OD
                r.subsumed += phase == TAKEN_OD
        dead = {life for life, _, _ in self.deaths}
        r.attributed = sum(c[a.rep + life] for life in range(a.lives))
        if alive := [life for life in range(a.lives) if c[a.rep + life] and life not in dead]:
            bad(f"lives {alive[:5]} were reported dead but were never killed")
        if r.reports != r.attributed + r.unattributed:
            bad(f"reports {r.reports} != {r.attributed} + {r.unattributed}")
        if not 0 <= r.reports - (r.held - r.subsumed) <= r.window:
            bad(f"{r.reports} reports for {r.held} kills of a holder ({r.subsumed} of a "
                f"reporter before its commit; {r.window} kills inside acquire/release): a "
                "death reported twice or not at all")
        if not r.heads <= r.unattributed <= r.heads + r.window:
            bad(f"{r.unattributed} reports found nobody inside; expected {r.heads} (kills "
                f"after a normal take, before its commit) + up to {r.window}")
        if r.counter != r.committed:
            bad(f"counter {r.counter} != committed increments {r.committed}")
        if r.started != r.reaped or self.pids or self.dying:
            bad(f"stray processes: {r.started} started, {r.reaped} reaped")


def run_kill_test(
    config: KillConfig | None = None,
    on_progress: Callable[[int, float], None] | None = None,
) -> KillReport:
    """Run the kill test (see the module docstring); ``on_progress(kills, elapsed)`` is
    called about twice a second."""
    cfg = config if config is not None else KillConfig()
    ctl = Controller(cfg)
    start = time.monotonic()
    next_note = start + 0.5
    try:
        for s in range(cfg.workers):
            ctl.spawn(s)
        healthy, due = True, start
        while ctl.report.kills < cfg.kills and healthy:
            due = max(due + ctl.rng.uniform(0, cfg.max_gap), time.monotonic())
            slot = ctl.victim()
            time.sleep(max(0.0, due - time.monotonic()))
            ctl.kill(slot)
            ctl.spawn(slot)
            ctl.reap(False)
            if cfg.drain_every and ctl.report.kills % cfg.drain_every == 0:
                if ctl.report.drains % 2:  # every other drain: after a kill-free moment
                    ctl.quiet()
                healthy = ctl.drain()
            if on_progress is not None and time.monotonic() >= next_note:
                next_note = time.monotonic() + 0.5
                on_progress(ctl.report.kills, time.monotonic() - start)
        if healthy:
            ctl.drain(final=True)
    finally:
        ctl.stop()
        ctl.report.elapsed = time.monotonic() - start
    ctl.judge()
    ctl.arena.close()
    return ctl.report


def main(argv: list[str] | None = None) -> int:
    """``python -m futex.sync.killtest [--kills N] [--workers N] [--max-gap MS]
    [--drain-every N] [--seed S]``: run it, print the report; status 0 iff it passed."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m futex.sync.killtest")
    for name in ("kills", "workers", "max-gap", "drain-every", "seed"):
        p.add_argument(f"--{name}", type=float if name == "max-gap" else int)
    opts = {k: v for k, v in vars(p.parse_args(argv)).items() if v is not None}
    if "max_gap" in opts:
        opts["max_gap"] /= 1000
    try:
        cfg = KillConfig(**opts)
    except ValueError as exc:
        p.error(str(exc))
    report = run_kill_test(cfg)
    print("\n".join(report.lines()), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
