"""The demo's workload on each kernel, and its futex mutex and condition variable (one body
per behaviour, run on Linux, Zircon and LiteOS-A)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from futex.demo.kernels import FutexOps, LinuxOps
from futex.demo.liteos import LiteosOps
from futex.demo.sync import FutexCondvar, FutexMutex, Ring
from futex.demo.workload import KERNELS, DemoConfig, check_items, new_ops, run_demo
from futex.demo.zircon import CONSUMER_PRIORITY, PRODUCER_PRIORITY, ZirconOps
from futex.linux import LinuxKernel

TIMEOUT = 30.0
#: Stall bound for whole workload runs in tests: generous, a stall fails the "finished" check.
STALL = 60.0


def wait_for(cond: Callable[[], bool], what: str) -> None:
    """Poll until ``cond`` holds (state, not time); fail after TIMEOUT seconds."""
    end = time.monotonic() + TIMEOUT
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.0005)


def start(fn: Callable[[], None]) -> threading.Thread:
    th = threading.Thread(target=fn, daemon=True)
    th.start()
    return th


def join_all(threads: list[threading.Thread]) -> None:
    for th in threads:
        th.join(TIMEOUT)
        assert not th.is_alive(), f"{th.name} did not finish"


def failed(report: Any) -> list[Any]:
    return [c for c in report.checks if not c.ok]


# -- the configuration ------------------------------------------------------------------


def test_config_split_and_validation() -> None:
    assert (DemoConfig(threads=4).producers, DemoConfig(threads=4).consumers) == (2, 2)
    assert (DemoConfig(threads=5).producers, DemoConfig(threads=5).consumers) == (2, 3)
    with pytest.raises(ValueError):
        DemoConfig(threads=1)
    with pytest.raises(ValueError):
        DemoConfig(capacity=0)


# -- the workload on each kernel --------------------------------------------------------


@pytest.mark.parametrize("kernel", list(KERNELS))
@pytest.mark.parametrize(
    "config", [DemoConfig(2, 0, 1), DemoConfig(4, 300, 1), DemoConfig(7, 500, 3)], ids=str
)
def test_run_demo_passes_its_checks(kernel: str, config: DemoConfig) -> None:
    report = run_demo(config, kernel=kernel, stall_timeout=STALL)
    assert report.ok, failed(report)
    assert report.kernel == kernel
    assert report.stats.queued == 0
    assert set(report.word_buckets) == {"mutex", "not_empty", "not_full"}


def test_zircon_run_records_ownership_changes_and_a_boost() -> None:
    """The primed start makes it certain: with both producers asleep on ``not_full``, the
    first take's notify_all requeues one of them onto the mutex naming the consumer that
    holds it — which then inherits the producer's priority until its unlock."""
    report = run_demo(DemoConfig(4, 300, 2), kernel="zircon", stall_timeout=STALL)
    assert report.ok, failed(report)
    facts = report.facts
    assert facts["boosts"] >= 1 and facts["ownership changes"] >= 2, facts
    assert facts["owners"] >= 1 and facts["observations"] >= facts["ownership changes"]
    text = "\n".join(report.kernel_lines)
    assert "consumer-" in text and "(boosted by a waiter)" in text
    assert report.calls["zx_futex_requeue"] >= 1 and report.stats.requeues >= 1


def test_liteos_run_records_the_table() -> None:
    """Primed: both producers queue on ``not_full`` before any consumer runs, and the
    adapter snapshots that table, so the busiest table seen holds two waiters or more."""
    report = run_demo(DemoConfig(4, 300, 2), kernel="liteos", stall_timeout=STALL)
    assert report.ok, failed(report)
    assert report.facts["peak waiters"] >= 2 and report.facts["buckets seen"] >= 1
    text = "\n".join(report.kernel_lines)
    busiest = text[text.index("the busiest table seen") : text.index("the table at the end")]
    assert "hash -> index : " in busiest
    assert re.search(r"key\(pid\) +: 0x[0-9a-f]+\(1\) : -> \d+\((12|20)\) ->", busiest)
    assert report.calls["REQUEUE"] >= 1 and "CMP_REQUEUE" not in report.calls


