"""How ``python -m futex demo`` shows itself: plain lines, or rich's live display.

Plain lines are what ``--plain`` prints, what a pipe, a file or a dumb terminal gets, and
what every run gets when rich is not installed: the workload's header, a progress line at
most once a second, then :func:`demo_lines`; the robust-futex scenario's numbered
narrative (:meth:`~futex.demo.robust_report.RobustReport.lines`).

The live display (a terminal, rich installed: ``pip install 'futex[demo]'``) shows the
same header, progress bars for the items produced and consumed with the kernel's view
under them, refreshed from the progress callback (on the main thread: rich is never
written from another), then the same report lines in colour.  rich is imported here only,
and only inside the functions that draw with it: the rest of :mod:`futex.demo` and the
emulated kernels never need it.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import TYPE_CHECKING, Any

from futex.demo.kernels import FutexOps
from futex.demo.robust_report import RobustReport
from futex.demo.workload import DemoConfig, DemoReport, Progress, run_demo

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

__all__ = [
    "NO_RICH_NOTE",
    "ROBUST_HEADER",
    "demo_lines",
    "live_console",
    "run_workload",
    "show_robust",
    "workload_header",
]

ROBUST_HEADER = (
    "futex demo, robust futexes: owner tasks exit holding robust mutexes, and the tasks "
    "waiting for them recover the locks (one process, a real thread per task)"
)

#: The line on standard error when the live display was wanted but rich is not installed.
NO_RICH_NOTE = (
    "futex demo: rich is not installed, so plain output; "
    "for the live display: pip install 'futex[demo]'"
)


def workload_header(config: DemoConfig, ops: FutexOps[Any]) -> str:
    """The first line of a workload run: the kernel, the threads, the items, the ring."""
    return (
        f"futex demo on {ops.title}: {config.producers} producer(s) + "
        f"{config.consumers} consumer(s) (one thread each, one process), {config.items} "
        f"items, ring capacity {config.capacity}; the producers start first, until the "
        "ring is full"
    )


def demo_lines(report: DemoReport) -> list[str]:
    """The report of a demo run as plain text lines: the checks, the futex calls by
    command, the kernel's statistics, the personality's own report (Zircon's ownership
    timeline, LiteOS's bucket table), the timing, and the verdict last."""
    cfg = report.config
    lines = ["checks:"]
    width = max(len(c.name) for c in report.checks)
    for c in report.checks:
        lines.append(f"  {'ok  ' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.detail}")
    calls = report.calls
    by_command = ", ".join(f"{name} {n}" for name, n in calls.most_common()) or "none"
    lines.append(f"futex calls by command: {by_command} ({sum(calls.values())} total)")
    s = report.stats
    lines.append(
        f"kernel: {s.waits} waits queued, {s.wakes} waiters woken, {s.requeues} requeued, "
        f"longest queue {s.longest_queue}, {s.queued} still queued"
    )
    words = ", ".join(f"{name} {index}" for name, index in report.word_buckets.items())
    if report.samples:
        peak = (
            f"at most {report.peak_buckets_used} bucket(s) in use and "
            f"{report.peak_busiest_bucket} waiter(s) in one bucket "
            f"({report.samples} sample{'s' if report.samples != 1 else ''})"
        )
    else:
        peak = "not sampled (the run was shorter than one sample interval)"
    lines.append(f"buckets: futex words hash to {words}; {peak}")
    lines.extend(report.kernel_lines)
    lines.append(
        f"time: {report.elapsed:.3f} s, {report.items_per_second:,.0f} items/s "
        f"({cfg.items} items, {cfg.producers} producers, {cfg.consumers} consumers, "
        f"capacity {cfg.capacity})"
    )
    failed = [c.name for c in report.checks if not c.ok]
    if failed:
        lines.append(f"result: FAIL ({', '.join(failed)})")
    else:
        lines.append(
            f"result: PASS: all {cfg.items} items consumed exactly once, no task blocked, "
            "kernel invariants hold"
        )
    return lines


def live_console() -> Console | None:
    """A rich console for the live display if standard output is a terminal that can show
    one (rich decides, so ``FORCE_COLOR``/``TTY_COMPATIBLE`` count); None for a pipe, a
    file or a dumb terminal: plain lines then.  None as well when rich is not installed,
    after :data:`NO_RICH_NOTE` on standard error.

    If the reader goes away under a forced live display, the console stops writing and
    raises :class:`BrokenPipeError` for the command line (rich's own reaction would exit 1,
    the status of a failed check; rich before 13.8 raises it itself).  Only the main
    thread writes: the live display refreshes from the progress callback, not a thread.
    """
    try:
        from rich.console import Console
    except ImportError:
        print(NO_RICH_NOTE, file=sys.stderr, flush=True)
        return None

    class LiveConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True  # nothing more to write: leaving the live display is quiet
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    console = LiveConsole()
    return console if console.is_terminal and not console.is_dumb_terminal else None


def run_workload(config: DemoConfig, ops: FutexOps[Any], console: Console | None) -> DemoReport:
    """Run the workload on ``ops`` and show it: on ``console``'s live display, or in plain
    lines on standard output if ``console`` is None.  The report, for the verdict."""
    header = workload_header(config, ops)
    if console is not None:
        return _workload_live(console, config, ops, header)
    report = _workload_plain(config, ops, header)
    for line in demo_lines(report):
        print(line)
    return report


def show_report(header: str, lines: list[str], ok: bool, heading: str,
                console: Console | None) -> None:
    """Show a scenario's checked narrative: ``header`` in bold, then each line — in colour
    on ``console`` (the "result:" line green or red by ``ok``, lines starting with
    ``heading`` bold, "FAIL" red, "ok" green), or plain on standard output if it is None."""
    if console is None:
        print(header)
        for line in lines:
            print(line)
        return
    from rich.text import Text

    console.print(Text(header, style="bold"))
    for line in lines:
        style = ""
        stripped = line.lstrip()
        if line.startswith("result:"):
            style = "bold green" if ok else "bold red"
        elif line.startswith(heading):
            style = "bold"
        elif stripped.startswith("FAIL"):
            style = "red"
        elif stripped.startswith("ok  "):
            style = "green"
        console.print(Text(line, style=style), overflow="fold")


def show_robust(report: RobustReport, console: Console | None) -> None:
    """Show the robust-futex scenario's narrative (see :func:`show_report`)."""
    show_report(ROBUST_HEADER, report.lines(), report.ok, "(", console)


def _workload_plain(config: DemoConfig, ops: FutexOps[Any], header: str) -> DemoReport:
    print(header, flush=True)
    next_line = 1.0

    def show(p: Progress) -> None:
        nonlocal next_line
        if p.elapsed >= next_line:  # at most a line a second
            next_line = p.elapsed + 1.0
            status = f"; {p.status}" if p.status else ""
            print(
                f"  {p.elapsed:5.1f} s: produced {p.produced}/{config.items}, "
                f"consumed {p.consumed}/{config.items}, {p.calls} futex calls{status}",
                flush=True,
            )

    return run_demo(config, kernel=ops, on_progress=show)


class _KernelView:
    """The live display's kernel panel: the adapter's latest detail lines."""

    def __init__(self) -> None:
        self.lines: tuple[str, ...] = ()

    def __rich__(self) -> Text:
        from rich.text import Text

        return Text("\n".join(self.lines), style="cyan", overflow="ellipsis", no_wrap=True)


def _workload_live(
    console: Console, config: DemoConfig, ops: FutexOps[Any], header: str
) -> DemoReport:
    from rich.console import Group
    from rich.live import Live
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    console.print(Text(header, style="bold"))
    columns = (
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
    )
    bar = RichProgress(*columns, console=console)
    view = _KernelView()
    produced = bar.add_task("produced", total=config.items, note="")
    consumed = bar.add_task("consumed", total=config.items, note="")

    live = Live(Group(bar, view), console=console, auto_refresh=False)
    next_refresh = 0.0

    def show(p: Progress) -> None:  # on this thread, every 50 ms: it refreshes the display
        nonlocal next_refresh
        bar.update(produced, completed=p.produced)
        bar.update(consumed, completed=p.consumed, note=f"{p.calls} futex calls")
        view.lines = p.detail
        if p.elapsed >= next_refresh:  # 10 times a second
            next_refresh = p.elapsed + 0.1
            live.refresh()

    with live:
        report = run_demo(config, kernel=ops, on_progress=show)
    for line in demo_lines(report):
        style = ""
        if line.startswith("result:"):
            style = "bold green" if report.ok else "bold red"
        elif "FAIL" in line[:8]:
            style = "red"
        console.print(Text(line, style=style), overflow="fold")
    return report
