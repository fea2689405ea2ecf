"""Register values for the fuzzed calls: random, near-valid, and pointers into the pages.

:class:`ArgGen` draws each argument by its role (a futex word, a command, a count, a
timespec pointer, a waitv array...) from a mix of fully random 64-bit values, small ints,
-1, upper-half garbage on 32-bit arguments and values near the valid ones; and rewrites the
memory they point at between batches, as a careless guest would.
"""

from __future__ import annotations

import random
import time

from futex.integrations.qiling.fuzz.guest import (
    EDGES,
    HELPER_TIDS,
    HOLE,
    HOT,
    KERNEL_HALF,
    MASK64,
    NONE,
    OUT,
    PAGE,
    RO,
    RO_WORDS,
    ROBUST,
    RW2,
    SCRATCH,
    TIMESPECS,
    TS,
    U32,
    U64,
    WAITV,
    WAITV_ENTRY,
    WORDS,
    Harness,
)
from futex.linux import abi

__all__ = ["ArgGen"]


class ArgGen:
    """The registers of one fuzzed call (:meth:`regs`), and the memory they point at
    (:meth:`refresh`, between batches), drawn from ``rng`` for the guest behind ``h``."""

    def __init__(self, rng: random.Random, h: Harness) -> None:
        self.rng, self.h = rng, h
        self.tids = (h.main_tid, *HELPER_TIDS)

    def wild(self) -> int:
        rng = self.rng
        return rng.choice((
            rng.getrandbits(64), rng.getrandbits(32), rng.randrange(0, 64), MASK64,
            MASK64 - rng.randrange(0, 4096), 1 << 63, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
            KERNEL_HALF + rng.getrandbits(40), rng.getrandbits(64) | 0xFFFF_FFFF_0000_0000,
        ))  # fmt: skip

    def ptr(self) -> int:
        rng, x = self.rng, self.rng.random()
        if x < 0.35:
            return rng.choice(HOT)
        if x < 0.55:
            return rng.choice(WORDS)
        if x < 0.62:
            return rng.choice(RO_WORDS)
        if x < 0.67:
            return rng.choice(WORDS) + rng.randrange(1, 4)
        if x < 0.79:
            return rng.choice(EDGES)
        if x < 0.84:
            return self.h.stack - rng.randrange(0, 512, 4)
        if x < 0.88:
            return RW2 + rng.randrange(0, PAGE, 4)
        return self.wild()

    def out(self) -> int:
        x = self.rng.random()
        if x < 0.5:
            return OUT + self.rng.randrange(0, 256, 8)
        return self.ptr() if x < 0.9 else SCRATCH + PAGE - self.rng.choice((4, 8, 12))

    def value(self, addr: int) -> int:
        cur = self.h.word(addr)
        if cur is not None and self.rng.random() < 0.55:
            return cur | (self.rng.getrandbits(32) << 32 if self.rng.random() < 0.1 else 0)
        return self.word_value() if self.rng.random() < 0.6 else self.wild()

    def word_value(self) -> int:
        rng = self.rng
        tid = rng.choice(self.tids)
        waiters, died = abi.FUTEX_WAITERS, abi.FUTEX_OWNER_DIED
        return rng.choice((0, 1, 2, tid, tid | waiters, tid | died, waiters, died, 0xFFFFFFFF,
                           4242, rng.getrandbits(32), waiters | died))  # fmt: skip

    def count(self) -> int:
        if self.rng.random() < 0.7:
            return self.rng.choice((0, 1, 1, 1, 2, 3, 8, 0x7FFFFFFF))
        return self.rng.choice((0x80000000, 0xFFFFFFFF, MASK64, self.rng.getrandbits(32),
                                self.rng.getrandbits(64)))  # fmt: skip

    def mask(self) -> int:
        if self.rng.random() < 0.5:
            return 0xFFFFFFFF
        return self.rng.choice((0, 1, 2, 0x80000000, self.rng.getrandbits(32),
                                self.rng.getrandbits(64)))  # fmt: skip

    def futex_op(self) -> int:
        rng = self.rng
        cmd = rng.randrange(14) if rng.random() < 0.93 else rng.choice((14, 15, 127, 0x7F))
        op = cmd | (abi.FUTEX_PRIVATE_FLAG if rng.random() < 0.6 else 0)
        op |= abi.FUTEX_CLOCK_REALTIME if rng.random() < 0.12 else 0
        if rng.random() < 0.05:
            op |= rng.getrandbits(32) & ~0x1FF
        if rng.random() < 0.05:
            op |= rng.getrandbits(32) << 32
        return op

    def wake_op(self) -> int:
        rng = self.rng
        op = rng.randrange(5) | (8 if rng.random() < 0.2 else 0)
        cmp = rng.randrange(6)
        if rng.random() < 0.1:
            op, cmp = rng.randrange(16), rng.randrange(16)
        return (op << 28) | (cmp << 24) | (rng.getrandbits(12) << 12) | rng.choice(
            (0, 1, rng.getrandbits(12)))

    def f2flags(self) -> int:
        rng = self.rng
        base = 2 if rng.random() < 0.85 else rng.choice((0, 1, 3))
        base |= abi.FUTEX2_PRIVATE if rng.random() < 0.6 else 0
        base |= 0 if rng.random() < 0.85 else rng.choice((abi.FUTEX2_NUMA, abi.FUTEX2_MPOL))
        return base if rng.random() < 0.93 else rng.getrandbits(rng.choice((8, 32, 64)))

    def clockid(self) -> int:
        rng = self.rng
        if rng.random() < 0.6:
            return rng.choice((0, 1))
        return rng.choice((2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16,
                           0xFFFFFFFF, 0xFFFFFFFA, (rng.getrandbits(32) << 32) | 1,
                           rng.getrandbits(32), rng.getrandbits(64)))  # fmt: skip

    def timespec(self) -> int:
        x = self.rng.random()
        if x < 0.25:
            return 0
        if x < 0.8:
            return TIMESPECS + 16 * self.rng.randrange(16)
        if x < 0.9:
            return self.rng.choice((RO + PAGE - 8, SCRATCH + PAGE - 8, HOLE - 8, NONE,
                                    RW2 + PAGE - 8, TIMESPECS + 4))  # fmt: skip
        return self.wild()

    def waitv(self) -> int:
        x = self.rng.random()
        if x < 0.8:
            return WAITV + 24 * 8 * self.rng.randrange(3) + 24 * self.rng.choice((0, 0, 1, 6))
        return self.ptr()

    def robust_head(self) -> int:
        return ROBUST if self.rng.random() < 0.7 else self.ptr()

    def regs(self, nr: int) -> tuple[int, ...]:
        rng = self.rng
        if nr == abi.SYS_futex:
            uaddr, op = self.ptr(), self.futex_op()
            utime = rng.choice((self.timespec(), self.timespec(), self.count()))
            val3 = rng.choice((self.value(uaddr), self.wake_op(), self.mask(), self.wild()))
            val = rng.choice((self.value(uaddr), self.value(uaddr), self.count()))
            regs: tuple[int, ...] = (uaddr, op, val, utime, self.ptr(), val3)
        elif nr == abi.SYS_set_robust_list:
            regs = (self.robust_head(), rng.choice((24, 24, 24, 0, 23, 25, self.count())))
        elif nr == abi.SYS_get_robust_list:
            pid = rng.choice((0, 0, *self.tids, 1996, 1, 99999, self.count()))
            regs = (pid, self.out(), self.out())
        elif nr == abi.SYS_futex_waitv:
            n = rng.choice((1, 1, 2, 2, 3, 8, 0, 128, 129, self.count()))
            regs = (self.waitv(), n, 0 if rng.random() < 0.85 else self.count(), self.timespec(),
                    self.clockid())  # fmt: skip
        elif nr == abi.SYS_futex_wake:
            regs = (self.ptr(), self.mask(), self.count(), self.f2flags())
        elif nr == abi.SYS_futex_wait:
            uaddr = self.ptr()
            regs = (uaddr, self.value(uaddr), self.mask(), self.f2flags(), self.timespec(),
                    self.clockid())  # fmt: skip
        elif nr == abi.SYS_futex_requeue:
            regs = (self.waitv(), 0 if rng.random() < 0.85 else self.count(), self.count(),
                    self.count())  # fmt: skip
        elif nr == 218:
            regs = (rng.choice((0, self.ptr(), self.out())),)
        elif nr == 228:
            regs = (self.clockid(), self.out())
        elif nr == 230:
            flags = rng.choice((0, 0, 1, 1, 2, self.count()))
            regs = (self.clockid(), flags, self.timespec(), self.out())
        elif nr == 35:
            regs = (self.timespec(), self.out())
        else:
            regs = tuple(self.wild() for _ in range(6))
        return tuple(self.wild() if rng.random() < 0.04 else v for v in regs)

    # -- memory the arguments point at ------------------------------------------------------

    def refresh(self) -> None:
        """Scribble some words, rebuild timespecs (near deadlines stay near), waitv
        arrays and the robust list, as a careless guest would."""
        rng, h = self.rng, self.h
        for addr in WORDS:
            if rng.random() < 0.08:
                h.poke(addr, U32.pack(self.word_value()))
        now_m, now_r = time.clock_gettime_ns(1), time.clock_gettime_ns(0)
        nears = [now_m + rng.randrange(0, 3_000_000), now_r + rng.randrange(0, 3_000_000),
                 now_m - 1_000_000_000]  # fmt: skip
        specs = [(0, 0), (0, 1000), (0, 999_999_999), (0, 10**9), (-1, 0), (0, -1),
                 *(divmod(n, 10**9) for n in nears), ((1 << 63) - 1, 999_999_999), (1, 0),
                 (abi.KTIME_SEC_MAX, 0), (0, rng.randrange(0, 2_000_000)),
                 (rng.getrandbits(63) - rng.getrandbits(62), rng.getrandbits(63)), (0, 300_000)]
        h.poke(TIMESPECS, b"".join(TS.pack(s, n) for s, n in specs[:16]))
        entries = []
        for _ in range(24):
            addr = rng.choice(WORDS) if rng.random() < 0.8 else self.ptr()
            cur = h.word(addr)
            val = cur if cur is not None and rng.random() < 0.7 else self.word_value()
            flags = 2 | abi.FUTEX2_PRIVATE if rng.random() < 0.6 else 2
            if rng.random() < 0.1:
                flags = rng.choice((0, 3, 2 | abi.FUTEX2_NUMA, rng.getrandbits(32)))
            reserved = 0 if rng.random() < 0.98 else rng.getrandbits(32)
            if rng.random() < 0.02:
                val |= rng.getrandbits(32) << 32
            entries.append(WAITV_ENTRY.pack(val, addr & MASK64, flags, reserved))
        h.poke(WAITV, b"".join(entries))
        h.poke(ROBUST, self.robust_list())

    def robust_list(self, *, tidy: bool = False) -> bytes:
        """struct robust_list_head at ROBUST, its 8 entries after it: ``next`` links
        (some with bit 0, the PI flag), a futex_offset reaching the words, a pending op."""
        rng = self.rng
        entry = [ROBUST + 32 + 16 * i for i in range(8)]
        if tidy:  # entry i's lock word: WORDS[4 * i]; some entries PI (bit 0)
            offset = WORDS[0] - entry[0]
        else:
            offset = rng.choice(WORDS) - entry[0] if rng.random() < 0.7 else self.wild()
        links = []
        for i in range(8):
            nxt = entry[i + 1] if i < 7 else ROBUST
            if tidy and rng.random() < 0.3:
                nxt |= 1
            elif not tidy and rng.random() < 0.1:
                nxt = rng.choice((self.ptr(), entry[rng.randrange(8)], nxt | 1, 0))
            links.append(U64.pack(nxt & MASK64) + bytes(8))
        pending = rng.choice((0, entry[3], entry[5] | 1, self.ptr()))
        head = U64.pack(entry[0]) + U64.pack(offset & MASK64) + U64.pack(pending & MASK64)
        return head + bytes(8) + b"".join(links)
