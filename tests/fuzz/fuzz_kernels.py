"""A seeded fuzz harness for the three emulated futex kernels (issue 11).

Generated from one ``random.Random`` per episode (a fresh kernel on a ManualClock, 60-300
steps, then every task exits), through the cooperative forms only (no real thread blocks):

- **linux** on 5.10, 5.15, 6.6, 6.12, 6.16 and 6.18, with and without protection keys,
  1-, 4-, 16-bucket or default tables: every ``task.syscall_nb`` entry -- futex(2)'s
  commands and flags, timespecs valid / invalid / expired / unreadable, PI words naming
  live, dead and exiting owners, requeue-PI pairs; set/get_robust_list over built lists
  (PI entries, pending ops, cycles, bad pointers); futex_waitv arrays; futex_wake / wait /
  requeue with futex2 flags (NUMA, MPOL, bad sizes); prctl(PR_FUTEX_HASH); unknown numbers
  -- registers at the edges (0, -1, 2**31, 2**32-1, 2**63, 2**64-1, beyond 64 bits,
  negative); scheduling classes, CLONE_CHILD_CLEARTID, signals, exit, exec, begin_exit/exec.
- **zircon**: every ``zx_futex_*`` call, owner handles valid, closed, invalid, of the wrong
  type, of other processes, of new and dead threads; deadlines past, near and infinite;
  thread start / exit / suspend / priority, process kill, the bad-handle job policies.
- **liteos**: ``SysFutex`` with every command and flag, microsecond timeouts, SIGKILL and
  other signals, interrupt context, priorities; faithful and safe kernels, three tick rates.
- all: processes (forks share memory) and tasks; clock advances; mmap of private, shared
  and file mappings (past EOF too) with every protection (none, read-, write-, exec-only),
  mprotect, munmap, truncation, word stores, refused mmaps.

Checked after every step: no exception escapes and none is logged (the kernels log the
callbacks they isolate), but for the answers an op declares (a MemoryFault for a harness
store); every result, also of a pending wait when it settles, is in its call's documented
set (Linux: a bounded count or a listed -errno, never a restart code; Zircon: its ZX_
statuses; LiteOS: its codes); the core's bucket invariants on every table (an exact
``check_invariants`` that skips empty buckets); every ``--check-every`` steps and at the
end every process's ``futex.check_invariants()``, Linux's PI ``check_task`` and Zircon's
``kernel.check_invariants()``; no pending call is queued nowhere, waits for an exit that
is over or for a PI owner that is gone; once every task exited, nothing is pending or
queued.  A finding is replayed with every check on every step, shrunk (delta debugging)
and printed as a standalone Python reproducer with its episode's replay seed::

    python -m tests.fuzz.fuzz_kernels --personality all --calls 1000000 --seed 1
    python -m tests.fuzz.fuzz_kernels --personality linux --calls 1000000000 --seed 7 --seconds 600
    python -m tests.fuzz.fuzz_kernels --personality zircon --replay 1001436

The engine (ops, checks, shared generators) is ``fuzz_engine``; the personalities are
``fuzz_linux``, ``fuzz_zircon`` and ``fuzz_liteos``; episodes, shrinking and reproducers
are ``fuzz_episodes``; this module is the command and re-exports what the tests use.
``tests/fuzz/test_fuzz.py`` runs CI's slice.
"""

from __future__ import annotations

import argparse
import sys

from tests.fuzz.fuzz_engine import Fail, Finding, Op, R
from tests.fuzz.fuzz_episodes import PERSONALITIES, fuzz, reproducer, run_episode, shrink
from tests.fuzz.fuzz_liteos import Liteos

#: What ``tests/fuzz/test_fuzz.py`` imports from here.
__all__ = ["PERSONALITIES", "Fail", "Finding", "Liteos", "Op", "R", "fuzz", "main", "reproducer",
           "run_episode", "shrink"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Fuzz the emulated futex kernels (see the "
                                             "docstring of tests/fuzz/fuzz_kernels.py).")
    ap.add_argument("--personality", choices=[*PERSONALITIES, "all"], default="all")
    ap.add_argument("--calls", type=int, default=100_000, help="calls per personality")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, help="stop each personality after this long")
    ap.add_argument("--check-every", type=int, default=16, help="steps between full checks")
    ap.add_argument("--replay", type=int, help="run one episode: a finding's replay seed")
    ap.add_argument("--no-shrink", action="store_true")
    a = ap.parse_args(argv)
    found = 0
    for name in list(PERSONALITIES) if a.personality == "all" else [a.personality]:
        if a.replay is not None:
            _, log, body, f = run_episode(name, a.replay, a.check_every)
            findings = [] if f is None else [f if a.no_shrink else shrink(f, log[:body])]
            print(f"{name} episode {a.replay}: {len(log)} ops, {len(findings)} finding(s)")
        else:
            rep = fuzz(name, a.calls, a.seed, a.seconds, a.check_every, not a.no_shrink)
            findings = rep.findings
            print(rep.summary(), flush=True)
        for f in findings:
            found += 1
            print(f.describe() + "\n  " + f.reproducer.replace("\n", "\n  "), flush=True)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
