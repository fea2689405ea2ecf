"""The generic lock suite: one body per behaviour, over every lock-like primitive.

Families: Mutex, RLock, Semaphore(1), BoundedSemaphore(1) and the write side of RWLock,
each x {native, emulated} kernel x {threads, processes} workers (the ``env`` fixture,
:mod:`tests.sync.harness`) — sync_design §5 "Generic lock suite", issue 13's acceptance
line.  The behaviours are Trio's ``generic_lock_test`` (``src/trio/_tests/test_sync.py``:
exclusion with an in-section flag, every waiter eventually gets the lock, the nowait form
fails while held, a non-owner release raises, ``statistics()``) and threading's
``acquire(blocking, timeout)`` contract (docs: "return False if the timeout expired").

A family whose module has not landed yet is skipped with the reason.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from futex.sync import NotOwnerError, robust_mode
from tests.support import STATE_TIMEOUT
from tests.sync.harness import Env

#: Workers of the exclusion test and iterations each (emulated calls are slower).
WORKERS = 3
ITERATIONS = {"native": 200, "emulated": 30}


@dataclass(frozen=True)
class Family:
    """How the generic bodies drive one kind of lock."""

    name: str
    module: str
    #: Build a fresh, free lock of this family in ``env``.
    build: Callable[[Env], Any]
    #: Owned: only the holder may release (Semaphores have no owner).
    owned: bool
    #: What releasing a free lock raises (None: it counts up, like threading.Semaphore).
    over_release: type[BaseException] | None
    #: The acquire/release pair of this family (RWLock: its write side).
    lock_of: Callable[[Any], Any] = lambda prim: prim

    def make(self, env: Env) -> Any:
        importlib.import_module(self.module)
        return self.build(env)

    def acquire(self, prim: Any, blocking: bool = True, timeout: float | None = None) -> bool:
        lock = self.lock_of(prim)
        if not blocking:
            return bool(lock.acquire(False))
        return bool(lock.acquire() if timeout is None else lock.acquire(True, timeout))

    def release(self, prim: Any) -> None:
        self.lock_of(prim).release()

    def holder(self, prim: Any) -> int | None:
        """The holder's TID by ``statistics()``, 0 when free; None: no owner to report."""
        if not self.owned:
            return None
        stats = self.lock_of(prim).statistics()
        return int(stats.owner)

    def held(self, prim: Any) -> bool:
        stats = self.lock_of(prim).statistics()
        if hasattr(stats, "locked"):
            return bool(stats.locked)
        return int(stats.value) == 0  # a semaphore of one token


def _mutex(env: Env) -> Any:
    from futex.sync.mutex import Mutex

    return env.make(Mutex)


def _rlock(env: Env) -> Any:
    from futex.sync.mutex import RLock

    return env.make(RLock)


def _semaphore(env: Env) -> Any:
    from futex.sync.semaphore import Semaphore

    return env.make(Semaphore, 1)


def _bounded(env: Env) -> Any:
    from futex.sync.semaphore import BoundedSemaphore

    return env.make(BoundedSemaphore, 1)


def _rwlock(env: Env) -> Any:
    from futex.sync.rwlock import RWLock

    return env.make(RWLock)


def _write_side(rw: Any) -> Any:
    """The RWLock's writer as a lock (acquire/release/statistics)."""
    for name in ("write_lock", "writer", "write"):
        side = getattr(rw, name, None)
        if side is not None:
            return side() if callable(side) and not hasattr(side, "acquire") else side
    pytest.skip("RWLock has no write-side lock object (write_lock/writer/write) yet")


FAMILIES = [
    Family("Mutex", "futex.sync.mutex", _mutex, owned=True, over_release=NotOwnerError),
    Family("RLock", "futex.sync.mutex", _rlock, owned=True, over_release=NotOwnerError),
    Family("Semaphore", "futex.sync.semaphore", _semaphore, owned=False, over_release=None),
    Family("BoundedSemaphore", "futex.sync.semaphore", _bounded, owned=False,
           over_release=ValueError),
    Family("RWLock.write", "futex.sync.rwlock", _rwlock, owned=True,
           over_release=NotOwnerError, lock_of=_write_side),
]


@pytest.fixture(params=FAMILIES, ids=[f.name for f in FAMILIES])
def fam(request: pytest.FixtureRequest) -> Family:
    family: Family = request.param
    pytest.importorskip(family.module, reason=f"{family.module} has not landed yet")
    return family


