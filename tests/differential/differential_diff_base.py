"""Differential harness, the differ's ground floor: :class:`DifferBase` holds the state and
the counters of a run, resolves symbolic registers and values, makes the host's calls under
the watchdog (``BLOCKED`` when one blocked) and reads deadlines.

The differ (:class:`Differ`) is one class built in layers, each module using only what is
below it::

    differential_diff_base    DifferBase: state, registers, host calls, deadlines
      <- differential_diff_peer    PeerEnding: a blocked call ended by the peer's calls
           <- differential_diff_futex2    Futex2Calls: futex2 calls
      <- differential_diff_pi      PiCalls: PI lock calls
    differential_diff         Differ(Futex2Calls, PiCalls): runs, memory, futex(2) calls
"""

from __future__ import annotations

import collections
import functools
import signal
import struct
import threading
import time
from collections.abc import Callable, Sequence

from futex.kernel import ClockId
from futex.linux import PendingWait, abi
from tests.differential.differential_emulated import Emulated
from tests.differential.differential_host import (
    WATCHDOG_SECONDS,
    PeerJob,
    Watchdog,
    host_futex,
    host_syscall,
)
from tests.differential.differential_host_layout import HostLayout, _poke
from tests.differential.differential_layout import U32, U64, TidWord, ktime_of
from tests.differential.differential_steps import (
    PI_COMMANDS,
    SYS_FUTEX,
    SYS_WAIT,
    SYS_WAITV,
    Addr,
    At,
    Current,
    Mismatch,
    Step,
    Value,
)

__all__ = [
    "BLOCKED",
    "MAX_ADVANCE_NS",
    "PI_LOCK_COMMANDS",
    "DifferBase",
]


#: Commands that may block (non-PI): the host runs them under the watchdog.
BLOCKING_COMMANDS = frozenset({abi.FUTEX_WAIT, abi.FUTEX_WAIT_BITSET, abi.FUTEX_WAIT_REQUEUE_PI})
#: PI commands that look up the task a word names (and, but TRYLOCK_PI, may block on it).
PI_LOCK_COMMANDS = frozenset({abi.FUTEX_LOCK_PI, abi.FUTEX_TRYLOCK_PI, abi.FUTEX_LOCK_PI2})
#: A pending emulated wait whose deadline is at most this far ends by advancing the clock
#: (-ETIMEDOUT); a later one, or one without a deadline, by a signal (-EINTR).
MAX_ADVANCE_NS = 10 * abi.NSEC_PER_SEC
#: futex2 calls that may block.
FUTEX2_WAITS = frozenset({SYS_WAITV, SYS_WAIT})


class _Blocked:
    def __repr__(self) -> str:
        return "BLOCKED"


#: What the harness reports for a host call that blocked (the watchdog ended it).
BLOCKED = _Blocked()


class DifferBase:
    """What the differ's layers share: the state and the counters of a run, symbolic
    registers and values resolved, the host's answers under the watchdog, deadlines."""

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

    def value(self, emu: Emulated, v: Value) -> int:
        if isinstance(v, int):
            return v & U64
        try:
            addr = self.resolve(v.addr)
            # peek: the harness must not make a page present (execute-only keys need it)
            word = 0 if addr & 3 else struct.unpack("<I", emu.process.peek(addr, 4))[0]
        except Exception:
            word = 0
        return (word ^ v.flip) & U64

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

    def _passed_on_emulator_only(self, emu: Emulated, utime: int, realtime: bool) -> bool:
        try:
            sec, nsec = struct.unpack("<qq", emu.process.peek(utime, 16))
        except Exception:
            return False
        when = ktime_of(sec, nsec)
        clock_id = ClockId.REALTIME if realtime else ClockId.MONOTONIC
        host_now = time.time_ns() if realtime else time.monotonic_ns()
        return emu.clock.now(clock_id) >= when > host_now - abi.NSEC_PER_SEC

    @staticmethod
    def _ended(
        emu: Emulated, i: int, c: Step, pending: PendingWait, end: str, want: int
    ) -> Mismatch | None:
        """After ending a blocked emulated call by ``end`` (a clock advance, a signal, a
        kill): it must have returned ``want`` and left the task unblocked."""
        if not pending.done():
            pending.kill()
            return Mismatch(i, c, want, "still blocked", f"ending the wait by {end}")
        if pending.result() != want or emu.task.blocked is not None:
            return Mismatch(i, c, want, pending.result(), f"ending the wait by {end}: result")
        return None

    def _timeout2(self, nr: int, args: Sequence[int]) -> tuple[int, int]:
        """A futex2 wait's timeout pointer and clockid (as the kernel's int)."""
        t, ck = (args[3], args[4]) if nr == SYS_WAITV else (args[4], args[5])
        return t, (ck & U32) - ((ck & 0x80000000) << 1)
