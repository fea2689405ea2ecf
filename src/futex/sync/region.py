"""Where a primitive's bytes are: a :class:`Region` of host memory or of an emulated process.

A primitive never touches memory but through its region: the futex words
(:meth:`Region.word`, a :class:`~futex.word.FutexWord` usable from the calling thread),
plain fields (:meth:`Region.u32` / :meth:`Region.set_u32`, 64-bit likewise), the
addresses its robust-list node needs (:meth:`Region.address`), the calling thread's
owner context (:meth:`Region.owner`) and the kernel's CLOCK_MONOTONIC
(:meth:`Region.monotonic`).  Two kinds:

``NativeRegion``
    ``SIZE`` bytes at an offset of any writable buffer :class:`futex.native.Word`
    accepts (bytearray, mmap, SharedMemory, numpy, ...), or of a shared memory object
    opened by name.  It holds the buffer export, so the memory cannot be closed or
    resized under it, until :meth:`Region.close`.
``EmulatedRegion`` (:mod:`futex.sync.emulated`)
    ``SIZE`` bytes at an address of an emulated ``futex.linux`` process; each Python
    thread drives the emulated task it has bound.
"""

from __future__ import annotations

import mmap
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from futex.sync.errors import LayoutError
from futex.word import FutexWord

if TYPE_CHECKING:
    from futex.sync.owner import Owner

__all__ = ["ALIGN", "NativeRegion", "Region", "Within"]

#: Alignment every primitive needs (its robust-list node holds 64-bit pointers).
ALIGN: Final = 8
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")


class Region:
    """``size`` bytes of memory a primitive lives in (see the module docstring)."""

    #: "native" (the host kernel) or "emulated" (a futex.linux kernel).
    kernel: str = ""
    size: int
    closed: bool = False

    def word(self, off: int) -> FutexWord:
        """The futex word at ``off``, usable from the calling thread."""
        raise NotImplementedError

    def address(self, off: int) -> int:
        """The address of byte ``off`` in the calling process."""
        raise NotImplementedError

    def read(self, off: int, n: int) -> bytes:
        raise NotImplementedError

    def write(self, off: int, data: bytes) -> None:
        raise NotImplementedError

    def u32(self, off: int) -> int:
        """A plain (non-atomic) 32-bit field; futex words go through :meth:`word`."""
        value: int = _U32.unpack(self.read(off, 4))[0]
        return value

    def set_u32(self, off: int, value: int) -> None:
        self.write(off, _U32.pack(value & 0xFFFF_FFFF))

    def u64(self, off: int) -> int:
        value: int = _U64.unpack(self.read(off, 8))[0]
        return value

    def set_u64(self, off: int, value: int) -> None:
        self.write(off, _U64.pack(value & 0xFFFF_FFFF_FFFF_FFFF))

    def owner(self) -> Owner:
        """The calling thread's owner context (tid, robust list)."""
        raise NotImplementedError

    @property
    def monotonic(self) -> Callable[[], float]:
        """The kernel's CLOCK_MONOTONIC in seconds."""
        raise NotImplementedError

    def reduce(self) -> tuple[Any, ...] | None:
        """How to reopen this region in another process, or None (it cannot be)."""
        return None

    def describe(self) -> str:
        return f"{self.kernel} memory"

    def close(self) -> None:
        """Let go of the memory (idempotent)."""
        self.closed = True


def _source_buffer(buffer: Any) -> Any:
    """The object that exports the memory (a SharedMemory exports through ``.buf``)."""
    if hasattr(buffer, "buf") and not isinstance(buffer, (bytearray, bytes, mmap.mmap)):
        return buffer.buf
    return buffer


