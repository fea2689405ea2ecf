"""futex.sync on the emulated Linux kernel: the same primitives, in an emulated process.

The emulated kernel is where the algorithms are tested under chosen interleavings and a
manual clock.  A primitive lives at an address of a :class:`futex.linux.Process`:

>>> from futex.linux import LinuxKernel
>>> from futex.sync import Mutex
>>> from futex.sync.emulated import Memory, bind
>>> kernel = LinuxKernel()
>>> proc = kernel.new_process()
>>> task = proc.new_task()
>>> addr = proc.mmap(4096, shared=True)
>>> m = Mutex.create(Memory(proc, addr, 4096))
>>> with bind(task):
...     with m:
...         pass

Every Python thread that uses a primitive drives one emulated task and says which with
:func:`bind` (a context manager; nesting rebinds).  A primitive's futex calls are that
task's futex(2) calls (:class:`futex.linux.word.EmulatedWord`), its TID is the task's,
its robust list is the task's (this module registers a glibc-shaped head with the
emulated ``set_robust_list`` the first time a task takes a lock, as glibc does at thread
start), and its deadlines are on the kernel's clock — a ``ManualClock`` makes every
timeout deterministic.  Emulated "processes" share a primitive through a
``MAP_SHARED`` mapping (``proc.fork()``, or mapping the same memory object): each
process attaches its own primitive object at its own address.

A dying task (``task.exit()``) runs the kernel's robust-list walk on the nodes it holds,
exactly as a killed host thread does.
"""

from __future__ import annotations

import struct
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from futex.kernel import ClockId
from futex.linux import abi
from futex.linux.word import EmulatedWord
from futex.sync.errors import LayoutError
from futex.sync.owner import PID_LIVENESS, ROBUST_LIST
from futex.sync.region import ALIGN, Region

if TYPE_CHECKING:
    from futex.linux.kernel import Process, Task

__all__ = ["EmulatedRegion", "Memory", "bind", "current_task", "rebind"]

_HEAD_SIZE: Final = 24
_FUTEX_OFFSET: Final = -32
_Q: Final = struct.Struct("<Q")
_q: Final = struct.Struct("<q")


class Memory:
    """``size`` bytes at ``addr`` of an emulated process: the "buffer" of a primitive
    on the emulated kernel (``X.create(Memory(proc, addr, size), offset)``)."""

    __slots__ = ("addr", "process", "size")

    def __init__(self, process: Process, addr: int, size: int) -> None:
        if not isinstance(addr, int) or not isinstance(size, int):
            raise TypeError("addr and size must be ints")
        self.process = process
        self.addr = addr
        self.size = size

    def __repr__(self) -> str:
        return f"Memory({self.process!r}, {self.addr:#x}, {self.size})"

    def word(self, task: Task, addr: int) -> EmulatedWord:
        """The futex word at ``addr`` as a primitive's calls by ``task`` use it (a hook:
        :mod:`futex.check` gives words whose calls are scheduling points)."""
        return EmulatedWord(task, addr)


class _Bound(threading.local):
    def __init__(self) -> None:
        self.task: Task | None = None


_bound = _Bound()


@contextmanager
def bind(task: Task) -> Iterator[Task]:
    """Within the block, this Python thread drives ``task`` (its primitives' calls)."""
    prev = _bound.task
    _bound.task = task
    try:
        yield task
    finally:
        _bound.task = prev


def rebind(task: Task | None) -> Task | None:
    """Make ``task`` the one this thread drives and return the one it drove: for a
    scheduler that runs several emulated tasks as green threads of one OS thread
    (:mod:`futex.check` calls it at every switch)."""
    prev = _bound.task
    _bound.task = task
    return prev


def current_task() -> Task:
    """The emulated task this thread drives (:func:`bind`)."""
    task = _bound.task
    if task is None:
        raise RuntimeError(
            "no emulated task is bound to this thread: wrap the calls in "
            "`with futex.sync.emulated.bind(task):`"
        )
    return task


