"""PI futexes: priority inheritance (rt_mutex) and the exit of an owner.

Sources:

- **rt_mutex** (``kernel/locking/rtmutex.c``): priority inheritance scenarios of our own.
  ``Task.prio`` is Linux's ``task->prio`` (``/proc/<tid>/stat`` field 18 is ``prio - 100``):
  ``rt_mutex_setprio`` makes it ``min(normal_prio, top_pi_waiter->task->prio)``, where the
  top waiter is chosen in waiter order (RT priority, then FIFO: every non-RT waiter counts
  as DEFAULT_PRIO for the *order*).
- **Linux** ``kernel/futex/pi.c`` ``exit_pi_state_list`` and ``fixup_pi_state_owner``: what
  the exit of an owner does to its locks.  Answers marked *host* were measured on this
  machine's kernel (Linux 6.18, x86-64) with ``tests/support/hostfutex.py``.

Blocking scenarios use the cooperative form (``syscall_futex_nb`` -> ``PendingWait``).  Time
is a ManualClock.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from futex.linux import LinuxKernel, abi
from tests.linux.pi_support import (
    EAGAIN,
    EDEADLK,
    ESRCH,
    ETIMEDOUT,
    LOCK_PI2,
    OD,
    SEC,
    Lab,
    W,
    checked_lab,
    now,
)


@pytest.fixture(params=[True, False], ids=["private", "shared"])
def lab(kernel: LinuxKernel, request: pytest.FixtureRequest) -> Iterator[Lab]:
    yield from checked_lab(kernel, request.param)


@pytest.fixture
def plab(kernel: LinuxKernel) -> Iterator[Lab]:
    """Private only: the priority-inheritance scenarios, where the key kind is beside the
    point."""
    yield from checked_lab(kernel, True)


# =====================================================================================
# Priority inheritance (rt_mutex)
# =====================================================================================


def test_rt_waiter_boosts_a_normal_owner(plab: Lab) -> None:
    """rt_mutex: a SCHED_FIFO waiter boosts the SCHED_OTHER owner to its priority
    (99 - rt_priority; host: /proc stat priority -51 for rt_priority 50); released, the
    owner is back to its own and the new owner runs at its own."""
    owner, waiter = plab.task(), plab.rt(50)
    assert (owner.prio, waiter.prio) == (120, 49)
    assert plab.ulock(owner) == 0
    pw = plab.blocks(waiter)
    assert owner.prio == 49 and owner.normal_prio == 120
    plab.check()
    assert plab.unlock(owner) == 0
    assert pw.result() == 0
    assert owner.prio == 120
    assert waiter.prio == 49
    assert plab.unlock(waiter) == 0
    assert waiter.prio == 49


@pytest.mark.parametrize("order", ["bottom_up", "top_down"])
def test_boost_follows_a_chain_of_locks(plab: Lab, order: str) -> None:
    """rt_mutex_adjust_prio_chain: A (FIFO 60) waits on L1 held by B, B waits on L2 held
    by C: C runs at A's priority, whichever wait came first; released step by step, each
    owner loses the boost when it gives up the lock that carried it."""
    a_task, b_task, c_task = plab.rt(60), plab.task(), plab.task()
    l1, l2 = plab.a, plab.b
    plab.set(b_task.tid, l1)
    plab.set(c_task.tid, l2)
    if order == "bottom_up":
        pa = plab.blocks(a_task, l1)
        pb = plab.blocks(b_task, l2)
    else:
        pb = plab.blocks(b_task, l2)
        assert c_task.prio == 120
        pa = plab.blocks(a_task, l1)
    assert (a_task.prio, b_task.prio, c_task.prio) == (39, 39, 39)
    plab.check()

    assert plab.unlock(c_task, l2) == 0  # B gets L2, C loses the boost
    assert pb.result() == 0
    assert c_task.prio == 120 and b_task.prio == 39
    assert plab.word(l2) == W | b_task.tid
    assert plab.unlock(b_task, l2) == 0  # B still holds L1, which A waits on
    assert b_task.prio == 39
    assert plab.unlock(b_task, l1) == 0
    assert pa.result() == 0
    assert (a_task.prio, b_task.prio, c_task.prio) == (39, 120, 120)
    assert plab.unlock(a_task, l1) == 0
    assert plab.word(l1) == 0 and plab.word(l2) == 0


@pytest.mark.parametrize(
    ("owner_nice", "waiter_nice", "during"),
    [(0, -10, 110), (10, 0, 120), (0, 5, 120)],
)
def test_normal_waiter_sets_owner_prio_to_its_own(
    plab: Lab, owner_nice: int, waiter_nice: int, during: int
) -> None:
    """rt_mutex_setprio: prio = min(normal_prio, top waiter's task->prio), for SCHED_OTHER
    waiters too (host, /proc/<tid>/stat priority: a nice -10 waiter takes a nice 0 owner
    from 20 to 10; a nice 0 waiter a nice 10 owner from 30 to 20; a nice 5 waiter leaves
    a nice 0 owner at 20).  Released, the owner is back to 120 + nice."""
    owner = plab.task(nice=owner_nice)
    waiter = plab.task(nice=waiter_nice)
    assert plab.ulock(owner) == 0
    pw = plab.blocks(waiter)
    assert owner.prio == during
    assert waiter.prio == 120 + waiter_nice
    plab.check()
    assert plab.unlock(owner) == 0
    assert pw.result() == 0
    assert owner.prio == 120 + owner_nice
    assert plab.unlock(waiter) == 0


def test_normal_waiters_queue_fifo_whatever_their_nice(plab: Lab) -> None:
    """rt_mutex (__waiter_prio): every non-RT waiter counts as DEFAULT_PRIO, so they queue
    FIFO and the *first* is the owner's top waiter (host: a nice 5 waiter, then a nice -10
    one: the nice 0 owner stays at 20; the first times out: 10; the lock goes to the
    second)."""
    clock = plab.clock
    owner = plab.task()
    x = plab.task(nice=5)
    y = plab.task(nice=-10)
    assert plab.ulock(owner) == 0
    px = plab.blocks(x, utime=plab.realtime_in(1 * SEC))
    py = plab.blocks(y, utime=plab.realtime_in(5 * SEC))
    assert owner.prio == 120
    clock.advance(1 * SEC)
    assert px.result() == ETIMEDOUT
    assert owner.prio == 110
    plab.check()
    assert plab.unlock(owner) == 0
    assert py.result() == 0
    assert owner.prio == 120
    assert plab.word() == W | y.tid
    assert plab.unlock(y) == 0


def test_a_waiter_that_times_out_takes_its_boost_away(plab: Lab) -> None:
    """rt_mutex: a waiter leaving on timeout deboosts the owner (and the next waiter's
    priority applies)."""
    clock = plab.clock
    owner, hi, lo = plab.task(), plab.rt(80), plab.rt(10)
    assert plab.ulock(owner) == 0
    plo = plab.blocks(lo)
    phi = plab.blocks(hi, utime=plab.realtime_in(2 * SEC))
    assert owner.prio == 19
    clock.advance(2 * SEC)
    assert phi.result() == ETIMEDOUT
    assert owner.prio == 89
    assert hi.pi_blocked_on is None
    plab.check()
    assert plab.unlock(owner) == 0
    assert plo.result() == 0
    assert owner.prio == 120
    assert plab.unlock(lo) == 0


def test_an_exiting_waiter_takes_its_boost_away(plab: Lab) -> None:
    """Linux: a task that exits while blocked in LOCK_PI leaves the rt_mutex; the owner is
    deboosted, the word keeps WAITERS."""
    owner, waiter = plab.task(), plab.rt(70)
    assert plab.ulock(owner) == 0
    plab.blocks(waiter)
    assert owner.prio == 29
    waiter.exit()
    plab.tasks.remove(waiter)
    assert owner.prio == 120
    assert owner.pi_states == [] or all(not s.waiters for s in owner.pi_states)
    assert plab.queued() == 0
    assert plab.word() == owner.tid | W
    assert plab.unlock(owner) == 0
    assert plab.word() == 0


def test_deadlock_cycle_is_edeadlk(plab: Lab) -> None:
    """rt_mutex chain walk (futex uses RT_MUTEX_FULL_CHAINWALK): A holds L1 and waits on
    L2; B holds L2 and LOCK_PIs L1 -> EDEADLK, nothing queued, but L1's word has gained
    WAITERS (host: 0x8000<A>).  TRYLOCK_PI does no chain walk: EWOULDBLOCK (host)."""
    a_task, b_task = plab.task(), plab.task()
    l1, l2 = plab.a, plab.b
    plab.set(a_task.tid, l1)
    plab.set(b_task.tid, l2)
    pa = plab.blocks(a_task, l2)
    assert now(plab.lock(b_task, l1)) == EDEADLK
    assert plab.word(l1) == a_task.tid | W
    assert b_task.pi_blocked_on is None and b_task.blocked is None
    assert plab.queued() == 1
    assert plab.trylock(b_task, l1) == EAGAIN
    assert now(plab.call(b_task, LOCK_PI2, l1)) == EDEADLK
    plab.check()
    assert plab.unlock(b_task, l2) == 0
    assert pa.result() == 0
    assert plab.word(l2) == W | a_task.tid
    assert plab.unlock(a_task, l2) == 0
    assert plab.unlock(a_task, l1) == 0
    assert plab.word(l1) == 0 and plab.word(l2) == 0


def test_deadlock_through_a_longer_chain(plab: Lab) -> None:
    """rt_mutex: A holds L1, waits L2 (B's); B waits L3 (C's); C's LOCK_PI on L1 closes the
    cycle -> EDEADLK."""
    a_task, b_task, c_task = plab.task(), plab.task(), plab.task()
    l1, l2, l3 = plab.a, plab.a + 128, plab.a + 256
    plab.set(a_task.tid, l1)
    plab.set(b_task.tid, l2)
    plab.set(c_task.tid, l3)
    pa = plab.blocks(a_task, l2)
    pb = plab.blocks(b_task, l3)
    assert now(plab.lock(c_task, l1)) == EDEADLK
    assert c_task.pi_blocked_on is None
    assert plab.queued() == 2
    assert plab.unlock(c_task, l3) == 0
    assert pb.result() == 0
    assert plab.unlock(b_task, l3) == 0
    assert plab.unlock(b_task, l2) == 0
    assert pa.result() == 0
    assert plab.unlock(a_task, l2) == 0
    assert plab.unlock(a_task, l1) == 0


def test_raising_a_blocked_waiters_priority_propagates(plab: Lab) -> None:
    """sched_setscheduler -> rt_mutex_adjust_pi: a blocked waiter made RT boosts the owner
    at once and moves up in the wait order; made SCHED_OTHER again, the boost goes."""
    owner, first, second = plab.task(), plab.task(), plab.rt(10)
    assert plab.ulock(owner) == 0
    p1 = plab.blocks(first)
    p2 = plab.blocks(second)
    assert owner.prio == 89
    first.set_scheduler(abi.SCHED_FIFO, 30)
    assert first.prio == 69 and owner.prio == 69
    plab.check()
    first.set_scheduler(abi.SCHED_OTHER)
    assert owner.prio == 89
    first.set_scheduler(abi.SCHED_RR, 20)
    assert owner.prio == 79
    plab.check()
    assert plab.unlock(owner) == 0  # `first` is now the top waiter
    assert p1.result() == 0 and not p2.done()
    assert plab.word() == W | first.tid
    assert owner.prio == 120
    assert first.prio == 79  # its own; `second` (89) does not boost it
    assert plab.unlock(first) == 0
    assert p2.result() == 0
    assert plab.unlock(second) == 0


def test_owner_rescheduled_while_boosted(plab: Lab) -> None:
    """__sched_setscheduler: a boosted owner's new normal priority applies only if more
    urgent than the boost (rt_effective_prio)."""
    owner, waiter = plab.task(), plab.rt(50)
    assert plab.ulock(owner) == 0
    pw = plab.blocks(waiter)
    owner.set_scheduler(abi.SCHED_FIFO, 10)
    assert owner.normal_prio == 89 and owner.prio == 49
    owner.set_scheduler(abi.SCHED_FIFO, 70)
    assert owner.prio == 29
    owner.set_scheduler(abi.SCHED_OTHER, nice=5)
    assert owner.prio == 49
    plab.check()
    assert plab.unlock(owner) == 0
    assert pw.result() == 0
    assert owner.prio == 125
    assert plab.unlock(waiter) == 0


def test_pi_waiters_get_the_lock_in_priority_order(plab: Lab) -> None:
    """rt_mutex waiter order: highest RT priority first, FIFO among equals, every
    SCHED_OTHER waiter after the RT ones in arrival order; each UNLOCK_PI hands the lock
    to the next one, whose boost then comes from those still waiting."""
    owner = plab.task()
    arrivals = [
        ("other", plab.task()),
        ("fifo10a", plab.rt(10)),
        ("fifo50", plab.rt(50)),
        ("fifo10b", plab.task(abi.SCHED_RR, 10)),
        ("nice-10", plab.task(nice=-10)),
    ]
    assert plab.ulock(owner) == 0
    waits = {name: plab.blocks(t) for name, t in arrivals}
    tasks = dict(arrivals)
    assert owner.prio == 49
    # who gets the lock next, and the new owner's prio: its own, or its top waiter's
    # task->prio ("other" owns with "nice-10" waiting: 110, as measured on the host)
    expected = [("fifo50", 49), ("fifo10a", 89), ("fifo10b", 89), ("other", 110),
                ("nice-10", 110)]
    current = owner
    for i, (name, prio) in enumerate(expected):
        assert plab.unlock(current) == 0
        assert waits[name].result() == 0, name
        nxt = tasks[name]
        assert plab.word() == W | nxt.tid
        assert current.prio == current.normal_prio
        for later, _ in expected[i + 1:]:
            assert not waits[later].done()
        assert nxt.prio == prio, name
        plab.check()
        current = nxt
    assert plab.unlock(current) == 0
    assert plab.word() == 0


def test_pi_boost_tracks_the_top_waiter_of_each_lock_held(plab: Lab) -> None:
    """rt_mutex_adjust_prio: an owner of two contended locks runs at the more urgent of
    their top waiters; releasing one leaves the other's boost."""
    owner, w1, w2 = plab.task(), plab.rt(20), plab.rt(60)
    l1, l2 = plab.a, plab.b
    plab.set(owner.tid, l1)
    plab.set(owner.tid, l2)
    p1 = plab.blocks(w1, l1)
    assert owner.prio == 79
    p2 = plab.blocks(w2, l2)
    assert owner.prio == 39
    assert plab.unlock(owner, l2) == 0
    assert p2.result() == 0
    assert owner.prio == 79
    assert plab.unlock(owner, l1) == 0
    assert p1.result() == 0
    assert owner.prio == 120
    assert plab.unlock(w1, l1) == 0 and plab.unlock(w2, l2) == 0


