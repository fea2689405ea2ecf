"""futex.sync.Condition: Rust's sequence-counter condvar with a robust lock inside.

The algorithm is Rust std's ``library/std/src/sys/sync/condvar/futex.rs`` (a sequence
word read under the lock, bumped by every notify) plus musl's process-shared waiter count
and CMP_REQUEUE for ``notify_all`` (sync_design §1.3); the API is threading.Condition's
(``Lib/threading.py``: ``wait`` returns False only on timeout, ``wait_for``,
``notify(n)``, RuntimeError "cannot wait on un-acquired lock").  Each test names the
row of sync_design §5 it pins.  Waits are detected by state (the waiter count and
``env.wait_blocked``); timeouts run on the emulated kernel's ManualClock.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from typing import Any

import pytest

from futex.sync import ROBUST_LIST, Mutex, NotOwnerError, OwnerDied, RLock, robust_mode
from futex.sync.condition import Condition
from tests.support import STATE_TIMEOUT, wait_until
from tests.sync.harness import Env, Handle, open_env

SEQ, LOCK_WORD = 16, 48


def _asleep(env: Env, cond: Any, handles: list[Handle]) -> None:
    """Wait until every worker of ``handles`` is counted in the condition and asleep in
    the kernel at the same moment: then each sleeps on seq (after counting itself a
    waiter only sleeps there until it is woken)."""
    n = len(handles)
    wait_until(
        lambda: cond.statistics().waiters == n and all(env.blocked(h) for h in handles),
        f"{n} waiters sleep in Condition.wait",
    )


def _wait_once(cond: Any) -> bool:
    with cond:
        return bool(cond.wait())


def test_notify_n_wakes_at_least_n(env: Env) -> None:
    """notify(n) wakes at least n of the waiters (threading: "wakes up at most n" is an
    implementation detail — "an optimized implementation ... may occasionally wake up
    more than n threads"; sync_design §5 Condition "notify(n) wakes >= n"); each woken
    wait returns True with the lock held."""
    cond = env.make(Condition)
    handles = [env.start(_wait_once, cond) for _ in range(3)]
    _asleep(env, cond, handles)
    with cond:
        cond.notify(2)
    wait_until(lambda: sum(h.done() for h in handles) >= 2, "notify(2) wakes two")
    with cond:
        cond.notify_all()
    assert [h.result() for h in handles] == [True, True, True]
    assert cond.statistics().waiters == 0
    assert not cond.lock.locked()


def test_notify_with_no_waiter_is_not_remembered(kernel_env: Env) -> None:
    """A notify with nobody waiting only bumps seq: a later wait still sleeps (threading:
    notify wakes threads *currently* waiting); notify(0) wakes nobody."""
    env = kernel_env
    cond = env.make(Condition)
    with cond:
        cond.notify()
        cond.notify_all()
    h = env.start(_wait_once, cond)
    _asleep(env, cond, [h])
    with cond:
        cond.notify(0)
    env.wait_blocked(h, "notify(0) woke nobody")
    with cond:
        cond.notify()
    assert h.result() is True
    assert cond.statistics().seq == 4


def test_notify_all_requeues_the_waiters_onto_the_lock(kernel_env: Env) -> None:
    """notify_all moves the sleepers onto the lock word with FUTEX_CMP_REQUEUE instead of
    waking them all at once (no thundering herd; sync_design §1.3, §5 "notify_all
    requeues (check the emulated queue)").  Emulated: right after notify_all, while the
    notifier still holds the lock, all three sit in the futex queue of the lock word and
    none of seq, none woken; the notifier's unlock then lets them through one by one."""
    env = kernel_env
    if not env.manual_clock:
        pytest.skip("the host kernel's futex queues cannot be inspected")
    cond = env.make(Condition)
    handles = [env.start(_wait_once, cond) for _ in range(3)]
    _asleep(env, cond, handles)
    space, futex = env.process.space, env.process.futex
    lock_key = space.futex_key(env.base + cond.offset + LOCK_WORD, False)
    seq_key = space.futex_key(env.base + cond.offset + SEQ, False)
    assert len(futex.queues()[seq_key]) == 3
    with cond:
        cond.notify_all()
        queues = futex.queues()
        assert seq_key not in queues
        assert sorted(w.tid for w in queues[lock_key]) == sorted(h.tid for h in handles)
        assert all(env.blocked(h) for h in handles)
        assert cond.lock.statistics().waiters  # W set: the unlock will wake the first
    assert [h.result() for h in handles] == [True, True, True]
    assert futex.queues() == {}
    assert not cond.lock.locked()


def test_notify_n_requeues_n_waiters_onto_the_lock(kernel_env: Env) -> None:
    """notify(n) moves n sleepers onto the lock word rather than waking them ("wait
    morphing", NetBSD libpthread's pthread_cond_signal: the notifier holds the lock, so a
    woken waiter would only sleep again on it).  Emulated: while the notifier holds the
    lock, two of three sit in the lock word's queue, one still on seq, none woken; the
    unlock lets the two through; a second notify the third."""
    env = kernel_env
    if not env.manual_clock:
        pytest.skip("the host kernel's futex queues cannot be inspected")
    cond = env.make(Condition)
    handles = [env.start(_wait_once, cond) for _ in range(3)]
    _asleep(env, cond, handles)
    space, futex = env.process.space, env.process.futex
    lock_key = space.futex_key(env.base + cond.offset + LOCK_WORD, False)
    seq_key = space.futex_key(env.base + cond.offset + SEQ, False)
    with cond:
        cond.notify(2)
        queues = futex.queues()
        assert (len(queues[seq_key]), len(queues[lock_key])) == (1, 2)
        assert all(env.blocked(h) for h in handles)
    wait_until(lambda: sum(h.done() for h in handles) == 2, "the unlock lets two through")
    with cond:
        cond.notify()
    assert [h.result() for h in handles] == [True, True, True]
    assert futex.queues() == {}
    assert cond.statistics().waiters == 0


def test_wait_re_takes_the_lock_with_w(kernel_env: Env) -> None:
    """wait() re-takes the lock with W set even where the word was free without it (a
    timed-out wait here): glibc's assume_other_futex_waiters for a thread that slept
    (BZ #20973; sync_design §1.3 "reacquire with assume=W"); the C core's re-take sets
    it as the Python reference does.  The unlock then finds nobody and clears it."""
    cond = kernel_env.make(Condition)
    with cond:
        assert not cond.lock.statistics().waiters
        assert cond.wait(0) is False
        assert cond.lock.statistics().waiters
    s = cond.lock.statistics()
    assert (s.locked, s.waiters) == (False, False)


def test_acquire_release_and_with_are_the_lock_s(kernel_env: Env) -> None:
    """The condition's acquire/release/``with`` are its lock's (threading.Condition:
    "acquire(*args): Acquire the underlying lock"): taken through one, held for the
    other; a release without it raises NotOwnerError naming the lock, a close while
    held RuntimeError (as Mutex.close); on the host kernel with the robust list, the C
    lock core runs them."""
    env = kernel_env
    cond = env.make(Condition)
    assert cond.acquire(blocking=False)
    assert cond.lock._is_owned() and cond._is_owned()
    cond.lock.release()
    assert not cond._is_owned()
    with cond.lock:
        assert cond._is_owned()
    with cond as entered:
        assert entered is cond and cond.lock.statistics().count == 1
    with pytest.raises(NotOwnerError, match="does not hold the RLock"):
        cond.release()
    with cond, pytest.raises(RuntimeError, match="release the Condition's lock first"):
        cond.close()  # as Mutex.close: the node is linked while held
    cond.close()
    with pytest.raises(ValueError):
        cond.acquire()
    if env.kernel == "native" and robust_mode() == ROBUST_LIST:
        from futex.native import _native

        core = getattr(_native, "LockCore", None)
        assert core is None or isinstance(cond, core)


def test_an_exception_in_wait_leaves_the_lock_held(kernel_env: Env) -> None:
    """A signal handler that raises while wait() sleeps (Ctrl-C) ends the wait with
    the lock re-taken and the waiter count restored (threading.Condition.wait re-takes
    the lock in a ``finally``); the main thread sleeps in slices, so the handler runs
    within one (futex.sync.drive.SIGNAL_SLICE)."""
    if kernel_env.kernel != "native" or not hasattr(signal, "setitimer"):
        pytest.skip("needs the host kernel's signals (signal.setitimer)")
    cond = kernel_env.make(Condition)

    class Interrupted(Exception):
        pass

    def handler(signum: int, frame: object) -> None:
        if cond.statistics().waiters == 1:  # asleep in wait: interrupt it
            raise Interrupted
        signal.setitimer(signal.ITIMER_REAL, 0.01)  # not yet: look again

    old = signal.signal(signal.SIGALRM, handler)
    try:
        with cond:
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            with pytest.raises(Interrupted):
                cond.wait(STATE_TIMEOUT)
            assert cond._is_owned()
            assert cond.statistics().waiters == 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not cond.lock.locked()


def test_notify_all_wakes_every_waiter(env: Env) -> None:
    """notify_all wakes every waiter, in threads and in other processes (threading:
    "Wake up all threads waiting on this condition")."""
    cond = env.make(Condition)
    handles = [env.start(_wait_once, cond) for _ in range(3)]
    _asleep(env, cond, handles)
    with cond:
        cond.notify_all()
    assert [h.result() for h in handles] == [True, True, True]
    assert not cond.lock.locked()


def test_timeout_returns_false_only_after_the_deadline(kernel_env: Env) -> None:
    """wait(timeout) returns False once the timeout passed, with the lock re-taken
    (threading: "The return value is True unless a given timeout expired"; sync_design
    §5 "timeout returns False").  Emulated: still asleep 1 ms before the deadline."""
    env = kernel_env
    cond = env.make(Condition)
    timeout = 5.0 if env.manual_clock else 0.05

    def timed(cond: Any) -> tuple[bool, bool, float]:
        with cond:
            t0 = env.monotonic()
            ok = cond.wait(timeout)
            return ok, cond.lock._is_owned(), env.monotonic() - t0

    h = env.start(timed, cond)
    if env.manual_clock:
        _asleep(env, cond, [h])
        env.advance(timeout - 0.001)
        assert env.blocked(h), "the timed wait ended before its deadline"
        env.advance(0.001)
    ok, owned, elapsed = h.result()
    assert (ok, owned) == (False, True)
    assert timeout <= elapsed < STATE_TIMEOUT
    assert cond.statistics().waiters == 0


def test_wait_for_a_predicate(env: Env) -> None:
    """wait_for(predicate) returns once the predicate holds, re-checking after each wake
    (threading.Condition.wait_for; sync_design §5 "wait_for")."""
    cond = env.make(Condition)
    count = env.shared()

    def consumer(cond: Any) -> bool:
        with cond:
            return bool(cond.wait_for(lambda: count.load() >= 3))

    h = env.start(consumer, cond)
    for _ in range(3):
        _asleep(env, cond, [h])
        with cond:
            count.add(1)
            cond.notify()
    assert h.result() is True


def test_wait_for_times_out_with_the_predicate_false(kernel_env: Env) -> None:
    """wait_for(predicate, timeout) returns the predicate's last (false) value once the
    timeout passed, the notifies before it not counting as success (threading)."""
    env = kernel_env
    cond = env.make(Condition)
    timeout = 4.0 if env.manual_clock else 0.05

    def consumer(cond: Any) -> object:
        with cond:
            return cond.wait_for(lambda: 0, timeout)

    h = env.start(consumer, cond)
    _asleep(env, cond, [h])
    with cond:
        cond.notify()  # a wake with the predicate still false: it waits again
    if env.manual_clock:
        _asleep(env, cond, [h])
        env.advance(timeout)
    assert h.result() == 0


def test_wait_and_notify_without_the_lock_raise(kernel_env: Env) -> None:
    """wait/notify/notify_all by a thread that does not hold the lock raise NotOwnerError,
    a RuntimeError as threading's "cannot wait on un-acquired lock"."""
    env = kernel_env
    cond = env.make(Condition)
    for call in (cond.wait, cond.notify, cond.notify_all):
        with pytest.raises(NotOwnerError, match="un-acquired lock"):
            call()
    assert issubclass(NotOwnerError, RuntimeError)
    with cond:

        def other(cond: Any) -> str:
            with pytest.raises(NotOwnerError):
                cond.notify()
            return "refused"

        assert env.start(other, cond).result() == "refused"


def test_wait_releases_an_rlock_fully_and_restores_its_count(kernel_env: Env) -> None:
    """With the default RLock, wait releases every level (threading's
    ``_release_save``/``_acquire_restore``): another thread takes the lock while the
    waiter, which holds it twice, sleeps; afterwards the waiter releases it twice."""
    env = kernel_env
    cond = env.make(Condition)
    assert isinstance(cond.lock, RLock)

    def nested(cond: Any) -> tuple[bool, int]:
        with cond, cond:
            ok = cond.wait()
            return ok, cond.lock.statistics().count

    h = env.start(nested, cond)
    _asleep(env, cond, [h])
    assert cond.acquire(False)  # the waiter's two levels are released
    cond.notify()
    cond.release()
    assert h.result() == (True, 2)
    assert not cond.lock.locked()


def test_recursive_false_embeds_a_mutex_and_attach_reads_the_flag(kernel_env: Env) -> None:
    """Condition(recursive=False) embeds a Mutex at +32 (header flags bit 0 clear); an
    attach in another object adopts the same lock kind (contract: Condition layout)."""
    env = kernel_env
    cond = env.make(Condition, recursive=False)
    assert type(cond.lock)._public() is Mutex
    again = Condition.attach(env.memory(), cond.offset)
    assert type(again.lock)._public() is Mutex
    default = Condition.attach(env.memory(), env.make(Condition).offset)
    assert type(default.lock)._public() is RLock
    with cond:
        with pytest.raises(RuntimeError, match="deadlock"):
            cond.acquire()
        assert cond.wait(0) is False
        assert cond.lock._is_owned()


def test_wait_raises_owner_died_when_the_holder_dies(env: Env) -> None:
    """A notifier that dies holding the lock (a thread that ends, a process that exits,
    an emulated task that exits) makes the woken waiter re-take the lock with
    OwnerDied, the lock held and inconsistent (sync_design §3 "Condition.wait may raise
    OwnerDied too"; glibc pthread_cond_wait returns EOWNERDEAD)."""
    cond = env.make(Condition)

    def waiter(cond: Any) -> tuple[str, bool, bool]:
        cond.acquire()
        try:
            cond.wait()
        except OwnerDied as exc:
            state = ("OwnerDied", cond.lock._is_owned(), exc.lock.consistent)
            cond.lock.make_consistent()
            cond.release()
            return state
        cond.release()
        return ("no OwnerDied", True, True)

    def notify_and_die(cond: Any) -> str:
        cond.acquire()
        cond.notify()
        return "ended holding the lock"

    w = env.start(waiter, cond)
    _asleep(env, cond, [w])
    dying = env.start(notify_and_die, cond)
    assert dying.result() == "ended holding the lock"
    if dying.task is not None:
        dying.task.exit()  # the emulated kernel's robust-list walk marks OWNER_DIED
    assert w.result() == ("OwnerDied", True, False)
    assert not cond.lock.locked()


def test_producer_consumer_stress() -> None:
    """A bounded stress (sync_design §5 names a 10**6-op run; this is its CI-sized
    version): two producers and two consumers hand 4000 items through a condition with
    notify and notify_all; every item arrives once and nobody is left waiting."""
    with open_env("native", "threads") as env:
        cond = env.make(Condition)
        items: list[int] = []
        got: list[int] = []
        total = 4000

        def producer(base: int) -> None:
            for i in range(total // 2):
                with cond:
                    items.append(base + i)
                    cond.notify() if i % 2 else cond.notify_all()

        def consumer() -> None:
            while True:
                with cond:
                    if not cond.wait_for(lambda: items or len(got) >= total, STATE_TIMEOUT):
                        raise AssertionError("a consumer starved")
                    if len(got) >= total:
                        cond.notify_all()
                        return
                    got.append(items.pop())
                    if len(got) >= total:
                        cond.notify_all()

        threads = [threading.Thread(target=producer, args=(b,)) for b in (0, total)]
        threads += [threading.Thread(target=consumer) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(STATE_TIMEOUT)
        assert not any(t.is_alive() for t in threads)
        assert sorted(got) == [*range(total // 2), *range(total, total + total // 2)]
        assert cond.statistics().waiters == 0


def test_wait_async_is_woken_by_a_thread() -> None:
    """asyncio (sync_design §3): ``await cond.wait_async()`` releases the lock, sleeps
    without blocking the loop, and re-takes the lock in the loop's thread once a thread
    notifies; a timeout returns False with the lock held."""
    pytest.importorskip("futex.sync.aio")
    with open_env("native", "threads") as env:
        cond = env.make(Condition)

        def notifier() -> None:
            wait_until(lambda: cond.statistics().waiters == 1, "the coroutine waits")
            with cond:
                cond.notify()

        async def main() -> tuple[bool, bool, bool]:
            with cond:
                late = await cond.wait_async(0.01)
                thread = threading.Thread(target=notifier)
                thread.start()
                got = await asyncio.wait_for(cond.wait_async(), STATE_TIMEOUT)
                owned = cond.lock._is_owned()
            thread.join()
            return late, got, owned

        assert asyncio.run(main()) == (False, True, True)
        assert not cond.lock.locked()


def test_wait_async_cancelled_while_re_taking_keeps_the_lock() -> None:
    """A wait_async cancelled while it re-takes the lock still ends with the lock held
    and the waiter count restored, then raises CancelledError (asyncio.Condition.wait
    re-acquires "even if wait is cancelled"; threading: wait returns holding the lock).
    A thread takes the lock while the coroutine waits and holds it across the coroutine's
    timeout, so the re-take sleeps.  If the timeout beats the thread to the lock (a loaded
    machine), that attempt proves nothing and runs again with a longer timeout."""
    pytest.importorskip("futex.sync.aio")
    with open_env("native", "threads") as env:
        cond = env.make(Condition)

        async def attempt(timeout: float) -> tuple[bool, int] | None:
            holding, done, gave_up = threading.Event(), threading.Event(), threading.Event()

            def holder() -> None:
                end = time.monotonic() + STATE_TIMEOUT
                while cond.statistics().waiters != 1:  # the coroutine waits (lock released)
                    if gave_up.is_set() or time.monotonic() > end:
                        return
                    time.sleep(0.0005)
                with cond:
                    holding.set()
                    done.wait(STATE_TIMEOUT)

            async def waiter() -> tuple[bool, int] | None:
                with cond:
                    try:
                        await cond.wait_async(timeout)
                    except asyncio.CancelledError:
                        return cond._is_owned(), cond.statistics().waiters
                return None  # the timeout came first and the lock was free: run again

            thread = threading.Thread(target=holder)
            thread.start()
            task = asyncio.ensure_future(waiter())
            try:
                end = time.monotonic() + STATE_TIMEOUT
                # the thread holds the lock, then the timeout passes and the coroutine
                # re-takes the lock, asleep on it (W) -- or the attempt was lost
                while not (holding.is_set() and cond.lock.statistics().waiters):
                    if task.done():
                        return None
                    assert time.monotonic() < end, "the coroutine never re-takes the lock"
                    await asyncio.sleep(0.001)
                task.cancel()
                for _ in range(5):  # the task's next steps: the cancellation is thrown in
                    await asyncio.sleep(0)
            finally:
                gave_up.set()
                done.set()
                await asyncio.to_thread(thread.join)
            return await task

        async def main() -> tuple[bool, int] | None:
            for timeout in (0.001, 0.05, 0.5, 5.0):
                result = await attempt(timeout)
                if result is not None:
                    return result
            return None

        assert asyncio.run(main()) == (True, 0)
        assert not cond.lock.locked()
