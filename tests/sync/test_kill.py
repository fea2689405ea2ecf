"""Kill tests of futex.sync.Mutex (issue 13; sync_design §5 "Kill the holder at each step"
and §8 "Pitfalls measured under repeated SIGKILL").

Emulated kernel: the victim task dies (``task.exit()``: the kernel's robust-list walk) at
*every* step of its acquire and release — before the CAS, after the CAS before linking,
mid-link, holding, mid-unlink, after the release CAS/swap before ``list_op_pending`` is
cleared, and as a just-woken waiter.  A wrapper around the victim's region counts its
atomics and memory writes and raises a private exception before the k-th (every later
one raises too: a dead task does nothing more).  The next acquirer must get
:class:`OwnerDied` exactly when the victim's TID was in the word, and nobody may sleep
forever.

Host kernel: :mod:`futex.sync.killtest` — 10,000 SIGKILLs of worker processes at random
moments, a journaled counter, drains (the acceptance test of issue 13), plus negative
controls showing the engine catches an unreported death and glibc's lost wakeup.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from futex.kernel import ManualClock
from futex.linux import LinuxKernel, Process, Task
from futex.sync import Mutex, OwnerDied, robust_mode
from futex.sync.emulated import EmulatedOwner, Memory, bind, owner_of
from futex.sync.killtest import KillConfig, run_kill_test
from futex.sync.mutex import TID_MASK, W
from futex.sync.owner import ROBUST_LIST
from futex.sync.region import Region
from tests.support import STATE_TIMEOUT, wait_until

WORD = 16  # the lock word's offset in a Mutex


# -- the emulated victim: a region whose k-th step kills its task ----------------------------


class _Killed(BaseException):
    """The victim's task dies here (a BaseException: no ``except Exception`` stops it)."""


@dataclass
class Steps:
    """Counts the victim's steps; raises :class:`_Killed` before step ``kill_at``."""

    tid: int
    kill_at: int | None = None
    trace: list[str] = field(default_factory=list)
    dead: bool = False
    #: Whether the victim's own atomics left its TID in the word (the oracle).
    holds: bool = False
    #: If set, the victim stops at its kill point (``reached`` is set) until ``go`` is.
    go: threading.Event | None = None
    reached: threading.Event = field(default_factory=threading.Event)

    def step(self, what: str) -> None:
        if self.dead or len(self.trace) == self.kill_at:
            if not self.dead and self.go is not None:
                self.reached.set()
                self.go.wait(STATE_TIMEOUT)
            self.dead = True
            raise _Killed(what)
        self.trace.append(what)


class StepWord:
    """The victim's lock word: every atomic and futex call is a step."""

    def __init__(self, inner: Any, steps: Steps) -> None:
        self.inner, self.steps = inner, steps

    @property
    def private(self) -> bool:
        return bool(self.inner.private)

    def load(self) -> int:
        self.steps.step("load")
        return int(self.inner.load())

    def store(self, value: int) -> None:
        self.steps.step(f"store {value:#x}")
        self.inner.store(value)
        self.steps.holds = value & TID_MASK == self.steps.tid

    def cas(self, expected: int, new: int) -> int:
        self.steps.step(f"cas {expected:#x}->{new:#x}")
        old = int(self.inner.cas(expected, new))
        if old == expected:
            self.steps.holds = new & TID_MASK == self.steps.tid
        return old

    def swap(self, value: int) -> int:
        self.steps.step(f"swap {value:#x}")
        old = int(self.inner.swap(value))
        self.steps.holds = value & TID_MASK == self.steps.tid
        return old

    def wake(self, n: int = 1) -> int:
        self.steps.step(f"wake {n}")
        return int(self.inner.wake(n))

    def wait(self, expected: int, timeout: float | None = None) -> bool:
        self.steps.step(f"wait {expected:#x}")
        return bool(self.inner.wait(expected, timeout))


class StepOwner(EmulatedOwner):
    """The victim's robust list: each write (pending, link, unlink) is a step."""

    def __init__(self, real: EmulatedOwner, steps: Steps) -> None:
        super().__init__(real.task, mode=real.mode)
        self._head, self._held, self.steps = real._head, real._held, steps

    def _wr(self, addr: int, value: int) -> None:
        self.steps.step(f"list {addr - self._head:+#x} = {value:#x}")
        super()._wr(addr, value)


