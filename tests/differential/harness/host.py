"""The host side's system calls: raw futex(2), futex2, and the mmap / mprotect / munmap /
msync that build the layout, on the host kernel.

The host is reached through the raw entries of ``futex.native`` (``syscall_futex``,
``syscall6``, ``gettid``).  ctypes stays only for reading and writing the layout's memory
at raw addresses (``string_at``, ``memmove``, in ``host_layout``), which the extension does
not offer.  Without the extension (``NATIVE_MISSING`` says why) the calls fall back to
``tests/support/hostfutex.py`` (ctypes), for the futex2 checks in ``tests/linux``; the
differential tests skip (``availability``).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

from tests.differential.harness.layout import PAGE, U64

__all__ = [
    "NATIVE_MISSING",
    "gettid",
    "host_futex",
    "host_mmap",
    "host_mprotect",
    "host_munmap",
    "host_page_mapped",
    "host_syscall",
]


MS_ASYNC = 1


#: Why the host oracle is the ctypes fallback (futex.native did not import), or "".
NATIVE_MISSING = ""
try:
    from futex import native as _native
except ImportError as exc:  # pragma: no cover - the extension is built in CI
    _native = None  # type: ignore[assignment]
    NATIVE_MISSING = f"futex.native (the C extension) is not available: {exc}"

if _native is not None:
    #: futex(2) on the host with raw register values: >= 0 or -errno (the extension's
    #: raw entry; the GIL is released only for the commands that can sleep).
    host_futex: Callable[[int, int, int, int, int, int], int] = _native.syscall_futex
    #: System call ``nr`` on the host with up to six raw register values: >= 0 or -errno.
    host_syscall: Callable[..., int] = _native.syscall6
    #: The calling thread's host tid.
    gettid: Callable[[], int] = _native.gettid
else:  # pragma: no cover - tests/linux's futex2 checks only (the differential tests skip)
    from tests.support import hostfutex as _hf

    host_futex = _hf.host_futex
    gettid = _hf.gettid
    _libc = ctypes.CDLL(None, use_errno=True)
    _host_syscall = _libc.syscall
    _host_syscall.restype = ctypes.c_long
    _host_syscall.argtypes = [ctypes.c_long] * 7

    def host_syscall(nr: int, *args: int) -> int:
        regs = [(a & U64) - (1 << 64) if (a & U64) >> 63 else a & U64 for a in args]
        regs += [0] * (6 - len(regs))
        r: int = _host_syscall(nr, *regs)
        return r if r >= 0 else -ctypes.get_errno()


SYS_MMAP, SYS_MPROTECT, SYS_MUNMAP, SYS_MSYNC = 9, 10, 11, 26  # x86-64


def _check(r: int, what: str) -> int:
    if r < 0:
        raise OSError(-r, f"{what}: {os.strerror(-r)}")
    return r


def host_mmap(addr: int, length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
    """mmap(2) on the host; raises OSError on failure."""
    return _check(host_syscall(SYS_MMAP, addr, length, prot, flags, fd, offset), "mmap")


def host_munmap(addr: int, length: int) -> None:
    _check(host_syscall(SYS_MUNMAP, addr, length), "munmap")


def host_mprotect(addr: int, length: int, prot: int) -> None:
    _check(host_syscall(SYS_MPROTECT, addr, length, prot), "mprotect")


#: Addresses at or above this are never user mappings (TASK_SIZE of 4-level paging).
_TASK_SIZE = 0x7FFFFFFFF000


def host_page_mapped(page: int) -> bool:
    """Whether the host process has anything mapped at ``page`` (page aligned)."""
    if page >= _TASK_SIZE or page < 0:
        return False
    return host_syscall(SYS_MSYNC, page, PAGE, MS_ASYNC) == 0
