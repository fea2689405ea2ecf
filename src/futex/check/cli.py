"""``python -m futex check``: explore a scenario's schedules from the command line.

Targets:

- ``path/file.py:NAME`` — the :class:`futex.check.Scenario` named ``NAME`` in that file (a
  Scenario, or a function of no arguments returning one; ``path/file.py`` alone means
  ``SCENARIO``);
- ``bundled:NAME`` — a bundled algorithm (:mod:`futex.check.bundled`); without strategy
  options its designated check runs;
- ``--bundled`` — every bundled algorithm: exit 0 only if each broken one is found by its
  designated strategy (and its replay string reproduces it) and each correct twin passes
  its bound; prints a table.  ``--sync`` adds the futex.sync primitives' scenarios
  (``bundled:sync_mutex``...); ``--list`` lists them.

Options: ``--strategy dfs|pct|random|portfolio`` (default dfs), ``--preemptions N`` (DFS
bound, default 2), ``--depth D`` (PCT, default 3), ``--schedules N`` / ``--seconds T``
(budget, default 10,000 / 10 s), ``--seed S``, ``--spurious K`` (injected spurious
wake-ups per schedule; default the scenario's), ``--steps N`` (scheduling points per
schedule), ``--replay STR`` (run one recorded schedule), ``--json``, ``--backend
greenlet|threads``, ``--require-complete``, ``--plain``.

While it explores, a progress display: a rich status line on a terminal (with rich
installed), else a plain line on standard error at most once a second; none with
``--json``.

Exit status: 0 no failure; 1 a failure was found (or, for ``--bundled``, a verdict was
wrong); 2 usage (a bad target, option or replay string); 3 the budget ran out before the
bound was exhausted, with ``--require-complete``.

For :mod:`futex.cli`: :data:`HELP`, :func:`configure`, :func:`validate`, :func:`run`.
Importing this module is cheap; the checker is imported when a run starts.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from futex._argtypes import positive_float

__all__ = ["EXIT_FAILURE", "EXIT_INCOMPLETE", "EXIT_OK", "EXIT_USAGE", "HELP", "configure",
           "load_target", "main", "run", "validate"]

HELP = ("explore a futex algorithm's schedules on the emulated kernel (DFS with a preemption "
        "bound, PCT, random): minimal failing trace and replay string, or a certificate")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
STRATEGIES = ("dfs", "pct", "random", "portfolio")
BACKENDS = ("greenlet", "threads")


class UsageError(Exception):
    """A bad target or option value (exit status 2)."""


def _count(low: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def configure(p: argparse.ArgumentParser) -> None:
    """Add the ``check`` arguments to ``p``."""
    p.add_argument("target", nargs="?", metavar="TARGET",
                   help="path/file.py:SCENARIO (default name SCENARIO) or bundled:NAME")
    p.add_argument("--bundled", action="store_true",
                   help="check every bundled algorithm: broken ones must be found by their "
                   "designated strategy, correct twins must pass their bound")
    p.add_argument("--sync", action="store_true",
                   help="with --bundled or --list: the futex.sync primitives' scenarios too")
    p.add_argument("--list", action="store_true", help="list the bundled algorithms")
    p.add_argument("--strategy", choices=STRATEGIES, default=None,
                   help="dfs (iterative preemption bounding; default), pct, random, or a "
                   "portfolio of the three")
    p.add_argument("--preemptions", type=_count(0), default=None, metavar="N",
                   help="DFS preemption bound (default 2)")
    p.add_argument("--depth", type=_count(1), default=None, metavar="D",
                   help="PCT bug depth (default 3)")
    p.add_argument("--schedules", type=_count(1), default=None, metavar="N",
                   help="stop after N schedules (default 10,000)")
    p.add_argument("--seconds", type=positive_float, default=None, metavar="T",
                   help="stop after T seconds (default 10)")
    p.add_argument("--seed", type=_count(0), default=0, metavar="S",
                   help="seed of the randomized strategies (default 0)")
    p.add_argument("--spurious", type=_count(0), default=None, metavar="K",
                   help="spurious wake-ups (EINTR) injected per schedule (default: the "
                   "scenario's)")
    p.add_argument("--steps", type=_count(1), default=None, metavar="N",
                   help="scheduling points per schedule before a livelock is declared "
                   "(default 2000)")
    p.add_argument("--replay", metavar="STR", default=None,
                   help="run the one schedule STR (v1:...) and report it")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="task switching: greenlet (fast; pip install 'futex[check]') or "
                   "threads (default: greenlet when installed)")
    p.add_argument("--require-complete", action="store_true",
                   help="exit 3 when the budget ran out before the DFS bound was exhausted")
    p.add_argument("--no-minimize", action="store_true",
                   help="report the failing schedule as first found")
    p.add_argument("--plain", action="store_true",
                   help="no live display: plain progress lines (default off a terminal)")


def validate(args: argparse.Namespace) -> str | None:
    """A usage problem argparse cannot express, or None."""
    if args.list:
        return None
    if args.bundled and args.target:
        return "give a TARGET or --bundled, not both"
    if not args.bundled and not args.target:
        return "a TARGET (path/file.py:SCENARIO or bundled:NAME) or --bundled is needed"
    if args.sync and not (args.bundled or args.list):
        return "--sync goes with --bundled or --list"
    if args.bundled and args.replay:
        return "--replay needs one TARGET, not --bundled"
    if args.depth is not None and args.strategy not in ("pct", "portfolio"):
        return "--depth is for --strategy pct or portfolio"
    if args.preemptions is not None and args.strategy not in (None, "dfs", "portfolio"):
        return "--preemptions is for --strategy dfs or portfolio"
    return None


def run(args: argparse.Namespace) -> int:
    """Run ``futex check`` with parsed ``args``; the exit status."""
    try:
        if args.list:
            return _list(sys.stdout, args.sync)
        if args.bundled:
            return _run_bundled(args)
        return _run_target(args)
    except UsageError as exc:
        print(f"futex check: {exc}", file=sys.stderr)
        return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """``futex check`` on its own (tests; ``python -m futex.check.cli``)."""
    p = argparse.ArgumentParser(prog="futex check", description=HELP)
    configure(p)
    args = p.parse_args(argv)
    problem = validate(args)
    if problem is not None:
        p.error(problem)
    return run(args)


# -- targets ---------------------------------------------------------------------------------


def load_target(target: str) -> tuple[Any, Any]:
    """``(scenario, entry)`` for a TARGET: ``entry`` is the bundled Entry or None."""
    if target.startswith("bundled:"):
        from futex.check import bundled

        name = target.removeprefix("bundled:")
        try:
            entry = bundled.get(name)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        return entry.scenario, entry
    path_text, _, name = target.rpartition(":")
    if not path_text or not path_text.endswith(".py"):
        path_text, name = target, "SCENARIO"
    path = Path(path_text)
    if path.suffix != ".py":
        raise UsageError(f"not a Python file or bundled:NAME: {target!r}")
    if not path.is_file():
        raise UsageError(f"no such file: {path_text}")
    module_name = f"_futex_check_target_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load {path_text} as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    added = str(path.resolve().parent)
    sys.path.insert(0, added)
    try:
        spec.loader.exec_module(module)
    finally:
        if added in sys.path:
            sys.path.remove(added)
    if not hasattr(module, name):
        found = sorted(n for n, v in vars(module).items() if _is_scenario(v))
        hint = f"; scenarios there: {', '.join(found)}" if found else ""
        raise UsageError(f"{path_text} has no {name!r}{hint}")
    obj = getattr(module, name)
    if not _is_scenario(obj) and callable(obj):
        obj = obj()
    if hasattr(obj, "scenario") and _is_scenario(obj.scenario):  # a bundled-style Entry
        return obj.scenario, obj
    if not _is_scenario(obj):
        raise UsageError(f"{path_text}:{name} is not a futex.check.Scenario "
                         f"(a {type(obj).__name__})")
    return obj, None


def _is_scenario(obj: Any) -> bool:
    from futex.check.runtime import Scenario

    return isinstance(obj, Scenario)


def _strategy(args: argparse.Namespace, default_preemptions: int = 2) -> Any:
    from futex.check.strategies import DFS, PCT, Portfolio, Random

    pre = args.preemptions if args.preemptions is not None else default_preemptions
    depth = args.depth if args.depth is not None else 3
    kind = args.strategy or "dfs"
    if kind == "dfs":
        return DFS(preemptions=pre)
    if kind == "pct":
        return PCT(depth=depth)
    if kind == "random":
        return Random()
    return Portfolio([DFS(preemptions=pre), PCT(depth=depth), Random()])


def _budget(args: argparse.Namespace, schedules: int | None = 10_000,
            seconds: float | None = 10.0) -> Any:
    from futex.check.exploring import Budget

    kw: dict[str, Any] = {
        "schedules": args.schedules if args.schedules is not None else schedules,
        "seconds": args.seconds if args.seconds is not None else seconds,
        "spurious": args.spurious,
    }
    if args.steps is not None:
        kw["steps"] = args.steps
    return Budget(**kw)


def _designated(args: argparse.Namespace) -> bool:
    """No strategy or budget option given: a bundled target runs its designated check."""
    return all(getattr(args, k) is None for k in (
        "strategy", "preemptions", "depth", "schedules", "seconds", "spurious", "steps"))


# -- one target ------------------------------------------------------------------------------


def _run_target(args: argparse.Namespace) -> int:
    from futex.check import report

    scenario, entry = load_target(args.target)
    name = str(getattr(scenario, "name", args.target))
    if args.replay is not None:
        return _run_replay(args, scenario, name)
    if entry is not None and _designated(args) and not args.json:
        return _run_entry(args, entry)
    progress = None if args.json else Progress(args.plain)
    from futex.check.exploring import explore

    default_pre = entry.preemptions if entry is not None and args.strategy in (None, "dfs") else 2
    try:
        result = explore(scenario, _strategy(args, default_pre), _budget(args), seed=args.seed,
                         backend=args.backend, minimize=not args.no_minimize,
                         progress=progress)
    finally:
        if progress is not None:
            progress.close()
    if args.json:
        print(report.as_json(result))
    else:
        report.show(result, target=args.target, plain=args.plain)
    if result.failure is not None:
        return EXIT_FAILURE
    if args.require_complete and not result.complete:
        return EXIT_INCOMPLETE
    return EXIT_OK


def _run_replay(args: argparse.Namespace, scenario: Any, name: str) -> int:
    from futex.check import report
    from futex.check.replaying import decode, replay

    try:
        decode(args.replay)
    except ValueError as exc:
        raise UsageError(f"--replay: {exc}") from None
    outcome = replay(scenario, args.replay, backend=args.backend)
    if args.json:
        print(json.dumps(report.outcome_dict(outcome, scenario=name, replay=args.replay),
                         indent=2))
    else:
        print(report.outcome_text(outcome, scenario=name, replay=args.replay,
                                  target=args.target))
    return EXIT_OK if outcome.kind == "ok" else EXIT_FAILURE


def _run_entry(args: argparse.Namespace, entry: Any) -> int:
    """A bundled target's designated check, with its full report(s)."""
    from futex.check import report
    from futex.check.bundled.suite import check_entry

    progress = Progress(args.plain)
    try:
        verdict = check_entry(entry, seed=args.seed, backend=args.backend, progress=progress)
    finally:
        progress.close()
    print(f"{entry.name}: {entry.summary}\n  source: {entry.source}\n"
          f"  designated: {entry.designated}; expected: {entry.kind or 'pass'}\n")
    for result in verdict.results:
        report.show(result, target=args.target, plain=args.plain)
        print()
    print(f"verdict: {verdict.verdict} ({'as expected' if verdict.ok else 'NOT as expected'})")
    return EXIT_FAILURE if entry.broken or not verdict.ok else EXIT_OK


