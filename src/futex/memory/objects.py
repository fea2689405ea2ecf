"""Memory objects: what a shared mapping shows (anonymous shared memory, files), the page
and protection constants, and the one lock every mutation of emulated memory runs under.

See :mod:`futex.memory` for the model and the other modules; this one is its data.
"""

from __future__ import annotations

import itertools
import mmap as _mmap
import threading

__all__ = [
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "PROT_EXEC",
    "PROT_NONE",
    "PROT_READ",
    "PROT_WRITE",
    "AnonymousMemory",
    "File",
    "MappingError",
    "MemoryObject",
]

PAGE_SIZE = 4096
PAGE_SHIFT = 12
PROT_NONE = _mmap.PROT_NONE if hasattr(_mmap, "PROT_NONE") else 0
PROT_READ = _mmap.PROT_READ
PROT_WRITE = _mmap.PROT_WRITE
PROT_EXEC = _mmap.PROT_EXEC
_PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC
_PROT_READABLE = PROT_READ | PROT_WRITE  # what get_user_pages calls VM_READ (x86: W => R)

_LOCK = threading.Lock()
_serials = itertools.count(1)
_ZERO_PAGE = bytes(PAGE_SIZE)


class MappingError(ValueError):
    """A mapping request with bad arguments (the mmap/munmap/mprotect EINVAL cases)."""


class MemoryObject:
    """Something mappable with identity: every shared mapping of it sees the same bytes.

    ``size`` is the object's length in bytes; pages wholly past it fault.
    """

    def __init__(self, size: int, name: str = "") -> None:
        if size < 0:
            raise MappingError(f"size must be >= 0, got {size}")
        self.serial = next(_serials)
        self.name = name or f"{type(self).__name__.lower()}:{self.serial}"
        self.size = size
        self._pages: dict[int, bytearray] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} size={self.size}>"

    def __hash__(self) -> int:
        return self.serial

    # -- page access (callers hold _LOCK for writes) ---------------------------------------

    def page_count(self) -> int:
        return (self.size + PAGE_SIZE - 1) >> PAGE_SHIFT

    def page_for_read(self, index: int) -> bytes | bytearray:
        page = self._pages.get(index)
        return _ZERO_PAGE if page is None else page

    def page_for_write(self, index: int) -> bytearray:
        page = self._pages.get(index)
        if page is None:
            page = self._pages[index] = bytearray(PAGE_SIZE)
        return page

    def truncate(self, size: int) -> None:
        """Change the size; pages wholly past the new end are dropped (and then fault)."""
        if size < 0:
            raise MappingError(f"size must be >= 0, got {size}")
        with _LOCK:
            self.size = size
            last = self.page_count()
            for index in [i for i in self._pages if i >= last]:
                del self._pages[index]
            if size % PAGE_SIZE and (last - 1) in self._pages:
                page = self._pages[last - 1]
                tail = size % PAGE_SIZE
                page[tail:] = bytes(PAGE_SIZE - tail)

    def pread(self, offset: int, n: int) -> bytes:
        """Read ``n`` bytes at ``offset`` (zeros where never written), clipped to the size."""
        end = min(offset + n, self.size)
        out = bytearray()
        while offset < end:
            index, off = divmod(offset, PAGE_SIZE)
            chunk = min(end - offset, PAGE_SIZE - off)
            out += self.page_for_read(index)[off : off + chunk]
            offset += chunk
        return bytes(out)

    def pwrite(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset``, growing the object if needed (like write(2))."""
        with _LOCK:
            self.size = max(self.size, offset + len(data))
            pos = 0
            while pos < len(data):
                index, off = divmod(offset + pos, PAGE_SIZE)
                chunk = min(len(data) - pos, PAGE_SIZE - off)
                self.page_for_write(index)[off : off + chunk] = data[pos : pos + chunk]
                pos += chunk


class AnonymousMemory(MemoryObject):
    """Anonymous shared memory (what MAP_SHARED|MAP_ANONYMOUS creates; shmem in Linux)."""


class File(MemoryObject):
    """An emulated file: a named :class:`MemoryObject` whose size can change."""

    def __init__(self, name: str = "", size: int = 0) -> None:
        super().__init__(size, name)
