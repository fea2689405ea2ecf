"""Run a Linux binary under Qiling with a faithful futex, from the command line.

    python -m futex.integrations.qiling.run [--stock] [--report] ROOTFS BINARY [ARGS...]

BINARY is a path inside the ROOTFS directory (Qiling's requirement).  The guest's standard
output and error are this process's.  ``--report`` prints what the guest's threads did
with futexes on standard error after the run (lines starting ``futex: ``).  ``--stock``
runs stock Qiling instead -- only clone3 and rseq answer -ENOSYS, without which no guest
thread ever starts -- to compare.

Exit status: the guest's (its exit_group code); 70 when Qiling reports a deadlock (every
guest thread waits for good: gevent's ``LoopExit``); 71 when the emulator crashed (a
Python exception, its traceback on standard error); 2 for a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Any

__all__ = ["DEADLOCK", "EMULATOR_CRASH", "main", "run"]

#: Exit statuses of the runner (the guest's own are 0..255 too: pick ones sysexits uses
#: for internal errors, which a test program does not).
DEADLOCK = 70
EMULATOR_CRASH = 71


def run(rootfs: str, argv: list[str], *, stock: bool = False, report: bool = False) -> int:
    """Run ``argv`` (its first item a path inside ``rootfs``) and return the exit status
    described in the module docstring."""
    import gevent
    from qiling import Qiling
    from qiling.const import QL_VERBOSE

    ql: Any = Qiling(argv, rootfs, multithread=True, verbose=QL_VERBOSE.DISABLED)
    integ = None
    if stock:
        for name in ("clone3", "rseq"):
            ql.os.set_syscall(name, lambda ql, *args: -38)
    else:
        from futex.integrations.qiling import install

        integ = install(ql)
    status: int
    try:
        ql.run()
    except gevent.exceptions.LoopExit:
        print("futex: Qiling reported a deadlock (every guest thread waits for good)",
              file=sys.stderr)  # fmt: skip
        status = DEADLOCK
    except Exception:
        traceback.print_exc()
        status = EMULATOR_CRASH
    else:
        status = _exit_status(ql)
    if report and integ is not None:
        for line in integ.report_lines():
            print(f"futex: {line}", file=sys.stderr)
    sys.stdout.flush()
    return status


def _exit_status(ql: Any) -> int:
    """The guest's exit code: the main thread's (exit_group / exit of the last thread)."""
    main = ql.os.thread_management.main_thread
    code = getattr(main, "exit_code", None)
    if code is None:
        code = getattr(ql.os, "exit_code", 0) or 0
    return int(code) & 0xFF


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m futex.integrations.qiling.run",
        description="Run a Linux binary under Qiling with futex.linux answering its futex calls.",
    )
    parser.add_argument("--stock", action="store_true",
                        help="stock Qiling (clone3/rseq -ENOSYS only), to compare")  # fmt: skip
    parser.add_argument("--report", action="store_true",
                        help="print the futex report on standard error after the run")  # fmt: skip
    parser.add_argument("rootfs", help="the guest's root directory")
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="BINARY [ARGS...]")
    ns = parser.parse_args(args)
    if not ns.argv:
        parser.error("give the BINARY to run (a path inside ROOTFS)")
    if not os.path.isdir(ns.rootfs):
        parser.error(f"ROOTFS {ns.rootfs!r} is not a directory")
    binary = os.path.abspath(ns.argv[0])
    if not os.path.isfile(binary):
        parser.error(f"BINARY {ns.argv[0]!r} is not a file")
    root = os.path.abspath(ns.rootfs)
    if os.path.commonpath([root, binary]) != root:
        parser.error(f"BINARY {ns.argv[0]!r} must be inside ROOTFS {ns.rootfs!r} (Qiling)")
    return run(root, [binary, *ns.argv[1:]], stock=ns.stock, report=ns.report)


if __name__ == "__main__":
    sys.exit(main())
