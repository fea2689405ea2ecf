"""Futex keys in an address space: Linux ``get_futex_key`` over the mappings.

:meth:`futex.memory.AddressSpace.futex_key` produces the three key kinds of
:mod:`futex.kernel.keys`.  The address must be aligned and at most ``user_ptr_max``
(``access_ok``); a private key needs nothing more.  A shared key needs a readable
mapping:

* on a shared mapping it names (object, offset), so it matches across processes;
* on a writable private mapping it names the address in this address space
  (``FUT_OFF_MMSHARED``) and, as Linux's write fault through ``get_user_pages`` does, turns
  a private file page into this address space's own copy;
* on a read-only private mapping it names the file page if the page was never written, and
  faults for anonymous memory ("a RO anonymous page will never change");
* ``write`` (FUTEX_WAKE_OP's second word) asks for a key good for writing: a read-only
  mapping then faults.

``PROT_EXEC`` alone depends on the CPU, a host fact (``LinuxFacts.protection_keys``): with
protection keys (``exec_readable=False``) Linux makes it execute-only and the key faults;
without them (``exec_readable=True``) ``get_user_pages`` still checks the VMA, which has no
VM_READ, so a key exists only where ``get_futex_key``'s lockless
``get_user_page_fast_only`` path finds the page already *present* in this address space's
page tables (:mod:`futex.memory.pages`); then it is keyed as a read-only page (a write key
still faults).  Keying a readable page makes it present (``get_user_pages`` faults it in).
A file page wholly past the end of the file faults.

This module works on the address space's internals (its mapping table, private pages and
present set): it is the key half of :class:`~futex.memory.AddressSpace`, apart only for
reading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from futex.kernel.errors import MemoryFault
from futex.kernel.keys import Key, mappable_key, shared_private_key
from futex.memory.mappings import Mapping
from futex.memory.objects import _LOCK, _PROT_READABLE, PAGE_SHIFT, PROT_WRITE

if TYPE_CHECKING:
    from futex.memory.space import AddressSpace

__all__ = ["futex_key", "object_key"]


def futex_key(space: AddressSpace, addr: int, private: bool, write: bool = False) -> Key:
    """The futex key of the aligned word at ``addr`` in ``space`` (Linux
    ``get_futex_key``; the rules: the module docstring).  It is
    :meth:`AddressSpace.futex_key <futex.memory.AddressSpace.futex_key>` itself (bound
    there, not called through: every shared futex call keys a word).

    Raises :class:`MemoryFault` where Linux answers EFAULT.  ``write`` asks for a key
    good for writing (FUTEX_WAKE_OP's second word): a read-only shared mapping then
    faults.
    """
    if addr > space.user_ptr_max or addr < 0:
        raise MemoryFault(addr, "key", "outside the user address range")
    if private:
        return addr  # private_key(addr)
    m = space._vmas.lookup(addr)
    if m is None:
        raise MemoryFault(addr, "key", "not mapped")
    vpn = addr >> PAGE_SHIFT
    if not m.prot & _PROT_READABLE:
        # No VM_READ: get_user_pages faults; only the lockless walk can find the page
        # (no protection keys, page present), and then as a read-only page.
        if not space.exec_readable or vpn not in space._present:
            raise MemoryFault(addr, "key", "not readable (no VM_READ)")
    else:
        space._present.add(vpn)  # get_user_pages faults it in
    if m.prot & PROT_WRITE:
        if m.shared:
            return object_key(m, addr)
        if m.obj is not None and vpn not in space._pages:
            # get_user_pages(FOLL_WRITE) write-faults the page in: a private file page
            # becomes this address space's own copy (it no longer follows the file).
            with _LOCK:
                space._page_for_write_mm_locked(addr)
        return shared_private_key(space, addr)
    if write:
        raise MemoryFault(addr, "key", "not writable")
    if m.shared:
        return object_key(m, addr)
    if m.obj is None or vpn in space._pages:
        raise MemoryFault(addr, "key", "read-only anonymous page")
    return object_key(m, addr)


def object_key(m: Mapping, addr: int) -> Key:
    """The key that names the object page ``addr`` shows through ``m`` (shared, or a
    never-written private file page); a page wholly past the end of the object faults."""
    obj = m.obj
    assert obj is not None
    offset = m.object_offset(addr)
    if offset >> PAGE_SHIFT >= obj.page_count():
        raise MemoryFault(addr, "key", "past the end of the mapped object")
    return mappable_key(obj, offset)
