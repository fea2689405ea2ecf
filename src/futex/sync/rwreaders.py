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
0     u32    TID of the thread the slot belongs to; 0: free (claimed by CAS)
4     u32    count word.  With bit 30 :data:`READY` (the start time is written): bits
             0-29 the thread's read holds, bit 31 :data:`PENDING` (an acquire or
             release is between the slot and the state word: the state holds
             ``count`` or ``count - 1`` of this thread's holds).  Without READY: 0,
             being claimed or freed; or ``IDLE | TID`` (bit 31 and the owner's TID,
             30 bits): the thread holds nothing but keeps the slot for its next read
8     u64    the thread's start time (:meth:`Owner.start_time`: ``/proc`` starttime on
             the host, the task's identity on the emulated kernel)
====  =====  =========================================================================

Only the slot's thread writes it, except a claimer taking over an idle slot and a
writer-gate holder taking a dead thread's slot back; both go through a CAS of the count
word from the value they saw, which the owner's own CAS (from ``IDLE | TID`` or from
``c | READY``) races fairly.  Steps, with ``c`` the thread's holds and ``s`` the state:

=========================  ==============================================================
step                       steps
=========================  ==============================================================
read acquire               if the count < MAX_READERS and (no WW, or ``c`` > 0: re-entry):
                           CAS slot count ``c | READY`` (``IDLE | TID`` at c = 0) →
                           ``(c+1) | READY | PENDING``; CAS s → s + 1; slot count =
                           ``(c+1) | READY``
claim (no slot, or the     a free slot: CAS tid 0 → TID; else an idle one: CAS its count
CAS above failed)          ``IDLE | T`` → 0, then tid T → TID; write the start time
read acquire, blocked      slot count back to ``c | READY`` (``IDLE | TID`` at c = 0);
                           watch s for SPIN loads; CAS s → s | RW; FUTEX_WAIT(state,
                           s | RW) for a SLICE; after a slice, unless a live writer holds
                           the gate: take it without waiting and repair (a dead writer;
                           RWLock._repair)
read release               CAS slot count ``c | READY`` → ``c | READY | PENDING`` (fails:
                           the holds were taken back); fetch_sub 1; slot count =
                           ``(c-1) | READY``, ``IDLE | TID`` at 0; the count now 0 and WW:
                           writer_notify += 1, wake 1
reap (the waiting writer,  a READY slot whose thread is dead: free it (count 0, then tid
after each slice)          0), then subtract count (count - 1 if PENDING) from the state
                           with a CAS; an idle slot whose thread is dead: CAS count → 0,
                           tid → 0; count 0 (no holds): free it when no thread has its TID
=========================  ==============================================================

So a slot's count is an upper bound of what the state holds of its thread (equal, or
one more while PENDING), and reaping subtracts the lower bound: a reader killed between
its two steps leaves at most one hold in the state that no slot explains.  The
*phantom rule* clears those: when the state still counts readers, WW is set and no live
reader is known (every READY slot's count and UNSLOTTED are 0), the count is stale and
the writer clears it.  Safe because a thread holding a read lock shows a count >= 1 from
before its increment until after its decrement, and while WW is set only a thread that
already holds may add to the state (a first hold needs the bit clear in its CAS):
whoever holds at the clearing CAS held during the whole scan, and was counted.

Speed: a thread's :class:`Reader` (thread-local; per task on the emulated kernel;
forgotten in a fork child) caches its words, slot and holds, and the slot stays its own,
idle, between reads: an uncontended read is four word operations, its release three.

Limits (also in :class:`~futex.sync.rwlock.RWLock`):

- *Slots are per thread.*  A thread that finds no free or idle slot (or whose start time
  is unknown: no ``/proc``) still reads, counted in the UNSLOTTED word, but if it dies
  holding a read lock nobody can take the hold back: writers then wait until their
  timeout.  ``slots`` bounds the threads *holding* read locks at once that are recovered.
- Liveness is ``/proc/<tid>/task/<tid>/stat`` (proc(5): a directory per thread, not
  listed): every process using the lock must share a PID namespace.
