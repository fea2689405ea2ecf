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
into their fault answer (EFAULT on Linux).  ``PROT_READ`` or ``PROT_WRITE`` can be read;
writing needs ``PROT_WRITE``.  ``PROT_EXEC`` alone depends on the CPU, a host fact
(``LinuxFacts.protection_keys``):

* with protection keys (the default, ``exec_readable=False``) Linux makes it execute-only:
  every read faults, and so does a shared futex key on it;
* without them (``exec_readable=True``: older x86, most VMs) the page tables cannot say
  execute-only, so user and kernel reads (``get_user``) succeed.  ``get_user_pages`` still
  checks the VMA, which has no VM_READ, so a shared futex key exists only where
  ``get_futex_key``'s lockless ``get_user_page_fast_only`` path finds the page already
  *present* in this address space's page tables; then it is keyed as a read-only page
  (a write key still faults).

Presence matters on any CPU too: the PI paths read the word with page faults disabled and
fall back to ``fault_in_user_writeable``, so a fresh (never touched) read-only page faults
there where a touched one reads (:meth:`AddressSpace.load_u32_nofault`; measured: a
CMP_REQUEUE_PI whose PI word is on a fresh ``PROT_READ`` page is EFAULT, and 0 once the
page was read).  So the address space tracks which pages are present: a page becomes
present when it is read or written through :meth:`AddressSpace.read`,
:meth:`~AddressSpace.load_u32` and the other accessors (a user access, or the kernel's
``get_user``), or keyed while readable; ``munmap`` and ``mmap`` over it drop it;
``mprotect`` keeps it; a fork child starts with the present pages of the private mappings
that hold pages of their own (``copy_page_range`` copies the page tables of a VMA with an
``anon_vma`` only).  :meth:`AddressSpace.peek` reads without making a page present, for
debuggers and test harnesses.  Not modelled: reclaim or NUMA balancing taking a present
page away.

A file page wholly past the end of the file faults (Linux delivers SIGBUS; futex(2) answers
EFAULT).

Mapping calls
-------------
``mmap`` / ``munmap`` / ``mprotect`` check every argument, type then range, before they
touch anything (:mod:`futex.memory.args`): TypeError or :class:`MappingError`, and a
refused call leaves the mappings, the pages and the placement hint as they were.  Without
an address, a mapping goes to the first gap from the end of the last placed mapping, then
from the mmap base (``_DEFAULT_MMAP_BASE``) before it is refused.

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
import struct
from collections.abc import Callable
from dataclasses import dataclass

from futex.kernel.errors import MemoryFault
from futex.kernel.keys import Key, mappable_key, shared_private_key
from futex.memory.args import check_mmap, check_prot, check_range, place
from futex.memory.objects import (
    _LOCK,
    _PROT_ALL,
    _PROT_READABLE,
    _ZERO_PAGE,
    PAGE_SHIFT,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    AnonymousMemory,
    File,
    MappingError,
    MemoryObject,
    _serials,
)

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

#: Highest address ``access_ok`` accepts for a 4-byte access on x86-64 with 4-level paging
#: (measured on the host: 0x7ffffffff000 passes, 0x7ffffffff004 is EFAULT).
USER_PTR_MAX_X86_64 = 0x7FFFFFFFF000

#: Where :meth:`AddressSpace.mmap` places mappings when no address is asked for.
_DEFAULT_MMAP_BASE = 0x10000000

