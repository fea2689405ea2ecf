"""Run a command on this host with parts of the futex family taken away, as an older kernel
(or one built without them) would answer: the suite must pass there too.

    python tests/without_features.py [--without FEATURES] -- COMMAND...

A seccomp filter (installed with ``PR_SET_NO_NEW_PRIVS``, so no privilege is needed, and
inherited by the command and all its threads) answers the taken-away calls before the
kernel sees them, exactly as a kernel without them does:

==============  ===========================================================================
feature         what the filter answers
==============  ===========================================================================
lock_pi2        futex(2) with command FUTEX_LOCK_PI2 (13): ENOSYS, as an unknown command
futex_waitv     futex_waitv (449): ENOSYS
futex2          futex_wake, futex_wait, futex_requeue (454-456): ENOSYS
futex_hash      prctl(PR_FUTEX_HASH): EINVAL, as an unknown option
==============  ===========================================================================

The default takes all four away: a 5.13 kernel as far as calls that exist go (its
behaviour otherwise stays this kernel's; :func:`futex.linux.host.probe` measures each
fact on its own, so the emulator built from the probe agrees call by call).  x86-64 only.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import struct
import sys

FEATURES = ("lock_pi2", "futex_waitv", "futex2", "futex_hash")

AUDIT_ARCH_X86_64 = 0xC000003E
SYS_FUTEX, SYS_PRCTL, SYS_WAITV = 202, 157, 449
SYS_FUTEX2 = (454, 455, 456)
FUTEX_LOCK_PI2, FUTEX_OPTION_BITS = 13, 0x180  # PRIVATE | CLOCK_REALTIME
PR_FUTEX_HASH = 78
ENOSYS, EINVAL = 38, 22

# classic BPF
LD_W_ABS, JEQ_K, AND_K, RET_K = 0x20, 0x15, 0x54, 0x06
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
# struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6] (low halves first)
OFF_NR, OFF_ARCH = 0, 4


def off_arg(i: int) -> int:
    return 16 + 8 * i


def program(without: set[str]) -> list[tuple[int, int, int, int]]:
    """The filter: (code, jt, jf, k) rows, jumps resolved from labels."""
    rows: list[tuple[int, object, object, int]] = []
    labels: dict[str, int] = {}

    def emit(code: int, k: int = 0, jt: object = 0, jf: object = 0) -> None:
        rows.append((code, jt, jf, k))

    def label(name: str) -> None:
        labels[name] = len(rows)

    emit(LD_W_ABS, OFF_ARCH)
    emit(JEQ_K, AUDIT_ARCH_X86_64, 0, "allow")
    emit(LD_W_ABS, OFF_NR)
    nrs = ([SYS_WAITV] if "futex_waitv" in without else []) + (
        list(SYS_FUTEX2) if "futex2" in without else []
    )
    for nr in nrs:
        emit(JEQ_K, nr, "enosys", 0)
    if "lock_pi2" in without:
        emit(JEQ_K, SYS_FUTEX, "futex", 0)
    if "futex_hash" in without:
        emit(JEQ_K, SYS_PRCTL, "prctl", 0)
    emit(RET_K, RET_ALLOW)
    label("futex")
    emit(LD_W_ABS, off_arg(1))  # futex_op, low 32 bits
    emit(AND_K, ~FUTEX_OPTION_BITS & 0xFFFFFFFF)
    emit(JEQ_K, FUTEX_LOCK_PI2, "enosys", "allow")
    label("prctl")
    emit(LD_W_ABS, off_arg(0))  # option: an int
    emit(JEQ_K, PR_FUTEX_HASH, "einval", "allow")
    label("enosys")
    emit(RET_K, RET_ERRNO | ENOSYS)
    label("einval")
    emit(RET_K, RET_ERRNO | EINVAL)
    label("allow")
    emit(RET_K, RET_ALLOW)

    def target(at: int, j: object) -> int:
        if isinstance(j, str):
            offset = labels[j] - at - 1
            assert 0 <= offset < 256, (j, offset)
            return offset
        assert isinstance(j, int)
        return j

    return [(c, target(i, jt), target(i, jf), k) for i, (c, jt, jf, k) in enumerate(rows)]


def install(without: set[str]) -> None:
    """Install the filter on the calling thread (and what it execs); OSError on failure."""
    rows = program(without)
    raw = b"".join(struct.pack("<HBBI", c, jt, jf, k) for c, jt, jf, k in rows)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("<HxxxxxxQ", len(rows), ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog, len(fprog))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]  # fmt: skip
    if libc.prctl(38, 1, 0, 0, 0):  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(22, 2, ctypes.addressof(fbuf), 0, 0):  # PR_SET_SECCOMP, MODE_FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--without",
        default=",".join(FEATURES),
        help=f"comma-separated, of {', '.join(FEATURES)} (default: all)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    without = {f for f in args.without.split(",") if f}
    if not command or without - set(FEATURES):
        parser.error(f"give a command after --, and features among {FEATURES}")
    if sys.platform != "linux" or platform.machine() != "x86_64":
        print("without_features: x86-64 Linux only", file=sys.stderr)
        return 2
    install(without)
    os.execvp(command[0], command)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
