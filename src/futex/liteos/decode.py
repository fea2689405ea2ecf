"""``SysFutex``'s registers and timeout as LiteOS-A reads them.

LiteOS-A is a 32-bit kernel: pointers, ``flags`` and ``absTime`` are unsigned 32-bit
registers, ``val`` is signed (:data:`SYS_FUTEX`, a core
:class:`~futex.kernel.decode.RegisterLayout`: a Python int out of range is truncated as
the register would be, anything else raises ``TypeError`` naming the register).
``absTime`` is *relative microseconds*; 0xFFFFFFFF waits forever, and the tick count is
``OsNS2Tick`` (:func:`ns_to_ticks`, :func:`deadline_of`).  A futex address must be
aligned and inside the user range (:func:`user_address_ok`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from futex.kernel import ClockId
from futex.kernel.decode import RegisterLayout
from futex.kernel.request import Deadline
from futex.liteos import abi

if TYPE_CHECKING:
    from futex.liteos.kernel import LiteosKernel

__all__ = ["SYS_FUTEX", "deadline_of", "ns_to_ticks", "user_address_ok"]

#: ``SysFutex(unsigned int *uAddr, unsigned int flags, int val, unsigned int absTime,
#: unsigned int *newUserAddr)`` on a 32-bit kernel.
SYS_FUTEX = RegisterLayout(
    "SysFutex register", uAddr="u32", flags="u32", val="s32", absTime="u32", newUserAddr="u32"
)


def ns_to_ticks(ns: int, tick_hz: int = abi.LOSCFG_BASE_CORE_TICK_PER_SECOND) -> int:
    """``OsNS2Tick``: nanoseconds to ticks, rounded up, saturated at 0xFFFFFFFF."""
    ns_per_tick = abi.OS_SYS_NS_PER_SECOND // tick_hz
    return min((ns + ns_per_tick - 1) // ns_per_tick, abi.OS_MAX_VALUE)


def deadline_of(kernel: LiteosKernel, abs_time: int) -> Deadline | None:
    """The monotonic deadline of a WAIT of ``abs_time`` microseconds from now, in whole
    ticks; ``None`` for LOS_WAIT_FOREVER and for a count that saturates to it."""
    if abs_time == abi.LOS_WAIT_FOREVER:
        return None
    ticks = ns_to_ticks(abs_time * abi.OS_SYS_NS_PER_US, kernel.tick_hz)
    if ticks == abi.LOS_WAIT_FOREVER:  # a saturated count is "forever" to the scheduler
        return None
    now = kernel.clock.now(ClockId.MONOTONIC)
    return (ClockId.MONOTONIC, now + ticks * kernel.ns_per_tick)


def user_address_ok(vaddr: int) -> bool:
    """Aligned and inside ``[USER_ASPACE_BASE, USER_ASPACE_TOP_MAX)`` (the futex key range
    ``OS_FUTEX_KEY_BASE`` .. ``OS_FUTEX_KEY_MAX``)."""
    return not vaddr & 3 and abi.USER_ASPACE_BASE <= vaddr < abi.USER_ASPACE_TOP_MAX
