"""Emulated address spaces: mappings, protections, faults, and fork with copy-on-write.

Where it sits
-------------
``futex.memory`` implements the core's target protocol,
:class:`futex.kernel.target.FutexTarget` (aligned 32-bit atomics and futex keys), as
gVisor's Task implements its futex package's ``Target``.  So it sits beside the
personalities (``futex.linux``, ``futex.zircon``, ``futex.liteos``), above the core: it
imports from ``futex.kernel`` (the protocol's key kinds and :class:`MemoryFault`) and from
no personality, and the personalities' processes own an :class:`AddressSpace`
(:mod:`futex.memory.owner`).  An emulator embedding the core implements the same protocol
over its guest memory instead.

Model
-----
An :class:`AddressSpace` is a sorted set of non-overlapping :class:`Mapping` s, each page
aligned.  A mapping is *shared* (it shows a :class:`MemoryObject` — anonymous shared memory
or a :class:`File` — and every mapping of that object sees the same bytes) or *private*
(it starts as the object's content, or zeros, and every write lands in a page that belongs
to this address space alone).  Private pages are copy-on-write across
:meth:`AddressSpace.fork` and created lazily, so a large mapping that is never written
costs nothing.  An access the mapping does not allow raises :class:`MemoryFault` (EFAULT
on Linux); the address space also tracks which pages are present in its page tables,
because Linux's PI paths and futex keys on execute-only pages depend on it.

Modules
-------
:mod:`futex.memory.objects`
    What a shared mapping shows (:class:`MemoryObject`, :class:`AnonymousMemory`,
    :class:`File`), the page and protection constants, the one memory lock.
:mod:`futex.memory.args`
    The mapping calls' arguments, checked before anything changes, and where a mapping
    without an address goes.
:mod:`futex.memory.mappings`
    :class:`Mapping` (a VMA) and the sorted table of them: lookup, split, unmap,
    ``mprotect``.
:mod:`futex.memory.pages`
    Private pages (copy-on-write, fork) and page presence.
:mod:`futex.memory.space`
    :class:`AddressSpace`: the mapping calls, faults, byte access, the atomics and their
    atomicity, fork.
:mod:`futex.memory.keys`
    Futex keys (Linux ``get_futex_key``).
:mod:`futex.memory.owner`
    The memory calls of a personality's process, delegated to its address space.

This module only re-exports the public names.
"""

from __future__ import annotations

from futex.kernel.errors import MemoryFault
from futex.memory.mappings import Mapping
from futex.memory.objects import (
    PAGE_SIZE,
    PROT_EXEC,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    AnonymousMemory,
    File,
    MappingError,
    MemoryObject,
)
from futex.memory.space import USER_PTR_MAX_X86_64, AddressSpace

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