class StepRegion(Region):
    """The victim Mutex's region: its words, owner and plain writes go through steps."""

    kernel = "emulated"

    def __init__(self, inner: Any, steps: Steps) -> None:
        self.inner, self.steps, self.size = inner, steps, inner.size

    def word(self, off: int) -> Any:
        return StepWord(self.inner.word(off), self.steps)

    def address(self, off: int) -> int:
        return int(self.inner.address(off))

    def read(self, off: int, n: int) -> bytes:
        return bytes(self.inner.read(off, n))

    def write(self, off: int, data: bytes) -> None:
        self.steps.step(f"write +{off}")
        self.inner.write(off, data)

    def owner(self) -> EmulatedOwner:
        return StepOwner(self.inner.owner(), self.steps)

    @property
    def monotonic(self) -> Callable[[], float]:
        clock: Callable[[], float] = self.inner.monotonic
        return clock


@dataclass
class World:
    """One emulated kernel: the victim task in a forked process sharing the lock's page,
    two tasks of the parent, each with its own Mutex object on the same memory."""

    kernel: LinuxKernel
    parent: Process
    victim: Task
    b: Task
    c: Task
    steps: Steps
    mv: Mutex  # the victim's (stepped)
    mb: Mutex
    mc: Mutex
    addr: int

    @property
    def word(self) -> int:
        return self.parent.load_u32(self.addr + WORD)

    def queued(self, task: Task) -> bool:
        if task.blocked is None:
            return False
        qs = self.parent.futex.queues().values()
        return any(w.owner is task for ws in qs for w in ws)


def make_world(kill_at: int | None) -> World:
    kernel = LinuxKernel(clock=ManualClock())
    parent = kernel.new_process()
    addr = parent.mmap(4096, shared=True)
    child = parent.fork()
    victim, b, c = child.new_task(), parent.new_task(), parent.new_task()
    with bind(b):
        mb = Mutex.create(Memory(parent, addr, 4096))
    with bind(c):
        mc = Mutex.attach(Memory(parent, addr, 4096))
    steps = Steps(victim.tid, kill_at)
    with bind(victim):
        mv = Mutex.attach(Memory(child, addr, 4096))
        assert owner_of(victim).mode == ROBUST_LIST  # registers the task's list head
        mv._region = StepRegion(mv._region, steps)
    return World(kernel, parent, victim, b, c, steps, mv, mb, mc, addr)


@contextmanager
def victim_runs(w: World) -> Iterator[None]:
    """Run the block as the victim; a :class:`_Killed` ends it with the task's exit."""
    with bind(w.victim):
        try:
            yield
        except _Killed:
            w.victim.exit()


class Acquirer:
    """An acquire (then release) on its own thread, bound to ``task``; ``outcome``:
    "taken", "died" (OwnerDied), or "killed" (the task was the victim)."""

    def __init__(self, m: Mutex, task: Task) -> None:
        self.task, self.outcome = task, ""
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(m,), daemon=True)
        self.thread.start()

    def _run(self, m: Mutex) -> None:
        with bind(self.task):
            try:
                try:
                    m.acquire()
                    self.outcome = "taken"
                except OwnerDied:
                    self.outcome = "died"
                    m.make_consistent()
                m.release()
            except _Killed:
                self.outcome = "killed"
                if self.task.alive:
                    self.task.exit()
            except BaseException as exc:  # reported by the test
                self.error = exc

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()


def asleep(w: World, a: Acquirer) -> None:
    wait_until(lambda: w.queued(a.task) or a.done, f"task {a.task.tid} sleeps on the lock")


def finish(w: World, survivor: Acquirer, others: list[Acquirer]) -> str:
    """Wait until ``survivor`` is done — or asleep with every other actor finished, so
    that no wake can come: "hang" (decided at once, no timeout needed).  Its outcome."""
    wait_until(lambda: survivor.done or (all(o.done for o in others) and w.queued(survivor.task)),
               "the survivor gets the lock, or sleeps with nobody left to wake it")
    for a in (survivor, *others):
        assert a.error is None, a.error
    if survivor.done:
        return survivor.outcome
    survivor.task.exit()  # let its thread go
    survivor.thread.join(STATE_TIMEOUT)
    return "hang"