# -- every bundled entry ----------------------------------------------------------------------

ROW = ("name", "expected", "verdict", "schedules", "time", "pre", "steps", "replays")


def _row(v: Any) -> tuple[str, ...]:
    e = v.entry
    verdict = v.verdict if len(v.verdict) <= 70 else v.verdict[:67] + "..."
    return (e.name, e.kind or "pass", verdict, f"{v.schedules:,}", f"{v.elapsed:.2f} s",
            "-" if v.preemptions is None else str(v.preemptions),
            "-" if v.steps is None else str(v.steps),
            "-" if v.replayed is None else ("yes" if v.replayed else "NO"))


def _run_bundled(args: argparse.Namespace) -> int:
    from futex.check.bundled.suite import check_entry

    began = time.perf_counter()
    verdicts = []
    widths = (27, 11, 26, 9, 7, 3, 5, 7)
    out = sys.stdout

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    if not args.json:
        print(line(ROW), file=out)
        print(line(["-" * w for w in widths]), file=out, flush=True)
    for entry in _entries(args.sync):
        progress = None if args.json else Progress(args.plain, label=entry.name)
        try:
            v = check_entry(entry, seed=args.seed, backend=args.backend, progress=progress)
        finally:
            if progress is not None:
                progress.close()
        verdicts.append(v)
        if not args.json:
            print(line(_row(v)), file=out, flush=True)
    elapsed = time.perf_counter() - began
    broken = [v for v in verdicts if v.entry.broken]
    twins = [v for v in verdicts if not v.entry.broken]
    ok = all(v.ok for v in verdicts)
    if args.json:
        print(json.dumps({"ok": ok, "elapsed": round(elapsed, 3),
                          "entries": [v.as_dict() for v in verdicts]}, indent=2))
    else:
        print(f"\n{sum(v.ok for v in broken)}/{len(broken)} broken algorithms found by their "
              f"designated strategy, {sum(v.ok for v in twins)}/{len(twins)} correct ones "
              f"passed their bounds, in {elapsed:.1f} s", file=out)
        for v in verdicts:
            if not v.ok:
                print(f"  {v.entry.name}: {v.verdict}", file=out)
    return EXIT_OK if ok else EXIT_FAILURE


