"""glibc's robust mutex over the emulated futex(2): an owner dies holding it, the next
locker recovers it with EOWNERDEAD.

The user-space half is :mod:`futex.demo.robust_mutex` (glibc's ``__pthread_mutex_lock_full``
/ ``__pthread_mutex_unlock_full`` / ``pthread_mutex_consistent`` for a robust mutex, and
the robust list ``start_thread`` registers), the one copy the demo's robust-futex scenario
uses too; the kernel half is the emulated ``set_robust_list`` and task exit (Linux
``exit_robust_list`` / ``handle_futex_death``).  Sources: gVisor's
``test/syscalls/linux/futex.cc`` (``RobustFutexTest``), glibc's ``nptl/descr.h``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from futex.demo.robust_mutex import EOWNERDEAD, RobustList, RobustMutex
from futex.linux import LinuxKernel, Task
from tests.linux.robust_support import OWNER_DIED, PAGE, WAITERS


def glibc_thread(task: Task, head: int) -> RobustList:
    """The robust list of a glibc thread, registered at thread start as ``start_thread``
    does (an empty list points at itself)."""
    rl = RobustList(task, head)
    assert rl.register() == 0
    return rl


def test_gvisor_pthread_mutex_attr(kernel: LinuxKernel) -> None:
    """gVisor RobustFutexTest.PthreadMutexAttr: a thread locks three robust mutexes and
    exits holding them; the next locker gets EOWNERDEAD for each, makes it consistent
    (0) and unlocks it (0).  In between, each word holds exactly FUTEX_OWNER_DIED: the
    dead owner's TID was cleared and nobody waited."""
    p = kernel.new_process()
    main, thread = p.new_task(), p.new_task()
    mem = p.mmap(PAGE)
    gmain, gthread = glibc_thread(main, mem), glibc_thread(thread, mem + 0x40)
    mutexes = [RobustMutex(p, mem + 0x100 + 0x40 * i, pi=False) for i in range(3)]
    for m in mutexes:
        assert m.lock(gthread).result == 0
    assert p.load_u32(mutexes[0].word) == thread.tid
    assert gthread.entries() == [m.entry for m in reversed(mutexes)]
    thread.exit()
    assert [p.load_u32(m.word) for m in mutexes] == [OWNER_DIED] * 3
    for m in mutexes:
        assert m.lock(gmain).result == EOWNERDEAD
        assert p.load_u32(m.word) == main.tid
        assert m.consistent(gmain) == 0
        assert m.unlock(gmain) is None  # unlocked (0), no waiters: no futex call
        assert p.load_u32(m.word) == 0
    assert gmain.entries() == []


def test_robust_mutex_waiter_woken_by_owner_death(
    kernel: LinuxKernel, run_blocking: Callable[..., Any]
) -> None:
    """Linux handle_futex_death: a locker blocked in FUTEX_WAIT (WAITERS set) on a robust
    mutex whose owner dies is woken; it finds OWNER_DIED|WAITERS, takes the lock keeping
    WAITERS, and gets EOWNERDEAD."""
    p = kernel.new_process()
    main, thread = p.new_task(), p.new_task()
    mem = p.mmap(PAGE)
    gmain, gthread = glibc_thread(main, mem), glibc_thread(thread, mem + 0x40)
    m = RobustMutex(p, mem + 0x100, pi=False)
    assert m.lock(gthread).result == 0
    locker = run_blocking(lambda: m.lock(gmain), main)
    assert p.load_u32(m.word) == thread.tid | WAITERS
    thread.exit()
    assert locker.result().result == EOWNERDEAD
    assert p.load_u32(m.word) == main.tid | WAITERS
    assert m.consistent(gmain) == 0
    assert m.unlock(gmain) == 0  # unlocked; WAITERS was kept, so FUTEX_WAKE: nobody left
    assert p.load_u32(m.word) == 0


def test_unlock_leaves_the_next_entrys_pi_bit_alone(
    kernel: LinuxKernel, run_blocking: Callable[..., Any]
) -> None:
    """glibc DEQUEUE_MUTEX (``prev->__next = mutex->__list.__next``): unlinking a mutex
    hands its predecessor the mutex's own ``next`` link as stored, whose bit 0 says
    whether the *next* entry is PI.  A thread that holds a plain and a PI robust mutex and
    unlocks the PI one leaves the plain one linked without the PI bit, so when it dies the
    exit walk treats that entry as plain (Linux handle_futex_death) and wakes its waiter."""
    p = kernel.new_process()
    owner, waiter = p.new_task(), p.new_task()
    mem = p.mmap(PAGE)
    rl, rw = glibc_thread(owner, mem), glibc_thread(waiter, mem + 0x40)
    plain = RobustMutex(p, mem + 0x100, pi=False)
    pi = RobustMutex(p, mem + 0x140, pi=True)
    assert plain.lock(rl).result == 0 and pi.lock(rl).result == 0
    assert rl.entries() == [pi.entry | 1, plain.entry]
    assert pi.unlock(rl) is None
    assert rl.entries() == [plain.entry]
    locker = run_blocking(lambda: plain.lock(rw), waiter)
    owner.exit()
    out = locker.result()
    assert (out.result, out.syscall, out.syscall_result) == (EOWNERDEAD, "WAIT", 0)
    assert plain.consistent(rw) == 0
    assert plain.unlock(rw) == 0 and plain.value == 0
