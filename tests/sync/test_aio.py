"""futex.sync.aio and futex.sync.reactor: algorithms driven on asyncio (sync_design §3, §5).

The algorithms here are toys of this file that follow the :mod:`futex.sync.drive`
protocol — "wait until a word changes" and a counting semaphore over one native word
that passes a consumed wake on when it leaves after sleeping (glibc
``nptl/sem_waitcommon.c``'s rule, issue 13 §6) — so that the reactor is tested apart
from the primitives.  Every test runs under ``asyncio.run`` with a bound of a few
seconds on the coroutine part (a failure, not a hang) and waits for state, not time.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import mmap
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

native = pytest.importorskip(
    "futex.native", reason="futex.native (the host kernel's futex, a C extension) is not built"
)

from futex.native import Word  # noqa: E402
from futex.sync import aio, drive, reactor  # noqa: E402
from futex.sync.drive import Algorithm, Sleep, deadline_after  # noqa: E402
from tests.support import STATE_TIMEOUT, in_syscall, wait_until  # noqa: E402

T = TypeVar("T")

#: Bound on the coroutine part of a test.
BOUND = 10.0

SYS_futex_waitv = 449

needs_waitv = pytest.mark.skipif(
    reactor.waitv_unavailable() is not None,
    reason=f"the host kernel has no usable futex_waitv (Linux 5.16+): "
    f"{reactor.waitv_unavailable()}",
)


def arun(coro: Awaitable[T], bound: float = BOUND) -> T:
    """Run ``coro`` on a fresh loop; fail (TimeoutError) rather than hang."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, bound)

    return asyncio.run(bounded())


async def until(cond: Callable[[], bool], what: str) -> None:
    """Poll ``cond`` on the loop until it holds; fail after STATE_TIMEOUT."""
    end = time.monotonic() + STATE_TIMEOUT
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting until {what}")
        await asyncio.sleep(0.0005)


def stats() -> reactor.ReactorStatistics:
    return reactor.reactor().statistics()




def reactor_asleep(nr: int, arg1: int | None = None) -> bool:
    """Whether the first shard's thread sleeps in syscall ``nr`` (futex_waitv: ``arg1`` is
    the number of words, the control word included)."""
    ids = stats().thread_ids
    s = in_syscall(ids[0]) if ids and ids[0] else None
    return s is not None and s[0] == nr and (arg1 is None or s[2] == arg1)



@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    yield
    wait_until(lambda: stats().waiters == 0, "no coroutine waits any more")


# -- toy algorithms ---------------------------------------------------------------------


def changed(word: Word, old: int, timeout: float | None = None) -> Algorithm[int | None]:
    """Wait until ``word`` no longer holds ``old``: its new value, None on timeout."""
    deadline = deadline_after(timeout, time.monotonic)
    while (v := word.load()) == old:
        if not (yield Sleep(word, old, deadline, time.monotonic, True)):
            return None
    return v


class ToySemaphore:
    """A counting semaphore: the word is the count; waiters sleep on 0."""

    def __init__(self, word: Word) -> None:
        self.word = word
        self.passed_on = 0

    def acquire(self, timeout: float | None = None) -> Algorithm[bool]:
        deadline = deadline_after(timeout, time.monotonic)
        slept = taken = False
        try:
            while True:
                v = self.word.load()
                if v > 0:
                    if self.word.cas(v, v - 1) == v:
                        taken = True
                        return True
                    continue
                slept = True  # before the yield: an exception is thrown in right there
                if not (yield Sleep(self.word, 0, deadline, time.monotonic, True)):
                    return False
        finally:
            if slept and not taken:  # a wake this waiter consumed goes on
                self.passed_on += 1
                self.word.wake(1)

    def post(self) -> None:
        self.word.fetch_add(1)
        self.word.wake(1)


def acquiring_thread(sem: ToySemaphore, got: list[bool]) -> threading.Thread:
    """A thread (not started) that acquires ``sem`` on the thread (:func:`drive.run`,
    timeout STATE_TIMEOUT) and appends the result to ``got``."""
    return threading.Thread(
        target=lambda: got.append(drive.run(sem.acquire(STATE_TIMEOUT))), daemon=True
    )


