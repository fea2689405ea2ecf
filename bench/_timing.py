"""Measurement shared by the benchmarks: samples, the timed region, round-robin sampling.

A figure is a ``Stat``: per-operation times (ns) of its samples, in round order.  A
sample is ``perf_counter`` time of one ``run()`` divided by the operations it made, taken
with the cyclic GC off (as ``timeit`` does) unless ``--gc`` asked otherwise.  A sample
during which the thread was descheduled (its CPU time below ``MIN_ON_CPU`` of the wall
time: the machine is shared) is dropped and retaken, up to ``RETRIES`` times; after that
the least disturbed one is kept and counted as such.  ``SAMPLING`` holds the run-wide
setting and counts, which each benchmark reports.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MIN_ON_CPU",
    "RETRIES",
    "SAMPLING",
    "BenchError",
    "Runner",
    "Sampling",
    "Stat",
    "call_loop",
    "end_meta",
    "expect",
    "interleaved",
    "log",
    "paired_ratio",
    "start_meta",
    "status_line",
    "timed_ns",
]

#: A timed body: runs a batch of operations.
Runner = Callable[[], None]

#: A sample counts only if the thread was on the CPU for this share of its wall time.
MIN_ON_CPU = 0.9
#: Retakes of a disturbed sample before the least disturbed one is kept.
RETRIES = 6

_T0 = time.perf_counter()


def log(msg: str) -> None:
    """Progress on stderr (the tables go to stdout)."""
    print(f"[{time.perf_counter() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """A call under measurement did not return what the benchmark expects."""


def expect(got: object, want: object, what: str) -> None:
    if got != want:
        raise BenchError(f"{what}: got {got!r}, expected {want!r}")


@dataclass
class Sampling:
    """The run-wide setting and counts of the sampler."""

    #: Whether timed regions run with the cyclic GC off (``--gc`` turns it on).
    gc_off: bool = True
    #: Samples dropped as disturbed, and kept although disturbed, over the whole run.
    dropped: int = 0
    kept_disturbed: int = 0


SAMPLING = Sampling()


@dataclass
class Stat:
    """Per-operation times (ns) of the samples of one figure, in round order."""

    samples: list[float] = field(default_factory=list)
    #: Samples thrown away because the process was off the CPU for part of them.
    disturbed: int = 0
    #: Samples kept although disturbed (every retry was disturbed too).
    kept_disturbed: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    def as_json(self) -> dict[str, Any]:
        return {
            "median_ns": round(self.median, 2),
            "min_ns": round(self.min, 2),
            "samples_ns": [round(s, 2) for s in self.samples],
            "disturbed_samples_dropped": self.disturbed,
            "disturbed_samples_kept": self.kept_disturbed,
        }


def call_loop(f: Callable[..., object], args: tuple[int, ...], n: int) -> Runner:
    """A runner making ``n`` identical six-argument calls (a raw syscall's registers)."""
    a0, a1, a2, a3, a4, a5 = args
    rng = range(n)

    def run() -> None:
        for _ in rng:
            f(a0, a1, a2, a3, a4, a5)

    return run


def paired_ratio(a: Stat, b: Stat) -> float:
    """Median over rounds of ``a / b`` (samples taken side by side in the same round)."""
    return statistics.median(x / y for x, y in zip(a.samples, b.samples, strict=True))


def timed_ns(run: Runner, cpu_clock: Callable[[], int] = time.thread_time_ns) -> tuple[int, int]:
    """Wall and CPU time (``cpu_clock``: this thread's by default) of ``run()`` in ns,
    with the cyclic GC off unless ``SAMPLING.gc_off`` is False."""
    enabled = gc.isenabled()
    if SAMPLING.gc_off:
        gc.disable()
    try:
        c0 = cpu_clock()
        t0 = time.perf_counter_ns()
        run()
        t1 = time.perf_counter_ns()
        c1 = cpu_clock()
        return t1 - t0, c1 - c0
    finally:
        if enabled:
            gc.enable()


def _sample(
    st: Stat, run: Runner, ops: int, clock: Callable[[], int] | None, after: Callable[[], None]
) -> None:
    """One sample of ``run`` into ``st``, retaken while disturbed (see the module doc)."""
    best: tuple[float, int] | None = None  # (on-CPU share, wall) of the least bad
    for attempt in range(RETRIES + 1):
        wall, cpu = timed_ns(run, clock or time.thread_time_ns)
        after()
        share = cpu / wall if wall and clock is not None else 1.0
        if share >= MIN_ON_CPU:
            st.samples.append(wall / ops)
            return
        if best is None or share > best[0]:
            best = (share, wall)
        if attempt < RETRIES:
            st.disturbed += 1
            SAMPLING.dropped += 1
    assert best is not None
    st.kept_disturbed += 1
    SAMPLING.kept_disturbed += 1
    st.samples.append(best[1] / ops)


def interleaved(
    runners: dict[str, tuple[Runner, int]],
    repeats: int,
    between: Callable[[str], None] | None = None,
    cpu_clocks: dict[str, Callable[[], int] | None] | None = None,
) -> dict[str, Stat]:
    """Sample every runner ``repeats`` times, round-robin (rotating the order each round)
    so that drift and background load hit them alike.  Each runner is ``(run, ops)``: a
    sample is ``perf_counter time of run() / ops``.  One untimed warm-up run each comes
    first.  ``cpu_clocks`` may name another CPU clock for a runner (the process's, for
    threads that take turns on one CPU), or ``None`` for no disturbance check.
    ``between(name)`` runs untimed after each run (e.g. to restore a queue)."""
    names = list(runners)
    clocks = cpu_clocks or {}

    def after(name: str) -> Callable[[], None]:
        return (lambda: between(name)) if between is not None else (lambda: None)

    for name in names:
        runners[name][0]()
        after(name)()
    stats = {name: Stat() for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            run, ops = runners[name]
            _sample(stats[name], run, ops, clocks.get(name, time.thread_time_ns), after(name))
    return stats


# -- the run's metadata ------------------------------------------------------------------


def start_meta(quick: bool, repeats: int, **extra: Any) -> dict[str, Any]:
    """What every benchmark records of its run before measuring (``extra``: its own)."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": len(os.sched_getaffinity(0)),
        **extra,
        "mode": "quick" if quick else "full",
        "repeats": repeats,
        "load_average_at_start": os.getloadavg()[0],
        "gc_in_timed_regions": "disabled" if SAMPLING.gc_off else "enabled",
    }


def end_meta(meta: dict[str, Any]) -> None:
    """Record the load and the disturbed samples at the end of the run."""
    meta["load_average_at_end"] = os.getloadavg()[0]
    meta["disturbed_samples_dropped"] = SAMPLING.dropped
    meta["disturbed_samples_kept"] = SAMPLING.kept_disturbed
    log("done")


def status_line(meta: dict[str, Any]) -> str:
    """Load and disturbance of the run, flagged when the machine was busy."""
    start, end = meta["load_average_at_start"], meta["load_average_at_end"]
    return (
        f"load average {start:.1f} at start, {end:.1f} at end; "
        f"samples retried because the thread was descheduled: {SAMPLING.dropped:,}, "
        f"kept anyway after {RETRIES} retries: {SAMPLING.kept_disturbed:,}"
        + ("  [BUSY MACHINE: figures are noisy]" if max(start, end) > meta["cpus"] else "")
    )
