"""Shared by the robust-list tests (``tests/linux/test_robust_*.py``): the robust-list
ABI's names, a raw ``struct robust_list_head`` written into emulated memory with any
entries, futex offset, pending entry and end (for the exit walk's corner cases; glibc's
own list is :class:`futex.demo.robust_mutex.RobustList`), a scene with a dying task, and
shared futex waits that must block.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from futex.linux import LinuxKernel, PendingWait, Process, Task, abi
from futex.memory import PAGE_SIZE, PROT_READ, PROT_WRITE

PAGE = PAGE_SIZE

RW = PROT_READ | PROT_WRITE

U64 = (1 << 64) - 1

SET = abi.SYS_set_robust_list

GET = abi.SYS_get_robust_list

HEAD_SIZE = abi.ROBUST_LIST_HEAD_SIZE

WAITERS = abi.FUTEX_WAITERS

OWNER_DIED = abi.FUTEX_OWNER_DIED

TID_MASK = abi.FUTEX_TID_MASK

LIMIT = abi.ROBUST_LIST_LIMIT

WAIT = abi.FUTEX_WAIT

WAKE = abi.FUTEX_WAKE

PRIV = abi.FUTEX_PRIVATE_FLAG

INT_MAX = 0x7FFFFFFF

#: Filler for output buffers, so that a store that did not happen shows.
FILL = b"\xaa" * 8


def u64(p: Process, addr: int) -> int:
    value: int = struct.unpack("<Q", p.read(addr, 8))[0]
    return value


def fill(p: Process, *addrs: int) -> None:
    for a in addrs:
        p.write(a, FILL)


@dataclass
class RobustList:
    """A ``struct robust_list_head`` at ``head`` in ``p``'s memory and the entries linked
    from it; an entry's futex word is at ``entry + futex_offset``."""

    p: Process
    head: int
    futex_offset: int = 8

    def link(self, entries: Sequence[int], *, pending: int = 0, end: int | None = None) -> None:
        """Write the head and link ``entries`` (bit 0 set: a PI futex) in order; the last
        entry's ``next`` is ``end``, the head itself by default."""
        first = entries[0] if entries else self.head
        self.p.write(self.head, struct.pack("<QqQ", first, self.futex_offset, pending))
        last = self.head if end is None else end
        for e, nxt in zip(entries, [*entries[1:], last], strict=False):
            self.p.write(e & ~1, struct.pack("<Q", nxt))

    def word(self, entry: int) -> int:
        return (entry & ~1) + self.futex_offset

    def set_words(self, values: dict[int, int]) -> None:
        for entry, value in values.items():
            self.p.store_u32(self.word(entry), value)

    def words(self, entries: Sequence[int]) -> list[int]:
        return [self.p.load_u32(self.word(e)) for e in entries]


@dataclass
class Scene:
    """A process with a dying task (``owner``), a bystander (``other``) and a robust list."""

    p: Process
    owner: Task
    other: Task
    base: int
    rl: RobustList

    def entry(self, i: int) -> int:
        """Entry ``i``: 16 bytes from the second page on (next, then the word at +8)."""
        return self.base + PAGE + 16 * i

    def register(self) -> None:
        assert self.owner.syscall(SET, self.rl.head, HEAD_SIZE) == 0


def scene(kernel: LinuxKernel, pages: int = 16) -> Scene:
    p = kernel.new_process()
    owner, other = p.new_task(), p.new_task()
    base = p.mmap(pages * PAGE)
    return Scene(p, owner, other, base, RobustList(p, base + 0x100))


def wait_on(task: Task, addr: int, *, private: bool = False) -> PendingWait:
    """FUTEX_WAIT (shared unless ``private``) on the word's current value: it must block."""
    op = WAIT | (PRIV if private else 0)
    r = task.syscall_futex_nb(addr, op, task.process.load_u32(addr), 0, 0, 0)
    assert isinstance(r, PendingWait), f"the wait returned {r} instead of blocking"
    return r


def woken(waits: Sequence[PendingWait]) -> int:
    return sum(w.done() and w.result() == 0 for w in waits)


def end_waits(waits: Sequence[PendingWait]) -> None:
    """Interrupt the waits still blocked (-EINTR), leaving the queues empty."""
    for w in waits:
        if not w.done():
            w.interrupt()
            assert w.result() == -abi.EINTR