- A thread killed between claiming a slot and its first count store leaves it claimed
  with no holds (count 0; taking over an idle slot: still the old owner's TID): the
  reap frees it once no thread has that TID.
"""

from __future__ import annotations

import os
import struct
import threading
import weakref
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

__all__ = ["COUNT", "IDLE", "PENDING", "READY", "SLOT_SIZE", "ReadLock", "Reader",
           "ReaderSide", "ReaderTable"]

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
#: Loads of the state word a blocked reader or writer makes before it sleeps (Rust's
#: spins 100 times; here about 5 µs): the other side's hold is usually shorter.
SPIN: Final = 100

# -- the slots --------------------------------------------------------------------------
SLOT_SIZE: Final = 16
PENDING: Final = 0x8000_0000
READY: Final = 0x4000_0000
COUNT: Final = 0x3FFF_FFFF
#: Bit 31 without READY: ``IDLE | TID`` is an idle slot of thread TID.
IDLE: Final = 0x8000_0000
_SLOT: Final = struct.Struct("<IIQ")
#: Reader.slot values besides an index: none claimed yet / counted in UNSLOTTED.
_NONE: Final = -2
_UNSLOTTED: Final = -1


class Reader:
    """One thread's (emulated: task's) reading of one RWLock: its words, slot and holds.
    Only that thread uses it; the CASes on its slot check the cache against memory."""

    __slots__ = ("consistency", "cw", "held", "idle", "notify", "slot", "start", "state",
                 "table", "tid", "tw", "unslotted")
    #: The slot's tid and count words (set with ``slot`` >= 0).
    tw: FutexWord
    cw: FutexWord

    def __init__(self, table: ReaderTable, tid: int, start: int) -> None:
        r = table.region
        self.table, self.tid, self.start = table, tid, start
        self.idle = IDLE | (tid & COUNT)
        self.held = 0
        #: the slot index, _UNSLOTTED (holds counted in UNSLOTTED) or _NONE
        self.slot = _NONE
        self.state: FutexWord = r.word(STATE)
        self.notify: FutexWord = r.word(NOTIFY)
        self.unslotted: FutexWord = r.word(UNSLOTTED)
        self.consistency: FutexWord = r.word(CONSISTENCY)

    # -- a whole acquire or release in one call (the fast path) -------------------------

    def try_read(self) -> bool:
        """Take a read lock if the state allows it now (no sleep): True when taken."""
        state = self.state
        s = state.load()
        held = self.held
        if not (s & MASK < MAX_READERS and (s < WW or held)):  # WW: bit 31
            return False
        seen = held | READY if held else self.idle
        if self.slot < 0 or self.cw.cas(seen, (held + 1) | READY | PENDING) != seen:
            if self.slot >= 0:
                self.lost()  # idle: taken over by a claimer; holding: by a reaper
            self._pend()
            held = self.held
        while s & MASK < MAX_READERS and (s < WW or held):
            seen = state.cas(s, s + 1)
            if seen == s:
                held = self.held = held + 1
                if self.slot >= 0:
                    self.cw.store(held | READY)
                return True
            s = seen
        self._unpend()
        return False

    def _pend(self) -> None:
        """try_read's first step without a usable slot: claim one (no holds yet), or
        count the hold in UNSLOTTED."""
        if self.slot == _NONE:
            self.table.claim(self)
        if self.slot >= 0:
            self.cw.store(1 | READY | PENDING)
        else:
            self.unslotted.fetch_add(1)

    def _unpend(self) -> None:
        """The state's increment was not done: undo try_read's first step."""
        held = self.held
        if self.slot >= 0:
            self.cw.store(held | READY if held else self.idle)
        else:
            self.unslotted.fetch_sub(1)
            if not held:
                self.slot = _NONE

    def release(self) -> int | None:
        """Release one read hold: the state word after it; None if the thread holds none."""
        held = self.held
        if not held:
            return None
        if self.slot < 0:  # counted in UNSLOTTED
            s: int = self.state.fetch_sub(1) - 1
            self.held = held - 1
            self.unslotted.fetch_sub(1)
            if held == 1:
                self.slot = _NONE
            return s
        cw, seen = self.cw, held | READY
        if cw.cas(seen, seen | PENDING) != seen:
            self.lost()
            return None
        s = self.state.fetch_sub(1) - 1
        held = self.held = held - 1
        cw.store(held | READY if held else self.idle)
        return s

    def holds(self) -> int:
        """The thread's read holds, checked against its slot."""
        if self.held and self.slot >= 0 and self.cw.load() != self.held | READY:
            self.lost()
        return self.held

    def lost(self) -> None:
        """The slot is no longer this thread's, nor its holds (a reaper judged it dead)."""
        self.held = 0
        self.slot = _NONE


_tables: weakref.WeakSet[ReaderTable] = weakref.WeakSet()
_spin: list[int] = []  # spin_budget's, once per process


