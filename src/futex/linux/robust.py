"""Robust futex lists: ``set_robust_list`` / ``get_robust_list`` and the exit-time walk.

A robust mutex lives in user memory; its owner links it on a per-thread list whose head it
registers with ``set_robust_list``.  When the thread dies holding such a mutex, the kernel
walks that list and marks every lock the dying thread still owns ``FUTEX_OWNER_DIED`` (so
the next locker gets EOWNERDEAD from glibc) and wakes one waiter of each::

    struct robust_list      { struct robust_list *next; };  /* bit 0 of next: a PI futex */
    struct robust_list_head { struct robust_list list;      /* circular, via the head */
                              long futex_offset;            /* entry + offset = the word */
                              struct robust_list *list_op_pending; };  /* 24 bytes */

User-space protocol (glibc): to lock, set ``list_op_pending`` to the entry, take the word
(it becomes the TID), link the entry, clear ``list_op_pending``; to unlock, set
``list_op_pending``, unlink, clear the word (waking a waiter if FUTEX_WAITERS was set),
clear ``list_op_pending``.  The pending entry covers a thread that dies halfway.

The system calls (``kernel/futex/syscalls.c``)
----------------------------------------------
``set_robust_list(head, len)``: ``len`` is a ``size_t`` and must be 24 (EINVAL otherwise);
the head is stored unvalidated (NULL disables the walk).

``get_robust_list(pid, head_ptr, len_ptr)``: ``pid`` is an ``int`` (the register is
truncated to 32 bits; 0 means the caller); a pid naming no live task is ESRCH.  Linux 6.18
(``futex_get_robust_list_common``) then returns the head as a pointer-or-error, so a stored
head in ``[-4095, -1]`` comes back **as that errno**, with nothing written (``IS_ERR``;
measured on the host: ``set_robust_list(-14, 24)`` then ``get_robust_list(0, ...)`` answers
-14 and leaves both buffers alone; -4096 is an ordinary head; before 6.18 --
``get_robust_list_is_err`` false -- every head is).  Otherwise the length (a u64,
24) is stored to ``len_ptr`` **first** and then the head to ``head_ptr``, into the
*caller's* memory: a bad ``len_ptr`` is EFAULT with ``head_ptr`` untouched, a bad
``head_ptr`` is EFAULT with the length already written.  Each store is all or nothing (an
8-byte store straddling into an inaccessible page writes neither page), and either pointer
may be misaligned.  All of this was measured on the host kernel (Linux 6.18, x86-64).

Not modelled: the ``ptrace_may_access(PTRACE_MODE_READ_REALCREDS)`` check, EPERM in Linux.
Every emulated task belongs to one user with one set of credentials and is dumpable, and in
that world the check always passes (same uid/gid, no ``PR_SET_DUMPABLE``, no setuid
transitions; Yama's ptrace_scope restricts attaching, not READ mode).  Nor is the EINTR of
``down_read_killable(exec_update_lock)`` (a fatal signal during a concurrent exec).  A dead
task is gone from the emulated pid table at once, so it is ESRCH; Linux still finds a
thread-group leader that exited before its threads (a zombie) and answers its (NULL) head.

The walk (``kernel/futex/core.c``: ``exit_robust_list``, ``handle_futex_death``)
----------------------------------------------------------------------------------
Run by :func:`futex.linux.exit.exit_futex` and :func:`~futex.linux.exit.exec_futex`:

1. Read the head's three fields; any fault ends the walk before it starts.  Pointers have
   bit 0 (the PI marker) stripped; ``futex_offset`` is added modulo 2**64.
2. Follow ``next`` until it comes back to the head, at most ``ROBUST_LIST_LIMIT`` (2048)
   entries.  For each entry, read its ``next`` **before** handling it; handle it unless it
   is the pending entry (that one comes last, so it is never handled twice); if handling
   aborted, stop; if reading ``next`` faulted, stop (the entry itself *was* handled).  A
   stop skips the pending entry; reaching the limit does not.
3. Handle the pending entry, if any.

Handling a word (``handle_futex_death``): a misaligned word, or one that cannot be read,
aborts the walk.  A pending, non-PI entry whose owner (TID bits) is 0 gets a wake of one
waiter and nothing else (the owner died between unlocking and waking, or a woken waiter
died before taking the lock; this is 6.2's 90d758896787: before, with
``robust_pending_wake_tid0`` false, only a word that is 0 got the wake).  A word owned
by another TID is left alone.  A word owned by the dying task is compare-and-swapped to
``(word & FUTEX_WAITERS) | FUTEX_OWNER_DIED`` -- the TID is cleared -- retrying if the
word changed meanwhile; a word that cannot be written aborts the walk.  Then, for a
non-PI futex with FUTEX_WAITERS set, one waiter is woken, even if OWNER_DIED was set
already (recursive death).  PI waiters are handed the lock by ``exit_pi_state_list``
instead.  Every wake is a *shared* futex wake of one waiter
(``FLAGS_SHARED``, whatever the mutex's private flag: glibc's robust mutexes wait shared),
and its errors are ignored.

Where gVisor differs (and this module follows Linux): gVisor wakes with a private flag taken
from bit 7 of the dead owner's TID, never wakes PI waiters, does not strip bit 0 before
following ``next``, answers EINVAL for a negative pid, and has no IS_ERR quirk.
"""

from __future__ import annotations

import contextlib
import struct
from typing import TYPE_CHECKING

from futex.kernel import MATCH_ANY, FutexError, MemoryFault
from futex.kernel.decode import U64_MASK, s32, u64
from futex.linux import abi
from futex.memory import PAGE_SIZE, AddressSpace

if TYPE_CHECKING:
    from futex.linux.kernel import Task

