"""The single-task differ: :class:`Differ` runs the same futex(2) and futex2 call sequences
on the host kernel and on a fresh emulated one, with the same mappings at the same
addresses, comparing every return value and every readable page after each step
(:func:`compare_memory`).

A Differ is built from parts that share a :class:`~context.Context` (the host layout, the
symbols resolved against it, the host's answers under the watchdog, the tally): each call
goes to ``futex_calls.FutexCalls`` (futex(2); its PI lock calls to ``pi_calls.PiCalls``)
or ``futex2_calls.Futex2Calls`` (futex2), and a blocked wait that comes with the peer's
calls to ``peer_ending.PeerEnding``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from tests.differential.harness.context import Context, Tally
from tests.differential.harness.emulated import Emulated
from tests.differential.harness.futex2_calls import Futex2Calls
from tests.differential.harness.futex_calls import FutexCalls
from tests.differential.harness.host_layout import HostLayout
from tests.differential.harness.layout import LAYOUT, PAGE, READABLE_PAGES
from tests.differential.harness.mismatch import Mismatch
from tests.differential.harness.oracle import HostOracle
from tests.differential.harness.peer_ending import PeerEnding
from tests.differential.harness.pi_calls import PiCalls
from tests.differential.harness.steps import At, Call, Step, Store, Symbols, Sys2
from tests.differential.harness.watchdog import Watchdog

__all__ = [
    "Differ",
    "compare_memory",
]


class Differ:
    """Runs step sequences on both sides and reports the first disagreement; ``tally``
    counts what its runs did."""

    def __init__(self, layout: HostLayout, watchdog: Watchdog) -> None:
        self.layout = layout
        self.symbols = Symbols(layout)
        self.tally = Tally()
        ctx = Context(layout, self.symbols, HostOracle(layout, watchdog), self.tally)
        peer = PeerEnding(ctx)
        self.futex = FutexCalls(ctx, PiCalls(ctx), peer)
        self.futex2 = Futex2Calls(ctx, peer)

    def run(self, steps: Sequence[Step]) -> Mismatch | None:
        """Run ``steps`` from a fresh state; the first disagreement, or ``None``."""
        self.tally.start_sequence()
        try:
            return self._run(steps)
        finally:
            self.tally.end_sequence()

    def _run(self, steps: Sequence[Step]) -> Mismatch | None:
        emu = Emulated.fresh(self.layout)
        bad = compare_memory(self.layout, emu, -1, Store(At(0, 0), 0))
        if bad is not None:
            bad.detail = "harness: layouts differ before the first step: " + bad.detail
            return bad
        for i, step in enumerate(steps):
            if isinstance(step, Store):
                a = self.symbols.resolve(step.addr)
                v = self.symbols.word(step.value)
                self.layout.store(a, v)
                emu.process.write(a, struct.pack("<I", v))
            else:
                bad = self._call(emu, i, step)
                if bad is not None:
                    bad.steps = steps
                    return bad
            bad = compare_memory(self.layout, emu, i, step)
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

    def _call(self, emu: Emulated, i: int, c: Call | Sys2) -> Mismatch | None:
        if isinstance(c, Call):
            bad, registers = self.futex.compare(emu, i, c), self.futex.registers
        else:
            bad, registers = self.futex2.compare(emu, i, c), self.futex2.registers
        if bad is not None:
            bad.registers = registers
        return bad


def compare_memory(layout: HostLayout, emu: Emulated, i: int, step: Step) -> Mismatch | None:
    """Every readable page of the layout, on the host and in the emulator (as the host's
    read: ``Process.read``): the first that differs after step ``i``, or ``None``."""
    for page in READABLE_PAGES:
        want = layout.read_page(page)
        got = emu.process.read(layout.addr(page), PAGE)  # as the host's read
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
