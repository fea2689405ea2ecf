"""The demo: the command line end to end, and its futex mutex and condition variable."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial

import pytest

from futex.cli import main
from futex.demo import (
    DemoConfig,
    FutexCondvar,
    FutexMutex,
    Ring,
    check_items,
    run_demo,
)
from futex.demo_robust import (
    EOWNERDEAD,
    PTHREAD_MUTEX_INCONSISTENT,
    RobustList,
    RobustMutex,
    describe_word,
    run_robust_demo,
)
from futex.kernel import private_key
from futex.kernel.pi import PiDomain
from futex.linux import LinuxKernel, Task, abi

TIMEOUT = 30.0


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


# -- the command line -------------------------------------------------------------------


def test_demo_plain_passes_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    # capacity 1: every take empties a full ring, so waiting producers get a notify_all
    rc = main(["demo", "--threads", "4", "--items", "300", "--capacity", "1", "--plain"])
    out = capsys.readouterr().out
    assert rc == 0, out
    calls_line = next(line for line in out.splitlines() if line.startswith("futex calls"))
    for command in ("WAIT", "WAKE", "CMP_REQUEUE"):
        assert f"{command} " in calls_line, out
    assert "result: PASS" in out
    assert "FAIL" not in out
    for check in ("exactly once", "no task blocked", "kernel invariants", "queues empty"):
        assert check in out
    assert "requeued" in out and "longest queue" in out and "items/s" in out
    assert "\x1b[" not in out  # --plain: no terminal control sequences


def test_ci_invocation(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["demo", "--threads", "4", "--items", "2000", "--plain"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "all 2000 items consumed exactly once" in out
    # the robust scenario runs by default, after the workload
    assert out.index("all 2000 items") < out.index("futex demo, robust futexes")
    assert out.count("result: PASS") == 2 and "FAIL" not in out


def test_robust_scenario_can_be_skipped_or_run_alone(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--items", "50", "--plain", "--no-robust"]) == 0
    out = capsys.readouterr().out
    assert "robust" not in out and out.count("result: PASS") == 1
    assert main(["demo", "--plain", "--robust-only"]) == 0
    out = capsys.readouterr().out
    assert "items consumed" not in out and out.count("result: PASS") == 1
    assert out.startswith("futex demo, robust futexes")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["demo", "--threads", "1"],
        ["demo", "--items", "-1"],
        ["demo", "--capacity", "0"],
        ["demo", "--items", "many"],
        ["demo", "--no-robust", "--robust-only"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_config_split_and_validation() -> None:
    assert (DemoConfig(threads=4).producers, DemoConfig(threads=4).consumers) == (2, 2)
    assert (DemoConfig(threads=5).producers, DemoConfig(threads=5).consumers) == (2, 3)
    with pytest.raises(ValueError):
        DemoConfig(threads=1)
    with pytest.raises(ValueError):
        DemoConfig(capacity=0)


def test_run_demo_edge_sizes() -> None:
    for config in (DemoConfig(threads=2, items=0, capacity=1), DemoConfig(7, 500, 3)):
        report = run_demo(config)
        assert report.ok, [c for c in report.checks if not c.ok]
        assert report.stats.queued == 0


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


def test_mutex_mutual_exclusion_under_contention(kernel: LinuxKernel) -> None:
    p = kernel.new_process()
    a = p.mmap(4096)
    mutex = FutexMutex(p, a)
    counter = a + 64
    main_task = p.new_task()
    n_threads, rounds = 6, 300
    tasks = [p.new_task() for _ in range(n_threads)]
    inside: list[int] = []
    overlaps: list[list[int]] = []

    def worker(t: Task) -> None:
        for _ in range(rounds):
            mutex.lock(t)
            inside.append(t.tid)
            if len(inside) != 1:
                overlaps.append(list(inside))
            v = p.load_u32(counter)
            time.sleep(0)  # give the GIL away inside the critical section
            p.store_u32(counter, v + 1)
            inside.remove(t.tid)
            mutex.unlock(t)

    # Hold the lock until every worker sleeps in FUTEX_WAIT, so contention is certain.
    mutex.lock(main_task)
    threads = [start(partial(worker, t)) for t in tasks]
    wait_for(lambda: all(t.blocked is not None for t in tasks), "every worker sleeps")
    assert mutex.word == 2
    assert p.futex.stats().queued == n_threads
    mutex.unlock(main_task)
    join_all(threads)

    assert overlaps == []
    assert p.load_u32(counter) == n_threads * rounds
    assert mutex.word == 0
    calls = kernel.calls()
    assert calls["WAIT"] >= n_threads and calls["WAKE"] >= n_threads
    assert set(calls) <= {"WAIT", "WAKE"}
    stats = p.futex.stats()
    assert stats.queued == 0 and stats.waits == stats.wakes
    assert all(t.blocked is None for t in tasks)


def test_mutex_uncontended_makes_no_system_call(kernel: LinuxKernel) -> None:
    p = kernel.new_process()
    mutex = FutexMutex(p, p.mmap(4096))
    t = p.new_task()
    for _ in range(10):
        mutex.lock(t)
        assert mutex.word == 1
        assert not mutex.try_lock()
        mutex.unlock(t)
    assert mutex.try_lock()
    mutex.unlock(t)
    assert mutex.word == 0
    assert sum(kernel.calls().values()) == 0
    with pytest.raises(RuntimeError):
        mutex.unlock(t)  # not locked


# -- the condition variable -------------------------------------------------------------


def test_notify_all_requeues_onto_the_mutex(kernel: LinuxKernel) -> None:
    p = kernel.new_process()
    a = p.mmap(4096)
    mutex = FutexMutex(p, a)
    cv = FutexCondvar(p, a + 4, mutex)
    flag = a + 64
    notifier = p.new_task()
    n = 5
    tasks = [p.new_task() for _ in range(n)]
    done: list[int] = []

    def waiter(t: Task) -> None:
        mutex.lock(t)
        while p.load_u32(flag) == 0:
            cv.wait(t)
        done.append(t.tid)
        mutex.unlock(t)

    threads = [start(partial(waiter, t)) for t in tasks]
    wait_for(
        lambda: len(p.futex.queues().get(private_key(cv.addr), [])) == n,
        "every waiter sleeps on the condvar word",
    )
    assert cv.waiters == n
    before = kernel.calls()

    mutex.lock(notifier)
    p.store_u32(flag, 1)
    r = cv.notify_all(notifier)
    # One woken, the rest moved onto the mutex word: nobody left on the condvar word.
    assert r == n
    calls = kernel.calls() - before
    assert calls["CMP_REQUEUE"] == 1 and calls["WAKE"] == 0
    stats = p.futex.stats()
    assert stats.requeues == n - 1
    queues = p.futex.queues()
    assert private_key(cv.addr) not in queues
    assert len(queues[private_key(mutex.addr)]) >= n - 1
    assert done == []  # they need the mutex, which the notifier holds
    mutex.unlock(notifier)

    join_all(threads)
    assert sorted(done) == sorted(t.tid for t in tasks)
    # Each requeued waiter was woken by a mutex unlock's FUTEX_WAKE, none got lost.
    stats = p.futex.stats()
    assert stats.queued == 0 and stats.waits == stats.wakes
    assert (kernel.calls() - before)["WAKE"] >= n - 1
    assert mutex.word == 0 and cv.waiters == 0
    assert all(t.blocked is None for t in [*tasks, notifier])


def test_notify_one_is_a_wake_and_no_waiters_costs_nothing(kernel: LinuxKernel) -> None:
    p = kernel.new_process()
    a = p.mmap(4096)
    mutex = FutexMutex(p, a)
    cv = FutexCondvar(p, a + 4, mutex)
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


def test_notify_requires_the_mutex(kernel: LinuxKernel) -> None:
    p = kernel.new_process()
    a = p.mmap(4096)
    cv = FutexCondvar(p, a + 4, FutexMutex(p, a))
    with pytest.raises(RuntimeError):
        cv.notify_all(p.new_task())


def test_ring_is_fifo_single_threaded(kernel: LinuxKernel) -> None:
    p = kernel.new_process()
    ring = Ring(p, capacity=3, producers=1)
    t = p.new_task()
    for item in (7, 8, 9):
        ring.put(t, item)
    assert [ring.take(t), ring.take(t)] == [7, 8]
    ring.put(t, 10)
    ring.producer_done(t)
    assert [ring.take(t), ring.take(t), ring.take(t)] == [9, 10, None]
    assert ring.words()["mutex"] == 0
    assert sum(kernel.calls().values()) == 0  # never had to wait


# -- the robust-futex scenario ----------------------------------------------------------

W, OD = abi.FUTEX_WAITERS, abi.FUTEX_OWNER_DIED


def test_robust_demo_output_shows_recovery_and_boost(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["demo", "--plain", "--robust-only"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "FAIL" not in out and "\x1b[" not in out
    lines = out.splitlines()
    assert lines[-1].startswith("result: PASS")
    a = out.index("(a) robust PI mutex")
    b = out.index("(b) plain robust mutex")
    pi, plain = out[a:b], out[b:]
    # (a): boosted while the SCHED_FIFO waiter blocks, back to normal once the owner exits
    assert "SCHED_FIFO 50, prio 49" in pi
    assert "owner prio 120 -> 49: boosted" in pi
    assert "owner prio 49 -> 120: the boost is gone" in pi
    # the waiter's FUTEX_LOCK_PI returned owning the lock with OWNER_DIED: EOWNERDEAD
    assert "FUTEX_LOCK_PI = 0, word on return 0xc000" in pi
    assert "(OWNER_DIED | WAITERS | tid" in pi
    assert f"pthread_mutex_lock = {EOWNERDEAD} (EOWNERDEAD)" in pi
    assert "pthread_mutex_consistent = 0" in pi and "FUTEX_UNLOCK_PI = 0" in pi
    assert "word 0x00000000 (unlocked)" in pi
    # (b): the exit walk left OWNER_DIED | WAITERS with the TID cleared, and woke the waiter
    assert "FUTEX_WAIT = 0 (woken by the exit walk), word when woken 0xc0000000" in plain
    assert f"pthread_mutex_lock = {EOWNERDEAD} (EOWNERDEAD)" in plain
    assert "FUTEX_WAKE = 0; word 0x00000000 (unlocked)" in plain
    # numbered steps
    assert "  1. owner" in pi and "  4. waiter FUTEX_LOCK_PI returned 0" in pi


def test_robust_demo_report() -> None:
    report = run_robust_demo()
    assert report.ok, "\n".join(report.lines())
    a, b = report.parts
    assert (a.label, b.label) == ("a", "b")
    assert a.calls == {"LOCK_PI": 1, "UNLOCK_PI": 1, "set_robust_list": 2}
    assert b.calls == {"WAIT": 1, "WAKE": 1, "set_robust_list": 2}
    assert len(report.checks) >= 30
    assert not [th for th in threading.enumerate() if th.name.startswith("robust-")]
    assert run_robust_demo("b").ok
    with pytest.raises(ValueError):
        run_robust_demo("c")


def test_robust_demo_fails_when_the_boost_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kernel without priority inheritance: every other step still works, but the checks
    of the boost fail, and so does the command."""
    monkeypatch.setattr(PiDomain, "effective_prio", lambda self, task: task.normal_prio)
    rc = main(["demo", "--plain", "--robust-only"])
    out = capsys.readouterr().out
    assert rc == 1
    fails = [line.strip() for line in out.splitlines() if line.lstrip().startswith("FAIL")]
    assert len(fails) == 2, out
    assert "owner prio 120 -> 120" in fails[0] and "expected (120, 49)" in fails[0]
    assert "expected (49, 120)" in fails[1]
    assert out.splitlines()[-1].startswith("result: FAIL (2 of")


