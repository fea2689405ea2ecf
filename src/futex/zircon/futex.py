"""Zircon's futex system calls over the core: wait/wake/requeue with ownership and PI.

Mirrors ``FutexContext::FutexWait`` / ``FutexWake`` / ``FutexRequeue`` / ``FutexGetOwner``
(``zircon/kernel/object/futex_context.cc``).  Order of checks:

=========================  =============================================================
wait                       null or misaligned pointer -> INVALID_ARGS; the owner handle is
                           resolved now but its error is kept; under the thread lock: read
                           the word (fault -> INVALID_ARGS); mismatch -> BAD_STATE; the
                           kept owner error (BAD_HANDLE, WRONG_TYPE, INVALID_ARGS for a
                           thread of another process or not started); owner is the caller
                           or waits on this futex -> INVALID_ARGS; then the owner is
                           assigned and the thread blocks (an expired deadline still
                           assigns it)
wake / wake_single_owner   null or misaligned -> INVALID_ARGS; no waiters -> OK; wake up to
                           n; RELEASE: unowned (even n = 0); ASSIGN_WOKEN: the woken thread
                           owns it if waiters remain
requeue(_single_owner)     both pointers, and a requeue pointer outside the user address
                           range -> INVALID_ARGS; the same futex -> INVALID_ARGS (before
                           reading); read the wake word: mismatch -> BAD_STATE; kept owner
                           error; owner waits on either futex -> INVALID_ARGS; then wake,
                           move, assign (nothing changes before every check has passed)
get_owner                  pointer; owner koid or ZX_KOID_INVALID; store (fault or null ->
                           INVALID_ARGS)
=========================  =============================================================

Arguments are the C prototype's (``zircon/syscalls.h``): pointers are 64-bit
(``uintptr_t``), counts ``uint32_t``, ``current_value`` a 32-bit ``zx_futex_t``, handles
``zx_handle_t`` (``uint32_t``), deadlines ``zx_time_t`` (``int64_t``); a Python int out of
range is truncated as the C call would (``wake_count=-1`` is ``UINT32_MAX``), anything
else raises ``TypeError`` naming the argument.  The caller must be a running thread that is
not blocked in a call (:class:`~futex.kernel.TaskStateError` otherwise; see
:mod:`futex.kernel.caller`).

The requeue pointer is never read: Zircon only checks that it is non-null and aligned
(``ValidateFutexPointer``) and keys by it.  One outside the user address range cannot be
keyed here, and ``docs/reference/syscalls/futex_requeue.md`` lists "not a valid userspace
pointer" under ZX_ERR_INVALID_ARGS, so it is refused with the pointer checks, before any
queue is touched ("if the call fails for any reason, no changes to ownership for either
futex are made").  An unmapped requeue pointer inside the range is a key like any other.

Ownership (``docs/reference/kernel_objects/futex.md``): a futex is unowned or has one
owner; a futex without waiters has no owner (``ResetOwnerIfNoWaiters``); a dying or dead
thread named as owner means no owner; an owner that exits leaves its futexes unowned.  A
proposed owner whose chain (owner -> futex it waits on -> that futex's owner -> ...) leads
back to the futex or to the blocking thread would close a cycle: the owner is silently
set to nothing and the call goes on (``LockForOwnerReplacement``).

Locking: everything here runs under the kernel's thread lock (``kernel.lock``, the PI
domain's lock), inside which the core takes bucket locks; PI bookkeeping is done with no
bucket lock held; woken waiters are notified after the thread lock is released.  Each
waiting thread is queued twice, in step: in the core's wait queue (wake order: highest
effective priority, FIFO among equals) and in the futex's :class:`~futex.kernel.PiState`
(inheritance); the PI domain's ``on_reorder`` hook keeps the two orders equal when a
waiter's effective priority changes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from futex.kernel import (
    MATCH_ANY,
    ClockId,
    MemoryFault,
    MisalignedAddress,
    PiDeadlock,
    PiState,
    Waiter,
)
from futex.kernel.core import notify_all
from futex.zircon import abi
from futex.zircon.blocking import ZirconPendingWait
from futex.zircon.policy import ZIRCON_POLICY

if TYPE_CHECKING:
    from futex.zircon.kernel import Process, Thread

__all__ = [
    "futex_get_owner",
    "futex_requeue",
    "futex_wait",
    "futex_wake",
    "get_owner",
    "thread_exit",
]


_U32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1


def _s64(value: int) -> int:
    """A ``zx_time_t`` (int64_t) register."""
    value &= _U64
    return value - (1 << 64) if value >> 63 else value


def _bad_argument(call: str, **args: object) -> NoReturn:
    for name, value in args.items():
        if not isinstance(value, int):
            raise TypeError(
                f"{call} argument {name} must be an int, got {type(value).__name__}: {value!r}"
            )
    raise TypeError(f"{call} arguments must be ints")


def _bad_pointer(addr: int) -> bool:
    """``ValidateFutexPointer``: null or not ``sizeof(zx_futex_t)``-aligned."""
    return addr == 0 or addr % abi.FUTEX_ALIGN != 0


def _unkeyable(process: Process, addr: int) -> bool:
    """Whether the futex at ``addr`` (aligned) has no key here: outside the user address
    range, "not a valid userspace pointer" (``futex_requeue.md``)."""
    try:
        process.futex.key(process.space, addr, True)
    except (MemoryFault, MisalignedAddress):
        return True
    return False


def _resolve_owner(thread: Thread, handle: int) -> tuple[int, Thread | None]:
    """``ValidateFutexOwner``: (deferred status, owner).  Rights are not checked (the
    handle is looked up with rights 0), so ACCESS_DENIED cannot happen."""
    from futex.zircon.kernel import Thread, ThreadState

    if handle == abi.ZX_HANDLE_INVALID:
        return abi.ZX_OK, None
    obj = thread.process.handles.get(handle)
    if obj is None:
        return abi.ZX_ERR_BAD_HANDLE, None
    if not isinstance(obj, Thread):
        return abi.ZX_ERR_WRONG_TYPE, None
    if obj.process is not thread.process or obj.state is ThreadState.NEW:
        return abi.ZX_ERR_INVALID_ARGS, None
    if obj.state is not ThreadState.RUNNING:
        return abi.ZX_OK, None  # dying or dead: silently no owner
    return abi.ZX_OK, obj


def _assign_locked(process: Process, state: PiState, owner: Thread | None,
                   blocker: Thread | None) -> None:
    """Make ``owner`` the owner of ``state``, or nobody if that would close a cycle."""
    pi = process.kernel.pi
    if owner is not None and pi.would_cycle(state, owner, blocker):
        owner = None
    pi.attach(state, owner)


def _reset_if_idle_locked(process: Process, state: PiState) -> None:
    """``ResetOwnerIfNoWaiters``; an idle futex leaves the active table."""
    if not state.waiters:
        process.kernel.pi.attach(state, None)
        if process.states.get(state.key) is state:
            del process.states[state.key]


def _state_locked(process: Process, key: int) -> PiState:
    state = process.states.get(key)
    if state is None:
        state = process.states[key] = PiState(key, None)
    return state


def _woken_locked(woken: list[Waiter]) -> None:
    """Waiters a wake dequeued leave their inheritance queue (thread lock held)."""
    for w in woken:
        t: Thread = w.owner
        pw = t.pi_blocked_on
        if pw is not None:
            t.kernel.pi.unblock(pw)
        t.blocking_futex = None


# -- wait ---------------------------------------------------------------------------------


class WaitRequest:
    """One ``zx_futex_wait``: queue the thread, assign the owner, finish."""

    __slots__ = ("addr", "expected", "handle", "owner", "owner_status", "thread", "waiter")

    def __init__(self, thread: Thread, addr: int, expected: int, handle: int) -> None:
        self.thread = thread
        self.addr = addr
        self.expected = expected
        self.handle = handle
        self.owner_status = abi.ZX_OK
        self.owner: Thread | None = None
        self.waiter: Waiter | None = None

    def prepare(self, notify: Callable[[Waiter], None]) -> int | None:
        t = self.thread
        process = t.process
        # Resolved before any lock, reported after the value check (fxbug 34382).
        self.owner_status, self.owner = _resolve_owner(t, self.handle)
        with t.kernel.lock:
            try:
                cur = process.space.load_u32(self.addr)
            except MemoryFault:
                return abi.ZX_ERR_INVALID_ARGS
            if cur != self.expected:
                return ZIRCON_POLICY.value_mismatch
            if self.owner_status != abi.ZX_OK:
                return self.owner_status
            owner = self.owner
            key = self.addr
            if owner is t or (owner is not None and owner.blocking_futex == key):
                return abi.ZX_ERR_INVALID_ARGS
            if owner is not None and not _alive(owner):
                owner = None  # died since it was resolved
            w = Waiter(notify, owner=t, prio=t.prio, tid=t.koid)
            if process.futex.try_wait_prepare(w, process.space, key, True, cur) is not None:
                return ZIRCON_POLICY.value_mismatch  # changed between the two reads
            self.waiter = w
            state = _state_locked(process, key)
            _assign_locked(process, state, owner, t)  # assigned first, then block
            pi = t.kernel.pi
            try:
                pw = pi.block(state, t)
            except PiDeadlock:
                # An owner chain longer than the PI walk follows: as for a cycle, the owner
                # becomes nothing and the wait goes on (LockForOwnerReplacement); block()
                # queued nothing, and with no owner it cannot fail.
                pi.attach(state, None)
                pw = pi.block(state, t)
            pw.waiter = w
            if w.prio != pw.prio:
                # The thread gave the futex up (it owned it: the new owner replaced it) and
                # with it the boost its waiters lent it, after it queued: it waits at its
                # priority now (OwnedWaitQueue::BlockAndAssignOwner assigns, then blocks).
                process.futex.reposition(w, pw.prio)
            t.blocking_futex = key
        return None

    def complete(self) -> int | None:
        w = self.waiter
        if w is None:
            return None
        t = self.thread
        process = t.process
        with t.kernel.lock:
            if process.futex.wait_complete(w):
                return abi.ZX_OK  # the waker did the bookkeeping
            pw = t.pi_blocked_on  # its state follows requeues
            t.blocking_futex = None
            if pw is not None:
                state = pw.state
                t.kernel.pi.unblock(pw)
                _reset_if_idle_locked(process, state)
        return None

    def detach(self) -> None:
        if self.waiter is not None:
            self.waiter.notify = None


def futex_wait(
    thread: Thread, value_ptr: int, current_value: int, new_futex_owner: int, deadline: int
) -> int | ZirconPendingWait:
    """``sys_futex_wait`` -> ``FutexContext::FutexWait``."""
    try:
        value_ptr &= _U64
        current_value &= _U32
        new_futex_owner &= _U32
        deadline = _s64(deadline)
    except TypeError:
        _bad_argument("zx_futex_wait", value_ptr=value_ptr, current_value=current_value,
                      new_futex_owner=new_futex_owner, deadline=deadline)
    if _bad_pointer(value_ptr):
        return abi.ZX_ERR_INVALID_ARGS
    when = None if deadline == abi.ZX_TIME_INFINITE else (ClockId.MONOTONIC, deadline)
    request = WaitRequest(thread, value_ptr, current_value, new_futex_owner)
    return ZirconPendingWait(thread, when, request, thread.kernel.clock).start()


# -- wake ---------------------------------------------------------------------------------


def futex_wake(thread: Thread, value_ptr: int, wake_count: int, *, assign_woken: bool) -> int:
    """``sys_futex_wake`` / ``sys_futex_wake_single_owner`` -> ``FutexContext::FutexWake``
    (RELEASE / ASSIGN_WOKEN)."""
    try:
        value_ptr &= _U64
        wake_count &= _U32
    except TypeError:
        _bad_argument("zx_futex_wake", value_ptr=value_ptr, wake_count=wake_count)
    if _bad_pointer(value_ptr):
        return abi.ZX_ERR_INVALID_ARGS
    process = thread.process
    woken: list[Waiter] = []
    with thread.kernel.lock:
        state = process.states.get(value_ptr)
        if state is None:
            return abi.ZX_OK if ZIRCON_POLICY.empty_wake is None else ZIRCON_POLICY.empty_wake
        process.futex.wake(process.space, value_ptr, True, MATCH_ANY, wake_count, woken)
        _woken_locked(woken)
        new_owner = woken[0].owner if assign_woken and woken and state.waiters else None
        thread.kernel.pi.attach(state, new_owner)
        _reset_if_idle_locked(process, state)
    notify_all(woken)
    return abi.ZX_OK


# -- requeue ------------------------------------------------------------------------------


def futex_requeue(
    thread: Thread,
    value_ptr: int,
    wake_count: int,
    current_value: int,
    requeue_ptr: int,
    requeue_count: int,
    new_requeue_owner: int,
    *,
    assign_woken: bool,
) -> int:
    """``sys_futex_requeue`` / ``sys_futex_requeue_single_owner`` ->
    ``FutexContext::FutexRequeue``: every check, then ``WakeAndRequeue``.  Nothing can
    fail once a queue or an owner has changed."""
    try:
        value_ptr &= _U64
        wake_count &= _U32
        current_value &= _U32
        requeue_ptr &= _U64
        requeue_count &= _U32
        new_requeue_owner &= _U32
    except TypeError:
        _bad_argument("zx_futex_requeue", value_ptr=value_ptr, wake_count=wake_count,
                      current_value=current_value, requeue_ptr=requeue_ptr,
                      requeue_count=requeue_count, new_requeue_owner=new_requeue_owner)
    process = thread.process
    if _bad_pointer(value_ptr) or _bad_pointer(requeue_ptr) or _unkeyable(process, requeue_ptr):
        return abi.ZX_ERR_INVALID_ARGS
    if value_ptr == requeue_ptr and ZIRCON_POLICY.same_futex_requeue is not None:
        return ZIRCON_POLICY.same_futex_requeue
    owner_status, owner = _resolve_owner(thread, new_requeue_owner)
    pi = thread.kernel.pi
    woken: list[Waiter] = []
    with thread.kernel.lock:
        try:
            cur = process.space.load_u32(value_ptr)
        except MemoryFault:
            return abi.ZX_ERR_INVALID_ARGS
        if cur != current_value:
            return ZIRCON_POLICY.value_mismatch
        if owner_status != abi.ZX_OK:
            return owner_status
        if owner is not None and owner.blocking_futex in (value_ptr, requeue_ptr):
            return abi.ZX_ERR_INVALID_ARGS
        if owner is not None and not _alive(owner):
            owner = None
        # Every check has passed: from here on the call changes state and cannot fail.
        src = process.states.get(value_ptr)
        dst = process.states.get(requeue_ptr)
        if dst is not None:
            pi.attach(dst, None)  # the old target owner goes first (WakeAndRequeue step 2)
        if src is not None:
            _, moved = process.futex.requeue(
                process.space, value_ptr, requeue_ptr, True,
                wake_count, requeue_count, None, woken,
            )
            _woken_locked(woken)
            if moved:
                if dst is None:
                    dst = _state_locked(process, requeue_ptr)
                _move_locked(process, src, dst, requeue_ptr)
            new_owner = woken[0].owner if assign_woken and woken and src.waiters else None
            pi.attach(src, new_owner)
            _reset_if_idle_locked(process, src)
        if dst is not None:
            if dst.waiters:  # owned only while it has waiters
                _assign_locked(process, dst, owner, None)
            _reset_if_idle_locked(process, dst)
    notify_all(woken)
    return abi.ZX_OK


def _move_locked(process: Process, src: PiState, dst: PiState, key: int) -> None:
    """The waiters the core moved to ``key`` move to ``dst``'s inheritance queue too, in
    the order they were moved (each to the tail of its priority group, as in the core)."""
    pi = process.kernel.pi
    for pw in list(src.waiters):
        w = pw.waiter
        if w.key == key and w.bucket is not None:
            t: Thread = pw.task  # type: ignore[assignment]
            pi.unblock(pw)
            moved = pi.block(dst, t)
            moved.waiter = w
            t.blocking_futex = key


# -- get_owner and exit -------------------------------------------------------------------


def get_owner(thread: Thread, value_ptr: int) -> tuple[int, int]:
    """``FutexGetOwner`` without the store: (status, koid)."""
    try:
        value_ptr &= _U64
    except TypeError:
        _bad_argument("zx_futex_get_owner", value_ptr=value_ptr)
    if _bad_pointer(value_ptr):
        return abi.ZX_ERR_INVALID_ARGS, abi.ZX_KOID_INVALID
    owner = thread.process.owner_of(value_ptr)
    return abi.ZX_OK, abi.ZX_KOID_INVALID if owner is None else owner.koid


def futex_get_owner(thread: Thread, value_ptr: int, koid_ptr: int) -> int:
    """``sys_futex_get_owner`` -> ``FutexContext::FutexGetOwner``."""
    try:
        value_ptr &= _U64
        koid_ptr &= _U64
    except TypeError:
        _bad_argument("zx_futex_get_owner", value_ptr=value_ptr, koid=koid_ptr)
    status, koid = get_owner(thread, value_ptr)
    if status != abi.ZX_OK:
        return status
    if koid_ptr == 0:
        return abi.ZX_ERR_INVALID_ARGS
    try:
        thread.process.space.write(koid_ptr, struct.pack("<Q", koid))
    except MemoryFault:
        return abi.ZX_ERR_INVALID_ARGS
    return abi.ZX_OK


def thread_exit(thread: Thread) -> None:
    """The futex side of thread exit (after a blocked wait was ended):
    ``OwnedWaitQueue::DisownAllQueues`` — every owned futex becomes unowned."""
    from futex.zircon.kernel import ThreadState

    with thread.kernel.lock:
        thread.state = ThreadState.DEAD
        for state in list(thread.pi_states):
            thread.kernel.pi.attach(state, None)
    thread.process.threads.pop(thread.koid, None)


def _alive(thread: Thread) -> bool:
    from futex.zircon.kernel import ThreadState

    return thread.state is ThreadState.RUNNING

