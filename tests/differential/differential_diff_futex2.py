"""Differential harness, the differ's layer for the futex2 calls: :class:`Futex2Calls`,
and ``futex2_pointers_safe`` (which ``test_futex2``'s checks use too).

futex2 (:class:`Sys2`): futex_waitv, futex_wake, futex_wait, futex_requeue, interleaved
with the futex(2) calls; their ``struct futex_waitv`` vectors are written (by both sides)
wherever the pages are writable.  A blocked futex2 wait is proved on the host with an
already expired timeout (ETIMEDOUT), then ended like a plain wait.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from futex.kernel import ClockId
from futex.linux import PendingWait, abi
from tests.differential.differential_diff_base import MAX_ADVANCE_NS
from tests.differential.differential_diff_peer import PeerEnding
from tests.differential.differential_emulated import Emulated
from tests.differential.differential_layout import U32, U64
from tests.differential.differential_steps import (
    CLOCK_MONOTONIC_ID,
    CLOCK_REALTIME_ID,
    FUTEX2_NAMES,
    SYS_REQUEUE,
    SYS_WAIT,
    SYS_WAITV,
    Mismatch,
    Sys2,
)

__all__ = [
    "Futex2Calls",
    "futex2_pointers_safe",
]


class Futex2Calls(PeerEnding):
    """The differ's layer for the futex2 calls (:class:`Sys2`): their vectors written, the
    call made on both sides, a blocked wait proved on the host and ended."""

    def _call2(self, emu: Emulated, i: int, s: Sys2) -> Mismatch | None:
        layout = self.layout
        if s.entries:
            vector = self.resolve(s.vector)
            data = b"".join(
                struct.pack(
                    "<QQII",
                    self.value(emu, e.val),
                    self.resolve(e.uaddr),
                    e.flags & U32,
                    e.reserved & U32,
                )
                for e in s.entries
            )
            for a, chunk in layout.write_clipped(vector, data):
                emu.process.write(a, chunk)
        args = tuple(self.arg(emu, a) for a in s.args)
        name = FUTEX2_NAMES[s.nr]
        self._registers = (
            f"{name}({', '.join(f'{a:#x}' for a in args)}) with the layout at {layout.base:#x}"
        )
        if not self._safe2(emu, s.nr, args):
            self.skipped += 1
            return None
        self._ran.add("futex2")
        self.calls += 1
        try:
            r = emu.task.syscall_nb(s.nr, *args)
        except Exception as exc:
            return Mismatch(i, s, self.host2(s.nr, args), exc, "raised")
        if isinstance(r, PendingWait):
            self.outcomes[name, "blocks"] += 1
            return self._blocked2(emu, i, s, r, args)
        self.outcomes[name, r] += 1
        if r == -abi.ETIMEDOUT and self._ambiguous2(emu, s.nr, args):
            # the emulated clock was advanced past the deadline: an expired one instead
            self.expired_instead += 1
            probe = list(args)
            if s.nr == SYS_WAITV:
                probe[3:5] = [self.layout.expired, CLOCK_MONOTONIC_ID]
            else:
                probe[4:6] = [self.layout.expired, CLOCK_MONOTONIC_ID]
            got = self.host2(s.nr, probe)
            if got != r:
                return Mismatch(
                    i, s, got, r, "return value (host: with an expired timeout instead)"
                )
            return None
        got = self.host2(s.nr, args)
        if got != r:
            return Mismatch(i, s, got, r, "return value")
        return None

    def _ambiguous2(self, emu: Emulated, nr: int, args: Sequence[int]) -> bool:
        t, ck = self._timeout2(nr, args)
        return self._passed_on_emulator_only(emu, t, ck == CLOCK_REALTIME_ID)

    def _safe2(self, emu: Emulated, nr: int, args: Sequence[int]) -> bool:
        return futex2_pointers_safe(self.layout, emu, nr, args)

    def _blocked2(
        self, emu: Emulated, i: int, s: Sys2, pending: PendingWait, args: Sequence[int]
    ) -> Mismatch | None:
        # The host would block too: with an already expired timeout it times out.
        probe = list(args)
        if s.nr == SYS_WAITV:
            probe[3:5] = [self.layout.expired, CLOCK_MONOTONIC_ID]
        else:
            probe[4:6] = [self.layout.expired, CLOCK_MONOTONIC_ID]
        got = self.host2(s.nr, probe)
        if got != -abi.ETIMEDOUT:
            pending.kill()
            return Mismatch(
                i, s, f"does not block (expired timeout -> {got!r})", "blocks", "blocking"
            )
        t, ck = self._timeout2(s.nr, args)
        want_deadline = self._deadline_of(t, ck == CLOCK_REALTIME_ID)
        if pending.deadline != want_deadline:
            pending.kill()
            return Mismatch(i, s, want_deadline, pending.deadline, "blocking: deadline")
        if s.peer:
            calls = self._peer_calls(emu, s.peer)
            refused = self._peer_refusal(s.nr, args, calls)
            if refused is None:
                return self._peer_end(emu, i, s, pending, s.nr, args, calls)
            self.peer_refused[refused] += 1
        deadline = pending.deadline
        need = None
        if deadline is not None and not s.interrupt:
            need = deadline[1] - emu.clock.now(ClockId(deadline[0]))
        if need is not None and 0 <= need <= MAX_ADVANCE_NS:
            emu.clock.advance(need)
            end, want = "advance", -abi.ETIMEDOUT
        else:
            emu.task.interrupt(handler=True)
            end, want = "signal", -abi.EINTR
        return self._ended(emu, i, s, pending, end, want)


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