def test_progress_carries_the_kernel_view() -> None:
    seen: dict[str, list[Any]] = {k: [] for k in KERNELS}
    for kernel in KERNELS:
        run_demo(DemoConfig(4, 200, 1), kernel=kernel, on_progress=seen[kernel].append)
    assert all(p.status == "" and p.detail == () for p in seen["linux"])
    last = seen["zircon"][-1]  # the final sample, after the workers finished
    assert last.status.startswith("mutex futex: no owner;") and "boosts so far" in last.status
    last = seen["liteos"][-1]
    assert last.status == "bucket table: empty"
    assert any("los_futex_pri.hash" in line for line in last.detail)
    assert all(p.produced == p.consumed == 200 for p in (seen[k][-1] for k in KERNELS))


# -- the final check itself -------------------------------------------------------------


def test_check_items_accepts_a_correct_run() -> None:
    # 2 producers: odd items from producer 0, even from producer 1
    assert all(c.ok for c in check_items([[1, 2, 4], [3, 5, 6]], 6, 2))


def test_check_items_catches_loss_duplicates_and_reordering() -> None:
    def failed(consumed: list[list[int]]) -> set[str]:
        return {c.name for c in check_items(consumed, 4, 2) if not c.ok}

    assert failed([[1, 2, 3]]) == {"count", "exactly once"}  # 4 lost
    assert failed([[1, 2, 3, 3]]) == {"exactly once", "fifo"}  # 3 twice, 4 lost
    assert failed([[3, 2, 1, 4]]) == {"fifo"}  # producer 0's 1 after its 3
    assert failed([[1, 2, 3, 4, 9]]) == {"count", "exactly once"}  # a stray item


# -- the mutex --------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_mutex_mutual_exclusion_under_contention(kernel: str) -> None:
    ops = new_ops(kernel)
    a = ops.mmap(4096)
    mutex: FutexMutex[Any] = FutexMutex(ops, a)
    counter = a + 64
    main_task = ops.new_task("main", "consumer")
    n_threads, rounds = 6, 300
    tasks = [ops.new_task(f"worker-{i}", "producer") for i in range(n_threads)]
    inside: list[int] = []
    overlaps: list[list[int]] = []

    def worker(t: Any) -> None:
        me = ops.task_id(t)
        for _ in range(rounds):
            mutex.lock(t)
            inside.append(me)
            if len(inside) != 1:
                overlaps.append(list(inside))
            v = ops.load(counter)
            time.sleep(0)  # give the GIL away inside the critical section
            ops.store(counter, v + 1)
            inside.remove(me)
            mutex.unlock(t)

    # Hold the lock until every worker sleeps in the kernel, so contention is certain.
    mutex.lock(main_task)
    threads = [start(partial(worker, t)) for t in tasks]
    wait_for(lambda: ops.stats().queued == n_threads, "every worker sleeps")
    assert mutex.contested(mutex.word)
    assert mutex.word == ops.contested(ops.locked_value(main_task))
    mutex.unlock(main_task)
    join_all(threads)

    assert overlaps == []
    assert ops.load(counter) == n_threads * rounds
    assert mutex.word == 0
    stats = ops.stats()
    assert stats.queued == 0 and stats.waits == stats.wakes >= n_threads
    assert all(ops.blocked(t) is None for t in tasks)
    assert len(ops.calls()) == 2  # a wait and a wake: nothing else
    ops.check_invariants()
    assert all(c.ok for c in ops.extra_checks())


def test_mutex_uncontended_makes_no_system_call(kernel: LinuxKernel) -> None:
    p = kernel.new_process()
    ops = LinuxOps(p)
    mutex = FutexMutex(ops, p.mmap(4096))
    t = p.new_task()
    for _ in range(10):
        mutex.lock(t)
        assert mutex.word == 1
        assert not mutex.try_lock(t)
        mutex.unlock(t)
    assert mutex.try_lock(t)
    mutex.unlock(t)
    assert mutex.word == 0
    assert sum(kernel.calls().values()) == 0
    with pytest.raises(RuntimeError):
        mutex.unlock(t)  # not locked


