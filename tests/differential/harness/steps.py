"""The symbolic steps: what a sequence is made of, and how its symbols resolve.

A sequence is a list of :data:`Step` s: :class:`Store` (a word stored on both sides),
:class:`Call` (futex(2)) and :class:`Sys2` (a futex2 call).  Their addresses are symbolic
(:class:`At`: a layout page and an offset, resolved against the base the host reservation
got; :func:`word` and :func:`ts` name one), their values may be taken when the call is
made (:class:`Current`), and a blocked call may be ended by the peer's :class:`PeerCall` s.
:class:`Symbols` resolves them for a run.  With them: the system call numbers and names,
the PI and requeue-PI command families.  A disagreement is reported by ``mismatch``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from futex.linux import abi
from tests.differential.harness.layout import LAYOUT, PAGE_INDEX, SLOT, U32, U64, TidWord

if TYPE_CHECKING:
    from tests.differential.harness.emulated import Emulated
    from tests.differential.harness.host_layout import HostLayout

__all__ = [
    "CLOCK_MONOTONIC_ID",
    "CLOCK_REALTIME_ID",
    "FUTEX2_NAMES",
    "PEER_SIGNAL",
    "PI_COMMANDS",
    "PI_LOCK_COMMANDS",
    "REQUEUE_PI_COMMANDS",
    "SYS_FUTEX",
    "SYS_REQUEUE",
    "SYS_WAIT",
    "SYS_WAITV",
    "SYS_WAKE",
    "Addr",
    "At",
    "Call",
    "Current",
    "PeerCall",
    "Step",
    "Store",
    "Symbols",
    "Sys2",
    "Value",
    "WaitvEntry",
    "call_name",
    "describe_op",
    "ts",
    "word",
]


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
CLOCK_REALTIME_ID = 0
CLOCK_MONOTONIC_ID = 1
#: Requeue-PI: WAIT_REQUEUE_PI blocks like WAIT_BITSET (a signal restarts it); a single
#: task's CMP_REQUEUE_PI never finds a waiter (unless the peer makes it: ``Call.peer``).
REQUEUE_PI_COMMANDS = frozenset({abi.FUTEX_WAIT_REQUEUE_PI, abi.FUTEX_CMP_REQUEUE_PI})
#: The PI lock commands (the requeue-PI ones are :data:`REQUEUE_PI_COMMANDS`).
PI_COMMANDS = frozenset(
    {abi.FUTEX_LOCK_PI, abi.FUTEX_UNLOCK_PI, abi.FUTEX_TRYLOCK_PI, abi.FUTEX_LOCK_PI2}
)
#: PI commands that look up the task a word names (and, but TRYLOCK_PI, may block on it).
PI_LOCK_COMMANDS = frozenset({abi.FUTEX_LOCK_PI, abi.FUTEX_TRYLOCK_PI, abi.FUTEX_LOCK_PI2})


@dataclass(frozen=True)
class At:
    """A layout address: ``page`` (an index into ``LAYOUT``) plus ``off`` bytes (may be
    negative or past the page)."""

    page: int
    off: int

    def __repr__(self) -> str:
        return f"At({LAYOUT[self.page].name}, {self.off:#x})"


Addr = At | int


def word(page: str, off: int = 0) -> At:
    """The address ``off`` bytes into the layout page named ``page``."""
    return At(PAGE_INDEX[page], off)


def ts(slot: str) -> At:
    """The TIMESPEC page's slot named ``slot`` (``SLOT``)."""
    return At(PAGE_INDEX["TIMESPEC"], 16 * SLOT[slot])


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


def call_name(nr: int, args: Sequence[int]) -> str:
    """A call's name, for the counts of outcomes: the futex(2) command, or the futex2 call."""
    if nr == PEER_SIGNAL:
        return "signal"
    if nr == SYS_FUTEX:
        return describe_op(args[1])
    return FUTEX2_NAMES.get(nr, f"syscall {nr}")


class Symbols:
    """Resolves a run's symbolic registers and values: layout addresses against the base
    the host reservation got, task words against the caller's and the peer's tids, and
    :class:`Current` values against the emulated memory now."""

    def __init__(self, layout: HostLayout) -> None:
        assert layout.peer is not None
        self.layout = layout
        self.self_tid = layout.self_tid
        self.peer_tid = layout.peer.tid

    def resolve(self, a: Addr) -> int:
        """An address: a layout address at the reservation's base, or the int itself."""
        if isinstance(a, At):
            return self.layout.addr(a.page, a.off) & U64
        return a & U64

    def word(self, v: int | TidWord) -> int:
        """A word to store: a task's tid (with its bits), or the int itself."""
        if isinstance(v, TidWord):
            return v.resolve(self.self_tid, self.peer_tid)
        return v & U32

    def arg(self, emu: Emulated, a: Addr | Current) -> int:
        """A register value: an address, an int, or the word somewhere now."""
        return self.value(emu, a) if isinstance(a, Current) else self.resolve(a)

    def value(self, emu: Emulated, v: Value) -> int:
        """A value register: the int itself, or the emulated word now (0 if it cannot be
        read), xor the flip."""
        if isinstance(v, int):
            return v & U64
        try:
            addr = self.resolve(v.addr)
            # peek: the harness must not make a page present (execute-only keys need it)
            cur = 0 if addr & 3 else struct.unpack("<I", emu.process.peek(addr, 4))[0]
        except Exception:
            cur = 0
        return (cur ^ v.flip) & U64
