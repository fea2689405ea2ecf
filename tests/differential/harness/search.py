"""The differential search, outside the test suite: fresh random sequences (or scripts)
run without stopping, every distinct disagreement printed, shrunk, with what the calls
returned.

``python -m tests.differential.harness.search N [--seed S]``: a fresh random search of N
sequences (every kind in turn; then the explicit command x flag cases);
``--replay KIND:INDEX`` re-runs one sequence of ``test_generated_sequences`` (CI's seed
unless ``--seed`` is given); ``--scripts``: N fresh random multi-task scripts instead.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys

from tests.differential.harness.cases import COMBOS, argument_sets, combo_id, special_argument_sets
from tests.differential.harness.differ import Differ
from tests.differential.harness.host_layout import host_layout
from tests.differential.harness.mismatch import Mismatch, ScenarioMismatch, shrink
from tests.differential.harness.scenarios import SCHED_FIFO_UNAVAILABLE
from tests.differential.harness.scripts import SCRIPT_PI, SCRIPT_PRIORITIES, RandomScript
from tests.differential.harness.sequences import CI_SEED, generated
from tests.differential.harness.tasks import TaskDiffer

__all__ = [
    "collect",
    "collect_scripts",
    "main",
    "replay",
]


def collect(n: int, seed: int) -> int:
    """Run ``n`` fresh sequences (every kind in turn, from ``seed``) without stopping; print
    every distinct disagreement (shrunk) and what the calls returned.  Then the explicit
    command x flag cases."""
    found: dict[tuple[object, ...], Mismatch] = {}
    hits: collections.Counter[tuple[object, ...]] = collections.Counter()
    kinds = ["mixed", "pi", "futex2", "mixed", "pi", "futex2", "waits", "wake_op_cmp_requeue"]
    with host_layout() as (layout, watchdog):
        differ = Differ(layout, watchdog)
        for i in range(n):
            bad = differ.run(generated(kinds[i % len(kinds)], i, seed))
            if bad is not None:
                sig = bad.signature()
                hits[sig] += 1
                if sig not in found:
                    found[sig] = shrink(differ, bad)
        for cmd, flags in COMBOS:
            cases = argument_sets(cmd | flags) + special_argument_sets(cmd | flags)
            for label, steps in cases:
                bad = differ.run(steps)
                if bad is not None:
                    bad.detail += f" [explicit case {combo_id((cmd, flags))}/{label}]"
                    sig = bad.signature()
                    hits[sig] += 1
                    found.setdefault(sig, bad)
    tally = differ.tally
    print(
        f"seed {seed:#x}: {tally.sequences} sequences, {tally.calls} calls, "
        f"{tally.skipped} skipped; sequences with PI calls {tally.pi_sequences}, "
        f"requeue-PI calls {tally.requeue_pi_sequences}, futex2 calls "
        f"{tally.futex2_sequences}; {tally.peer_ended} waits ended by the peer, refused: "
        f"{dict(tally.peer_refused)}"
    )
    table: dict[str, dict[object, int]] = {}
    for (name, result), count in tally.outcomes.items():
        base = name.split("|")[0]
        row = table.setdefault("unknown" if base.startswith("cmd") else base, {})
        row[result] = row.get(result, 0) + count
    for name, row in sorted(table.items()):
        print(f"  {name:12s} " + "  ".join(f"{r}: {c}" for r, c in sorted(row.items(), key=str)))
    for sig, bad in found.items():
        print("=" * 78)
        print(f"{hits[sig]} hit(s): {sig}")
        print(bad)
    print(f"{len(found)} distinct disagreement(s)")
    return 1 if found else 0


def replay(kind: str, index: int, seed: int) -> int:
    """Re-run sequence ``index`` of ``kind`` (CI's seed unless given); print it and the
    disagreement, if any."""
    steps = generated(kind, index, seed)
    with host_layout() as (layout, watchdog):
        differ = Differ(layout, watchdog)
        bad = differ.run(steps)
        print("\n".join(f"[{i}] {s!r}" for i, s in enumerate(steps)))
        print("agree" if bad is None else f"disagree:\n{shrink(differ, bad)}")
    return 0 if bad is None else 1


def collect_scripts(n: int, seed: int) -> int:
    """Run ``n`` random multi-task scripts (``RandomScript``) from ``seed``; print each
    disagreement."""
    bad = 0
    fifo = not SCHED_FIFO_UNAVAILABLE
    with host_layout() as (layout, _watchdog):
        tasks = TaskDiffer(layout)
        for i in range(n):
            script = RandomScript((seed << 20) + i)
            workers = SCRIPT_PRIORITIES if fifo and i % 2 else [None] * script.workers
            try:
                tasks.run(workers, script, ((SCRIPT_PI, script.pi_flag),))
            except ScenarioMismatch as exc:
                bad += 1
                print("=" * 78)
                print(f"RandomScript({script.seed:#x}), workers {workers}:\n{exc}")
    print(f"seed {seed:#x}: {n} scripts, {tasks.steps} calls, {tasks.wakeups} wakeups; {bad} bad")
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    """The command line: ``N [--seed S]``, ``--replay KIND:INDEX``, ``--scripts``."""
    parser = argparse.ArgumentParser(description=collect.__doc__)
    parser.add_argument("n", nargs="?", type=int, default=5000, help="sequences to run")
    parser.add_argument("--seed", type=lambda s: int(s, 0), help="default: a fresh one")
    parser.add_argument("--replay", metavar="KIND:INDEX", help="re-run one CI sequence")
    parser.add_argument("--scripts", action="store_true", help="N random multi-task scripts")
    args = parser.parse_args(argv)
    if args.replay:
        kind, _, index = args.replay.partition(":")
        return replay(kind, int(index), CI_SEED if args.seed is None else args.seed)
    seed = int.from_bytes(os.urandom(3), "little") if args.seed is None else args.seed
    if args.scripts:
        return collect_scripts(args.n, seed)
    return collect(args.n, seed)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