def test_zircon_mutex_word_names_the_owner_and_a_waiter_boosts_it() -> None:
    """libsync's word: the holder's handle (bits 0 and 1 set); a waiter clears bit 0 and
    names the holder in zx_futex_wait, so the kernel records the owner and lends it the
    waiter's priority; the unlock hands the futex over with wake_single_owner."""
    ops = ZirconOps()
    mutex = FutexMutex(ops, ops.mmap(4096))
    ops.watch({"mutex": mutex.addr})
    low = ops.new_task("holder", "consumer")
    high = ops.new_task("waiter", "producer")
    mutex.lock(low)
    handle = ops.locked_value(low)
    assert mutex.word == handle and handle & 3 == 3 and not mutex.contested(handle)

    def waiter() -> None:
        mutex.lock(high)
        mutex.unlock(high)

    th = start(waiter)
    wait_for(lambda: ops.facts()["boosts"] == 1, "the waiter's wait is observed")
    assert ops.process.owner_of(mutex.addr) is low
    assert mutex.word == handle & ~1 and mutex.contested(mutex.word)
    assert (low.priority, low.effective_priority) == (CONSUMER_PRIORITY, PRODUCER_PRIORITY)
    mutex.unlock(low)  # zx_futex_wake_single_owner: the waiter runs and takes the lock
    join_all([th])
    assert mutex.word == 0 and ops.process.owner_of(mutex.addr) is None
    assert low.effective_priority == CONSUMER_PRIORITY
    # the waiter took the lock contested (it cannot know who else waits): its unlock wakes
    assert ops.calls() == {"zx_futex_wait": 1, "zx_futex_wake_single_owner": 2}
    tl = ops.timeline
    assert (tl.changes, tl.boosts) == (2, 1)  # holder owns it boosted, then nobody
    assert tl.threads["holder"].peak == PRODUCER_PRIORITY
    ops.check_invariants()


# -- the condition variable -------------------------------------------------------------


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_notify_all_wakes_one_and_requeues_the_rest_onto_the_mutex(kernel: str) -> None:
    ops = new_ops(kernel)
    a = ops.mmap(4096)
    mutex: FutexMutex[Any] = FutexMutex(ops, a)
    cv = FutexCondvar(ops, a + 4, mutex)
    ops.watch({"mutex": mutex.addr})
    flag = a + 64
    notifier = ops.new_task("notifier", "consumer")
    n = 5
    tasks = [ops.new_task(f"waiter-{i}", "producer") for i in range(n)]
    done: list[int] = []

    def waiter(t: Any) -> None:
        mutex.lock(t)
        while ops.load(flag) == 0:
            cv.wait(t)
        done.append(ops.task_id(t))
        mutex.unlock(t)

    threads = [start(partial(waiter, t)) for t in tasks]
    wait_for(
        lambda: ops.stats().queued == n and cv.waiters == n and mutex.word == 0,
        "every waiter sleeps on the condvar word",
    )
    before = ops.calls()

    mutex.lock(notifier)
    ops.store(flag, 1)
    r = cv.notify_all(notifier)
    assert r in (n, None)  # woken + moved, where the kernel tells
    calls = ops.calls() - before  # (the woken waiter may have called wait already)
    assert sum(k for n, k in calls.items() if "REQUEUE" in n.upper()) == 1
    assert not [n for n in calls if "WAKE" in n.upper()]  # one requeue call, no wake
    assert ops.stats().requeues == n - 1
    # The woken one and the moved ones all wait for the mutex now, on one key.
    wait_for(lambda: ops.stats().queued == n, "the woken waiter sleeps on the mutex too")
    (queue,) = ops.manager.queues().values()
    assert len(queue) == n
    assert done == []  # they need the mutex, which the notifier holds
    if isinstance(ops, ZirconOps):  # the requeue named the holder: it inherits
        assert ops.process.owner_of(a) is notifier
        assert notifier.effective_priority == PRODUCER_PRIORITY
    if isinstance(ops, LiteosOps):  # the table shows them queued on the mutex key
        head = ops.liteos.table().head(ops.process.futex_key(a))
        assert head is not None and len(head.waiters) == n
    mutex.unlock(notifier)

    join_all(threads)
    assert sorted(done) == sorted(ops.task_id(t) for t in tasks)
    # Each requeued waiter was woken by a mutex unlock, none got lost.
    stats = ops.stats()
    assert stats.queued == 0 and stats.waits == stats.wakes
    assert mutex.word == 0 and cv.waiters == 0
    assert all(ops.blocked(t) is None for t in [*tasks, notifier])
    ops.check_invariants()
    assert all(c.ok for c in ops.extra_checks())