__all__ = [
    "exit_robust_list",
    "handle_futex_death",
    "put_user",
    "sys_get_robust_list",
    "sys_set_robust_list",
    "wake_shared_one",
]

#: ``IS_ERR_VALUE``: the top 4095 addresses are error codes (``MAX_ERRNO``).
_MAX_ERRNO = 4095
_HEAD = struct.Struct("<QQQ")  # next, futex_offset (as unsigned long), list_op_pending
_U64S = struct.Struct("<Q")


def put_user(space: AddressSpace, addr: int, data: bytes) -> None:
    """Store ``data`` (a ``put_user`` of up to 8 bytes) at ``addr``, all or nothing.

    x86's store either completes or faults as a whole: a store straddling into a page it
    may not write leaves both pages alone (measured with ``get_robust_list``).  Raises
    :class:`MemoryFault`.
    """
    split = (addr + len(data) - 1) & ~(PAGE_SIZE - 1)
    if split <= addr:
        space.write(addr, data)
        return
    first = space.mapping_at(addr)
    if first is None or not first.writable:
        raise MemoryFault(addr, "write", "not mapped" if first is None else "not writable")
    cut = split - addr
    space.write(split, data[cut:])  # the later page first: if it faults, nothing is written
    space.write(addr, data[:cut])


def wake_shared_one(task: Task, uaddr: int) -> None:
    """``futex_wake(uaddr, FLAGS_SIZE_32 | FLAGS_SHARED, 1, FUTEX_BITSET_MATCH_ANY)`` from
    the kernel's exit paths: any error (misaligned, fault, a PI waiter) is ignored."""
    process = task.process
    with contextlib.suppress(FutexError):
        process.futex.wake(process.space, uaddr, False, MATCH_ANY, 1)


# -- the system calls ---------------------------------------------------------------------------


def sys_set_robust_list(task: Task, head: int, length: int, *_: int) -> int:
    """set_robust_list(2): ``len != sizeof(struct robust_list_head)`` is EINVAL; the head
    is stored unvalidated."""
    head = u64(head)
    length = u64(length)
    if length != abi.ROBUST_LIST_HEAD_SIZE:
        return -abi.EINVAL
    task.robust_list = head
    task.robust_list_len = length
    return 0


def sys_get_robust_list(task: Task, pid: int, head_ptr: int, len_ptr: int, *_: int) -> int:
    """get_robust_list(2): the head of task ``pid`` (0: the caller) and the head size, into
    the caller's memory (the length first)."""
    pid = s32(pid)
    head_ptr = u64(head_ptr)
    len_ptr = u64(len_ptr)
    target = task if pid == 0 else task.kernel.task(pid)
    if target is None or not target.alive:
        return -abi.ESRCH
    head = target.robust_list
    if head > U64_MASK - _MAX_ERRNO and task.kernel.facts.get_robust_list_is_err:
        return head - (U64_MASK + 1)  # IS_ERR(head) (6.18+): the pointer is taken for an errno
    space = task.process.space
    try:
        put_user(space, len_ptr, _U64S.pack(abi.ROBUST_LIST_HEAD_SIZE))
        put_user(space, head_ptr, _U64S.pack(head))
    except MemoryFault:
        return -abi.EFAULT
    return 0


# -- the walk at exit and exec ------------------------------------------------------------------


def handle_futex_death(task: Task, uaddr: int, pi: bool, pending_op: bool) -> bool:
    """Process one robust-list word of the dying ``task``; True means abort the walk
    (Linux ``handle_futex_death`` returning nonzero)."""
    if uaddr & 3:
        return True
    space = task.process.space
    while True:
        try:
            uval = space.load_u32(uaddr)
        except MemoryFault:
            return True
        owner = uval & abi.FUTEX_TID_MASK
        # 6.2+ (90d758896787) looks at the TID bits only; before, the whole word had to be 0
        tid0 = not owner if task.kernel.facts.robust_pending_wake_tid0 else not uval
        if pending_op and not pi and tid0:
            wake_shared_one(task, uaddr)
            return False
        if owner != task.tid:
            return False
        mval = (uval & abi.FUTEX_WAITERS) | abi.FUTEX_OWNER_DIED
        try:
            nval = space.cas_u32(uaddr, uval, mval)
        except MemoryFault:  # fault_in_user_writeable failed: leave the futex locked
            return True
        if nval == uval:
            break
    if not pi and uval & abi.FUTEX_WAITERS:
        wake_shared_one(task, uaddr)
    return False


def exit_robust_list(task: Task) -> None:
    """Walk the task's robust list at exit or exec (Linux ``exit_robust_list``).

    The caller clears ``task.robust_list`` afterwards (``futex_cleanup``)."""
    head = u64(task.robust_list)
    space = task.process.space
    try:
        unext, futex_offset, upending = _HEAD.unpack(space.read(head, _HEAD.size))
    except MemoryFault:
        return
    entry, pi = unext & ~1, bool(unext & 1)
    pending, pip = upending & ~1, bool(upending & 1)
    limit = abi.ROBUST_LIST_LIMIT
    while entry != head:
        # Fetch the next entry before handling this one.
        try:
            unext = _U64S.unpack(space.read(entry, 8))[0]
            fetched = True
        except MemoryFault:
            fetched = False
        # A pending lock might already be on the list: don't process it twice.
        if entry != pending and handle_futex_death(task, u64(entry + futex_offset), pi, False):
            return
        if not fetched:
            return
        entry, pi = unext & ~1, bool(unext & 1)
        limit -= 1
        if not limit:  # excessively long or circular list
            break
    if pending:
        handle_futex_death(task, u64(pending + futex_offset), pip, True)
