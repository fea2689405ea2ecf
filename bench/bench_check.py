"""Schedules per second of futex.check's engine, greenlet and threads backends.

The scenario: Drepper's "take 2" mutex (cas 0->1; else cas/xchg to 2 and FUTEX_WAIT;
unlock fetch_sub and FUTEX_WAKE when it was 2), two tasks taking it twice each -- about 20
scheduling points a schedule.  Each schedule is run with a seeded random chooser (so that
tasks switch, block and wake), then with the default policy.  Prints schedules/s, steps/s,
the setup cost (machine acquire + release per schedule) and the greenlet/threads ratio of
the same run.

    python bench/bench_check.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from types import SimpleNamespace
from typing import Any

from futex.check import Choice, Point, Scenario, machine, run_schedule
from futex.check.bundled._base import lock3, unlock2
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


def _bench(backend: str, seconds: float, random_choices: bool) -> tuple[float, float]:
    rng = random.Random(0)

    def choose(p: Point) -> Choice:
        return p.options[rng.randrange(len(p.options))]

    chooser = choose if random_choices else None
    for _ in range(50):  # warm up: pools, caches
        run_schedule(SCENARIO, chooser, backend=backend)
    n = steps = 0
    start = time.perf_counter()
    end = start + seconds
    while True:
        for _ in range(50):
            o = run_schedule(SCENARIO, chooser, backend=backend)
            assert o.ok, o
            steps += o.steps
        n += 50
        now = time.perf_counter()
        if now >= end:
            break
    elapsed = now - start
    return n / elapsed, steps / n


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
    for policy in ("random", "default"):
        rates = {}
        for b in backends:
            rate, pts = _bench(b, args.seconds, policy == "random")
            rates[b] = rate
            print(f"  {policy:7} {b:8} {rate:9,.0f} schedules/s  {rate * pts:10,.0f} steps/s  "
                  f"({pts:.1f} steps a schedule)")  # fmt: skip
        if len(rates) == 2:
            print(f"  {policy:7} greenlet/threads = {rates['greenlet'] / rates['threads']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
