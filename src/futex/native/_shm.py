"""Sharing a Word with another process: pickling by shared memory name, and attaching.

The C type calls in here (``Word.attach`` and ``Word.__reduce__``) so that the type
itself stays the C one: method calls on an instance of a Python subclass would miss
CPython's specialised call path for C methods.

Policy: a Word pickles only when its memory has a name another process can open — a
``multiprocessing.shared_memory.SharedMemory``, or a mapping made by ``attach``.  It
pickles as ``(name, offset, private)``; unpickling attaches afresh.  ``attach`` maps
``/dev/shm/<name>`` (where Linux keeps POSIX shared memory) itself rather than through
``SharedMemory(name)``, which before Python 3.13 registers the object with this
process's resource tracker, so that the object would be unlinked when this process
exits, under the processes still using it.
"""

from __future__ import annotations

import mmap
import os
from multiprocessing.shared_memory import SharedMemory
from typing import TypeVar

from futex.native._native import Word

__all__ = ["SharedMapping", "attach", "reduce_word"]

SHM_DIR = "/dev/shm"
W = TypeVar("W", bound=Word)


class SharedMapping:
    """A POSIX shared memory object mapped by name (the source of an attached Word)."""

    __slots__ = ("buf", "name")
    buf: mmap.mmap
    name: str

    def __init__(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(
                f"name must be a str (a SharedMemory's .name), not {type(name).__name__!r}"
            )
        bare = name[1:] if name.startswith("/") else name
        if not bare or "/" in bare:
            raise ValueError(f"not a shared memory name: {name!r}")
        fd = os.open(os.path.join(SHM_DIR, bare), os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                raise ValueError(f"shared memory {name!r} is empty")
            self.buf = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self.name = bare

    def __repr__(self) -> str:
        return f"SharedMapping({self.name!r}, size={len(self.buf)})"


def attach(cls: type[W], name: str, offset: int = 0, *, private: bool = False) -> W:
    """``Word.attach``: the Word at ``offset`` of the shared memory object ``name``."""
    return cls(SharedMapping(name), offset, private=private)


def shm_name(word: Word) -> str | None:
    """The name of the shared memory the Word is on, or None."""
    src = word.obj
    if isinstance(src, SharedMapping):
        return src.name
    if isinstance(src, SharedMemory):
        return src.name.lstrip("/")
    return None


def _unpickle(name: str, offset: int, private: bool) -> Word:
    return Word.attach(name, offset, private=private)


def reduce_word(word: Word) -> tuple[object, tuple[str, int, bool]]:
    """``Word.__reduce__``: by name, offset and the private default."""
    name = shm_name(word)
    if name is None:
        what = "a released Word" if word.released else f"a Word on {type(word.obj).__name__}"
        raise TypeError(
            f"cannot pickle {what}: only a Word on multiprocessing.shared_memory."
            "SharedMemory (or attached by name) pickles; across os.fork, inherit it instead"
        )
    return (_unpickle, (name, word.offset, word.private))
