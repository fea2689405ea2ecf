"""futex_waitv (449) and the futex2 calls futex_wake / futex_wait / futex_requeue (454-456).

Linux 6.18, ``kernel/futex/syscalls.c`` and ``waitwake.c``; every order of checks below was
confirmed against the real kernel (x86-64, one NUMA node).

Register truncation (the C prototypes): pointers, ``val`` and ``mask`` are 64-bit;
``nr_futexes`` and every ``flags`` are ``unsigned int``; ``nr``, ``nr_wake``,
``nr_requeue`` and ``clockid`` are ``int`` (so clockid ``1 << 32 | 1`` is CLOCK_MONOTONIC).

futex2 flags (one set per futex word: ``struct futex_waitv.flags``, or the ``flags``
argument of futex_wake / futex_wait) are checked in this order, all EINVAL:

1. a bit outside ``FUTEX2_VALID_MASK`` = SIZE_MASK | NUMA | MPOL | PRIVATE;
2. ``futex_flags_valid``: a size other than FUTEX2_SIZE_U32 (U8, U16 and U64 are not
   implemented);
3. ``futex_validate_input``: ``val`` (and futex_wait's ``mask``) wider than 32 bits.  It
   came with the futex2 calls in 6.7 (698eb8263836); from 5.16 to 6.6
   (``LinuxFacts.waitv_validates_val`` false) futex_waitv compared only an entry's low 32
   bits, so a wider ``val`` could match.  The other checks were the same before 6.7
   (``FUTEXV_WAITER_MASK`` = FUTEX_32 | PRIVATE, then ``!(flags & FUTEX_32)``: exactly the
   flags 1 and 2 reject).

FUTEX2_NUMA (6.16+, ``get_futex_key``): the futex is ``u32[2]``, the second word a NUMA
node.  The address must be 8-byte aligned (EINVAL); the node word is read (EFAULT); a node
other than FUTEX_NO_NODE (-1) that is not a possible node (``LinuxFacts.numa_nodes``) is
EINVAL (on a one-node host 1, 64, 0x7fffffff, -2 all are); FUTEX_NO_NODE is replaced by the
local node (``LinuxFacts.local_node``), written back to user memory (EFAULT if it cannot be
written — before any value check, even for futex_wake).  A NUMA futex is hashed in its
node's global table, so a *private* NUMA futex never meets a private non-NUMA futex at the
same address (those live in the process's private hash, which Linux allocates at the first
CLONE_THREAD; measured: a FUTEX2_NUMA|PRIVATE waiter is not woken by a plain PRIVATE wake,
nor the other way round) — here it gets a key of its own.  A process with no private hash
(one thread so far, prctl SET_SLOTS(0), Linux 6.16) hashes plain private futexes in the
global table too, and there they meet (:mod:`futex.linux.futexhash`).  Shared NUMA and
non-NUMA futexes meet (one node). Before 6.16 (``LinuxFacts.futex2_numa`` false) NUMA and
MPOL are unknown bits: EINVAL. FUTEX2_MPOL is accepted and, without a memory policy on the
mapping (this emulator has none), changes nothing (measured: MPOL|PRIVATE waiters and plain
PRIVATE wakers meet).

futex_waitv(waiters, nr, flags, timeout, clockid):

1. ``flags != 0``; ``nr`` not in 1..128; ``waiters`` NULL: EINVAL.
2. With a timeout: clockid neither CLOCK_REALTIME nor CLOCK_MONOTONIC: EINVAL (before the
   pointer is read; without a timeout clockid is ignored); unreadable: EFAULT; invalid
   timespec: EINVAL.  The timeout is absolute.
3. ``futex_parse_waitv``: each 24-byte entry in order: unreadable (also a straddle into an
   unmapped page): EFAULT; flags, ``__reserved != 0`` and val as above: EINVAL.  All
   entries are parsed before any key is taken.
4. ``futex_wait_multiple_setup``: every entry's key, in order (misaligned EINVAL, bad
   address EFAULT, NUMA as above); then for each entry in order: lock its bucket, read the
   word, queue if it holds ``val``.  A mismatch or an unreadable word unqueues the entries
   queued so far: if a waker already took one of them the call returns its index,
   otherwise EAGAIN (mismatch) or EFAULT.  A deadline already past: ETIMEDOUT after that.
5. Asleep: returns the index of a woken entry — ``futex_unqueue_multiple`` answers the
   highest index a waker dequeued.  Entries are woken by any wake with a nonzero bitset
   (their bitset is MATCH_ANY), legacy FUTEX_WAKE included.

futex_wake(uaddr, mask, nr, flags): flags; ``mask`` wider than 32 bits; ``mask == 0``
(all EINVAL); the key; then FLAGS_STRICT: ``nr == 0`` wakes none and returns 0 (after the
key, so a bad address still answers EINVAL / EFAULT); a negative ``nr`` wakes one, as the
legacy ``if (++ret >= nr_wake)`` loop does.

futex_wait(uaddr, val, mask, flags, timeout, clockid): flags; val or mask wider than 32 bits;
the timeout as in futex_waitv; ``mask == 0`` EINVAL (after the timeout); then
WAIT_BITSET's key, value check and sleep.

futex_requeue(waiters, flags, nr_wake, nr_requeue): ``flags != 0`` or ``waiters`` NULL:
EINVAL; both entries parsed as in futex_waitv (entry 1's ``val`` must fit too, though it is
unused); the two entries' flags must be identical (6.18 answers EINVAL for private vs
shared, NUMA or MPOL on one side only — checked after parsing); negative counts EINVAL;
then CMP_REQUEUE with ``cmpval = waiters[0].val``: keys (1 then 2), the compare (EAGAIN),
wake and move.  Returns woken + requeued.

Signals: futex_waitv and futex_wait return ``-ERESTARTSYS`` with or without a timeout
(``__futex_wait`` and ``futex_wait_multiple`` are used without the legacy restart block),
so a handler with SA_RESTART *restarts* a timed futex2 wait (measured: ETIMEDOUT at the
deadline), where a timed legacy WAIT_BITSET returns EINTR.  A handler without SA_RESTART
gives EINTR; no handler restarts.  The restart keeps the absolute deadline and the parsed
entries and runs the setup again (Linux re-executes the call, re-reading the entries and
the timeout from user memory — the same unless they were changed meanwhile).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from futex.kernel import (
    MATCH_ANY,
    FutexError,
    FutexTarget,
    Key,
    MisalignedAddress,
    Waiter,
    shared_private_key,
)
from futex.kernel.blocking import PendingWait
from futex.kernel.decode import U32_MASK
from futex.kernel.request import Deadline, Request
from futex.linux import abi
from futex.linux.decode import (
    FUTEX2_REQUEUE_REGISTERS,
    FUTEX2_WAIT_REGISTERS,
    FUTEX2_WAITV_REGISTERS,
    FUTEX2_WAKE_REGISTERS,
    errno_of,
    read_timeout,
)
from futex.linux.futexhash import NodeHashed, numa_meets_private
from futex.linux.policy import LINUX_POLICY
from futex.memory.owner import SpaceAtomics

if TYPE_CHECKING:
    from futex.linux.facts import LinuxFacts
    from futex.linux.kernel import Process, Task
    from futex.memory import AddressSpace

__all__ = [
    "FUTEX2_VALID_MASK",
    "FUTEX_NO_NODE",
    "InvalidNumaNode",
    "WaitvRequest",
    "sys_futex_requeue",
    "sys_futex_wait",
    "sys_futex_waitv",
    "sys_futex_wake",
]

#: struct futex_waitv { u64 val; u64 uaddr; u32 flags; u32 __reserved; }
_WAITV = struct.Struct("<QQII")
assert _WAITV.size == abi.FUTEX_WAITV_SIZE

#: ``kernel/futex/futex.h`` (6.16+): the futex2 flag bits a caller may set.
FUTEX2_VALID_MASK = abi.FUTEX2_SIZE_MASK | abi.FUTEX2_NUMA | abi.FUTEX2_MPOL | abi.FUTEX2_PRIVATE
#: ``include/uapi/linux/futex.h``: the node word of a FUTEX2_NUMA futex asks for the local node.
FUTEX_NO_NODE = 0xFFFFFFFF
#: Before 6.16 (``LinuxFacts.futex2_numa`` false) the valid mask has no NUMA / MPOL bits.
_PRE_NUMA_VALID_MASK = abi.FUTEX2_SIZE_MASK | abi.FUTEX2_PRIVATE

_CLOCK_REALTIME = 0
_CLOCK_MONOTONIC = 1


class InvalidNumaNode(FutexError):
    """A FUTEX2_NUMA node word naming no possible node (Linux: EINVAL)."""

    def __init__(self, addr: int, node: int) -> None:
        super().__init__(f"futex at {addr:#x} names NUMA node {node:#x}, which does not exist")
        self.addr = addr
        self.node = node


def _errno(exc: FutexError) -> int:
    return -abi.EINVAL if isinstance(exc, InvalidNumaNode) else errno_of(exc)


def _flags_valid(task: Task, flags: int) -> bool:
    """``flags & ~FUTEX2_VALID_MASK`` and ``futex_flags_valid``: only 32-bit futexes; the
    NUMA and MPOL bits only from 6.16 (``LinuxFacts.futex2_numa``)."""
    valid = FUTEX2_VALID_MASK if task.kernel.facts.futex2_numa else _PRE_NUMA_VALID_MASK
    return not flags & ~valid and flags & abi.FUTEX2_SIZE_MASK == abi.FUTEX2_SIZE_U32


class _NumaTarget(SpaceAtomics):
    """A :class:`~futex.kernel.FutexTarget` over an address space whose futex keys follow
    ``get_futex_key`` for FUTEX2_NUMA words (see the module docstring).  While ``process``
    hashes its private futexes in the global table
    (:func:`futex.linux.futexhash.numa_meets_private`, asked at each key), a private NUMA
    key is the plain private key (``futex_match`` ignores the node)."""

    __slots__ = ("facts", "process", "space")

    def __init__(
        self, space: AddressSpace, facts: LinuxFacts, process: Process | None = None
    ) -> None:
        self.space = space
        self.facts = facts
        self.process = process

    def futex_key(self, addr: int, private: bool, write: bool = False) -> Key:
        if addr & 7:  # u32[2]: "naturally" aligned to its doubled size
            raise MisalignedAddress(addr)
        space = self.space
        node = space.load_u32(addr + 4)
        if node == FUTEX_NO_NODE:  # FUTEX2_MPOL finds no policy here: the local node
            space.store_u32(addr + 4, self.facts.local_node)
        elif node not in self.facts.numa_nodes:
            raise InvalidNumaNode(addr, node)
        key = space.futex_key(addr, private, write)
        if private and (self.process is None or not numa_meets_private(self.process)):
            return shared_private_key(NodeHashed(space), addr)
        return key


def _target(task: Task, flags: int) -> FutexTarget:
    process = task.process
    if not flags & abi.FUTEX2_NUMA:
        return process.space
    return _NumaTarget(process.space, task.kernel.facts, process)


class _Word:
    """One futex word to wait on: a parsed ``struct futex_waitv`` (or futex_wait's
    arguments) and its waiter."""

    __slots__ = ("bitset", "private", "target", "uaddr", "val", "waiter")

    def __init__(self, task: Task, uaddr: int, val: int, flags: int, bitset: int) -> None:
        self.uaddr = uaddr
        self.val = val
        self.private = bool(flags & abi.FUTEX2_PRIVATE)
        self.target = _target(task, flags)
        self.bitset = bitset
        self.waiter = Waiter(owner=task, prio=task.queue_prio, tid=task.tid)


def _parse_waitv(task: Task, waiters: int, nr: int) -> list[tuple[int, int, int]] | int:
    """``futex_parse_waitv``: ``(val, uaddr, flags)`` per entry, or -errno."""
    space = task.process.space
    out = []
    for i in range(nr):
        try:
            raw = space.read(waiters + i * abi.FUTEX_WAITV_SIZE, abi.FUTEX_WAITV_SIZE)
        except FutexError:
            return -abi.EFAULT
        val, uaddr, flags, reserved = _WAITV.unpack(raw)
        if not _flags_valid(task, flags) or reserved:
            return -abi.EINVAL
        if val >> 32:
            if task.kernel.facts.waitv_validates_val:  # futex_validate_input (6.7+)
                return -abi.EINVAL
            val &= U32_MASK  # 5.16 .. 6.6: the setup compares (u32)vs[i].w.val
        out.append((val, uaddr, flags))
    return out


def _read_deadline(task: Task, timeout: int, clockid: int) -> Deadline | int | None:
    """``futex2_setup_timeout``: no deadline without a timeout pointer; else the clock
    first, then the timespec (absolute): the deadline, or -errno."""
    if not timeout:
        return None
    if clockid != _CLOCK_REALTIME and clockid != _CLOCK_MONOTONIC:
        return -abi.EINVAL
    op = abi.FUTEX_CLOCK_REALTIME if clockid == _CLOCK_REALTIME else 0
    return read_timeout(task, timeout, abi.FUTEX_WAIT_BITSET, op)


class WaitvRequest(Request):
    """A futex_waitv (or futex2 futex_wait, as one entry): one core waiter per entry, all
    with the same wake callback (see :class:`futex.kernel.request.Request`)."""

    __slots__ = ("manager", "queued", "words")

    #: ``-ERESTARTSYS`` whether or not there is a timeout (no restart block): an
    #: SA_RESTART handler restarts a timed futex2 wait, where legacy timed waits say EINTR.
    restart_code = abi.ERESTARTSYS

    def __init__(self, task: Task, words: list[_Word]) -> None:
        self.manager = task.process.futex
        self.words = words
        self.queued = 0

    def prepare(self, notify: Callable[[Waiter], None]) -> int | None:
        """``futex_wait_multiple_setup``: all keys, then queue entry by entry."""
        manager = self.manager
        words = self.words
        try:
            for word in words:
                manager.key(word.target, word.uaddr, word.private)
        except FutexError as exc:
            return _errno(exc)
        for i, word in enumerate(words):
            w = word.waiter
            w.notify = notify
            try:
                found = manager.try_wait_prepare(
                    w, word.target, word.uaddr, word.private, word.val, word.bitset
                )
            except FutexError as exc:
                result = _errno(exc)
            else:
                if found is None:
                    self.queued = i + 1
                    continue
                result = -abi.EAGAIN
            woken = self.complete()  # a waker may have taken an earlier entry meanwhile
            return result if woken is None else woken
        return None

    def complete(self) -> int | None:
        """``futex_unqueue_multiple``: dequeue every queued entry; the highest index a
        waker had dequeued, else ``None``."""
        index = None
        wait_complete = self.manager.wait_complete
        for i in range(self.queued):
            if wait_complete(self.words[i].waiter):
                index = i
        self.queued = 0
        return index

    def detach(self) -> None:
        for word in self.words:
            word.waiter.notify = None


def _block(task: Task, deadline: Deadline | None, request: WaitvRequest) -> int | PendingWait:
    return PendingWait(task, deadline, request, task.kernel.clock, LINUX_POLICY.outcomes).start()


def sys_futex_waitv(
    task: Task, waiters: int, nr: int, flags: int, timeout: int, clockid: int, _a5: int
) -> int | PendingWait:
    """futex_waitv(2): the index of a woken futex, or -errno."""
    waiters, nr, flags, timeout, clockid = FUTEX2_WAITV_REGISTERS.decode(
        waiters, nr, flags, timeout, clockid
    )
    if flags:
        return -abi.EINVAL
    if not nr or nr > abi.FUTEX_WAITV_MAX or not waiters:
        return -abi.EINVAL
    deadline = _read_deadline(task, timeout, clockid)
    if isinstance(deadline, int):
        return deadline
    parsed = _parse_waitv(task, waiters, nr)
    if isinstance(parsed, int):
        return parsed
    words = [_Word(task, uaddr, val, fl, MATCH_ANY) for val, uaddr, fl in parsed]
    return _block(task, deadline, WaitvRequest(task, words))


def sys_futex_wake(
    task: Task, uaddr: int, mask: int, nr: int, flags: int, _a4: int, _a5: int
) -> int:
    """futex_wake(2): the number woken, or -errno."""
    uaddr, mask, nr, flags = FUTEX2_WAKE_REGISTERS.decode(uaddr, mask, nr, flags)
    if not _flags_valid(task, flags) or mask >> 32 or not mask:
        return -abi.EINVAL
    try:
        # FLAGS_STRICT: nr 0 wakes none (after the key); a negative nr still wakes one
        return task.process.futex.wake(
            _target(task, flags),
            uaddr,
            bool(flags & abi.FUTEX2_PRIVATE),
            mask,
            max(nr, 1) if nr else 0,
        )
    except FutexError as exc:
        return _errno(exc)


def sys_futex_wait(
    task: Task, uaddr: int, val: int, mask: int, flags: int, timeout: int, clockid: int
) -> int | PendingWait:
    """futex_wait(2): 0 when woken, or -errno."""
    uaddr, val, mask, flags, timeout, clockid = FUTEX2_WAIT_REGISTERS.decode(
        uaddr, val, mask, flags, timeout, clockid
    )
    if not _flags_valid(task, flags) or val >> 32 or mask >> 32:
        return -abi.EINVAL
    deadline = _read_deadline(task, timeout, clockid)
    if isinstance(deadline, int):
        return deadline
    if not mask:  # __futex_wait
        return -abi.EINVAL
    return _block(task, deadline, WaitvRequest(task, [_Word(task, uaddr, val, flags, mask)]))


def sys_futex_requeue(
    task: Task, waiters: int, flags: int, nr_wake: int, nr_requeue: int, _a4: int, _a5: int
) -> int:
    """futex_requeue(2): woken + requeued, or -errno."""
    waiters, flags, nr_wake, nr_requeue = FUTEX2_REQUEUE_REGISTERS.decode(
        waiters, flags, nr_wake, nr_requeue
    )
    if flags or not waiters:
        return -abi.EINVAL
    parsed = _parse_waitv(task, waiters, 2)
    if isinstance(parsed, int):
        return parsed
    (cmpval, uaddr1, flags1), (_val2, uaddr2, flags2) = parsed
    if flags1 != flags2:
        return -abi.EINVAL
    if nr_wake < 0 or nr_requeue < 0:
        return -abi.EINVAL
    try:
        woken, moved = task.process.futex.requeue(
            _target(task, flags1),
            uaddr1,
            uaddr2,
            bool(flags1 & abi.FUTEX2_PRIVATE),
            nr_wake,
            nr_requeue,
            cmpval,
        )
    except FutexError as exc:
        return _errno(exc)
    return woken + moved
