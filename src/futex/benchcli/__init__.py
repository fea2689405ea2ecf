"""``python -m futex bench``: futex.sync against its Python peers and a C floor, in one run.

What it measures (issue 13 §7); every ratio is against a baseline measured in the same run:

1. an uncontended ``acquire()`` + ``release()`` pair and ``with lock: pass`` in one process:
   futex.sync.Mutex against multiprocessing.Lock, futex.sync.RLock against
   multiprocessing.RLock, beside threading.Lock / RLock, posix_ipc.Semaphore and a C floor;
2. a contended counter: two processes lock, increment a shared counter, unlock, N times
   each (M ops/s), against multiprocessing.Lock and posix_ipc.Semaphore;
3. a ping-pong round trip between two processes pinned to one CPU, and unpinned:
   futex.sync.Semaphore and Event against posix_ipc.Semaphore and multiprocessing's;
4. semaphore producer/consumer throughput over a bounded buffer;
5. a condition round trip: futex.sync.Condition against multiprocessing.Condition;
6. RWLock read-heavy throughput against one multiprocessing.Lock for reads and writes;
7. holder-killed recovery: a holder of futex.sync.Mutex is SIGKILLed, a waiter in another
   process gets the lock with OwnerDied — ms from the kill (median, p90); the peers never
   get theirs.

The C floor is the same operation in a C program compiled when the run starts (a robust
process-shared pthread mutex, Drepper's futex mutex, a raw FUTEX_WAIT/FUTEX_WAKE ping-pong,
glibc's EOWNERDEAD recovery); without a C compiler those rows say so.  futex.sync and
posix_ipc are optional: their rows then say "not available: ..." / "not installed" and the
rest runs.  Targets (issue 13) are printed beside the ratios they judge.

Output: a plain-text table (row, figure, unit, baseline, ratio, target), ``--json FILE``
for the figures, ``--plot FILE.png`` for a bar chart of the ratios (needs matplotlib).
The full run takes about half a minute on a 2-CPU machine, ``--quick`` about 10 s;
``--scale F`` multiplies every count (0.01 makes a smoke run).

For the command line (:mod:`futex.cli`): :data:`HELP`, :func:`configure` (adds the options
to a parser) and :func:`run` (takes the parsed arguments, returns the exit status).
Importing this package is cheap: the measuring modules are imported when a run starts —
:mod:`.harness` (configuration, rows, timing loops, forked workers: started together,
every wait bounded, every child reaped), :mod:`.peers` (futex.sync, posix_ipc,
multiprocessing, each optional but the last), :mod:`.cfloor` (the C floor),
:mod:`.uncontended`, :mod:`.twoproc` and :mod:`.recovery` (the rows).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from futex._argtypes import positive_float

if TYPE_CHECKING:
    from futex.benchcli.harness import Config, Row

__all__ = ["HELP", "configure", "main", "render", "run", "run_bench"]

HELP = (
    "benchmark futex.sync against multiprocessing, posix_ipc and a C floor "
    "(uncontended, contended, ping-pong, recovery of a killed holder)"
)


def configure(p: argparse.ArgumentParser) -> None:
    """Add the ``bench`` options to ``p`` (a subparser, or a parser of its own)."""
    p.add_argument("--quick", action="store_true", help="smaller counts (about 10 s)")
    p.add_argument(
        "--scale",
        type=positive_float,
        default=1.0,
        metavar="F",
        help="multiply every count by F (e.g. 0.01 for a smoke run; default 1)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    p.add_argument(
        "--plot", metavar="FILE.png", help="draw the ratios as a bar chart (needs matplotlib)"
    )


def run(args: argparse.Namespace) -> int:
    """Run the benchmark with parsed ``args``; print the table; return the exit status
    (0; 2 when ``--plot`` was asked for and matplotlib is missing — said before any run)."""
    if args.plot and not _have_matplotlib():
        print(
            "futex bench: --plot needs matplotlib, which is not installed (pip install matplotlib)",
            file=sys.stderr,
        )
        return 2
    from futex.benchcli.harness import FULL, QUICK

    cfg = QUICK if args.quick else FULL
    if args.scale != 1.0:
        cfg = cfg.scaled(args.scale)
    res = run_bench(cfg)
    print(render(res))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        print(f"figures written to {args.json}", file=sys.stderr)
    if args.plot:
        plot(res, args.plot)
        print(f"chart written to {args.plot}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``bench/bench_sync.py`` and the like: parse ``argv`` and :func:`run`."""
    p = argparse.ArgumentParser(prog="futex bench", description=HELP)
    configure(p)
    return run(p.parse_args(argv))