def run_alone(w: World) -> str:
    """The victim acquires and releases, uncontended; then B tries once."""
    with victim_runs(w):
        w.mv.acquire()
        w.mv.release()
    with bind(w.b):
        try:
            got = w.mb.acquire(blocking=False)
        except OwnerDied:
            w.mb.make_consistent()
            w.mb.release()
            return "died"
        assert got, f"the lock stays held by a dead task: word {w.word:#x} (B would hang)"
        w.mb.release()
    return "taken"


def run_holder(w: World) -> str:
    """The victim takes the lock, C sleeps on it, the victim releases."""
    c = None
    with victim_runs(w):
        w.mv.acquire()
        c = Acquirer(w.mc, w.c)
        asleep(w, c)
        w.mv.release()
    return finish(w, c if c is not None else Acquirer(w.mc, w.c), [])


def b_holds_two_sleep(w: World) -> tuple[Acquirer, Acquirer]:
    """B takes the lock; the victim, then C, sleep on it: their acquirers."""
    with bind(w.b):
        w.mb.acquire()
    v = Acquirer(w.mv, w.victim)
    asleep(w, v)
    c = Acquirer(w.mc, w.c)
    asleep(w, c)
    return v, c


def run_woken(w: World) -> str:
    """B holds; the victim, then C, sleep on the lock; B's release wakes the victim."""
    v, c = b_holds_two_sleep(w)
    with bind(w.b):
        w.mb.release()
    return finish(w, c, [v])


def run_retaken(w: World) -> str:
    """sync_design §8 (glibc's lost wakeup): B holds, the victim and C sleep; B's release
    wakes the victim, B takes the lock again through the fast path, *then* the woken
    victim dies (before taking the word), then B releases.  C must get the lock."""
    assert w.steps.kill_at is not None
    w.steps.go = threading.Event()
    v, c = b_holds_two_sleep(w)
    with bind(w.b):
        w.mb.release()
        wait_until(w.steps.reached.is_set, "the woken victim reaches its kill point")
        assert w.mb.acquire(blocking=False), hex(w.word)
        w.steps.go.set()
        wait_until(lambda: v.done, "the victim has died")
        w.mb.release()
    return finish(w, c, [v])


def glibc_release(self: Mutex) -> None:
    """pthread_mutex_unlock of a robust non-PI mutex (glibc nptl/pthread_mutex_unlock.c):
    exchange the word with 0 and wake one if WAITERS was set — no W kept in the free
    word.  A broken variant for the negative controls."""
    r, node = self._region, self._node
    word, own = r.word(WORD), r.owner()
    own.pending(node)
    own.unlink(node, self)
    if word.swap(0) & W:
        word.wake(1)
    own.pending(0)


def expect(w: World, outcome: str) -> None:
    """OwnerDied exactly when the victim died with its TID in the word; afterwards the
    lock is free and nobody is queued."""
    want = "died" if w.steps.dead and w.steps.holds else "taken"
    assert outcome == want, (w.steps.kill_at, w.steps.trace, outcome)
    assert w.word in (0, W), hex(w.word)
    assert w.parent.futex.stats().queued == 0
    w.parent.futex.check_invariants()


SCENARIOS = {"alone": run_alone, "holder": run_holder, "woken-waiter": run_woken}