class EmulatedOwner:
    """A task of the emulated kernel as a lock owner (see :mod:`futex.sync.owner`)."""

    def __init__(self, task: Task, *, mode: str | None = None) -> None:
        self.task = task
        self._mode = mode
        self._head = 0
        self._held: dict[int, object] = {}

    @property
    def mode(self) -> str:
        if self._mode is None:
            self._mode = self._setup()
        return self._mode

    def _setup(self) -> str:
        """Find or register a glibc-shaped robust list head for the task."""
        task, proc = self.task, self.task.process
        head = task.robust_list
        if head:
            try:
                off = _q.unpack(proc.read(head + 8, 8))[0]
            except Exception:
                return PID_LIVENESS
            if off != _FUTEX_OFFSET:
                return PID_LIVENESS
            self._head = head
            return ROBUST_LIST
        page = proc.mmap(4096)
        head = page + 8  # robust_prev at head - 8, as in glibc's struct pthread
        proc.write(page, _Q.pack(0) + _Q.pack(head) + _q.pack(_FUTEX_OFFSET) + _Q.pack(0))
        if task.syscall(abi.SYS_set_robust_list, head, _HEAD_SIZE) != 0:
            return PID_LIVENESS
        self._head = head
        return ROBUST_LIST

    @property
    def tid(self) -> int:
        return self.task.tid

    @property
    def pid(self) -> int:
        return self.task.process.pid

    def start_time(self) -> int:
        return id(self.task) & 0xFFFF_FFFF

    def _rd(self, addr: int) -> int:
        value: int = _Q.unpack(self.task.process.read(addr, 8))[0]
        return value

    def _wr(self, addr: int, value: int) -> None:
        self.task.process.write(addr, _Q.pack(value))

    def pending(self, node: int) -> None:
        if self.mode == ROBUST_LIST:
            self._wr(self._head + 16, node + 32 if node else 0)

    def link(self, node: int, keep: object) -> None:
        self._held[node] = keep
        if self.mode != ROBUST_LIST:
            return
        head, entry = self._head, node + 32
        first = self._rd(head)
        self._wr((first & ~1) - 8, entry)  # the old first entry's prev
        self._wr(entry, first)  # node.next
        self._wr(entry - 8, head)  # node.prev
        self._wr(head, entry)

    def unlink(self, node: int, keep: object) -> None:
        self._held.pop(node, None)
        if self.mode != ROBUST_LIST:
            return
        entry = node + 32
        nxt, prv = self._rd(entry), self._rd(entry - 8)
        self._wr((nxt & ~1) - 8, prv)
        self._wr(prv & ~1, nxt)
        self._wr(entry - 8, 0)
        self._wr(entry, 0)

    def alive(self, pid: int, tid: int, start: int) -> bool:
        other = self.task.kernel.task(tid)
        if other is None or not other.alive:
            return False
        return start == 0 or (id(other) & 0xFFFF_FFFF) == start


_owners: weakref.WeakKeyDictionary[Task, EmulatedOwner] = weakref.WeakKeyDictionary()
_owners_lock = threading.Lock()


def owner_of(task: Task) -> EmulatedOwner:
    with _owners_lock:
        own = _owners.get(task)
        if own is None:
            own = _owners[task] = EmulatedOwner(task)
        return own


class EmulatedRegion(Region):
    """``size`` bytes at ``Memory.addr + offset`` of an emulated process."""

    kernel = "emulated"

    def __init__(self, memory: Memory, offset: int, size: int) -> None:
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise TypeError(f"offset must be an int, not {type(offset).__name__}")
        if offset < 0 or offset + size > memory.size:
            raise LayoutError(
                f"the memory is too small: {size} bytes needed at offset {offset} of "
                f"{memory.size}"
            )
        self.memory = memory
        self.process = memory.process
        self.base = memory.addr + offset
        self.offset = offset
        self.size = size
        if self.base % ALIGN:
            raise LayoutError(f"the primitive's address must be a multiple of {ALIGN}")
        self._words: weakref.WeakKeyDictionary[Task, dict[int, EmulatedWord]] = (
            weakref.WeakKeyDictionary()
        )
        clock = self.process.kernel.clock
        self._clock: Callable[[], float] = lambda: clock.now(ClockId.MONOTONIC) / 1e9

    def _task(self) -> Task:
        if self.closed:
            raise ValueError("operation on a closed futex.sync primitive")
        task = current_task()
        if task.process is not self.process:
            raise RuntimeError(
                f"the bound task {task!r} is not in the process this primitive is attached "
                f"in ({self.process!r}): attach it in the task's process"
            )
        return task

    def word(self, off: int) -> Any:
        task = self._task()
        words = self._words.get(task)
        if words is None:
            words = self._words[task] = {}
        w = words.get(off)
        if w is None:
            w = words[off] = self.memory.word(task, self.base + off)
        return w

    def address(self, off: int) -> int:
        return self.base + off

    def read(self, off: int, n: int) -> bytes:
        if self.closed:
            raise ValueError("operation on a closed futex.sync primitive")
        return self.process.read(self.base + off, n)

    def write(self, off: int, data: bytes) -> None:
        if self.closed:
            raise ValueError("operation on a closed futex.sync primitive")
        self.process.write(self.base + off, data)

    def owner(self) -> EmulatedOwner:
        return owner_of(self._task())

    @property
    def monotonic(self) -> Callable[[], float]:
        return self._clock

    def describe(self) -> str:
        return f"emulated {self.process!r} at {self.base:#x}"
