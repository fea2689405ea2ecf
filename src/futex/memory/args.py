"""The arguments of the mapping calls, checked before anything changes, and where a
mapping without an address goes.

Invariant: a mapping call that raises has changed nothing -- no mapping, no page, no
presence bit, not the placement hint (``AddressSpace._next_base``).  So every argument is
checked here, by type and then by range, before the address space is touched:

- a wrong *type* (a ``str`` length, a ``file`` that is not a
  :class:`~futex.memory.MemoryObject`, a ``shared`` that is not a ``bool``; ``bool`` is
  not taken for a number) is a :class:`TypeError` naming the argument;
- a value out of range is a :class:`~futex.memory.MappingError` (Linux's EINVAL, ENOMEM
  or EOVERFLOW of ``do_mmap`` / ``get_unmapped_area``, ``__vm_munmap``,
  ``do_mprotect_pkey``), in the order ``do_mmap`` checks: offset alignment
  (``ksys_mmap_pgoff``), length, ``pgoff`` overflow, then the range (``TASK_SIZE``).

Placement (:func:`first_fit`, :func:`place`) mirrors the bottom-up
``arch_get_unmapped_area`` with ``mm->free_area_cache`` (Linux before 3.9): search upward
from the hint; when nothing fits below ``TASK_SIZE``, search once more from the mmap base
("start a new search - just in case we missed some holes"), and only then refuse.  The
caller moves the hint past a mapping once it is in place, never for a refused one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from futex.memory.objects import _PROT_ALL, PAGE_SHIFT, PAGE_SIZE, MappingError, MemoryObject

if TYPE_CHECKING:
    from futex.memory.mappings import Mapping

__all__ = [
    "check_int",
    "check_mmap",
    "check_prot",
    "check_range",
    "first_fit",
    "page_align",
    "place",
]

#: ``pgoff`` is an ``unsigned long``: ``do_mmap`` refuses a mapping whose last page
#: index would wrap (EOVERFLOW).
_PGOFF_LIMIT = 1 << 64


def page_align(n: int) -> int:
    """``PAGE_ALIGN``: ``n`` rounded up to a whole page."""
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def check_int(name: str, value: object) -> int:
    """``value`` if it is an ``int`` (not a ``bool``); else TypeError naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


def check_prot(prot: object) -> int:
    """A protection: an int made of PROT_READ / PROT_WRITE / PROT_EXEC bits."""
    prot = check_int("prot", prot)
    if prot & ~_PROT_ALL or prot < 0:
        raise MappingError(f"unknown protection bits {prot:#x}")
    return prot


def check_mmap(
    length: object,
    prot: object,
    shared: object,
    addr: object,
    file: object,
    offset: object,
    task_size: int,
) -> int:
    """Check every argument of ``mmap`` (see :meth:`futex.memory.AddressSpace.mmap`);
    return the page-aligned size.  Raises TypeError or MappingError, changing nothing."""
    length = check_int("length", length)
    prot = check_prot(prot)
    if not isinstance(shared, bool):
        raise TypeError(f"shared must be a bool, got {type(shared).__name__}")
    if addr is not None:
        addr = check_int("addr", addr)
    if file is not None and not isinstance(file, MemoryObject):
        raise TypeError(
            f"file must be a MemoryObject (File, AnonymousMemory) or None, "
            f"got {type(file).__name__}"
        )
    offset = check_int("offset", offset)
    if offset % PAGE_SIZE or offset < 0:  # ksys_mmap_pgoff: offset_in_page(off)
        raise MappingError(f"offset {offset:#x} is not a non-negative multiple of the page")
    if length <= 0:
        raise MappingError(f"length must be positive, got {length}")
    size = page_align(length)
    if (offset >> PAGE_SHIFT) + (size >> PAGE_SHIFT) >= _PGOFF_LIMIT:
        raise MappingError(f"offset {offset:#x} + length {size:#x} overflows pgoff")
    if size > task_size:  # get_unmapped_area: len > TASK_SIZE is ENOMEM
        raise MappingError(f"length {size:#x} is larger than user space ({task_size:#x})")
    if addr is not None:
        if addr % PAGE_SIZE:
            raise MappingError(f"address {addr:#x} is not page aligned")
        if addr < 0 or addr + size > task_size:
            raise MappingError(f"[{addr:#x}, {addr + size:#x}) is outside user space")
    return size


def check_range(what: str, addr: object, length: object, task_size: int) -> int:
    """Check ``munmap`` / ``mprotect``'s range; return its page-aligned end.  Linux
    ``__vm_munmap`` / ``do_mprotect_pkey``: a misaligned start, a zero length or a range
    past ``TASK_SIZE`` is EINVAL (``mprotect`` of a range not wholly mapped is ENOMEM:
    the caller's MemoryFault)."""
    addr = check_int("addr", addr)
    length = check_int("length", length)
    if addr % PAGE_SIZE or length <= 0 or addr < 0 or addr + page_align(length) > task_size:
        raise MappingError(f"bad {what} range {addr:#x}+{length:#x}")
    return addr + page_align(length)


def first_fit(maps: Iterable[Mapping], size: int, start: int) -> int:
    """The lowest address ``>= start`` where ``size`` bytes touch none of ``maps``
    (sorted by address).  It may end past the top of user space: the caller checks."""
    base = start
    for m in maps:
        if m.end <= base:
            continue
        if m.start >= base + size:
            break
        base = m.end
    return base


def place(maps: Iterable[Mapping], size: int, hint: int, floor: int, end: int) -> int:
    """Where a mapping of ``size`` bytes goes: the first fit from ``hint``, else (nothing
    fits below ``end``) the first fit from ``floor``; MappingError (ENOMEM) when neither
    fits.  Changes nothing.  ``maps`` (sorted by address) is iterated once per try: a
    list or a :class:`~futex.memory.mappings.MappingTable`, not an iterator."""
    for start in (hint, floor) if hint != floor else (hint,):
        base = first_fit(maps, size, start)
        if base + size <= end:
            return base
    raise MappingError(f"no room for {size:#x} bytes in [{floor:#x}, {end:#x})")
