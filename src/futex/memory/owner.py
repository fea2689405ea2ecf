"""The memory calls every emulated process offers, delegated to its address space.

A personality's process class (``futex.linux``, ``futex.zircon``, ``futex.liteos``)
inherits :class:`ProcessMemory` and sets ``self.space``; a kernel whose mappings go to
its own default places (LiteOS-A's map region) overrides :meth:`ProcessMemory.mmap_place`.
A :class:`~futex.kernel.FutexTarget` with futex keys of its own over an address space
(FUTEX2_NUMA words, LiteOS-A's keys) inherits :class:`SpaceAtomics` and adds
``futex_key``.
"""

from __future__ import annotations

from collections.abc import Callable

from futex.memory.args import check_mmap
from futex.memory.objects import PROT_READ, PROT_WRITE, MemoryObject
from futex.memory.space import AddressSpace

__all__ = ["ProcessMemory", "SpaceAtomics"]


class SpaceAtomics:
    """The 32-bit atomics of ``self.space``."""

    __slots__ = ()
    space: AddressSpace

    def load_u32(self, addr: int) -> int:
        return self.space.load_u32(addr)

    def store_u32(self, addr: int, value: int) -> None:
        self.space.store_u32(addr, value)

    def cas_u32(self, addr: int, old: int, new: int) -> int:
        return self.space.cas_u32(addr, old, new)

    def swap_u32(self, addr: int, new: int) -> int:
        return self.space.swap_u32(addr, new)

    def update_u32(self, addr: int, fn: Callable[[int], int]) -> int:
        return self.space.update_u32(addr, fn)


class ProcessMemory(SpaceAtomics):
    """mmap/munmap/mprotect, byte access and 32-bit atomics on ``self.space``."""

    def mmap_place(self, length: int) -> int | None:
        """Where a mapping without an address goes (``None``: the address space's
        default placement).  ``length`` is checked and page aligned already; raise
        MappingError when nothing fits, changing nothing."""
        return None

    def mmap(
        self,
        length: int,
        *,
        shared: bool = False,
        prot: int = PROT_READ | PROT_WRITE,
        addr: int | None = None,
        file: MemoryObject | None = None,
        offset: int = 0,
    ) -> int:
        """Map memory; see :meth:`futex.memory.AddressSpace.mmap`.

        Every argument is checked before :meth:`mmap_place` sees it
        (:func:`futex.memory.args.check_mmap`): TypeError or MappingError, and a refused
        call changes nothing."""
        size = check_mmap(length, prot, shared, addr, file, offset, self.space.task_size)
        if addr is None:
            addr = self.mmap_place(size)
        return self.space.mmap(
            length, prot=prot, shared=shared, addr=addr, file=file, offset=offset
        )

    def munmap(self, addr: int, length: int) -> None:
        self.space.munmap(addr, length)

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        self.space.mprotect(addr, length, prot)

    def peek(self, addr: int, n: int) -> bytes:
        return self.space.peek(addr, n)

    def read(self, addr: int, n: int) -> bytes:
        return self.space.read(addr, n)

    def write(self, addr: int, data: bytes) -> None:
        self.space.write(addr, data)
