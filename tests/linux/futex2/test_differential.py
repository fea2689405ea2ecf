"""futex_waitv / futex_wake / futex_wait / futex_requeue checked against the host kernel.

The facts the other futex2 tests (``test_waitv.py``, ``test_calls.py``) rely
on beyond their sources were measured on the host kernel (Linux 6.18); here they are
checked against it: a table of argument sets and a Hypothesis search, each call made on
the host and on the emulator with the same memory at the same addresses.
"""

from __future__ import annotations

import ctypes
import functools
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from futex.kernel import ClockId
from futex.linux import PendingWait, abi
from futex.linux.futex2 import FUTEX_NO_NODE
from futex.memory import PAGE_SIZE
from tests.linux.futex2.support import (
    ANY,
    CLOCK_MONOTONIC,
    CLOCK_REALTIME,
    CLOCK_TAI,
    INT_MAX,
    MPOL,
    NUMA,
    PRIV,
    SEC,
    SYS_REQUEUE,
    SYS_WAIT,
    SYS_WAITV,
    SYS_WAKE,
    U32,
    U32F,
    U64,
)
from tests.support import hostfutex as _hostfutex

# ==============================================================================================
# Differential checks against the host kernel
# ==============================================================================================

if _hostfutex.available():  # pragma: no branch
    from tests.differential.harness.emulated import Emulated
    from tests.differential.harness.futex2_calls import futex2_pointers_safe
    from tests.differential.harness.host import host_syscall
    from tests.differential.harness.host_layout import HostLayout, host_layout
    from tests.differential.harness.layout import (
        LAYOUT,
        PAGE,
        PAGE_INDEX,
        READABLE_PAGES,
        SLOT,
        timespec_page,
    )
    from tests.differential.harness.steps import At
    from tests.differential.harness.watchdog import WATCHDOG_SECONDS, Watchdog
else:  # pragma: no cover
    LAYOUT = ()
    PAGE = PAGE_SIZE
    PAGE_INDEX = {}
    SLOT = {}

needs_host = pytest.mark.skipif(
    not _hostfutex.available(), reason="needs the host kernel: Linux on x86-64"
)


def _page(name: str) -> int:
    return PAGE_INDEX[name]


@dataclass(frozen=True)
class Cur:
    """An entry value taken when the call is made: the word at the entry's address now (0
    if unreadable), xor ``flip``."""

    flip: int = 0


@dataclass(frozen=True)
class Entry:
    """A ``struct futex_waitv`` written into ARRAY before the call."""

    uaddr: Any  # At | int
    val: int | Cur = Cur()
    flags: int = U32F | PRIV
    reserved: int = 0


@dataclass(frozen=True)
class F2:
    """One futex2 system call; ``args`` may hold :class:`At` addresses and ``CUR`` (the
    word at ``args[0]`` now)."""

    nr: int
    args: tuple[Any, ...]
    entries: tuple[Entry, ...] = ()
    #: the node word of NUMA futexes: stores done before the call
    stores: tuple[tuple[Any, int], ...] = ()

    def __repr__(self) -> str:
        name = {SYS_WAITV: "futex_waitv", SYS_WAKE: "futex_wake", SYS_WAIT: "futex_wait"}.get(
            self.nr, "futex_requeue"
        )
        return f"{name}{self.args!r} entries={self.entries!r} stores={self.stores!r}"


CUR = "CUR"
#: Where the entries are written (room for 128 up to the end of the page).
ARRAY_OFF = 0x400


def array() -> Any:
    return At(_page("PRIV_RW"), ARRAY_OFF)


def ts_slot(name: str) -> Any:
    return At(_page("TIMESPEC"), 16 * SLOT[name])


def _peek_u32(emu: Any, addr: int) -> int:
    """The emulated word at ``addr`` as the harness sees it: a peek, which (unlike the
    kernel's reads) leaves the page's presence alone, as the host harness never reads
    execute-only pages."""
    if addr & 3:
        raise ValueError(f"misaligned {addr:#x}")
    value: int = struct.unpack("<I", emu.process.peek(addr, 4))[0]
    return value