def _entries(sync: bool) -> list[Any]:
    from futex.check import bundled

    entries = list(bundled.ALL.values())
    if sync:
        from futex.check.bundled.sync import SYNC

        entries += SYNC.values()
    return entries


def _list(out: TextIO, sync: bool = False) -> int:
    for entry in _entries(sync):
        print(f"{entry.name:28} {entry.kind or 'pass':12} {entry.designated}", file=out)
        print(f"{'':28} {entry.summary}", file=out)
    return EXIT_OK


# -- progress --------------------------------------------------------------------------------


class Progress:
    """The progress display: a rich status on a terminal, else plain lines on stderr at
    most once a second (``plain`` forces those)."""

    def __init__(self, plain: bool = False, *, label: str = "", file: TextIO | None = None,
                 every: float = 1.0) -> None:
        self.file = file if file is not None else sys.stderr
        self.label = f"{label}: " if label else ""
        self.every = every
        self._last = 0.0
        self._status: Any = None
        if not plain:
            from futex.check.report import rich_console

            console = rich_console(self.file)
            if console is not None:
                self._status = console.status(f"{self.label}exploring...")
                self._status.start()

    def __call__(self, schedules: int, elapsed: float, strategy: str) -> None:
        text = f"{self.label}{schedules:,} schedules, {elapsed:.1f} s ({strategy})"
        if self._status is not None:
            self._status.update(text)
        elif elapsed - self._last >= self.every:
            self._last = elapsed
            print(f"  exploring: {text}", file=self.file, flush=True)

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


if __name__ == "__main__":
    raise SystemExit(main())