async def thread_asleep_on(sem: ToySemaphore, got: list[bool]) -> threading.Thread:
    """An :func:`acquiring_thread`, started, once it sleeps in futex(2) on the word."""
    thread = acquiring_thread(sem, got)
    thread.start()
    await until(
        lambda: (s := in_syscall(thread.native_id or 0)) is not None
        and s[0] == native.SYS_futex
        and s[1] == sem.word.address,
        "the thread sleeps on the word",
    )
    return thread


# -- wakes from elsewhere ---------------------------------------------------------------


def test_waiter_completed_by_a_wake_from_another_thread(mem: mmap.mmap) -> None:
    """sync_design §3 "Mechanism": a FUTEX_WAKE from another thread reaches the reactor's
    futex_waitv, which completes the coroutine on its loop."""
    word = Word(mem)

    async def main() -> int | None:
        task = asyncio.ensure_future(aio.run_async(changed(word, 0)))
        await until(lambda: stats().waiters == 1, "the coroutine is registered")

        def poke() -> None:
            word.store(7)
            word.wake(1)

        threading.Thread(target=poke, daemon=True).start()
        return await task

    assert arun(main()) == 7
    assert stats().entries == 0


def test_waiter_completed_by_a_wake_from_another_process(mem: mmap.mmap) -> None:
    """Shared futex keys (no FUTEX_PRIVATE_FLAG): a wake from a fork child, through the
    shared mapping, completes the coroutine."""
    word = Word(mem)

    async def main() -> int | None:
        task = asyncio.ensure_future(aio.run_async(changed(word, 0)))
        await until(lambda: stats().waiters == 1, "the coroutine is registered")
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child: system calls only, then _exit
            try:
                word.store(9)
                word.wake(1)
            finally:
                os._exit(0)
        try:
            return await task
        finally:
            os.waitpid(pid, 0)

    assert arun(main()) == 9


def test_a_coroutine_can_await_in_a_fork_child(mem: mmap.mmap) -> None:
    """The reactor's threads do not exist in a fork child: it starts a new one."""
    word, ready = Word(mem), Word(mem, 4)
    assert arun(aio.run_async(changed(word, 0, timeout=0.001))) is None  # reactor started
    parent_threads = stats().thread_ids
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:

            async def child() -> int | None:
                task = asyncio.ensure_future(aio.run_async(changed(word, 0)))
                await until(lambda: stats().waiters == 1, "registered in the child")
                ready.store(1)
                ready.wake(1)
                return await task

            fresh = stats().thread_ids == () and stats().rounds == 0
            code = 0 if arun(child()) == 5 and fresh else 2
            code = code or (3 if stats().thread_ids == parent_threads else 0)
        finally:
            os._exit(code)
    try:
        wait_until(lambda: ready.load() == 1, "the child's coroutine is registered")
        word.store(5)
        word.wake(1)
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# -- many waiters -----------------------------------------------------------------------


def test_200_coroutines_on_one_word_share_one_entry(mem: mmap.mmap) -> None:
    """One kernel sleeper per (word, expected): a single FUTEX_WAKE(1) reaches the
    reactor, which completes every coroutine of the entry (they re-check the word)."""
    word = Word(mem)

    async def main() -> list[int | None]:
        tasks = [asyncio.ensure_future(aio.run_async(changed(word, 0))) for _ in range(200)]
        await until(lambda: stats().waiters == 200, "all 200 are registered")
        assert stats().entries == 1
        word.store(1)
        word.wake(1)
        return await asyncio.gather(*tasks)

    assert arun(main()) == [1] * 200


def test_200_coroutines_on_distinct_words_all_complete(mem: mmap.mmap) -> None:
    """futex_waitv takes 128 words (one is the control word): the surplus goes to a
    second shard thread."""
    words = [Word(mem, 4 * i) for i in range(200)]

    async def main() -> list[int | None]:
        tasks = [asyncio.ensure_future(aio.run_async(changed(w, 0))) for w in words]
        await until(lambda: stats().entries == 200, "all 200 are registered")
        assert len(stats().thread_ids) >= 2

        def poke() -> None:  # the last registered first: the second shard's words too
            for i, w in reversed(list(enumerate(words))):
                w.store(i + 1)
                w.wake(1)

        threading.Thread(target=poke, daemon=True).start()
        return await asyncio.gather(*tasks)

    assert arun(main()) == list(range(1, 201))