class Futex2Differ:
    """Runs one futex2 call on the host and on a fresh emulated kernel over the same layout;
    reports the first disagreement as a string."""

    def __init__(self, layout: HostLayout, watchdog: Watchdog) -> None:
        self.layout = layout
        self.watchdog = watchdog
        self.calls = 0
        self.skipped = 0

    def resolve(self, a: Any) -> int:
        if isinstance(a, At):
            return self.layout.addr(a.page, a.off) & U64
        return int(a) & U64

    def run(self, call: F2) -> str | None:
        mono, rt = time.monotonic_ns(), time.time_ns()
        timespecs = timespec_page(mono, rt)
        layout = self.layout
        layout.reset(timespecs)
        emu = Emulated(layout.base, timespecs, mono, rt)
        for where, value in call.stores:
            a = self.resolve(where)
            layout.store(a, value)
            emu.process.store_u32(a, value)
        if call.entries:
            data = b""
            for e in call.entries:
                uaddr = self.resolve(e.uaddr)
                val = e.val
                if isinstance(val, Cur):
                    try:
                        val = _peek_u32(emu, uaddr) ^ val.flip
                    except Exception:
                        val = val.flip
                data += struct.pack("<QQII", val & U64, uaddr, e.flags & U32, e.reserved & U32)
            base = self.resolve(array())
            ctypes.memmove(base, data, len(data))
            emu.process.write(base, data)
        args = []
        for a in call.args:
            if a == CUR:
                try:
                    a = _peek_u32(emu, args[0])
                except Exception:
                    a = 0
            args.append(self.resolve(a))
        if not self._safe(emu, call.nr, args):
            self.skipped += 1
            return None
        self.calls += 1
        try:
            r = emu.task.syscall_nb(call.nr, *args)
        except Exception as exc:  # pragma: no cover - a failure report
            return f"{call!r}: the emulator raised {exc!r}"
        if isinstance(r, PendingWait):
            bad = self._blocked(emu, call, args, r)
        else:
            got = self._host(call.nr, args)
            bad = None if got == r else f"{call!r}: host {got}, emulator {r}"
        if bad is None:
            bad = self._compare_memory(emu, call)
        if bad is None:
            emu.process.futex.check_invariants()
            if emu.process.futex.stats().queued or emu.task.blocked is not None:
                bad = f"{call!r}: waiters left queued"
        return bad

    def _host(self, nr: int, args: list[int]) -> int | str:
        guard = nr in (SYS_WAITV, SYS_WAIT)
        if guard:
            self.watchdog.arm(WATCHDOG_SECONDS)
        try:
            r = host_syscall(nr, *args)
        finally:
            fired = self.watchdog.disarm() if guard else False
        return "BLOCKED" if fired and r == -abi.EINTR else r

    def _blocked(
        self, emu: Emulated, call: F2, args: list[int], pending: PendingWait
    ) -> str | None:
        # The host would block too: it must get as far with an already expired timeout.
        probe = list(args)
        if call.nr == SYS_WAITV:
            probe[3:5] = [self.layout.expired, CLOCK_MONOTONIC]
        else:
            probe[4:6] = [self.layout.expired, CLOCK_MONOTONIC]
        got = self._host(call.nr, probe)
        deadline = pending.deadline
        need = None if deadline is None else deadline[1] - emu.clock.now(ClockId(deadline[0]))
        if need is not None and 0 <= need <= 10 * SEC:
            emu.clock.advance(need)
            want = -abi.ETIMEDOUT
        else:
            emu.task.interrupt(handler=True)
            want = -abi.EINTR
        if got != -abi.ETIMEDOUT:
            return f"{call!r}: the emulator blocks, the host with an expired timeout answers {got}"
        if not pending.done() or pending.result() != want:
            return f"{call!r}: ending the emulated wait gave {pending!r}, expected {want}"
        return None

    def _safe(self, emu: Emulated, nr: int, args: list[int]) -> bool:
        return futex2_pointers_safe(self.layout, emu, nr, args)

    def _compare_memory(self, emu: Emulated, call: F2) -> str | None:
        for page in READABLE_PAGES:
            want = self.layout.read_page(page)
            got = emu.process.read(self.layout.addr(page), PAGE)
            if want != got:
                offs = [o for o in range(0, PAGE, 4) if want[o : o + 4] != got[o : o + 4]]
                return f"{call!r}: memory of {LAYOUT[page].name} differs at {offs[:4]}"
        return None