def test_liteos_requeue_moves_waiters_in_priority_order() -> None:
    """LiteOS's plain REQUEUE wakes the most urgent waiter and moves the others to the
    mutex key, each inserted by priority (FIFO among equals)."""
    ops = LiteosOps()
    a = ops.mmap(4096)
    mutex: FutexMutex[Any] = FutexMutex(ops, a)
    cv = FutexCondvar(ops, a + 4, mutex)
    flag = a + 64
    notifier = ops.process.new_task(priority=5)
    tasks = [ops.process.new_task(priority=p) for p in (20, 12, 25, 12)]

    def waiter(t: Any) -> None:
        mutex.lock(t)
        while ops.load(flag) == 0:
            cv.wait(t)
        mutex.unlock(t)

    threads = []
    for i, t in enumerate(tasks, 1):  # one at a time, so the FIFO order among equals is known
        threads.append(start(partial(waiter, t)))
        wait_for(lambda i=i: ops.stats().queued == i and mutex.word == 0, "it sleeps")
    cv_key, mutex_key = ops.process.futex_key(a + 4), ops.process.futex_key(a)
    assert [(w.tid, w.priority) for w in ops.liteos.table().waiters(cv_key)] == [
        (tasks[1].tid, 12),
        (tasks[3].tid, 12),
        (tasks[0].tid, 20),
        (tasks[2].tid, 25),
    ]
    mutex.lock(notifier)
    ops.store(flag, 1)
    assert cv.notify_all(notifier) is None  # REQUEUE answers 0: someone was woken or moved
    assert ops.calls()["REQUEUE"] == 1
    table = ops.liteos.table()
    assert table.waiters(cv_key) == ()
    moved = [w.tid for w in table.waiters(mutex_key)]
    # tasks[1] (first of the most urgent) was woken; it may already wait for the mutex,
    # queued by its priority 12 ahead of the moved 12 — or not yet.
    assert [t for t in moved if t != tasks[1].tid] == [tasks[3].tid, tasks[0].tid, tasks[2].tid]
    mutex.unlock(notifier)
    join_all(threads)
    assert ops.liteos.table().empty


def test_notify_one_is_a_wake_and_no_waiters_costs_nothing(kernel: LinuxKernel) -> None:
    p = kernel.new_process()
    ops = LinuxOps(p)
    a = p.mmap(4096)
    mutex = FutexMutex(ops, a)
    cv = FutexCondvar(ops, a + 4, mutex)
    flag = a + 64
    notifier, sleeper = p.new_task(), p.new_task()

    mutex.lock(notifier)
    assert cv.notify_one(notifier) == 0
    assert cv.notify_all(notifier) == 0
    mutex.unlock(notifier)
    assert sum(kernel.calls().values()) == 0  # nobody waits: no system call

    def waiter() -> None:
        mutex.lock(sleeper)
        while p.load_u32(flag) == 0:
            cv.wait(sleeper)
        mutex.unlock(sleeper)

    th = start(waiter)
    wait_for(lambda: sleeper.blocked is not None and cv.waiters == 1, "the waiter sleeps")
    mutex.lock(notifier)
    p.store_u32(flag, 1)
    assert cv.notify_one(notifier) == 1
    mutex.unlock(notifier)
    join_all([th])
    assert kernel.calls()["CMP_REQUEUE"] == 0
    assert kernel.calls()["WAKE"] >= 1


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_notify_requires_the_mutex(kernel: str) -> None:
    ops: FutexOps[Any] = new_ops(kernel)
    a = ops.mmap(4096)
    cv = FutexCondvar(ops, a + 4, FutexMutex(ops, a))
    with pytest.raises(RuntimeError):
        cv.notify_all(ops.new_task("t"))


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_ring_is_fifo_single_threaded(kernel: str) -> None:
    ops: FutexOps[Any] = new_ops(kernel)
    ring: Ring[Any] = Ring(ops, capacity=3, producers=1)
    t = ops.new_task("t")
    for item in (7, 8, 9):
        ring.put(t, item)
    assert [ring.take(t), ring.take(t)] == [7, 8]
    ring.put(t, 10)
    ring.producer_done(t)
    assert [ring.take(t), ring.take(t), ring.take(t)] == [9, 10, None]
    assert ring.words()["mutex"] == 0
    assert ops.total_calls() == 0  # never had to wait
