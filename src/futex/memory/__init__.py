"""Emulated address spaces: mappings, protections, faults, and fork with copy-on-write.

Model
-----
An :class:`AddressSpace` is a sorted set of non-overlapping :class:`Mapping` s, each page
aligned.  A mapping is *shared* (it shows a :class:`MemoryObject` — anonymous shared memory
or a :class:`File` — and every mapping of that object sees the same bytes) or *private*
(it starts as the object's content, or zeros, and every write lands in a page that belongs
to this address space alone).

Private pages are copy-on-write across :meth:`AddressSpace.fork`: parent and child keep
referring to the same page object until one of them writes it; the writer then copies.
Pages are created lazily, so a large mapping that is never written costs nothing.

Atomicity
---------
Every mutation (store, compare-and-swap, swap, read-modify-write, byte writes, COW breaks,
mapping changes) runs under one module lock, ``_LOCK``, so the aligned 32-bit atomics are
atomic against each other within and across address spaces (two processes sharing a
MAP_SHARED mapping see one order of updates).  A 32-bit load is one C-level read of a
``bytearray`` and so is atomic under the GIL without the lock.

Faults
------
An access the mapping does not allow raises :class:`MemoryFault`; the syscall layers turn it
into their fault answer (EFAULT on Linux).  Readability follows x86-64 with protection keys
(the oracle host): ``PROT_READ`` or ``PROT_WRITE`` can be read, ``PROT_EXEC`` alone cannot
(Linux makes it execute-only); writing needs ``PROT_WRITE``.  ``AddressSpace(
exec_readable=True)`` models a CPU without protection keys, where execute-only memory reads
— except through ``get_user_pages``, which wants VM_READ whatever the CPU, so a shared futex
key on such memory faults either way.  A file page wholly past the end of
the file faults (Linux delivers SIGBUS; futex(2) answers EFAULT).

Futex keys
----------
:meth:`AddressSpace.futex_key` produces the three key kinds of :mod:`futex.kernel.keys`,
mirroring Linux ``get_futex_key``: the address must be aligned and at most
``user_ptr_max`` (``access_ok``); a private key needs nothing more.  A shared key needs a
readable mapping.  On a shared mapping it names (object, offset) so it matches across
processes; on a writable private mapping it names the address in this address space
(``FUT_OFF_MMSHARED``) and, as Linux's write fault through ``get_user_pages`` does, turns a
private file page into this address space's own copy; on a read-only private mapping it
names the file page if the page was never written, and faults for anonymous memory ("a RO
anonymous page will never change").
"""

from __future__ import annotations

import bisect
import itertools
import mmap as _mmap
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from futex.kernel.errors import MemoryFault
from futex.kernel.keys import Key, mappable_key, shared_private_key

__all__ = [
    "PAGE_SIZE",
    "PROT_EXEC",
    "PROT_NONE",
    "PROT_READ",
    "PROT_WRITE",
    "USER_PTR_MAX_X86_64",
    "AddressSpace",
    "AnonymousMemory",
    "File",
    "Mapping",
    "MappingError",
    "MemoryFault",
    "MemoryObject",
]

PAGE_SIZE = 4096
PAGE_SHIFT = 12
PROT_NONE = _mmap.PROT_NONE if hasattr(_mmap, "PROT_NONE") else 0
PROT_READ = _mmap.PROT_READ
PROT_WRITE = _mmap.PROT_WRITE
PROT_EXEC = _mmap.PROT_EXEC
_PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC
_PROT_READABLE = PROT_READ | PROT_WRITE  # what get_user_pages calls VM_READ (x86: W => R)

#: Highest address ``access_ok`` accepts for a 4-byte access on x86-64 with 4-level paging
#: (measured on the host: 0x7ffffffff000 passes, 0x7ffffffff004 is EFAULT).
USER_PTR_MAX_X86_64 = 0x7FFFFFFFF000

#: Where :meth:`AddressSpace.mmap` places mappings when no address is asked for.
_DEFAULT_MMAP_BASE = 0x10000000

_U32 = struct.Struct("<I")
_unpack_u32 = _U32.unpack_from
_pack_u32 = _U32.pack_into
_LOCK = threading.Lock()
_serials = itertools.count(1)
_ZERO_PAGE = bytes(PAGE_SIZE)


class MappingError(ValueError):
    """A mapping request with bad arguments (the mmap/munmap/mprotect EINVAL cases)."""