def spin_budget(region: Region) -> int:
    """:data:`SPIN` on the host kernel when this process may run on more than one CPU;
    else 0 (the holder could not run while we spin; as the C lock core decides)."""
    if region.kernel != "native":
        return 0
    if not _spin:
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
        _spin.append(SPIN if cpus > 1 else 0)
    return _spin[0]


def _forget_all() -> None:
    """In a fork child: no thread of the parent is here, nor are its holds (and the
    child may have another CPU affinity)."""
    _spin.clear()
    for table in list(_tables):
        table.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_all)


class ReaderTable:
    """The ``slots`` reader slots of the RWLock in ``region``."""

    def __init__(self, region: Region, slots: int) -> None:
        self.region = region
        self.slots = slots
        self._native = region.kernel == "native"
        self.forget()
        _tables.add(self)

    def forget(self) -> None:
        """Drop every thread's :class:`Reader` (after fork; on close)."""
        self.local = threading.local()
        self._tasks: dict[Owner, Reader] = {}

    def me(self) -> Reader:
        """The calling thread's Reader (the bound task's, on the emulated kernel)."""
        if self._native:
            try:
                mine: Reader = self.local.reader
            except AttributeError:
                own = self.region.owner()
                mine = self.local.reader = Reader(self, own.tid, own.start_time())
            return mine
        own = self.region.owner()
        mine = self._tasks.get(own) or self._tasks.setdefault(
            own, Reader(self, own.tid, own.start_time()))
        return mine

    @staticmethod
    def _off(i: int) -> int:
        return TABLE + SLOT_SIZE * i

    def _raw(self) -> list[tuple[int, int, int]]:
        if not self.slots:
            return []
        return list(_SLOT.iter_unpack(self.region.read(TABLE, SLOT_SIZE * self.slots)))

    # -- the reader's side ---------------------------------------------------------------

    def claim(self, me: Reader) -> None:
        """A slot for ``me`` (which holds nothing): a free one, else an idle one taken
        over; or none (``me.slot`` = _UNSLOTTED: no slot left, or no start time)."""
        me.slot = _UNSLOTTED
        n, tid = self.slots, me.tid
        if not me.start or not n:
            return
        raw = self._raw()
        home = tid * 4 + tid // 4  # neighbouring TIDs: slots in other cache lines
        order = [(home + k) % n for k in range(n)]
        for i in order:  # a free slot, or one of this TID's left idle
            owner, count, _ = raw[i]
            if owner == 0 and self.region.word(self._off(i)).cas(0, tid) == 0:
                self._take(me, i)
                return
            if owner == tid and count == me.idle and self._take_idle(me, i, owner, count):
                return
        for i in order:  # an idle slot of another thread
            owner, count, _ = raw[i]
            if owner and count == IDLE | owner and self._take_idle(me, i, owner, count):
                return

    def _take_idle(self, me: Reader, i: int, owner: int, count: int) -> bool:
        r, off = self.region, self._off(i)
        if r.word(off + 4).cas(count, 0) != count or r.word(off).cas(owner, me.tid) != owner:
            return False  # its thread reads again, or a reaper freed it
        self._take(me, i)
        return True

    def _take(self, me: Reader, i: int) -> None:
        r, off = self.region, self._off(i)
        r.set_u64(off + 8, me.start)  # before the first READY store
        me.slot, me.tw, me.cw = i, r.word(off), r.word(off + 4)

    # -- the writer-gate holder's side -----------------------------------------------------

    def reap(self, own: Owner) -> bool:
        """Free the slots of dead threads and subtract their holds from the state (the
        lower bound: ``count - 1`` while PENDING), then apply the phantom rule.  The
        caller holds the writer gate and has set WW.  True if the state changed."""
        r = self.region
        changed = False
        for i, (tid, count, _) in enumerate(self._raw()):
            if tid == 0:
                continue
            tw, cw = r.word(self._off(i)), r.word(self._off(i) + 4)
            count = cw.load()
            if not count & READY:
                if count == 0:  # claimed, or being freed: no holds, maybe no start time
                    if not own.alive(tid, tid, 0):  # no such thread at all
                        tw.cas(tid, 0)
                elif count == IDLE | tid:  # idle: no holds; the start time is written
                    start = r.u64(self._off(i) + 8)
                    if not own.alive(tid, tid, start) and cw.cas(count, 0) == count:
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
        state = self.region.word(STATE)
        while n:
            s = state.load()
            c = s & MASK
            if c >= MAX_READERS:
                return False
            if state.cas(s, s - min(n, c)) == s:
                return c > 0
        return False

    def known_holds(self) -> int:
        """Holds of live-or-unknown readers: every READY slot's count plus UNSLOTTED
        (word loads, each atomic; see the phantom rule in the module docstring)."""
        r = self.region
        total = r.word(UNSLOTTED).load()
        for i in range(self.slots):
            count = r.word(self._off(i) + 4).load()
            if count & READY:
                total += count & COUNT
        return total

    def used(self) -> int:
        """Slots in use: holding, or being claimed or freed (an idle one can be taken)."""
        return sum(1 for tid, count, _ in self._raw() if tid and count != IDLE | tid)


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
        try:
            me: Reader = self._table.local.reader  # ReaderTable.me(), the common case
        except AttributeError:
            me = self._table.me()
        if timeout == -1 and me.try_read():  # no argument to check: try without a generator
            return True
        t = _timeout_arg(blocking, timeout)
        deadline = drive.deadline_after(t, self._region.monotonic)
        return drive.run(self._read_steps(me, deadline))

    def _read_steps(self, me: Reader, deadline: float | None) -> Algorithm[bool]:
        """The read-acquire algorithm (a :mod:`futex.sync.drive` generator)."""
        r, state = self._region, me.state
        checked = False
        spins = spin_budget(r)
        while True:
            if me.try_read():
                return True
            s = state.load()
            c = s & MASK
            if c < MAX_READERS and (s < WW or me.held):
                continue  # it changed meanwhile
            if c == NOT_RECOVERABLE:
                self._not_recoverable()
            if c == MAX_READERS:
                raise RuntimeError("acquire_read: too many read locks on the RWLock")
            if c == WRITE_LOCKED and self._gate._is_owned():
                raise RuntimeError("acquire_read would deadlock: this thread holds the write lock")
            if deadline is not None and deadline - r.monotonic() <= 0:
                if not checked:  # a last look for a dead writer (also when nonblocking)
                    checked = True
                    if (yield from self._check_writer()):
                        continue
                return False
            if spins:  # a writer's hold is short: watch the word before sleeping
                for _ in range(spins):
                    s = state.load()
                    if s & MASK < MAX_READERS and (s < WW or me.held):
                        break
                spins = 0
                continue
            if not s & RW and state.cas(s, s | RW) != s:
                continue
            until = r.monotonic() + SLICE
            if deadline is not None:
                until = min(until, deadline)
            woke = yield Sleep(state, s | RW, until, r.monotonic, r.kernel == "native")
            if not woke:
                yield from self._check_writer()

    def release_read(self) -> None:
        """Release one read lock of this thread (NotOwnerError if it holds none)."""
        try:
            me: Reader = self._table.local.reader
        except AttributeError:
            me = self._table.me()
        s = me.release()
        if s is None or (s & MASK == 0 and s >= WW):
            self._released(me, s)

    def _released(self, me: Reader, s: int | None) -> None:
        """release_read's rare ends: the thread held no read lock, or it was the last
        reader and a writer waits."""
        if s is None:
            raise NotOwnerError(
                f"release_read: this thread ({me.tid}) does not hold a read lock on the "
                "RWLock"
            )
        me.notify.fetch_add(1)  # the last reader: the waiting writer goes next
        me.notify.wake(1)

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

    __slots__ = ("_table", "acquire", "release", "rwlock")

    def __init__(self, rwlock: ReaderSide) -> None:
        self.rwlock = rwlock
        self._table = rwlock._table
        self.acquire = rwlock.acquire_read
        self.release = rwlock.release_read

    # ``with`` is the common use: acquire_read's and release_read's fast paths inlined

    def __enter__(self) -> ReadLock:
        try:
            me: Reader | None = self._table.local.reader
        except AttributeError:
            me = None
        if me is None or not me.try_read():
            self.rwlock.acquire_read()
        return self

    def __exit__(self, t: object, v: object, tb: object) -> None:
        try:
            me: Reader = self._table.local.reader
        except AttributeError:
            self.rwlock.release_read()
            return
        s = me.release()
        if s is None or (s & MASK == 0 and s >= WW):
            self.rwlock._released(me, s)

    def statistics(self) -> RWLockStatistics:
        stats: RWLockStatistics = self.rwlock.statistics()  # type: ignore[attr-defined]
        return stats
