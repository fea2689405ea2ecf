"""The mappings of an address space (Linux's VMAs): :class:`Mapping` and the sorted set of
them, :class:`MappingTable`.

A mapping is ``[start, end)``, page aligned, with a protection; it is *shared* (it shows a
:class:`~futex.memory.MemoryObject`, and every shared mapping of that object sees the same
bytes) or *private* (it starts as the object's content, or zeros, and every write lands in
a page of this address space alone: :mod:`futex.memory.pages`).

The table keeps the mappings sorted and non-overlapping.  It finds the mapping of an
address (with a one-entry cache: most accesses hit the mapping of the previous one; every
change of the table resets it), splits a mapping at a page boundary, carves a range out
(``munmap``, and ``mmap`` over what was mapped) and changes the protection of a wholly
mapped range (``mprotect``: MemoryFault, with nothing changed, when part of it is not
mapped).  It knows nothing of pages: the address space drops the pages of what it unmaps.
Callers hold the memory lock (``_LOCK`` of :mod:`futex.memory.objects`) around every
change.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

from futex.kernel.errors import MemoryFault
from futex.memory.objects import _PROT_READABLE, PROT_WRITE, MemoryObject

__all__ = ["Mapping", "MappingTable"]


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
        """Writable (VM_WRITE)."""
        return bool(self.prot & PROT_WRITE)

    def object_offset(self, addr: int) -> int:
        """The offset in ``obj`` that ``addr`` shows."""
        return self.offset + (addr - self.start)

    def split(self, at: int) -> tuple[Mapping, Mapping]:
        """The two mappings ``[start, at)`` and ``[at, end)`` that together are this one."""
        left = Mapping(self.start, at, self.prot, self.shared, self.obj, self.offset)
        right = Mapping(at, self.end, self.prot, self.shared, self.obj, self.object_offset(at))
        return left, right


class MappingTable:
    """The mappings of one address space, sorted by address and non-overlapping."""

    __slots__ = ("_last", "_maps", "_starts")

    def __init__(self) -> None:
        self._maps: list[Mapping] = []
        self._starts: list[int] = []  # the mappings' starts, for bisection
        self._last: Mapping | None = None  # lookup cache; reset by every change

    def __len__(self) -> int:
        return len(self._maps)

    def __iter__(self) -> Iterator[Mapping]:
        return iter(self._maps)

    def copy(self) -> MappingTable:
        """A table of copies of these mappings (fork: the child's own VMAs)."""
        table = MappingTable()
        table._maps = [
            Mapping(m.start, m.end, m.prot, m.shared, m.obj, m.offset) for m in self._maps
        ]
        table._starts = list(self._starts)
        return table

    def lookup(self, addr: int) -> Mapping | None:
        """The mapping that contains ``addr``, or ``None``."""
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

    def insert(self, mapping: Mapping) -> None:
        """Add ``mapping``, whose range the caller has carved out (:meth:`remove`)."""
        self._last = None
        i = bisect.bisect_left(self._starts, mapping.start)
        self._starts.insert(i, mapping.start)
        self._maps.insert(i, mapping)

    def split_at(self, at: int) -> None:
        """Split the mapping that strictly contains ``at`` (if any) into two at ``at``."""
        self._last = None
        i = bisect.bisect_right(self._starts, at) - 1
        if i < 0:
            return
        m = self._maps[i]
        if m.start < at < m.end:
            left, right = m.split(at)
            self._maps[i : i + 1] = [left, right]
            self._starts[i : i + 1] = [left.start, right.start]

    def remove(self, start: int, end: int) -> None:
        """Carve ``[start, end)`` out: what was mapped there is gone, the rest stays."""
        self._last = None
        self.split_at(start)
        self.split_at(end)
        keep = [m for m in self._maps if m.end <= start or m.start >= end]
        self._maps = keep
        self._starts = [m.start for m in keep]

    def protect(self, start: int, end: int, prot: int) -> None:
        """Give ``[start, end)`` the protection ``prot``; the range must be wholly mapped
        (MemoryFault otherwise, with nothing changed)."""
        pos = start
        while pos < end:
            m = self.lookup(pos)
            if m is None:
                raise MemoryFault(pos, "mprotect", "range not wholly mapped")
            pos = m.end
        self.split_at(start)
        self.split_at(end)
        for m in self._maps:
            if start <= m.start and m.end <= end:
                m.prot = prot
