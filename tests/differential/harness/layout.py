"""The layout: the pages both kernels map at the same addresses, and what the pages hold.

``LAYOUT`` names each page with its protection, whether Python may read it and whether the
harness may store into it; ``pattern``, ``file_a`` / ``file_b`` / ``file_c`` and
``pi_page`` give their contents (words from ``PALETTE``; PI words from ``PI_WORDS``, some
naming a task known only at run time: :class:`TidWord`); ``timespec_page`` fills the
TIMESPEC page's slots (``SLOT``).  The host reserves this layout (``host_layout``) and the
emulated kernel builds the same (``emulated``).

The layout (``LAYOUT``) is reserved once on the host with MAP_FIXED_NOREPLACE; each sequence
starts from a fresh emulated kernel built to match, after the host's writable pages were
restored.  Addresses in a sequence are symbolic (``steps.At``: a layout page and an offset, or
a plain int), resolved against the base the host reservation got.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

from futex.linux import abi
from futex.memory import PAGE_SIZE, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE

__all__ = [
    "FILE_A_SIZE",
    "FILE_B_SIZE",
    "FILE_C_SIZE",
    "LAST_SLOT_OFFSET",
    "LAYOUT",
    "NO_TASK_TIDS",
    "NPAGES",
    "NSLOTS",
    "PAGE",
    "PAGE_INDEX",
    "PALETTE",
    "PI_UNALIGNED",
    "PI_WORDS",
    "P_COWED",
    "P_EXEC_SHARED",
    "P_PRIV_RO",
    "P_PRIV_RW",
    "P_SHARED_RO",
    "P_SHARED_RW",
    "P_WRITE_ONLY_PRIV",
    "P_WRITE_ONLY_SHARED",
    "READABLE_PAGES",
    "RW",
    "SLOT",
    "TASKLESS_TID_MIN",
    "TID_MASK",
    "U32",
    "U64",
    "PageSpec",
    "TidWord",
    "file_a",
    "file_b",
    "file_c",
    "ktime_of",
    "pattern",
    "pi_page",
    "timespec_page",
]


U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF
PAGE = PAGE_SIZE
RW = PROT_READ | PROT_WRITE
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
#: Word values the pages are filled with; generated values come from here often, so that
#: value comparisons match.
PALETTE = (0, 1, 2, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 3, 0xFFFFFFFE, 42, 0x10000)


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

FILE_A_SIZE = PAGE
FILE_B_SIZE = 2 * PAGE
FILE_C_SIZE = 0x800


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