_U32 = struct.Struct("<I")
_unpack_u32 = _U32.unpack_from
_pack_u32 = _U32.pack_into


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
        #: Virtual page numbers present in this space's page tables (see "Faults" above).
        self._present: set[int] = set()
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
                addr = place(self._maps, size, self._next_base, _DEFAULT_MMAP_BASE,
                             self.task_size)
            obj = file
            if obj is None:
                offset = 0
                if shared:
                    obj = AnonymousMemory(size)
            if placed:
                self._next_base = addr + size
            self._unmap_locked(addr, addr + size)
            self._last = None
            mapping = Mapping(addr, addr + size, prot, shared, obj, offset)
            i = bisect.bisect_left(self._starts, addr)
            self._starts.insert(i, addr)
            self._maps.insert(i, mapping)
        return addr

    def munmap(self, addr: int, length: int) -> None:
        """Unmap ``[addr, addr+length)``; unmapped parts of the range are ignored."""
        end = check_range("munmap", addr, length, self.task_size)
        with _LOCK:
            self._unmap_locked(addr, end)

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        """Change the protection of ``[addr, addr+length)``, which must be wholly mapped
        (MemoryFault otherwise, with nothing changed)."""
        end = check_range("mprotect", addr, length, self.task_size)
        prot = check_prot(prot)
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
        first, last = start >> PAGE_SHIFT, end >> PAGE_SHIFT
        for vpn in [v for v in self._pages if first <= v < last]:
            del self._pages[vpn]
        if self._present:
            self._present.difference_update([v for v in self._present if first <= v < last])

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

    def _page_for_read(
        self, addr: int, access: str = "read", touch: bool = True
    ) -> bytes | bytearray:
        m = self._lookup(addr)
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

    def _page_for_write_locked(self, addr: int) -> bytearray:
        m = self._lookup(addr)
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
        return self._read(addr, n, True)

    def peek(self, addr: int, n: int) -> bytes:
        """:meth:`read` as a debugger would: the same bytes and faults, but no page becomes
        present in the page tables (see "Faults" in the module docstring)."""
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
                self._page_for_write_locked(addr + pos)[off : off + chunk] = data[pos : pos + chunk]
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

    def load_u32_nofault(self, addr: int) -> int:
        """Load the word as the PI paths do: Linux ``futex_get_value_locked`` (page faults
        disabled: only a present, readable page answers), and on a fault
        ``fault_in_user_writeable`` and again: a writable page is brought in by a write
        fault (a private file page becomes this space's copy); any other page faults --
        a present read-only page reads, a fresh one does not."""
        if addr & 3:
            self._check_aligned(addr)
        m = self._lookup(addr)
        if m is None or not m.prot & self._load_mask or addr >> PAGE_SHIFT not in self._present:
            if m is None or not m.prot & PROT_WRITE:
                raise MemoryFault(addr, "read", "not present, and not writable to fault in")
            with _LOCK:
                self._page_for_write_locked(addr)
        return self.load_u32(addr)

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
        vpn = addr >> PAGE_SHIFT
        if not m.prot & _PROT_READABLE:
            # No VM_READ: get_user_pages faults; only the lockless walk can find the page
            # (no protection keys, page present), and then as a read-only page.
            if not self.exec_readable or vpn not in self._present:
                raise MemoryFault(addr, "key", "not readable (no VM_READ)")
        else:
            self._present.add(vpn)  # get_user_pages faults it in
        if m.prot & PROT_WRITE:
            if m.shared:
                return self._object_key(m, addr)
            if m.obj is not None and vpn not in self._pages:
                # get_user_pages(FOLL_WRITE) write-faults the page in: a private file page
                # becomes this address space's own copy (it no longer follows the file).
                with _LOCK:
                    self._page_for_write_locked(addr)
            return shared_private_key(self, addr)
        if write:
            raise MemoryFault(addr, "key", "not writable")
        if m.shared:
            return self._object_key(m, addr)
        if m.obj is None or vpn in self._pages:
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
        child = AddressSpace(
            user_ptr_max=self.user_ptr_max,
            exec_readable=self.exec_readable,
            task_size=self.task_size,
        )
        with _LOCK:
            child._maps = [
                Mapping(m.start, m.end, m.prot, m.shared, m.obj, m.offset) for m in self._maps
            ]
            child._starts = list(self._starts)
            child._next_base = self._next_base
            for vpn, page in self._pages.items():
                page.refs += 1
                child._pages[vpn] = page
            # copy_page_range copies a VMA's page tables only if it has an anon_vma: here,
            # a private mapping holding pages of its own
            owned = [
                (m.start >> PAGE_SHIFT, m.end >> PAGE_SHIFT)
                for m in self._maps
                if not m.shared
                and any(m.start >> PAGE_SHIFT <= v < m.end >> PAGE_SHIFT for v in self._pages)
            ]
            child._present.update(v for v in self._present if any(lo <= v < hi for lo, hi in owned))
        return child