# =====================================================================================
# Exit of an owner (exit_pi_state_list + fixup_pi_state_owner)
# =====================================================================================


def test_exit_hands_the_lock_to_the_top_waiter(lab: Lab) -> None:
    """Linux exit_pi_state_list: the PI state loses its owner (pi_state->owner = NULL) and
    the rt_mutex goes to the top waiter, whose fixup_pi_state_owner writes
    ``(word & OWNER_DIED) | WAITERS | tid`` with OWNER_DIED added because the state had no
    owner (host: a plain thread exit gives 0xc000<tid>).  The next hand-off is the usual
    WAITERS | tid."""
    owner, w1, w2 = lab.task(), lab.task(), lab.rt(10)
    assert lab.ulock(owner) == 0
    p1 = lab.blocks(w1)
    p2 = lab.blocks(w2)
    assert owner.prio == 89
    owner.exit()
    lab.tasks.remove(owner)
    assert p2.result() == 0  # the RT waiter is the top waiter
    assert not p1.done()
    assert lab.word() == OD | W | w2.tid
    assert w2.prio == 89
    lab.check()
    assert lab.unlock(w2) == 0
    assert p1.result() == 0
    assert lab.word() == W | w1.tid
    assert lab.unlock(w1) == 0
    assert lab.word() == 0
    assert lab.queued() == 0


