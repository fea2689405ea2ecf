"""The guest's memory as the kernel's futex target: :class:`GuestMemory` over ``ql.mem``.

What futex.linux asks of a process's memory (the futex target protocol plus byte access) is
answered here from unicorn's regions, so every access the guest's own page tables would
refuse becomes :class:`~futex.kernel.MemoryFault` -- EFAULT to the guest -- and no
``UcError`` ever leaves a syscall handler:

- an address past the user range (``user_ptr_max``: see :class:`GuestMemory`), unmapped,
  or on a page without ``UC_PROT_READ`` faults on every access;
- a write (store, CAS, the robust-list walk's OWNER_DIED store, WAKE_OP, LOCK_PI's CAS)
  faults on a page without ``UC_PROT_WRITE`` -- ``ql.mem.write`` itself ignores page
  protection, so the check is made here before it;
- a multi-byte access may span regions; it faults if any byte does, and a write then
  changes nothing.

Atomicity: the guest is one address space emulated on one OS thread, and a syscall handler
runs with every guest thread stopped (unicorn's callback; Qiling switches greenlets only
between emulation slices).  A read-compare-write inside one handler is therefore atomic
with respect to the guest, as a locked instruction is on hardware.

Keys (Linux ``get_futex_key``): a private futex is keyed by its address; a shared one by
(this address space, address) -- Linux's key for a shared futex on a private mapping.  A
MAP_SHARED mapping of an object seen at two addresses would need the object's key; Qiling
runs one process and gives the guest no way to learn which object backs a mapping, so the
address key is used there too (documented limit).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from futex.kernel import MemoryFault
from futex.kernel.keys import Key, shared_private_key

__all__ = ["USER_PTR_MAX_5LEVEL", "GuestMemory"]

_U32 = struct.Struct("<I")
_PROT_READ = 1  # unicorn's UC_PROT_READ / UC_PROT_WRITE (the values of mmap's PROT_*)
_PROT_WRITE = 2
#: x86-64 with 5-level paging: ``USER_PTR_MAX`` = TASK_SIZE_MAX - PAGE_SIZE, the analogue of
#: the 4-level 0x7ffffffff000 measured in :mod:`futex.memory.space`.
USER_PTR_MAX_5LEVEL = (1 << 56) - 0x1000


class _Region:
    """What :func:`futex.linux.robust.put_user` asks of the mapping at an address."""

    __slots__ = ("writable",)

    def __init__(self, writable: bool) -> None:
        self.writable = writable


class GuestMemory:
    """The futex target of a Qiling guest: 32-bit atomics, byte access and futex keys on
    ``ql.mem`` (see the module docstring for the fault rules)."""

    def __init__(self, ql: Any, user_ptr_max: int = USER_PTR_MAX_5LEVEL) -> None:
        self._uc = ql.uc
        #: Highest address ``access_ok`` accepts for a 4-byte access.  By default that of
        #: x86-64 with 5-level paging: Qiling maps the guest's stack just above the 47-bit
        #: user range of 4-level paging (0x8000_0000_0000 and up), and the kernel half --
        #: where Qiling maps the vsyscall page read-write -- must stay EFAULT, as on any
        #: x86-64 Linux.
        self.user_ptr_max = user_ptr_max

    def __repr__(self) -> str:
        return "<GuestMemory of a Qiling guest>"

    # -- checks -------------------------------------------------------------------------------

    def _check(self, addr: int, n: int, want: int, access: str) -> None:
        """Raise MemoryFault unless all of ``[addr, addr + n)`` is mapped with ``want``."""
        if addr < 0 or n < 0 or addr > self.user_ptr_max or addr + n > self.user_ptr_max + 4:
            raise MemoryFault(addr, access, "outside the user address range")
        end = addr + n
        pos = addr
        regions = sorted(self._uc.mem_regions())
        for begin, last, perms in regions:
            if last < pos:
                continue
            if begin > pos:
                break  # a hole
            if perms & want != want:
                what = "writable" if want & _PROT_WRITE and perms & _PROT_READ else "readable"
                raise MemoryFault(pos, access, f"not {what}")
            pos = last + 1
            if pos >= end:
                return
        raise MemoryFault(pos, access, "not mapped")

    @staticmethod
    def _aligned(addr: int) -> None:
        if addr & 3:
            raise ValueError(f"address {addr:#x} is not 4-byte aligned")

    # -- bytes --------------------------------------------------------------------------------

    def read(self, addr: int, n: int) -> bytes:
        """``n`` bytes at ``addr`` (``copy_from_user``): MemoryFault if any is unreadable."""
        self._check(addr, n, _PROT_READ, "read")
        return bytes(self._uc.mem_read(addr, n))

    def peek(self, addr: int, n: int) -> bytes:
        return self.read(addr, n)

    def write(self, addr: int, data: bytes) -> None:
        """Store ``data`` at ``addr``, all or nothing (``copy_to_user`` of a small value)."""
        self._check(addr, len(data), _PROT_READ | _PROT_WRITE, "write")
        self._uc.mem_write(addr, bytes(data))

    def mapping_at(self, addr: int) -> _Region | None:
        """The region holding ``addr`` (only ``writable`` is asked), or None."""
        for begin, last, perms in self._uc.mem_regions():
            if begin <= addr <= last:
                return _Region(bool(perms & _PROT_WRITE))
        return None

    # -- 32-bit atomics (see the module docstring: a handler is atomic) -----------------------

    def load_u32(self, addr: int) -> int:
        self._aligned(addr)
        self._check(addr, 4, _PROT_READ, "read")
        value: int = _U32.unpack(self._uc.mem_read(addr, 4))[0]
        return value

    def load_u32_nofault(self, addr: int) -> int:
        """The PI paths' ``futex_get_value_locked``: every mapped guest page is present."""
        return self.load_u32(addr)

    def store_u32(self, addr: int, value: int) -> None:
        self._aligned(addr)
        self.write(addr, _U32.pack(value & 0xFFFFFFFF))

    def cas_u32(self, addr: int, old: int, new: int) -> int:
        self._aligned(addr)
        self._check(addr, 4, _PROT_READ | _PROT_WRITE, "write")
        cur: int = _U32.unpack(self._uc.mem_read(addr, 4))[0]
        if cur == old:
            self._uc.mem_write(addr, _U32.pack(new & 0xFFFFFFFF))
        return cur

    def swap_u32(self, addr: int, new: int) -> int:
        return self.update_u32(addr, lambda _: new)

    def update_u32(self, addr: int, fn: Callable[[int], int]) -> int:
        self._aligned(addr)
        self._check(addr, 4, _PROT_READ | _PROT_WRITE, "write")
        cur: int = _U32.unpack(self._uc.mem_read(addr, 4))[0]
        self._uc.mem_write(addr, _U32.pack(fn(cur) & 0xFFFFFFFF))
        return cur

    # -- keys ---------------------------------------------------------------------------------

    def futex_key(self, addr: int, private: bool, write: bool = False) -> Key:
        """Linux ``get_futex_key`` for the guest (see the module docstring)."""
        if addr < 0 or addr > self.user_ptr_max:
            raise MemoryFault(addr, "key", "outside the user address range")
        if private:
            return addr
        self._check(addr, 4, _PROT_READ | (_PROT_WRITE if write else 0), "key")
        return shared_private_key(self, addr)
