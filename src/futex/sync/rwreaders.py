"""The reader side of :class:`~futex.sync.rwlock.RWLock`: the reader table and the read steps.

A writer's death is seen by the kernel (the writer gate is a robust lock), but readers own
no futex word: the state word only counts them.  So each reading *thread* records its
holds in a slot, and a writer that has waited a slice for readers to leave checks the
slots' threads for liveness (:meth:`Owner.alive`) and takes a dead reader's holds back
(sync_design §1.5 "Readers", §2d).  The layout constants of the RWLock live here too.

Slot ``i`` is 16 bytes at ``TABLE + 16 * i`` of the RWLock:

====  =====  =========================================================================
off   type   field
====  =====  =========================================================================
0     u32    TID of the thread whose holds the slot records; 0: free (claimed by CAS)
4     u32    count word: bits 0-29 that thread's read holds; bit 30 :data:`READY` (the
             start time is written); bit 31 :data:`PENDING` (an acquire or release is
             between the slot and the state word: the state holds ``count`` or
             ``count - 1`` of this thread's holds)
8     u64    the thread's start time (:meth:`Owner.start_time`: ``/proc`` starttime on
             the host, the task's identity on the emulated kernel)
====  =====  =========================================================================

Only the slot's thread writes it, except a writer-gate holder taking a dead thread's
slot back.  Steps, with ``c`` the thread's holds and ``s`` the state word:

=========================  ==============================================================
step                       steps
=========================  ==============================================================
read acquire               if the count < MAX_READERS and (no WW, or ``c`` > 0: re-entry):
                           slot count = (c+1) | READY | PENDING (a first hold claims a
                           slot: CAS tid 0 → TID, write start); CAS s → s + 1; slot
                           count = (c+1) | READY
read acquire, blocked      slot count back to c | READY (slot freed at c = 0); CAS
                           s → s | RW; FUTEX_WAIT(state, s | RW) for a SLICE; after a
                           slice, unless a live writer holds the gate: take it without
                           waiting and repair (a dead writer; RWLock._repair)
read release               slot count = c | READY | PENDING; fetch_sub 1; slot count =
                           (c-1) | READY, or free the slot at 0 (count 0, then tid 0);
                           the count now 0 and WW: writer_notify += 1, wake 1
reap (the waiting writer,  a READY slot whose thread is dead: free it, then subtract
after each slice)          count (count - 1 if PENDING) from the state with a CAS; a
                           claimed slot without READY (no holds): free it when no thread
                           has its TID
=========================  ==============================================================

So a slot's count is an upper bound of what the state holds of its thread (equal, or
one more while PENDING), and reaping subtracts the lower bound: a reader killed between
its two steps leaves at most one hold in the state that no slot explains.  The
*phantom rule* clears those: when the state still counts readers, WW is set and no live
reader is known (every slot count and UNSLOTTED are 0), the count is stale and the
writer clears it.  Safe because a thread holding a read lock shows a count >= 1 from
before its increment until after its decrement, and while WW is set only a thread that
already holds may add to the state (a first hold needs the bit clear in its CAS):
whoever holds at the clearing CAS held during the whole scan, and was counted.

Limits (also in :class:`~futex.sync.rwlock.RWLock`):

- *Slots are per thread.*  A thread that finds no free slot (or whose start time is
  unknown: no ``/proc``) still reads, counted in the UNSLOTTED word, but if it dies
  holding a read lock nobody can take the hold back: writers then wait until their
  timeout.
- Liveness is ``/proc/<tid>/task/<tid>/stat`` (proc(5): a directory per thread, not
  listed): every process using the lock must share a PID namespace.
- A thread killed between claiming a slot and its first count store (or while freeing
  it) leaves it claimed with no holds: the reap frees it once no thread has that TID.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from futex.sync import drive
from futex.sync.drive import Algorithm, Sleep
from futex.sync.errors import NotOwnerError
from futex.sync.mutex import _DIED, _TIMEOUT, TID_MASK, Mutex, _timeout_arg
from futex.sync.mutex import NOTRECOVERABLE as GATE_NOTRECOVERABLE
from futex.sync.mutex import WORD as GATE_WORD
from futex.sync.owner import PID_LIVENESS, Owner
from futex.sync.region import Region
from futex.word import FutexWord

if TYPE_CHECKING:
    from futex.sync.rwlock import RWLockStatistics

__all__ = ["COUNT", "PENDING", "READY", "SLOT_SIZE", "Hold", "ReadLock", "ReaderSide",
           "ReaderTable", "Within", "identity"]

# -- the RWLock's layout (offsets from its start) and state word ---------------------------
STATE: Final = 16
NOTIFY: Final = 20
UNSLOTTED: Final = 24
CONSISTENCY: Final = 28
GATE: Final = 64
TABLE: Final = 128
MASK: Final = 0x3FFF_FFFF
WRITE_LOCKED: Final = MASK
NOT_RECOVERABLE: Final = MASK - 1
MAX_READERS: Final = MASK - 2
#: READERS_WAITING and WRITERS_WAITING.
RW: Final = 0x4000_0000
WW: Final = 0x8000_0000
#: Longest sleep of a blocked reader or writer between two checks for dead holders
#: (seconds): readers look at the writer gate, the waiting writer at the reader table.
SLICE: Final = 0.01

# -- the slots --------------------------------------------------------------------------
SLOT_SIZE: Final = 16
PENDING: Final = 0x8000_0000
READY: Final = 0x4000_0000
COUNT: Final = 0x3FFF_FFFF
_SLOT: Final = struct.Struct("<IIQ")
_U64: Final = struct.Struct("<Q")


class _Me(threading.local):
    tid = 0
    start = 0


_me = _Me()


def identity(region: Region, own: Owner) -> tuple[int, int]:
    """The calling thread as a reader: (TID, start time; 0 when unknown).  The host's
    start time costs a ``/proc`` read, so it is cached per thread (a fork child's thread
    has a new TID, which refreshes it)."""
    tid = own.tid
    if region.kernel != "native":
        return tid, own.start_time()
    if _me.tid != tid:
        _me.start = own.start_time()
        _me.tid = tid
    return tid, _me.start


class Hold:
    """A thread's read holds on one RWLock as an operation starts: ``slot`` is the slot
    index, -1 (counted in UNSLOTTED) or None (no holds, no slot yet)."""

    __slots__ = ("held", "key", "slot")

    def __init__(self, key: tuple[int, int], slot: int | None, held: int) -> None:
        self.key = key
        self.slot = slot
        self.held = held


class ReaderTable:
    """The ``slots`` reader slots of the RWLock in ``region``."""

    def __init__(self, region: Region, slots: int) -> None:
        self._region = region
        self.slots = slots
        #: (tid, start) -> holds of a thread of this process that has no slot.
        self._unslotted: dict[tuple[int, int], int] = {}

    @staticmethod
    def _off(i: int) -> int:
        return TABLE + SLOT_SIZE * i

    def _raw(self) -> list[tuple[int, int, int]]:
        if not self.slots:
            return []
        return list(_SLOT.iter_unpack(self._region.read(TABLE, SLOT_SIZE * self.slots)))

    # -- the reader's side ---------------------------------------------------------------

    def hold(self, own: Owner) -> Hold:
        """The calling thread's holds."""
        key = identity(self._region, own)
        n = self._unslotted.get(key)
        if n:
            return Hold(key, -1, n)
        if key[1] and self.slots:  # find the start time's bytes, then check the slot
            raw = self._region.read(TABLE, SLOT_SIZE * self.slots)
            at = raw.find(_U64.pack(key[1]), 8)
            while at >= 0:
                if at % SLOT_SIZE == 8:
                    tid, count, _ = _SLOT.unpack_from(raw, at - 8)
                    if tid == key[0] and count & READY:
                        i = at // SLOT_SIZE
                        return Hold(key, i, self._region.word(self._off(i) + 4).load() & COUNT)
                at = raw.find(_U64.pack(key[1]), at + 1)
        return Hold(key, None, 0)

    def _claim(self, key: tuple[int, int]) -> int:
        """A free slot for the calling thread, or -1 (none free, or no start time)."""
        tid, start = key
        if start == 0 or not self.slots:
            return -1
        r = self._region
        for k in range(self.slots):
            i = (tid + k) % self.slots
            w = r.word(self._off(i))
            if w.load() == 0 and w.cas(0, tid) == 0:
                r.set_u64(self._off(i) + 8, start)
                return i
        return -1

    def _count(self, h: Hold, flags: int) -> None:
        assert h.slot is not None
        self._region.word(self._off(h.slot) + 4).store(h.held | flags)

    def _free(self, h: Hold) -> None:
        assert h.slot is not None
        r = self._region
        r.word(self._off(h.slot) + 4).store(0)
        r.word(self._off(h.slot)).store(0)
        h.slot = None

    def pend_acquire(self, h: Hold) -> None:
        """Before the state's increment: count the hold about to be taken."""
        if h.slot is None:
            h.slot = self._claim(h.key)
        if h.slot >= 0:
            self._region.word(self._off(h.slot) + 4).store((h.held + 1) | READY | PENDING)
        else:
            self._region.word(UNSLOTTED).fetch_add(1)

    def acquired(self, h: Hold) -> None:
        """After the state's increment."""
        h.held += 1
        if h.slot is not None and h.slot >= 0:
            self._count(h, READY)
        else:
            self._unslotted[h.key] = h.held

    def unpend_acquire(self, h: Hold) -> None:
        """The increment was not done (the thread sleeps, times out or leaves)."""
        if h.slot is None:
            return
        if h.slot < 0:
            self._region.word(UNSLOTTED).fetch_sub(1)
            if not h.held:
                h.slot = None
        elif h.held:
            self._count(h, READY)
        else:
            self._free(h)

    def pend_release(self, h: Hold) -> None:
        """Before the state's decrement."""
        if h.slot is not None and h.slot >= 0:
            self._count(h, READY | PENDING)

    def released(self, h: Hold) -> None:
        """After the state's decrement."""
        h.held -= 1
        if h.slot is not None and h.slot >= 0:
            if h.held:
                self._count(h, READY)
            else:
                self._free(h)
            return
        self._region.word(UNSLOTTED).fetch_sub(1)
        if h.held:
            self._unslotted[h.key] = h.held
        else:
            self._unslotted.pop(h.key, None)

    # -- the writer-gate holder's side -----------------------------------------------------

    def reap(self, own: Owner) -> bool:
        """Free the slots of dead threads and subtract their holds from the state (the
        lower bound: ``count - 1`` while PENDING), then apply the phantom rule.  The
        caller holds the writer gate and has set WW.  True if the state changed."""
        r = self._region
        changed = False
        for i, (tid, count, _) in enumerate(self._raw()):
            if tid == 0:
                continue
            tw, cw = r.word(self._off(i)), r.word(self._off(i) + 4)
            count = cw.load()
            if not count & READY:  # claimed, or being freed: no holds, no start time
                if count == 0 and not own.alive(tid, tid, 0):  # no such thread at all
                    tw.cas(tid, 0)
                continue
            start = r.u64(self._off(i) + 8)  # written before READY was stored
            if start == 0 or tw.load() != tid or cw.load() != count:
                continue  # changing under us: its thread runs
            if own.alive(tid, tid, start):
                continue
            n = count & COUNT
            if count & PENDING and n:
                n -= 1
            # free first: if this thread dies now, the state keeps a count that the
            # phantom rule clears, rather than the next reap subtracting it twice
            cw.store(0)
            tw.cas(tid, 0)
            changed = self._subtract(n) or changed
        state = r.word(STATE)
        s = state.load()
        if s & WW and 0 < s & MASK < MAX_READERS and self.known_holds() == 0:
            changed = state.cas(s, s & ~MASK) == s or changed
        return changed

    def _subtract(self, n: int) -> bool:
        state = self._region.word(STATE)
        while n:
            s = state.load()
            c = s & MASK
            if c >= MAX_READERS:
                return False
            if state.cas(s, s - min(n, c)) == s:
                return c > 0
        return False

    def known_holds(self) -> int:
        """Holds of live-or-unknown readers: every slot's count plus UNSLOTTED (word
        loads, each atomic; see the phantom rule in the module docstring)."""
        r = self._region
        total = r.word(UNSLOTTED).load()
        for i in range(self.slots):
            total += r.word(self._off(i) + 4).load() & COUNT
        return total

    def used(self) -> int:
        """Slots claimed now."""
        return sum(1 for tid, _, _ in self._raw() if tid)


