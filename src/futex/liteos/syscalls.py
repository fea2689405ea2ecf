"""``SysFutex`` of LiteOS-A (``syscall/process_syscall.c`` + ``kernel/base/ipc/los_futex.c``)
over the futex core.

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

from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from futex.kernel import MATCH_ANY, ClockId, MemoryFault, MisalignedAddress, Waiter
from futex.kernel.blocking import Deadline
from futex.liteos import abi
from futex.liteos.blocking import FutexNode, PendingWait
from futex.liteos.policy import LITEOS_POLICY

if TYPE_CHECKING:
    from futex.kernel.buckets import Bucket
    from futex.kernel.manager import FutexManager
    from futex.kernel.waiter import WaitQueue
    from futex.liteos.kernel import Task

__all__ = ["WaitRequest", "futex_requeue", "futex_wait", "futex_wake", "ns_to_ticks", "sys_futex"]

_U32 = 0xFFFFFFFF


def _s32(v: int) -> int:
    v &= _U32
    return v - (1 << 32) if v & 0x80000000 else v


def _bad_register(**regs: object) -> NoReturn:
    for name, value in regs.items():
        if not isinstance(value, int):
            raise TypeError(
                f"SysFutex register {name} must be an int, got {type(value).__name__}: {value!r}"
            )
    raise TypeError("SysFutex registers must be ints")


def ns_to_ticks(ns: int, tick_hz: int = abi.LOSCFG_BASE_CORE_TICK_PER_SECOND) -> int:
    """``OsNS2Tick``: nanoseconds to ticks, rounded up, saturated at 0xFFFFFFFF."""
    ns_per_tick = abi.OS_SYS_NS_PER_SECOND // tick_hz
    return min((ns + ns_per_tick - 1) // ns_per_tick, abi.OS_MAX_VALUE)


def user_address_ok(vaddr: int) -> bool:
    """Aligned and inside ``[USER_ASPACE_BASE, USER_ASPACE_TOP_MAX)`` (the futex key range
    ``OS_FUTEX_KEY_BASE`` .. ``OS_FUTEX_KEY_MAX``)."""
    return not vaddr & 3 and abi.USER_ASPACE_BASE <= vaddr < abi.USER_ASPACE_TOP_MAX


#: What a wake that finds nobody answers.
_EMPTY_WAKE = 0 if LITEOS_POLICY.empty_wake is None else LITEOS_POLICY.empty_wake


def sys_futex(
    task: Task, uaddr: int, flags: int, val: int, abs_time: int, new_uaddr: int
) -> int | PendingWait:
    """``SysFutex`` on ``task``: 0, a negated LOS code, or a blocked wait."""
    try:
        uaddr &= _U32
        flags &= _U32
        val = _s32(val)
        abs_time &= _U32
        new_uaddr &= _U32
    except TypeError:
        _bad_register(uAddr=uaddr, flags=flags, val=val, absTime=abs_time, newUserAddr=new_uaddr)
    cmd = flags & abi.FUTEX_MASK
    if cmd == abi.FUTEX_REQUEUE:
        return futex_requeue(task, uaddr, flags, val, _s32(abs_time), new_uaddr)
    if cmd == abi.FUTEX_WAKE:
        return futex_wake(task, uaddr, flags, val)
    return futex_wait(task, uaddr, flags, val & _U32, abs_time)


# -- WAIT --------------------------------------------------------------------------------


def _wait_param_check(task: Task, vaddr: int, flags: int, abs_time: int) -> int:
    """``OsFutexWaitParamCheck``: a LOS code, or LOS_OK."""
    if task.in_interrupt:  # OS_INT_ACTIVE
        return abi.LOS_EINTR
    if flags & ~abi.FUTEX_PRIVATE:
        return abi.LOS_EINVAL
    if not user_address_ok(vaddr):
        return abi.LOS_EINVAL
    # "if (flags && OsFutexKeyShmPermCheck(...))": flags is 0 or FUTEX_PRIVATE here, and
    # the check only fails for a shared futex (flags 0): it never runs on this path.
    if not abs_time:
        return abi.LOS_ETIMEDOUT  # before the value check (PR !751)
    return abi.LOS_OK


class WaitRequest:
    """One WAIT: the task's futex node and the arguments (``OsFutexWaitTask``)."""

    __slots__ = ("manager", "node", "private", "target", "uaddr", "val")

    def __init__(self, task: Task, uaddr: int, private: bool, val: int) -> None:
        self.manager = task.kernel.futex
        self.target = task.process.target
        self.uaddr = uaddr
        self.private = private
        self.val = val
        # The priority is sampled here: a later set_priority does not move the node.
        self.node = FutexNode(owner=task, prio=task.priority, tid=task.tid)

    def prepare(self, notify: Callable[[Waiter], None]) -> int | None:
        """Under the bucket lock: copy the word in (fault: EINVAL), compare (EBADF), queue
        by priority.  ``None`` when queued."""
        node = self.node
        node.notify = notify
        node.orphaned = False
        try:
            found = self.manager.try_wait_prepare(
                node, self.target, self.uaddr, self.private, self.val
            )
        except (MemoryFault, MisalignedAddress):
            return -abi.LOS_EINVAL  # LOS_ArchCopyFromUser failed
        return None if found is None else LITEOS_POLICY.value_mismatch

    def complete(self) -> int | None:
        """0 if a waker dequeued the node; ``None`` if this call dequeued it, or if a
        faithful zero-count wake orphaned it (the wait goes on to its timeout)."""
        node = self.node
        if self.manager.wait_complete(node):
            return None if node.orphaned else 0
        return None

    def detach(self) -> None:
        self.node.notify = None


