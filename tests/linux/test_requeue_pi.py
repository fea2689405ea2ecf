"""Requeue-PI: FUTEX_WAIT_REQUEUE_PI + FUTEX_CMP_REQUEUE_PI (Linux ``kernel/futex/requeue.c``,
man futex(2); the pthread_cond_* over a PI mutex pattern of glibc).

Each test names the kernel behaviour it pins down.  Blocking uses the cooperative form;
timeouts run on the manual clock.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest

from futex.kernel import ClockId, ManualClock
from futex.linux import LinuxKernel, PendingWait, Process, Task, abi

PRIV = abi.FUTEX_PRIVATE_FLAG
WAIT_RQ = abi.FUTEX_WAIT_REQUEUE_PI | PRIV
CMP_RQ = abi.FUTEX_CMP_REQUEUE_PI | PRIV
UNLOCK = abi.FUTEX_UNLOCK_PI | PRIV
INT_MAX = 0x7FFFFFFF
SEC = 10**9


def blocked(r: int | PendingWait) -> PendingWait:
    assert isinstance(r, PendingWait), f"expected the call to block, it returned {r}"
    assert not r.done()
    return r


@dataclass(frozen=True)
class World:
    """A process with four tasks, a condition word and a PI mutex word on one page."""

    process: Process
    tasks: tuple[Task, Task, Task, Task]
    #: the condition variable's futex word (FUTEX_WAIT_REQUEUE_PI waits here)
    cv: int
    #: the PI mutex word the waiters are requeued to
    mutex: int


@pytest.fixture
def world(kernel: LinuxKernel) -> World:
    p = kernel.new_process()
    tasks = (p.new_task(), p.new_task(), p.new_task(), p.new_task())
    page = p.mmap(4096)
    return World(process=p, tasks=tasks, cv=page, mutex=page + 64)


def test_broadcast_takes_the_free_mutex_for_one_and_queues_the_rest(
    world: World,
) -> None:
    """futex_proxy_trylock_atomic: the top waiter gets the uncontended PI futex (woken,
    returns 0 owning it); the others are requeued onto its PI state; UNLOCK_PI hands on."""
    p, cv, m = world.process, world.cv, world.mutex
    t1, t2, t3, waker = world.tasks
    r1 = blocked(t1.syscall_futex_nb(cv, WAIT_RQ, 0, 0, m, 0))
    r2 = blocked(t2.syscall_futex_nb(cv, WAIT_RQ, 0, 0, m, 0))
    r3 = blocked(t3.syscall_futex_nb(cv, WAIT_RQ, 0, 0, m, 0))
    assert waker.syscall_futex(cv, CMP_RQ, 1, INT_MAX, m, 0) == 3  # 1 woken + 2 requeued
    assert r1.result() == 0 and not r2.done() and not r3.done()
    assert p.load_u32(m) == abi.FUTEX_WAITERS | t1.tid  # WAITERS forced: more were moved
    assert t1.syscall_futex(m, UNLOCK, 0, 0, 0, 0) == 0
    assert r2.result() == 0 and p.load_u32(m) == abi.FUTEX_WAITERS | t2.tid
    assert t2.syscall_futex(m, UNLOCK, 0, 0, 0, 0) == 0
    assert r3.result() == 0 and p.load_u32(m) == abi.FUTEX_WAITERS | t3.tid
    assert t3.syscall_futex(m, UNLOCK, 0, 0, 0, 0) == 0
    assert p.load_u32(m) == 0


def test_signal_alone_takes_the_mutex_without_waiters_bit(
    world: World,
) -> None:
    """nr_requeue 0 and a free mutex: the top waiter takes it and nobody else is moved;
    FUTEX_WAITERS is not forced (set_waiters = nr_requeue)."""
    p, cv, m = world.process, world.cv, world.mutex
    t1, t2, _, waker = world.tasks
    r1 = blocked(t1.syscall_futex_nb(cv, WAIT_RQ, 0, 0, m, 0))
    r2 = blocked(t2.syscall_futex_nb(cv, WAIT_RQ, 0, 0, m, 0))
    assert waker.syscall_futex(cv, CMP_RQ, 1, 0, m, 0) == 1
    assert r1.result() == 0 and p.load_u32(m) == t1.tid
    assert not r2.done()
    t2.interrupt(handler=False)  # still on the condvar: restarts
    assert not r2.done()
    p.store_u32(cv, 1)
    assert t2.interrupt(handler=True) and r2.result() == -abi.EAGAIN  # restart re-checks


def test_contended_mutex_requeues_one_more_than_asked(
    world: World,
) -> None:
    """"Requeue nr_requeue waiters and possibly one more ... if we couldn't acquire the
    lock atomically": with the mutex held, nr_requeue 0 still moves the top waiter."""
    p, cv, m = world.process, world.cv, world.mutex
    t1, t2, owner, waker = world.tasks
    p.store_u32(m, owner.tid)
    r1 = blocked(t1.syscall_futex_nb(cv, WAIT_RQ, 0, 0, m, 0))
    r2 = blocked(t2.syscall_futex_nb(cv, WAIT_RQ, 0, 0, m, 0))
    assert waker.syscall_futex(cv, CMP_RQ, 1, 0, m, 0) == 1
    assert p.load_u32(m) == abi.FUTEX_WAITERS | owner.tid
    assert owner.syscall_futex(m, UNLOCK, 0, 0, 0, 0) == 0
    assert r1.result() == 0 and not r2.done()
    assert t1.syscall_futex(m, UNLOCK, 0, 0, 0, 0) == 0
    t2.interrupt(handler=True, restart=False)  # not requeued: restart (ERESTARTNOINTR)
    assert not r2.done()
    assert waker.syscall_futex(cv, CMP_RQ, 1, 0, m, 0) == 1
    assert r2.result() == 0


