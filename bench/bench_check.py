"""Schedules per second of futex.check's engine, greenlet and threads backends.

The scenario: Drepper's mutex (take 3 lock: cas 0->1; else xchg to 2 and FUTEX_WAIT;
take 2/3 unlock: fetch_sub and FUTEX_WAKE when it was 2), two tasks taking it twice
each -- about 20 scheduling points a schedule.  Each strategy explores it through
``explore`` as a user's run does (random: a uniform choice at every point, so tasks
switch, block and wake; PCT(3); DFS at preemption bound 2, restarted when complete), and
the default policy runs it through ``run_schedule``.  Prints schedules/s (the median of
0.4 s windows, and the best one), steps a schedule and steps/s, the setup cost (machine
acquire + release, an empty schedule), the cyclic garbage collector's runs per 1,000
schedules, and the greenlet/threads ratio of the same run.

    python bench/bench_check.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from futex.check import Budget, Scenario, explore, machine, run_schedule
from futex.check.bundled._base import lock3, unlock2
from futex.check.strategies import DFS, PCT, Random, Strategy
from futex.check.tasks import have_greenlet


def _setup(env: Any) -> SimpleNamespace:
    return SimpleNamespace(m=env.word("m"), n=env.word("n"))


# Drepper's take 3 lock and the take 2/3 unlock, as the bundled algorithms write them
_lock, _unlock = lock3, unlock2


def _worker(s: SimpleNamespace) -> None:
    for _ in range(2):
        _lock(s.m)
        s.n.fetch_add(1)
        _unlock(s.m)


SCENARIO = Scenario(
    "take2_bench", _setup, [("A", _worker), ("B", _worker)],
    final=lambda s, r: s.n.peek() == 4,
)  # fmt: skip


STRATEGIES: dict[str, Callable[[], Strategy | None]] = {
    "random": Random,
    "pct(3)": lambda: PCT(3),
    "dfs(2)": lambda: DFS(preemptions=2),
    "default": lambda: None,  # run_schedule with the default policy: no strategy
}


#: A measurement is split in windows this long; the median window is reported (the
#: machine's noise -- other tenants, frequency changes -- only ever slows a window down).
WINDOW = 0.4


def _bench(
    backend: str, seconds: float, make: Callable[[], Strategy | None]
) -> tuple[float, float, float, float]:
    """The median and the best window's schedules per second of ``make()``'s exploration,
    the steps a schedule, and the cyclic garbage collector's runs per 1,000 schedules."""
    counted = [0, 0]  # schedules, steps

    def runner(*args: Any, **kwargs: Any) -> Any:
        o = run_schedule(*args, **kwargs)
        assert o.ok, o
        counted[0] += 1
        counted[1] += o.steps
        return o

    def batch(seed: int) -> None:
        strategy = make()
        if strategy is None:
            for _ in range(50):
                runner(SCENARIO, None, backend=backend)
        else:
            budget = Budget(schedules=200, seconds=None)
            explore(SCENARIO, strategy, budget, seed=seed, backend=backend, runner=runner)

    for seed in range(3):  # warm up: pools, caches
        batch(seed)
    counted[:] = [0, 0]
    seed = 0
    rates = []
    collections = sum(g["collections"] for g in gc.get_stats())
    start = time.perf_counter()
    while True:
        began, done = time.perf_counter(), counted[0]
        while True:
            batch(seed)
            seed += 1
            now = time.perf_counter()
            if now - began >= WINDOW:
                break
        rates.append((counted[0] - done) / (now - began))
        if now - start >= seconds:
            break
    collections = sum(g["collections"] for g in gc.get_stats()) - collections
    per_1000 = collections * 1000 / counted[0]
    return statistics.median(rates), max(rates), counted[1] / counted[0], per_1000


def _setup_cost(count: int = 20000) -> tuple[float, float]:
    """Seconds per schedule: the machine (acquire + reset), and a whole schedule of two
    tasks that make no call (machine, setup of two words, tasks started and ended, the
    outcome): the fixed cost every schedule pays."""
    start = time.perf_counter()
    for _ in range(count):
        machine.release(machine.acquire(2))
    mid = time.perf_counter()
    empty = Scenario("empty", _setup, [("A", _nothing), ("B", _nothing)])
    for _ in range(count // 4):
        run_schedule(empty, None)
    end = time.perf_counter()
    return (mid - start) / count, (end - mid) / (count // 4)


def _nothing(s: SimpleNamespace) -> None:
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="per measurement (default 2)")
    args = ap.parse_args(argv)
    print(f"futex.check engine, {SCENARIO.name}: 2 tasks, Python {sys.version.split()[0]}")
    reset, empty = _setup_cost()
    print(f"setup: machine acquire + reset {reset * 1e6:.1f} us; an empty 2-task schedule "
          f"{empty * 1e6:.1f} us")  # fmt: skip
    backends = ["greenlet", "threads"] if have_greenlet() else ["threads"]
    for name, make in STRATEGIES.items():
        rates = {}
        for b in backends:
            rate, best, pts, collected = _bench(b, args.seconds, make)
            rates[b] = rate
            print(f"  {name:8} {b:8} {rate:9,.0f} schedules/s (best window {best:,.0f})  "
                  f"{rate * pts:10,.0f} steps/s  ({pts:.1f} steps a schedule; "
                  f"gc {collected:.0f} per 1,000)")  # fmt: skip
        if len(rates) == 2:
            print(f"  {name:8} greenlet/threads = {rates['greenlet'] / rates['threads']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