@pytest.mark.parametrize("name", SCENARIOS)
def test_emulated_kill_at_every_step(name: str) -> None:
    """sync_design §5: kill the victim before each of its steps (k = 0 .. all); the next
    acquirer gets OwnerDied exactly when the victim's own atomics had put its TID in the
    word (taken and not yet given back), and never sleeps forever."""
    run = SCENARIOS[name]
    dry = make_world(None)
    assert run(dry) == "taken"
    trace = dry.steps.trace
    kinds = {t.split()[0] for t in trace}
    assert {"load", "cas", "list"} <= kinds, trace
    outcomes: dict[int, str] = {}
    for k in range(len(trace) + 1):
        w = make_world(k)
        outcomes[k] = run(w)
        assert outcomes[k] != "hang", (k, trace[k:k + 1], w.steps.trace, hex(w.word))
        expect(w, outcomes[k])
    died = [k for k, o in outcomes.items() if o == "died"]
    # the victim held the word over one unbroken run of steps: from the step after its
    # taking CAS through the step that gives it back (the release's CAS or swap)
    assert died and died == list(range(died[0], died[-1] + 1)), outcomes
    assert trace[died[0] - 1].startswith("cas"), (died[0], trace)
    assert trace[died[-1]].split()[0] in ("cas", "swap"), (died[-1], trace)
    # among the kills that left OwnerDied: right after the CAS (before linking: only
    # list_op_pending names the node), mid-link, holding, mid-unlink
    listed = [k for k in died if trace[k].startswith("list")]
    assert died[0] in listed and len(listed) >= 6, (died, trace)
    # a kill right after giving the word back (before pending is cleared): no OwnerDied
    assert outcomes[died[-1] + 1] == "taken"


def woken_not_taken(dry: World) -> list[int]:
    """The kill points of a woken waiter before its taking CAS (after its wait)."""
    t = dry.steps.trace
    woke = max(i for i, s in enumerate(t) if s.startswith("wait")) + 1
    take = next(i for i in range(woke, len(t)) if t[i].startswith("cas"))
    return list(range(woke, take + 1))


def test_emulated_woken_waiter_killed_while_the_lock_is_retaken() -> None:
    """sync_design §8: glibc's robust mutex loses this wakeup; keeping W in the free word
    makes B's re-take keep W, so its next release wakes C."""
    dry = make_world(None)
    run_woken(dry)
    points = woken_not_taken(dry)
    steps = [dry.steps.trace[k].split()[0] for k in points]
    assert "load" in steps and steps[-1] == "cas", (points, dry.steps.trace)
    for k in points:
        w = make_world(k)
        outcome = run_retaken(w)
        assert outcome == "taken", (k, w.steps.trace, outcome, hex(w.word))
        expect(w, outcome)


def test_emulated_glibc_release_loses_the_wakeup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: with glibc's release (free word 0) the same scenario leaves C
    asleep with the lock free — the harness sees the hang."""
    dry = make_world(None)
    run_woken(dry)
    k = woken_not_taken(dry)[0]
    monkeypatch.setattr(Mutex, "release", glibc_release)
    w = make_world(k)
    assert run_retaken(w) == "hang"
    assert w.word == 0


def test_emulated_kill_while_asleep() -> None:
    """A waiter killed while asleep in FUTEX_WAIT: the holder's release wakes the next."""
    w = make_world(None)
    v, c = b_holds_two_sleep(w)
    w.steps.dead = True  # the victim's thread does nothing more once its wait ends
    w.victim.exit()
    wait_until(lambda: v.done, "the victim's thread ends")
    with bind(w.b):
        w.mb.release()
    assert finish(w, c, [v]) == "taken"
    expect(w, "taken")