@pytest.fixture(scope="module")
def differ() -> Iterator[Futex2Differ]:
    if not _hostfutex.available():  # pragma: no cover
        pytest.skip("needs the host kernel: Linux on x86-64")
    with host_layout() as (layout, watchdog):
        yield Futex2Differ(layout, watchdog)


def _cases() -> list[Any]:
    if not _hostfutex.available():  # pragma: no cover
        return []
    P = _page
    f = At(P("PRIV_RW"), 0)
    g = At(P("PRIV_RW"), 8)
    sh = At(P("SHARED_RW"), 0)
    hole = At(P("HOLE"), 0)
    ro = At(P("PRIV_RO"), 16)
    exp = ts_slot("zero")
    fut = ts_slot("mono_future")
    rtf = ts_slot("rt_future")
    A = array()
    pv = U32F | PRIV
    no_node = ((At(P("PRIV_RW"), 4), FUTEX_NO_NODE), (At(P("PRIV_RW"), 12), FUTEX_NO_NODE))
    cases: dict[str, F2] = {
        # futex_waitv
        "waitv-ok-expired": F2(SYS_WAITV, (A, 2, 0, exp, 1), (Entry(f), Entry(g))),
        "waitv-blocks": F2(SYS_WAITV, (A, 2, 0, fut, 1), (Entry(f), Entry(sh, flags=U32F))),
        "waitv-blocks-forever": F2(SYS_WAITV, (A, 1, 0, 0, 99), (Entry(f),)),
        "waitv-blocks-realtime": F2(SYS_WAITV, (A, 1, 0, rtf, 0), (Entry(f),)),
        "waitv-128": F2(
            SYS_WAITV,
            (A, 128, 0, exp, 1),
            tuple(Entry(At(P("PRIV_RW"), 4 * (i % 200))) for i in range(128)),
        ),
        "waitv-129": F2(SYS_WAITV, (A, 129, 0, exp, 1), (Entry(f),)),
        "waitv-nr0": F2(SYS_WAITV, (A, 0, 0, exp, 1), (Entry(f),)),
        "waitv-nr-hi-bits": F2(SYS_WAITV, (A, (1 << 32) | 1, 0, exp, 1), (Entry(f),)),
        "waitv-flags": F2(SYS_WAITV, (A, 1, 1, exp, 1), (Entry(f),)),
        "waitv-flags-hi-bits": F2(SYS_WAITV, (A, 1, 1 << 32, exp, 1), (Entry(f),)),
        "waitv-null": F2(SYS_WAITV, (0, 1, 0, exp, 1)),
        "waitv-unmapped-array": F2(SYS_WAITV, (hole, 1, 0, exp, 1)),
        "waitv-straddling-array": F2(SYS_WAITV, (At(P("PRIV_RO"), PAGE - 12), 1, 0, exp, 1)),
        "waitv-clock-tai": F2(SYS_WAITV, (A, 1, 0, exp, CLOCK_TAI), (Entry(f),)),
        "waitv-clock-neg": F2(SYS_WAITV, (A, 1, 0, exp, -1), (Entry(f),)),
        "waitv-clock-hi-bits": F2(SYS_WAITV, (A, 1, 0, exp, (1 << 32) | 1), (Entry(f),)),
        "waitv-clock-tai-no-timeout": F2(SYS_WAITV, (A, 1, 0, 0, CLOCK_TAI), (Entry(f, Cur(1)),)),
        "waitv-bad-ts-ptr": F2(SYS_WAITV, (A, 1, 0, hole, 1), (Entry(f),)),
        "waitv-bad-ts-ptr-bad-clock": F2(SYS_WAITV, (A, 1, 0, hole, 5), (Entry(f),)),
        "waitv-ts-neg-nsec": F2(SYS_WAITV, (A, 1, 0, ts_slot("neg_nsec"), 1), (Entry(f),)),
        "waitv-ts-nsec-hi": F2(SYS_WAITV, (A, 1, 0, ts_slot("nsec_hi_bits"), 0), (Entry(f),)),
        "waitv-ts-straddle": F2(SYS_WAITV, (A, 1, 0, At(P("TIMESPEC"), PAGE - 8), 1), (Entry(f),)),
        "waitv-ts-bad-and-bad-entry": F2(
            SYS_WAITV, (A, 1, 0, ts_slot("neg_sec"), 1), (Entry(f, flags=0x10),)
        ),
        "waitv-no-futex32": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(f, flags=PRIV),)),
        "waitv-size-u64": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(f, flags=abi.FUTEX2_SIZE_U64),)),
        "waitv-reserved": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(f, reserved=1),)),
        "waitv-val-wide": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(f, 1 << 32),)),
        "waitv-uaddr-1": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(1),)),
        "waitv-uaddr-null": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(0),)),
        "waitv-uaddr-null-shared": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(0, flags=U32F),)),
        "waitv-mismatch": F2(SYS_WAITV, (A, 2, 0, exp, 1), (Entry(f), Entry(g, Cur(1)))),
        "waitv-parse-before-keys": F2(
            SYS_WAITV, (A, 2, 0, 0, 0), (Entry(hole, flags=U32F), Entry(g, flags=0x92))
        ),
        "waitv-keys-before-values": F2(
            SYS_WAITV, (A, 2, 0, 0, 0), (Entry(f, Cur(1)), Entry(At(P("PRIV_RW"), 9)))
        ),
        "waitv-keys-before-values-efault": F2(
            SYS_WAITV, (A, 2, 0, 0, 0), (Entry(f, Cur(1)), Entry(hole, flags=U32F))
        ),
        "waitv-value-fault-first": F2(SYS_WAITV, (A, 2, 0, 0, 0), (Entry(hole), Entry(g, Cur(1)))),
        "waitv-mismatch-first": F2(SYS_WAITV, (A, 2, 0, 0, 0), (Entry(f, Cur(1)), Entry(hole))),
        "waitv-shared-ro-anon": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(ro, flags=U32F),)),
        "waitv-numa": F2(
            SYS_WAITV,
            (A, 2, 0, exp, 1),
            (Entry(f, flags=pv | NUMA), Entry(g, flags=pv | NUMA)),
            no_node,
        ),
        "waitv-numa-mismatch-writes-all-nodes": F2(
            SYS_WAITV,
            (A, 2, 0, exp, 1),
            (Entry(f, Cur(1), pv | NUMA), Entry(g, flags=pv | NUMA)),
            no_node,
        ),
        "waitv-numa-misaligned": F2(
            SYS_WAITV, (A, 1, 0, exp, 1), (Entry(At(P("PRIV_RW"), 4), flags=pv | NUMA),)
        ),
        "waitv-mpol": F2(SYS_WAITV, (A, 1, 0, exp, 1), (Entry(f, flags=pv | MPOL),), no_node),
        # futex_wake
        "wake-ok": F2(SYS_WAKE, (f, ANY, 1, pv)),
        "wake-shared": F2(SYS_WAKE, (sh, ANY, 1, U32F)),
        "wake-nr0-bad-addr": F2(SYS_WAKE, (1, ANY, 0, pv)),
        "wake-nr0-hole-shared": F2(SYS_WAKE, (hole, ANY, 0, U32F)),
        "wake-nr0-hole-private": F2(SYS_WAKE, (hole, ANY, 0, pv)),
        "wake-nr-neg": F2(SYS_WAKE, (f, ANY, -1, pv)),
        "wake-mask0": F2(SYS_WAKE, (1, 0, 1, pv)),
        "wake-mask-wide": F2(SYS_WAKE, (f, 1 << 32, 1, pv)),
        "wake-size-u8": F2(SYS_WAKE, (f, ANY, 1, PRIV)),
        "wake-bad-bit": F2(SYS_WAKE, (f, ANY, 1, pv | 0x100)),
        "wake-flags-hi-bits": F2(SYS_WAKE, (f, ANY, 1, (1 << 32) | pv)),
        "wake-numa": F2(SYS_WAKE, (f, ANY, 1, pv | NUMA), (), no_node),
        "wake-numa-shared-file": F2(
            SYS_WAKE,
            (At(P("FILE_SHARED_RW"), 8), ANY, 1, U32F | NUMA),
            (),
            ((At(P("FILE_SHARED_RW"), 12), FUTEX_NO_NODE),),
        ),
        "wake-numa-ro-file": F2(SYS_WAKE, (At(P("FILE_SHARED_RO"), 0), ANY, 1, U32F | NUMA)),
        "wake-numa-misaligned": F2(SYS_WAKE, (At(P("PRIV_RW"), 4), ANY, 1, pv | NUMA)),
        "wake-numa-bad-node": F2(SYS_WAKE, (f, ANY, 1, pv | NUMA), (), ((At(P("PRIV_RW"), 4), 1),)),
        "wake-numa-hole": F2(SYS_WAKE, (hole, ANY, 1, pv | NUMA)),
        "wake-numa-exec": F2(SYS_WAKE, (At(P("EXEC_PRIV"), 0), ANY, 1, pv | NUMA)),
        "wake-mpol-numa": F2(SYS_WAKE, (f, ANY, 1, pv | NUMA | MPOL), (), no_node),
        # futex_wait
        "wait-expired": F2(SYS_WAIT, (f, CUR, ANY, pv, exp, 1)),
        "wait-blocks": F2(SYS_WAIT, (f, CUR, ANY, pv, fut, 1)),
        "wait-blocks-shared-file": F2(SYS_WAIT, (At(P("FILE_SHARED_RW"), 0), CUR, 1, U32F, 0, 0)),
        "wait-mismatch": F2(SYS_WAIT, (f, 0x1234, ANY, pv, exp, 1)),
        "wait-mask0-bad-ts": F2(SYS_WAIT, (f, CUR, 0, pv, hole, 1)),
        "wait-mask0-bad-clock": F2(SYS_WAIT, (f, CUR, 0, pv, exp, 3)),
        "wait-mask0-misaligned": F2(SYS_WAIT, (1, 0, 0, pv, exp, 1)),
        "wait-val-wide": F2(SYS_WAIT, (f, 1 << 32, ANY, pv, hole, 1)),
        "wait-mask-wide": F2(SYS_WAIT, (f, 0, 1 << 32, pv, hole, 1)),
        "wait-clock-no-timeout": F2(SYS_WAIT, (f, 0x1234, ANY, pv, 0, 7)),
        "wait-numa": F2(SYS_WAIT, (f, CUR, ANY, pv | NUMA, exp, 0), (), no_node),
        "wait-numa-mismatch": F2(SYS_WAIT, (f, 0x1234, ANY, pv | NUMA, exp, 0), (), no_node),
        "wait-hole-private": F2(SYS_WAIT, (hole, 0, ANY, pv, exp, 1)),
        # futex_requeue
        "requeue-ok": F2(SYS_REQUEUE, (A, 0, 1, 1), (Entry(f), Entry(g))),
        "requeue-shared": F2(
            SYS_REQUEUE, (A, 0, 1, 1), (Entry(sh, flags=U32F), Entry(sh, flags=U32F))
        ),
        "requeue-mismatch": F2(SYS_REQUEUE, (A, 0, 1, 1), (Entry(f, Cur(1)), Entry(g))),
        "requeue-mixed": F2(SYS_REQUEUE, (A, 0, 1, 1), (Entry(f), Entry(g, flags=U32F))),
        "requeue-mixed-fault": F2(SYS_REQUEUE, (A, 0, 1, 1), (Entry(hole, flags=U32F), Entry(g))),
        "requeue-numa-one-side": F2(
            SYS_REQUEUE, (A, 0, 1, 1), (Entry(f, flags=pv | NUMA), Entry(g)), no_node
        ),
        "requeue-numa": F2(
            SYS_REQUEUE,
            (A, 0, 1, 1),
            (Entry(f, Cur(1), pv | NUMA), Entry(g, flags=pv | NUMA)),
            no_node,
        ),
        "requeue-numa-neg": F2(
            SYS_REQUEUE,
            (A, 0, -1, 1),
            (Entry(f, flags=pv | NUMA), Entry(g, flags=pv | NUMA)),
            no_node,
        ),
        "requeue-flags": F2(SYS_REQUEUE, (A, 1, 1, 1), (Entry(f), Entry(g))),
        "requeue-flags-hi": F2(SYS_REQUEUE, (A, 1 << 32, 1, 1), (Entry(f), Entry(g))),
        "requeue-null": F2(SYS_REQUEUE, (0, 0, 1, 1)),
        "requeue-neg-wake": F2(SYS_REQUEUE, (A, 0, -1, 1), (Entry(f), Entry(g))),
        "requeue-neg-requeue": F2(SYS_REQUEUE, (A, 0, 1, (1 << 32) - 1), (Entry(f), Entry(g))),
        "requeue-count-hi-bits": F2(SYS_REQUEUE, (A, 0, (1 << 32) | 5, 1), (Entry(f), Entry(g))),
        "requeue-val2-wide": F2(SYS_REQUEUE, (A, 0, 1, 1), (Entry(f), Entry(g, 1 << 32))),
        "requeue-key2-misaligned": F2(
            SYS_REQUEUE, (A, 0, 1, 1), (Entry(f, Cur(1)), Entry(At(P("PRIV_RW"), 10)))
        ),
        "requeue-private-hole-compare": F2(SYS_REQUEUE, (A, 0, 1, 1), (Entry(hole), Entry(g))),
        "requeue-private-hole-2": F2(SYS_REQUEUE, (A, 0, 1, 1), (Entry(f), Entry(hole))),
        "requeue-second-entry-unreadable": F2(SYS_REQUEUE, (At(P("PRIV_RO"), PAGE - 24), 0, 1, 1)),
    }
    return [pytest.param(c, id=name) for name, c in cases.items()]


