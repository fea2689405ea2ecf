#!/usr/bin/env python3
"""Compare two sets of ``bench_emulated.py --json`` figures: a base and a new tree.

Each figure's median (ns) is taken over the runs of each side (the median of the runs'
medians), and the line shows new / base.  Run the two sides alternately on an idle
machine, e.g. against commit REV::

    git worktree add /tmp/base REV
    for i in 1 2 3; do
      (cd /tmp/base && PYTHONPATH=/tmp/base/src python bench/bench_emulated.py --quick \\
         --plain --json /tmp/base_$i.json)
      python bench/bench_emulated.py --quick --plain --json /tmp/new_$i.json
    done
    python bench/compare.py --base /tmp/base_*.json --new /tmp/new_*.json

(A base older than the bench's own helpers needs them as they were then: run its copy of
``bench/``, as above.)
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Iterator, Sequence
from typing import Any


def figures(node: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """Every ``median_ns`` of a JSON report, named by its path (list items by their
    ``call`` / ``name`` / ``label`` where they have one)."""
    if isinstance(node, dict):
        if "median_ns" in node:
            yield path, float(node["median_ns"])
            return
        for key, value in node.items():
            if key != "meta":
                yield from figures(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            name = str(i)
            if isinstance(item, dict):
                name = str(item.get("call") or item.get("name") or item.get("label") or i)
            yield from figures(item, f"{path}/{name}")


def medians(paths: Sequence[str]) -> dict[str, float]:
    runs: dict[str, list[float]] = {}
    for p in paths:
        with open(p) as f:
            for name, ns in figures(json.load(f)):
                runs.setdefault(name, []).append(ns)
    return {name: statistics.median(v) for name, v in runs.items()}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--base", nargs="+", required=True, help="JSON reports of the base")
    ap.add_argument("--new", nargs="+", required=True, help="JSON reports of the new tree")
    args = ap.parse_args(argv)
    base, new = medians(args.base), medians(args.new)
    print(f"{'new/base':>8}  {'base ns':>10}  {'new ns':>10}  figure")
    for name in sorted(base.keys() & new.keys()):
        b, n = base[name], new[name]
        print(f"{n / b:8.3f}  {b:10.0f}  {n:10.0f}  {name}")


if __name__ == "__main__":
    main()