def test_mutual_exclusion(fam: Family, env: Env) -> None:
    """N workers x M iterations: the in-section flag is never seen set on entry and the
    counter is exact (Trio generic_lock_test's "in_section" loop; sync_design §5)."""
    lock = fam.make(env)
    inside, total, overlaps = env.shared(), env.shared(), env.shared()
    rounds = ITERATIONS[env.kernel]

    def work(lock: Any) -> int:
        for _ in range(rounds):
            assert fam.acquire(lock)
            if inside.swap(1):
                overlaps.add(1)
            total.add(1)
            time.sleep(0)  # let the others run (and contend) while inside
            inside.swap(0)
            fam.release(lock)
        return rounds

    handles = env.start_together(WORKERS, work, lock)
    assert [h.result() for h in handles] == [rounds] * WORKERS
    assert overlaps.load() == 0
    assert total.load() == WORKERS * rounds
    assert not fam.held(lock)


def test_every_waiter_gets_it(fam: Family, env: Env) -> None:
    """Eventual progress: with the lock held, N waiters go to sleep; one release lets
    every one of them through in turn, with no clock movement (Trio generic_lock_test;
    sync_design §5 "eventual progress on a manual clock")."""
    lock = fam.make(env)
    got = env.shared()
    assert fam.acquire(lock)
    start = env.monotonic()

    def waiter(lock: Any) -> bool:
        assert fam.acquire(lock)
        got.add(1)
        fam.release(lock)
        return True

    handles = [env.start(waiter, lock) for _ in range(WORKERS)]
    for h in handles:
        env.wait_blocked(h, f"waiter {h.tid} sleeps on the held {fam.name}")
    assert got.load() == 0
    fam.release(lock)
    assert all(h.result() for h in handles)
    assert got.load() == WORKERS
    assert not fam.held(lock)
    if env.manual_clock:
        assert env.monotonic() == start  # nobody needed a timeout to get through


def test_nonblocking_acquire_fails_while_held(fam: Family, env: Env) -> None:
    """acquire(blocking=False) and acquire(timeout=0) return False at once while another
    worker holds the lock, True once it is free (threading docs: "When invoked with the
    blocking argument set to False, do not block"; Trio's acquire_nowait → WouldBlock)."""
    lock = fam.make(env)
    assert fam.acquire(lock)

    def try_both(lock: Any) -> tuple[bool, bool]:
        return fam.acquire(lock, blocking=False), fam.acquire(lock, timeout=0)

    assert env.start(try_both, lock).result() == (False, False)
    assert fam.held(lock)
    fam.release(lock)

    def take(lock: Any) -> bool:
        ok = fam.acquire(lock, blocking=False)
        if ok:
            fam.release(lock)
        return ok

    assert env.start(take, lock).result() is True
    assert not fam.held(lock)


def test_timeout_returns_false_only_after_the_deadline(fam: Family, env: Env) -> None:
    """acquire(timeout=t) on a held lock returns False, and not before t has passed on
    the kernel's CLOCK_MONOTONIC (threading docs; sync_design §5 "timeout (False only
    after the deadline)").  Emulated: exact, on the ManualClock — still asleep 1 ms
    before the deadline, False at it.  Native: False, after at least t."""
    lock = fam.make(env)
    assert fam.acquire(lock)
    timeout = 5.0 if env.manual_clock else 0.2

    def timed(lock: Any) -> tuple[bool, float]:
        t0 = env.monotonic()
        ok = fam.acquire(lock, timeout=timeout)
        return ok, env.monotonic() - t0

    h = env.start(timed, lock)
    if env.manual_clock:
        env.wait_blocked(h, "the timed acquire sleeps")
        env.advance(timeout - 0.001)
        assert env.blocked(h), "the timed acquire ended before its deadline"
        env.advance(0.001)
    ok, elapsed = h.result()
    assert ok is False
    assert elapsed >= timeout
    assert elapsed < STATE_TIMEOUT
    assert fam.held(lock)
    fam.release(lock)


def test_timed_acquire_succeeds_before_the_deadline(fam: Family, env: Env) -> None:
    """A timed acquire woken by a release returns True (threading docs: "return True if
    the lock was acquired"); on the emulated kernel no time passes at all."""
    lock = fam.make(env)
    assert fam.acquire(lock)

    def timed(lock: Any) -> bool:
        ok = fam.acquire(lock, timeout=STATE_TIMEOUT)
        if ok:
            fam.release(lock)
        return ok

    h = env.start(timed, lock)
    env.wait_blocked(h, "the timed acquire sleeps")
    fam.release(lock)
    assert h.result() is True
    assert not fam.held(lock)


