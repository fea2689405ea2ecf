"""Differential harness: the same single-task futex(2) call sequences on the host kernel and
on the emulated one, with the same mappings at the same addresses, comparing every return
value and every readable page after each step.

The host is reached through the raw entries of ``futex.native`` (``syscall_futex``,
``syscall6``, ``gettid``): futex(2), futex2, and the mmap / mprotect / munmap / msync
that build the layout, all as raw system calls.  ctypes stays only for reading and
writing the layout's memory at raw addresses (``string_at``, ``memmove``), which the
extension does not offer.  Without the extension (``NATIVE_MISSING`` says why) the
calls fall back to ``futex._hostfutex`` (ctypes), for the futex2 checks of
``test_futex2``; ``test_differential`` skips.

The layout (``LAYOUT``) is reserved once on the host with MAP_FIXED_NOREPLACE; each sequence
starts from a fresh emulated kernel built to match, after the host's writable pages were
restored.  Addresses in a sequence are symbolic (:class:`At`: a layout page and an offset, or
a plain int), resolved against the base the host reservation got.

Blocking calls: every call runs on the emulator first (``syscall_futex_nb``).  If it comes
back blocked (a ``PendingWait``), the host would block too, which a single task must not
do; the harness proves it instead with two calls that cannot block: the same call with the
value flipped (expects EAGAIN: the timeout, the bitset and the key passed, the word was
read) and the same call with an already expired timeout (expects ETIMEDOUT: the word
matched and the task would have slept).  The emulated wait then ends by advancing the
manual clock to its deadline (ETIMEDOUT) or by a signal (EINTR).  A host call that the
emulator answered at once is still run under a watchdog: if the host blocks after all, a
signal ends it and the disagreement is reported as ``BLOCKED``.

PI commands (LOCK_PI, UNLOCK_PI, TRYLOCK_PI, LOCK_PI2): a PI word names
a task, and the host looks that task up (``attach_to_pi_owner``) once it has set
FUTEX_WAITERS in a writable word.  The only tasks a PI word may name there are the caller
(the emulated task has its tid), :class:`Peer` (an idle thread of this process, an
emulated task with the same tid: TRYLOCK_PI answers EWOULDBLOCK) and tids no task can
have (above ``pid_max`` and PID_MAX_LIMIT: ESRCH).  Before a PI lock call the harness
reads the word on the host; if it names any other possible task, the call is skipped on
both sides (:attr:`Differ.pi_unsafe`).  A lock naming the peer blocks on the host until
its timeout: run only with a timeout already past on the host's clock (ETIMEDOUT), or,
when the emulator blocks, proved on the host with an expired timeout (ETIMEDOUT, leaving
FUTEX_WAITERS set); the emulated wait is then checked to restart on a signal
(ERESTARTNOINTR), and ended by advancing the clock to its deadline (ETIMEDOUT) or by
killing it (-EINTR).  Without a timeout it is skipped.  A host PI lock that blocks anyway
cannot be ended by a signal (it restarts): the watchdog has the peer unlock the word.

Requeue-PI: WAIT_REQUEUE_PI blocks like WAIT_BITSET (same probes; the emulated wait is
checked to restart on a signal, ERESTARTNOINTR, then ended by the clock or killed).  One
the emulator answers at once is first made on the host with an expired timeout when its
own timeout is none or in the future (ETIMEDOUT there: the host would sleep, a signal
would only restart it, so it is not run).  A single task's CMP_REQUEUE_PI finds nobody
waiting: 0 after its checks (it reads uaddr2 too).

futex2 (:class:`Sys2`): futex_waitv, futex_wake, futex_wait, futex_requeue, interleaved
with the futex(2) calls; their ``struct futex_waitv`` vectors are written (by both sides)
wherever the pages are writable.  A blocked futex2 wait is proved on the host with an
already expired timeout (ETIMEDOUT), then ended like a plain wait.

The peer's calls (``Call.peer``, ``Sys2.peer``): a blocked wait whose deadline is far (or
none) may instead be ended by the peer.  The host makes the call for real; the peer thread
waits until ``/proc`` shows the caller asleep in it, makes its calls (wakes, requeues,
CMP_REQUEUE_PI, UNLOCK_PI) until the caller is woken, and signals it if it still sleeps
after them.  The emulated peer task makes the same calls.  Results, the peer's results and
whether the signal was needed must agree: wakes through futex(2) and futex2, the index a
futex_waitv returns, a WAIT_REQUEUE_PI waiter taking the free PI word or requeued onto the
peer's lock (then handed it, or EWOULDBLOCK on the signal).  The harness only lets the peer
make calls that cannot block or look up a task of the host's, and only ends a
WAIT_REQUEUE_PI that way when a CMP_REQUEUE_PI among them surely ends its wait.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import functools
import os
import queue
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from futex.kernel import ClockId, ManualClock
from futex.linux import LinuxKernel, PendingWait, Process, Task, abi
from futex.memory import PAGE_SIZE, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE, File

__all__ = [
    "BLOCKED",
    "CLOCK_MONOTONIC_ID",
    "CLOCK_REALTIME_ID",
    "FUTEX2_NAMES",
    "LAYOUT",
    "NATIVE_MISSING",
    "NO_TASK_TIDS",
    "PALETTE",
    "PEER_SIGNAL",
    "PI_COMMANDS",
    "PI_UNALIGNED",
    "PI_WORDS",
    "REQUEUE_PI_COMMANDS",
    "SYS_FUTEX",
    "SYS_REQUEUE",
    "SYS_WAIT",
    "SYS_WAITV",
    "SYS_WAKE",
    "TASKLESS_TID_MIN",
    "At",
    "Call",
    "Current",
    "Differ",
    "Mismatch",
    "PeerCall",
    "Store",
    "Sys2",
    "TidWord",
    "WaitvEntry",
    "gettid",
    "host_futex",
    "host_layout",
    "host_syscall",
]

U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF
MAP_FIXED = 0x10
MS_ASYNC = 1
PAGE = PAGE_SIZE
RW = PROT_READ | PROT_WRITE
#: Commands that may block (non-PI): the host runs them under the watchdog.
BLOCKING_COMMANDS = frozenset({abi.FUTEX_WAIT, abi.FUTEX_WAIT_BITSET, abi.FUTEX_WAIT_REQUEUE_PI})
#: Requeue-PI: WAIT_REQUEUE_PI blocks like WAIT_BITSET (a signal restarts it); a single
#: task's CMP_REQUEUE_PI never finds a waiter (unless the peer makes it: ``Call.peer``).
REQUEUE_PI_COMMANDS = frozenset({abi.FUTEX_WAIT_REQUEUE_PI, abi.FUTEX_CMP_REQUEUE_PI})
#: The PI lock commands (the requeue-PI ones are :data:`REQUEUE_PI_COMMANDS`).
PI_COMMANDS = frozenset(
    {abi.FUTEX_LOCK_PI, abi.FUTEX_UNLOCK_PI, abi.FUTEX_TRYLOCK_PI, abi.FUTEX_LOCK_PI2}
)
#: futex(2) commands the peer may make to end a blocked call: they never block (LOCK_PI
#: and LOCK_PI2 only with a timeout surely expired or bad) and the PI ones look up only
#: tasks the harness allows (their words are checked before the peer's first call).
PEER_FUTEX_COMMANDS = frozenset(
    {
        abi.FUTEX_WAKE,
        abi.FUTEX_WAKE_BITSET,
        abi.FUTEX_REQUEUE,
        abi.FUTEX_CMP_REQUEUE,
        abi.FUTEX_CMP_REQUEUE_PI,
        abi.FUTEX_UNLOCK_PI,
        abi.FUTEX_LOCK_PI,
        abi.FUTEX_LOCK_PI2,
        abi.FUTEX_TRYLOCK_PI,
    }
)
#: PI commands that look up the task a word names (and, but TRYLOCK_PI, may block on it).
PI_LOCK_COMMANDS = frozenset({abi.FUTEX_LOCK_PI, abi.FUTEX_TRYLOCK_PI, abi.FUTEX_LOCK_PI2})
#: A pending emulated PI lock whose deadline is at most this far ends by advancing the
#: clock (-ETIMEDOUT); a later one by killing the wait (-EINTR).
MAX_PI_ADVANCE_NS = 2 * 3600 * abi.NSEC_PER_SEC
TID_MASK = abi.FUTEX_TID_MASK
WAITERS = abi.FUTEX_WAITERS
OWNER_DIED = abi.FUTEX_OWNER_DIED
#: PID_MAX_LIMIT on 64-bit: pid_max can never be set above it.
PID_MAX_LIMIT = 4 * 1024 * 1024


def _host_pid_max() -> int:
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return int(f.read())
    except (OSError, ValueError):  # pragma: no cover - not Linux
        return PID_MAX_LIMIT


#: The smallest tid no task can have on the host (above pid_max and PID_MAX_LIMIT): a PI
#: word naming it, or anything up to FUTEX_TID_MASK, gets ESRCH.
TASKLESS_TID_MIN = max(_host_pid_max(), PID_MAX_LIMIT) + 1
#: Tids of no task.
NO_TASK_TIDS = (0x3FFFFFF0, TID_MASK, TASKLESS_TID_MIN, 0x12345678)
#: Host calls that do not return within this many seconds are taken to be blocked.
WATCHDOG_SECONDS = 2.0
#: A pending emulated wait whose deadline is at most this far ends by advancing the clock
#: (-ETIMEDOUT); a later one, or one without a deadline, by a signal (-EINTR).
MAX_ADVANCE_NS = 10 * abi.NSEC_PER_SEC

#: A wait ended by the peer (``Call.peer``, ``Sys2.peer``) must have no deadline or one at
#: least this far ahead on the host's clock (so that it cannot time out meanwhile).
PEER_MIN_TIMEOUT_NS = 30 * abi.NSEC_PER_SEC
#: How long the peer waits for the caller to fall asleep in its call.
PEER_PATIENCE_SECONDS = 1.5

#: futex2 system calls (x86-64 numbers) and their names.
SYS_FUTEX = abi.SYS_futex
SYS_WAITV = abi.SYS_futex_waitv
SYS_WAKE = abi.SYS_futex_wake
SYS_WAIT = abi.SYS_futex_wait
SYS_REQUEUE = abi.SYS_futex_requeue
FUTEX2_NAMES = {
    SYS_WAITV: "futex_waitv",
    SYS_WAKE: "futex_wake",
    SYS_WAIT: "futex_wait",
    SYS_REQUEUE: "futex_requeue",
}
#: A :class:`PeerCall` number: SIGUSR1 to the caller (a handler without SA_RESTART), then
#: wait for it to sleep in its call again (a restart) or to return from it.
PEER_SIGNAL = -1
#: futex2 calls that may block.
FUTEX2_WAITS = frozenset({SYS_WAITV, SYS_WAIT})
CLOCK_REALTIME_ID = 0
CLOCK_MONOTONIC_ID = 1

#: Hash buckets per emulated table: few, as one task never has more than one waiter (and a
#: fresh kernel per sequence must be cheap).
EMULATED_BUCKETS = 4

#: Word values the pages are filled with; generated values come from here often, so that
#: value comparisons match.
PALETTE = (0, 1, 2, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 3, 0xFFFFFFFE, 42, 0x10000)


class _Blocked:
    def __repr__(self) -> str:
        return "BLOCKED"


#: What the harness reports for a host call that blocked (the watchdog ended it).
BLOCKED = _Blocked()


# -- the layout -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageSpec:
    name: str
    #: protection on the host after setup (PROT_NONE for holes too)
    prot: int
    #: whether Python may read the page (on the host: mapped, readable, not past EOF)
    readable: bool
    #: whether the harness may store words into it
    writable: bool


LAYOUT: tuple[PageSpec, ...] = (
    PageSpec("PRIV_RW", RW, True, True),  # private anonymous, read-write
    PageSpec("TIMESPEC", RW, True, True),  # private anonymous: timespec slots
    PageSpec("PRIV_RO", PROT_READ, True, False),  # private anonymous, written, then RO
    PageSpec("PROT_NONE", PROT_NONE, False, False),  # private anonymous, PROT_NONE
    PageSpec("HOLE", PROT_NONE, False, False),  # not mapped
    PageSpec("SHARED_RW", RW, True, True),  # shared anonymous, read-write
    PageSpec("SHARED_RO", PROT_READ, True, False),  # shared anonymous, written, then RO
    PageSpec("FILE_SHARED_RW", RW, True, True),  # file A page 0, MAP_SHARED
    PageSpec("FILE_SHARED_RO", PROT_READ, True, False),  # file A page 0 again, MAP_SHARED RO
    PageSpec("FILE_PRIV_RW", RW, True, True),  # file B page 0, MAP_PRIVATE
    PageSpec("FILE_PRIV_RO", PROT_READ, True, False),  # file B page 0 again, MAP_PRIVATE RO
    PageSpec("FILE_PRIV_COWED_RO", PROT_READ, True, False),  # B page 1, written, then RO
    PageSpec("EOF_SHARED", RW, True, True),  # file C page 0 (C is 0x800 bytes), MAP_SHARED
    PageSpec("EOF_SHARED_PAST", RW, False, False),  # file C page 1: past EOF
    PageSpec("EOF_PRIV_PAST", RW, False, False),  # file C page 1, MAP_PRIVATE: past EOF
    PageSpec("FILE_PRIV_ALIAS_RW", RW, True, True),  # file A page 0, MAP_PRIVATE
    PageSpec("FILE_PRIV_ALIAS_RO", PROT_READ, True, False),  # file A page 0, MAP_PRIVATE RO
    PageSpec("PRIV_RO_ZERO", PROT_READ, True, False),  # private anonymous RO, never written
    PageSpec("SHARED_RO_ZERO", PROT_READ, True, False),  # shared anonymous RO, never written
    PageSpec("EXEC_PRIV", PROT_EXEC, False, False),  # private anonymous, PROT_EXEC only
    PageSpec("EXEC_SHARED", PROT_EXEC, False, False),  # shared anonymous, written, then X
    PageSpec("EXEC_FILE_SHARED", PROT_EXEC, False, False),  # file A page 0, MAP_SHARED X
    PageSpec("EXEC_FILE_PRIV", PROT_EXEC, False, False),  # file B page 0, MAP_PRIVATE X
    PageSpec("WRITE_ONLY_PRIV", PROT_WRITE, True, True),  # private anonymous, PROT_WRITE
    PageSpec("WRITE_ONLY_SHARED", PROT_WRITE, True, True),  # shared anonymous, PROT_WRITE
    PageSpec("PI_PRIV_RO", PROT_READ, True, False),  # private anonymous: PI words, then RO
    PageSpec("PI_SHARED_RO", PROT_READ, True, False),  # shared anonymous: PI words, then RO
    PageSpec("HOLE_END", PROT_NONE, False, False),  # not mapped
)
PAGE_INDEX = {spec.name: i for i, spec in enumerate(LAYOUT)}
NPAGES = len(LAYOUT)
READABLE_PAGES = tuple(i for i, s in enumerate(LAYOUT) if s.readable)
WRITABLE_PAGES = tuple(i for i, s in enumerate(LAYOUT) if s.writable)

FILE_A_SIZE = PAGE
FILE_B_SIZE = 2 * PAGE
FILE_C_SIZE = 0x800

#: Host bases tried in turn for the reservation.
BASES = (0x7E5500000000, 0x7E4400000000, 0x6E5500000000, 0x5E5500000000)


@functools.cache
def pattern(k: int, nbytes: int = PAGE) -> bytes:
    """Page content number ``k``: palette words, shifted by ``k``."""
    n = len(PALETTE)
    words = [PALETTE[(i + k) % n] for i in range(nbytes // 4)]
    return struct.pack(f"<{len(words)}I", *words)


# patterns by role
P_PRIV_RW, P_PRIV_RO, P_SHARED_RW, P_SHARED_RO = 0, 1, 2, 3
P_FILE_A, P_FILE_B0, P_FILE_B1, P_COWED, P_FILE_C = 4, 5, 6, 7, 8
P_EXEC_SHARED, P_WRITE_ONLY_PRIV, P_WRITE_ONLY_SHARED = 9, 2, 3


def file_a() -> bytes:
    return pattern(P_FILE_A)


def file_b() -> bytes:
    return pattern(P_FILE_B0) + pattern(P_FILE_B1)


def file_c() -> bytes:
    return pattern(P_FILE_C, FILE_C_SIZE)


@dataclass(frozen=True)
class TidWord:
    """A PI word naming a task known only at run time: ``who`` is ``"self"`` (the task
    making the calls) or ``"peer"`` (:class:`Peer`), or'd with ``bits`` (FUTEX_WAITERS,
    FUTEX_OWNER_DIED: the bits above the tid)."""

    who: str
    bits: int = 0

    def __post_init__(self) -> None:
        assert self.who in ("self", "peer") and not self.bits & TID_MASK, self

    def resolve(self, self_tid: int, peer_tid: int) -> int:
        return (self_tid if self.who == "self" else peer_tid) | self.bits

    def __repr__(self) -> str:
        names = [self.who]
        if self.bits & WAITERS:
            names.append("WAITERS")
        if self.bits & OWNER_DIED:
            names.append("OWNER_DIED")
        return "|".join(names)


#: Words of the PI pages (PI_PRIV_RO, PI_SHARED_RO), repeated over the page: word ``i``
#: is ``PI_WORDS[i % len(PI_WORDS)]``; some unaligned words are laid over them
#: (``PI_UNALIGNED``).
PI_WORDS: tuple[int | TidWord, ...] = (
    0,
    TidWord("self"),
    TidWord("self", WAITERS),
    TidWord("self", OWNER_DIED),
    TidWord("self", WAITERS | OWNER_DIED),
    WAITERS,
    OWNER_DIED,
    WAITERS | OWNER_DIED,
    NO_TASK_TIDS[0],
    NO_TASK_TIDS[0] | WAITERS,
    NO_TASK_TIDS[1] | WAITERS | OWNER_DIED,
    NO_TASK_TIDS[1],
    TASKLESS_TID_MIN | WAITERS,
    NO_TASK_TIDS[3] | WAITERS | OWNER_DIED,
    TASKLESS_TID_MIN,
    NO_TASK_TIDS[3] | OWNER_DIED,
)
#: (offset, value) of unaligned words written over the PI pages' pattern; the one at
#: PAGE - 4 is aligned, and read at PAGE - 2 straddles into the next page.
PI_UNALIGNED: tuple[tuple[int, int | TidWord], ...] = (
    (0x101, TidWord("self")),
    (0x112, TidWord("self", WAITERS)),
    (0x123, TidWord("self", OWNER_DIED)),
    (0x141, NO_TASK_TIDS[0]),
    (PAGE - 4, TidWord("self", WAITERS)),
)


@functools.cache
def pi_page(self_tid: int) -> bytes:
    """The content of the PI pages for the calling task's tid (they never name the peer:
    in a read-only word it would answer as a tid of no task does)."""

    def v(x: int | TidWord) -> int:
        return x.resolve(self_tid, 0) if isinstance(x, TidWord) else x

    n = len(PI_WORDS)
    page = bytearray(struct.pack(f"<{PAGE // 4}I", *(v(PI_WORDS[i % n]) for i in range(PAGE // 4))))
    for off, x in PI_UNALIGNED:
        struct.pack_into("<I", page, off, v(x))
    return bytes(page)


def ktime_of(sec: int, nsec: int) -> int:
    """``timespec64_to_ktime`` of a valid timespec."""
    if sec >= abi.KTIME_SEC_MAX:
        return abi.KTIME_MAX
    return min(sec * abi.NSEC_PER_SEC + nsec, abi.KTIME_MAX)


#: Timespec slots (16 bytes each) at the start of the TIMESPEC page; the names index them.
#: ``None`` marks the clock-relative ones, filled in per sequence.
SLOT_NAMES = (
    "zero",  # {0, 0}: expired (absolute), zero (relative)
    "one_sec",  # {1, 0}
    "one_ns",  # {0, 1}
    "max_nsec",  # {0, 999999999}
    "five_sec",  # {5, 0}
    "two_and_half",  # {2, 500000000}
    "mono_past",  # monotonic now - 1 h (or 1 s on a young machine)
    "mono_future",  # monotonic now + 1 h
    "rt_past",  # realtime now - 1 h
    "rt_future",  # realtime now + 1 h
    "mono_year",  # monotonic now + 1 year
    "rt_year",  # realtime now + 1 year
    "neg_sec",  # {-1, 0}
    "nsec_1e9",  # {0, 1000000000}
    "neg_nsec",  # {0, -1}
    "nsec_hi_bits",  # {1, 1 << 32}
    "min_sec",  # {-2**63, 0}
    "max_nsec_s64",  # {0, 2**63 - 1}
    "ktime_sec_max",  # {KTIME_SEC_MAX, 0}
    "ktime_sec_max_m1",  # {KTIME_SEC_MAX - 1, 999999999}
    "s64_max_sec",  # {2**63 - 1, 0}
    "ktime_sec_max_p1",  # {KTIME_SEC_MAX + 1, 5}
)
SLOT = {name: i for i, name in enumerate(SLOT_NAMES)}
NSLOTS = len(SLOT_NAMES)
#: The last 16 bytes of the TIMESPEC page hold {2, 0}; a pointer 8 bytes further straddles
#: into PRIV_RO.
LAST_SLOT_OFFSET = PAGE - 16


def timespec_page(mono_ns: int, rt_ns: int) -> bytes:
    ms, rs = mono_ns // abi.NSEC_PER_SEC, rt_ns // abi.NSEC_PER_SEC
    year = 365 * 86400
    values = {
        "zero": (0, 0),
        "one_sec": (1, 0),
        "one_ns": (0, 1),
        "max_nsec": (0, 999_999_999),
        "five_sec": (5, 0),
        "two_and_half": (2, 500_000_000),
        "mono_past": (ms - 3600, 0) if ms > 3700 else (1, 0),
        "mono_future": (ms + 3600, 123),
        "rt_past": (rs - 3600, 0),
        "rt_future": (rs + 3600, 0),
        "mono_year": (ms + year, 7),
        "rt_year": (rs + year, 0),
        "neg_sec": (-1, 0),
        "nsec_1e9": (0, abi.NSEC_PER_SEC),
        "neg_nsec": (0, -1),
        "nsec_hi_bits": (1, 1 << 32),
        "min_sec": (-(1 << 63), 0),
        "max_nsec_s64": (0, (1 << 63) - 1),
        "ktime_sec_max": (abi.KTIME_SEC_MAX, 0),
        "ktime_sec_max_m1": (abi.KTIME_SEC_MAX - 1, 999_999_999),
        "s64_max_sec": ((1 << 63) - 1, 0),
        "ktime_sec_max_p1": (abi.KTIME_SEC_MAX + 1, 5),
    }
    page = bytearray(PAGE)
    for i, name in enumerate(SLOT_NAMES):
        struct.pack_into("<qq", page, 16 * i, *values[name])
    struct.pack_into("<qq", page, LAST_SLOT_OFFSET, 2, 0)
    return bytes(page)


# -- symbolic steps ---------------------------------------------------------------------------


@dataclass(frozen=True)
class At:
    """A layout address: ``page`` (an index into ``LAYOUT``) plus ``off`` bytes (may be
    negative or past the page)."""

    page: int
    off: int

    def __repr__(self) -> str:
        return f"At({LAYOUT[self.page].name}, {self.off:#x})"


Addr = At | int


@dataclass(frozen=True)
class Store:
    """Store a word, on both sides: four bytes at ``addr``, which may be unaligned but
    must lie in writable pages.  ``value`` may name a task (:class:`TidWord`)."""

    addr: At
    value: int | TidWord

    def __repr__(self) -> str:
        v = self.value
        return f"Store({self.addr!r}, {v if isinstance(v, TidWord) else hex(v)})"


@dataclass(frozen=True)
class Current:
    """A register value taken when the call is made: the word at ``addr`` now (0 if it
    cannot be read), xor ``flip``.  Makes value comparisons match often."""

    addr: Addr
    flip: int = 0

    def __repr__(self) -> str:
        return f"Current({self.addr!r}{f', flip={self.flip:#x}' if self.flip else ''})"


Value = int | Current


def _arg_repr(x: Addr | Current) -> str:
    return hex(x) if isinstance(x, int) else repr(x)


@dataclass(frozen=True)
class PeerCall:
    """A system call the peer makes once the caller sleeps in a blocking call (the harness
    checks ``/proc``): ``nr`` (``SYS_FUTEX`` or a futex2 number) and its register values,
    symbolic like a call's; :class:`Current` values are taken before the peer's first
    call."""

    nr: int
    args: tuple[Addr | Current, ...]

    def __repr__(self) -> str:
        if self.nr == PEER_SIGNAL:
            return "peer signal()"
        if self.nr == SYS_FUTEX and len(self.args) > 1 and isinstance(self.args[1], int):
            name = f"futex[{describe_op(self.args[1])}]"
        else:
            name = FUTEX2_NAMES.get(self.nr, f"syscall {self.nr}")
        return f"peer {name}({', '.join(_arg_repr(a) for a in self.args)})"


@dataclass(frozen=True)
class Call:
    """futex(2) with six register values; ``utime`` may be symbolic (a timespec pointer).
    ``interrupt``: if the emulated call blocks, end it by a signal even if it has a near
    deadline.  ``peer``: if it blocks (and its deadline is far), the peer makes these
    calls meanwhile, on the host as on the emulator; if the caller still sleeps after
    them, a signal ends its call."""

    uaddr: Addr
    op: int
    val: Value
    utime: Addr
    uaddr2: Addr
    val3: Value
    interrupt: bool = False
    peer: tuple[PeerCall, ...] = ()

    def __repr__(self) -> str:
        a = _arg_repr
        return (
            f"Call(uaddr={a(self.uaddr)}, op={self.op:#x} [{describe_op(self.op)}], "
            f"val={a(self.val)}, utime={a(self.utime)}, uaddr2={a(self.uaddr2)}, "
            f"val3={a(self.val3)}{', interrupt' if self.interrupt else ''}"
            f"{f', peer={list(self.peer)}' if self.peer else ''})"
        )


@dataclass(frozen=True)
class WaitvEntry:
    """One ``struct futex_waitv`` {u64 val; u64 uaddr; u32 flags; u32 __reserved}, written
    (by both sides) into the vector of a futex_waitv / futex_requeue call before it is
    made.  ``val`` may be :class:`Current` (taken before the vector is written)."""

    uaddr: Addr
    val: Value
    flags: int
    reserved: int = 0

    def __repr__(self) -> str:
        r = f", reserved={self.reserved:#x}" if self.reserved else ""
        return f"E({_arg_repr(self.uaddr)}, {_arg_repr(self.val)}, {self.flags:#x}{r})"


@dataclass(frozen=True)
class Sys2:
    """A futex2 system call: ``nr`` (futex_waitv, futex_wake, futex_wait, futex_requeue)
    with register values (:class:`At`, ints, :class:`Current`).  ``entries`` are written
    at ``vector`` first, wherever the layout's pages there are writable (a vector may
    straddle into a read-only, unreadable or unmapped page).  ``interrupt`` and ``peer``
    as for :class:`Call`."""

    nr: int
    args: tuple[Addr | Current, ...]
    entries: tuple[WaitvEntry, ...] = ()
    vector: Addr = 0
    interrupt: bool = False
    peer: tuple[PeerCall, ...] = ()

    def __repr__(self) -> str:
        args = ", ".join(_arg_repr(a) for a in self.args)
        more = ""
        if self.entries:
            shown = [repr(e) for e in self.entries]
            if len(shown) > 8:  # futex_waitv of 128: one word's neighbours
                shown = [*shown[:3], f"... {len(shown) - 4} more ...", shown[-1]]
            more += f", entries at {_arg_repr(self.vector)}: [{', '.join(shown)}]"
        if self.interrupt:
            more += ", interrupt"
        if self.peer:
            more += f", peer={list(self.peer)}"
        return f"{FUTEX2_NAMES.get(self.nr, self.nr)}({args}{more})"


Step = Store | Call | Sys2


def describe_op(op: int) -> str:
    op &= U32
    cmd = op & abi.FUTEX_CMD_MASK
    name = abi.COMMAND_NAMES.get(cmd, f"cmd {cmd:#x}")
    if op & abi.FUTEX_PRIVATE_FLAG:
        name += "|PRIVATE"
    if op & abi.FUTEX_CLOCK_REALTIME:
        name += "|CLOCK_REALTIME"
    return name


@dataclass
class Mismatch:
    """One disagreement: the step, the host's answer, the emulator's, and details."""

    index: int
    step: Step
    host: object
    emulator: object
    detail: str
    steps: Sequence[Step] = ()
    #: the call's six registers as made (hex), and the layout base
    registers: str = ""

    def signature(self) -> tuple[object, ...]:
        """What makes two mismatches "the same bug" for de-duplication."""
        s = self.step
        if isinstance(s, Sys2):
            key: tuple[object, ...] = (FUTEX2_NAMES.get(s.nr, s.nr), bool(s.peer))
        elif isinstance(s, Call):
            base = describe_op(s.op).split("|")[0]
            key = (
                "unknown" if base.startswith("cmd") else base,
                bool(s.op & abi.FUTEX_PRIVATE_FLAG),
                _addr_class(s.uaddr),
                bool(s.peer),
            )
        else:
            key = ("store", _addr_class(s.addr))
        return (*key, repr(self.host), repr(self.emulator), self.detail.split(":")[0])

    def __str__(self) -> str:
        lines = [
            f"step {self.index}: {self.step!r}",
            f"  host: {self.host!r}   emulator: {self.emulator!r}   ({self.detail})",
        ]
        if self.registers:
            lines.append(f"  registers: {self.registers}")
        if self.steps:
            lines.append("  sequence:")
            lines += [f"    [{i}] {s!r}" for i, s in enumerate(self.steps)]
        return "\n".join(lines)


def _call_name(nr: int, args: Sequence[int]) -> str:
    if nr == PEER_SIGNAL:
        return "signal"
    if nr == SYS_FUTEX:
        return describe_op(args[1])
    return FUTEX2_NAMES.get(nr, f"syscall {nr}")


def _addr_class(a: Addr) -> str:
    if isinstance(a, At):
        return f"{LAYOUT[a.page].name}{'' if a.off % 4 == 0 else '+misaligned'}"
    return f"abs:{a:#x}"


# -- host side --------------------------------------------------------------------------------

#: Why the host oracle is the ctypes fallback (futex.native did not import), or "".
NATIVE_MISSING = ""
try:
    from futex import native as _native
except ImportError as exc:  # pragma: no cover - the extension is built in CI
    _native = None  # type: ignore[assignment]
    NATIVE_MISSING = f"futex.native (the C extension) is not available: {exc}"

if _native is not None:
    #: futex(2) on the host with raw register values: >= 0 or -errno (the extension's
    #: raw entry; the GIL is released only for the commands that can sleep).
    host_futex: Callable[[int, int, int, int, int, int], int] = _native.syscall_futex
    #: System call ``nr`` on the host with up to six raw register values: >= 0 or -errno.
    host_syscall: Callable[..., int] = _native.syscall6
    #: The calling thread's host tid.
    gettid: Callable[[], int] = _native.gettid
else:  # pragma: no cover - only test_futex2's checks get here; test_differential skips
    from futex import _hostfutex as _hf

    host_futex = _hf.host_futex
    gettid = _hf.gettid
    _libc = ctypes.CDLL(None, use_errno=True)
    _host_syscall = _libc.syscall
    _host_syscall.restype = ctypes.c_long
    _host_syscall.argtypes = [ctypes.c_long] * 7

    def host_syscall(nr: int, *args: int) -> int:
        regs = [(a & U64) - (1 << 64) if (a & U64) >> 63 else a & U64 for a in args]
        regs += [0] * (6 - len(regs))
        r: int = _host_syscall(nr, *regs)
        return r if r >= 0 else -ctypes.get_errno()


SYS_MMAP, SYS_MPROTECT, SYS_MUNMAP, SYS_MSYNC = 9, 10, 11, 26  # x86-64
MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS, MAP_FIXED_NOREPLACE = 0x01, 0x02, 0x20, 0x100000


def _check(r: int, what: str) -> int:
    if r < 0:
        raise OSError(-r, f"{what}: {os.strerror(-r)}")
    return r


def host_mmap(addr: int, length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
    """mmap(2) on the host; raises OSError on failure."""
    return _check(host_syscall(SYS_MMAP, addr, length, prot, flags, fd, offset), "mmap")


def host_munmap(addr: int, length: int) -> None:
    _check(host_syscall(SYS_MUNMAP, addr, length), "munmap")


def host_mprotect(addr: int, length: int, prot: int) -> None:
    _check(host_syscall(SYS_MPROTECT, addr, length, prot), "mprotect")


#: Addresses at or above this are never user mappings (TASK_SIZE of 4-level paging).
_TASK_SIZE = 0x7FFFFFFFF000


def host_page_mapped(page: int) -> bool:
    """Whether the host process has anything mapped at ``page`` (page aligned)."""
    if page >= _TASK_SIZE or page < 0:
        return False
    return host_syscall(SYS_MSYNC, page, PAGE, MS_ASYNC) == 0


class Watchdog:
    """Ends a host call that blocks: after ``arm(seconds)`` it sends SIGUSR1 to the main
    thread unless ``disarm()`` came first.  SIGUSR1 gets a no-op handler (without
    SA_RESTART), so the futex call returns -EINTR.  A PI lock restarts after a signal
    (ERESTARTNOINTR): ``arm(seconds, rescue)`` calls ``rescue()`` instead."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._rescue: Callable[[], None] | None = None
        self._fired = False
        self._closed = False
        self._target = threading.main_thread().ident
        self._old = signal.signal(signal.SIGUSR1, lambda *_: None)
        self._thread = threading.Thread(target=self._run, name="futex-diff-watchdog", daemon=True)
        self._thread.start()

    def arm(self, seconds: float, rescue: Callable[[], None] | None = None) -> None:
        with self._cond:
            self._deadline = time.monotonic() + seconds
            self._rescue = rescue
            self._fired = False
            self._cond.notify()

    def disarm(self) -> bool:
        """Stop watching; return whether the signal was sent."""
        with self._cond:
            self._deadline = None
            return self._fired

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        signal.signal(signal.SIGUSR1, self._old)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self._deadline = None
                self._fired = True
                if self._rescue is not None:
                    self._rescue()
                    continue
                assert self._target is not None
                signal.pthread_kill(self._target, signal.SIGUSR1)