# -- deadlines, timeouts, cancellation ---------------------------------------------------


def test_a_sleep_deadline_ends_the_wait_with_false(mem: mmap.mmap) -> None:
    """drive protocol: a Sleep's absolute deadline ends it with False, never early; the loop
    timer does it (the reactor knows nothing about time)."""
    sem = ToySemaphore(Word(mem))
    before = time.monotonic()
    assert arun(aio.run_async(sem.acquire(timeout=0.02))) is False
    assert time.monotonic() - before >= 0.02  # never before the deadline
    assert sem.passed_on == 1  # left after sleeping: passed a possible wake on
    assert stats().entries == 0


def test_wait_for_timeout_cancels_the_wait_and_removes_its_registration(
    mem: mmap.mmap,
) -> None:
    """sync_design §5: asyncio.wait_for cancels the wait; the CancelledError reaches the
    algorithm (which passes a wake on) and the reactor entry goes."""
    sem = ToySemaphore(Word(mem))

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(aio.run_async(sem.acquire()), 0.02)

    arun(main())
    assert sem.passed_on == 1  # the CancelledError went into the algorithm
    assert stats().entries == 0


def test_cancelling_a_waiter_removes_its_registration(mem: mmap.mmap) -> None:
    """issue 13 §6: a cancelled coroutine leaves the shared entry; the last one removes it."""
    sem = ToySemaphore(Word(mem))

    async def main() -> None:
        tasks = [asyncio.ensure_future(aio.run_async(sem.acquire())) for _ in range(2)]
        await until(lambda: stats().waiters == 2, "both are registered")
        tasks[0].cancel()
        await until(lambda: stats().waiters == 1, "the cancelled one is gone")
        assert stats().entries == 1  # the other still waits on the shared entry
        tasks[1].cancel()
        await until(lambda: stats().entries == 0, "the entry is gone")
        for t in tasks:
            with pytest.raises(asyncio.CancelledError):
                await t

    arun(main())


def test_the_woken_coroutine_cancelled_the_other_coroutine_gets_the_post(
    mem: mmap.mmap,
) -> None:
    """sync_design §5: cancel the woken waiter — the other one still gets the post."""
    sem = ToySemaphore(Word(mem))

    async def main() -> None:
        a = asyncio.ensure_future(aio.run_async(sem.acquire()))
        b = asyncio.ensure_future(aio.run_async(sem.acquire()))
        await until(lambda: stats().waiters == 2, "both are registered")
        sem.post()
        # the reactor completes the entry in its thread; cancel before the loop runs
        wait_until(lambda: stats().waiters == 0, "the reactor completed the waiters")
        a.cancel()
        assert await b is True
        with pytest.raises(asyncio.CancelledError):
            await a

    arun(main())
    assert sem.word.load() == 0


@needs_waitv
def test_the_woken_coroutine_cancelled_a_thread_gets_the_passed_on_wake(
    mem: mmap.mmap,
) -> None:
    """The post's FUTEX_WAKE(1) reaches the reactor (queued first): cancelling that
    coroutine must pass the wake on to the thread asleep behind it — the only wake the
    thread gets (issue 13 §6: never swallow a hand-off)."""
    sem = ToySemaphore(Word(mem))
    got: list[bool] = []

    async def main() -> None:
        a = asyncio.ensure_future(aio.run_async(sem.acquire()))
        await until(lambda: reactor_asleep(SYS_futex_waitv, 2), "the reactor sleeps on it")
        thread = await thread_asleep_on(sem, got)
        sem.post()  # wakes the first sleeper in the kernel's queue: the reactor
        wait_until(lambda: stats().waiters == 0, "the reactor completed the coroutine")
        a.cancel()
        with pytest.raises(asyncio.CancelledError):
            await a
        await until(lambda: not thread.is_alive(), "the thread got the post")

    arun(main())
    assert got == [True]
    assert sem.word.load() == 0


