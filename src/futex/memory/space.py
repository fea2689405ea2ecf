"""The address space (Linux's ``mm``): mapping calls, faults, byte access and the aligned
32-bit atomics the futex core uses (:class:`futex.kernel.FutexTarget`).

An :class:`AddressSpace` holds its mappings (:class:`~futex.memory.mappings.MappingTable`),
its private pages and the set of its present pages (:mod:`futex.memory.pages`).

Atomicity
---------
Every mutation (store, compare-and-swap, swap, read-modify-write, byte writes, COW breaks,
mapping changes) runs under one module lock, ``_LOCK`` (:mod:`futex.memory.objects`), so the
aligned 32-bit atomics are atomic against each other within and across address spaces (two
processes sharing a MAP_SHARED mapping see one order of updates).  A 32-bit load is one
C-level read of a ``bytearray`` and so is atomic under the GIL without the lock.

Faults
------
An access the mapping does not allow raises :class:`~futex.kernel.MemoryFault`; the
syscall layers turn it into their fault answer (EFAULT on Linux).  ``PROT_READ`` or
``PROT_WRITE`` can be read; writing needs ``PROT_WRITE``.  ``PROT_EXEC`` alone depends on
the CPU, a host fact (``LinuxFacts.protection_keys``): with protection keys (the default,
``exec_readable=False``) Linux makes it execute-only and every read faults; without them
(``exec_readable=True``: older x86, most VMs) the page tables cannot say execute-only, so
user and kernel reads (``get_user``) succeed (its futex keys: :mod:`futex.memory.keys`).
A page that is read or written becomes present (:mod:`futex.memory.pages`, which also says
why that matters).  A file page wholly past the end of the file faults (Linux delivers
SIGBUS; futex(2) answers EFAULT).

Mapping calls
-------------
``mmap`` / ``munmap`` / ``mprotect`` check every argument, type then range, before they
touch anything (:mod:`futex.memory.args`): TypeError or :class:`~futex.memory.MappingError`, and a
refused call leaves the mappings, the pages and the placement hint as they were.  Without
an address, a mapping goes to the first gap from the end of the last placed mapping, then
from the mmap base (``_DEFAULT_MMAP_BASE``) before it is refused.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from futex.kernel.errors import MemoryFault
from futex.memory.args import check_mmap, check_prot, check_range, place
from futex.memory.keys import futex_key
from futex.memory.mappings import Mapping, MappingTable
from futex.memory.objects import (
    _LOCK,
    _PROT_ALL,
    _PROT_READABLE,
    _ZERO_PAGE,
    PAGE_SHIFT,
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    AnonymousMemory,
    MemoryObject,
    _serials,
)
from futex.memory.pages import PrivatePage, drop_pages, fork_pages, own_page

__all__ = ["USER_PTR_MAX_X86_64", "AddressSpace"]

#: Highest address ``access_ok`` accepts for a 4-byte access on x86-64 with 4-level paging
#: (measured on the host: 0x7ffffffff000 passes, 0x7ffffffff004 is EFAULT).
USER_PTR_MAX_X86_64 = 0x7FFFFFFFF000

#: Where :meth:`AddressSpace.mmap` places mappings when no address is asked for.
_DEFAULT_MMAP_BASE = 0x10000000

_U32 = struct.Struct("<I")
_unpack_u32 = _U32.unpack_from
_pack_u32 = _U32.pack_into


class AddressSpace:
    """An emulated address space (Linux's ``mm``): mappings, private pages and atomics.

    It implements the :class:`futex.kernel.FutexTarget` protocol, so the futex core can load,
    compare-and-swap and key futex words in it.
    """

    def __init__(
        self,
        *,
        user_ptr_max: int = USER_PTR_MAX_X86_64,
        exec_readable: bool = False,
        task_size: int | None = None,
    ) -> None:
        self.serial = next(_serials)
        #: The highest address ``access_ok`` accepts for a word (futex keys).
        self.user_ptr_max = user_ptr_max
        #: The end of what can be mapped (Linux ``TASK_SIZE``; ``user_ptr_max`` unless
        #: given: on Linux the two differ by release, see ``futex.linux.facts``).
        self.task_size = user_ptr_max if task_size is None else task_size
        self.exec_readable = exec_readable
        self._load_mask = _PROT_ALL if exec_readable else _PROT_READABLE
        #: Virtual page numbers present in this space's page tables (futex.memory.pages).
        self._present: set[int] = set()
        self._vmas = MappingTable()
        self._pages: dict[int, PrivatePage] = {}  # private pages by virtual page number
        #: The atomics' fast path: pages a write reaches without a fault or a copy (private,
        #: this space's alone, present, in a writable mapping) by virtual page number.
        #: Emptied whenever that may stop holding: munmap, mmap over, mprotect, fork.
        self._writable: dict[int, bytearray] = {}
        self._next_base = _DEFAULT_MMAP_BASE

    def __repr__(self) -> str:
        return f"<AddressSpace {self.serial} mappings={len(self._vmas)}>"

    # -- mapping management -----------------------------------------------------------------

    @property
    def mappings(self) -> list[Mapping]:
        """A copy of the mappings, sorted by address."""
        return list(self._vmas)

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
        mapped); otherwise the first free range above the mmap base is used (from where
        the last placed mapping ended, then once more from the base: see
        :mod:`futex.memory.args`).  ``file`` maps a :class:`MemoryObject` from ``offset``;
        without it the mapping is anonymous (a new :class:`AnonymousMemory` when
        ``shared``; ``offset`` is then ignored, as ``do_mmap`` ignores ``pgoff`` for
        anonymous memory).

        Every argument is checked first (:func:`futex.memory.args.check_mmap`): a wrong
        type is TypeError, a bad value MappingError, and a refused call changes nothing.
        """
        size = check_mmap(length, prot, shared, addr, file, offset, self.task_size)
        with _LOCK:
            placed = addr is None
            if addr is None:
                addr = place(self._vmas, size, self._next_base, _DEFAULT_MMAP_BASE,
                             self.task_size)
            obj = file
            if obj is None:
                offset = 0
                if shared:
                    obj = AnonymousMemory(size)
            if placed:
                self._next_base = addr + size
            self._unmap_mm_locked(addr, addr + size)
            self._vmas.insert(Mapping(addr, addr + size, prot, shared, obj, offset))
        return addr

    def munmap(self, addr: int, length: int) -> None:
        """Unmap ``[addr, addr+length)``; unmapped parts of the range are ignored."""
        end = check_range("munmap", addr, length, self.task_size)
        with _LOCK:
            self._unmap_mm_locked(addr, end)

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        """Change the protection of ``[addr, addr+length)``, which must be wholly mapped
        (MemoryFault otherwise, with nothing changed).  Present pages stay present."""
        end = check_range("mprotect", addr, length, self.task_size)
        prot = check_prot(prot)
        with _LOCK:
            self._vmas.protect(addr, end, prot)
            self._writable.clear()

    def _unmap_mm_locked(self, start: int, end: int) -> None:
        self._vmas.remove(start, end)
        drop_pages(self._pages, self._present, start, end)
        self._writable.clear()

    def mapping_at(self, addr: int) -> Mapping | None:
        """The mapping that contains ``addr``, or ``None``."""
        return self._vmas.lookup(addr)

    def private_page(self, addr: int) -> object | None:
        """The identity of this address space's own copy of the page at ``addr`` (a
        private page written since it was mapped; shared copy-on-write with fork children
        until one side writes), or ``None`` when the page still reads through to its
        object or to zeros.  For kernels that name pages physically (LiteOS-A)."""
        return self._pages.get(addr >> PAGE_SHIFT)

    # -- page access ------------------------------------------------------------------------

    def _page_for_read(
        self, addr: int, access: str = "read", touch: bool = True
    ) -> bytes | bytearray:
        m = self._vmas.lookup(addr)
        if m is None:
            raise MemoryFault(addr, access, "not mapped")
        if not m.prot & self._load_mask:
            raise MemoryFault(addr, access, "not readable")
        if touch:
            self._present.add(addr >> PAGE_SHIFT)
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

    def _page_for_write_mm_locked(self, addr: int) -> bytearray:
        m = self._vmas.lookup(addr)
        if m is None:
            raise MemoryFault(addr, "write", "not mapped")
        if not m.prot & PROT_WRITE:
            raise MemoryFault(addr, "write", "not writable")
        self._present.add(addr >> PAGE_SHIFT)
        if m.shared:
            obj = m.obj
            assert obj is not None
            index = m.object_offset(addr) >> PAGE_SHIFT
            if index >= obj.page_count():
                raise MemoryFault(addr, "write", "past the end of the mapped object")
            return obj.page_for_write(index)
        page = self._pages.get(addr >> PAGE_SHIFT)
        # already this space's own page; else its first write, or a copy-on-write break
        data = page.data if page is not None and page.refs == 1 else own_page(self._pages, m, addr)
        self._writable[addr >> PAGE_SHIFT] = data
        return data

    # -- byte access ------------------------------------------------------------------------

    def read(self, addr: int, n: int) -> bytes:
        """Read ``n`` bytes at ``addr``; raises :class:`MemoryFault` on any inaccessible byte."""
        return self._read(addr, n, True)

    def peek(self, addr: int, n: int) -> bytes:
        """:meth:`read` as a debugger would: the same bytes and faults, but no page becomes
        present in the page tables (see "Presence" in :mod:`futex.memory.pages`)."""
        return self._read(addr, n, False)

    def _read(self, addr: int, n: int, touch: bool) -> bytes:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        out = bytearray()
        end = addr + n
        while addr < end:
            off = addr & (PAGE_SIZE - 1)
            chunk = min(end - addr, PAGE_SIZE - off)
            out += self._page_for_read(addr, "read", touch)[off : off + chunk]
            addr += chunk
        return bytes(out)

    def present(self, addr: int) -> bool:
        """Whether the page at ``addr`` is present in this space's page tables."""
        return addr >> PAGE_SHIFT in self._present

    def write(self, addr: int, data: bytes) -> None:
        """Write ``data`` at ``addr``.  On a fault, the bytes before the faulting page stay
        written (as with a real copy_to_user)."""
        pos = 0
        with _LOCK:
            while pos < len(data):
                off = (addr + pos) & (PAGE_SIZE - 1)
                chunk = min(len(data) - pos, PAGE_SIZE - off)
                page = self._page_for_write_mm_locked(addr + pos)
                page[off : off + chunk] = data[pos : pos + chunk]
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
        page: bytes | bytearray | None = self._writable.get(addr >> PAGE_SHIFT)
        if page is None:
            page = self._page_for_read(addr)
        value: int = _unpack_u32(page, addr & (PAGE_SIZE - 1))[0]
        return value

    def load_u32_nofault(self, addr: int) -> int:
        """Load the word as the PI paths do: Linux ``futex_get_value_locked`` (page faults
        disabled: only a present, readable page answers), and on a fault
        ``fault_in_user_writeable`` and again: a writable page is brought in by a write
        fault (a private file page becomes this space's copy); any other page faults --
        a present read-only page reads, a fresh one does not."""
        if addr & 3:
            self._check_aligned(addr)
        m = self._vmas.lookup(addr)
        if m is None or not m.prot & self._load_mask or addr >> PAGE_SHIFT not in self._present:
            if m is None or not m.prot & PROT_WRITE:
                raise MemoryFault(addr, "read", "not present, and not writable to fault in")
            with _LOCK:
                self._page_for_write_mm_locked(addr)
        return self.load_u32(addr)

    def store_u32(self, addr: int, value: int) -> None:
        """Atomically store ``value`` (taken modulo 2**32) at ``addr``."""
        if addr & 3:
            self._check_aligned(addr)
        with _LOCK:
            page = self._writable.get(addr >> PAGE_SHIFT) or self._page_for_write_mm_locked(addr)
            _pack_u32(page, addr & (PAGE_SIZE - 1), value & 0xFFFFFFFF)

    def cas_u32(self, addr: int, old: int, new: int) -> int:
        """Compare-and-swap; returns the previous value (the swap happened iff it == old)."""
        if addr & 3:
            self._check_aligned(addr)
        off = addr & (PAGE_SIZE - 1)
        with _LOCK:
            page = self._writable.get(addr >> PAGE_SHIFT) or self._page_for_write_mm_locked(addr)
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
        if addr & 3:
            self._check_aligned(addr)
        off = addr & (PAGE_SIZE - 1)
        with _LOCK:
            page = self._writable.get(addr >> PAGE_SHIFT) or self._page_for_write_mm_locked(addr)
            prev: int = _unpack_u32(page, off)[0]
            _pack_u32(page, off, fn(prev) & 0xFFFFFFFF)
        return prev

    # -- futex keys (FutexTarget) -----------------------------------------------------------

    #: ``futex_key(addr, private, write=False)``: the futex key of the aligned word at
    #: ``addr`` (Linux ``get_futex_key``), or :class:`MemoryFault` where Linux answers
    #: EFAULT; ``write`` asks for a key good for writing.  Written in
    #: :mod:`futex.memory.keys` (:func:`~futex.memory.keys.futex_key`).
    futex_key = futex_key

    # -- fork -------------------------------------------------------------------------------

    def fork(self) -> AddressSpace:
        """A child address space: shared mappings show the same objects, private pages are
        shared copy-on-write until either side writes them."""
        child = AddressSpace(
            user_ptr_max=self.user_ptr_max,
            exec_readable=self.exec_readable,
            task_size=self.task_size,
        )
        with _LOCK:
            child._vmas = self._vmas.copy()
            child._next_base = self._next_base
            child._pages, child._present = fork_pages(self._vmas, self._pages, self._present)
            self._writable.clear()  # its private pages are shared copy-on-write now
        return child