@needs_host
@pytest.mark.parametrize("call", _cases())
def test_differential_table(differ: Futex2Differ, call: F2) -> None:
    """Single-task validation cases of the four calls, on the host and the emulator
    (Linux 6.18 is the oracle): same return value, same memory afterwards (node words)."""
    bad = differ.run(call)
    assert bad is None, bad


# -- Hypothesis --------------------------------------------------------------------------------


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, picked with the given integer weights (Hypothesis merges
    repeated ``one_of`` branches, so repetition would not weight them)."""
    index = [i for i, (w, _) in enumerate(choices) for _ in range(w)]
    return st.sampled_from(index).flatmap(lambda i: choices[i][1])


@functools.cache
def _strategies() -> st.SearchStrategy[F2]:
    P = _page
    #: words that usually work: writable pages below ARRAY_OFF, 8-byte aligned (NUMA)
    good_pages = ["PRIV_RW", "SHARED_RW", "FILE_SHARED_RW", "FILE_PRIV_RW", "WRITE_ONLY_PRIV"]
    good_uaddr = st.builds(
        At,
        st.sampled_from(good_pages).map(P),
        st.integers(0, ARRAY_OFF // 8 - 1).map(lambda i: 8 * i),
    )
    any_offset = weighted(
        (2, st.sampled_from([0, 4, 8, 12, 16, PAGE - 8, PAGE - 4])),
        (2, st.sampled_from([1, 2, 3, 6, PAGE - 2])),
        (1, st.integers(0, PAGE - 1)),
    )
    layout_uaddr = st.builds(At, st.sampled_from([s.name for s in LAYOUT]).map(P), any_offset)
    special = st.sampled_from(
        [0, 1, 4, 8, 0x1000, 0x7FFFFFFFF000, 0x7FFFFFFFEFF8, 1 << 47, U64 - 7]
    )
    uaddrs = weighted((12, good_uaddr), (2, layout_uaddr), (1, special))
    good_flags = st.builds(
        lambda p, n, m: U32F | p | n | m,
        st.sampled_from([0, PRIV]),
        weighted((3, st.just(0)), (1, st.just(NUMA))),
        weighted((5, st.just(0)), (1, st.just(MPOL))),
    )
    bad_flags = weighted(
        (2, st.sampled_from([0, 1, 3, PRIV, PRIV | 1, PRIV | 3, 0x10 | U32F, 0x40 | U32F])),
        (1, st.sampled_from([0x100, 0x80000000, 0xFFFFFFFF]).map(lambda b: b | U32F)),
        (1, st.integers(0, U32)),
    )
    flags2 = weighted((12, good_flags), (1, bad_flags))
    vals = weighted(
        (8, st.just(Cur())),
        (2, st.just(Cur(1))),
        (1, st.sampled_from([0, 1, U32, 1 << 32, U64, Cur(1 << 32)])),
    )
    reserved = weighted((15, st.just(0)), (1, st.sampled_from([1, 0x80000000])))
    entries = st.builds(Entry, uaddrs, vals, flags2, reserved)
    timeouts = weighted(
        (3, st.just(0)),
        (3, st.sampled_from(["zero", "one_sec", "mono_past", "rt_past"]).map(ts_slot)),
        (2, st.sampled_from(["mono_future", "rt_future", "mono_year"]).map(ts_slot)),
        (1, st.sampled_from(["neg_sec", "neg_nsec", "nsec_1e9", "nsec_hi_bits"]).map(ts_slot)),
        (1, st.sampled_from([At(P("HOLE"), 0), At(P("TIMESPEC"), PAGE - 8), 8, 1])),
    )
    clocks = weighted(
        (8, st.sampled_from([CLOCK_REALTIME, CLOCK_MONOTONIC])),
        (1, st.sampled_from([2, 3, 11, -1, (1 << 32) | 1, (1 << 32)])),
    )
    counts = weighted(
        (6, st.sampled_from([0, 1, 2, INT_MAX])),
        (1, st.sampled_from([-1, 1 << 32, 1 << 31, (1 << 32) | 1])),
    )
    node_words = st.integers(0, ARRAY_OFF // 8 - 1).map(lambda i: At(P("PRIV_RW"), 8 * i + 4))
    node_stores = st.lists(
        st.tuples(
            node_words,
            weighted(
                (4, st.sampled_from([FUTEX_NO_NODE, 0])), (1, st.sampled_from([1, 0xFFFFFFFE]))
            ),
        ),
        max_size=4,
    ).map(tuple)
    bad_waiters = st.sampled_from(
        [0, At(P("HOLE"), 0), At(P("PRIV_RO"), PAGE - 12), At(P("PRIV_RW"), ARRAY_OFF + 4), 8]
    )
    waiters = weighted((12, st.just(array())), (1, bad_waiters))
    syscall_flags = weighted((12, st.just(0)), (1, st.sampled_from([1, 1 << 32, 0x80, U32])))

    def waitv_call(
        w: Any, nr: int | None, fl: int, to: Any, ck: int, es: list[Entry], ns: Any
    ) -> F2:
        return F2(SYS_WAITV, (w, len(es) if nr is None else nr, fl, to, ck), tuple(es), ns)

    waitv = st.builds(
        waitv_call,
        waiters,
        weighted((10, st.none()), (1, st.sampled_from([0, 1, 128, 129, (1 << 32) | 1, U32]))),
        syscall_flags,
        timeouts,
        clocks,
        weighted(
            (4, st.lists(entries, min_size=1, max_size=3)),
            (1, st.lists(entries, min_size=4, max_size=20)),
        ),
        node_stores,
    )
    masks = weighted(
        (6, st.just(ANY)),
        (2, st.sampled_from([1, 0x80000000])),
        (1, st.sampled_from([0, 1 << 32, U64])),
    )
    wake = st.builds(
        lambda a, m, n, fl, ns: F2(SYS_WAKE, (a, m, n, fl), (), ns),
        uaddrs,
        masks,
        counts,
        flags2,
        node_stores,
    )
    wait = st.builds(
        lambda a, v, m, fl, to, ck, ns: F2(SYS_WAIT, (a, v, m, fl, to, ck), (), ns),
        uaddrs,
        weighted((5, st.just(CUR)), (1, st.sampled_from([0, 1, 1 << 32]))),
        masks,
        flags2,
        timeouts,
        clocks,
        node_stores,
    )

    def requeue_call(
        w: Any, fl: int, a: int, b: int, e1: Entry, e2: Entry, same: bool, ns: Any
    ) -> F2:
        e2 = Entry(e2.uaddr, e2.val, e1.flags if same else e2.flags, e2.reserved)
        return F2(SYS_REQUEUE, (w, fl, a, b), (e1, e2), ns)

    requeue = st.builds(
        requeue_call,
        waiters,
        syscall_flags,
        counts,
        counts,
        entries,
        entries,
        weighted((5, st.just(True)), (1, st.just(False))),
        node_stores,
    )
    return weighted((4, waitv), (2, wake), (2, wait), (2, requeue))


@needs_host
@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_differential_hypothesis(differ: Futex2Differ, data: st.DataObject) -> None:
    """Hypothesis over flags, nr, clockid, timeouts and entry fields of the four calls:
    the host's answer and memory are the emulator's."""
    call = data.draw(_strategies(), label="call")
    bad = differ.run(call)
    assert bad is None, bad
