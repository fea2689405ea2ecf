"""A blocked emulated wait: the deadline the host would have given it, whether a deadline
passed on the emulated clock only (the harness advanced it), and ending the wait (by the
clock, a signal or a kill) with the result it must give.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence

from futex.kernel import ClockId
from futex.linux import PendingWait, abi
from tests.differential.harness.emulated import Emulated
from tests.differential.harness.host_layout import HostLayout
from tests.differential.harness.layout import U32, ktime_of
from tests.differential.harness.mismatch import Mismatch
from tests.differential.harness.steps import SYS_WAITV, Step

__all__ = [
    "MAX_ADVANCE_NS",
    "deadline_of",
    "end_wait",
    "ended",
    "passed_on_emulator_only",
    "timeout2",
]


#: A pending emulated wait whose deadline is at most this far ends by advancing the clock
#: (-ETIMEDOUT); a later one, or one without a deadline, by a signal (-EINTR).
MAX_ADVANCE_NS = 10 * abi.NSEC_PER_SEC


def deadline_of(layout: HostLayout, utime: int, realtime: bool) -> object:
    """The absolute deadline of a valid timeout at ``utime`` (WAIT_BITSET,
    WAIT_REQUEUE_PI, futex2: ``futex_init_timeout``), on CLOCK_REALTIME or
    CLOCK_MONOTONIC; ``None`` without one (a description if the host could not
    have read it)."""
    if not utime:
        return None
    ts = layout.read_timespec(utime)
    if not isinstance(ts, tuple):
        return f"none: the timespec at {utime:#x} is not readable"
    return ClockId.REALTIME if realtime else ClockId.MONOTONIC, ktime_of(*ts)


def passed_on_emulator_only(emu: Emulated, utime: int, realtime: bool) -> bool:
    """Whether the absolute deadline at ``utime`` has passed on the emulated clock but
    maybe not on the host's (the harness advanced the emulated clock)."""
    try:
        sec, nsec = struct.unpack("<qq", emu.process.peek(utime, 16))
    except Exception:
        return False
    when = ktime_of(sec, nsec)
    clock_id = ClockId.REALTIME if realtime else ClockId.MONOTONIC
    host_now = time.time_ns() if realtime else time.monotonic_ns()
    return emu.clock.now(clock_id) >= when > host_now - abi.NSEC_PER_SEC


def timeout2(nr: int, args: Sequence[int]) -> tuple[int, int]:
    """A futex2 wait's timeout pointer and clockid (as the kernel's int)."""
    t, ck = (args[3], args[4]) if nr == SYS_WAITV else (args[4], args[5])
    return t, (ck & U32) - ((ck & 0x80000000) << 1)


def ended(
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


def end_wait(
    emu: Emulated,
    i: int,
    c: Step,
    pending: PendingWait,
    interrupt: bool,
    kill: bool = False,
) -> Mismatch | None:
    """End a blocked emulated wait: by advancing the clock to a deadline at most
    ``MAX_ADVANCE_NS`` away (-ETIMEDOUT) unless the step asks for an ``interrupt``; else
    by a signal (-EINTR), or with ``kill`` (a wait a signal only restarts) by killing it.
    Then :func:`ended`."""
    deadline = pending.deadline
    if deadline is not None and not interrupt:
        need = deadline[1] - emu.clock.now(ClockId(deadline[0]))
    else:
        need = None
    if need is not None and 0 <= need <= MAX_ADVANCE_NS:
        emu.clock.advance(need)
        end, want = "advance", -abi.ETIMEDOUT
    elif kill:
        pending.kill()
        end, want = "kill", -abi.EINTR
    else:
        emu.task.interrupt(handler=True)
        end, want = "signal", -abi.EINTR
    return ended(emu, i, c, pending, end, want)
