"""futex.liteos: a musl-style mutex over SysFutex, and the LiteOS-A mutex tests
``testsuites/unittest/process/lock/mutex/smoke/pthread_mutex_test_019..022`` replayed over
it, with the table checked between steps.

Musl facts from ``third_party_musl/porting/liteos_a`` (``__timedwait.c``, ``__wake``);
kernel sources as in ``test_liteos_wait.py``.  Time is a ManualClock: nothing sleeps.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Generator
from typing import Any

import pytest

from futex.kernel import ClockId, ManualClock
from futex.liteos import (
    LiteosKernel,
    PendingWait,
    Process,
    QueuedTask,
    Task,
)
from futex.memory import PAGE_SIZE
from tests.liteos.liteos_support import (
    EINTR,
    ETIMEDOUT,
    FOREVER,
    MS,
    US,
    WAIT_P,
    WAKE_P,
    chain,
    setup,
)

# -- musl-style mutex over SysFutex, and pthread_mutex_test_019..022 ------------------------------

EBUSY = 16  # musl's NORMAL mutex holds EBUSY when locked, | 0x80000000 when contended
Gen = Generator[PendingWait, int, Any]


def sys_futex(task: Task, addr: int, flags: int, val: int, abs_time: int) -> Gen:
    """A SysFutex call inside a cooperative thread: yields the PendingWait if it blocks."""
    r = task.syscall_futex_nb(addr, flags, val, abs_time, 0)
    if isinstance(r, int):
        return r
    return (yield r)


class MuslMutex:
    """musl's PTHREAD_MUTEX_NORMAL lock/unlock as ported to LiteOS-A, over SysFutex:
    ``__pthread_mutex_timedlock`` (trylock; else count a waiter, set the contended bit,
    ``__timedwait``; retry unless it answered ETIMEDOUT) and ``__pthread_mutex_unlock``
    (swap 0; ``__wake(addr, 1)`` if there are waiters)."""

    def __init__(self, proc: Process, addr: int, clock: ManualClock) -> None:
        self.proc, self.addr, self.clock = proc, addr, clock
        self.waiters = 0
        proc.store_u32(addr, 0)

    def trylock(self) -> bool:
        return self.proc.cas_u32(self.addr, 0, EBUSY) == 0

    def timedlock(self, task: Task, deadline: int | None = None) -> Gen:
        """0 or ETIMEDOUT (a positive errno, as pthread returns it)."""
        while not self.trylock():
            r = self.proc.load_u32(self.addr)
            if not r:
                continue
            self.waiters += 1
            self.proc.cas_u32(self.addr, r, r | 0x80000000)
            err = yield from self._timedwait(task, r | 0x80000000, deadline)
            self.waiters -= 1
            if err and err != EINTR:
                return err
        return 0

    def _timedwait(self, task: Task, val: int, deadline: int | None) -> Gen:
        """musl __timedwait on LiteOS: absolute deadline -> relative µs (a non-zero sub-µs
        rest rounds up to 1); errors other than EINTR / ETIMEDOUT count as 0."""
        us = FOREVER
        if deadline is not None:
            rest = deadline - self.clock.now(ClockId.REALTIME)
            if rest < 0:
                return ETIMEDOUT
            us = rest // US or (1 if rest else 0)
        r = yield from sys_futex(task, self.addr, WAIT_P, val, us)
        return -r if -r in (EINTR, ETIMEDOUT) else 0

    def unlock(self, task: Task) -> None:
        old = self.proc.swap_u32(self.addr, 0)
        if self.waiters or old & 0x80000000:
            task.syscall_futex(self.addr, WAKE_P, 1, 0, 0)  # EBADF (nobody left) is harmless


class Thread:
    def __init__(self, task: Task, gen: Gen) -> None:
        self.task, self.gen = task, gen
        self.done = False
        self.result: Any = None


class Scheduler:
    """Cooperative threads on one CPU: the most urgent ready thread runs (LiteOS priority,
    FIFO among equals) until it blocks in SysFutex or returns.  The test body is the main
    thread: while it "runs", no other thread does."""

    def __init__(self) -> None:
        self._ready: list[tuple[int, int, Thread, int | None]] = []
        self._seq = itertools.count()

    def spawn(self, task: Task, gen: Gen) -> Thread:
        th = Thread(task, gen)
        self._push(th, None)
        return th

    def _push(self, th: Thread, value: int | None) -> None:
        heapq.heappush(self._ready, (th.task.priority, next(self._seq), th, value))

    def run(self) -> None:
        while self._ready:
            _, _, th, value = heapq.heappop(self._ready)
            try:
                pw = th.gen.send(value)
            except StopIteration as stop:
                th.done, th.result = True, stop.value
                continue
            pw.add_done_callback(lambda w, th=th: self._push(th, w.result()))

    @property
    def idle(self) -> bool:
        return not self._ready


def run_now(gen: Gen) -> Any:
    """Run a call that must not block (main's uncontended lock)."""
    with pytest.raises(StopIteration) as stop:
        gen.send(None)
    return stop.value.value


def test_pr751_musl_timedlock_whose_deadline_is_now_times_out(
    lk: LiteosKernel, clock: ManualClock
) -> None:
    """CHANGELOG 3f71be7 / PR !751: musl turns a deadline that is exactly now into absTime
    0; the kernel must answer ETIMEDOUT (musl maps EINVAL to 0 and retried forever)."""
    env = setup(lk, 20, 22)
    p, a = env.process, env.addr
    main, t = env.tasks
    m = MuslMutex(p, a, clock)
    assert run_now(m.timedlock(main)) == 0
    assert run_now(m.timedlock(t, clock.now(ClockId.REALTIME))) == ETIMEDOUT
    assert run_now(m.timedlock(t, clock.now(ClockId.REALTIME) - 1)) == ETIMEDOUT
    assert lk.table().empty and m.waiters == 0


class Round:
    """One round of a pthread_mutex_test: the mutex, the test's counters, and the table
    after each unlock of a locker thread."""

    def __init__(self, kernel: LiteosKernel, proc: Process, addr: int, clock: ManualClock) -> None:
        self.kernel, self.key = kernel, proc.futex_key(addr)
        self.m = MuslMutex(proc, addr, clock)
        self.count000 = self.count001 = self.count002 = 0
        self.seen: list[tuple[QueuedTask, ...]] = []

    def unlock(self, t: Task) -> None:
        self.m.unlock(t)
        self.seen.append(self.kernel.table().waiters(self.key))

    def thread_func_test0(self, t: Task, deadline: int) -> Gen:
        """020-022 ThreadFuncTest0: timedlock (100 ms); wait for the late thread; unlock if
        locked."""
        ret = yield from self.m.timedlock(t, deadline)
        assert self.count002 == 1  # LiteOS spins until the late thread is done
        if ret == 0:
            self.unlock(t)
        self.count000 += 1
        return ret

    def thread_func_test1(self, t: Task) -> Gen:
        """020-022 ThreadFuncTest1: lock; wait for the late thread; unlock."""
        assert (yield from self.m.timedlock(t)) == 0
        # LiteOS spins here until the late thread is done; priority order already made it so.
        assert self.count002 == 1
        self.unlock(t)
        self.count001 += 1

    def thread_func_test2(self, t: Task) -> Gen:
        """ThreadFuncTest2, the late locker: lock, unlock, count002 = 1."""
        assert (yield from self.m.timedlock(t)) == 0
        self.unlock(t)
        self.count002 = 1

    def timed_019(self, t: Task, deadline: int) -> Gen:
        """019 ThreadFuncTest1: timedlock (100 ms) must time out after the late thread ran."""
        assert (yield from self.m.timedlock(t, deadline)) == ETIMEDOUT
        assert self.count002 == 1
        self.count001 += 1


def test_pthread_mutex_test_019_timed_out_waiters_leave_then_a_late_locker_succeeds(
    lk: LiteosKernel, clock: ManualClock
) -> None:
    """pthread_mutex_test_019: main (priority 20) holds a NORMAL mutex; ten threads of
    priority 22 pthread_mutex_timedlock it for 100 ms; after 70 ms a priority-20 thread
    locks it (untimed) and becomes the head; main spins 1 s — the timeouts fire, and each
    timed-out node leaves the queue (LiteOS's annotation "30(20) -> -1(-1) -> ..." shows
    them as stale -1(-1) nodes until their tasks run; here they leave at the timeout);
    main unlocks: the late thread locks and unlocks, then every timed waiter reports
    ETIMEDOUT having seen it done.  10 rounds."""
    p = lk.new_process()
    main = p.new_task(priority=20)
    addr = p.mmap(PAGE_SIZE)
    key = p.futex_key(addr)
    sched = Scheduler()
    for _round in range(10):
        r = Round(lk, p, addr, clock)
        assert run_now(r.m.timedlock(main)) == 0
        timed = [p.new_task(priority=22) for _ in range(10)]
        deadline = clock.now(ClockId.REALTIME) + 100 * MS
        threads = [sched.spawn(t, r.timed_019(t, deadline)) for t in timed]
        sched.run()  # main's usleep: every new thread runs and blocks
        assert lk.table().waiters(key) == chain(*timed)
        clock.advance(70 * MS)
        late = p.new_task(priority=20)
        threads.append(sched.spawn(late, r.thread_func_test2(late)))
        sched.run()
        assert lk.table().waiters(key) == chain(late, *timed)
        clock.advance(1000 * MS)  # main spins at priority 20: the timed-out cannot run yet
        assert lk.table().waiters(key) == chain(late)
        assert not any(th.done for th in threads)
        r.m.unlock(main)
        sched.run()
        assert all(th.done for th in threads)
        assert (r.count001, r.count002) == (10, 1)
        assert r.seen == [()]
        assert lk.table().empty and r.m.waiters == 0
        for t in [*timed, late]:
            t.exit()


@pytest.mark.parametrize(
    "timed_indices",
    [
        pytest.param({0, 1}, id="pthread_mutex_test_020-two_timed_eight_untimed"),
        pytest.param({0, 2, 4, 6, 8}, id="pthread_mutex_test_021-even_index_timed"),
        pytest.param({1, 3, 5, 7, 9}, id="pthread_mutex_test_022-odd_index_timed"),
    ],
)
def test_pthread_mutex_tests_020_to_022_timed_waiters_leave_mid_queue(
    lk: LiteosKernel, clock: ManualClock, timed_indices: set[int]
) -> None:
    """pthread_mutex_test_020/021/022: main (20) holds the mutex; ten priority-22 threads
    queue on it, those at `timed_indices` with a 100 ms pthread_mutex_timedlock
    (ThreadFuncTest0), the others untimed (ThreadFuncTest1: lock, wait for the late thread,
    unlock); after 80 ms a priority-20 thread locks (ThreadFuncTest2) and heads the queue;
    main spins 1 s — the timed waiters leave from the middle of the queue; main unlocks and
    each unlock hands the mutex to the next untimed waiter in FIFO order, the table
    shrinking by its head each time (LiteOS's annotated chains "21(20) -> -1(-1) ->
    28(22) -> ..." with the stale nodes already reaped).  10 rounds."""
    p = lk.new_process()
    main = p.new_task(priority=20)
    addr = p.mmap(PAGE_SIZE)
    key = p.futex_key(addr)
    sched = Scheduler()
    for _round in range(10):
        r = Round(lk, p, addr, clock)
        assert run_now(r.m.timedlock(main)) == 0
        tasks = [p.new_task(priority=22) for _ in range(10)]
        deadline = clock.now(ClockId.REALTIME) + 100 * MS
        threads = [
            sched.spawn(
                t,
                r.thread_func_test0(t, deadline) if i in timed_indices else r.thread_func_test1(t),
            )
            for i, t in enumerate(tasks)
        ]
        sched.run()
        assert lk.table().waiters(key) == chain(*tasks)
        clock.advance(80 * MS)
        late = p.new_task(priority=20)
        threads.append(sched.spawn(late, r.thread_func_test2(late)))
        sched.run()
        assert lk.table().waiters(key) == chain(late, *tasks)
        clock.advance(1000 * MS)
        untimed = [t for i, t in enumerate(tasks) if i not in timed_indices]
        assert lk.table().waiters(key) == chain(late, *untimed)
        r.m.unlock(main)
        sched.run()
        assert all(th.done for th in threads)
        timed_results = [th.result for i, th in enumerate(threads[:10]) if i in timed_indices]
        assert timed_results == [ETIMEDOUT] * len(timed_indices)
        # late's unlock woke untimed[0]; each untimed unlock woke the next one
        assert r.seen == [chain(*untimed[k + 1 :]) for k in range(len(untimed))] + [()]
        assert (r.count000, r.count001, r.count002) == (len(timed_indices), len(untimed), 1)
        assert lk.table().empty and r.m.waiters == 0
        for t in [*tasks, late]:
            t.exit()
