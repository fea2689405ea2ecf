"""RWLock: a reader/writer lock in shared memory that survives dead readers and writers.

The base is Rust's futex rwlock (``library/std/src/sys/sync/rwlock/futex.rs``): one state
word counts readers or says write-locked, with a bit each for sleeping readers and a
waiting writer; the writer sleeps on a separate notify counter; readers do not take a
lock a writer waits for.  To that, robustness (sync_design §1.5): writers first take the
*writer gate*, an embedded robust :class:`~futex.sync.Mutex`, so the kernel tells when a
writer dies; readers record themselves in a table of per-thread slots
(:mod:`futex.sync.rwreaders`), so a writer can take a dead reader's holds back.

Memory (``128 + 16 * slots`` bytes; the header's flags hold ``slots``):

=====  ======  ========================================================================
off    type    field
=====  ======  ========================================================================
16     u32     state word (below)
20     u32     writer_notify: a counter the writer-gate holder sleeps on
24     u32     UNSLOTTED: read holds of readers that found no free slot
28     u32     consistency: 0 consistent, 1 inconsistent (a writer died write-locked)
32     32 B    reserved
64     64 B    the writer gate: a Mutex with its own header (type 1)
128    16 B n  the reader slots (:mod:`futex.sync.rwreaders`, with the read steps)
=====  ======  ========================================================================

State word: bits 0-29 the reader count, bit 30 RW (READERS_WAITING: readers may sleep
on the word), bit 31 WW (WRITERS_WAITING: the gate holder waits for readers to leave;
set and cleared only by the gate holder).  Count 0 is free; 1..0x3FFFFFFC read holds;
0x3FFFFFFD MAX_READERS (RuntimeError); 0x3FFFFFFE NOT_RECOVERABLE (released
inconsistent: every acquire raises LockNotRecoverable until ``reset()``); 0x3FFFFFFF
WRITE_LOCKED, by the gate holder.

=========================  ================================================================
transition                 steps (the read steps: :mod:`futex.sync.rwreaders`)
=========================  ================================================================
write acquire              take the gate (robust Mutex), repair stale bits; loop: count 0
                           → CAS s → (s & RW) | WRITE_LOCKED; else (first watching the
                           count for SPIN loads) CAS s → s | WW, seq = writer_notify,
                           FUTEX_WAIT(writer_notify, seq) for a SLICE; after a slice:
                           reap dead readers' holds
write leaves (timeout,     CAS s → s & ~(WW | RW), wake all if RW was set — the readers
exception)                 queued behind it (glibc commit 3c9c61febe); release the gate
write release              swap → 0 (NOT_RECOVERABLE while inconsistent), wake all if RW;
                           release the gate
repair (whoever takes the  consistency = inconsistent if WRITE_LOCKED; CAS s → its count
gate after a dead holder)  (WRITE_LOCKED → 0) without WW, RW; wake all if RW; make the
                           gate consistent
=========================  ================================================================

Decisions:

- *One writer in the state protocol.*  Writers queue on the gate; only its holder sets
  WW and sleeps on writer_notify, so WW has one owner and a timeout or a death clears
  it simply.  Once WW is set no new reader enters (Rust's ``is_read_lockable``), so no
  stream of readers starves a writer.  A write release wakes the sleeping readers and
  (through the gate) the next writer, who race; Rust hands over to a writer first.
- *Reader slots are per thread*, not per process: liveness is then exactly the
  holder's (a thread that ends holding a read lock is reaped, as a Mutex is released
  by the kernel; no "main thread exited but the process lives" ambiguity; an emulated
  task is a thread), and the table knows who holds, for re-entry and NotOwnerError.
  The cost: a slot per concurrently reading thread (``slots``, default 16).
- *A dead writer* (kernel-marked OD on the gate): the next writer takes the gate with
  OwnerDied, repairs and goes on; if it had died write-locked, ``acquire_write`` raises
  :class:`OwnerDied` with the write lock held, as a Mutex does — repair the data,
  ``make_consistent()``, ``release_write()``; releasing without it makes the lock not
  recoverable.  Readers blocked by the dead writer notice after a :data:`SLICE` (the
  gate word shows OD; in pid-liveness mode they check the holder's liveness), take the
  gate themselves, repair and read.  Readers are never told (check ``consistent``).
- *A dead reader*: its slot's thread is dead; a writer waiting a SLICE reaps it.
- *Re-entrant reads* are allowed, also while a writer waits (the table says who holds);
  upgrading (acquire_write with a read held) and acquire_read by the writer raise
  RuntimeError instead of deadlocking.

Speed (host kernel): an uncontended read is a few word operations on the calling
thread's cached slot (:class:`~futex.sync.rwreaders.Reader`), with no generator; a
write takes the gate through the Mutex's C core when it has one, and a generator
(:mod:`futex.sync.drive`) only when it must wait.  A blocked reader or writer first
watches the state word for :data:`~futex.sync.rwreaders.SPIN` loads (the other side's
hold is usually shorter than a sleep and a wake), then sleeps.  The rest is Python.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from futex.sync import drive
from futex.sync.drive import Algorithm, Sleep
from futex.sync.errors import LayoutError, LockNotRecoverable, NotOwnerError, OwnerDied
from futex.sync.layout import COMPLETE, HEADER_SIZE, MAGIC, Primitive, make_region
from futex.sync.mutex import (
    _DIED,
    _TAKEN,
    _TIMEOUT,
    TID_MASK,
    LockStatistics,
    Mutex,
    W,
    _timeout_arg,
)
from futex.sync.mutex import NOTRECOVERABLE as GATE_NOTRECOVERABLE
from futex.sync.mutex import WORD as GATE_WORD
from futex.sync.owner import ROBUST_LIST
from futex.sync.region import Within
from futex.sync.rwreaders import (
    CONSISTENCY,
    GATE,
    MASK,
    MAX_READERS,
    NOT_RECOVERABLE,
    RW,
    SLICE,
    SLOT_SIZE,
    STATE,
    TABLE,
    UNSLOTTED,
    WRITE_LOCKED,
    WW,
    Reader,
    ReaderSide,
    ReaderTable,
    ReadLock,
    spin_budget,
)
from futex.word import ALL

__all__ = ["SLICE", "RWLock", "RWLockStatistics", "ReadLock", "WriteLock", "size_for"]

CONSISTENT: Final = 0
INCONSISTENT: Final = 1
DEFAULT_SLOTS: Final = 16
MAX_SLOTS: Final = 4096
_HEADER: Final = struct.Struct("<I4sHHI")


def size_for(slots: int) -> int:
    """Bytes an RWLock with ``slots`` reader slots occupies."""
    return TABLE + SLOT_SIZE * _check_slots(slots)


def _check_slots(slots: object) -> int:
    if not isinstance(slots, int) or isinstance(slots, bool):
        raise TypeError(f"slots must be an int, not {type(slots).__name__}")
    if not 0 <= slots <= MAX_SLOTS:
        raise ValueError(f"slots must be in 0..{MAX_SLOTS}, got {slots}")
    return slots


@dataclass(frozen=True)
class RWLockStatistics:
    """A snapshot of an RWLock (``statistics()``)."""

    #: Read holds the state word counts (dead readers' included until reaped).
    readers: int
    write_locked: bool
    #: TID of the writer-gate holder while write-locked (0 otherwise).
    writer: int
    #: The READERS_WAITING bit.
    readers_waiting: bool
    #: The WRITERS_WAITING bit, or writers asleep on the gate.
    writers_waiting: bool
    #: A writer died write-locked and nobody has called make_consistent() yet.
    inconsistent: bool
    not_recoverable: bool
    #: Reader slots in all, in use now (holding, or being claimed; a slot kept idle by
    #: a thread that holds nothing is free to take over), and holds of readers
    #: without a slot.
    slots: int
    slots_used: int
    unslotted: int
    #: ``"robust-list"`` or ``"pid-liveness"`` (the writer gate's; see futex.sync.owner).
    mode: str


_sized_classes: dict[tuple[type[Any], int], type[Any]] = {}


class RWLock(ReaderSide, Primitive):
    """A robust reader/writer lock in shared memory (see the module docstring).

    ``RWLock(slots=16)`` allocates its own shared memory; ``RWLock.create(buffer,
    offset, slots=16)`` / ``RWLock.attach(buffer_or_name, offset)`` use the caller's
    (``size_for(slots)`` bytes; :attr:`SIZE` is the default's).  ``slots`` (0..4096):
    concurrently reading threads whose holds are taken back if they die (a thread keeps
    its slot, idle, between reads, until another reader needs it).  A thread that
    finds every slot in use still reads, but if it dies holding a read lock, writers
    wait for it until their timeout (so for readers of another PID namespace: liveness is
    this one's ``/proc``).

    ``on_owner_died``: called with the write lock held when ``with rw.write_lock():``
    finds that a writer died write-locked; returning marks the lock consistent, raising
    makes it not recoverable.  Without it, ``acquire_write`` raises :class:`OwnerDied`.
    """

    TYPE = 6
    SLOTS: ClassVar[int] = DEFAULT_SLOTS
    SIZE = TABLE + SLOT_SIZE * DEFAULT_SLOTS
    _unsized: ClassVar[type[Any] | None] = None
    on_owner_died: Callable[[RWLock], object] | None = None

    # -- construction (the size depends on the slots) ----------------------------------

    def __new__(cls, *, slots: int = DEFAULT_SLOTS) -> RWLock:
        obj: RWLock = Primitive.__new__(cls._sized(slots))
        return obj

    @classmethod
    def _sized(cls, slots: int) -> type[RWLock]:
        """The class whose SIZE fits ``slots`` (a hidden subclass unless the default)."""
        n = _check_slots(slots)
        base: type[RWLock] = cls._unsized or cls
        if n == base.SLOTS:
            return base
        k = _sized_classes.get((base, n))
        if k is None:
            k = _sized_classes[(base, n)] = type(
                f"_{base.__name__}{n}",
                (base,),
                {"SLOTS": n, "SIZE": TABLE + SLOT_SIZE * n, "_unsized": base,
                 "__module__": base.__module__, "__doc__": base.__doc__},
            )
        return k

    @classmethod
    def create(
        cls, buffer: Any, offset: int = 0, *, slots: int = DEFAULT_SLOTS
    ) -> RWLock:
        """Initialise an RWLock with ``slots`` reader slots at ``offset`` of ``buffer``."""
        obj: RWLock = super(RWLock, cls._sized(slots)).create(buffer, offset)
        return obj

    @classmethod
    def create_or_attach(
        cls, buffer: Any, offset: int = 0, *, slots: int = DEFAULT_SLOTS
    ) -> RWLock:
        """Initialise it unless it is there already (then attach; LayoutError if it has
        another number of slots)."""
        obj: RWLock = super(RWLock, cls._sized(slots)).create_or_attach(buffer, offset)
        return obj

    @classmethod
    def attach(cls, buffer: Any, offset: int = 0) -> RWLock:
        """The RWLock at ``offset`` of ``buffer`` (its slot count is read from it)."""
        obj: RWLock = super(RWLock, cls._sized(cls._slots_at(buffer, offset))).attach(
            buffer, offset)
        return obj

    @classmethod
    def _slots_at(cls, buffer: Any, offset: int) -> int:
        """The header's slot count, or the default when there is no complete RWLock
        header there (``attach`` then says what is wrong)."""
        region = make_region(buffer, offset, TABLE)
        try:
            init, magic, _, kind, flags = _HEADER.unpack(region.read(0, HEADER_SIZE))
        finally:
            region.close()
        if init == COMPLETE and magic == MAGIC and kind == cls.TYPE and flags <= MAX_SLOTS:
            return int(flags)
        return (cls._unsized or cls).SLOTS

    def _bind(self) -> None:
        r = self._region
        self._gate: Mutex = Mutex._build(Within(r, GATE, Mutex.SIZE, "the writer gate"))
        self._table = ReaderTable(r, self.SLOTS)
        self._reader = ReadLock(self)
        self._writer = WriteLock(self)
        #: The gate has the C core (host kernel, robust-list mode): take it without
        #: a generator.
        self._gate_core = type(self._gate).acquire is not Mutex.acquire

    def _init_fields(self) -> None:
        self._gate._initialise()

    def _flags(self) -> int:
        return self.SLOTS

    def _check_flags(self, flags: int) -> None:
        if flags != self.SLOTS:
            raise LayoutError(
                f"the RWLock at {self._region.describe()} has {flags} reader slots, not "
                f"{self.SLOTS} (RWLock.attach reads the number itself)"
            )
        self._gate._validate()

    @property
    def slots(self) -> int:
        return self.SLOTS

    def close(self) -> None:
        """Let go of the memory; RuntimeError while this thread holds the write lock (the
        gate's node is on this thread's robust list, which must never point into
        unmapped memory)."""
        if not self._region.closed and self._gate._is_owned():
            raise RuntimeError("close: release the RWLock's write lock first")
        self._table.forget()
        super().close()

    # -- writers ----------------------------------------------------------------------

    def acquire_write(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the write lock (threading's signature): True when taken, False on timeout.

        Raises :class:`OwnerDied` with the write lock held if a writer died
        write-locked (see the class docstring), :class:`LockNotRecoverable` if the lock
        was released inconsistent, RuntimeError if this thread holds a read lock or the
        write lock already.
        """
        t = _timeout_arg(blocking, timeout)
        me = self._table.me()
        deadline = None if t is None else self._region.monotonic() + t
        if not self._gate_core:
            outcome = drive.run(self._write_steps(me, deadline))
        else:  # the same steps, the gate taken in C
            self._check_write(me)
            gate = self._gate
            try:
                outcome = _TAKEN if gate.acquire(blocking, timeout) else _TIMEOUT
            except OwnerDied as e:
                if e.lock is not gate:
                    raise
                outcome = _DIED
            if outcome == _TIMEOUT:
                return False
            if outcome == _TAKEN and me.state.cas(0, WRITE_LOCKED) == 0:  # free, no bits
                outcome = _DIED if me.consistency.load() == INCONSISTENT else _TAKEN
            else:
                outcome = drive.run(self._gated_steps(me, deadline, outcome == _DIED))
        if outcome == _DIED:
            self._owner_died()
        return outcome != _TIMEOUT

    def _check_write(self, me: Reader) -> None:
        if me.holds():
            raise RuntimeError(
                "acquire_write would deadlock: this thread holds a read lock (release it "
                "first; read locks are not upgraded)")
        if self._gate._is_owned():
            raise RuntimeError("acquire_write would deadlock: this thread holds the write lock")

    def _write_steps(self, me: Reader, deadline: float | None) -> Algorithm[int]:
        """The write-acquire algorithm (a drive generator): ``_TAKEN``, ``_DIED`` (taken,
        inconsistent) or ``_TIMEOUT``."""
        self._check_write(me)
        got = yield from self._gate._acquire_steps(deadline)
        if got == _TIMEOUT:
            return _TIMEOUT
        return (yield from self._gated_steps(me, deadline, got == _DIED))

    def _gated_steps(self, me: Reader, deadline: float | None, died: bool) -> Algorithm[int]:
        """The write acquire once the gate is taken (``died``: with OwnerDied); the gate
        is released unless the write lock is taken."""
        r, state, notify = self._region, me.state, me.notify
        own = r.owner()
        done = checked = False
        spins = spin_budget(r) if deadline is None or deadline > r.monotonic() else 0
        try:
            self._repair(died)
            while True:
                s = state.load()
                c = s & MASK
                if c == 0:
                    if state.cas(s, (s & RW) | WRITE_LOCKED) != s:
                        continue
                    done = True
                    return _DIED if me.consistency.load() == INCONSISTENT else _TAKEN
                if c == NOT_RECOVERABLE:
                    self._not_recoverable()
                if c == WRITE_LOCKED:  # stale: nobody but the gate holder writes it
                    self._repair(False)
                    continue
                if spins and not s & WW:  # readers leave soon: watch before flagging WW
                    for _ in range(spins):
                        if not 0 < state.load() & MASK < MAX_READERS:
                            break
                    spins = 0
                    continue
                if not s & WW and state.cas(s, s | WW) != s:
                    continue
                seq = notify.load()
                s = state.load()
                if s & MASK == 0 or not s & WW:
                    continue
                if deadline is not None and deadline - r.monotonic() <= 0:
                    if not checked:  # a last look for dead readers
                        checked = True
                        if self._table.reap(own):
                            continue
                    return _TIMEOUT
                until = r.monotonic() + SLICE
                if deadline is not None:
                    until = min(until, deadline)
                woke = yield Sleep(notify, seq, until, r.monotonic, r.kernel == "native")
                if not woke:
                    self._table.reap(own)
        finally:
            if not done:
                self._leave_write()

    def _leave_write(self) -> None:
        """A writer leaves without the lock (timeout, exception): clear WW and wake the
        readers it held back (glibc 3c9c61febe), then release the gate."""
        state = self._region.word(STATE)
        try:
            while True:
                s = state.load()
                if not s & (WW | RW) or s & MASK in (WRITE_LOCKED, NOT_RECOVERABLE):
                    break
                if state.cas(s, s & ~(WW | RW)) == s:
                    if s & RW:
                        state.wake(ALL)
                    break
        finally:
            self._gate.release()

    def _repair(self, died: bool) -> None:
        """The gate holder clears what a previous holder left: WRITE_LOCKED (then the
        lock is inconsistent), WW, RW (waking the readers); ``died``: the gate was taken
        with OwnerDied, make it consistent."""
        r = self._region
        state = r.word(STATE)
        while True:
            s = state.load()
            c = s & MASK
            if c == NOT_RECOVERABLE:
                break
            if c == WRITE_LOCKED:
                r.set_u32(CONSISTENCY, INCONSISTENT)  # first: survives our own death
                c = 0
            if c == s:
                break
            if state.cas(s, c) == s:
                if s & RW:
                    state.wake(ALL)
                break
        if died:
            self._gate.make_consistent()

    def release_write(self) -> None:
        """Release the write lock; :class:`NotOwnerError` if this thread does not hold it.
        Released inconsistent (after OwnerDied, without make_consistent()), the lock
        becomes not recoverable."""
        me = self._table.me()
        state = me.state
        if state.load() & MASK != WRITE_LOCKED or not self._gate._is_owned():
            self._not_owner("release_write")
        if me.consistency.load() == INCONSISTENT:
            state.swap(NOT_RECOVERABLE)
            state.wake(ALL)
        elif state.swap(0) & RW:
            state.wake(ALL)
        self._gate.release()

    # -- robustness -------------------------------------------------------------------

    def make_consistent(self) -> None:
        """Mark the lock consistent after :class:`OwnerDied` (the caller holds the write
        lock)."""
        r = self._region
        if r.word(STATE).load() & MASK != WRITE_LOCKED or not self._gate._is_owned():
            self._not_owner("make_consistent")
        if r.u32(CONSISTENCY) != INCONSISTENT:
            raise RuntimeError("make_consistent: the RWLock is not inconsistent")
        r.set_u32(CONSISTENCY, CONSISTENT)

    def reset(self) -> None:
        """Make a not-recoverable lock usable again (free and consistent)."""
        r = self._region
        if r.word(STATE).load() & MASK != NOT_RECOVERABLE:
            raise ValueError("reset: the RWLock is not in the not-recoverable state")
        r.set_u32(CONSISTENCY, CONSISTENT)
        if r.word(GATE + GATE_WORD).load() == GATE_NOTRECOVERABLE:
            self._gate.reset()
        r.word(STATE).swap(0)

    @property
    def consistent(self) -> bool:
        """False after a writer died write-locked, until ``make_consistent()``."""
        return self._region.u32(CONSISTENCY) == CONSISTENT

    def _owner_died(self) -> None:
        raise OwnerDied(
            self,
            "a writer died holding the RWLock's write lock: the write lock is now held by "
            "this thread and inconsistent (repair the data, then make_consistent() and "
            "release_write())",
        )

    def _not_recoverable(self) -> None:
        raise LockNotRecoverable(
            "the RWLock was released while inconsistent (a writer had died and nobody "
            "called make_consistent()); reset() makes it usable again"
        )

    def _not_owner(self, what: str) -> None:
        r = self._region
        s = r.word(STATE).load() & MASK
        g = r.word(GATE + GATE_WORD).load()
        holder = (f"thread {g & TID_MASK}" if s == WRITE_LOCKED and g & TID_MASK
                  and g != GATE_NOTRECOVERABLE else "nobody")
        raise NotOwnerError(
            f"{what}: this thread ({r.owner().tid}) does not hold the RWLock's write lock "
            f"({holder} does)"
        )

    # -- views and statistics ---------------------------------------------------------

    def read_lock(self) -> ReadLock:
        """The read side as a lock object: ``with rw.read_lock(): ...``."""
        return self._reader

    def write_lock(self) -> WriteLock:
        """The write side as a lock object: ``with rw.write_lock(): ...``."""
        return self._writer

    def statistics(self) -> RWLockStatistics:
        r = self._region
        s = r.word(STATE).load()
        g = r.word(GATE + GATE_WORD).load()
        c = s & MASK
        write_locked = c == WRITE_LOCKED
        return RWLockStatistics(
            readers=c if c <= MAX_READERS else 0,
            write_locked=write_locked,
            writer=g & TID_MASK if write_locked and g != GATE_NOTRECOVERABLE else 0,
            readers_waiting=bool(s & RW),
            writers_waiting=bool(s & WW) or (bool(g & W) and g != GATE_NOTRECOVERABLE),
            inconsistent=r.u32(CONSISTENCY) == INCONSISTENT,
            not_recoverable=c == NOT_RECOVERABLE,
            slots=self.SLOTS,
            slots_used=self._table.used(),
            unslotted=r.word(UNSLOTTED).load(),
            mode=r.owner().mode if r.kernel == "native" else ROBUST_LIST,
        )


class WriteLock:
    """The write side of an :class:`RWLock` (``rw.write_lock()``), a lock like a Mutex:
    acquire, release, with (running ``rwlock.on_owner_died`` if a writer died)."""

    __slots__ = ("rwlock",)

    def __init__(self, rwlock: RWLock) -> None:
        self.rwlock = rwlock

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self.rwlock.acquire_write(blocking, timeout)

    def release(self) -> None:
        self.rwlock.release_write()

    def __enter__(self) -> WriteLock:
        rw = self.rwlock
        try:
            rw.acquire_write()
        except OwnerDied:
            hook = rw.on_owner_died
            if hook is None:
                raise
            try:
                hook(rw)
            except BaseException:
                rw.release_write()  # inconsistent: the lock becomes not recoverable
                raise
            rw.make_consistent()
        return self

    def __exit__(self, *exc: object) -> None:
        self.rwlock.release_write()

    def statistics(self) -> LockStatistics:
        """The write side as a lock: ``locked`` = write-locked, ``owner`` = the writer."""
        st = self.rwlock.statistics()
        return LockStatistics(
            locked=st.write_locked,
            owner=st.writer,
            waiters=st.writers_waiting or st.readers_waiting,
            inconsistent=st.inconsistent,
            not_recoverable=st.not_recoverable,
            count=int(st.write_locked),
            mode=st.mode,
        )