def test_robust_demo_fails_on_a_wrong_word(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exit walk that forgets FUTEX_OWNER_DIED on plain robust words: the waiter is still
    woken but takes the lock as if it were free (no EOWNERDEAD): the checks say so."""
    import futex.linux.robust as robust

    real = robust.handle_futex_death

    def forgetful(task: Task, uaddr: int, pi: bool, pending_op: bool) -> bool:
        p = task.process
        uval = p.load_u32(uaddr)
        if pi or uval & abi.FUTEX_TID_MASK != task.tid:
            return real(task, uaddr, pi, pending_op)
        p.store_u32(uaddr, 0)  # unlocked, no OWNER_DIED
        robust.wake_shared_one(task, uaddr)
        return False

    monkeypatch.setattr(robust, "handle_futex_death", forgetful)
    report = run_robust_demo("b", timeout=5.0)
    assert not report.ok
    failed = [c.detail for c in report.checks if not c.ok]
    assert any("pthread_mutex_lock = 0" in d and f"expected {EOWNERDEAD}" in d for d in failed)
    assert any("word when woken 0x00000000" in d for d in failed), failed


def test_robust_demo_turns_a_lost_wake_into_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """No robust-list walk at exit: the plain waiter is never woken.  The step's bounded
    wait fails it, the blocked task is made to exit so no thread is left behind."""
    monkeypatch.setattr("futex.linux.exit.exit_robust_list", lambda task: None)
    report = run_robust_demo("b", timeout=1.0)
    assert not report.ok
    failed = [c.detail for c in report.checks if not c.ok]
    assert failed[0].startswith("stuck: timed out after 1 s waiting until the waiter's")
    assert "blocked tasks [" in failed[1]
    assert not [th for th in threading.enumerate() if th.name.startswith("robust-")]


def test_describe_word() -> None:
    assert describe_word(0) == "0x00000000 (unlocked)"
    assert describe_word(7) == "0x00000007 (tid 7)"
    assert describe_word(OD | W | 7) == "0xc0000007 (OWNER_DIED | WAITERS | tid 7)"
    assert describe_word(OD | W) == "0xc0000000 (OWNER_DIED | WAITERS)"


@pytest.mark.parametrize("pi", [False, True])
def test_robust_mutex_single_task(kernel: LinuxKernel, pi: bool) -> None:
    """Uncontended: no futex call; the robust list follows the mutex; an owner who dies
    without waiters leaves exactly OWNER_DIED, and the next locker gets EOWNERDEAD (PI:
    through FUTEX_LOCK_PI, then OWNER_DIED cleared by glibc; plain: the CAS drops it)."""
    p = kernel.new_process()
    mem = p.mmap(4096)
    t, u = p.new_task(), p.new_task()
    rt, ru = RobustList(t, mem), RobustList(u, mem + 0x40)
    assert rt.register() == 0 and ru.register() == 0
    m = RobustMutex(p, mem + 0x100, pi=pi)
    assert m.lock(rt).result == 0
    assert rt.entries() == [m.entry | pi] and rt.pending == 0
    assert m.value == t.tid and m.owner == t.tid
    assert m.unlock(rt) is None
    assert rt.entries() == [] and m.value == 0
    assert m.lock(rt).result == 0
    t.exit()
    assert m.value == OD
    out = m.lock(ru)
    # PI: the CAS 0 -> tid fails on OWNER_DIED, so glibc asks the kernel, which takes the
    # word for it (TID 0, no waiters) keeping OWNER_DIED
    assert (out.result, out.syscall) == (EOWNERDEAD, "LOCK_PI" if pi else None)
    assert m.value == u.tid and m.owner == PTHREAD_MUTEX_INCONSISTENT
    assert m.consistent(ru) == 0 and m.consistent(ru) == abi.EINVAL
    assert m.unlock(ru) is None and m.value == 0
    assert u.calls == ({"set_robust_list": 1, "LOCK_PI": 1} if pi else {"set_robust_list": 1})