def test_signal_after_the_requeue_is_ewouldblock(
    world: World,
) -> None:
    """futex_wait_requeue_pi: once requeued, -EINTR from the rt_mutex wait becomes
    -EWOULDBLOCK (the restart would only find the condvar word changed)."""
    p, cv, m = world.process, world.cv, world.mutex
    t1, _, owner, waker = world.tasks
    p.store_u32(m, owner.tid)
    r1 = blocked(t1.syscall_futex_nb(cv, WAIT_RQ, 0, 0, m, 0))
    assert waker.syscall_futex(cv, CMP_RQ, 1, 0, m, 0) == 1
    assert t1.interrupt(handler=False)
    assert r1.result() == -abi.EWOULDBLOCK
    assert owner.syscall_futex(m, UNLOCK, 0, 0, 0, 0) == 0
    assert p.load_u32(m) == 0  # nobody left in the kernel


def test_timeout_after_the_requeue_drops_the_boost(
    kernel: LinuxKernel, clock: ManualClock, world: World
) -> None:
    """A requeued RT waiter boosts the mutex owner (rt_mutex PI); its timeout takes the
    boost away and returns ETIMEDOUT."""
    p, cv, m = world.process, world.cv, world.mutex
    t1, _, owner, waker = world.tasks
    t1.set_scheduler(abi.SCHED_FIFO, 30)
    ts = p.mmap(4096)
    # WAIT_REQUEUE_PI timeouts are absolute CLOCK_MONOTONIC without FUTEX_CLOCK_REALTIME.
    p.write(ts, struct.pack("<qq", clock.now(ClockId.MONOTONIC) // SEC + 5, 0))
    p.store_u32(m, owner.tid)
    r1 = blocked(t1.syscall_futex_nb(cv, WAIT_RQ, 0, ts, m, 0))
    assert owner.prio == abi.DEFAULT_PRIO  # waiting on the condvar boosts nobody
    assert waker.syscall_futex(cv, CMP_RQ, 1, 0, m, 0) == 1
    assert owner.prio == abi.MAX_RT_PRIO - 1 - 30
    clock.advance(6 * SEC)
    assert r1.result() == -abi.ETIMEDOUT
    assert owner.prio == abi.DEFAULT_PRIO
    p.futex.pi.check_task(owner)
    p.futex.pi.check_task(t1)


@pytest.mark.parametrize(
    ("why", "uaddr2_off", "nr_wake", "nr_requeue"),
    [
        ("nr_wake must be 1", 64, 2, 0),
        ("nr_wake must be 1 (0)", 64, 0, 0),
        ("same address", 0, 1, 0),
        ("negative requeue count", 64, 1, -1),
    ],
)
def test_cmp_requeue_pi_argument_rules(
    world: World,
    why: str,
    uaddr2_off: int,
    nr_wake: int,
    nr_requeue: int,
) -> None:
    """futex_requeue(requeue_pi): EINVAL before any key or value is looked at."""
    cv = world.cv
    waker = world.tasks[3]
    got = waker.syscall_futex(cv, CMP_RQ, nr_wake, nr_requeue & 0xFFFFFFFF, cv + uaddr2_off, 5)
    assert got == -abi.EINVAL, why


def test_wrong_target_and_plain_waiters_are_einval(
    world: World,
) -> None:
    """A waiter that declared another PI futex, or a plain FUTEX_WAIT waiter, on the
    condvar: CMP_REQUEUE_PI answers EINVAL; plain WAKE meeting a WAIT_REQUEUE_PI waiter
    answers EINVAL too (``this->rt_waiter``)."""
    p, cv, m = world.process, world.cv, world.mutex
    t1, t2, _, waker = world.tasks
    r1 = blocked(t1.syscall_futex_nb(cv, WAIT_RQ, 0, 0, m + 4, 0))
    assert waker.syscall_futex(cv, CMP_RQ, 1, 0, m, 0) == -abi.EINVAL
    assert waker.syscall_futex(cv, abi.FUTEX_WAKE | PRIV, 1, 0, 0, 0) == -abi.EINVAL
    assert waker.syscall_futex(cv, abi.FUTEX_CMP_REQUEUE | PRIV, 1, 1, m, 0) == -abi.EINVAL
    t1.interrupt()
    p.store_u32(cv, 1)
    t1.interrupt()
    assert r1.result() == -abi.EAGAIN
    p.store_u32(cv, 0)
    r2 = blocked(t2.syscall_futex_nb(cv, abi.FUTEX_WAIT | PRIV, 0, 0, 0, 0))
    assert waker.syscall_futex(cv, CMP_RQ, 1, 0, m, 0) == -abi.EINVAL
    assert waker.syscall_futex(cv, abi.FUTEX_WAKE | PRIV, 1, 0, 0, 0) == 1
    assert r2.result() == 0


def test_wait_requeue_pi_checks(world: World) -> None:
    """futex_wait_requeue_pi: uaddr == uaddr2 EINVAL; value mismatch EAGAIN; an
    unmapped target EFAULT (its key is taken first); compare value mismatch EAGAIN."""
    p, cv, m = world.process, world.cv, world.mutex
    t1, _, _, waker = world.tasks
    assert t1.syscall_futex(cv, WAIT_RQ, 0, 0, cv, 0) == -abi.EINVAL
    assert t1.syscall_futex(cv, WAIT_RQ, 1, 0, m, 0) == -abi.EAGAIN
    assert t1.syscall_futex(cv, WAIT_RQ, 0, 0, m + 2, 0) == -abi.EINVAL  # misaligned target
    shared_wait = abi.FUTEX_WAIT_REQUEUE_PI  # shared key of an unmapped target
    assert t1.syscall_futex(cv, shared_wait, 0, 0, 0x1000, 0) == -abi.EFAULT
    assert waker.syscall_futex(cv, CMP_RQ, 1, 0, m, 7) == -abi.EAGAIN
    assert waker.syscall_futex(cv, CMP_RQ, 1, 0, m, 0) == 0  # nobody waits
    assert p.load_u32(m) == 0


def test_requeued_waiters_join_this_process_state_not_the_owners_other_one(
    kernel: LinuxKernel,
) -> None:
    """futex_requeue's PI path attaches the requeued waiters to the PI state it just made
    for the new owner (``futex_proxy_trylock_atomic`` -> ``lock_pi_update_atomic`` ->
    ``attach_to_pi_owner``).  The owner may also own a PI state of *another* process at
    the same private address (a waiter there names its tid); that one must not be
    picked, or the next UNLOCK_PI unlinks from the wrong queue."""
    a, b = kernel.new_process(), kernel.new_process()
    owner, other, requeuer = b.new_task(), b.new_task(), b.new_task()
    foreign = a.new_task()
    x_a, x_b = a.mmap(4096), b.mmap(4096)
    assert x_a == x_b  # the same private address in both processes
    a.store_u32(x_a, owner.tid)
    held = blocked(foreign.syscall_futex_nb(x_a, abi.FUTEX_LOCK_PI | PRIV, 0, 0, 0, 0))
    cv, m = x_b + 64, x_b
    r_owner = blocked(owner.syscall_futex_nb(cv, WAIT_RQ, 0, 0, m, 0))
    r_other = blocked(other.syscall_futex_nb(cv, WAIT_RQ, 0, 0, m, 0))
    assert requeuer.syscall_futex(cv, CMP_RQ, 1, INT_MAX, m, 0) == 2  # 1 woken + 1 moved
    assert r_owner.result() == 0 and b.load_u32(m) == abi.FUTEX_WAITERS | owner.tid
    assert owner.syscall_futex(m, UNLOCK, 0, 0, 0, 0) == 0  # hands B's lock to `other`
    assert r_other.result() == 0 and b.load_u32(m) == abi.FUTEX_WAITERS | other.tid
    assert not held.done()  # A's lock is untouched: still the owner's, still waited on
    a.futex.check_invariants()
    b.futex.check_invariants()
    held.kill()