@needs_waitv
def test_the_reactor_passes_on_a_wake_that_lands_on_an_abandoned_entry(
    mem: mmap.mmap,
) -> None:
    """A coroutine left (its entry removed) while the reactor still sleeps on the entry:
    a wake that lands there is passed on by the reactor itself."""
    sem = ToySemaphore(Word(mem))
    owner = reactor.reactor()
    got: list[bool] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        waiter = reactor.Waiter(loop, loop.create_future())
        owner.register(sem.word, 0, waiter)
        await until(lambda: reactor_asleep(SYS_futex_waitv, 2), "the reactor sleeps on it")
        thread = await thread_asleep_on(sem, got)
        before = stats().passed_on
        owner.remove(waiter)  # the table half of unregister: the reactor is not kicked
        sem.post()
        await until(lambda: not thread.is_alive(), "the thread got the post")
        assert stats().passed_on == before + 1

    arun(main())
    assert got == [True]


def test_threads_and_coroutines_mixed_each_get_one_post(mem: mmap.mmap) -> None:
    """sync_design §5: threads (in the kernel's queue) and coroutines (behind the
    reactor) wait on one semaphore; 8 posts, 8 acquires: nobody is left asleep."""
    sem = ToySemaphore(Word(mem))
    got: list[bool] = []
    threads = [acquiring_thread(sem, got) for _ in range(4)]

    async def main() -> list[bool]:
        tasks = [asyncio.ensure_future(aio.run_async(sem.acquire())) for _ in range(4)]
        for t in threads:
            t.start()
        await until(lambda: stats().waiters == 4, "the coroutines are registered")

        def poster() -> None:
            for _ in range(8):
                sem.post()

        threading.Thread(target=poster, daemon=True).start()
        return await asyncio.gather(*tasks)

    assert arun(main()) == [True] * 4
    for t in threads:
        t.join(STATE_TIMEOUT)
    assert got == [True] * 4
    assert sem.word.load() == 0


@needs_waitv
def test_the_word_can_be_released_as_soon_as_a_wait_ends() -> None:
    """The reactor leaves the kernel's wait on a Word before the coroutine resumes
    (completed) or before the cancellation reaches the algorithm (cancelled):
    ``Word.release()`` — refused while a wait sleeps on the word — then succeeds, and
    the buffer closes."""

    async def once(wake: bool) -> None:
        m = mmap.mmap(-1, 4096)
        word = Word(m)
        task = asyncio.ensure_future(aio.run_async(changed(word, 0)))
        await until(lambda: stats().waiters == 1, "registered")
        await until(lambda: reactor_asleep(SYS_futex_waitv, 2), "the reactor sleeps on it")
        if wake:
            word.store(1)
            word.wake(1)
            await task
        else:
            task.cancel()
            await asyncio.wait([task])
        word.release()  # ValueError if the reactor still slept on it
        m.close()

    async def main() -> None:
        for i in range(20):
            await once(wake=i % 2 == 0)

    arun(main())


# -- only native words ------------------------------------------------------------------


def test_a_sleep_on_a_word_of_the_emulated_kernel_raises_type_error(kernel: Any) -> None:
    """Only the host kernel can be awaited: a futex cannot signal a file descriptor, and an
    emulated word has no kernel for the reactor to sleep in."""
    from futex.linux.word import EmulatedWord

    process = kernel.new_process()
    task = process.new_task()
    word = EmulatedWord(task, process.mmap(4096, shared=True))
    word.store(0)

    def wait_once() -> Algorithm[bool]:
        return (yield Sleep(word, 0, None, time.monotonic))

    with pytest.raises(TypeError, match=r"asyncio waits need the host kernel"):
        arun(aio.run_async(wait_once()))


def test_an_algorithm_must_yield_sleeps() -> None:
    """Bad input -> precise exception: the drive protocol yields Sleep only."""
    def bad() -> Any:
        yield "not a sleep"

    with pytest.raises(TypeError, match=r"must yield futex.sync.drive.Sleep"):
        arun(aio.run_async(bad()))


# -- the fallback without futex_waitv ------------------------------------------------------


