"""Physical addresses and futex keys for LiteOS-A on :class:`futex.memory.AddressSpace`.

A shared LiteOS futex is keyed by the *physical* address of its word
(``LOS_PaddrQuery``), so two processes meet on a shared futex exactly when their virtual
addresses reach the same page frame.  :class:`PhysicalMemory` gives every page frame of
the emulated memory a stable physical address, allocated on first query from a simple
bump allocator (``PHYS_BASE`` upward, one 4 KiB frame at a time, never reused):

=====================================  ====================================================
page                                   frame
=====================================  ====================================================
shared mapping (MAP_SHARED, a file)    the object's page: the same frame in every process
private page written at least once     the address space's own page; after fork the parent
                                       and child share it copy-on-write — same frame —
                                       until either writes it, which gives the writer a
                                       new page and a new frame
private file page never written        the file's page (what a read maps)
private anonymous page never written   none: ``LOS_PaddrQuery`` answers 0, as for a page
                                       with no page-table entry
unmapped, or past the object's end     none (0)
=====================================  ====================================================

Not modelled: the read fault that LiteOS's copy-in takes on an untouched anonymous page
(the emulated read sees zeros without creating a page).  Frames are kept for the life of
the :class:`PhysicalMemory` (their pages are kept alive with them).

:class:`FutexTarget` is the core's :class:`futex.kernel.FutexTarget` for one process:
loads and compare-and-swap go to the address space; ``futex_key`` builds LiteOS keys —
``(pid, vaddr)`` with the private flag, ``(OS_INVALID, paddr)`` without
(``OsFutexFlagsToKey``).  It never faults: the paddr of an unmapped page is 0 and the wait
path finds the fault when it copies the word in.
"""

from __future__ import annotations

import threading

from futex.kernel.keys import Key
from futex.liteos import abi
from futex.memory import PAGE_SIZE, AddressSpace, MappingError
from futex.memory.args import first_fit
from futex.memory.owner import SpaceAtomics

__all__ = ["PHYS_BASE", "FutexTarget", "PhysicalMemory", "find_free"]

#: First physical address handed out (DDR_MEM_ADDR of the Hi3516/Hi3518 boards).
PHYS_BASE = 0x80000000
_PAGE_SHIFT = 12
_PAGE_MASK = PAGE_SIZE - 1
_PHYS_END = 1 << 32


class PhysicalMemory:
    """The page frames of one emulated machine, and ``LOS_PaddrQuery`` over them."""

    def __init__(self, base: int = PHYS_BASE) -> None:
        if base & _PAGE_MASK or not 0 < base < _PHYS_END:
            raise ValueError(f"physical base {base:#x} must be a non-zero page address")
        self._next = base
        self._frames: dict[object, int] = {}
        self._lock = threading.Lock()

    def frames(self) -> int:
        """How many frames have been handed out."""
        return len(self._frames)

    def _frame(self, page: object) -> int:
        with self._lock:
            frame = self._frames.get(page)
            if frame is None:
                if self._next >= _PHYS_END:
                    raise MemoryError("the 32-bit physical address space is exhausted")
                frame = self._frames[page] = self._next
                self._next += PAGE_SIZE
            return frame

    def paddr(self, space: AddressSpace, vaddr: int) -> int:
        """``LOS_PaddrQuery``: the physical address of ``vaddr`` in ``space``, 0 when the
        page has no frame (see the module docstring's table)."""
        m = space.mapping_at(vaddr)
        if m is None:
            return 0
        page: object | None = None
        if not m.shared:
            # The address space's own copy of the page, if it has one (shared with a
            # fork child until either writes).
            page = space.private_page(vaddr)
        if page is None:
            obj = m.obj
            if obj is None:
                return 0  # private anonymous page never written
            index = m.object_offset(vaddr) >> _PAGE_SHIFT
            if index >= obj.page_count():
                return 0
            page = (obj, index)
        return self._frame(page) | (vaddr & _PAGE_MASK)


class FutexTarget(SpaceAtomics):
    """The core's memory protocol for one LiteOS process (see the module docstring)."""

    __slots__ = ("phys", "pid", "space")

    def __init__(self, space: AddressSpace, pid: int, phys: PhysicalMemory) -> None:
        self.space = space
        self.pid = pid
        self.phys = phys

    def futex_key(self, addr: int, private: bool, write: bool = False) -> Key:
        """``OsFutexFlagsToKey`` + ``OsFutexSetKey``: ``(pid, vaddr)`` or
        ``(OS_INVALID, paddr)``."""
        if private:
            return (self.pid, addr)
        return (abi.OS_INVALID, self.phys.paddr(self.space, addr))


def find_free(space: AddressSpace, size: int, base: int, end: int) -> int:
    """The lowest page address ``>= base`` where ``size`` bytes fit below ``end`` without
    touching a mapping of ``space``: LiteOS places mmaps in its map region, first fit
    from the map base (``OsAllocRange`` walking the regions' red-black tree in address
    order).  Nothing fits: MappingError (``LOS_MMap``'s ENOMEM), and nothing changed."""
    pos = first_fit(space.mappings, size, base)
    if pos + size > end:
        raise MappingError(f"no room for {size:#x} bytes in [{base:#x}, {end:#x})")
    return pos