def test_release_by_a_non_owner_raises(fam: Family, env: Env) -> None:
    """Owned locks: release by a worker that does not hold it raises NotOwnerError (a
    RuntimeError, as threading's RLock.release) and the holder keeps it (Trio
    generic_lock_test "release by non-owner"; sync_design §0 rule 13)."""
    if not fam.owned:
        pytest.skip(f"{fam.name} has no owner (sync_design §1.4 'No owner'; threading."
                    "Semaphore): any thread may release it")
    lock = fam.make(env)
    assert fam.acquire(lock)

    def steal(lock: Any) -> str:
        with pytest.raises(NotOwnerError) as caught:
            fam.release(lock)
        return str(caught.value)

    message = env.start(steal, lock).result()
    assert "does not hold" in message
    assert fam.holder(lock) == env.tid()
    fam.release(lock)
    assert fam.holder(lock) == 0


def test_release_when_free_raises(fam: Family, env: Env) -> None:
    """Releasing a lock nobody holds (a double release) raises: NotOwnerError for owned
    locks (threading: RuntimeError "release unlocked lock"), ValueError for a
    BoundedSemaphore (threading docs: "raises ValueError if the value would exceed the
    initial value"); a plain Semaphore just counts up."""
    if fam.over_release is None:
        pytest.skip(f"{fam.name}.release on a free one counts up (threading.Semaphore)")
    lock = fam.make(env)
    assert fam.acquire(lock)
    fam.release(lock)
    with pytest.raises(fam.over_release):
        fam.release(lock)

    def release_free(lock: Any) -> str:
        with pytest.raises(fam.over_release) as caught:  # type: ignore[arg-type]
            fam.release(lock)
        return type(caught.value).__name__

    assert env.start(release_free, lock).result() == fam.over_release.__name__
    assert not fam.held(lock)


def test_statistics(fam: Family, env: Env) -> None:
    """statistics() tells free from held, and names the holder's TID for owned locks
    (Trio's LockStatistics(locked, owner, tasks_waiting); sync_design §3 "statistics()
    reports whether it is locked, the owner TID, whether it is inconsistent, and the W
    bit")."""
    lock = fam.make(env)
    assert not fam.held(lock)
    assert fam.holder(lock) in (0, None)
    held, go = env.shared(), env.shared()

    def hold(lock: Any) -> bool:
        assert fam.acquire(lock)
        held.set(1)
        go.wait_for(1)
        fam.release(lock)
        return True

    h = env.start(hold, lock)
    held.wait_for(1)
    assert fam.held(lock)
    assert fam.holder(lock) in (h.tid, None)
    go.set(1)
    assert h.result()
    assert not fam.held(lock)


def test_mutex_statistics_fields(kernel_env: Env) -> None:
    """The Mutex's LockStatistics fields in each state: free; held (owner, count 1);
    held with a sleeping waiter (the W bit); free again (sync_design §3; the contract's
    word table: W may stay set in a free word, so only ``locked``/``owner`` are pinned
    there)."""
    from futex.sync import Mutex

    env = kernel_env
    m = env.make(Mutex)
    s = m.statistics()
    assert (s.locked, s.owner, s.waiters, s.count) == (False, 0, False, 0)
    assert (s.inconsistent, s.not_recoverable) == (False, False)
    assert s.mode == (robust_mode() if env.kernel == "native" else "robust-list")
    m.acquire()
    s = m.statistics()
    assert (s.locked, s.owner, s.waiters, s.count) == (True, env.tid(), False, 1)

    def wait(m: Any) -> bool:
        m.acquire()
        m.release()
        return True

    h = env.start(wait, m)
    env.wait_blocked(h, "a waiter sleeps on the held Mutex")
    s = m.statistics()
    assert (s.locked, s.owner, s.waiters) == (True, env.tid(), True)
    m.release()
    assert h.result()
    s = m.statistics()
    assert (s.locked, s.owner, s.count) == (False, 0, 0)


def test_rlock_statistics_count(kernel_env: Env) -> None:
    """An RLock's count follows its recursion depth (threading.RLock re-entry;
    sync_design §1.2)."""
    from futex.sync import RLock

    r = kernel_env.make(RLock)
    for depth in (1, 2, 3):
        assert r.acquire()
        assert r.statistics().count == depth
    for depth in (2, 1, 0):
        r.release()
        assert r.statistics().count == depth
    assert not r.statistics().locked
