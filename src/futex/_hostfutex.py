"""The host kernel's futex(2) and mmap(2) through ctypes — the baseline the benchmarks
measure ``futex.native`` against, and the differential harness's fallback where the
extension is not built.  Linux only; unsafe by nature (raw addresses).

Not a public API: ``futex.native`` (a C extension) replaces it for real use, and its raw
entries (``syscall_futex``, ``syscall6``, ``gettid``) are the differential tests' oracle.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = [
    "MAP_ANONYMOUS",
    "MAP_FIXED_NOREPLACE",
    "MAP_PRIVATE",
    "MAP_SHARED",
    "available",
    "gettid",
    "host_futex",
    "host_syscall",
    "host_mmap",
    "host_mprotect",
    "host_munmap",
]

SYS_futex = 202  # x86-64
SYS_gettid = 186
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_ANONYMOUS = 0x20
MAP_FIXED_NOREPLACE = 0x100000
_MAP_FAILED = ctypes.c_void_p(-1).value


def available() -> bool:
    """Whether the host kernel can be called (Linux on x86-64)."""
    return sys.platform == "linux" and os.uname().machine == "x86_64"


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = [ctypes.c_long] * 7
_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_munmap = _libc.munmap
_munmap.restype = ctypes.c_int
_munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_mprotect = _libc.mprotect
_mprotect.restype = ctypes.c_int
_mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def _as_long(v: int) -> int:
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >> 63 else v


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
    return r if r >= 0 else -ctypes.get_errno()


def host_syscall(nr: int, *args: int) -> int:
    """A raw system call (the host's number ``nr``) with up to six register values: its
    result, or -errno.  Any architecture: the caller knows the numbers."""
    regs = [_as_long(v) for v in args] + [0] * (6 - len(args))
    r: int = _syscall(nr, *regs)
    return r if r >= 0 else -ctypes.get_errno()


def gettid() -> int:
    """The calling thread's host tid."""
    r: int = _syscall(SYS_gettid, 0, 0, 0, 0, 0, 0)
    return r


def host_mmap(addr: int, length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
    """mmap(2); raises OSError on failure."""
    r = _mmap(addr or None, length, prot, flags, fd, offset)
    if r is None or r == _MAP_FAILED:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(r)


def host_munmap(addr: int, length: int) -> None:
    if _munmap(addr, length):
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def host_mprotect(addr: int, length: int, prot: int) -> None:
    if _mprotect(addr, length, prot):
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
