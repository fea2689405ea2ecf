"""The host kernel's futex(2), mmap(2) and friends with raw register values — the baseline
the benchmarks measure ``futex.native`` and the emulator against, and the differential
harness's fallback where the extension is not built.  Linux on x86-64 only; unsafe by
nature (raw addresses).

Test and benchmark support, not part of the installed package: it is a thin face over
:class:`futex.linux.host.HostLibc` (the calls the host probe makes), with x86-64's numbers.
"""

from __future__ import annotations

import ctypes
import os
import sys

from futex.linux.host import HostLibc, host_libc

__all__ = [
    "MAP_ANONYMOUS",
    "MAP_FIXED_NOREPLACE",
    "MAP_PRIVATE",
    "MAP_SHARED",
    "available",
    "gettid",
    "host_futex",
    "host_mmap",
    "host_mprotect",
    "host_munmap",
    "host_syscall",
]

SYS_futex = 202  # x86-64
SYS_gettid = 186
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_ANONYMOUS = 0x20
MAP_FIXED_NOREPLACE = 0x100000


def available() -> bool:
    """Whether the host kernel can be called with these numbers (Linux on x86-64)."""
    return sys.platform == "linux" and os.uname().machine == "x86_64"


def host_syscall(nr: int, *args: int) -> int:
    """A raw system call (the host's number ``nr``) with up to six register values: its
    result, or -errno."""
    return host_libc().call(nr, *args)


# The benchmarks' baseline: as thin as ctypes allows (libc's syscall bound once, registers
# converted inline), so that a ratio against it measures the emulator, not this wrapper.
_syscall = host_libc().syscall_fn
_as_long = HostLibc.as_long
_get_errno = ctypes.get_errno


def host_futex(uaddr: int, op: int, val: int, utime: int, uaddr2: int, val3: int) -> int:
    """futex(2) on the host with raw register values: >= 0 or -errno."""
    r: int = _syscall(
        SYS_futex,
        _as_long(uaddr),
        _as_long(op),
        _as_long(val),
        _as_long(utime),
        _as_long(uaddr2),
        _as_long(val3),
    )
    return r if r >= 0 else -_get_errno()


def gettid() -> int:
    """The calling thread's host tid."""
    r: int = _syscall(SYS_gettid, 0, 0, 0, 0, 0, 0)
    return r


def host_mmap(addr: int, length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
    """mmap(2); raises OSError on failure."""
    return host_libc().mmap(length, prot, flags, addr, fd, offset)


def host_munmap(addr: int, length: int) -> None:
    """munmap(2); raises OSError on failure."""
    host_libc().munmap(addr, length)


def host_mprotect(addr: int, length: int, prot: int) -> None:
    """mprotect(2); raises OSError on failure."""
    host_libc().mprotect(addr, length, prot)
