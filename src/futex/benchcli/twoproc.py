"""Sections 2-6: two forked processes on one primitive.

2. contended counter: each process locks, increments a counter in a shared page, unlocks,
   N times; both together, M ops/s (the counter is checked: a lost update fails the row);
3. ping-pong: one process posts (``release()`` / ``set()``) and waits for the other's answer;
   µs per round trip, both processes pinned to one CPU and unpinned;
4. producer/consumer: a bounded buffer of :data:`SLOTS` on two semaphores (``slots``,
   ``items``); M items/s;
5. condition round trip: each side waits (``wait(timeout)`` in a loop) until a shared turn
   word says it is its turn, flips it and ``notify()``s; µs per round trip;
6. RWLock, read-heavy: each process makes N operations, one in :data:`WRITE_EVERY` a write
   (``with rw.write_lock(): counter += 1``), the others reads (``with rw.read_lock():``);
   M ops/s, against one multiprocessing.Lock taken for both.

Each figure is the median of ``cfg.trials`` trials; the trials of a section's rows are
interleaved (round r runs every row once, the order rotating), so drift hits them alike.
"""

from __future__ import annotations

import mmap
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from futex.benchcli import peers
from futex.benchcli.cfloor import CFloor, floor_rows
from futex.benchcli.harness import (
    BenchFailure,
    Config,
    Ctl,
    Procs,
    Row,
    Target,
    allowed_cpus,
    close_quietly,
    log,
)

__all__ = ["SLOTS", "WRITE_EVERY", "bench_twoproc"]

#: Capacity of the producer/consumer buffer.
SLOTS = 64
#: One operation in this many is a write in the RWLock rows.
WRITE_EVERY = 10
#: Timeout of each condition wait (a bound; never reached when all is well).
COND_WAIT_S = 10.0

S_COUNTER = "2. contended counter, 2 processes (M ops/s, both together)"
S_PINGPONG = "3. ping-pong, 2 processes (µs per round trip)"
S_PRODCON = f"4. semaphore producer/consumer, {SLOTS} slots (M items/s)"
S_COND = "5. condition round trip, 2 processes (µs per round trip)"
S_RW = f"6. RWLock read-heavy, 2 processes, 1 write in {WRITE_EVERY} (M ops/s)"

#: One trial: the row's objects -> its figure.
Trial = Callable[[Any], float]


@dataclass
class Case:
    row: Row
    make: Callable[[], Any]
    trial: Trial
    obj: Any = None


class Shared:
    """A page of shared memory (MAP_SHARED | MAP_ANONYMOUS: forked workers share it) seen
    as 64-bit integers."""

    def __init__(self) -> None:
        self.mem = mmap.mmap(-1, mmap.PAGESIZE)
        self.q = memoryview(self.mem).cast("q")

    def close(self) -> None:
        self.q.release()
        self.mem.close()


def _span(results: list[Any]) -> int:
    """ns from the first worker's start to the last one's end (results: [t0, t1])."""
    return int(max(r[1] for r in results) - min(r[0] for r in results))


def _run_cases(cases: list[Case], trials: int) -> list[Row]:
    for c in cases:
        if c.row.status:
            continue
        try:
            c.obj = c.make()
        except Exception as exc:
            c.row.status = _why(exc)
    for t in range(trials):
        k = t % max(1, len(cases))
        for c in cases[k:] + cases[:k]:
            if c.row.status:
                continue
            try:
                c.row.samples.append(c.trial(c.obj))
            except Exception as exc:
                c.row.status = _why(exc)
    return [c.row for c in cases]


def _count_together(
    cfg: Config, ops: int, writes: int, work: Callable[[Ctl, memoryview], list[int]]
) -> float:
    """Two workers run ``work(ctl, counters)`` together on a fresh shared page, each making
    ``ops`` operations, ``writes`` of them an increment of ``counters[0]``; M ops/s of both,
    once the counter shows that no increment was lost."""
    sh = Shared()
    try:

        def body(ctl: Ctl) -> list[int]:
            return work(ctl, sh.q)

        with Procs(cfg.trial_timeout) as ps:
            res = ps.start([body, body])
        if sh.q[0] != 2 * writes:
            raise BenchFailure(f"counter {sh.q[0]}, expected {2 * writes}: lost updates")
        return 2 * ops / _span(res) * 1e3
    finally:
        sh.close()


