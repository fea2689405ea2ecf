"""glibc's robust mutex over the emulated futex(2): a thread's ``struct robust_list_head``
(:class:`RobustList`) and a robust ``pthread_mutex_t`` (:class:`RobustMutex`), with and
without ``PTHREAD_PRIO_INHERIT``.  The demo's robust-futex scenario
(:mod:`futex.demo.robust`) tells its story with them, and the robust-list tests
(``tests/linux``) use them as the user-space half of gVisor's ``RobustFutexTest`` cases;
there is no other copy.

The user-space half is glibc's, step by step: ``nptl/pthread_mutex_lock.c``
(``__pthread_mutex_lock_full``), ``pthread_mutex_unlock.c`` (``__pthread_mutex_unlock_full``)
and ``pthread_mutex_consistent.c``, with the list macros of ``nptl/descr.h``
(``ENQUEUE_MUTEX``, ``ENQUEUE_MUTEX_PI``, ``DEQUEUE_MUTEX``) and the list head
``start_thread`` registers with ``set_robust_list``.  The kernel half is the emulated
futex(2) and task exit (Linux ``exit_robust_list`` / ``handle_futex_death``,
``exit_pi_state_list``).

Ordering: every lock and unlock sets the thread's ``list_op_pending`` to the mutex's list
entry *before* it touches the futex word, and clears it only after the entry is linked
(lock) or unlinked (unlock).  A thread that exits between the two therefore leaves the
mutex either on its list or in ``list_op_pending``, and the kernel's exit walk, which
looks at both, still finds it: a mutex whose owner died is never lost.  The word layout
(``FUTEX_OWNER_DIED | FUTEX_WAITERS | TID``) is the kernel's, :mod:`futex.linux.abi`.

Imports nothing but the emulated kernel and the demo's :mod:`futex.demo.kernels` (no
display library).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from futex.demo.kernels import INT_MAX, FutexCallError
from futex.linux import Process, Task, abi

__all__ = [
    "EOWNERDEAD",
    "GLIBC_FUTEX_OFFSET",
    "PTHREAD_MUTEX_INCONSISTENT",
    "PTHREAD_MUTEX_NOTRECOVERABLE",
    "LockOutcome",
    "RobustList",
    "RobustMutex",
]

#: glibc's errno for "you own the lock, but its previous owner died holding it".
EOWNERDEAD = 130
#: ``__owner`` values of a glibc robust mutex that are no thread.
PTHREAD_MUTEX_INCONSISTENT = INT_MAX
PTHREAD_MUTEX_NOTRECOVERABLE = INT_MAX - 1

#: ``pthread_mutex_t`` on x86-64: ``__lock`` at 0, ``__owner`` at 8, ``__list.__prev`` at
#: 24, ``__list.__next`` at 32 (the robust list links ``&__list.__next``); 40 bytes.
MUTEX_LOCK, MUTEX_OWNER, MUTEX_LIST_NEXT, MUTEX_SIZE = 0, 8, 32, 40
#: ``robust_head.futex_offset`` as glibc sets it: from a list entry to its futex word.
GLIBC_FUTEX_OFFSET = MUTEX_LOCK - MUTEX_LIST_NEXT

_WAITERS = abi.FUTEX_WAITERS
_OWNER_DIED = abi.FUTEX_OWNER_DIED
_TID = abi.FUTEX_TID_MASK
_HEAD = struct.Struct("<QqQ")  # next, futex_offset, list_op_pending
_U64 = struct.Struct("<Q")


class RobustList:
    """A thread's ``struct robust_list_head`` at ``head``, as glibc's ``start_thread`` sets
    it up (an empty circular list, ``futex_offset`` = :data:`GLIBC_FUTEX_OFFSET`).

    Entries are pushed at the front (``ENQUEUE_MUTEX``; bit 0 of the pointer marks a PI
    mutex, ``ENQUEUE_MUTEX_PI``).  The ``__prev`` links, which only glibc reads, are left
    out.
    """

    def __init__(self, task: Task, head: int) -> None:
        self.task, self.process, self.head = task, task.process, head
        self.process.write(head, _HEAD.pack(head, GLIBC_FUTEX_OFFSET, 0))

    def register(self) -> int:
        """``set_robust_list(head, sizeof(struct robust_list_head))``."""
        return self.task.syscall(abi.SYS_set_robust_list, self.head, abi.ROBUST_LIST_HEAD_SIZE)

    def _u64(self, addr: int) -> int:
        value: int = _U64.unpack(self.process.read(addr, 8))[0]
        return value

    @property
    def pending(self) -> int:
        """``list_op_pending``."""
        return self._u64(self.head + 16)

    @pending.setter
    def pending(self, entry: int) -> None:
        self.process.write(self.head + 16, _U64.pack(entry))

    def enqueue(self, entry: int) -> None:
        """Link ``entry`` (with bit 0 set for a PI mutex) at the front."""
        self.process.write(entry & ~1, _U64.pack(self._u64(self.head)))
        self.process.write(self.head, _U64.pack(entry))

    def dequeue(self, entry: int) -> None:
        """Unlink ``entry`` (bit 0 ignored): its predecessor takes over its ``next`` link
        as stored, with the bit 0 that marks whether *that* entry is PI
        (``DEQUEUE_MUTEX``: ``prev->__next = mutex->__list.__next``)."""
        entry &= ~1
        cur = self.head
        while (nxt := self._u64(cur) & ~1) != entry:
            if nxt == self.head:
                raise RuntimeError(f"{entry:#x} is not on the robust list at {self.head:#x}")
            cur = nxt
        self.process.write(cur, _U64.pack(self._u64(entry)))

    def entries(self) -> list[int]:
        """The linked entries, front first, as stored (bit 0 kept)."""
        out: list[int] = []
        cur = self._u64(self.head)
        while cur & ~1 != self.head and len(out) <= abi.ROBUST_LIST_LIMIT:
            out.append(cur)
            cur = self._u64(cur & ~1)
        return out


@dataclass
class LockOutcome:
    """What one :meth:`RobustMutex.lock` did."""

    result: int
    """0 or :data:`EOWNERDEAD`."""
    syscall: str | None = None
    """The futex command it slept in (``"LOCK_PI"``, ``"WAIT"``), if any."""
    syscall_result: int | None = None
    woken_word: int | None = None
    """The word as read right after the futex call returned."""


class RobustMutex:
    """A robust ``PTHREAD_MUTEX_NORMAL`` mutex at ``addr`` (``pthread_mutex_t``), with
    ``PTHREAD_PRIO_INHERIT`` if ``pi``: glibc's lock / consistent / unlock for that kind.

    Robust mutexes always use *shared* futex operations (``PTHREAD_ROBUST_MUTEX_PSHARED``),
    the kind the kernel's exit walk wakes.  A futex call answering what glibc would treat
    as fatal (or a signal the demo never sends) raises :class:`FutexCallError`.
    """

    def __init__(self, process: Process, addr: int, *, pi: bool) -> None:
        self.process, self.addr, self.pi = process, addr, pi
        self.word = addr + MUTEX_LOCK
        self.entry = addr + MUTEX_LIST_NEXT
        process.write(addr, bytes(MUTEX_SIZE))

    @property
    def list_entry(self) -> int:
        """The pointer linked on a robust list: bit 0 set for a PI mutex."""
        return self.entry | self.pi

    @property
    def value(self) -> int:
        """The futex word, ``__lock``."""
        return self.process.load_u32(self.word)

    @property
    def owner(self) -> int:
        """``__owner``: a TID, or one of the PTHREAD_MUTEX_* markers."""
        value: int = struct.unpack("<i", self.process.read(self.addr + MUTEX_OWNER, 4))[0]
        return value

    @owner.setter
    def owner(self, value: int) -> None:
        self.process.write(self.addr + MUTEX_OWNER, struct.pack("<i", value))

    def lock(self, rl: RobustList) -> LockOutcome:
        """``pthread_mutex_lock``: 0, or EOWNERDEAD (the lock is held either way)."""
        return self._lock_pi(rl) if self.pi else self._lock_plain(rl)

    def _lock_plain(self, rl: RobustList) -> LockOutcome:
        tid, p, out = rl.task.tid, self.process, LockOutcome(0)
        rl.pending = self.list_entry
        oldval = p.load_u32(self.word)
        assume_other_waiters = 0
        while True:
            if oldval == 0:
                oldval = p.cas_u32(self.word, 0, tid | assume_other_waiters)
                if oldval == 0:
                    break
            if oldval & _OWNER_DIED:
                # The previous owner died: take over, keeping WAITERS.
                newval = tid | (oldval & _WAITERS) | assume_other_waiters
                cur = p.cas_u32(self.word, oldval, newval)
                if cur != oldval:
                    oldval = cur
                    continue
                return self._taken(rl, out, owner_died=True)
            if oldval & _TID == tid:
                raise FutexCallError("relocking a normal mutex would deadlock")
            if not oldval & _WAITERS:
                cur = p.cas_u32(self.word, oldval, oldval | _WAITERS)
                if cur != oldval:
                    oldval = cur
                    continue
                oldval |= _WAITERS
            assume_other_waiters = _WAITERS
            r = rl.task.syscall_futex(self.word, abi.FUTEX_WAIT, oldval, 0, 0, 0)
            if r not in (0, -abi.EAGAIN):
                raise FutexCallError(f"FUTEX_WAIT(robust mutex) returned {r}")
            oldval = p.load_u32(self.word)
            out.syscall, out.syscall_result, out.woken_word = "WAIT", r, oldval
        return self._taken(rl, out, owner_died=False)

    def _lock_pi(self, rl: RobustList) -> LockOutcome:
        tid, p, out = rl.task.tid, self.process, LockOutcome(0)
        rl.pending = self.list_entry
        oldval = p.cas_u32(self.word, 0, tid)
        if oldval != 0:
            # Locked: the kernel takes care of everything.
            r = rl.task.syscall_futex(self.word, abi.FUTEX_LOCK_PI, 0, 0, 0, 0)
            oldval = p.load_u32(self.word)
            out.syscall, out.syscall_result, out.woken_word = "LOCK_PI", r, oldval
            if r != 0:
                raise FutexCallError(f"FUTEX_LOCK_PI(robust mutex) returned {r}")
        if oldval & _OWNER_DIED:
            p.update_u32(self.word, lambda v: v & ~_OWNER_DIED)
        return self._taken(rl, out, owner_died=bool(oldval & _OWNER_DIED))

    def _taken(self, rl: RobustList, out: LockOutcome, *, owner_died: bool) -> LockOutcome:
        """The common end of a lock: link the mutex on the thread's list, clear
        ``list_op_pending``, and record the owner (inconsistent after a dead owner)."""
        if owner_died:
            self.owner = PTHREAD_MUTEX_INCONSISTENT
            out.result = EOWNERDEAD
        elif self.owner == PTHREAD_MUTEX_NOTRECOVERABLE:
            raise FutexCallError("ENOTRECOVERABLE")  # not reached in the demo
        else:
            self.owner = rl.task.tid
        rl.enqueue(self.list_entry)
        rl.pending = 0
        return out

    def consistent(self, rl: RobustList) -> int:
        """``pthread_mutex_consistent``: 0, or EINVAL if the mutex is not inconsistent."""
        if self.owner != PTHREAD_MUTEX_INCONSISTENT:
            return abi.EINVAL
        self.owner = rl.task.tid
        return 0

    def unlock(self, rl: RobustList) -> int | None:
        """``pthread_mutex_unlock``: the futex call's result (``FUTEX_UNLOCK_PI`` or
        ``FUTEX_WAKE``), or None if none was needed.  A caller that does not own the mutex
        (glibc's EPERM) raises :class:`FutexCallError`."""
        p, tid = self.process, rl.task.tid
        if p.load_u32(self.word) & _TID != tid:
            raise FutexCallError(f"unlock by tid {tid} of a mutex it does not own")
        newowner = PTHREAD_MUTEX_NOTRECOVERABLE if self.owner == PTHREAD_MUTEX_INCONSISTENT else 0
        rl.pending = self.list_entry
        rl.dequeue(self.list_entry)
        self.owner = newowner
        r: int | None = None
        if self.pi:
            # CAS TID -> 0 unless WAITERS (or anything else) is set: then the kernel.
            while True:
                old = p.load_u32(self.word)
                if old != tid:
                    r = rl.task.syscall_futex(self.word, abi.FUTEX_UNLOCK_PI, 0, 0, 0, 0)
                    break
                if p.cas_u32(self.word, old, 0) == old:
                    break
        elif p.space.swap_u32(self.word, 0) & _WAITERS:
            r = rl.task.syscall_futex(self.word, abi.FUTEX_WAKE, 1, 0, 0, 0)
        rl.pending = 0
        if r is not None and r < 0:
            raise FutexCallError(f"unlock's futex call returned {r}")
        return r