def _have_matplotlib() -> bool:
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        return False
    return True


# -- the run --------------------------------------------------------------------------------


def run_bench(cfg: Config) -> dict[str, Any]:
    """Every section; the report as JSON-able data: ``meta``, ``rows``, ``targets``."""
    from futex.benchcli import peers
    from futex.benchcli.cfloor import compile_floor
    from futex.benchcli.harness import allowed_cpus, log
    from futex.benchcli.recovery import bench_recovery
    from futex.benchcli.twoproc import bench_twoproc
    from futex.benchcli.uncontended import bench_uncontended

    sync, why = peers.sync()
    mode = getattr(sync, "robust_mode", None)
    pipc = peers.posix_ipc()
    meta: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus_allowed": len(allowed_cpus()),
        "mode": "quick" if cfg.quick else "full",
        "scale": cfg.scale,
        "config": {k: v for k, v in cfg.__dict__.items() if k != "quick"},
        "futex_sync": why or (f"robust_mode {mode()}" if callable(mode) else "present"),
        "posix_ipc": getattr(pipc, "VERSION", "present") if pipc else peers.NOT_INSTALLED,
        "load_average_at_start": os.getloadavg()[0],
    }
    log(f"futex.sync benchmark ({meta['mode']}, scale {cfg.scale:g}), Python {meta['python']}")
    with tempfile.TemporaryDirectory(prefix="futex_bench_") as tmp:
        floor = compile_floor(tmp)
        meta["c_floor"] = floor.why or "compiled"
        rows = bench_uncontended(cfg, floor)
        rows += bench_twoproc(cfg, floor)
        rows += bench_recovery(cfg, floor)
    meta["load_average_at_end"] = os.getloadavg()[0]
    _finish(rows)
    log("done")
    return {
        "meta": meta,
        "rows": [r.as_json() for r in rows],
        "targets": [
            {
                "row": r.name,
                "target": r.target.label(),
                "ratio": r.ratio,
                "value": r.value,
                "met": r.target_status,
            }
            for r in rows
            if r.target is not None
        ],
    }


def _finish(rows: list[Row]) -> None:
    """Figures from samples, ratios against the baselines, targets judged."""
    from futex.benchcli.harness import median

    for r in rows:
        if r.value is None and r.samples and not r.status:
            r.value = median(r.samples)
    by = {(r.section, r.name): r for r in rows}
    for r in rows:
        for name in (r.baseline, r.fallback):
            base = by.get((r.section, name)) if name else None
            if r.value is not None and base is not None and base.value:
                r.baseline = name
                r.ratio = r.value / base.value
                break
        if r.target is not None:
            met = r.target.met(r)
            if met is None:
                against = r.target.against
                r.target_status = (
                    f"n/a: no figure of {against}" if against and r.baseline != against else "n/a"
                )
            else:
                r.target_status = "ok" if met else "MISSED"


# -- output ---------------------------------------------------------------------------------


def _figure(r: dict[str, Any]) -> str:
    v = r["value"]
    if v is None:
        return "-"
    if v >= 100:
        text = f"{v:,.0f}"
    elif v >= 10:
        text = f"{v:.1f}"
    else:
        text = f"{v:.3g}" if v < 1 else f"{v:.2f}"
    if "p90_ms" in r.get("extra", {}):
        text += f" (p90 {r['extra']['p90_ms']:.3g})"
    return text


