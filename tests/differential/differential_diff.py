"""Differential harness: the same single-task futex(2) call sequences on the host kernel and
on the emulated one, with the same mappings at the same addresses, comparing every return
value and every readable page after each step.  :class:`Differ` runs them; this module
holds its top layer (a run, the memory compared, the futex(2) calls and their blocking).

The harness's modules: ``differential_layout`` (the pages and what they hold),
``differential_steps`` (the symbolic steps, :class:`Mismatch`), ``differential_host`` (raw
host calls, the watchdog, the peer thread), ``differential_host_layout`` (the layout
reserved on the host), ``differential_emulated`` (the same on a fresh emulated kernel), and
the differ's layers, ``differential_diff_base`` (which draws them), ``differential_diff_peer``,
``differential_diff_pi``, ``differential_diff_futex2`` and this one.

Blocking calls: every call runs on the emulator first (``syscall_futex_nb``).  If it comes
back blocked (a ``PendingWait``), the host would block too, which a single task must not
do; the harness proves it instead with two calls that cannot block: the same call with the
value flipped (expects EAGAIN: the timeout, the bitset and the key passed, the word was
read) and the same call with an already expired timeout (expects ETIMEDOUT: the word
matched and the task would have slept).  The emulated wait then ends by advancing the
manual clock to its deadline (ETIMEDOUT) or by a signal (EINTR).  A host call that the
emulator answered at once is still run under a watchdog: if the host blocks after all, a
signal ends it and the disagreement is reported as ``BLOCKED``.

Requeue-PI: WAIT_REQUEUE_PI blocks like WAIT_BITSET (same probes; the emulated wait is
checked to restart on a signal, ERESTARTNOINTR, then ended by the clock or killed).  One
the emulator answers at once is first made on the host with an expired timeout when its
own timeout is none or in the future (ETIMEDOUT there: the host would sleep, a signal
would only restart it, so it is not run).  A single task's CMP_REQUEUE_PI finds nobody
waiting: 0 after its checks (it reads uaddr2 too).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence

from futex.kernel import ClockId
from futex.linux import PendingWait, abi
from tests.differential.differential_diff_base import MAX_ADVANCE_NS
from tests.differential.differential_diff_futex2 import Futex2Calls
from tests.differential.differential_diff_pi import PiCalls
from tests.differential.differential_emulated import Emulated
from tests.differential.differential_layout import (
    LAYOUT,
    PAGE,
    READABLE_PAGES,
    U64,
    ktime_of,
    timespec_page,
)
from tests.differential.differential_steps import (
    PI_COMMANDS,
    REQUEUE_PI_COMMANDS,
    SYS_FUTEX,
    At,
    Call,
    Mismatch,
    Step,
    Store,
    Sys2,
    describe_op,
)

__all__ = [
    "Differ",
]


class Differ(Futex2Calls, PiCalls):
    """Runs step sequences on both sides and reports the first disagreement."""

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
            got = emu.process.read(self.layout.addr(page), PAGE)  # as the host's read
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
        probe = self.host(uaddr, op, val, self.layout.expired, uaddr2, val3)
        if probe != -abi.ETIMEDOUT:
            return "run"
        if when is not None and when <= emu.clock.now(clock_id):
            return "expired"
        return "blocks"

    def _ambiguous(self, emu: Emulated, utime: int, op: int) -> bool:
        """Whether the absolute deadline at ``utime`` has passed on the emulated clock but
        maybe not on the host's (the harness advanced the emulated clock)."""
        rt = bool(op & abi.FUTEX_CLOCK_REALTIME)
        return self._passed_on_emulator_only(emu, utime, rt)

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
        return self._ended(emu, i, c, pending, end, want_end)