def futex_wait(task: Task, uaddr: int, flags: int, val: int, abs_time: int) -> int | PendingWait:
    """``OsFutexWait``: the checks, the timeout in ticks, then queue and block."""
    err = _wait_param_check(task, uaddr, flags, abs_time)
    if err:
        return -err
    kernel = task.kernel
    deadline: Deadline | None = None
    if abs_time != abi.LOS_WAIT_FOREVER:
        ticks = ns_to_ticks(abs_time * abi.OS_SYS_NS_PER_US, kernel.tick_hz)
        if ticks != abi.LOS_WAIT_FOREVER:  # a saturated count is "forever" to the scheduler
            now = kernel.clock.now(ClockId.MONOTONIC)
            deadline = (ClockId.MONOTONIC, now + ticks * kernel.ns_per_tick)
    request = WaitRequest(task, uaddr, bool(flags & abi.FUTEX_PRIVATE), val)
    return PendingWait(task, deadline, request, kernel.clock).start()


# -- WAKE --------------------------------------------------------------------------------


def futex_wake(task: Task, uaddr: int, flags: int, wake_number: int) -> int:
    """``OsFutexWake``: 0 when the key has waiters, EBADF when it has none."""
    if (flags & ~abi.FUTEX_PRIVATE) != abi.FUTEX_WAKE or not user_address_ok(uaddr):
        return -abi.LOS_EINVAL
    private = bool(flags & abi.FUTEX_PRIVATE)
    target = task.process.target
    if not private and not target.phys.paddr(target.space, uaddr):
        return -abi.LOS_EINVAL  # OsFutexKeyShmPermCheck: no physical page
    manager = task.kernel.futex
    if wake_number > 0:
        # Every LiteOS waiter matches any bitset and none is a PI waiter, so the core
        # wakes nobody exactly when the key has no head: OsFutexWakeTask's EBADF.
        woken = manager.wake(target, uaddr, private, MATCH_ANY, wake_number)
        return 0 if woken else _EMPTY_WAKE
    key = manager.key(target, uaddr, private)
    b = manager.bucket_of(key)
    with b.lock:
        q = b.queues.get(key)
        if q is None:
            return _EMPTY_WAKE
        if task.kernel.faithful:
            _orphan_locked(manager, b, q)
    return 0


def _orphan_locked(manager: FutexManager, b: Bucket, q: WaitQueue) -> None:
    """LiteOS's ``wakeNumber <= 0`` path: ``OsFutexDeleteKeyFromFutexList`` +
    ``OsFutexDeinitFutexNode`` on the head — the whole ring leaves the bucket, unwoken."""
    for w in list(q):
        assert isinstance(w, FutexNode), f"not a LiteOS futex node: {w!r}"
        w.orphaned = True  # before the dequeue: see futex.liteos.blocking
        manager.dequeue_locked(b, w)


# -- REQUEUE -----------------------------------------------------------------------------


def futex_requeue(
    task: Task, uaddr: int, flags: int, wake_number: int, count: int, new_uaddr: int
) -> int:
    """``OsFutexRequeue``: wake up to ``wake_number`` waiters of the old key in priority
    order, then move the first ``count`` remaining ones (its highest-priority waiters) to
    the new key, each inserted by priority.  EBADF if nothing was woken or moved."""
    if uaddr == new_uaddr and LITEOS_POLICY.same_futex_requeue is not None:
        return LITEOS_POLICY.same_futex_requeue
    if (flags & ~abi.FUTEX_PRIVATE) != abi.FUTEX_REQUEUE:
        return -abi.LOS_EINVAL
    if not user_address_ok(uaddr) or not user_address_ok(new_uaddr):
        return -abi.LOS_EINVAL
    private = bool(flags & abi.FUTEX_PRIVATE)
    # OsFutexRequeueRemoveOldKeyAndGetHead: waking nobody (with wakeNumber > 0) skips the
    # requeue, as does a count <= 0 — the core's requeue does both.
    woken, moved = task.kernel.futex.requeue(
        task.process.target, uaddr, new_uaddr, private, wake_number, count
    )
    return 0 if woken or moved else -abi.LOS_EBADF