def render(res: dict[str, Any]) -> str:
    """The report as plain text: a header, one table per section, the targets."""
    meta = res["meta"]
    lines = [
        f"futex.sync benchmark — Python {meta['python']} on {meta['platform']}, "
        f"{meta['cpus_allowed']} CPUs allowed, {meta['mode']} run (scale {meta['scale']:g})",
        f"futex.sync: {meta['futex_sync']}; posix_ipc: {meta['posix_ipc']}; "
        f"C floor: {meta['c_floor']}; load average {meta['load_average_at_start']:.1f} at "
        f"start, {meta['load_average_at_end']:.1f} at end",
    ]
    cols = ["row", "figure", "unit", "ratio", "vs", "target"]
    sections: dict[str, list[dict[str, Any]]] = {}
    for r in res["rows"]:
        sections.setdefault(r["section"], []).append(r)
    for title, rows in sections.items():
        table = []
        for r in rows:
            ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
            target = ""
            if r["target"]:
                target = f"{r['target']}: {r['target_met'] or 'n/a'}"
            vs = r["baseline"] or ""
            if r["ratio"] is None:
                vs = ""
            figure = _figure(r) if r["value"] is not None else (r["status"] or "-")
            table.append([r["name"], figure, r["unit"], ratio, vs, target])
        widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(cols)]
        lines += ["", title]
        lines.append("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        for row in table:
            cells = [
                v.rjust(w) if i in (1, 3) and not v[:1].isalpha() else v.ljust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
    lines += ["", "Targets (issue 13)"]
    for t in res["targets"]:
        lines.append(f"  {t['row']}: {t['target']} -> {t['met'] or 'n/a'}")
    lines += [
        "",
        "ratio: figure / the 'vs' row's figure (times: lower is faster; M ops/s: higher is "
        "more).  Ping-pong rows fall back to multiprocessing.Semaphore as 'vs' when posix_ipc "
        "is not installed (their target is then n/a).",
    ]
    return "\n".join(lines)


def plot(res: dict[str, Any], path: str) -> None:
    """A horizontal bar chart of every ratio, by section, with the targets marked."""
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")

    rows = [r for r in res["rows"] if r["ratio"] is not None]
    fig, ax = plt.subplots(figsize=(12, 0.32 * len(rows) + 2.5))
    sections = list(dict.fromkeys(r["section"] for r in rows))
    colours = plt.get_cmap("tab10")
    ys = list(range(len(rows)))[::-1]
    for y, r in zip(ys, rows, strict=True):
        ax.barh(y, r["ratio"], color=colours(sections.index(r["section"]) % 10))
        better = "higher is better" if r["higher_is_better"] else "lower is better"
        ax.text(r["ratio"], y, f" {r['ratio']:.2f}x ({better})", va="center", fontsize=6)
        if r["target"] and r["target"][:1] in "<>" and r["target"].endswith("x"):
            limit = float(r["target"].split()[1].rstrip("x"))
            ax.plot([limit, limit], [y - 0.4, y + 0.4], color="black", linewidth=2)
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{r['name']}  (vs {r['baseline']})" for r in rows], fontsize=7)
    ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ratios = [1.0, *(r["ratio"] for r in rows)]
    ax.set_xlim(min(ratios) / 1.5, max(ratios) * 6)  # room for the labels
    ax.set_xlabel("ratio to the baseline measured in the same run (log scale; black: target)")
    meta = res["meta"]
    ax.set_title(
        f"futex.sync vs peers — Python {meta['python']}, {meta['cpus_allowed']} CPUs, "
        f"{meta['mode']} run",
        fontsize=9,
    )
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(i % 10)) for i in range(len(sections))]
    fig.legend(handles, sections, fontsize=7, loc="lower center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0.07 + 0.5 / len(rows), 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