def _why(exc: BaseException) -> str:
    if isinstance(exc, peers.Unavailable):
        return str(exc)
    if isinstance(exc, BenchFailure):
        return f"failed: {exc}"
    return f"failed: {type(exc).__name__}: {exc}"


def _sem(kind: str, value: int) -> Any:
    if kind == "futex.sync":
        return peers.sync_attr("Semaphore")(value)
    if kind == "posix_ipc":
        return peers.posix_semaphore(value)
    return peers.mp().Semaphore(value)


# -- 2. contended counter -------------------------------------------------------------------


def _counter_trial(cfg: Config) -> Trial:
    n = cfg.counter_n

    def trial(lock: Any) -> float:
        def work(ctl: Ctl, c: memoryview) -> list[int]:
            acquire, release = lock.acquire, lock.release
            ctl.ready_go()
            t0 = time.monotonic_ns()
            for _ in range(n):
                acquire()
                c[0] += 1
                release()
            return [t0, time.monotonic_ns()]

        return _count_together(cfg, n, n, work)

    return trial


def bench_counter(cfg: Config, floor: CFloor) -> list[Row]:
    log("2. two-process contended counter")
    base = "multiprocessing.Lock"
    unit: dict[str, Any] = {"unit": "M ops/s", "higher_is_better": True}
    trial = _counter_trial(cfg)
    cases = [
        Case(Row(S_COUNTER, base, **unit), peers.mp().Lock, trial),
        Case(
            Row(S_COUNTER, "futex.sync.Mutex", baseline=base, target=Target(">=", 1.3), **unit),
            lambda: peers.sync_attr("Mutex")(),
            trial,
        ),
        Case(
            Row(S_COUNTER, "posix_ipc.Semaphore", baseline=base, **unit),
            lambda: peers.posix_semaphore(1),
            trial,
        ),
    ]
    rows = _run_cases(cases, cfg.trials)
    names = {
        "robust_pthread": "C floor: robust process-shared pthread_mutex",
        "drepper": "C floor: Drepper futex mutex",
    }
    rows += floor_rows(
        S_COUNTER,
        names,
        lambda: {
            k: [v / 1e6 for v in vs]
            for k, vs in floor.run("counter", cfg.counter_n, cfg.trials, -1).items()
        },
        baseline=base,
        **unit,
    )
    _close_all(cases)
    return rows


# -- 3 and 5. ping-pong and condition round trips ---------------------------------------------


def _pingpong_trial(cfg: Config, kind: str, cpus: set[int] | None) -> Trial:
    """``kind``: "sem" (objects: two semaphores at 0), "event" (two events, clear) or
    "cond" (a condition; the turn word in a shared page)."""
    total, rounds = cfg.warmup + cfg.rounds, cfg.rounds

    def trial(objs: Any) -> float:
        sh = Shared()
        try:
            a, b = objs if kind != "cond" else (objs, objs)

            def side_a(ctl: Ctl) -> list[int]:
                ctl.ready_go()
                t0 = 0
                for i in range(total):
                    if i == cfg.warmup:
                        t0 = time.monotonic_ns()
                    if kind == "sem":
                        a.release()
                        b.acquire()
                    elif kind == "event":
                        a.set()
                        b.wait()
                        b.clear()
                    else:
                        with a:
                            sh.q[0] = 1
                            a.notify()
                            while sh.q[0] != 0:
                                a.wait(COND_WAIT_S)
                return [t0, time.monotonic_ns()]

            def side_b(ctl: Ctl) -> list[int]:
                ctl.ready_go()
                for _ in range(total):
                    if kind == "sem":
                        a.acquire()
                        b.release()
                    elif kind == "event":
                        a.wait()
                        a.clear()
                        b.set()
                    else:
                        with a:
                            while sh.q[0] != 1:
                                a.wait(COND_WAIT_S)
                            sh.q[0] = 0
                            a.notify()
                return []

            with Procs(cfg.trial_timeout) as ps:
                res = ps.start([side_a, side_b], cpus)
            return float(res[0][1] - res[0][0]) / rounds / 1e3
        finally:
            sh.close()

    return trial


