"""The differ's part for the futex2 calls: :class:`Futex2Calls`, and
``futex2_pointers_safe`` (which the futex2 checks in ``tests/linux`` use too).

futex2 (:class:`Sys2`): futex_waitv, futex_wake, futex_wait, futex_requeue, interleaved
with the futex(2) calls; their ``struct futex_waitv`` vectors are written (by both sides)
wherever the pages are writable.  A blocked futex2 wait is proved on the host with an
already expired timeout (ETIMEDOUT), then ended like a plain wait.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from futex.linux import PendingWait, abi
from tests.differential.harness.context import Context
from tests.differential.harness.emulated import Emulated
from tests.differential.harness.layout import U32, U64
from tests.differential.harness.mismatch import Mismatch
from tests.differential.harness.peer_ending import PeerEnding
from tests.differential.harness.steps import (
    CLOCK_MONOTONIC_ID,
    CLOCK_REALTIME_ID,
    FUTEX2_NAMES,
    SYS_REQUEUE,
    SYS_WAIT,
    SYS_WAITV,
    Sys2,
)
from tests.differential.harness.waits import (
    deadline_of,
    end_wait,
    passed_on_emulator_only,
    timeout2,
)

__all__ = [
    "Futex2Calls",
    "futex2_pointers_safe",
]


class Futex2Calls:
    """The differ's part for the futex2 calls (:class:`Sys2`): their vectors written, the
    call made on both sides, a blocked wait proved on the host and ended."""

    def __init__(self, ctx: Context, peer: PeerEnding) -> None:
        self.layout = ctx.layout
        self.symbols = ctx.symbols
        self.host = ctx.host
        self.tally = ctx.tally
        self.peer = peer
        #: the call's registers as made, for a report
        self.registers = ""

    def compare(self, emu: Emulated, i: int, s: Sys2) -> Mismatch | None:
        """Make futex2 call ``s`` on both sides: the first disagreement, or ``None``."""
        layout, symbols = self.layout, self.symbols
        if s.entries:
            vector = symbols.resolve(s.vector)
            data = b"".join(
                struct.pack(
                    "<QQII",
                    symbols.value(emu, e.val),
                    symbols.resolve(e.uaddr),
                    e.flags & U32,
                    e.reserved & U32,
                )
                for e in s.entries
            )
            for a, chunk in layout.write_clipped(vector, data):
                emu.process.write(a, chunk)
        args = tuple(symbols.arg(emu, a) for a in s.args)
        name = FUTEX2_NAMES[s.nr]
        self.registers = (
            f"{name}({', '.join(f'{a:#x}' for a in args)}) with the layout at {layout.base:#x}"
        )
        if not futex2_pointers_safe(layout, emu, s.nr, args):
            self.tally.skipped += 1
            return None
        self.tally.ran.add("futex2")
        self.tally.calls += 1
        try:
            r = emu.task.syscall_nb(s.nr, *args)
        except Exception as exc:
            return Mismatch(i, s, self.host.futex2(s.nr, args), exc, "raised")
        if isinstance(r, PendingWait):
            self.tally.outcomes[name, "blocks"] += 1
            return self._blocked(emu, i, s, r, args)
        self.tally.outcomes[name, r] += 1
        if r == -abi.ETIMEDOUT and self._ambiguous(emu, s.nr, args):
            # the emulated clock was advanced past the deadline: an expired one instead
            self.tally.expired_instead += 1
            got = self.host.futex2(s.nr, self._expired(s.nr, args))
            if got != r:
                return Mismatch(
                    i, s, got, r, "return value (host: with an expired timeout instead)"
                )
            return None
        got = self.host.futex2(s.nr, args)
        if got != r:
            return Mismatch(i, s, got, r, "return value")
        return None

    @staticmethod
    def _ambiguous(emu: Emulated, nr: int, args: Sequence[int]) -> bool:
        """Whether the wait's deadline passed on the emulated clock only."""
        t, ck = timeout2(nr, args)
        return passed_on_emulator_only(emu, t, ck == CLOCK_REALTIME_ID)

    def _expired(self, nr: int, args: Sequence[int]) -> list[int]:
        """The call's registers with an already expired timeout (on CLOCK_MONOTONIC)."""
        probe = list(args)
        if nr == SYS_WAITV:
            probe[3:5] = [self.layout.expired, CLOCK_MONOTONIC_ID]
        else:
            probe[4:6] = [self.layout.expired, CLOCK_MONOTONIC_ID]
        return probe

    def _blocked(
        self, emu: Emulated, i: int, s: Sys2, pending: PendingWait, args: Sequence[int]
    ) -> Mismatch | None:
        # The host would block too: with an already expired timeout it times out.
        got = self.host.futex2(s.nr, self._expired(s.nr, args))
        if got != -abi.ETIMEDOUT:
            pending.kill()
            return Mismatch(
                i, s, f"does not block (expired timeout -> {got!r})", "blocks", "blocking"
            )
        t, ck = timeout2(s.nr, args)
        want_deadline = deadline_of(self.layout, t, ck == CLOCK_REALTIME_ID)
        if pending.deadline != want_deadline:
            pending.kill()
            return Mismatch(i, s, want_deadline, pending.deadline, "blocking: deadline")
        if s.peer:
            done, bad = self.peer.end(emu, i, s, pending, s.nr, args)
            if done:
                return bad
        return end_wait(emu, i, s, pending, s.interrupt)


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
                raw = emu.process.peek(args[0] + abi.FUTEX_WAITV_SIZE * k, 16)
            except Exception:
                break
            ptrs.append((struct.unpack_from("<Q", raw, 8)[0], 8))
    return all(not a or layout.safe(a, n) for a, n in ptrs if a + n <= U64)
