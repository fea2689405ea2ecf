"""The layout on the host: :class:`HostLayout` reserves ``LAYOUT`` in this process (its
files are memfds; its pages are mapped with MAP_FIXED_NOREPLACE at the first of ``BASES``
where nothing is in the way), brings it back to the fresh state before each sequence, and
reads and writes it and judges the pointers handed to the host.  ``host_layout`` opens it,
with a :class:`Watchdog`, for a run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
from collections.abc import Iterator
from typing import Literal

from futex.linux.host import probe
from futex.memory import PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE
from tests.differential.harness.host import (
    gettid,
    host_mmap,
    host_mprotect,
    host_munmap,
    host_page_mapped,
)
from tests.differential.harness.layout import (
    FILE_C_SIZE,
    LAYOUT,
    NPAGES,
    P_COWED,
    P_EXEC_SHARED,
    P_PRIV_RO,
    P_PRIV_RW,
    P_SHARED_RO,
    P_SHARED_RW,
    P_WRITE_ONLY_PRIV,
    P_WRITE_ONLY_SHARED,
    PAGE,
    PAGE_INDEX,
    READABLE_PAGES,
    RW,
    U32,
    PageSpec,
    file_a,
    file_b,
    file_c,
    pattern,
    pi_page,
)
from tests.differential.harness.peer import Peer
from tests.differential.harness.watchdog import Watchdog

__all__ = [
    "HostLayout",
    "host_layout",
    "poke",
]


MAP_FIXED = 0x10
MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED_NOREPLACE = 0x01, 0x02, 0x20, 0x100000


#: Host bases tried in turn for the reservation.
BASES = (0x7E5500000000, 0x7E4400000000, 0x6E5500000000, 0x5E5500000000)


class HostLayout:
    """The layout reserved in this (host) process."""

    def __init__(self) -> None:
        #: Execute-only pages read on this host's CPU (no protection keys).
        self.exec_readable = not probe().facts.protection_keys
        self.base = 0
        self._maps: list[tuple[int, int]] = []
        self._fds: list[int] = []
        self.expired = 0  # a private page of zeros outside the layout: {0, 0}
        self.fd_a = self.fd_b = self.fd_c = -1
        self.self_tid = gettid()
        self.peer: Peer | None = None
        self.pi_page = b""

    # setup / teardown

    def open(self) -> None:
        self.peer = Peer()
        self.pi_page = pi_page(self.self_tid)
        self.fd_a = self._memfd("futex-diff-a", file_a())
        self.fd_b = self._memfd("futex-diff-b", file_b())
        self.fd_c = self._memfd("futex-diff-c", file_c())
        self.expired = host_mmap(0, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)
        self._maps.append((self.expired, PAGE))
        errors = []
        for base in BASES:
            try:
                self._reserve(base)
            except OSError as exc:
                errors.append(f"{base:#x}: {exc}")
                self._unmap_layout()
                continue
            self.base = base
            return
        raise OSError(f"cannot reserve the differential layout: {errors}")

    def close(self) -> None:
        self._unmap_layout()
        for addr, length in self._maps:
            host_munmap(addr, length)
        self._maps.clear()
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        if self.peer is not None:
            self.peer.close()
            self.peer = None

    def _memfd(self, name: str, data: bytes) -> int:
        fd = os.memfd_create(name)
        self._fds.append(fd)
        os.ftruncate(fd, len(data))
        os.pwrite(fd, data, 0)
        return fd

    def _unmap_layout(self) -> None:
        keep = []
        for addr, length in self._maps:
            if addr == self.expired:
                keep.append((addr, length))
            else:
                host_munmap(addr, length)
        self._maps = keep

    def _map(
        self,
        base: int,
        page: str,
        npages: int,
        prot: int,
        flags: int,
        fd: int = -1,
        offset: int = 0,
        fixed: bool = False,
    ) -> int:
        want = base + PAGE_INDEX[page] * PAGE
        extra = MAP_FIXED if fixed else MAP_FIXED_NOREPLACE
        got = host_mmap(want, npages * PAGE, prot, flags | extra, fd, offset)
        if got != want:
            host_munmap(got, npages * PAGE)
            raise OSError(f"mmap placed {page} at {got:#x}, not {want:#x}")
        if not fixed:
            self._maps.append((got, npages * PAGE))
        return got

    def _reserve(self, base: int) -> None:
        holes = [i for i, spec in enumerate(LAYOUT) if spec.name.startswith("HOLE")]
        for i in [-1, *holes, NPAGES]:  # the layout's holes and the pages around it
            if host_page_mapped(base + i * PAGE):
                raise OSError(f"page {i} at {base + i * PAGE:#x} is mapped already")
        anon = MAP_PRIVATE | MAP_ANONYMOUS
        shanon = MAP_SHARED | MAP_ANONYMOUS
        self._map(base, "PRIV_RW", 1, RW, anon)
        self._map(base, "TIMESPEC", 1, RW, anon)
        a = self._map(base, "PRIV_RO", 1, RW, anon)
        poke(a, pattern(P_PRIV_RO))
        host_mprotect(a, PAGE, PROT_READ)
        self._map(base, "PROT_NONE", 1, PROT_NONE, anon)
        self._map(base, "SHARED_RW", 1, RW, shanon)
        a = self._map(base, "SHARED_RO", 1, RW, shanon)
        poke(a, pattern(P_SHARED_RO))
        host_mprotect(a, PAGE, PROT_READ)
        self._map(base, "FILE_SHARED_RW", 1, RW, MAP_SHARED, self.fd_a, 0)
        self._map(base, "FILE_SHARED_RO", 1, PROT_READ, MAP_SHARED, self.fd_a, 0)
        self._map(base, "FILE_PRIV_RW", 1, RW, MAP_PRIVATE, self.fd_b, 0)
        self._map(base, "FILE_PRIV_RO", 1, PROT_READ, MAP_PRIVATE, self.fd_b, 0)
        a = self._map(base, "FILE_PRIV_COWED_RO", 1, RW, MAP_PRIVATE, self.fd_b, PAGE)
        poke(a, pattern(P_COWED))
        host_mprotect(a, PAGE, PROT_READ)
        self._map(base, "EOF_SHARED", 2, RW, MAP_SHARED, self.fd_c, 0)
        self._map(base, "EOF_PRIV_PAST", 1, RW, MAP_PRIVATE, self.fd_c, PAGE)
        self._map(base, "FILE_PRIV_ALIAS_RW", 1, RW, MAP_PRIVATE, self.fd_a, 0)
        self._map(base, "FILE_PRIV_ALIAS_RO", 1, PROT_READ, MAP_PRIVATE, self.fd_a, 0)
        self._map(base, "PRIV_RO_ZERO", 1, PROT_READ, anon)
        self._map(base, "SHARED_RO_ZERO", 1, PROT_READ, shanon)
        self._map_exec_pages(base)
        self._map(base, "WRITE_ONLY_PRIV", 1, PROT_WRITE, anon)
        self._map(base, "WRITE_ONLY_SHARED", 1, PROT_WRITE, shanon)
        for name, flags in (("PI_PRIV_RO", anon), ("PI_SHARED_RO", shanon)):
            a = self._map(base, name, 1, RW, flags)
            poke(a, self.pi_page)
            host_mprotect(a, PAGE, PROT_READ)

    def _map_exec_pages(self, base: int, fixed: bool = False) -> None:
        """The ``PROT_EXEC``-only pages, as new: execute-only where the CPU has protection
        keys (so Python must never read them); without them readable, and a shared futex
        key on one exists only while its page is present in the page tables -- so each
        sequence starts from fresh mappings, EXEC_SHARED present (written before the
        mprotect) and the others not."""
        anon = MAP_PRIVATE | MAP_ANONYMOUS
        self._map(base, "EXEC_PRIV", 1, PROT_EXEC, anon, fixed=fixed)
        a = self._map(base, "EXEC_SHARED", 1, RW, MAP_SHARED | MAP_ANONYMOUS, fixed=fixed)
        poke(a, pattern(P_EXEC_SHARED))
        host_mprotect(a, PAGE, PROT_EXEC)
        self._map(base, "EXEC_FILE_SHARED", 1, PROT_EXEC, MAP_SHARED, self.fd_a, 0, fixed=fixed)
        self._map(base, "EXEC_FILE_PRIV", 1, PROT_EXEC, MAP_PRIVATE, self.fd_b, 0, fixed=fixed)

    def check_holes(self) -> None:
        """Fail loudly if something got mapped into the layout's holes meanwhile."""
        for i, spec in enumerate(LAYOUT):
            if spec.name.startswith("HOLE") and host_page_mapped(self.addr(i)):
                raise AssertionError(f"{spec.name} at {self.addr(i):#x} got mapped")

    # per sequence

    def addr(self, page: int, off: int = 0) -> int:
        return self.base + page * PAGE + off

    def reset(self, timespecs: bytes) -> None:
        """Bring the host layout back to the state a fresh emulated one starts in."""
        b = self.base
        poke(self.addr(PAGE_INDEX["PRIV_RW"]), pattern(P_PRIV_RW))
        poke(self.addr(PAGE_INDEX["TIMESPEC"]), timespecs)
        poke(self.addr(PAGE_INDEX["SHARED_RW"]), pattern(P_SHARED_RW))
        poke(self.addr(PAGE_INDEX["FILE_SHARED_RW"]), file_a())
        poke(self.addr(PAGE_INDEX["EOF_SHARED"]), file_c() + bytes(PAGE - FILE_C_SIZE))
        poke(self.addr(PAGE_INDEX["WRITE_ONLY_PRIV"]), pattern(P_WRITE_ONLY_PRIV))
        poke(self.addr(PAGE_INDEX["WRITE_ONLY_SHARED"]), pattern(P_WRITE_ONLY_SHARED))
        # private file pages: a fresh mapping, so a page copied-on-write goes back to the
        # page cache
        self._map(b, "FILE_PRIV_RW", 1, RW, MAP_PRIVATE, self.fd_b, 0, fixed=True)
        self._map(b, "FILE_PRIV_ALIAS_RW", 1, RW, MAP_PRIVATE, self.fd_a, 0, fixed=True)
        self._map_exec_pages(b, fixed=True)
        # every page Python may read is present (in the page tables) from the start, as
        # the harness reads them after each step: the PI paths read present pages only
        for page in READABLE_PAGES:
            ctypes.string_at(self.addr(page), 4)

    def read_page(self, page: int) -> bytes:
        assert LAYOUT[page].readable
        return ctypes.string_at(self.addr(page), PAGE)

    def store(self, addr: int, value: int) -> None:
        """Four bytes at ``addr`` (anywhere in the layout's writable pages)."""
        for a in (addr, addr + 3):
            page = (a - self.base) // PAGE
            if not (0 <= page < NPAGES and LAYOUT[page].writable):
                raise AssertionError(f"harness: store to {a:#x}, not a writable page")
        poke(addr, struct.pack("<I", value & U32))

    def write_clipped(self, addr: int, data: bytes) -> list[tuple[int, bytes]]:
        """Write the parts of ``data`` (to go at ``addr``) that fall in the layout's writable
        pages; return them, for the emulated side."""
        pieces = []
        a, end = addr, addr + len(data)
        while a < end:
            n = min(end, (a | (PAGE - 1)) + 1) - a
            page = (a - self.base) // PAGE
            if 0 <= page < NPAGES and LAYOUT[page].writable:
                chunk = data[a - addr : a - addr + n]
                poke(a, chunk)
                pieces.append((a, chunk))
            a += n
        return pieces

    def _pages(self, addr: int, n: int) -> list[PageSpec] | None:
        """The layout pages ``[addr, addr + n)`` touches, or ``None`` if outside it."""
        first, last = (addr - self.base) // PAGE, (addr + n - 1 - self.base) // PAGE
        if not (first >= 0 and last < NPAGES):
            return None
        return [LAYOUT[p] for p in range(first, last + 1)]

    def writable_range(self, addr: int, n: int) -> bool:
        """Whether ``[addr, addr + n)`` lies in the layout's writable pages."""
        pages = self._pages(addr, n)
        return pages is not None and all(spec.writable for spec in pages)

    def peek(self, addr: int, n: int) -> bytes | None:
        """The ``n`` bytes at ``addr`` if they lie in pages the host can read, else
        ``None``.  Execute-only pages (readable without protection keys) are never read
        here, which would make them present: their content comes from what they show."""
        pages = self._pages(addr, n)
        if pages is None:
            return None
        if all(spec.readable for spec in pages):
            return ctypes.string_at(addr, n)
        out = b""
        a, end = addr, addr + n
        while a < end:
            page = (a - self.base) // PAGE
            chunk = min(end, self.addr(page + 1)) - a
            content = self._shown(page)
            if content is None:
                return None
            off = a - self.addr(page)
            out += content[off : off + chunk]
            a += chunk
        return out

    def _shown(self, page: int) -> bytes | None:
        """What a layout page shows, without touching it; ``None`` if unreadable."""
        spec = LAYOUT[page]
        if spec.readable:
            return ctypes.string_at(self.addr(page), PAGE)
        if spec.prot != PROT_EXEC or not self.exec_readable:
            return None
        if spec.name == "EXEC_FILE_SHARED":  # file A page 0, also shown read-only
            return ctypes.string_at(self.addr(PAGE_INDEX["FILE_SHARED_RO"]), PAGE)
        return {
            "EXEC_PRIV": bytes(PAGE),
            "EXEC_SHARED": pattern(P_EXEC_SHARED),
            "EXEC_FILE_PRIV": file_b()[:PAGE],  # file B is never written
        }[spec.name]

    def word_at(self, addr: int) -> int | None:
        """The aligned word at ``addr`` if it lies in a writable layout page (one the host
        can set FUTEX_WAITERS in), else ``None``."""
        page = (addr - self.base) // PAGE
        if addr & 3 or not (0 <= page < NPAGES and LAYOUT[page].writable):
            return None
        value: int = struct.unpack("<I", ctypes.string_at(addr, 4))[0]
        return value

    def read_timespec(self, addr: int) -> tuple[int, int] | Literal[False]:
        """What the host would read at ``addr`` as a timespec: ``(sec, nsec)``, or
        ``False`` when reading it faults (a hole, PROT_NONE, past EOF, execute-only on a
        CPU with protection keys, or not this process's: ``safe`` checked that)."""
        raw = self.peek(addr, 16)
        if raw is None:
            return False
        sec, nsec = struct.unpack("<qq", raw)
        return sec, nsec

    def safe(self, addr: int, n: int) -> bool:
        """Whether the host may be handed ``addr`` (``n`` bytes) as a pointer: inside the
        layout, or where nothing of this process is mapped (so the host answer is the
        emulator's "not mapped")."""
        lo, hi = self.base, self.base + NPAGES * PAGE
        if lo <= addr and addr + n <= hi:
            return True
        first = addr & ~(PAGE - 1)
        last = (addr + n - 1) & ~(PAGE - 1)
        return not any(
            host_page_mapped(p) and not lo <= p < hi for p in range(first, last + PAGE, PAGE)
        )


def poke(addr: int, data: bytes) -> None:
    """Write ``data`` at host address ``addr`` (raw: the caller knows it is writable)."""
    ctypes.memmove(addr, data, len(data))


@contextlib.contextmanager
def host_layout() -> Iterator[tuple[HostLayout, Watchdog]]:
    """The layout reserved for a run, with the watchdog that ends its blocked host calls;
    on leaving, the holes are checked and everything is released."""
    layout = HostLayout()
    layout.open()
    watchdog = Watchdog()
    try:
        yield layout, watchdog
        layout.check_holes()
    finally:
        watchdog.close()
        layout.close()