def test_emulated_kill_without_list_op_pending_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control (sync_design §5, broken variant 3): a robust lock that never sets
    list_op_pending leaves a victim killed between its CAS and its link holding the word
    for ever (no walk finds it): the next acquirer is told the lock is held."""
    monkeypatch.setattr(EmulatedOwner, "pending", lambda self, node: None)
    dry = make_world(None)
    run_alone(dry)
    take = next(i for i, s in enumerate(dry.steps.trace) if s.startswith("cas"))
    w = make_world(take + 1)
    with pytest.raises(AssertionError, match="held by a dead task"):
        run_alone(w)


# -- the host kernel: SIGKILLed worker processes ---------------------------------------------

#: The acceptance figure of issue 13; FUTEX_KILL_CYCLES overrides it (e.g. 1000 locally).
KILL_CYCLES = int(os.environ.get("FUTEX_KILL_CYCLES", "10000"))
needs_robust_list = pytest.mark.skipif(
    robust_mode() != ROBUST_LIST,
    reason="futex.sync.robust_mode() is pid-liveness here (no glibc robust list head, a "
    "foreign one, or get_robust_list refused): the kernel does not wake a dead holder's "
    "waiter",
)


def run_cli(*args: str, env: dict[str, str] | None = None) -> str:
    """``python -m futex.sync.killtest ARGS`` in a fresh interpreter (forking a small
    process per kill is twice as fast as forking pytest's); its report, which passed."""
    out = subprocess.run([sys.executable, "-m", "futex.sync.killtest", *args],
                         env=env, capture_output=True, text=True, timeout=900)
    print(out.stdout)
    assert out.returncode == 0 and out.stdout.rstrip().endswith("result: PASS"), (
        out.stdout + out.stderr)
    return out.stdout


def figure(text: str, pattern: str) -> list[int]:
    m = re.search(pattern, text)
    assert m is not None, (pattern, text)
    return [int(x) for x in m.groups()]


@needs_robust_list
def test_kill_cycles() -> None:
    """Issue 13's acceptance test: 10,000 cycles of a holder killed at a random point inside
    or around its critical section, across processes, with a shared counter — never a hang
    (every drain passed), never a double count (counter == committed increments), every
    death reported to exactly one acquirer (judged per victim against its phase word)."""
    out = run_cli("--kills", str(KILL_CYCLES))
    assert "(robust-list, C core)" in out or "(robust-list, Python reference)" in out
    counter, committed = figure(out, r"counter (\d+) == committed increments (\d+)")
    assert counter == committed > 0
    drains, started, reaped = figure(out, r"(\d+) drains passed; processes started (\d+), "
                                          r"reaped (\d+)")
    assert drains == KILL_CYCLES // 25 + 1 and started == reaped == KILL_CYCLES + 3
    if KILL_CYCLES >= 1000:  # the kills did land on holders, and their deaths were reported
        reports, held = figure(out, r"OwnerDied reports (\d+) = (\d+) kills of a holder")
        assert reports > 0 and held > 0
        assert figure(out, r"(\d+) rollbacks")[0] > 0


@needs_robust_list
def test_kill_cycles_catch_an_unreported_death(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: a lock that takes a dead holder's word without raising OwnerDied
    (the hook made consistent and silent) fails the kill test — a normal acquire finds
    the dead holder's mark or open journal."""
    monkeypatch.setattr(Mutex, "_owner_died", lambda self: self.make_consistent())
    report = run_kill_test(KillConfig(kills=300, drain_every=25))
    assert not report.ok
    assert any("a death not reported" in p for p in report.problems), report.problems


@needs_robust_list
def test_kill_cycles_catch_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: a release that frees the word without ever waking a sleeper (on
    the Python reference, whose release the test can replace): the first drain finds a
    worker that cannot get the free lock — a hang, reported, and every process reaped.
    (In pid-liveness mode waiters re-read the word after every liveness slice, which
    heals a missing wake, so there is no hang to find.)"""

    def silent_release(self: Mutex) -> None:
        r, node = self._region, self._node
        own = r.owner()
        own.pending(node)
        own.unlink(node, self)
        r.word(WORD).swap(0)
        own.pending(0)

    monkeypatch.setattr(Mutex, "_impl", classmethod(lambda cls, region: cls))
    monkeypatch.setattr(Mutex, "release", silent_release)
    report = run_kill_test(KillConfig(kills=200, drain_every=20, drain_timeout=1.0))
    assert not report.ok
    assert report.core == "Python reference"
    assert any("did not get the lock alone within 1 s: a hang" in p
               for p in report.problems), report.problems
    assert report.started == report.reaped


def test_kill_cycles_pid_liveness() -> None:
    """The fallback mode (FUTEX_SYNC_ROBUST=pid: waiters check the holder's liveness every
    20 ms slice): a short run with gaps long enough for a slice, in a fresh interpreter
    (the mode is chosen once per process)."""
    out = run_cli("--kills", "150", "--max-gap", "40", "--drain-every", "25",
                  env=dict(os.environ, FUTEX_SYNC_ROBUST="pid"))
    assert "(pid-liveness, Python reference)" in out


def test_kill_config_rejects_bad_values() -> None:
    for bad in ({"workers": 0}, {"workers": 65}, {"kills": -1}, {"max_gap": -0.1},
                {"drain_timeout": 0}, {"acquire_timeout": -1}):
        with pytest.raises(ValueError):
            KillConfig(**bad)
