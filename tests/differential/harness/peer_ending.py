"""The differ's part that ends a blocked call by the peer's calls: :class:`PeerEnding`
(whether the peer may, and then doing it on both sides).

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

import struct
import time
from collections.abc import Sequence

from futex.kernel import ClockId
from futex.linux import PendingWait, abi
from tests.differential.harness.context import Context
from tests.differential.harness.emulated import Emulated
from tests.differential.harness.layout import TASKLESS_TID_MIN, TID_MASK, U32, ktime_of
from tests.differential.harness.mismatch import Mismatch
from tests.differential.harness.peer import PeerJob
from tests.differential.harness.steps import (
    CLOCK_MONOTONIC_ID,
    CLOCK_REALTIME_ID,
    FUTEX2_NAMES,
    PEER_SIGNAL,
    PI_LOCK_COMMANDS,
    SYS_FUTEX,
    SYS_WAKE,
    Call,
    Sys2,
    call_name,
    describe_op,
)
from tests.differential.harness.waits import timeout2

__all__ = [
    "PeerEnding",
]


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
#: A wait ended by the peer (``Call.peer``, ``Sys2.peer``) must have no deadline or one at
#: least this far ahead on the host's clock (so that it cannot time out meanwhile).
PEER_MIN_TIMEOUT_NS = 30 * abi.NSEC_PER_SEC


class PeerEnding:
    """The differ's part that ends a blocked call by the peer's calls (``Call.peer``,
    ``Sys2.peer``), for the futex(2) and the futex2 waits alike."""

    def __init__(self, ctx: Context) -> None:
        self.layout = ctx.layout
        self.symbols = ctx.symbols
        self.host = ctx.host
        self.tally = ctx.tally
        self.self_tid = ctx.symbols.self_tid
        self.peer_tid = ctx.symbols.peer_tid

    def end(
        self,
        emu: Emulated,
        i: int,
        step: Call | Sys2,
        pending: PendingWait,
        nr: int,
        args: Sequence[int],
    ) -> tuple[bool, Mismatch | None]:
        """End the blocked call ``nr(args)`` by the peer's calls (``step.peer``), if it
        may (:meth:`_refusal`): ``(True, the disagreement or None)``; else ``(False,
        None)``, the refusal counted (``Tally.peer_refused``)."""
        calls = [(pc.nr, tuple(self.symbols.arg(emu, a) for a in pc.args)) for pc in step.peer]
        refused = self._refusal(nr, args, calls)
        if refused is not None:
            self.tally.peer_refused[refused] += 1
            return False, None
        return True, self._end(emu, i, step, pending, nr, args, calls)

    def _tid_safe(self, addr: int) -> bool:
        """Whether a PI word at ``addr`` names no task of the host's but the caller and
        the peer (if it is readable at all)."""
        raw = self.layout.peek(addr, 4)
        if raw is None:
            return True  # unreadable on this host: the call faults before any lookup
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

    def _refusal(
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
            t, ck = timeout2(nr, args)
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

    def _end(
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
        got = self.host.with_peer(nr, args, job)
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
            self.tally.outcomes["peer " + call_name(pnr, pargs), r] += 1
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
        self.tally.peer_ended += 1
        self.tally.outcomes[name, f"peer-ended {end}"] += 1
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
