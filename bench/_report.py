"""Output shared by the benchmarks: tables of figures, printed plain or with rich."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Table", "emit", "ns", "parse_args", "ratio", "render_plain", "render_rich"]


def parse_args(
    doc: str | None, quick_seconds: int, argv: Sequence[str] | None
) -> argparse.Namespace:
    """The options every benchmark takes: --quick, --plain, --json, --repeats, --gc."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    ap.add_argument("--quick", action="store_true", help=f"a short run (~{quick_seconds} s)")
    ap.add_argument("--plain", action="store_true", help="plain-text tables (no rich)")
    ap.add_argument("--json", metavar="PATH", help="write the figures as JSON to PATH")
    ap.add_argument("--repeats", type=int, help="samples per figure (default: 21, quick: 7)")
    ap.add_argument("--gc", action="store_true", help="keep the cyclic GC on while timing")
    return ap.parse_args(argv)


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""


def ns(v: float | None) -> str:
    """A duration in ns, to a readable precision ("-" when absent)."""
    if v is None:
        return "-"
    if v >= 100_000:
        return f"{v / 1000:,.0f} µs"
    if v >= 100:
        return f"{v:,.0f} ns"
    return f"{v:.1f} ns"


def ratio(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def render_plain(tables: list[Table]) -> None:
    for t in tables:
        print()
        print(t.title)
        widths = [
            max(len(c), *(len(r[i]) for r in t.rows)) if t.rows else len(c)
            for i, c in enumerate(t.columns)
        ]
        print("  ".join(c.ljust(w) for c, w in zip(t.columns, widths, strict=True)))
        print("  ".join("-" * w for w in widths))
        for r in t.rows:
            cells = [
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(r, widths, strict=True))
            ]
            print("  ".join(cells))
        if t.note:
            print(f"  ({t.note})")


def render_rich(tables: list[Table], width: int = 120) -> bool:
    """Print with rich; ``False`` when rich is not installed."""
    try:
        from rich import box
        from rich.console import Console
        from rich.table import Table as RichTable
    except ImportError:
        return False
    console = Console(width=max(width, Console().width))
    for t in tables:
        rt = RichTable(
            title=t.title,
            title_justify="left",
            caption=t.note or None,
            caption_justify="left",
            box=box.SIMPLE_HEAVY,
        )
        for i, c in enumerate(t.columns):
            rt.add_column(c, justify="left" if i == 0 else "right", no_wrap=i != 0)
        for r in t.rows:
            rt.add_row(*r)
        console.print(rt)
        console.print()
    return True


def emit(
    args: argparse.Namespace,
    header: Sequence[str],
    tables: list[Table],
    key_ratios: Sequence[tuple[str, str]],
    res: dict[str, Any],
    width: int = 120,
) -> None:
    """Print the header lines, the tables (rich unless --plain or absent) and the key
    ratios; write ``res`` as JSON if --json named a file."""
    for line in header:
        print(line)
    if args.plain or not render_rich(tables, width):
        render_plain(tables)
    print()
    print("Key ratios")
    for label, value in key_ratios:
        print(f"  {label}: {value}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)
            fh.write("\n")
