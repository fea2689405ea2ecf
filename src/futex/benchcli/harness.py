"""Configuration, rows, timing loops and forked workers of ``python -m futex bench``.

Timing: ``time.perf_counter_ns`` around a batch of operations, divided by the batch.  In one
process, figures that are compared are sampled round-robin (the order rotating each round),
after one untimed warm-up run each, with the cyclic GC off; a sample during which the thread
was off the CPU (thread CPU time below 90% of wall time: the machine is shared) is retaken
up to :data:`RETRIES` times.

Two-process figures run in forked workers (:class:`Procs`): each worker sets itself up, says
``ready``, and blocks until the parent lets all of them go together; it times its own loop
(``time.monotonic_ns``: CLOCK_MONOTONIC is the same clock in every process) and sends the
figures back over a pipe.  Workers block without timeouts inside the timed loops (a timeout
would change the path measured), so the parent bounds every trial: past its deadline it
SIGKILLs the workers.  Whatever happens, every child is killed if still alive and reaped
before :class:`Procs` returns.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "FULL",
    "QUICK",
    "RETRIES",
    "BenchFailure",
    "Config",
    "Ctl",
    "Kid",
    "Procs",
    "Row",
    "Runner",
    "Target",
    "allowed_cpus",
    "interleaved",
    "close_quietly",
    "log",
    "median",
    "pair_loop",
    "percentile",
    "wait_sleeping",
    "with_loop",
]

#: Retakes of a sample taken while the thread was descheduled.
RETRIES = 4
#: A sample counts if the thread was on the CPU for this share of its wall time.
MIN_ON_CPU = 0.9

_T0 = time.perf_counter()


def log(msg: str) -> None:
    """Progress on standard error (the table goes to standard output)."""
    print(f"[{time.perf_counter() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


class BenchFailure(RuntimeError):
    """A trial did not complete as it must (a worker failed, timed out, or a check failed)."""


# -- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """Counts of one run; :data:`FULL`, :data:`QUICK`, and :meth:`scaled` for smoke runs."""

    quick: bool
    repeats: int  # samples per one-process figure
    pair_n: int  # operations per one-process sample
    trials: int  # forked trials per two-process figure
    counter_n: int  # lock/increment/unlock per process (counter, RWLock)
    rounds: int  # round trips per ping-pong / condition trial
    warmup: int  # untimed round trips before them
    items: int  # items per producer/consumer trial
    recover_k: int  # holder-killed runs of futex.sync.Mutex (and of the C floor)
    never_after: float = 0.2  # seconds a peer's waiter tries before "never"
    trial_timeout: float = 60.0  # seconds before a trial's workers are killed
    scale: float = 1.0

    def scaled(self, factor: float) -> Config:
        """Every count times ``factor`` (at least 1; trials and samples kept >= 1 and 3)."""

        def s(n: int, low: int = 1) -> int:
            return max(low, round(n * factor))

        return replace(
            self,
            repeats=s(self.repeats, 3) if factor < 1 else self.repeats,
            pair_n=s(self.pair_n, 10),
            trials=min(self.trials, s(self.trials)),
            counter_n=s(self.counter_n, 10),
            rounds=s(self.rounds, 10),
            warmup=s(self.warmup),
            items=s(self.items, 10),
            recover_k=s(self.recover_k),
            scale=self.scale * factor,
        )


FULL = Config(
    quick=False,
    repeats=15,
    pair_n=200_000,
    trials=5,
    counter_n=200_000,
    rounds=10_000,
    warmup=1_000,
    items=100_000,
    recover_k=31,
)
QUICK = Config(
    quick=True,
    repeats=7,
    pair_n=50_000,
    trials=3,
    counter_n=100_000,
    rounds=4_000,
    warmup=400,
    items=50_000,
    recover_k=11,
)


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (all of them where affinity is not available)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return list(range(os.cpu_count() or 1))


# -- a row of the report --------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A goal beside a row: ``ratio`` (or the row's ``value``) ``op`` ``limit``."""

    op: str  # "<=", ">=" or "<"
    limit: float
    on: str = "ratio"  # "ratio" or "value"
    text: str = ""
    #: The baseline the goal is stated against, when the row may fall back to another.
    against: str | None = None

    def met(self, row: Row) -> bool | None:
        if self.against is not None and row.baseline != self.against:
            return None
        got = row.ratio if self.on == "ratio" else row.value
        if got is None:
            return None
        if self.op == "<=":
            return got <= self.limit
        if self.op == ">=":
            return got >= self.limit
        return got < self.limit

    def label(self) -> str:
        if self.text:
            return self.text
        return f"{self.op} {self.limit:g}x" if self.on == "ratio" else f"{self.op} {self.limit:g}"


