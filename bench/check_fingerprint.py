"""A digest of futex.check's behaviour: run it on two trees to show a change (a speed-up)
left every schedule as it was.

For each bundled scenario (the broken algorithms, their twins and the futex.sync ones):
40 seeded random schedules (spurious wake-up budget 0, 1, 2 in turn), the default
schedule, and a 150-schedule exploration each by DFS(preemptions=1) and PCT(3) -- hashing
every step of every trace (task, operation, raw result, words after, waiters), every
decision (its point and the choice), the results, preemptions, and each exploration's
verdict and replay string.  Prints one digest per scenario and one over all of them;
the same digests on both backends are expected too.

    python bench/check_fingerprint.py [--backend greenlet|threads] [--json FILE]
    PYTHONPATH=<other tree>/src python bench/check_fingerprint.py   # then compare
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from typing import Any

from futex.check import Budget, Outcome, explore, run_schedule
from futex.check.bundled import ALL
from futex.check.bundled.sync import SYNC
from futex.check.strategies import DFS, PCT


def outcome_digest(o: Outcome) -> str:
    """Everything a schedule did, hashed."""
    parts: list[object] = [o.kind, o.message, o.task, o.preemptions, o.steps,
                           sorted(o.results.items(), key=str)]  # fmt: skip
    parts += [tuple(s) for s in o.trace]
    parts += [(tuple(d.point), d.choice) for d in o.decisions]
    return hashlib.sha256("\n".join(map(repr, parts)).encode()).hexdigest()[:16]


def scenario_digest(scenario: Any, backend: str | None) -> str:
    h = hashlib.sha256()
    for seed in range(40):
        rng = random.Random(seed)
        o = run_schedule(
            scenario,
            lambda p, rng=rng: p.options[rng.randrange(len(p.options))],
            backend=backend,
            spurious=seed % 3,
        )
        h.update(outcome_digest(o).encode())
    h.update(outcome_digest(run_schedule(scenario, None, backend=backend)).encode())
    for strategy in (DFS(preemptions=1), PCT(3)):
        r = explore(scenario, strategy, Budget(schedules=150), seed=7, backend=backend)
        h.update(repr((r.ok, r.schedules, r.complete, r.replay, r.found_by)).encode())
        if r.failure is not None:
            h.update(outcome_digest(r.failure).encode())
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("greenlet", "threads"), default=None)
    ap.add_argument("--json", metavar="FILE", help="also write the digests as JSON")
    args = ap.parse_args(argv)
    digests = {name: scenario_digest(e.scenario, args.backend)
               for name, e in {**ALL, **SYNC}.items()}  # fmt: skip
    for name, d in digests.items():
        print(f"{d}  {name}")
    total = hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()[:16]
    print(f"{total}  all {len(digests)} scenarios")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(digests, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
