"""What the core needs from memory (gVisor's ``Target``): atomics on aligned 32-bit words
and futex keys.  :class:`futex.memory.AddressSpace` implements it; an emulator embedding the
kernel implements it over its guest memory.

Every method raises :class:`~futex.kernel.errors.MemoryFault` for an access the memory does
not allow.  Addresses passed in are already 4-byte aligned (the core checks first).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from futex.kernel.keys import Key

__all__ = ["FutexTarget"]


class FutexTarget(Protocol):
    def load_u32(self, addr: int) -> int:
        """Atomically read the word at ``addr``."""
        ...

    def cas_u32(self, addr: int, old: int, new: int) -> int:
        """Compare-and-swap; return the previous value (swapped iff it equals ``old``)."""
        ...

    def update_u32(self, addr: int, fn: Callable[[int], int]) -> int:
        """Atomically replace the word ``v`` by ``fn(v)``; return ``v``.  Needs write access."""
        ...

    def futex_key(self, addr: int, private: bool, write: bool = False) -> Key:
        """The key of the word at ``addr`` (see :mod:`futex.kernel.keys`)."""
        ...