class NativeRegion(Region):
    """``size`` bytes at ``offset`` of a writable buffer of this process."""

    kernel = "native"

    def __init__(self, buffer: Any, offset: int, size: int) -> None:
        from futex.native import Word

        if isinstance(buffer, str):
            from futex.native._shm import SharedMapping

            buffer = SharedMapping(buffer)
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise TypeError(f"offset must be an int, not {type(offset).__name__}")
        if offset < 0:
            raise LayoutError(f"offset must be >= 0, got {offset}")
        try:
            view = memoryview(_source_buffer(buffer))
        except TypeError:
            raise TypeError(
                f"a futex.sync primitive needs a writable buffer (bytearray, mmap, "
                f"SharedMemory, ...) or a shared memory name, not {type(buffer).__name__}"
            ) from None
        if view.readonly:
            view.release()
            raise TypeError(f"the buffer ({type(buffer).__name__}) is read-only")
        if not view.contiguous:
            view.release()
            raise TypeError("the buffer is not contiguous")
        views = [view]
        if view.format != "B" or view.ndim != 1:
            views.append(view.cast("B"))
        flat = views[-1]
        nbytes = flat.nbytes
        if nbytes < offset + size:
            for v in reversed(views):
                v.release()
            raise LayoutError(
                f"the buffer is too small: {size} bytes needed at offset {offset}, "
                f"it has {max(0, nbytes - offset)} there ({nbytes} in all)"
            )
        views.append(flat[offset : offset + size])
        self._views = views
        self._mem = views[-1]
        self.buffer = buffer
        self.offset = offset
        self.size = size
        self._words: dict[int, Any] = {}
        first = Word(buffer, offset)
        self._base = first.address
        self._words[0] = first
        if self._base % ALIGN:
            self.close()
            raise LayoutError(
                f"the primitive's address must be a multiple of {ALIGN} (64 recommended): "
                f"offset {offset} puts it at ...{self._base % 64:#x} mod 64"
            )
        self._Word = Word

    def _check(self) -> None:
        if self.closed:
            raise ValueError("operation on a closed futex.sync primitive")

    def word(self, off: int) -> Any:
        w = self._words.get(off)
        if w is None:
            self._check()
            w = self._words[off] = self._Word(self.buffer, self.offset + off)
        return w

    def address(self, off: int) -> int:
        return self._base + off

    def read(self, off: int, n: int) -> bytes:
        self._check()
        return bytes(self._mem[off : off + n])

    def write(self, off: int, data: bytes) -> None:
        self._check()
        self._mem[off : off + len(data)] = data

    def owner(self) -> Owner:
        from futex.sync.owner import native_owner

        return native_owner()

    @property
    def monotonic(self) -> Callable[[], float]:
        return time.monotonic

    def reduce(self) -> tuple[Any, ...] | None:
        from futex.native._shm import shm_name

        name = shm_name(self._words[0]) if not self.closed else None
        return None if name is None else (name, self.offset)

    def describe(self) -> str:
        return f"{type(self.buffer).__name__} at offset {self.offset}"

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for w in self._words.values():
            w.release()
        self._words.clear()
        for v in reversed(self._views):
            v.release()


class Within(Region):
    """``size`` bytes at ``base`` of another region: the same memory, the same buffer
    export and words (an embedded primitive's region, e.g. a Condition's lock or an
    RWLock's writer gate); it closes with its container, whose flag is the one that
    counts.  ``what`` names it in messages."""

    def __init__(self, parent: Region, base: int, size: int, what: str = "") -> None:
        self._parent = parent
        self._base = base
        self._what = what
        self.size = size
        self.kernel = parent.kernel
        self.offset = int(getattr(parent, "offset", 0)) + base

    @property
    def closed(self) -> bool:
        return self._parent.closed

    @closed.setter
    def closed(self, value: bool) -> None:
        pass  # the container's flag is the one that counts

    def word(self, off: int) -> FutexWord:
        return self._parent.word(self._base + off)

    def address(self, off: int) -> int:
        return self._parent.address(self._base + off)

    def read(self, off: int, n: int) -> bytes:
        return self._parent.read(self._base + off, n)

    def write(self, off: int, data: bytes) -> None:
        self._parent.write(self._base + off, data)

    def owner(self) -> Owner:
        return self._parent.owner()

    @property
    def monotonic(self) -> Callable[[], float]:
        return self._parent.monotonic

    def reduce(self) -> tuple[Any, ...] | None:
        where = self._parent.reduce()
        return None if where is None else (where[0], where[1] + self._base)

    def describe(self) -> str:
        label = self._what or f"+{self._base}"
        return f"{label} of {self._parent.describe()}"

    def close(self) -> None:
        """Nothing: the memory is its container's, closed with it."""
