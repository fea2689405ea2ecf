"""Private pages and page presence: copy-on-write, and what the page tables hold.

Private pages
-------------
A private mapping reads through to its object (or zeros) until a page of it is written;
the write lands in a :class:`PrivatePage` that belongs to this address space alone
(:func:`own_page`).  Pages are created lazily, so a large mapping that is never written
costs nothing.  Across :meth:`~futex.memory.AddressSpace.fork` parent and child keep
referring to the same page object (``refs`` counts them) until one of them writes it; the
writer then copies (:func:`own_page` again).

Presence
--------
Linux's PI paths read the word with page faults disabled and fall back to
``fault_in_user_writeable``, so a fresh (never touched) read-only page faults there where a
touched one reads (:meth:`~futex.memory.AddressSpace.load_u32_nofault`; measured: a
CMP_REQUEUE_PI whose PI word is on a fresh ``PROT_READ`` page is EFAULT, and 0 once the
page was read), and without protection keys an execute-only page has a shared futex key
only where it is present (:mod:`futex.memory.keys`).  So an address space keeps the set of
virtual page numbers present in its page tables:

* a page becomes present when it is read or written through
  :meth:`~futex.memory.AddressSpace.read`, :meth:`~futex.memory.AddressSpace.load_u32` and
  the other accessors (a user access, or the kernel's ``get_user``), or keyed while
  readable; :meth:`~futex.memory.AddressSpace.peek` reads without making it present (for
  debuggers and test harnesses);
* ``munmap`` and ``mmap`` over it drop it (:func:`drop_pages`); ``mprotect`` keeps it;
* a fork child starts with the present pages of the private mappings that hold pages of
  their own (``copy_page_range`` copies the page tables of a VMA with an ``anon_vma``
  only: :func:`fork_pages`).

Not modelled: reclaim or NUMA balancing taking a present page away.

The functions here change an address space's ``pages`` (private pages by virtual page
number) and ``present`` (virtual page numbers); callers hold the memory lock (``_LOCK`` of
:mod:`futex.memory.objects`).
"""

from __future__ import annotations

from collections.abc import Iterable

from futex.kernel.errors import MemoryFault
from futex.memory.mappings import Mapping
from futex.memory.objects import PAGE_SHIFT, PAGE_SIZE

__all__ = ["PrivatePage", "drop_pages", "fork_pages", "own_page"]


class PrivatePage:
    """A private page; ``refs`` counts the address spaces that share it copy-on-write."""

    __slots__ = ("data", "refs")

    def __init__(self, data: bytearray) -> None:
        self.data = data
        self.refs = 1


def own_page(pages: dict[int, PrivatePage], m: Mapping, addr: int) -> bytearray:
    """The bytes of this address space's own copy of the page at ``addr`` in the private
    mapping ``m``, made on its first write (from the object's page, or zeros) or when it
    is still shared copy-on-write with a fork relative (the copy-on-write break).  A file
    page wholly past the end of the file faults."""
    vpn = addr >> PAGE_SHIFT
    page = pages.get(vpn)
    if page is None:
        if m.obj is None:
            data = bytearray(PAGE_SIZE)
        else:
            index = m.object_offset(addr) >> PAGE_SHIFT
            if index >= m.obj.page_count():
                raise MemoryFault(addr, "write", "past the end of the mapped object")
            data = bytearray(m.obj.page_for_read(index))
        page = pages[vpn] = PrivatePage(data)
    elif page.refs > 1:  # break copy-on-write
        page.refs -= 1
        page = pages[vpn] = PrivatePage(bytearray(page.data))
    return page.data


def drop_pages(pages: dict[int, PrivatePage], present: set[int], start: int, end: int) -> None:
    """Forget the private pages and the presence of ``[start, end)`` (unmapped)."""
    first, last = start >> PAGE_SHIFT, end >> PAGE_SHIFT
    for vpn in [v for v in pages if first <= v < last]:
        del pages[vpn]
    if present:
        present.difference_update([v for v in present if first <= v < last])


def fork_pages(
    maps: Iterable[Mapping], pages: dict[int, PrivatePage], present: set[int]
) -> tuple[dict[int, PrivatePage], set[int]]:
    """A fork child's private pages (the parent's, shared copy-on-write: each one's
    ``refs`` goes up) and present pages (see "Presence" above)."""
    child_pages: dict[int, PrivatePage] = {}
    for vpn, page in pages.items():
        page.refs += 1
        child_pages[vpn] = page
    # copy_page_range copies a VMA's page tables only if it has an anon_vma: here, a
    # private mapping holding pages of its own
    owned = [
        (m.start >> PAGE_SHIFT, m.end >> PAGE_SHIFT)
        for m in maps
        if not m.shared and any(m.start >> PAGE_SHIFT <= v < m.end >> PAGE_SHIFT for v in pages)
    ]
    child_present = {v for v in present if any(lo <= v < hi for lo, hi in owned)}
    return child_pages, child_present
