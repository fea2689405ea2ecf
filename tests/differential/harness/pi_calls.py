"""The differ's part for the PI lock calls: :class:`PiCalls` (whether the host may run one,
and an emulated lock that blocked: proved on the host, checked to restart on a signal,
ended).

PI commands (LOCK_PI, UNLOCK_PI, TRYLOCK_PI, LOCK_PI2): a PI word names
a task, and the host looks that task up (``attach_to_pi_owner``) once it has set
FUTEX_WAITERS in a writable word.  The only tasks a PI word may name there are the caller
(the emulated task has its tid), :class:`Peer` (an idle thread of this process, an
emulated task with the same tid: TRYLOCK_PI answers EWOULDBLOCK) and tids no task can
have (above ``pid_max`` and PID_MAX_LIMIT: ESRCH).  Before a PI lock call the harness
reads the word on the host; if it names any other possible task, the call is skipped on
both sides (``Tally.pi_unsafe``).  A lock naming the peer blocks on the host until
its timeout: run only with a timeout already past on the host's clock (ETIMEDOUT), or,
when the emulator blocks, proved on the host with an expired timeout (ETIMEDOUT, leaving
FUTEX_WAITERS set); the emulated wait is then checked to restart on a signal
(ERESTARTNOINTR), and ended by advancing the clock to its deadline (ETIMEDOUT) or by
killing it (-EINTR).  Without a timeout it is skipped.  A host PI lock that blocks anyway
cannot be ended by a signal (it restarts): the watchdog has the peer unlock the word.
"""

from __future__ import annotations

import time

from futex.kernel import ClockId
from futex.linux import PendingWait, abi
from futex.linux.host import probe
from tests.differential.harness.context import Context
from tests.differential.harness.emulated import Emulated
from tests.differential.harness.layout import TASKLESS_TID_MIN, TID_MASK, ktime_of
from tests.differential.harness.mismatch import Mismatch
from tests.differential.harness.steps import PI_LOCK_COMMANDS, Call
from tests.differential.harness.waits import ended

__all__ = [
    "PiCalls",
]


#: A pending emulated PI lock whose deadline is at most this far ends by advancing the
#: clock (-ETIMEDOUT); a later one by killing the wait (-EINTR).
MAX_PI_ADVANCE_NS = 2 * 3600 * abi.NSEC_PER_SEC


class PiCalls:
    """The differ's part for the PI lock calls (LOCK_PI, UNLOCK_PI, TRYLOCK_PI,
    LOCK_PI2)."""

    def __init__(self, ctx: Context) -> None:
        self.layout = ctx.layout
        self.host = ctx.host
        self.tally = ctx.tally
        self.self_tid = ctx.symbols.self_tid
        self.peer_tid = ctx.symbols.peer_tid
        #: the call's deadline, when the host would block on it (set by :meth:`verdict`)
        self.deadline: tuple[ClockId, int] | None = None

    def verdict(self, uaddr: int, op: int, utime: int) -> str:
        """For a PI call: ``"run"`` (the host answers at once), ``"blocks"`` (a lock of
        the peer's word with a timeout in the future: the host must not run it; its
        deadline is :attr:`deadline`) or ``"skip"`` (the word may name a task of the
        host's, or the lock would block for good)."""
        self.deadline = None
        cmd = op & abi.FUTEX_CMD_MASK
        if cmd not in PI_LOCK_COMMANDS:
            return "run"  # UNLOCK_PI looks up no task
        if op & abi.FUTEX_CLOCK_REALTIME and cmd != abi.FUTEX_LOCK_PI2:
            return "run"  # ENOSYS (after the timeout, if any, was read)
        if cmd == abi.FUTEX_LOCK_PI2 and not probe().facts.lock_pi2:
            return "run"  # ENOSYS: a kernel without LOCK_PI2
        word = self.layout.word_at(uaddr)
        if word is None:
            return "run"  # misaligned, or the host cannot set FUTEX_WAITERS: no lookup
        tid = word & TID_MASK
        if tid in (0, self.self_tid) or tid >= TASKLESS_TID_MIN:
            return "run"
        if tid != self.peer_tid:
            self.tally.skipped += 1
            self.tally.pi_unsafe += 1
            return "skip"
        if cmd == abi.FUTEX_TRYLOCK_PI:
            return "run"  # EWOULDBLOCK
        if not utime:
            self.tally.skipped += 1
            self.tally.pi_blocking += 1
            return "skip"
        ts = self.layout.read_timespec(utime)
        if ts is False:
            return "run"  # EFAULT
        sec, nsec = ts
        if sec < 0 or not 0 <= nsec < abi.NSEC_PER_SEC:
            return "run"  # EINVAL
        rt = cmd == abi.FUTEX_LOCK_PI or bool(op & abi.FUTEX_CLOCK_REALTIME)
        now = time.time_ns() if rt else time.monotonic_ns()
        when = ktime_of(sec, nsec)
        if when < now:
            return "run"  # ETIMEDOUT
        self.deadline = (ClockId.REALTIME if rt else ClockId.MONOTONIC, when)
        return "blocks"

    def blocked(
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
            got = self.host.futex(*args)
            pending.kill()
            return Mismatch(i, c, got, "blocks", "return value")
        expired = self.host.futex(uaddr, op, val, self.layout.expired, uaddr2, val3)
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
        want_deadline = self.deadline
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
        return ended(emu, i, c, pending, end, want_end)