def test_polling_fallback_completes_waiters(
    mem: mmap.mmap, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where futex_waitv is missing (ENOSYS before Linux 5.16, or a seccomp filter) each
    shard sleeps on its control word for POLL_INTERVAL and re-reads its entries."""
    monkeypatch.setattr(reactor, "FORCE_POLLING", True)
    words = [Word(mem, 4 * i) for i in range(150)]

    async def main() -> list[int | None]:
        tasks = [asyncio.ensure_future(aio.run_async(changed(w, 0))) for w in words]
        await until(lambda: stats().entries == 150, "all are registered")
        assert stats().mode == "polling"
        await until(lambda: reactor_asleep(native.SYS_futex), "a shard polls")
        for i, w in enumerate(words):
            w.store(i + 1)  # no wake at all: polling sees the values change
        timed = await aio.run_async(changed(words[0], 1, timeout=0.01))
        return [*await asyncio.gather(*tasks), timed]

    assert arun(main()) == [*range(1, 151), None]


# -- the loop gate -------------------------------------------------------------------------


def test_loop_gate_is_one_lock_per_key_and_loop() -> None:
    """sync_design §3 "Order within a loop": an asyncio.Lock per (lock, loop)."""
    async def gates() -> tuple[asyncio.Lock, asyncio.Lock, asyncio.Lock]:
        return aio.loop_gate("k"), aio.loop_gate("k"), aio.loop_gate("other")

    async def keep() -> tuple[Any, ...]:
        a, b, c = await gates()
        assert a is b and a is not c
        return a, c

    first = arun(keep())
    second = arun(keep())
    assert first[0] is not second[0]  # another loop, another gate


def test_acquire_owned_lets_a_loops_coroutines_in_one_at_a_time_in_fifo_order(
    mem: mmap.mmap,
) -> None:
    """sync_design §3: the gate keeps one loop's coroutines in FIFO order (asyncio.Lock's)."""
    order: list[int] = []
    inside: list[int] = []
    word = Word(mem)

    async def attempt(n: int, deadline: float | None) -> bool:
        inside.append(n)
        assert len(inside) == 1, "two coroutines inside the gate"
        order.append(n)
        await aio.run_async(changed(word, n))  # held until the test moves the word on
        inside.remove(n)
        return True

    async def main() -> list[bool]:
        tasks = [
            asyncio.ensure_future(aio.acquire_owned("gate", functools.partial(attempt, n)))
            for n in range(5)
        ]
        for n in range(5):
            await until(functools.partial(lambda n: order[-1:] == [n], n), f"{n} is inside")
            word.store(n + 1)
            word.wake(1)
        return await asyncio.gather(*tasks)

    assert arun(main()) == [True] * 5
    assert order == [0, 1, 2, 3, 4]


def test_acquire_owned_times_out_at_the_gate(mem: mmap.mmap) -> None:
    """threading's acquire(timeout) rule at the gate: False when the deadline passes there;
    timeout=0 does not wait."""
    word = Word(mem)

    async def hold(deadline: float | None) -> bool:
        await aio.run_async(changed(word, 0))
        return True

    async def never(deadline: float | None) -> bool:
        raise AssertionError("entered a held gate")

    async def main() -> tuple[bool, bool]:
        holder = asyncio.ensure_future(aio.acquire_owned("g", hold))
        await until(lambda: stats().waiters == 1, "the holder is inside")
        late = await aio.acquire_owned("g", never, timeout=0.01)
        now = await aio.acquire_owned("g", never, timeout=0)
        word.store(1)
        word.wake(1)
        assert await holder
        return late, now

    assert arun(main()) == (False, False)


# -- with the lead's Mutex --------------------------------------------------------------------


def _mutex() -> Any:
    sync = pytest.importorskip("futex.sync")
    try:
        return sync.Mutex()
    except Exception as exc:  # the primitive is being written concurrently
        pytest.skip(f"futex.sync.Mutex() is not usable yet: {exc}")


def _loop_shared() -> bool:
    """Whether Mutex._acquire_steps takes ``loop_shared`` (requests.md: the rule that
    this thread's TID in the word means another coroutine of the loop holds it)."""
    from futex.sync.mutex import Mutex

    return "loop_shared" in inspect.signature(Mutex._acquire_steps).parameters


async def _acquire_mutex(m: Any, timeout: float | None = None) -> bool:
    """``m.acquire_async(timeout)``, or the same composed from its parts as proposed in
    requests.md while the Mutex has no acquire_async yet."""
    if hasattr(m, "acquire_async"):
        return bool(await m.acquire_async(timeout))
    from futex.sync import mutex as mod

    opts = {"loop_shared": True} if _loop_shared() else {}

    async def attempt(deadline: float | None) -> bool:
        outcome = await aio.run_async(mod.Mutex._acquire_steps(m, deadline, **opts))
        if outcome == mod._DIED:
            m._owner_died()
        return bool(outcome != mod._TIMEOUT)

    return await aio.acquire_owned(("futex.sync.lock", m._node), attempt, timeout)


def test_mutex_acquired_from_a_coroutine_is_owned_by_the_loop_thread() -> None:
    """sync_design §3 "Ownership": the CAS runs in the loop thread, whose TID owns the lock."""
    m = _mutex()

    async def main() -> None:
        assert await _acquire_mutex(m) is True
        assert m.statistics().owner == threading.get_native_id()
        m.release()
        if hasattr(m, "__aenter__"):
            async with m:
                assert m.statistics().owner == threading.get_native_id()

    arun(main())
    assert not m.locked()


def test_mutex_held_by_a_thread_a_coroutine_waits_and_times_out() -> None:
    """A Mutex held by a thread: the coroutine's acquire times out (False), then sleeps via the
    reactor until the C core's release wakes it."""
    m = _mutex()
    release = threading.Event()
    held = threading.Event()

    def holder() -> None:
        m.acquire()
        held.set()
        release.wait(STATE_TIMEOUT)
        m.release()

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()

    async def main() -> tuple[bool, bool]:
        await until(held.is_set, "the thread holds the Mutex")
        late = await _acquire_mutex(m, timeout=0.02)
        task = asyncio.ensure_future(_acquire_mutex(m))
        await until(lambda: stats().waiters == 1, "the coroutine sleeps on the Mutex")
        release.set()
        got = await task
        m.release()
        return late, got

    try:
        assert arun(main()) == (False, True)
    finally:
        release.set()
        thread.join()


def test_mutex_holder_process_killed_the_coroutine_gets_owner_died() -> None:
    """The kernel's robust-list walk marks the word OWNER_DIED and wakes one waiter:
    here the reactor, for the awaiting coroutine (sync_design §2)."""
    m = _mutex()
    sync = pytest.importorskip("futex.sync")
    if sync.robust_mode() != sync.ROBUST_LIST:
        pytest.skip("the robust list is not in use here (pid-liveness mode)")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child: take the lock, then wait to be killed
        try:
            m.acquire()
            while True:
                time.sleep(1)
        finally:
            os._exit(1)

    async def main() -> None:
        await until(m.locked, "the child holds the Mutex")
        task = asyncio.ensure_future(_acquire_mutex(m))
        await until(lambda: stats().waiters == 1, "the coroutine sleeps on the Mutex")
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(sync.OwnerDied):
            await task
        assert m.statistics().owner == threading.get_native_id()
        m.make_consistent()
        m.release()

    try:
        arun(main())
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_mutex_coroutines_of_one_loop_and_a_thread_take_turns() -> None:
    """sync_design §3: the coroutines of one loop share the loop thread's TID; one at a
    time holds the Mutex (the gate, FIFO), and the C core's release wakes the next."""
    m = _mutex()
    if not hasattr(m, "acquire_async") and not _loop_shared():
        pytest.skip("Mutex._acquire_steps has no loop_shared flag yet (requests.md)")
    inside: list[str] = []
    order: list[int] = []

    def enter(who: str) -> None:
        inside.append(who)
        assert len(inside) == 1, f"{inside} hold the Mutex together"

    def thread_body() -> None:
        for _ in range(20):
            with m:
                enter("thread")
                time.sleep(0.0001)  # a critical section, not a synchronisation
                inside.remove("thread")

    async def coroutine(n: int) -> None:
        for _ in range(20):
            assert await _acquire_mutex(m)
            enter(f"coroutine {n}")
            order.append(n)
            await asyncio.sleep(0)  # let the others queue
            inside.remove(f"coroutine {n}")
            m.release()

    thread = threading.Thread(target=thread_body, daemon=True)
    thread.start()

    async def main() -> None:
        await asyncio.gather(*(coroutine(n) for n in range(3)))

    arun(main(), bound=STATE_TIMEOUT)
    thread.join(STATE_TIMEOUT)
    assert sorted(order) == sorted(list(range(3)) * 20)
    assert order[:6] == [0, 1, 2, 0, 1, 2]  # FIFO at the gate
    assert not m.locked()