class Peer:
    """An idle thread of this process: the one live task, besides the caller, that PI
    words may name on the host (the emulated process has a task with its tid too).  It
    also rescues a host PI lock that blocked on it: :meth:`unlock` has it run UNLOCK_PI,
    which hands the lock to the blocked caller; and it runs :class:`PeerJob` s (calls
    made while the caller sleeps)."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        ready = threading.Event()
        self.tid = 0

        def run() -> None:
            self.tid = gettid()
            ready.set()
            while (request := self._requests.get()) is not None:
                request()

        self._thread = threading.Thread(target=run, name="futex-diff-peer", daemon=True)
        self._thread.start()
        ready.wait()

    def unlock(self, uaddr: int, flags: int) -> None:
        self.submit(functools.partial(host_futex, uaddr, abi.FUTEX_UNLOCK_PI | flags, 0, 0, 0, 0))

    def submit(self, fn: Callable[[], object]) -> None:
        self._requests.put(fn)

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join()


def _proc_args(nr: int, args: Sequence[int]) -> list[str]:
    """How ``/proc/<pid>/task/<tid>/syscall`` shows a task asleep in this call (the
    number and the first two registers)."""
    return [str(nr), *(f"{a & U64:#x}" for a in (*args, 0, 0)[:2])]


class PeerJob:
    """Runs on the peer thread while the main thread makes system call ``nr(args)``: once
    ``/proc`` shows the main thread asleep in it, make ``calls`` until it no longer sleeps
    (a futex_waitv woken through one entry leaves the others queued until it runs: a wake
    of those would race with it); if it still sleeps in it after them, send it SIGUSR1 (a
    futex wait answers EINTR; a requeue-PI wait still on its condition word restarts).
    ``results`` stays ``None`` if the main thread never slept in the call (it returned,
    or ``PEER_PATIENCE_SECONDS`` passed)."""

    def __init__(
        self,
        main_tid: int,
        nr: int,
        args: Sequence[int],
        calls: Sequence[tuple[int, Sequence[int]]],
    ) -> None:
        self.path = f"/proc/self/task/{main_tid}/syscall"
        self.stat_path = f"/proc/self/task/{main_tid}/stat"
        self.signature = _proc_args(nr, args)
        self.calls = calls
        self.target = threading.main_thread().ident
        self.results: list[object] | None = None
        self.signalled = False
        self.returned = threading.Event()
        self.finished = threading.Event()

    def asleep(self) -> bool:
        """Whether the main thread sleeps in the call: its state is S (a task just woken
        is R, or TASK_WAKING, which ``/proc/.../syscall`` would still show in the call),
        then its system call is this one (read second: a task that was asleep in it and
        is not woken stays there)."""
        try:
            with open(self.stat_path) as f:
                stat = f.read()
            if stat[stat.rindex(")") + 2 :].split(" ", 1)[0] != "S":
                return False
            with open(self.path) as f:
                fields = f.read().split()
        except (OSError, ValueError):  # pragma: no cover - /proc not readable
            return False
        return fields[: len(self.signature)] == self.signature

    def __call__(self) -> None:
        try:
            deadline = time.monotonic() + PEER_PATIENCE_SECONDS
            while not self.asleep():
                if self.returned.is_set() or time.monotonic() > deadline:
                    return
                time.sleep(0.0001)
            results: list[object] = []
            for nr, args in self.calls:
                if nr == PEER_SIGNAL:
                    results.append(self._signal())
                else:
                    results.append(host_syscall(nr, *args))
                if not self.asleep():
                    break  # woken: what else the peer would do races with its return
            self.results = results
            if self.asleep():
                self.signalled = True
                assert self.target is not None
                signal.pthread_kill(self.target, signal.SIGUSR1)
        finally:
            self.finished.set()

    def _signal(self) -> str:
        """SIGUSR1 to the caller; ``"restarted"`` once it sleeps in its call again, or
        ``"returned"``."""
        assert self.target is not None
        signal.pthread_kill(self.target, signal.SIGUSR1)
        deadline = time.monotonic() + PEER_PATIENCE_SECONDS
        while not self.returned.is_set() and time.monotonic() < deadline:
            if self.asleep():
                return "restarted"
            time.sleep(0.0001)
        return "returned"


class HostLayout:
    """The layout reserved in this (host) process."""

    def __init__(self) -> None:
        self.base = 0
        self._maps: list[tuple[int, int]] = []
        self._fds: list[int] = []
        self.expired = 0  # a private page of zeros outside the layout: {0, 0}
        self.fd_a = self.fd_b = self.fd_c = -1
        self.self_tid = gettid()
        self.peer: Peer | None = None
        self.pi_page = b""

    # setup / teardown

    def open(self) -> None:
        self.peer = Peer()
        self.pi_page = pi_page(self.self_tid)
        self.fd_a = self._memfd("futex-diff-a", file_a())
        self.fd_b = self._memfd("futex-diff-b", file_b())
        self.fd_c = self._memfd("futex-diff-c", file_c())
        self.expired = host_mmap(0, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)
        self._maps.append((self.expired, PAGE))
        errors = []
        for base in BASES:
            try:
                self._reserve(base)
            except OSError as exc:
                errors.append(f"{base:#x}: {exc}")
                self._unmap_layout()
                continue
            self.base = base
            return
        raise OSError(f"cannot reserve the differential layout: {errors}")

    def close(self) -> None:
        self._unmap_layout()
        for addr, length in self._maps:
            host_munmap(addr, length)
        self._maps.clear()
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        if self.peer is not None:
            self.peer.close()
            self.peer = None

    def _memfd(self, name: str, data: bytes) -> int:
        fd = os.memfd_create(name)
        self._fds.append(fd)
        os.ftruncate(fd, len(data))
        os.pwrite(fd, data, 0)
        return fd

    def _layout_maps(self) -> list[tuple[int, int]]:
        return [(a, n) for a, n in self._maps if self._in_layout(a)]

    def _in_layout(self, addr: int) -> bool:
        return self.base <= addr < self.base + NPAGES * PAGE if self.base else False

    def _unmap_layout(self) -> None:
        keep = []
        for addr, length in self._maps:
            if addr == self.expired:
                keep.append((addr, length))
            else:
                host_munmap(addr, length)
        self._maps = keep

    def _map(
        self,
        base: int,
        page: str,
        npages: int,
        prot: int,
        flags: int,
        fd: int = -1,
        offset: int = 0,
        fixed: bool = False,
    ) -> int:
        want = base + PAGE_INDEX[page] * PAGE
        extra = MAP_FIXED if fixed else MAP_FIXED_NOREPLACE
        got = host_mmap(want, npages * PAGE, prot, flags | extra, fd, offset)
        if got != want:
            host_munmap(got, npages * PAGE)
            raise OSError(f"mmap placed {page} at {got:#x}, not {want:#x}")
        if not fixed:
            self._maps.append((got, npages * PAGE))
        return got

    def _reserve(self, base: int) -> None:
        holes = [i for i, spec in enumerate(LAYOUT) if spec.name.startswith("HOLE")]
        for i in [-1, *holes, NPAGES]:  # the layout's holes and the pages around it
            if host_page_mapped(base + i * PAGE):
                raise OSError(f"page {i} at {base + i * PAGE:#x} is mapped already")
        anon = MAP_PRIVATE | MAP_ANONYMOUS
        shanon = MAP_SHARED | MAP_ANONYMOUS
        self._map(base, "PRIV_RW", 1, RW, anon)
        self._map(base, "TIMESPEC", 1, RW, anon)
        a = self._map(base, "PRIV_RO", 1, RW, anon)
        _poke(a, pattern(P_PRIV_RO))
        host_mprotect(a, PAGE, PROT_READ)
        self._map(base, "PROT_NONE", 1, PROT_NONE, anon)
        self._map(base, "SHARED_RW", 1, RW, shanon)
        a = self._map(base, "SHARED_RO", 1, RW, shanon)
        _poke(a, pattern(P_SHARED_RO))
        host_mprotect(a, PAGE, PROT_READ)
        self._map(base, "FILE_SHARED_RW", 1, RW, MAP_SHARED, self.fd_a, 0)
        self._map(base, "FILE_SHARED_RO", 1, PROT_READ, MAP_SHARED, self.fd_a, 0)
        self._map(base, "FILE_PRIV_RW", 1, RW, MAP_PRIVATE, self.fd_b, 0)
        self._map(base, "FILE_PRIV_RO", 1, PROT_READ, MAP_PRIVATE, self.fd_b, 0)
        a = self._map(base, "FILE_PRIV_COWED_RO", 1, RW, MAP_PRIVATE, self.fd_b, PAGE)
        _poke(a, pattern(P_COWED))
        host_mprotect(a, PAGE, PROT_READ)
        self._map(base, "EOF_SHARED", 2, RW, MAP_SHARED, self.fd_c, 0)
        self._map(base, "EOF_PRIV_PAST", 1, RW, MAP_PRIVATE, self.fd_c, PAGE)
        self._map(base, "FILE_PRIV_ALIAS_RW", 1, RW, MAP_PRIVATE, self.fd_a, 0)
        self._map(base, "FILE_PRIV_ALIAS_RO", 1, PROT_READ, MAP_PRIVATE, self.fd_a, 0)
        self._map(base, "PRIV_RO_ZERO", 1, PROT_READ, anon)
        self._map(base, "SHARED_RO_ZERO", 1, PROT_READ, shanon)
        # PROT_EXEC alone: execute-only memory where the CPU has protection keys, so
        # Python must never read these pages
        self._map(base, "EXEC_PRIV", 1, PROT_EXEC, anon)
        a = self._map(base, "EXEC_SHARED", 1, RW, shanon)
        _poke(a, pattern(P_EXEC_SHARED))
        host_mprotect(a, PAGE, PROT_EXEC)
        self._map(base, "EXEC_FILE_SHARED", 1, PROT_EXEC, MAP_SHARED, self.fd_a, 0)
        self._map(base, "EXEC_FILE_PRIV", 1, PROT_EXEC, MAP_PRIVATE, self.fd_b, 0)
        self._map(base, "WRITE_ONLY_PRIV", 1, PROT_WRITE, anon)
        self._map(base, "WRITE_ONLY_SHARED", 1, PROT_WRITE, shanon)
        for name, flags in (("PI_PRIV_RO", anon), ("PI_SHARED_RO", shanon)):
            a = self._map(base, name, 1, RW, flags)
            _poke(a, self.pi_page)
            host_mprotect(a, PAGE, PROT_READ)

    def check_holes(self) -> None:
        """Fail loudly if something got mapped into the layout's holes meanwhile."""
        for i, spec in enumerate(LAYOUT):
            if spec.name.startswith("HOLE") and host_page_mapped(self.addr(i)):
                raise AssertionError(f"{spec.name} at {self.addr(i):#x} got mapped")

    # per sequence

    def addr(self, page: int, off: int = 0) -> int:
        return self.base + page * PAGE + off

    def reset(self, timespecs: bytes) -> None:
        """Bring the host layout back to the state a fresh emulated one starts in."""
        b = self.base
        _poke(self.addr(PAGE_INDEX["PRIV_RW"]), pattern(P_PRIV_RW))
        _poke(self.addr(PAGE_INDEX["TIMESPEC"]), timespecs)
        _poke(self.addr(PAGE_INDEX["SHARED_RW"]), pattern(P_SHARED_RW))
        _poke(self.addr(PAGE_INDEX["FILE_SHARED_RW"]), file_a())
        _poke(self.addr(PAGE_INDEX["EOF_SHARED"]), file_c() + bytes(PAGE - FILE_C_SIZE))
        _poke(self.addr(PAGE_INDEX["WRITE_ONLY_PRIV"]), pattern(P_WRITE_ONLY_PRIV))
        _poke(self.addr(PAGE_INDEX["WRITE_ONLY_SHARED"]), pattern(P_WRITE_ONLY_SHARED))
        # private file pages: a fresh mapping, so a page copied-on-write goes back to the
        # page cache
        self._map(b, "FILE_PRIV_RW", 1, RW, MAP_PRIVATE, self.fd_b, 0, fixed=True)
        self._map(b, "FILE_PRIV_ALIAS_RW", 1, RW, MAP_PRIVATE, self.fd_a, 0, fixed=True)

    def read_page(self, page: int) -> bytes:
        assert LAYOUT[page].readable
        return ctypes.string_at(self.addr(page), PAGE)

    def store(self, addr: int, value: int) -> None:
        """Four bytes at ``addr`` (anywhere in the layout's writable pages)."""
        for a in (addr, addr + 3):
            page = (a - self.base) // PAGE
            if not (0 <= page < NPAGES and LAYOUT[page].writable):
                raise AssertionError(f"harness: store to {a:#x}, not a writable page")
        _poke(addr, struct.pack("<I", value & U32))

    def write_clipped(self, addr: int, data: bytes) -> list[tuple[int, bytes]]:
        """Write the parts of ``data`` (to go at ``addr``) that fall in the layout's writable
        pages; return them, for the emulated side."""
        pieces = []
        a, end = addr, addr + len(data)
        while a < end:
            n = min(end, (a | (PAGE - 1)) + 1) - a
            page = (a - self.base) // PAGE
            if 0 <= page < NPAGES and LAYOUT[page].writable:
                chunk = data[a - addr : a - addr + n]
                _poke(a, chunk)
                pieces.append((a, chunk))
            a += n
        return pieces

    def _pages(self, addr: int, n: int) -> list[PageSpec] | None:
        """The layout pages ``[addr, addr + n)`` touches, or ``None`` if outside it."""
        first, last = (addr - self.base) // PAGE, (addr + n - 1 - self.base) // PAGE
        if not (first >= 0 and last < NPAGES):
            return None
        return [LAYOUT[p] for p in range(first, last + 1)]

    def writable_range(self, addr: int, n: int) -> bool:
        """Whether ``[addr, addr + n)`` lies in the layout's writable pages."""
        pages = self._pages(addr, n)
        return pages is not None and all(spec.writable for spec in pages)

    def peek(self, addr: int, n: int) -> bytes | None:
        """The ``n`` bytes at ``addr`` if they lie in pages Python may read, else ``None``."""
        pages = self._pages(addr, n)
        if pages is None or not all(spec.readable for spec in pages):
            return None
        return ctypes.string_at(addr, n)

    def word_at(self, addr: int) -> int | None:
        """The aligned word at ``addr`` if it lies in a writable layout page (one the host
        can set FUTEX_WAITERS in), else ``None``."""
        page = (addr - self.base) // PAGE
        if addr & 3 or not (0 <= page < NPAGES and LAYOUT[page].writable):
            return None
        value: int = struct.unpack("<I", ctypes.string_at(addr, 4))[0]
        return value

    def read_timespec(self, addr: int) -> tuple[int, int] | Literal[False] | None:
        """What the host would read at ``addr`` as a timespec: ``(sec, nsec)``; ``False``
        when reading it surely faults (a hole, PROT_NONE, past EOF, or not this process's:
        ``safe`` checked that); ``None`` when it may or may not (execute-only pages are
        readable without protection keys)."""
        lo, hi = self.base, self.base + NPAGES * PAGE
        maybe = False
        for a in (addr, addr + 15):
            if not lo <= a < hi:
                return False
            spec = LAYOUT[(a - lo) // PAGE]
            if spec.prot & PROT_EXEC:
                maybe = True
            elif not spec.readable:
                return False
        if maybe:
            return None
        sec, nsec = struct.unpack("<qq", ctypes.string_at(addr, 16))
        return sec, nsec

    def safe(self, addr: int, n: int) -> bool:
        """Whether the host may be handed ``addr`` (``n`` bytes) as a pointer: inside the
        layout, or where nothing of this process is mapped (so the host answer is the
        emulator's "not mapped")."""
        lo, hi = self.base, self.base + NPAGES * PAGE
        if lo <= addr and addr + n <= hi:
            return True
        first = addr & ~(PAGE - 1)
        last = (addr + n - 1) & ~(PAGE - 1)
        return not any(
            host_page_mapped(p) and not lo <= p < hi for p in range(first, last + PAGE, PAGE)
        )


def _poke(addr: int, data: bytes) -> None:
    ctypes.memmove(addr, data, len(data))


@contextlib.contextmanager
def host_layout() -> Iterator[tuple[HostLayout, Watchdog]]:
    layout = HostLayout()
    layout.open()
    watchdog = Watchdog()
    try:
        yield layout, watchdog
        layout.check_holes()
    finally:
        watchdog.close()
        layout.close()


# -- emulated side ----------------------------------------------------------------------------


class Emulated:
    """A fresh emulated kernel, process and task with the layout at ``base``; the task has
    ``self_tid`` (default: the calling thread's tid).  With ``peer_tid``, the process has a
    second, idle task: the peer (:class:`Peer`)."""

    def __init__(
        self,
        base: int,
        timespecs: bytes,
        mono_ns: int,
        rt_ns: int,
        self_tid: int | None = None,
        peer_tid: int | None = None,
    ) -> None:
        if self_tid is None:
            self_tid = gettid()
        pi = pi_page(self_tid)
        self.clock = ManualClock(monotonic=mono_ns, realtime=rt_ns)
        self.kernel = LinuxKernel(clock=self.clock, buckets=EMULATED_BUCKETS)
        self.process: Process = self.kernel.new_process()
        self.task: Task = self.process.new_task(tid=self_tid)
        self.peer: Task | None = None
        if peer_tid is not None:
            self.peer = self.process.new_task(tid=peer_tid)
        p = self.process
        fa = File("futex-diff-a", size=FILE_A_SIZE)
        fa.pwrite(0, file_a())
        fb = File("futex-diff-b", size=FILE_B_SIZE)
        fb.pwrite(0, file_b())
        fc = File("futex-diff-c", size=FILE_C_SIZE)
        fc.pwrite(0, file_c())

        def at(name: str) -> int:
            return base + PAGE_INDEX[name] * PAGE

        p.mmap(PAGE, addr=at("PRIV_RW"))
        p.write(at("PRIV_RW"), pattern(P_PRIV_RW))
        p.mmap(PAGE, addr=at("TIMESPEC"))
        p.write(at("TIMESPEC"), timespecs)
        p.mmap(PAGE, addr=at("PRIV_RO"))
        p.write(at("PRIV_RO"), pattern(P_PRIV_RO))
        p.mprotect(at("PRIV_RO"), PAGE, PROT_READ)
        p.mmap(PAGE, addr=at("PROT_NONE"), prot=PROT_NONE)
        p.mmap(PAGE, addr=at("SHARED_RW"), shared=True)
        p.write(at("SHARED_RW"), pattern(P_SHARED_RW))
        p.mmap(PAGE, addr=at("SHARED_RO"), shared=True)
        p.write(at("SHARED_RO"), pattern(P_SHARED_RO))
        p.mprotect(at("SHARED_RO"), PAGE, PROT_READ)
        p.mmap(PAGE, addr=at("FILE_SHARED_RW"), shared=True, file=fa)
        p.mmap(PAGE, addr=at("FILE_SHARED_RO"), shared=True, file=fa, prot=PROT_READ)
        p.mmap(PAGE, addr=at("FILE_PRIV_RW"), file=fb)
        p.mmap(PAGE, addr=at("FILE_PRIV_RO"), file=fb, prot=PROT_READ)
        p.mmap(PAGE, addr=at("FILE_PRIV_COWED_RO"), file=fb, offset=PAGE)
        p.write(at("FILE_PRIV_COWED_RO"), pattern(P_COWED))
        p.mprotect(at("FILE_PRIV_COWED_RO"), PAGE, PROT_READ)
        p.mmap(2 * PAGE, addr=at("EOF_SHARED"), shared=True, file=fc)
        p.mmap(PAGE, addr=at("EOF_PRIV_PAST"), file=fc, offset=PAGE)
        p.mmap(PAGE, addr=at("FILE_PRIV_ALIAS_RW"), file=fa)
        p.mmap(PAGE, addr=at("FILE_PRIV_ALIAS_RO"), file=fa, prot=PROT_READ)
        p.mmap(PAGE, addr=at("PRIV_RO_ZERO"), prot=PROT_READ)
        p.mmap(PAGE, addr=at("SHARED_RO_ZERO"), shared=True, prot=PROT_READ)
        p.mmap(PAGE, addr=at("EXEC_PRIV"), prot=PROT_EXEC)
        p.mmap(PAGE, addr=at("EXEC_SHARED"), shared=True)
        p.write(at("EXEC_SHARED"), pattern(P_EXEC_SHARED))
        p.mprotect(at("EXEC_SHARED"), PAGE, PROT_EXEC)
        p.mmap(PAGE, addr=at("EXEC_FILE_SHARED"), shared=True, file=fa, prot=PROT_EXEC)
        p.mmap(PAGE, addr=at("EXEC_FILE_PRIV"), file=fb, prot=PROT_EXEC)
        p.mmap(PAGE, addr=at("WRITE_ONLY_PRIV"), prot=PROT_WRITE)
        p.write(at("WRITE_ONLY_PRIV"), pattern(P_WRITE_ONLY_PRIV))
        p.mmap(PAGE, addr=at("WRITE_ONLY_SHARED"), shared=True, prot=PROT_WRITE)
        p.write(at("WRITE_ONLY_SHARED"), pattern(P_WRITE_ONLY_SHARED))
        for name, shared in (("PI_PRIV_RO", False), ("PI_SHARED_RO", True)):
            p.mmap(PAGE, addr=at(name), shared=shared)
            p.write(at(name), pi)
            p.mprotect(at(name), PAGE, PROT_READ)


# -- the differ -------------------------------------------------------------------------------


class Differ:
    """Runs step sequences on both sides and reports the first disagreement."""

    def __init__(self, layout: HostLayout, watchdog: Watchdog) -> None:
        assert layout.peer is not None
        self.layout = layout
        self.peer = layout.peer
        self.watchdog = watchdog
        self.self_tid = layout.self_tid
        self.peer_tid = layout.peer.tid
        self.calls = 0
        self.sequences = 0
        self.skipped = 0
        #: PI calls skipped because the word might name a task of the host's
        self.pi_unsafe = 0
        #: PI locks naming the peer skipped because the host would block for good
        self.pi_blocking = 0
        #: sequences in which at least one PI lock call (LOCK_PI, UNLOCK_PI, TRYLOCK_PI,
        #: LOCK_PI2), requeue-PI call, futex2 call ran on both sides
        self.pi_sequences = 0
        self.requeue_pi_sequences = 0
        self.futex2_sequences = 0
        #: blocked calls ended by the peer's calls, and why the others were not
        self.peer_ended = 0
        self.peer_refused: collections.Counter[str] = collections.Counter()
        #: calls made on the host with an expired timeout instead of their own, whose
        #: deadline had passed on the emulated clock (advanced by the harness) only
        self.expired_instead = 0
        self._ran: set[str] = set()
        #: a PI lock's deadline, when the host would block on it
        self._pi_deadline: tuple[ClockId, int] | None = None
        self._registers = ""
        #: (command, result) -> count, for a look at what the sequences exercised
        self.outcomes: collections.Counter[tuple[str, object]] = collections.Counter()

    def resolve(self, a: Addr) -> int:
        if isinstance(a, At):
            return self.layout.addr(a.page, a.off) & U64
        return a & U64

    def word(self, v: int | TidWord) -> int:
        if isinstance(v, TidWord):
            return v.resolve(self.self_tid, self.peer_tid)
        return v & U32

    def arg(self, emu: Emulated, a: Addr | Current) -> int:
        """A register value: an address, an int, or the word somewhere now."""
        return self.value(emu, a) if isinstance(a, Current) else self.resolve(a)

    def host(self, uaddr: int, op: int, val: int, utime: int, uaddr2: int, val3: int) -> object:
        """The host's answer, or BLOCKED."""
        cmd = op & abi.FUTEX_CMD_MASK
        guard = cmd in BLOCKING_COMMANDS or cmd in PI_COMMANDS
        if guard:
            rescue: Callable[[], None] | None = None
            if cmd in PI_LOCK_COMMANDS:
                flags = op & abi.FUTEX_PRIVATE_FLAG
                rescue = functools.partial(self.peer.unlock, uaddr, flags)
            elif cmd == abi.FUTEX_WAIT_REQUEUE_PI:
                rescue = self._requeue_pi_rescue(uaddr, op, utime, uaddr2)
            self.watchdog.arm(WATCHDOG_SECONDS, rescue)
        try:
            r = host_futex(uaddr, op, val, utime, uaddr2, val3)
        finally:
            fired = self.watchdog.disarm() if guard else False
        if fired and (
            r == -abi.EINTR or cmd in PI_LOCK_COMMANDS or cmd == abi.FUTEX_WAIT_REQUEUE_PI
        ):
            return BLOCKED
        return r

    def host2(self, nr: int, args: Sequence[int]) -> object:
        """The host's answer to futex2 call ``nr``, or BLOCKED."""
        guard = nr in FUTEX2_WAITS
        if guard:
            self.watchdog.arm(WATCHDOG_SECONDS)
        try:
            r = host_syscall(nr, *args)
        finally:
            fired = self.watchdog.disarm() if guard else False
        return BLOCKED if fired and r == -abi.EINTR else r

    def _requeue_pi_rescue(
        self, uaddr: int, op: int, utime: int, uaddr2: int
    ) -> Callable[[], None]:
        """For a host WAIT_REQUEUE_PI that blocked although it should not have (a signal
        only restarts it): the watchdog has the peer take ``uaddr2`` for it
        (CMP_REQUEUE_PI) and hand it over (UNLOCK_PI); if it still sleeps, its restart is
        made to fail (its word flipped, or its timeout zeroed, where writable) and it gets
        a signal.  The harness reports BLOCKED whatever it answers then."""
        layout, peer = self.layout, self.peer
        private = op & abi.FUTEX_PRIVATE_FLAG
        job = PeerJob(self.self_tid, SYS_FUTEX, (uaddr, op), ())

        def rescue() -> None:
            raw = layout.peek(uaddr, 4)
            cur = struct.unpack("<I", raw)[0] if raw is not None else 0
            cmp_requeue_pi = abi.FUTEX_CMP_REQUEUE_PI | private
            host_futex(uaddr, cmp_requeue_pi, 1, 0, uaddr2, cur)
            host_futex(uaddr2, abi.FUTEX_UNLOCK_PI | private, 0, 0, 0, 0)
            time.sleep(0.05)
            if not job.asleep():
                return
            if layout.word_at(uaddr) is not None:
                layout.store(uaddr, cur ^ 1)
            elif utime and layout.writable_range(utime, 16):
                _poke(utime, bytes(16))
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)

        return functools.partial(peer.submit, rescue)

    def run(self, steps: Sequence[Step]) -> Mismatch | None:
        """Run ``steps`` from a fresh state; the first disagreement, or ``None``."""
        self.sequences += 1
        self._ran = set()
        try:
            return self._run(steps)
        finally:
            self.pi_sequences += "pi" in self._ran
            self.requeue_pi_sequences += "requeue_pi" in self._ran
            self.futex2_sequences += "futex2" in self._ran

    def _run(self, steps: Sequence[Step]) -> Mismatch | None:
        mono, rt = time.monotonic_ns(), time.time_ns()
        timespecs = timespec_page(mono, rt)
        self.layout.reset(timespecs)
        emu = Emulated(
            self.layout.base,
            timespecs,
            mono,
            rt,
            self.self_tid,
            self.peer_tid,
        )
        bad = self._compare_memory(emu, -1, Store(At(0, 0), 0))
        if bad is not None:
            bad.detail = "harness: layouts differ before the first step: " + bad.detail
            return bad
        for i, step in enumerate(steps):
            if isinstance(step, Store):
                a = self.resolve(step.addr)
                v = self.word(step.value)
                self.layout.store(a, v)
                emu.process.write(a, struct.pack("<I", v))
            else:
                bad = self._call(emu, i, step)
                if bad is not None:
                    bad.steps = steps
                    return bad
            bad = self._compare_memory(emu, i, step)
            if bad is not None:
                bad.steps = steps
                return bad
        try:
            emu.process.futex.check_invariants()
            queued = emu.process.futex.stats().queued
        except AssertionError as exc:
            return Mismatch(len(steps), steps[-1], None, exc, "invariants", steps)
        if queued or emu.task.blocked is not None:
            return Mismatch(len(steps), steps[-1], 0, queued, "waiters left queued", steps)
        return None

    def _compare_memory(self, emu: Emulated, i: int, step: Step) -> Mismatch | None:
        for page in READABLE_PAGES:
            want = self.layout.read_page(page)
            got = emu.process.read(self.layout.addr(page), PAGE)
            if want != got:
                diffs = []
                for off in range(0, PAGE, 4):
                    w, g = want[off : off + 4], got[off : off + 4]
                    if w != g:
                        h = struct.unpack("<I", w)[0]
                        e = struct.unpack("<I", g)[0]
                        diffs.append(f"+{off:#x}: host {h:#x} emulator {e:#x}")
                return Mismatch(
                    i,
                    step,
                    "memory",
                    "memory",
                    f"memory of {LAYOUT[page].name} differs after the step: "
                    + ", ".join(diffs[:4])
                    + (f" (+{len(diffs) - 4} more)" if len(diffs) > 4 else ""),
                )
        return None

    def value(self, emu: Emulated, v: Value) -> int:
        if isinstance(v, int):
            return v & U64
        try:
            word = emu.process.load_u32(self.resolve(v.addr))
        except Exception:
            word = 0
        return (word ^ v.flip) & U64

    def _call(self, emu: Emulated, i: int, c: Call | Sys2) -> Mismatch | None:
        bad = self._call_inner(emu, i, c) if isinstance(c, Call) else self._call2(emu, i, c)
        if bad is not None:
            bad.registers = self._registers
        return bad

    def _call_inner(self, emu: Emulated, i: int, c: Call) -> Mismatch | None:
        uaddr, utime, uaddr2 = self.resolve(c.uaddr), self.resolve(c.utime), self.resolve(c.uaddr2)
        op, val, val3 = c.op & U64, self.value(emu, c.val), self.value(emu, c.val3)
        args = (uaddr, op, val, utime, uaddr2, val3)
        self._registers = (
            f"futex({uaddr:#x}, {op:#x}, {val:#x}, {utime:#x}, {uaddr2:#x}, {val3:#x})"
            f" with the layout at {self.layout.base:#x}"
        )
        cmd = op & abi.FUTEX_CMD_MASK
        pointers = [(uaddr, 4), (uaddr2, 4)]
        if cmd in abi.TIMEOUT_COMMANDS and utime:
            pointers.append((utime, 16))
        if not all(self.layout.safe(a, n) for a, n in pointers):
            self.skipped += 1  # would touch this process's own memory on the host
            return None
        host_blocks = False
        self._pi_deadline = None
        if cmd in PI_COMMANDS:
            verdict = self._pi_verdict(uaddr, op, utime)
            if verdict == "skip":
                return None
            host_blocks = verdict == "blocks"
            self._ran.add("pi")
        elif cmd in REQUEUE_PI_COMMANDS:
            self._ran.add("requeue_pi")
        self.calls += 1
        try:
            r = emu.task.syscall_futex_nb(uaddr, op, val, utime, uaddr2, val3)
        except Exception as exc:
            got = "not run" if host_blocks else self.host(*args)
            return Mismatch(i, c, got, exc, "raised")
        if isinstance(r, PendingWait):
            self.outcomes[describe_op(op), "blocks"] += 1
            if cmd in PI_COMMANDS:
                return self._pi_blocked(emu, i, c, r, args, host_blocks)
            return self._blocked(emu, i, c, r, args)
        self.outcomes[describe_op(op), r] += 1
        # The emulated clock was advanced (by the harness) past an absolute deadline that
        # may not have passed on the host's: the host gets an already expired timeout
        # instead (the same path: the call ran on the emulator, with its side effects).
        expire = False
        if r == -abi.ETIMEDOUT and cmd == abi.FUTEX_WAIT_BITSET:
            expire = self._ambiguous(emu, utime, op)
        if cmd == abi.FUTEX_WAIT_REQUEUE_PI:
            verdict = self._requeue_pi_verdict(emu, args)
            if verdict == "skip":
                self.skipped += 1
                return None
            expire = verdict == "expired"
            if verdict == "blocks":
                return Mismatch(
                    i,
                    c,
                    "blocks (not run: with an expired timeout it answers ETIMEDOUT, and its "
                    "own timeout is none or in the future)",
                    r,
                    "return value",
                )
        if host_blocks:
            assert self._pi_deadline is not None
            clock_id, when = self._pi_deadline
            expire = r == -abi.ETIMEDOUT and emu.clock.now(clock_id) >= when
        if expire:
            self.expired_instead += 1
            got = self.host(uaddr, op, val, self.layout.expired, uaddr2, val3)
            if got != r:
                return Mismatch(
                    i, c, got, r, "return value (host: with an expired timeout instead)"
                )
            return None
        if host_blocks:
            return Mismatch(
                i,
                c,
                "blocks (not run: the word names the peer, the timeout is in the future)",
                r,
                "return value",
            )
        got = self.host(*args)
        if got != r:
            return Mismatch(i, c, got, r, "return value")
        return None

    def _requeue_pi_verdict(self, emu: Emulated, args: tuple[int, ...]) -> str:
        """For a WAIT_REQUEUE_PI the emulator answered at once: ``"run"`` (the host
        answers at once too), ``"blocks"`` (it would sleep: a signal would only restart
        it, so it is not run), ``"expired"`` (its deadline passed on the emulated clock,
        advanced by the harness, not on the host's) or ``"skip"`` (an execute-only
        timespec).  A call whose timeout is none or in
        the future is first made on the host with an already expired timeout: anything
        but ETIMEDOUT is answered before sleeping.  (Only then: the probe takes the keys,
        which copies a private file page on write, as the real call does too.)"""
        uaddr, op, val, utime, uaddr2, val3 = args
        when = None
        clock_id = ClockId.REALTIME if op & abi.FUTEX_CLOCK_REALTIME else ClockId.MONOTONIC
        if utime:
            ts = self.layout.read_timespec(utime)
            if ts is False:
                return "run"  # EFAULT
            if ts is None:
                return "skip"  # execute-only: may or may not be readable
            sec, nsec = ts
            if sec < 0 or not 0 <= nsec < abi.NSEC_PER_SEC:
                return "run"  # EINVAL
            when = ktime_of(sec, nsec)
            now = time.time_ns() if clock_id == ClockId.REALTIME else time.monotonic_ns()
            if when <= now:
                return "run"  # at most ETIMEDOUT
        probe = self.host(uaddr, op, val, self.layout.expired, uaddr2, val3)
        if probe != -abi.ETIMEDOUT:
            return "run"
        if when is not None and when <= emu.clock.now(clock_id):
            return "expired"
        return "blocks"

    def _deadline_of(self, utime: int, realtime: bool) -> object:
        """The absolute deadline of a valid timeout at ``utime`` (WAIT_BITSET,
        WAIT_REQUEUE_PI, futex2: ``futex_init_timeout``), on CLOCK_REALTIME or
        CLOCK_MONOTONIC; ``None`` without one (a description if the host could not
        have read it)."""
        if not utime:
            return None
        ts = self.layout.read_timespec(utime)
        if not isinstance(ts, tuple):
            return f"none: the timespec at {utime:#x} is not readable"
        return ClockId.REALTIME if realtime else ClockId.MONOTONIC, ktime_of(*ts)

    def _ambiguous(self, emu: Emulated, utime: int, op: int) -> bool:
        """Whether the absolute deadline at ``utime`` has passed on the emulated clock but
        maybe not on the host's (the harness advanced the emulated clock)."""
        rt = bool(op & abi.FUTEX_CLOCK_REALTIME)
        return self._passed_on_emulator_only(emu, utime, rt)

    def _passed_on_emulator_only(self, emu: Emulated, utime: int, realtime: bool) -> bool:
        try:
            sec, nsec = struct.unpack("<qq", emu.process.read(utime, 16))
        except Exception:
            return False
        when = ktime_of(sec, nsec)
        clock_id = ClockId.REALTIME if realtime else ClockId.MONOTONIC
        host_now = time.time_ns() if realtime else time.monotonic_ns()
        return emu.clock.now(clock_id) >= when > host_now - abi.NSEC_PER_SEC

    def _blocked(
        self,
        emu: Emulated,
        i: int,
        c: Call,
        pending: PendingWait,
        args: tuple[int, int, int, int, int, int],
    ) -> Mismatch | None:
        uaddr, op, val, utime, uaddr2, val3 = args
        cmd = op & abi.FUTEX_CMD_MASK
        # 1. the host gets as far as the value check (timeout, bitset, key all fine) ...
        probe = self.host(uaddr, op, val ^ 1, utime, uaddr2, val3)
        # 2. ... and the value matches: with an expired timeout it times out instead of
        # returning at once.
        expired = self.host(uaddr, op, val, self.layout.expired, uaddr2, val3)
        if probe != -abi.EAGAIN or expired != -abi.ETIMEDOUT:
            pending.kill()
            return Mismatch(
                i,
                c,
                f"does not block (val^1 -> {probe!r}, expired timeout -> {expired!r})",
                "blocks",
                "blocking: host probes expect EAGAIN, ETIMEDOUT",
            )
        if cmd != abi.FUTEX_WAIT:
            want_deadline = self._deadline_of(utime, bool(op & abi.FUTEX_CLOCK_REALTIME))
            if pending.deadline != want_deadline:
                pending.kill()
                return Mismatch(i, c, want_deadline, pending.deadline, "blocking: deadline")
        if c.peer:
            calls = self._peer_calls(emu, c.peer)
            refused = self._peer_refusal(SYS_FUTEX, args, calls)
            if refused is None:
                return self._peer_end(emu, i, c, pending, SYS_FUTEX, args, calls)
            self.peer_refused[refused] += 1
        requeue_pi = cmd == abi.FUTEX_WAIT_REQUEUE_PI
        if requeue_pi:
            # a signal restarts it (ERESTARTNOINTR): the timeout read again, the word
            # compared again, queued again
            before = pending.deadline
            emu.task.interrupt(handler=True)
            if pending.done() or pending.deadline != before:
                got = pending.result() if pending.done() else ("still blocked", pending.deadline)
                pending.kill()
                return Mismatch(
                    i,
                    c,
                    ("still blocked", before),
                    got,
                    "blocking: after a signal (ERESTARTNOINTR: the call runs again)",
                )
        # end the emulated wait
        deadline = pending.deadline
        if deadline is not None and not c.interrupt:
            need = deadline[1] - emu.clock.now(ClockId(deadline[0]))
        else:
            need = None
        if need is not None and 0 <= need <= MAX_ADVANCE_NS:
            emu.clock.advance(need)
            end, want_end = "advance", -abi.ETIMEDOUT
        elif requeue_pi:
            pending.kill()
            end, want_end = "kill", -abi.EINTR
        else:
            emu.task.interrupt(handler=True)
            end, want_end = "signal", -abi.EINTR
        if not pending.done():
            pending.kill()
            return Mismatch(i, c, want_end, "still blocked", f"ending the wait by {end}")
        if pending.result() != want_end or emu.task.blocked is not None:
            return Mismatch(i, c, want_end, pending.result(), f"ending the wait by {end}: result")
        return None

    # -- the peer's calls ------------------------------------------------------------------

    def _peer_calls(
        self, emu: Emulated, peer: Sequence[PeerCall]
    ) -> list[tuple[int, tuple[int, ...]]]:
        return [(pc.nr, tuple(self.arg(emu, a) for a in pc.args)) for pc in peer]

    def _tid_safe(self, addr: int) -> bool:
        """Whether a PI word at ``addr`` names no task of the host's but the caller and
        the peer (if it is readable at all)."""
        raw = self.layout.peek(addr, 4)
        if raw is None:
            # 16 bytes around it surely unreadable (not execute-only: maybe readable)
            return self.layout.read_timespec(addr & ~15) is False
        tid = struct.unpack("<I", raw)[0] & TID_MASK
        return tid in (0, self.self_tid, self.peer_tid) or tid >= TASKLESS_TID_MIN

    def _expired(self, op: int, utime: int) -> bool:
        """Whether a LOCK_PI / LOCK_PI2 timeout surely cannot let it block: unreadable,
        invalid, or already past on its clock."""
        if not utime:
            return False
        ts = self.layout.read_timespec(utime)
        if ts is False:
            return True
        if ts is None:
            return False
        sec, nsec = ts
        if sec < 0 or not 0 <= nsec < abi.NSEC_PER_SEC:
            return True
        rt = op & abi.FUTEX_CMD_MASK == abi.FUTEX_LOCK_PI or op & abi.FUTEX_CLOCK_REALTIME
        now = time.time_ns() if rt else time.monotonic_ns()
        return ktime_of(sec, nsec) < now - abi.NSEC_PER_SEC

    def _far(self, utime: int, rel: bool, clock_id: ClockId) -> bool:
        """Whether the timeout at ``utime`` (none, or valid and far in the future on the
        host's clock) lets the peer act before it expires."""
        if not utime:
            return True
        ts = self.layout.read_timespec(utime)
        if not isinstance(ts, tuple):
            return False
        sec, nsec = ts
        if sec < 0 or not 0 <= nsec < abi.NSEC_PER_SEC:
            return False
        when = ktime_of(sec, nsec)
        if rel:
            return when >= PEER_MIN_TIMEOUT_NS
        now = time.time_ns() if clock_id == ClockId.REALTIME else time.monotonic_ns()
        return when - now >= PEER_MIN_TIMEOUT_NS

    def _peer_refusal(
        self, nr: int, args: Sequence[int], calls: Sequence[tuple[int, Sequence[int]]]
    ) -> str | None:
        """Why the peer must not end this blocked call with ``calls``, or ``None``: a
        near timeout (a race with the peer), a call that may block or look up a task of
        the host's, a pointer the host must not follow; a requeue-PI wait (which a signal
        only restarts) needs a CMP_REQUEUE_PI among them that surely ends it: its target
        free or the peer's, writable."""
        layout = self.layout
        if nr == SYS_FUTEX:
            uaddr, op, val, utime, uaddr2, _ = args
            cmd = op & abi.FUTEX_CMD_MASK
            rt = bool(op & abi.FUTEX_CLOCK_REALTIME) and cmd != abi.FUTEX_WAIT
            clock = ClockId.REALTIME if rt else ClockId.MONOTONIC
            if not self._far(utime, cmd == abi.FUTEX_WAIT, clock):
                return "timeout"
        else:
            t, ck = self._timeout2(nr, args)
            if t and ck not in (CLOCK_REALTIME_ID, CLOCK_MONOTONIC_ID):
                return "timeout"
            clock = ClockId.REALTIME if ck == CLOCK_REALTIME_ID else ClockId.MONOTONIC
            if not self._far(t, False, clock):
                return "timeout"
        for pnr, pargs in calls:
            if pnr == PEER_SIGNAL:
                continue
            if pnr == SYS_WAKE:
                if not layout.safe(pargs[0], 8):
                    return "pointer"
                continue
            if pnr != SYS_FUTEX:
                return "call"
            pcmd = pargs[1] & abi.FUTEX_CMD_MASK
            if pcmd not in PEER_FUTEX_COMMANDS:
                return "call"
            if not (layout.safe(pargs[0], 4) and layout.safe(pargs[4], 4)):
                return "pointer"
            if pcmd == abi.FUTEX_CMP_REQUEUE_PI and not self._tid_safe(pargs[4]):
                return "pi word"
            if pcmd in PI_LOCK_COMMANDS:
                if not self._tid_safe(pargs[0]):
                    return "pi word"
                if pcmd != abi.FUTEX_TRYLOCK_PI and not self._expired(pargs[1], pargs[3]):
                    return "peer lock timeout"
        if nr == SYS_FUTEX and cmd == abi.FUTEX_WAIT_REQUEUE_PI:
            word = layout.word_at(uaddr2)
            if word is None or word & TID_MASK not in (0, self.peer_tid):
                return "requeue-pi target"
            take = (uaddr, abi.FUTEX_CMP_REQUEUE_PI | (op & abi.FUTEX_PRIVATE_FLAG), 1)
            if not any(
                pnr == SYS_FUTEX
                and tuple(pargs[:3]) == take
                and pargs[3] & U32 < 0x80000000
                and pargs[4] == uaddr2
                and pargs[5] & U32 == val & U32
                for pnr, pargs in calls
            ):
                return "requeue-pi: no CMP_REQUEUE_PI that ends it"
        return None

    def _peer_end(
        self,
        emu: Emulated,
        i: int,
        step: Call | Sys2,
        pending: PendingWait,
        nr: int,
        args: Sequence[int],
        calls: Sequence[tuple[int, Sequence[int]]],
    ) -> Mismatch | None:
        """End a blocked call by the peer's ``calls``: the host makes the call for real,
        the peer making its calls once it sleeps (and signalling it if it still sleeps
        after them); the emulated peer makes the same calls, and the emulated call gets a
        signal if it is still blocked.  Either peer stops once its caller was woken.  The
        call's result, the peer's results and whether a signal was needed must agree."""
        name = describe_op(args[1]) if nr == SYS_FUTEX else FUTEX2_NAMES[nr]
        job = PeerJob(self.self_tid, nr, args, calls)
        rescue = None
        if nr == SYS_FUTEX and args[1] & abi.FUTEX_CMD_MASK == abi.FUTEX_WAIT_REQUEUE_PI:
            rescue = self._requeue_pi_rescue(args[0], args[1], args[3], args[4])
        self.watchdog.arm(WATCHDOG_SECONDS + PEER_PATIENCE_SECONDS, rescue)
        self.peer.submit(job)
        try:
            got: object = host_syscall(nr, *args)
        finally:
            fired = self.watchdog.disarm()
            job.returned.set()
        job.finished.wait()
        if fired:
            got = BLOCKED
        results: list[object] = []
        for pnr, pargs in calls:
            r: object
            try:
                if pnr == PEER_SIGNAL:
                    emu.task.interrupt(handler=True)
                    r = "returned" if pending.done() else "restarted"
                else:
                    r = emu.peer.syscall_nb(pnr, *pargs) if emu.peer is not None else "no peer"
            except Exception as exc:
                r = exc
            if isinstance(r, PendingWait):
                r.kill()
                r = "blocks"
            results.append(r)
            self.outcomes["peer " + _call_name(pnr, pargs), r] += 1
            if pending.done():
                break
        signalled = not pending.done()
        if signalled:
            emu.task.interrupt(handler=True)
        if pending.done():
            end: object = pending.result()
        else:
            pending.kill()
            end = "still blocked after a signal"
        self.peer_ended += 1
        self.outcomes[name, f"peer-ended {end}"] += 1
        if job.results is None:
            return Mismatch(
                i, step, f"{got!r} (the peer never saw it asleep)", "blocks", "blocking: peer"
            )
        want = (got, job.results, job.signalled)
        have = (end, results, signalled)
        if want != have:
            return Mismatch(
                i,
                step,
                want,
                have,
                "blocking, with the peer's calls: (result, the peer's results, signalled)",
            )
        return None

    # -- futex2 ----------------------------------------------------------------------------

    def _call2(self, emu: Emulated, i: int, s: Sys2) -> Mismatch | None:
        layout = self.layout
        if s.entries:
            vector = self.resolve(s.vector)
            data = b"".join(
                struct.pack(
                    "<QQII",
                    self.value(emu, e.val),
                    self.resolve(e.uaddr),
                    e.flags & U32,
                    e.reserved & U32,
                )
                for e in s.entries
            )
            for a, chunk in layout.write_clipped(vector, data):
                emu.process.write(a, chunk)
        args = tuple(self.arg(emu, a) for a in s.args)
        name = FUTEX2_NAMES[s.nr]
        self._registers = (
            f"{name}({', '.join(f'{a:#x}' for a in args)}) with the layout at {layout.base:#x}"
        )
        if not self._safe2(emu, s.nr, args):
            self.skipped += 1
            return None
        self._ran.add("futex2")
        self.calls += 1
        try:
            r = emu.task.syscall_nb(s.nr, *args)
        except Exception as exc:
            return Mismatch(i, s, self.host2(s.nr, args), exc, "raised")
        if isinstance(r, PendingWait):
            self.outcomes[name, "blocks"] += 1
            return self._blocked2(emu, i, s, r, args)
        self.outcomes[name, r] += 1
        if r == -abi.ETIMEDOUT and self._ambiguous2(emu, s.nr, args):
            # the emulated clock was advanced past the deadline: an expired one instead
            self.expired_instead += 1
            probe = list(args)
            if s.nr == SYS_WAITV:
                probe[3:5] = [self.layout.expired, CLOCK_MONOTONIC_ID]
            else:
                probe[4:6] = [self.layout.expired, CLOCK_MONOTONIC_ID]
            got = self.host2(s.nr, probe)
            if got != r:
                return Mismatch(
                    i, s, got, r, "return value (host: with an expired timeout instead)"
                )
            return None
        got = self.host2(s.nr, args)
        if got != r:
            return Mismatch(i, s, got, r, "return value")
        return None

    def _timeout2(self, nr: int, args: Sequence[int]) -> tuple[int, int]:
        """A futex2 wait's timeout pointer and clockid (as the kernel's int)."""
        t, ck = (args[3], args[4]) if nr == SYS_WAITV else (args[4], args[5])
        return t, (ck & U32) - ((ck & 0x80000000) << 1)

    def _ambiguous2(self, emu: Emulated, nr: int, args: Sequence[int]) -> bool:
        t, ck = self._timeout2(nr, args)
        return self._passed_on_emulator_only(emu, t, ck == CLOCK_REALTIME_ID)

    def _safe2(self, emu: Emulated, nr: int, args: Sequence[int]) -> bool:
        return futex2_pointers_safe(self.layout, emu, nr, args)

    def _blocked2(
        self, emu: Emulated, i: int, s: Sys2, pending: PendingWait, args: Sequence[int]
    ) -> Mismatch | None:
        # The host would block too: with an already expired timeout it times out.
        probe = list(args)
        if s.nr == SYS_WAITV:
            probe[3:5] = [self.layout.expired, CLOCK_MONOTONIC_ID]
        else:
            probe[4:6] = [self.layout.expired, CLOCK_MONOTONIC_ID]
        got = self.host2(s.nr, probe)
        if got != -abi.ETIMEDOUT:
            pending.kill()
            return Mismatch(
                i, s, f"does not block (expired timeout -> {got!r})", "blocks", "blocking"
            )
        t, ck = self._timeout2(s.nr, args)
        want_deadline = self._deadline_of(t, ck == CLOCK_REALTIME_ID)
        if pending.deadline != want_deadline:
            pending.kill()
            return Mismatch(i, s, want_deadline, pending.deadline, "blocking: deadline")
        if s.peer:
            calls = self._peer_calls(emu, s.peer)
            refused = self._peer_refusal(s.nr, args, calls)
            if refused is None:
                return self._peer_end(emu, i, s, pending, s.nr, args, calls)
            self.peer_refused[refused] += 1
        deadline = pending.deadline
        need = None
        if deadline is not None and not s.interrupt:
            need = deadline[1] - emu.clock.now(ClockId(deadline[0]))
        if need is not None and 0 <= need <= MAX_ADVANCE_NS:
            emu.clock.advance(need)
            end, want = "advance", -abi.ETIMEDOUT
        else:
            emu.task.interrupt(handler=True)
            end, want = "signal", -abi.EINTR
        if not pending.done():
            pending.kill()
            return Mismatch(i, s, want, "still blocked", f"ending the wait by {end}")
        if pending.result() != want or emu.task.blocked is not None:
            return Mismatch(i, s, want, pending.result(), f"ending the wait by {end}: result")
        return None

    def _pi_verdict(self, uaddr: int, op: int, utime: int) -> str:
        """For a PI call: ``"run"`` (the host answers at once), ``"blocks"`` (a lock of
        the peer's word with a timeout in the future: the host must not run it) or
        ``"skip"`` (the word may name a task of the host's, or the lock would block for
        good)."""
        cmd = op & abi.FUTEX_CMD_MASK
        if cmd not in PI_LOCK_COMMANDS:
            return "run"  # UNLOCK_PI looks up no task
        if op & abi.FUTEX_CLOCK_REALTIME and cmd != abi.FUTEX_LOCK_PI2:
            return "run"  # ENOSYS (after the timeout, if any, was read)
        word = self.layout.word_at(uaddr)
        if word is None:
            return "run"  # misaligned, or the host cannot set FUTEX_WAITERS: no lookup
        tid = word & TID_MASK
        if tid in (0, self.self_tid) or tid >= TASKLESS_TID_MIN:
            return "run"
        if tid != self.peer_tid:
            self.skipped += 1
            self.pi_unsafe += 1
            return "skip"
        if cmd == abi.FUTEX_TRYLOCK_PI:
            return "run"  # EWOULDBLOCK
        if not utime:
            self.skipped += 1
            self.pi_blocking += 1
            return "skip"
        ts = self.layout.read_timespec(utime)
        if ts is False:
            return "run"  # EFAULT
        if ts is None:
            self.skipped += 1
            self.pi_blocking += 1
            return "skip"
        sec, nsec = ts
        if sec < 0 or not 0 <= nsec < abi.NSEC_PER_SEC:
            return "run"  # EINVAL
        rt = cmd == abi.FUTEX_LOCK_PI or bool(op & abi.FUTEX_CLOCK_REALTIME)
        now = time.time_ns() if rt else time.monotonic_ns()
        when = ktime_of(sec, nsec)
        if when < now:
            return "run"  # ETIMEDOUT
        self._pi_deadline = (ClockId.REALTIME if rt else ClockId.MONOTONIC, when)
        return "blocks"

    def _pi_blocked(
        self,
        emu: Emulated,
        i: int,
        c: Call,
        pending: PendingWait,
        args: tuple[int, int, int, int, int, int],
        host_blocks: bool,
    ) -> Mismatch | None:
        """The emulated PI lock blocked.  If the host would block too (``host_blocks``),
        prove it with an expired timeout (ETIMEDOUT: the word named a live owner), check
        the deadline's clock, that a signal restarts the wait, and end it; else report
        what the host answers."""
        uaddr, op, val, utime, uaddr2, val3 = args
        if not host_blocks:
            got = self.host(*args)
            pending.kill()
            return Mismatch(i, c, got, "blocks", "return value")
        expired = self.host(uaddr, op, val, self.layout.expired, uaddr2, val3)
        if expired != -abi.ETIMEDOUT:
            pending.kill()
            return Mismatch(
                i,
                c,
                f"does not block (expired timeout -> {expired!r})",
                "blocks",
                "blocking: host probe expects ETIMEDOUT",
            )
        # the deadline, as read before the call (the word may lie in the timespec)
        want_deadline = self._pi_deadline
        assert want_deadline is not None
        if pending.deadline != want_deadline:
            pending.kill()
            return Mismatch(i, c, want_deadline, pending.deadline, "blocking: deadline")
        # A signal restarts a PI lock (ERESTARTNOINTR): the whole call again, so the timeout
        # is read again, and the first attempt may have changed it (setting FUTEX_WAITERS in
        # a word that lies in the timespec).
        emu.task.interrupt(handler=True)
        clock_id, when = want_deadline
        ts = self.layout.read_timespec(utime)
        assert isinstance(ts, tuple)
        sec, nsec = ts
        if sec < 0 or not 0 <= nsec < abi.NSEC_PER_SEC:
            want_restart: object = -abi.EINVAL
        elif ktime_of(sec, nsec) <= emu.clock.now(clock_id):
            want_restart = -abi.ETIMEDOUT
        else:
            when = ktime_of(sec, nsec)
            want_restart = ("still blocked", (clock_id, when))
        got_restart = pending.result() if pending.done() else ("still blocked", pending.deadline)
        if got_restart != want_restart:
            if not pending.done():
                pending.kill()
            return Mismatch(
                i,
                c,
                want_restart,
                got_restart,
                "blocking: after a signal (ERESTARTNOINTR: the call runs again, timeout "
                f"read again: {{{sec}, {nsec}}})",
            )
        if pending.done():
            return None
        need = when - emu.clock.now(clock_id)
        if not c.interrupt and 0 <= need <= MAX_PI_ADVANCE_NS:
            emu.clock.advance(need)
            end, want_end = "advance", -abi.ETIMEDOUT
        else:
            pending.kill()
            end, want_end = "kill", -abi.EINTR
        if not pending.done():
            pending.kill()
            return Mismatch(i, c, want_end, "still blocked", f"ending the wait by {end}")
        if pending.result() != want_end or emu.task.blocked is not None:
            return Mismatch(i, c, want_end, pending.result(), f"ending the wait by {end}: result")
        return None


def futex2_pointers_safe(layout: Any, emu: Emulated, nr: int, args: Sequence[int]) -> bool:
    """Whether every pointer a futex2 call may make the host follow (the vector, each
    entry's word, the timeout) is in ``layout`` or unmapped (``layout.safe``)."""
    ptrs: list[tuple[int, int]] = []
    entries = 0
    if nr == SYS_WAITV:
        n = args[1] & U32
        entries = n if 1 <= n <= abi.FUTEX_WAITV_MAX else 0
        ptrs.append((args[3], 16))
    elif nr == SYS_REQUEUE:
        entries = 2
    else:
        ptrs.append((args[0], 8))
        if nr == SYS_WAIT:
            ptrs.append((args[4], 16))
    if entries and args[0]:
        ptrs.append((args[0], abi.FUTEX_WAITV_SIZE * entries))
        for k in range(entries):
            try:
                raw = emu.process.read(args[0] + abi.FUTEX_WAITV_SIZE * k, 16)
            except Exception:
                break
            ptrs.append((struct.unpack_from("<Q", raw, 8)[0], 8))
    return all(not a or layout.safe(a, n) for a, n in ptrs if a + n <= U64)
