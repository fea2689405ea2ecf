"""``SysFutex`` of LiteOS-A (``syscall/process_syscall.c`` + ``kernel/base/ipc/los_futex.c``)
over the futex core: the registers decoded (:mod:`futex.liteos.decode`), then dispatched
to WAIT, WAKE or REQUEUE (:mod:`futex.liteos.waitwake`).

``SysFutex(uAddr, flags, val, absTime, newUserAddr)`` dispatches on ``flags & 3``: 3 is
REQUEUE, 1 is WAKE, anything else is WAIT; each path then demands its exact command, so
every unsupported command (CMP_REQUEUE, WAKE_OP, the PI and bitset commands, FUTEX_FD…)
answers ``-LOS_EINVAL``.  Results are 0 or a negated LOS code; WAKE returns 0, never a
count.  Registers are 32-bit: pointers, ``flags`` and ``absTime`` are unsigned, ``val``
is signed (and unsigned again as WAIT's expected value); REQUEUE reuses ``val`` as the wake
count and ``absTime`` as the signed requeue count.

Checks, in LiteOS's order
-------------------------
WAIT (``OsFutexWaitParamCheck``, then ``OsFutexWaitTask``):
interrupt context EINTR (:attr:`Task.in_interrupt`); ``flags & ~FUTEX_PRIVATE`` EINVAL;
misaligned or outside ``[USER_ASPACE_BASE, USER_ASPACE_TOP_MAX)`` EINVAL; ``absTime == 0``
ETIMEDOUT — before the word is read (PR !751); then, under the bucket lock, a fault
copying the word in is EINVAL and a different value is EBADF.  The shared-memory check
(paddr != 0) is guarded by ``flags &&`` and so never runs for a shared wait: a shared wait
on a page without a frame queues under physical address 0.
WAKE (``OsFutexWakeParamCheck``): the exact command, the address, and for a shared futex a
physical address (0 is EINVAL); no waiter on the key is EBADF.
REQUEUE (``OsFutexRequeueParamCheck``): equal raw addresses EINVAL first, then the
command, then both addresses; no compare value, no shared-memory check.

Timeouts
--------
``absTime`` is *relative microseconds*; 0xFFFFFFFF waits forever.  ``OsNS2Tick(absTime *
1000)`` rounds up to whole ticks of ``10**9 // tick_hz`` ns and saturates at 0xFFFFFFFF,
which *is* LOS_WAIT_FOREVER, so a timeout that saturates never expires **[code reading]**
(only reachable above 1 MHz ticks).  The wait's deadline is ``now + ticks * ns_per_tick``
on the monotonic clock.

Decisions where LiteOS is defective or racy
-------------------------------------------
- ``wakeNumber <= 0`` (``OsFutexWakeTask``): LiteOS's wake loop does not run, but the
  head is still unlinked from its bucket together with its ring — every waiter of the key
  is orphaned, blocked until its timeout (then ETIMEDOUT), a SIGKILL or its exit, and
  never found by a wake again.  ``LiteosKernel(faithful=True)`` replicates this.  The
  default (safe) behaviour wakes nobody and unlinks nothing.  Both return what LiteOS
  returns: 0 when the key has waiters, EBADF when it has none.
- A requeued waiter that times out: LiteOS locks the bucket it computed when it started
  waiting (the old key's) and edits the node under the wrong lock.  Here the waiter is
  followed to its current bucket (the core's lock-and-revalidate ``wait_complete``).
- REQUEUE moves its waiters under both bucket locks at once; LiteOS drops the old bucket's
  lock before taking the new one, a window in which the moved nodes are in no bucket.
- Stale nodes: a LiteOS waiter that timed out or was signalled stays in its ring, pending
  list empty, until its task runs again; every walk skips it.  Here it leaves the queue
  when the event happens.  The one walk that counts stale nodes is REQUEUE's split (its
  first ``count`` nodes may include stale ones); here ``count`` counts live waiters.
- Two addresses with one key (two mappings of one shared page, or two unmapped shared
  addresses, both paddr 0): the core's same-key requeue leaves the waiters where they
  are; LiteOS re-inserts the moved ones behind equal-priority waiters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from futex.kernel.blocking import PendingWait
from futex.kernel.decode import s32, u32
from futex.liteos import abi
from futex.liteos.decode import SYS_FUTEX
from futex.liteos.waitwake import futex_requeue, futex_wait, futex_wake

if TYPE_CHECKING:
    from futex.liteos.kernel import Task

__all__ = ["sys_futex"]


def sys_futex(
    task: Task, uaddr: int, flags: int, val: int, abs_time: int, new_uaddr: int
) -> int | PendingWait:
    """``SysFutex`` on ``task``: 0, a negated LOS code, or a blocked wait."""
    uaddr, flags, val, abs_time, new_uaddr = SYS_FUTEX.decode(
        uaddr, flags, val, abs_time, new_uaddr
    )
    cmd = flags & abi.FUTEX_MASK
    if cmd == abi.FUTEX_REQUEUE:
        return futex_requeue(task, uaddr, flags, val, s32(abs_time), new_uaddr)
    if cmd == abi.FUTEX_WAKE:
        return futex_wake(task, uaddr, flags, val)
    return futex_wait(task, uaddr, flags, u32(val), abs_time)