def test_exit_with_owner_died_already_in_the_word(lab: Lab) -> None:
    """Linux: OWNER_DIED already in the word (as a robust-list walk leaves it) stays
    (host: 0xc000<tid> whether user space set OWNER_DIED or not)."""
    owner, waiter = lab.task(), lab.task()
    assert lab.ulock(owner) == 0
    pw = lab.blocks(waiter)
    lab.set(OD | W | owner.tid)
    owner.exit()
    lab.tasks.remove(owner)
    assert pw.result() == 0
    assert lab.word() == OD | W | waiter.tid
    assert lab.unlock(waiter) == 0
    assert lab.word() == 0


def test_exit_of_an_owner_of_several_locks(plab: Lab) -> None:
    """Linux exit_pi_state_list walks every PI state the task owns: each lock goes to its
    own top waiter; an uncontended one keeps the dead TID (ESRCH for the next locker)."""
    owner, w1, w2, late = plab.task(), plab.task(), plab.task(), plab.task()
    l1, l2, l3 = plab.a, plab.b, plab.a + 128
    for addr in (l1, l2, l3):
        plab.set(owner.tid, addr)
    p1 = plab.blocks(w1, l1)
    p2 = plab.blocks(w2, l2)
    owner.exit()
    plab.tasks.remove(owner)
    assert p1.result() == 0 and p2.result() == 0
    assert plab.word(l1) == OD | W | w1.tid
    assert plab.word(l2) == OD | W | w2.tid
    assert plab.word(l3) == owner.tid
    assert now(plab.lock(late, l3)) == ESRCH
    assert plab.unlock(w1, l1) == 0 and plab.unlock(w2, l2) == 0
    assert plab.queued() == 0