class Within(Region):
    """``size`` bytes at ``off`` of another region (the writer gate's memory)."""

    def __init__(self, parent: Region, off: int, size: int) -> None:
        self._parent = parent
        self._off = off
        self.size = size
        self.kernel = parent.kernel

    def word(self, off: int) -> FutexWord:
        return self._parent.word(self._off + off)

    def address(self, off: int) -> int:
        return self._parent.address(self._off + off)

    def read(self, off: int, n: int) -> bytes:
        return self._parent.read(self._off + off, n)

    def write(self, off: int, data: bytes) -> None:
        self._parent.write(self._off + off, data)

    def owner(self) -> Owner:
        return self._parent.owner()

    @property
    def monotonic(self) -> Callable[[], float]:
        return self._parent.monotonic

    def describe(self) -> str:
        return f"the writer gate of the RWLock in {self._parent.describe()}"

    def close(self) -> None:
        """The RWLock's region owns the memory."""


class ReaderSide:
    """The read steps of :class:`~futex.sync.rwlock.RWLock` (a mixin: the RWLock
    provides the region, the table, the gate and the repair)."""

    _region: Region
    _table: ReaderTable
    _gate: Mutex

    def _repair(self, died: bool) -> None:
        raise NotImplementedError

    def _not_recoverable(self) -> None:
        raise NotImplementedError

    def acquire_read(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take a read lock (threading's signature): True when taken, False on timeout.

        Waits while write-locked or while a writer waits (unless this thread already
        holds a read lock).  RuntimeError if this thread holds the write lock;
        :class:`~futex.sync.LockNotRecoverable` if the lock was released inconsistent.
        """
        t = _timeout_arg(blocking, timeout)
        deadline = drive.deadline_after(t, self._region.monotonic)
        return drive.run(self._read_steps(deadline))

    def _read_steps(self, deadline: float | None) -> Algorithm[bool]:
        """The read-acquire algorithm (a :mod:`futex.sync.drive` generator)."""
        r, table = self._region, self._table
        state = r.word(STATE)
        hold = table.hold(r.owner())
        reentry = hold.held > 0
        pended = checked = False
        try:
            while True:
                s = state.load()
                c = s & MASK
                if c < MAX_READERS and (reentry or not s & WW):
                    if not pended:
                        table.pend_acquire(hold)
                        pended = True
                    if state.cas(s, s + 1) == s:
                        pended = False
                        table.acquired(hold)
                        return True
                    continue
                if c == NOT_RECOVERABLE:
                    self._not_recoverable()
                if c == MAX_READERS:
                    raise RuntimeError("acquire_read: too many read locks on the RWLock")
                if c == WRITE_LOCKED and self._gate._is_owned():
                    raise RuntimeError(
                        "acquire_read would deadlock: this thread holds the write lock")
                if pended:
                    table.unpend_acquire(hold)
                    pended = False
                if deadline is not None and deadline - r.monotonic() <= 0:
                    if not checked:  # a last look for a dead writer (also when nonblocking)
                        checked = True
                        if (yield from self._check_writer()):
                            continue
                    return False
                if not s & RW and state.cas(s, s | RW) != s:
                    continue
                until = r.monotonic() + SLICE
                if deadline is not None:
                    until = min(until, deadline)
                woke = yield Sleep(state, s | RW, until, r.monotonic, r.kernel == "native")
                if not woke:
                    yield from self._check_writer()
        finally:
            if pended:
                table.unpend_acquire(hold)

    def release_read(self) -> None:
        """Release one read lock of this thread (NotOwnerError if it holds none)."""
        r, table = self._region, self._table
        hold = table.hold(r.owner())
        if not hold.held:
            raise NotOwnerError(
                f"release_read: this thread ({r.owner().tid}) does not hold a read lock "
                "on the RWLock"
            )
        table.pend_release(hold)
        s = r.word(STATE).fetch_sub(1) - 1
        table.released(hold)
        if s & MASK == 0 and s & WW:  # the last reader: the waiting writer goes next
            notify = r.word(NOTIFY)
            notify.fetch_add(1)
            notify.wake(1)

    def _check_writer(self) -> Algorithm[bool]:
        """A blocked reader's check, after a slice: unless a live writer holds the gate
        (its holder died: OD; or the gate is free while the state says otherwise), take
        the gate without waiting and repair.  True if this thread had the gate."""
        r, gate = self._region, self._gate
        gw = r.word(GATE + GATE_WORD)
        g = gw.load()
        if g & TID_MASK and g != GATE_NOTRECOVERABLE:
            own = r.owner()
            if own.mode != PID_LIVENESS:
                return False
            gate._check_holder(own, g)  # marks the word OD if its holder is dead
            if gw.load() & TID_MASK:
                return False
        outcome = yield from gate._acquire_steps(r.monotonic())
        if outcome == _TIMEOUT:
            return False
        try:
            self._repair(outcome == _DIED)
        finally:
            Mutex.release(gate)
        return True


class ReadLock:
    """The read side of an RWLock (``rw.read_lock()``): acquire, release, with."""

    __slots__ = ("rwlock",)

    def __init__(self, rwlock: ReaderSide) -> None:
        self.rwlock = rwlock

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self.rwlock.acquire_read(blocking, timeout)

    def release(self) -> None:
        self.rwlock.release_read()

    def __enter__(self) -> ReadLock:
        self.rwlock.acquire_read()
        return self

    def __exit__(self, *exc: object) -> None:
        self.rwlock.release_read()

    def statistics(self) -> RWLockStatistics:
        stats: RWLockStatistics = self.rwlock.statistics()  # type: ignore[attr-defined]
        return stats
