"""The fuzz harness's runs: the personalities by name, one episode, the shrinker (delta
debugging), the standalone reproducer, and a run's :class:`Report`."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tests.fuzz.fuzz_engine import Fail, Finding, Fuzz, Op, render
from tests.fuzz.fuzz_linux import Linux
from tests.fuzz.fuzz_liteos import Liteos
from tests.fuzz.fuzz_zircon import Zircon

# -- episodes, shrinking, runs --------------------------------------------------------------

PERSONALITIES: dict[str, type[Fuzz]] = {"linux": Linux, "zircon": Zircon, "liteos": Liteos}
HEADER = ("from contextlib import suppress\nfrom futex.kernel import ManualClock, MemoryFault\n"
          "from futex.memory import File, MappingError\n")
FULL_CHECK = {"linux": "for p in k.processes.values():\n    p.futex.check_invariants()",
              "zircon": "k.check_invariants()", "liteos": "k.futex.check_invariants()"}


def run_episode(personality: str, seed: int, check_every: int = 16,
                ops: list[Op] | None = None) -> tuple[Fuzz, list[Op], int, Finding | None]:
    """One episode: setup and generated steps (or ``ops``), then every task exits.  Returns
    the world, the ops applied, how many came before the exits, and the finding."""
    fz = PERSONALITIES[personality](seed, check_every)
    log: list[Op] = []
    body = 0

    def go(batch: Iterable[Op]) -> None:
        for op in batch:
            log.append(op)
            fz.apply(op)

    try:
        if ops is None:
            go(fz.setup())
            for _ in range(random.Random(seed * 7919 + 1).randrange(60, 300)):
                go(fz.generate())
        else:
            go(ops)
        body = len(log)
        go(fz.finish())
        fz.final()
    except Fail as f:
        return fz, log, body or len(log), Finding(personality, seed, *f.args)
    return fz, log, body, None


def ddmin(items: list[Op], test: Callable[[list[Op]], bool]) -> list[Op]:
    """Zeller's delta debugging over complements: a 1-minimal sublist that still fails."""
    n = 2
    while len(items) >= 2:
        size = -(-len(items) // n)
        for i in range(0, len(items), size):
            rest = items[:i] + items[i + size:]
            if test(rest):
                items, n = rest, max(n - 1, 2)
                break
        else:
            if n >= len(items):
                break
            n = min(2 * n, len(items))
    return items


def shrink(f: Finding, ops: list[Op], budget: float = 30.0) -> Finding:
    """Replay with every check on every step, shrink the op list, attach a reproducer."""
    g = run_episode(f.personality, f.seed, 1, ops)[3]
    if g is None:
        f.reproducer = "# not reproduced by a replay with every check on every step"
        return f
    deadline, want = time.perf_counter() + budget, g.signature

    def test(cand: list[Op]) -> bool:
        if time.perf_counter() > deadline:
            return False
        h = run_episode(f.personality, f.seed, 1, cand)[3]
        return h is not None and h.signature == want

    _, log, _, h = run_episode(f.personality, f.seed, 1, ddmin(ops, test))
    g = h if h is not None and h.signature == want else g
    tail = {"invariant": FULL_CHECK[f.personality], "exception": "# raises above"}
    g.reproducer = reproducer(f.personality, f.seed, log, tail.get(g.kind, f"# {g.detail}"))
    return g


def reproducer(personality: str, seed: int, ops: list[Op], tail: str = "") -> str:
    """A standalone script: the episode's kernel, then ``ops`` as Python."""
    prelude = HEADER + PERSONALITIES[personality](seed).prelude
    return "\n".join([prelude, *map(render, ops), tail])


@dataclass
class Report:
    personality: str
    calls: int = 0
    steps: int = 0
    episodes: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)  # the first of each signature
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        rate = self.calls / max(self.seconds, 1e-9)
        return (f"{self.personality}: {self.calls} calls ({self.steps} steps, {self.episodes} "
                f"episodes) in {self.seconds:.1f} s: {rate:.0f} calls/s, 1M calls in "
                f"{1e6 / max(rate, 1e-9):.0f} s; {len(self.findings)} distinct findings")


def fuzz(personality: str, calls: int, seed: int, seconds: float | None = None,
         check_every: int = 16, shrinking: bool = True) -> Report:
    """Episodes ``seed * 10**6 + i`` until ``calls`` calls (or ``seconds``, shrinking not
    counted); the first finding of each signature is shrunk."""
    rep, start, spent = Report(personality), time.perf_counter(), 0.0
    while rep.calls < calls and (seconds is None or rep.seconds < seconds):
        fz, log, body, f = run_episode(personality, seed * 10**6 + rep.episodes, check_every)
        rep.calls, rep.steps, rep.episodes = (rep.calls + fz.calls, rep.steps + fz.steps,
                                              rep.episodes + 1)
        if f is not None:
            if f.signature not in rep.counts:
                t = time.perf_counter()
                rep.findings.append(shrink(f, log[:body]) if shrinking else f)
                spent += time.perf_counter() - t
            rep.counts[f.signature] = rep.counts.get(f.signature, 0) + 1
        rep.seconds = time.perf_counter() - start - spent
    return rep