class MemoryObject:
    """Something mappable with identity: every shared mapping of it sees the same bytes.

    ``size`` is the object's length in bytes; pages wholly past it fault.
    """

    def __init__(self, size: int, name: str = "") -> None:
        if size < 0:
            raise MappingError(f"size must be >= 0, got {size}")
        self.serial = next(_serials)
        self.name = name or f"{type(self).__name__.lower()}:{self.serial}"
        self.size = size
        self._pages: dict[int, bytearray] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} size={self.size}>"

    def __hash__(self) -> int:
        return self.serial

    # -- page access (callers hold _LOCK for writes) ---------------------------------------

    def page_count(self) -> int:
        return (self.size + PAGE_SIZE - 1) >> PAGE_SHIFT

    def page_for_read(self, index: int) -> bytes | bytearray:
        page = self._pages.get(index)
        return _ZERO_PAGE if page is None else page

    def page_for_write(self, index: int) -> bytearray:
        page = self._pages.get(index)
        if page is None:
            page = self._pages[index] = bytearray(PAGE_SIZE)
        return page

    def truncate(self, size: int) -> None:
        """Change the size; pages wholly past the new end are dropped (and then fault)."""
        if size < 0:
            raise MappingError(f"size must be >= 0, got {size}")
        with _LOCK:
            self.size = size
            last = self.page_count()
            for index in [i for i in self._pages if i >= last]:
                del self._pages[index]
            if size % PAGE_SIZE and (last - 1) in self._pages:
                page = self._pages[last - 1]
                tail = size % PAGE_SIZE
                page[tail:] = bytes(PAGE_SIZE - tail)

    def pread(self, offset: int, n: int) -> bytes:
        """Read ``n`` bytes at ``offset`` (zeros where never written), clipped to the size."""
        end = min(offset + n, self.size)
        out = bytearray()
        while offset < end:
            index, off = divmod(offset, PAGE_SIZE)
            chunk = min(end - offset, PAGE_SIZE - off)
            out += self.page_for_read(index)[off : off + chunk]
            offset += chunk
        return bytes(out)

    def pwrite(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset``, growing the object if needed (like write(2))."""
        with _LOCK:
            self.size = max(self.size, offset + len(data))
            pos = 0
            while pos < len(data):
                index, off = divmod(offset + pos, PAGE_SIZE)
                chunk = min(len(data) - pos, PAGE_SIZE - off)
                self.page_for_write(index)[off : off + chunk] = data[pos : pos + chunk]
                pos += chunk


class AnonymousMemory(MemoryObject):
    """Anonymous shared memory (what MAP_SHARED|MAP_ANONYMOUS creates; shmem in Linux)."""


class File(MemoryObject):
    """An emulated file: a named :class:`MemoryObject` whose size can change."""

    def __init__(self, name: str = "", size: int = 0) -> None:
        super().__init__(size, name)


class _Page:
    """A private page; ``refs`` counts the address spaces that share it copy-on-write."""

    __slots__ = ("data", "refs")

    def __init__(self, data: bytearray) -> None:
        self.data = data
        self.refs = 1


@dataclass
class Mapping:
    """One mapping: ``[start, end)`` with a protection, shared or private, over ``obj``.

    ``obj`` is ``None`` for private anonymous memory.  ``offset`` is the object offset of
    ``start``.
    """

    start: int
    end: int
    prot: int
    shared: bool
    obj: MemoryObject | None
    offset: int

    @property
    def readable(self) -> bool:
        """Readable by get_user_pages (VM_READ; PROT_WRITE implies it on x86)."""
        return bool(self.prot & _PROT_READABLE)

    @property
    def writable(self) -> bool:
        return bool(self.prot & PROT_WRITE)

    def object_offset(self, addr: int) -> int:
        return self.offset + (addr - self.start)

    def split(self, at: int) -> tuple[Mapping, Mapping]:
        left = Mapping(self.start, at, self.prot, self.shared, self.obj, self.offset)
        right = Mapping(at, self.end, self.prot, self.shared, self.obj, self.object_offset(at))
        return left, right


def _page_align(n: int) -> int:
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


class AddressSpace:
    """An emulated address space (Linux's ``mm``): mappings, private pages and atomics.

    It implements the :class:`futex.kernel.FutexTarget` protocol, so the futex core can load,
    compare-and-swap and key futex words in it.
    """

    def __init__(
        self, *, user_ptr_max: int = USER_PTR_MAX_X86_64, exec_readable: bool = False
    ) -> None:
        self.serial = next(_serials)
        self.user_ptr_max = user_ptr_max
        self.exec_readable = exec_readable
        self._load_mask = _PROT_ALL if exec_readable else _PROT_READABLE
        self._starts: list[int] = []
        self._maps: list[Mapping] = []
        self._pages: dict[int, _Page] = {}  # private pages by virtual page number
        self._next_base = _DEFAULT_MMAP_BASE
        self._last: Mapping | None = None  # lookup cache; reset by every mapping change

    def __repr__(self) -> str:
        return f"<AddressSpace {self.serial} mappings={len(self._maps)}>"

    # -- mapping management -----------------------------------------------------------------

    @property
    def mappings(self) -> list[Mapping]:
        """A copy of the mappings, sorted by address."""
        return list(self._maps)

    def mmap(
        self,
        length: int,
        *,
        prot: int = PROT_READ | PROT_WRITE,
        shared: bool = False,
        addr: int | None = None,
        file: MemoryObject | None = None,
        offset: int = 0,
    ) -> int:
        """Map ``length`` bytes and return the address.

        ``addr`` places the mapping exactly there (like MAP_FIXED: it replaces what was
        mapped); otherwise the first free range above the mmap base is used.  ``file`` maps
        a :class:`MemoryObject` from ``offset``; without it the mapping is anonymous (a new
        :class:`AnonymousMemory` when ``shared``).
        """
        if length <= 0:
            raise MappingError(f"length must be positive, got {length}")
        if prot & ~_PROT_ALL:
            raise MappingError(f"unknown protection bits {prot:#x}")
        if offset % PAGE_SIZE or offset < 0:
            raise MappingError(f"offset {offset:#x} is not a non-negative multiple of the page")
        size = _page_align(length)
        with _LOCK:
            if addr is None:
                addr = self._find_free(size)
            elif addr % PAGE_SIZE:
                raise MappingError(f"address {addr:#x} is not page aligned")
            if addr < 0 or addr + size > self.user_ptr_max:
                raise MappingError(f"[{addr:#x}, {addr + size:#x}) is outside user space")
            obj = file
            if obj is None and shared:
                obj = AnonymousMemory(size)
            self._unmap_locked(addr, addr + size)
            self._last = None
            mapping = Mapping(addr, addr + size, prot, shared, obj, offset)
            i = bisect.bisect_left(self._starts, addr)
            self._starts.insert(i, addr)
            self._maps.insert(i, mapping)
        return addr

    def munmap(self, addr: int, length: int) -> None:
        """Unmap ``[addr, addr+length)``; unmapped parts of the range are ignored."""
        if addr % PAGE_SIZE or length <= 0:
            raise MappingError(f"bad munmap range {addr:#x}+{length:#x}")
        with _LOCK:
            self._unmap_locked(addr, addr + _page_align(length))

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        """Change the protection of ``[addr, addr+length)``, which must be wholly mapped."""
        if addr % PAGE_SIZE or length <= 0:
            raise MappingError(f"bad mprotect range {addr:#x}+{length:#x}")
        if prot & ~_PROT_ALL:
            raise MappingError(f"unknown protection bits {prot:#x}")
        end = addr + _page_align(length)
        with _LOCK:
            pos = addr
            while pos < end:
                m = self._lookup(pos)
                if m is None:
                    raise MemoryFault(pos, "mprotect", "range not wholly mapped")
                pos = m.end
            self._split_at(addr)
            self._split_at(end)
            for m in self._maps:
                if addr <= m.start and m.end <= end:
                    m.prot = prot

    def _find_free(self, size: int) -> int:
        base = self._next_base
        for m in self._maps:
            if m.end <= base:
                continue
            if m.start >= base + size:
                break
            base = m.end
        self._next_base = base + size
        return base

    def _split_at(self, at: int) -> None:
        self._last = None
        i = bisect.bisect_right(self._starts, at) - 1
        if i < 0:
            return
        m = self._maps[i]
        if m.start < at < m.end:
            left, right = m.split(at)
            self._maps[i : i + 1] = [left, right]
            self._starts[i : i + 1] = [left.start, right.start]

    def _unmap_locked(self, start: int, end: int) -> None:
        self._last = None
        self._split_at(start)
        self._split_at(end)
        keep = [m for m in self._maps if m.end <= start or m.start >= end]
        self._maps = keep
        self._starts = [m.start for m in keep]
        for vpn in [v for v in self._pages if start >> PAGE_SHIFT <= v < end >> PAGE_SHIFT]:
            del self._pages[vpn]

    def _lookup(self, addr: int) -> Mapping | None:
        m = self._last  # most accesses hit the mapping of the previous one
        if m is not None and m.start <= addr < m.end:
            return m
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            m = self._maps[i]
            if addr < m.end:
                self._last = m
                return m
        return None

    def mapping_at(self, addr: int) -> Mapping | None:
        """The mapping that contains ``addr``, or ``None``."""
        return self._lookup(addr)

    def private_page(self, addr: int) -> object | None:
        """The identity of this address space's own copy of the page at ``addr`` (a
        private page written since it was mapped; shared copy-on-write with fork children
        until one side writes), or ``None`` when the page still reads through to its
        object or to zeros.  For kernels that name pages physically (LiteOS-A)."""
        return self._pages.get(addr >> PAGE_SHIFT)

    # -- page access ------------------------------------------------------------------------

    def _page_for_read(self, addr: int, access: str = "read") -> bytes | bytearray:
        m = self._lookup(addr)
        if m is None:
            raise MemoryFault(addr, access, "not mapped")
        if not m.prot & self._load_mask:
            raise MemoryFault(addr, access, "not readable")
        if not m.shared:
            page = self._pages.get(addr >> PAGE_SHIFT)
            if page is not None:
                return page.data
            if m.obj is None:
                return _ZERO_PAGE
        obj = m.obj
        assert obj is not None
        index = m.object_offset(addr) >> PAGE_SHIFT
        if index >= obj.page_count():
            raise MemoryFault(addr, access, "past the end of the mapped object")
        return obj.page_for_read(index)

    def _page_for_write_locked(self, addr: int) -> bytearray:
        m = self._lookup(addr)
        if m is None:
            raise MemoryFault(addr, "write", "not mapped")
        if not m.prot & PROT_WRITE:
            raise MemoryFault(addr, "write", "not writable")
        if m.shared:
            obj = m.obj
            assert obj is not None
            index = m.object_offset(addr) >> PAGE_SHIFT
            if index >= obj.page_count():
                raise MemoryFault(addr, "write", "past the end of the mapped object")
            return obj.page_for_write(index)
        vpn = addr >> PAGE_SHIFT
        page = self._pages.get(vpn)
        if page is None:
            if m.obj is None:
                data = bytearray(PAGE_SIZE)
            else:
                index = m.object_offset(addr) >> PAGE_SHIFT
                if index >= m.obj.page_count():
                    raise MemoryFault(addr, "write", "past the end of the mapped object")
                data = bytearray(m.obj.page_for_read(index))
            page = self._pages[vpn] = _Page(data)
        elif page.refs > 1:  # break copy-on-write
            page.refs -= 1
            page = self._pages[vpn] = _Page(bytearray(page.data))
        return page.data

    # -- byte access ------------------------------------------------------------------------

    def read(self, addr: int, n: int) -> bytes:
        """Read ``n`` bytes at ``addr``; raises :class:`MemoryFault` on any inaccessible byte."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        out = bytearray()
        end = addr + n
        while addr < end:
            off = addr & (PAGE_SIZE - 1)
            chunk = min(end - addr, PAGE_SIZE - off)
            out += self._page_for_read(addr)[off : off + chunk]
            addr += chunk
        return bytes(out)

    def write(self, addr: int, data: bytes) -> None:
        """Write ``data`` at ``addr``.  On a fault, the bytes before the faulting page stay
        written (as with a real copy_to_user)."""
        pos = 0
        with _LOCK:
            while pos < len(data):
                off = (addr + pos) & (PAGE_SIZE - 1)
                chunk = min(len(data) - pos, PAGE_SIZE - off)
                self._page_for_write_locked(addr + pos)[off : off + chunk] = data[
                    pos : pos + chunk
                ]
                pos += chunk

    # -- aligned 32-bit atomics (FutexTarget) -----------------------------------------------

    @staticmethod
    def _check_aligned(addr: int) -> None:
        if addr & 3:
            raise ValueError(f"address {addr:#x} is not 4-byte aligned")

    def load_u32(self, addr: int) -> int:
        """Atomically load the aligned 32-bit word at ``addr``."""
        if addr & 3:
            self._check_aligned(addr)
        value: int = _unpack_u32(self._page_for_read(addr), addr & (PAGE_SIZE - 1))[0]
        return value

    def store_u32(self, addr: int, value: int) -> None:
        """Atomically store ``value`` (taken modulo 2**32) at ``addr``."""
        self._check_aligned(addr)
        with _LOCK:
            _pack_u32(self._page_for_write_locked(addr), addr & (PAGE_SIZE - 1), value & 0xFFFFFFFF)

    def cas_u32(self, addr: int, old: int, new: int) -> int:
        """Compare-and-swap; returns the previous value (the swap happened iff it == old)."""
        self._check_aligned(addr)
        off = addr & (PAGE_SIZE - 1)
        with _LOCK:
            page = self._page_for_write_locked(addr)
            prev: int = _unpack_u32(page, off)[0]
            if prev == old & 0xFFFFFFFF:
                _pack_u32(page, off, new & 0xFFFFFFFF)
        return prev

    def swap_u32(self, addr: int, new: int) -> int:
        """Atomically exchange; returns the previous value."""
        return self.update_u32(addr, lambda _old: new)

    def update_u32(self, addr: int, fn: Callable[[int], int]) -> int:
        """Atomically replace the word ``v`` by ``fn(v) & 0xffffffff``; returns ``v``.

        Needs write access even where ``fn`` returns ``v`` (like the x86 locked
        instructions Linux uses for FUTEX_WAKE_OP).
        """
        self._check_aligned(addr)
        off = addr & (PAGE_SIZE - 1)
        with _LOCK:
            page = self._page_for_write_locked(addr)
            prev: int = _unpack_u32(page, off)[0]
            _pack_u32(page, off, fn(prev) & 0xFFFFFFFF)
        return prev

    # -- futex keys (FutexTarget) -----------------------------------------------------------

    def futex_key(self, addr: int, private: bool, write: bool = False) -> Key:
        """The futex key of the aligned word at ``addr`` (Linux ``get_futex_key``).

        Raises :class:`MemoryFault` where Linux answers EFAULT.  ``write`` asks for a key
        good for writing (FUTEX_WAKE_OP's second word): a read-only shared mapping then
        faults.
        """
        if addr > self.user_ptr_max or addr < 0:
            raise MemoryFault(addr, "key", "outside the user address range")
        if private:
            return addr  # private_key(addr)
        m = self._lookup(addr)
        if m is None:
            raise MemoryFault(addr, "key", "not mapped")
        if not m.prot & _PROT_READABLE:
            raise MemoryFault(addr, "key", "not readable (no VM_READ)")
        if m.prot & PROT_WRITE:
            if m.shared:
                return self._object_key(m, addr)
            if m.obj is not None and (addr >> PAGE_SHIFT) not in self._pages:
                # get_user_pages(FOLL_WRITE) write-faults the page in: a private file page
                # becomes this address space's own copy (it no longer follows the file).
                with _LOCK:
                    self._page_for_write_locked(addr)
            return shared_private_key(self, addr)
        if write:
            raise MemoryFault(addr, "key", "not writable")
        if m.shared:
            return self._object_key(m, addr)
        if m.obj is None or (addr >> PAGE_SHIFT) in self._pages:
            raise MemoryFault(addr, "key", "read-only anonymous page")
        return self._object_key(m, addr)

    @staticmethod
    def _object_key(m: Mapping, addr: int) -> Key:
        obj = m.obj
        assert obj is not None
        offset = m.object_offset(addr)
        if offset >> PAGE_SHIFT >= obj.page_count():
            raise MemoryFault(addr, "key", "past the end of the mapped object")
        return mappable_key(obj, offset)

    # -- fork -------------------------------------------------------------------------------

    def fork(self) -> AddressSpace:
        """A child address space: shared mappings show the same objects, private pages are
        shared copy-on-write until either side writes them."""
        child = AddressSpace(user_ptr_max=self.user_ptr_max, exec_readable=self.exec_readable)
        with _LOCK:
            child._maps = [
                Mapping(m.start, m.end, m.prot, m.shared, m.obj, m.offset) for m in self._maps
            ]
            child._starts = list(self._starts)
            child._next_base = self._next_base
            for vpn, page in self._pages.items():
                page.refs += 1
                child._pages[vpn] = page
        return child
