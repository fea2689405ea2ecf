"""The differ's part for the futex(2) calls: :class:`FutexCalls` (a call made on both
sides; one the emulator blocked in proved on the host and ended).

Blocking calls: every call runs on the emulator first (``syscall_futex_nb``).  If it comes
back blocked (a ``PendingWait``), the host would block too, which a single task must not
do; the harness proves it instead with two calls that cannot block: the same call with the
value flipped (expects EAGAIN: the timeout, the bitset and the key passed, the word was
read) and the same call with an already expired timeout (expects ETIMEDOUT: the word
matched and the task would have slept).  The emulated wait then ends by advancing the
manual clock to its deadline (ETIMEDOUT) or by a signal (EINTR).  A host call that the
emulator answered at once is still run under a watchdog (``oracle``).

Requeue-PI: WAIT_REQUEUE_PI blocks like WAIT_BITSET (same probes; the emulated wait is
checked to restart on a signal, ERESTARTNOINTR, then ended by the clock or killed).  One
the emulator answers at once is first made on the host with an expired timeout when its
own timeout is none or in the future (ETIMEDOUT there: the host would sleep, a signal
would only restart it, so it is not run).  A single task's CMP_REQUEUE_PI finds nobody
waiting: 0 after its checks (it reads uaddr2 too).  PI lock calls are ``pi_calls``'.
"""

from __future__ import annotations

import time

from futex.kernel import ClockId
from futex.linux import PendingWait, abi
from tests.differential.harness.context import Context
from tests.differential.harness.emulated import Emulated
from tests.differential.harness.layout import U64, ktime_of
from tests.differential.harness.mismatch import Mismatch
from tests.differential.harness.peer_ending import PeerEnding
from tests.differential.harness.pi_calls import PiCalls
from tests.differential.harness.steps import (
    PI_COMMANDS,
    REQUEUE_PI_COMMANDS,
    SYS_FUTEX,
    Call,
    describe_op,
)
from tests.differential.harness.waits import deadline_of, end_wait, passed_on_emulator_only

__all__ = [
    "FutexCalls",
]


