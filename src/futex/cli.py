"""The ``futex`` command line (``python -m futex`` or the ``futex`` console script).

Subcommands:

- ``demo`` — run the producer/consumer workload of :mod:`futex.demo.workload` on real
  threads through an emulated kernel's futexes (``--kernel linux|zircon|liteos``, default
  linux), check the result, and report what the kernel did — on Zircon who owns the mutex
  futex at which inherited priority, on LiteOS the 80-bucket table; on Linux then the
  robust-futex scenario of :mod:`futex.demo.robust` (owner tasks exit holding a robust
  PI mutex and a plain robust mutex; their waiters recover them with EOWNERDEAD), told as
  a numbered, checked narrative, and the cross-process scenario of
  :mod:`futex.demo.crossproc` on the host kernel (worker processes share a counter under a
  :class:`futex.sync.Mutex`; holders are SIGKILLed inside the critical section and a
  survivor recovers the lock).  ``--no-robust`` skips both scenarios, ``--robust-only``
  runs only the first, ``--crossproc`` (``--processes N``) only the second (Linux only).
  Exits 0 if every check passed, 1 otherwise.
- ``bench`` — :mod:`futex.sync` against ``multiprocessing``, ``threading``, ``posix_ipc``
  and a C floor, as ratios (:mod:`futex.benchcli`).
- ``check`` — explore a futex algorithm's schedules on the emulated kernel
  (:mod:`futex.check.cli`): ``check path/file.py:SCENARIO``, ``check bundled:NAME``,
  ``check --bundled``; exits 0 no failure, 1 failure found, 2 usage, 3 bound incomplete
  with ``--require-complete``.

Output (:mod:`futex.demo.display`): on a terminal the demo shows a live display (rich);
when standard output is not a terminal — a pipe, a file, ``TERM=dumb`` — it prints plain
lines instead, exactly what ``--plain`` prints (the live display would have nothing to
animate there, rich would wrap its lines at 80 columns, and its last line would run into
the next).  rich's ``FORCE_COLOR`` and ``TTY_COMPATIBLE=1`` force the live display anyway.
rich is optional (the ``demo`` extra: ``pip install 'futex[demo]'``): without it every run
prints the plain lines, and one without ``--plain`` first says so in one line on standard
error.

Every subcommand behaves in a pipeline: when the reader of standard output goes away
(``python -m futex demo | head -3``) the command stops writing and exits quietly with
status 141 (128 + SIGPIPE, what a shell reports for a command that SIGPIPE ended) — no
traceback, and no "Exception ignored" at interpreter shutdown (standard output is pointed
at ``os.devnull``, as the Python documentation's note on SIGPIPE does).  Usage errors exit
2 with argparse's message, ``--help`` and ``--version`` 0, an interrupt (Ctrl-C) 130.

Each subcommand is a ``(name, help, configure, run, validate)`` entry in
:data:`COMMANDS`: ``configure`` adds its arguments to its subparser, ``validate`` (if any)
returns a usage error for a combination argparse cannot express, ``run`` takes the parsed
arguments and returns the exit status.  Adding a subcommand is adding an entry.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from futex import __version__, benchcli
from futex.check import cli as checkcli
from futex.demo.crossproc import DEFAULT_KILLS, DEFAULT_PROCESSES, run_crossproc
from futex.demo.display import live_console, run_workload, show_robust
from futex.demo.robust import run_robust_demo
from futex.demo.workload import (
    DEFAULT_CAPACITY,
    DEFAULT_ITEMS,
    DEFAULT_KERNEL,
    DEFAULT_THREADS,
    KERNELS,
    MAX_THREADS,
    DemoConfig,
    new_ops,
)

__all__ = ["COMMANDS", "EXIT_BROKEN_PIPE", "Command", "build_parser", "main"]

#: The exit status when the reader of standard output went away: 128 + SIGPIPE (13), as a
#: shell reports for a command that SIGPIPE ended (``signal.SIGPIPE`` is not on Windows).
EXIT_BROKEN_PIPE = 128 + 13


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, one-line help, argument setup and handler."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    validate: Callable[[argparse.Namespace], str | None] | None = None


def _int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"in {low}..{high}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


# -- demo -------------------------------------------------------------------------------


def _configure_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kernel",
        choices=tuple(KERNELS),
        default=DEFAULT_KERNEL,
        help="the emulated kernel whose futexes the workload uses: linux (futex(2)), "
        "zircon (zx_futex_*: ownership and priority inheritance, shown as they change) or "
        "liteos (LiteOS-A SysFutex: the 80-bucket table, shown as it changes) "
        f"(default {DEFAULT_KERNEL})",
    )
    p.add_argument(
        "--threads",
        type=_int_in(2, MAX_THREADS),
        default=DEFAULT_THREADS,
        metavar="N",
        help="worker threads in total, half producers (rounded down), the rest consumers: "
        f"2 to {MAX_THREADS} (default {DEFAULT_THREADS})",
    )
    p.add_argument(
        "--items",
        type=_int_in(0, 0xFFFFFFFF),
        default=DEFAULT_ITEMS,
        metavar="N",
        help=f"items to produce and consume (default {DEFAULT_ITEMS})",
    )
    p.add_argument(
        "--capacity",
        type=_int_in(1, 1 << 20),
        default=DEFAULT_CAPACITY,
        metavar="N",
        help=f"ring buffer slots (default {DEFAULT_CAPACITY})",
    )
    p.add_argument(
        "--plain",
        action="store_true",
        help="no live display: plain lines only (for CI logs; the default when standard "
        "output is not a terminal)",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--no-robust",
        action="store_true",
        help="skip the robust-futex scenario that runs after the Linux workload",
    )
    which.add_argument(
        "--robust-only",
        action="store_true",
        help="run only the robust-futex scenario (Linux; owner tasks exit holding a robust "
        "PI mutex and a plain robust mutex; their waiters recover them)",
    )
    which.add_argument(
        "--crossproc",
        action="store_true",
        help="run only the cross-process scenario, on the host kernel: worker processes "
        "share a counter under a futex.sync.Mutex, holders are SIGKILLed inside their "
        "critical section and a survivor recovers the lock (OwnerDied, journal rollback, "
        "make_consistent); prints the kill -> OwnerDied latency",
    )
    p.add_argument(
        "--processes",
        type=_int_in(2, 16),
        default=DEFAULT_PROCESSES,
        metavar="N",
        help=f"worker processes of the cross-process scenario (default {DEFAULT_PROCESSES})",
    )


def _validate_demo(args: argparse.Namespace) -> str | None:
    if args.crossproc and args.kernel != "linux":
        return "--crossproc: the cross-process scenario runs on the host kernel (Linux)"
    if args.robust_only and args.kernel != "linux":
        return f"--robust-only: the robust-futex scenario runs on Linux only, not {args.kernel}"
    return None


def _run_demo(args: argparse.Namespace) -> int:
    console = None if args.plain else live_console()
    if args.crossproc:
        return run_crossproc(args.processes, DEFAULT_KILLS, console)
    ok = True
    if not args.robust_only:
        config = DemoConfig(threads=args.threads, items=args.items, capacity=args.capacity)
        ok = run_workload(config, new_ops(args.kernel), console).ok
    if args.kernel != "linux":
        if not args.no_robust:
            print("(the robust-futex scenario runs on Linux only: skipped)")
    elif not args.no_robust:
        if not args.robust_only:
            print(flush=True)
        robust = run_robust_demo()
        show_robust(robust, console)
        ok = robust.ok and ok
        if not args.robust_only:
            print(flush=True)
            ok = run_crossproc(args.processes, DEFAULT_KILLS, console) == 0 and ok
    return 0 if ok else 1


#: The subcommands, in the order ``--help`` lists them.
COMMANDS: tuple[Command, ...] = (
    Command(
        "demo",
        "producer/consumer on real threads through an emulated kernel's futexes "
        "(Linux, Zircon or LiteOS-A), checked",
        _configure_demo,
        _run_demo,
        _validate_demo,
    ),
    Command("bench", benchcli.HELP, benchcli.configure, benchcli.run),
    Command("check", checkcli.HELP, checkcli.configure, checkcli.run, checkcli.validate),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one subparser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="futex",
        description="The futex subsystem in Python: an emulated futex kernel with the "
        "exact semantics of Linux, Zircon and LiteOS-A.",
    )
    parser.add_argument("--version", action="version", version=f"futex {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(p)
        p.set_defaults(handler=cmd.run, validate=cmd.validate, subparser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit
    status.  Usage errors exit through argparse (status 2); if the reader of standard
    output goes away, :data:`EXIT_BROKEN_PIPE` quietly."""
    try:
        try:
            return _main(argv)
        finally:  # a broken pipe shows here at the latest, not at interpreter shutdown
            if sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError:
        return _stdout_gone()


def _stdout_gone() -> int:
    """Standard output's reader went away: point the descriptor at ``os.devnull``, so the
    interpreter's flush at exit finds somewhere to write what is still buffered (no
    "Exception ignored ... BrokenPipeError"), and return :data:`EXIT_BROKEN_PIPE`."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no stdout, or not a real file
        return EXIT_BROKEN_PIPE
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
    return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else sys.argv[1:])
    validate: Callable[[argparse.Namespace], str | None] | None = args.validate
    if validate is not None and (problem := validate(args)) is not None:
        subparser: argparse.ArgumentParser = args.subparser
        subparser.error(problem)  # exits with status 2
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