def placements() -> list[tuple[str, set[int] | None, str, bool]]:
    """(label, CPUs for both workers or None, why skipped or "", whether both workers share
    one CPU: the rows the ping-pong target judges)."""
    cpus = allowed_cpus()
    if not hasattr(os, "sched_setaffinity"):
        return [
            ("pinned to one CPU", None, "skipped: os.sched_setaffinity unavailable", False),
            (f"unpinned ({len(cpus)} CPUs)", None, "", False),
        ]
    if len(cpus) < 2:
        why = "skipped: only one CPU allowed (the next rows run on it)"
        return [
            ("pinned to one CPU", None, why, False),
            ("unpinned, on the one CPU allowed", None, "", True),
        ]
    return [
        (f"pinned to CPU {cpus[0]}", {cpus[0]}, "", True),
        (f"unpinned ({len(cpus)} CPUs)", None, "", False),
    ]


def _pair(make: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: (make(), make())


def bench_pingpong(cfg: Config, floor: CFloor) -> list[Row]:
    log("3. two-process ping-pong, pinned and unpinned")
    rows: list[Row] = []
    unit: dict[str, Any] = {"unit": "µs"}
    for where, cpus, skip, same_cpu in placements():
        psem = f"posix_ipc.Semaphore, {where}"
        msem = f"multiprocessing.Semaphore, {where}"
        goal = Target("<=", 1.1, against=psem) if same_cpu else None
        spec: list[tuple[str, str | None, str | None, Target | None, Callable[[], Any], str]] = [
            (psem, None, None, None, _pair(lambda: _sem("posix_ipc", 0)), "sem"),
            (msem, psem, None, None, _pair(lambda: _sem("mp", 0)), "sem"),
            (
                f"futex.sync.Semaphore, {where}",
                psem,
                msem,
                goal,
                _pair(lambda: _sem("futex.sync", 0)),
                "sem",
            ),
            (
                f"futex.sync.Event, {where}",
                psem,
                msem,
                goal,
                _pair(lambda: peers.sync_attr("Event")()),
                "event",
            ),
            (f"multiprocessing.Event, {where}", psem, msem, None, _pair(peers.mp().Event), "event"),
        ]
        cases = []
        for name, base, fb, target, make, kind in spec:
            row = Row(
                S_PINGPONG, name, baseline=base, fallback=fb, target=target, status=skip, **unit
            )
            cases.append(Case(row, make, _pingpong_trial(cfg, kind, cpus)))
        rows += _run_cases(cases, cfg.trials)
        _close_all(cases)
        cpu = -1 if cpus is None else min(cpus)
        rows += floor_rows(
            S_PINGPONG,
            {"futex": f"C floor: FUTEX_WAIT/FUTEX_WAKE, {where}"},
            (lambda: {"futex": []}) if skip else _c_pingpong(floor, cfg, cpu),
            baseline=psem,
            fallback=msem,
            status=skip,
            **unit,
        )
    return rows


def _c_pingpong(floor: CFloor, cfg: Config, cpu: int) -> Callable[[], dict[str, list[float]]]:
    def run() -> dict[str, list[float]]:
        got = floor.run("pingpong", cfg.rounds, cfg.trials, cfg.warmup, cpu)
        return {k: [v / 1e3 for v in vs] for k, vs in got.items()}

    return run


def bench_condition(cfg: Config) -> list[Row]:
    log("5. condition round trip")
    rows: list[Row] = []
    for where, cpus, skip, _ in placements():
        base = f"multiprocessing.Condition, {where}"
        cases = [
            Case(
                Row(S_COND, base, "µs", status=skip),
                peers.mp().Condition,
                _pingpong_trial(cfg, "cond", cpus),
            ),
            Case(
                Row(S_COND, f"futex.sync.Condition, {where}", "µs", baseline=base, status=skip),
                lambda: peers.sync_attr("Condition")(),
                _pingpong_trial(cfg, "cond", cpus),
            ),
        ]
        rows += _run_cases(cases, cfg.trials)
        _close_all(cases)
    return rows


# -- 4. producer/consumer -------------------------------------------------------------------


def _prodcon_trial(cfg: Config) -> Trial:
    n = cfg.items

    def trial(objs: Any) -> float:
        items, slots = objs

        def producer(ctl: Ctl) -> list[int]:
            ctl.ready_go()
            t0 = time.monotonic_ns()
            for _ in range(n):
                slots.acquire()
                items.release()
            return [t0, time.monotonic_ns()]

        def consumer(ctl: Ctl) -> list[int]:
            ctl.ready_go()
            t0 = time.monotonic_ns()
            for _ in range(n):
                items.acquire()
                slots.release()
            return [t0, time.monotonic_ns()]

        with Procs(cfg.trial_timeout) as ps:
            res = ps.start([producer, consumer])
        return n / _span(res) * 1e3

    return trial


def _two_sems(kind: str) -> Callable[[], Any]:
    return lambda: (_sem(kind, 0), _sem(kind, SLOTS))


def bench_prodcon(cfg: Config) -> list[Row]:
    log("4. semaphore producer/consumer")
    base = "multiprocessing.Semaphore"
    unit: dict[str, Any] = {"unit": "M items/s", "higher_is_better": True}
    cases = [
        Case(
            Row(
                S_PRODCON,
                f"{kind}.Semaphore",
                baseline=None if kind == "multiprocessing" else base,
                **unit,
            ),
            _two_sems(kind),
            _prodcon_trial(cfg),
        )
        for kind in ("multiprocessing", "futex.sync", "posix_ipc")
    ]
    rows = _run_cases(cases, cfg.trials)
    _close_all(cases)
    return rows


# -- 6. RWLock ------------------------------------------------------------------------------


def _rw_trial(cfg: Config, rw: bool) -> Trial:
    n = cfg.counter_n
    writes = len(range(0, n, WRITE_EVERY))

    def trial(lock: Any) -> float:
        def work(ctl: Ctl, c: memoryview) -> list[int]:
            ctl.ready_go()
            t0 = time.monotonic_ns()
            if rw:
                read, write = lock.read_lock, lock.write_lock
                for i in range(n):
                    if i % WRITE_EVERY == 0:
                        with write():
                            c[0] += 1
                    else:
                        with read():
                            c[1] = c[0]
            else:
                for i in range(n):
                    if i % WRITE_EVERY == 0:
                        with lock:
                            c[0] += 1
                    else:
                        with lock:
                            c[1] = c[0]
            return [t0, time.monotonic_ns()]

        return _count_together(cfg, n, writes, work)

    return trial


def bench_rwlock(cfg: Config) -> list[Row]:
    log("6. RWLock read-heavy")
    base = "multiprocessing.Lock for reads and writes"
    unit: dict[str, Any] = {"unit": "M ops/s", "higher_is_better": True}
    cases = [
        Case(Row(S_RW, base, **unit), peers.mp().Lock, _rw_trial(cfg, False)),
        Case(
            Row(S_RW, "futex.sync.RWLock read_lock()/write_lock()", baseline=base, **unit),
            lambda: peers.sync_attr("RWLock")(),
            _rw_trial(cfg, True),
        ),
        Case(
            Row(S_RW, "futex.sync.Mutex for reads and writes", baseline=base, **unit),
            lambda: peers.sync_attr("Mutex")(),
            _rw_trial(cfg, False),
        ),
    ]
    rows = _run_cases(cases, cfg.trials)
    _close_all(cases)
    return rows


def bench_twoproc(cfg: Config, floor: CFloor) -> list[Row]:
    rows = bench_counter(cfg, floor)
    rows += bench_pingpong(cfg, floor)
    rows += bench_prodcon(cfg)
    rows += bench_condition(cfg)
    rows += bench_rwlock(cfg)
    return rows


def _close_all(cases: list[Case]) -> None:
    for c in cases:
        objs = c.obj if isinstance(c.obj, tuple) else (c.obj,)
        for o in objs:
            close_quietly(o)