class FutexCalls:
    """The differ's part for the futex(2) calls (:class:`Call`)."""

    def __init__(self, ctx: Context, pi: PiCalls, peer: PeerEnding) -> None:
        self.layout = ctx.layout
        self.symbols = ctx.symbols
        self.host = ctx.host
        self.tally = ctx.tally
        self.pi = pi
        self.peer = peer
        #: the call's registers as made, for a report
        self.registers = ""

    def compare(self, emu: Emulated, i: int, c: Call) -> Mismatch | None:
        """Make futex(2) call ``c`` on both sides: the first disagreement, or ``None``."""
        resolve, value = self.symbols.resolve, self.symbols.value
        uaddr, utime, uaddr2 = resolve(c.uaddr), resolve(c.utime), resolve(c.uaddr2)
        op, val, val3 = c.op & U64, value(emu, c.val), value(emu, c.val3)
        args = (uaddr, op, val, utime, uaddr2, val3)
        self.registers = (
            f"futex({uaddr:#x}, {op:#x}, {val:#x}, {utime:#x}, {uaddr2:#x}, {val3:#x})"
            f" with the layout at {self.layout.base:#x}"
        )
        cmd = op & abi.FUTEX_CMD_MASK
        pointers = [(uaddr, 4), (uaddr2, 4)]
        if cmd in abi.TIMEOUT_COMMANDS and utime:
            pointers.append((utime, 16))
        if not all(self.layout.safe(a, n) for a, n in pointers):
            self.tally.skipped += 1  # would touch this process's own memory on the host
            return None
        host_blocks = False
        if cmd in PI_COMMANDS:
            verdict = self.pi.verdict(uaddr, op, utime)
            if verdict == "skip":
                return None
            host_blocks = verdict == "blocks"
            self.tally.ran.add("pi")
        elif cmd in REQUEUE_PI_COMMANDS:
            self.tally.ran.add("requeue_pi")
        self.tally.calls += 1
        try:
            r = emu.task.syscall_futex_nb(uaddr, op, val, utime, uaddr2, val3)
        except Exception as exc:
            got = "not run" if host_blocks else self.host.futex(*args)
            return Mismatch(i, c, got, exc, "raised")
        if isinstance(r, PendingWait):
            self.tally.outcomes[describe_op(op), "blocks"] += 1
            if cmd in PI_COMMANDS:
                return self.pi.blocked(emu, i, c, r, args, host_blocks)
            return self._blocked(emu, i, c, r, args)
        self.tally.outcomes[describe_op(op), r] += 1
        # The emulated clock was advanced (by the harness) past an absolute deadline that
        # may not have passed on the host's: the host gets an already expired timeout
        # instead (the same path: the call ran on the emulator, with its side effects).
        expire = False
        if r == -abi.ETIMEDOUT and cmd == abi.FUTEX_WAIT_BITSET:
            expire = self._ambiguous(emu, utime, op)
        if cmd == abi.FUTEX_WAIT_REQUEUE_PI:
            verdict = self._requeue_pi_verdict(emu, args)
            if verdict == "skip":
                self.tally.skipped += 1
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
            assert self.pi.deadline is not None
            clock_id, when = self.pi.deadline
            expire = r == -abi.ETIMEDOUT and emu.clock.now(clock_id) >= when
        if expire:
            self.tally.expired_instead += 1
            got = self.host.futex(uaddr, op, val, self.layout.expired, uaddr2, val3)
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
        got = self.host.futex(*args)
        if got != r:
            return Mismatch(i, c, got, r, "return value")
        return None

    def _requeue_pi_verdict(self, emu: Emulated, args: tuple[int, ...]) -> str:
        """For a WAIT_REQUEUE_PI the emulator answered at once: ``"run"`` (the host
        answers at once too), ``"blocks"`` (it would sleep: a signal would only restart
        it, so it is not run) or ``"expired"`` (its deadline passed on the emulated clock,
        advanced by the harness, not on the host's).  A call whose timeout is none or in
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
            sec, nsec = ts
            if sec < 0 or not 0 <= nsec < abi.NSEC_PER_SEC:
                return "run"  # EINVAL
            when = ktime_of(sec, nsec)
            now = time.time_ns() if clock_id == ClockId.REALTIME else time.monotonic_ns()
            if when <= now:
                return "run"  # at most ETIMEDOUT
        probe = self.host.futex(uaddr, op, val, self.layout.expired, uaddr2, val3)
        if probe != -abi.ETIMEDOUT:
            return "run"
        if when is not None and when <= emu.clock.now(clock_id):
            return "expired"
        return "blocks"

    def _ambiguous(self, emu: Emulated, utime: int, op: int) -> bool:
        """Whether the absolute deadline at ``utime`` has passed on the emulated clock but
        maybe not on the host's (the harness advanced the emulated clock)."""
        rt = bool(op & abi.FUTEX_CLOCK_REALTIME)
        return passed_on_emulator_only(emu, utime, rt)

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
        probe = self.host.futex(uaddr, op, val ^ 1, utime, uaddr2, val3)
        # 2. ... and the value matches: with an expired timeout it times out instead of
        # returning at once.
        expired = self.host.futex(uaddr, op, val, self.layout.expired, uaddr2, val3)
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
            want_deadline = deadline_of(self.layout, utime, bool(op & abi.FUTEX_CLOCK_REALTIME))
            if pending.deadline != want_deadline:
                pending.kill()
                return Mismatch(i, c, want_deadline, pending.deadline, "blocking: deadline")
        if c.peer:
            done, bad = self.peer.end(emu, i, c, pending, SYS_FUTEX, args)
            if done:
                return bad
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
        return end_wait(emu, i, c, pending, c.interrupt, kill=requeue_pi)