@dataclass
class Row:
    """One figure of the report.  ``value`` is in ``unit``; ``status`` says why there is no
    value ("not installed", "not available: ...", "failed: ...", "never (...)") or qualifies
    it; ``baseline`` names the row of the same section the ratio is against."""

    section: str
    name: str
    unit: str
    value: float | None = None
    status: str = ""
    baseline: str | None = None
    #: The baseline to use when ``baseline``'s row has no figure (e.g. not installed).
    fallback: str | None = None
    higher_is_better: bool = False
    target: Target | None = None
    samples: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    ratio: float | None = None
    target_status: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "value": None if self.value is None else round(self.value, 4),
            "unit": self.unit,
            "status": self.status,
            "baseline": self.baseline,
            "ratio": None if self.ratio is None else round(self.ratio, 4),
            "higher_is_better": self.higher_is_better,
            "target": None if self.target is None else self.target.label(),
            "target_met": self.target_status or None,
            "samples": [round(s, 4) for s in self.samples],
            **({"extra": self.extra} if self.extra else {}),
        }


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, linear between ranks."""
    v = sorted(values)
    if not v:
        raise ValueError("percentile of no values")
    pos = (len(v) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


# -- one-process timing loops ---------------------------------------------------------------

#: A timed body: runs one batch of operations.
Runner = Callable[[], None]


def pair_loop(acquire: Callable[[], object], release: Callable[[], object], n: int) -> Runner:
    """``n`` times ``acquire(); release()``."""
    rng = range(n)

    def run() -> None:
        for _ in rng:
            acquire()
            release()

    return run


def with_loop(make: Callable[[], Any], n: int) -> Runner:
    """``n`` times ``with make(): pass`` (``make`` returns the context manager each time: the
    lock itself, or ``rw.read_lock()``)."""
    rng = range(n)

    def run() -> None:
        for _ in rng:
            with make():
                pass

    return run


def _timed(run: Runner) -> tuple[int, int]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        run()
        t1 = time.perf_counter_ns()
        c1 = time.thread_time_ns()
        return t1 - t0, c1 - c0
    finally:
        if enabled:
            gc.enable()


def interleaved(runners: dict[str, tuple[Runner, int]], repeats: int) -> dict[str, list[float]]:
    """ns per operation of every runner ``(run, ops)``, ``repeats`` samples each, taken
    round-robin after one warm-up run each (see the module doc)."""
    names = list(runners)
    for name in names:
        runners[name][0]()
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            run, ops = runners[name]
            best: tuple[float, int] = (-1.0, 0)
            for _ in range(RETRIES + 1):
                wall, cpu = _timed(run)
                share = cpu / wall if wall else 1.0
                if share > best[0]:
                    best = (share, wall)
                if share >= MIN_ON_CPU:
                    break
            out[name].append(best[1] / ops)
    return out


# -- forked workers -------------------------------------------------------------------------


class Ctl:
    """A worker's side of its pipes: ``say`` a line to the parent, ``wait_go`` until the
    parent lets the workers go."""

    def __init__(self, wfd: int, gofd: int) -> None:
        self._wfd = wfd
        self._gofd = gofd

    def say(self, line: str) -> None:
        os.write(self._wfd, (line + "\n").encode())

    def wait_go(self) -> None:
        if os.read(self._gofd, 1) != b"g":
            raise BenchFailure("the parent went away before the start")

    def ready_go(self) -> None:
        """Say ``ready``, then wait for the start."""
        self.say("ready")
        self.wait_go()


#: A worker's body: runs in the child, returns its figures (JSON-able).
Body = Callable[[Ctl], Any]


class Kid:
    """The parent's side of one forked worker."""

    def __init__(self, procs: Procs, pid: int, rfd: int, gofd: int) -> None:
        self.procs = procs
        self.pid = pid
        self.rfd = rfd
        self.gofd = gofd
        self.buf = b""
        self.status: int | None = None

    def recv(self) -> str:
        """The worker's next line; :class:`BenchFailure` on its error, exit, or the
        trial's deadline."""
        while b"\n" not in self.buf:
            left = self.procs.deadline - time.monotonic()
            if left <= 0:
                raise BenchFailure(f"timed out after {self.procs.timeout:g} s")
            ready, _, _ = select.select([self.rfd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                raise BenchFailure(f"worker {self.pid} exited before answering")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        text = line.decode()
        if text.startswith("error "):
            raise BenchFailure(text[6:])
        return text

    def expect(self, word: str) -> None:
        got = self.recv()
        if got != word:
            raise BenchFailure(f"worker said {got!r}, expected {word!r}")

    def go(self) -> None:
        os.write(self.gofd, b"g")

    def result(self) -> Any:
        got = self.recv()
        if not got.startswith("result "):
            raise BenchFailure(f"worker said {got!r}, expected its result")
        return json.loads(got[7:])

    def reap(self, block: bool) -> bool:
        if self.status is not None:
            return True
        pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        self.status = status
        return True


class Procs:
    """Forked workers of one trial: ``spawn`` them, talk to them through :class:`Kid`;
    leaving the ``with`` block waits (until the deadline) for them to exit, then kills and
    reaps whatever is left, and closes every descriptor."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.kids: list[Kid] = []

    def __enter__(self) -> Procs:
        return self

    def spawn(self, body: Body, cpus: set[int] | None = None) -> Kid:
        rfd, wfd = os.pipe()
        gor, gow = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            _child(
                body, wfd, gor, cpus, [gow, rfd] + [fd for k in self.kids for fd in (k.rfd, k.gofd)]
            )
        os.close(wfd)
        os.close(gor)
        kid = Kid(self, pid, rfd, gow)
        self.kids.append(kid)
        return kid

    def start(self, bodies: list[Body], cpus: set[int] | None = None) -> list[Any]:
        """Spawn one worker per body, let them go together once all are ready, return
        their results in order."""
        kids = [self.spawn(b, cpus) for b in bodies]
        for k in kids:
            k.expect("ready")
        for k in kids:
            k.go()
        return [k.result() for k in kids]

    def __exit__(self, *exc: object) -> None:
        try:
            for k in self.kids:  # after an error (or Ctrl-C) no waiting: kill at once
                while exc[0] is None and not k.reap(block=False):
                    if time.monotonic() >= self.deadline:
                        break
                    time.sleep(0.001)
        finally:
            for k in self.kids:
                if k.status is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(k.pid, signal.SIGKILL)
                    k.reap(block=True)
                os.close(k.rfd)
                os.close(k.gofd)
        failed = [k for k in self.kids if k.status is not None and k.status != 0]
        if (
            failed
            and exc[0] is None
            and not all(
                os.WIFSIGNALED(k.status or 0) and os.WTERMSIG(k.status or 0) == signal.SIGKILL
                for k in failed
            )
        ):
            codes = ", ".join(str(os.waitstatus_to_exitcode(k.status or 0)) for k in failed)
            raise BenchFailure(f"a worker exited with status {codes}")


def _child(body: Body, wfd: int, gofd: int, cpus: set[int] | None, others: list[int]) -> None:
    """The forked worker: never returns."""
    code = 1
    try:
        for fd in others:
            os.close(fd)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        gc.disable()
        ctl = Ctl(wfd, gofd)
        out = body(ctl)
        ctl.say("result " + json.dumps(out))
        code = 0
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(wfd, f"error {type(exc).__name__}: {exc}\n".encode())
    finally:
        os._exit(code)


def wait_sleeping(pid: int, timeout: float = 1.0) -> bool:
    """Poll until process ``pid`` is asleep (state S in ``/proc/PID/stat``); ``False`` if
    that cannot be read or did not happen within ``timeout`` (then a 10 ms pause)."""
    end = time.monotonic() + timeout
    path = f"/proc/{pid}/stat"
    while time.monotonic() < end:
        try:
            with open(path) as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            break
        if state == "S":
            return True
        time.sleep(0.0002)
    time.sleep(0.01)
    return False


def median(values: list[float]) -> float:
    return statistics.median(values)


def close_quietly(obj: Any) -> None:
    """``obj.close()`` if it has one; errors ignored (cleanup after the figures)."""
    close = getattr(obj, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()
