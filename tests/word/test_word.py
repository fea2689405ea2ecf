"""One test body, two kernels: the futex word protocol (:mod:`futex.word`) on the host
kernel (:class:`futex.native.Word`) and on the emulated Linux kernel
(:class:`futex.linux.word.EmulatedWord`).

Every test runs on both backends with real threads and real time (a waiting thread is
known parked when its kernel says so — /proc's syscall file on the host, ``task.blocked``
in the emulator — never by sleeping); the kernel behaviour each pins down is named.
"""

from __future__ import annotations

import mmap
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from futex.linux import LinuxKernel, Task
from futex.linux import word as emulated
from futex.linux.host import probe
from futex.linux.word import EmulatedWord
from futex.word import ALL, FutexWord

native: Any
try:
    import futex.native as native
except ImportError as exc:  # pragma: no cover - CI builds the extension
    native = None
    NATIVE_SKIP = str(exc)

OP_SET, OP_ADD = 0, 1
CMP_EQ, CMP_NE = 0, 1
FUTEX_WAITERS = 0x8000_0000
TID_MASK = 0x3FFF_FFFF
BOUND = 60.0  # generous bound on any wait for state


class Runner:
    """A thread running ``fn`` with the backend's view of the words for that thread."""

    def __init__(self, backend: Backend, fn: Callable[..., Any], words: tuple[Any, ...]) -> None:
        self.backend = backend
        self.result: Any = None
        self.error: BaseException | None = None
        self.tid = 0
        self.started = threading.Event()
        self.task = backend.new_task()
        bound = tuple(backend.bind(w, self.task) for w in words)

        def body() -> None:
            self.tid = backend.current_tid(self.task)
            self.started.set()
            try:
                self.result = fn(*bound)
            except BaseException as e:  # reported by join()
                self.error = e

        self.thread = threading.Thread(target=body, daemon=True)
        self.thread.start()
        assert self.started.wait(BOUND)

    def parked(self) -> bool:
        return self.backend.parked(self)

    def wait_parked(self) -> None:
        deadline = time.monotonic() + BOUND
        while not self.parked():
            assert self.thread.is_alive(), f"the thread ended: {self.error!r}"
            assert time.monotonic() < deadline, "the thread never parked in the kernel"
            time.sleep(0.0005)

    def join(self) -> Any:
        self.thread.join(BOUND)
        assert not self.thread.is_alive(), "the thread is still blocked"
        if self.error is not None:
            raise self.error
        return self.result

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()


class Backend:
    name = "abstract"

    def word(self, index: int) -> Any:
        raise NotImplementedError

    def new_task(self) -> Any:
        return None

    def bind(self, w: Any, task: Any) -> Any:
        return w

    def current_tid(self, task: Any) -> int:
        raise NotImplementedError

    def my_tid(self) -> int:
        raise NotImplementedError

    def parked(self, r: Runner) -> bool:
        raise NotImplementedError

    def waitv(self, pairs: list[tuple[Any, int]], timeout: float | None) -> int | None:
        raise NotImplementedError

    def run(self, fn: Callable[..., Any], *words: Any) -> Runner:
        return Runner(self, fn, words)


class NativeBackend(Backend):
    name = "native"

    def __init__(self) -> None:
        self.mem = mmap.mmap(-1, 4096)  # MAP_SHARED | MAP_ANONYMOUS
        self.words: list[Any] = []

    def word(self, index: int) -> Any:
        w = native.Word(self.mem, 4 * index)
        self.words.append(w)
        return w

    def current_tid(self, task: Any) -> int:
        return int(native.gettid())

    def my_tid(self) -> int:
        return int(native.gettid())

    def parked(self, r: Runner) -> bool:
        """Asleep in futex(2) (202) or futex_waitv (449), by /proc."""
        try:
            with open(f"/proc/self/task/{r.tid}/syscall") as f:
                nr = f.read().split()[0]
            with open(f"/proc/self/task/{r.tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError, ProcessLookupError):
            return False
        return nr in ("202", "449") and state == "S"

    def waitv(self, pairs: list[tuple[Any, int]], timeout: float | None) -> int | None:
        r: int | None = native.waitv(pairs, timeout)
        return r

    def close(self) -> None:
        for w in self.words:
            w.release()
        self.mem.close()


class EmulatedBackend(Backend):
    name = "emulated"

    def __init__(self) -> None:
        self.kernel = LinuxKernel()
        self.process = self.kernel.new_process()
        self.main = self.process.new_task()
        self.base = self.process.mmap(4096, shared=True)

    def word(self, index: int) -> EmulatedWord:
        return EmulatedWord(self.main, self.base + 4 * index)

    def new_task(self) -> Task:
        return self.process.new_task()

    def bind(self, w: Any, task: Any) -> Any:
        assert isinstance(w, EmulatedWord)
        return w.on(task)

    def current_tid(self, task: Any) -> int:
        return int(task.tid)

    def my_tid(self) -> int:
        return self.main.tid

    def parked(self, r: Runner) -> bool:
        return r.task.blocked is not None

    def waitv(self, pairs: list[tuple[Any, int]], timeout: float | None) -> int | None:
        return emulated.waitv(pairs, timeout)

    def close(self) -> None:
        self.process.futex.check_invariants()


@pytest.fixture(params=["native", "emulated"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "native":
        if native is None:
            pytest.skip(NATIVE_SKIP)
        b: Backend = NativeBackend()
    else:
        b = EmulatedBackend()
    yield b
    b.close()  # type: ignore[attr-defined]


def has(backend: Backend, feature: str) -> bool:
    """Whether ``backend``'s kernel has ``feature`` (a ``LinuxFacts`` field): the emulated
    one always (the newest release), the host's as probed."""
    return not isinstance(backend, NativeBackend) or bool(getattr(probe().facts, feature))


def needs(backend: Backend, feature: str) -> None:
    if not has(backend, feature):
        pytest.skip(f"the host kernel has no {feature}")


def test_both_backends_implement_the_protocol(backend: Backend) -> None:
    """futex.word.FutexWord: the same methods on both (mypy checks the signatures)."""
    w = backend.word(0)
    for name in FutexWord.__dict__:
        if not name.startswith("_"):
            assert hasattr(w, name), name


def test_atomics(backend: Backend) -> None:
    """Atomics on the word: old values returned, 32-bit wrap-around."""
    w = backend.word(0)
    w.store(5)
    assert w.load() == 5
    assert w.cas(5, 7) == 5 and w.load() == 7
    assert w.cas(5, 9) == 7 and w.load() == 7
    assert w.swap(1) == 7
    assert w.fetch_add(0xFFFF_FFFF) == 1 and w.load() == 0
    assert w.fetch_sub(1) == 0 and w.load() == 0xFFFF_FFFF
    assert w.fetch_and(0xF0) == 0xFFFF_FFFF and w.load() == 0xF0
    assert w.fetch_or(0x0F) == 0xF0 and w.fetch_xor(0xFF) == 0xFF and w.load() == 0
    w.store(-1)
    assert w.load() == 0xFFFF_FFFF
    with pytest.raises(OverflowError):
        w.store(1 << 32)


def test_wait_and_wake(backend: Backend) -> None:
    """futex(2) FUTEX_WAIT / FUTEX_WAKE: a waiter on the value sleeps until woken; the
    wake returns how many it woke; waking nobody returns 0 (LTP futex_wake01)."""
    w = backend.word(0)
    assert w.wake(1) == 0
    r = backend.run(lambda w: w.wait(0), w)
    r.wait_parked()
    assert w.wake(1) == 1
    assert r.join() is True
    assert w.wake(0) == 0


def test_value_mismatch_returns_at_once(backend: Backend) -> None:
    """FUTEX_WAIT on a word that does not hold the value: EAGAIN, nothing sleeps (LTP
    futex_wait02) — True, 're-check the word'."""
    w = backend.word(0)
    w.store(5)
    assert w.wait(4) is True
    assert w.wait(4, 10.0) is True
    assert w.load() == 5


def test_timeout(backend: Backend) -> None:
    """FUTEX_WAIT_BITSET with an absolute deadline: ETIMEDOUT, not before it (LTP
    futex_wait03) — False."""
    w = backend.word(0)
    t0 = time.monotonic()
    assert w.wait(0, 0.02) is False
    assert time.monotonic() - t0 >= 0.02
    assert w.wait(0, 0) is False
    assert w.wait(0, -1.0) is False  # already expired; the value is checked once
    assert w.wait(1, -1.0) is True
    with pytest.raises(ValueError):
        w.wait(0, float("nan"))


def test_bitsets(backend: Backend) -> None:
    """FUTEX_WAKE_BITSET wakes only waiters whose bitset meets its own (gVisor
    WaitBitsetWakeBitset; LTP futex_wait_bitset01)."""
    w = backend.word(0)
    one = backend.run(lambda w: w.wait(0, bitset=0b01), w)
    two = backend.run(lambda w: w.wait(0, bitset=0b10), w)
    one.wait_parked()
    two.wait_parked()
    assert w.wake(ALL, bitset=0b100) == 0
    assert w.wake(ALL, bitset=0b10) == 1
    assert two.join() is True
    assert not one.done
    assert w.wake(ALL, bitset=0b11) == 1
    assert one.join() is True


def test_requeue_and_cmp_requeue(backend: Backend) -> None:
    """FUTEX_REQUEUE / FUTEX_CMP_REQUEUE: wake some, move others to the second word; a
    changed word makes CMP_REQUEUE fail with EAGAIN (LTP futex_cmp_requeue01/02)."""
    a, b = backend.word(0), backend.word(1)
    runners = [backend.run(lambda a: a.wait(0), a) for _ in range(3)]
    for r in runners:
        r.wait_parked()
    with pytest.raises(BlockingIOError):
        a.cmp_requeue(b, 1, wake=1, requeue=1)
    assert a.cmp_requeue(b, 0, wake=1, requeue=1) == 2
    assert a.requeue(b, wake=0, requeue=ALL) == 1  # the last one moves too
    assert sum(r.done for r in _settle(runners, 1)) == 1
    assert a.wake(ALL) == 0
    assert b.wake(ALL) == 2
    assert [r.join() for r in runners] == [True, True, True]


def test_wake_op(backend: Backend) -> None:
    """FUTEX_WAKE_OP: set the second word, wake the first's waiter, and the second's when
    the old value compares (gVisor WakeOpCondSuccess / WakeOpCondFailure)."""
    a, b = backend.word(0), backend.word(1)
    ra = backend.run(lambda a: a.wait(0), a)
    rb = backend.run(lambda b: b.wait(0), b)
    ra.wait_parked()
    rb.wait_parked()
    assert a.wake_op(b, OP_SET, 7, CMP_NE, 0) == 1  # old 0 == 0: no wake on b
    assert b.load() == 7
    assert ra.join() is True and not rb.done
    b.store(0)
    assert a.wake_op(b, OP_ADD, 2, CMP_EQ, 0) == 1  # old 0: b's waiter woken
    assert rb.join() is True and b.load() == 2
    with pytest.raises(ValueError):
        a.wake_op(b, 5, 0, CMP_EQ, 0)


def test_pi_lock_hand_off(backend: Backend) -> None:
    """FUTEX_LOCK_PI / UNLOCK_PI: the word holds the owner's tid; a contender sets
    FUTEX_WAITERS and sleeps; unlock hands the lock to it (gVisor PIWaiters); TRYLOCK on
    a held lock fails; UNLOCK by a non-owner is EPERM (LTP futex_unlock_pi)."""
    w = backend.word(0)
    assert w.lock_pi() is True
    me = backend.my_tid()
    assert w.load() == me
    r = backend.run(
        lambda w: (w.trylock_pi(), w.lock_pi(), w.load() & TID_MASK, w.unlock_pi()), w
    )
    r.wait_parked()
    assert w.load() == me | FUTEX_WAITERS
    w.unlock_pi()
    tried, got, owner, _ = r.join()
    assert tried is False and got is True and owner == r.tid
    assert w.load() == 0
    with pytest.raises(PermissionError):
        w.store(r.tid)
        w.unlock_pi()
    w.store(0)
    assert w.trylock_pi() is True and w.load() == me
    w.unlock_pi()
    if has(backend, "lock_pi2"):
        assert w.lock_pi2(0.01) is True
        w.unlock_pi()


def test_pi_lock_timeout(backend: Backend) -> None:
    """FUTEX_LOCK_PI2 on a held lock with a deadline: ETIMEDOUT -> False."""
    needs(backend, "lock_pi2")
    w = backend.word(0)
    assert w.lock_pi() is True
    r = backend.run(lambda w: w.lock_pi2(0.02), w)
    assert r.join() is False
    w.unlock_pi()
    assert w.load() == 0


def test_waitv(backend: Backend) -> None:
    """futex_waitv(2): sleep on several words; returns the index of the one woken;
    EAGAIN when one does not hold its value; ETIMEDOUT (LTP futex_waitv01-03)."""
    needs(backend, "futex_waitv")
    a, b = backend.word(0), backend.word(1)
    r = backend.run(lambda a, b: backend.waitv([(a, 0), (b, 0)], None), a, b)
    r.wait_parked()
    assert b.wake(1) == 1
    assert r.join() == 1
    b.store(3)
    assert backend.waitv([(a, 0), (b, 0)], 1.0) == -1
    assert backend.waitv([(a, 0)], 0.01) is None


def _settle(runners: list[Runner], n: int) -> list[Runner]:
    """Wait until ``n`` of ``runners`` have finished (state, with a generous bound)."""
    deadline = time.monotonic() + BOUND
    while sum(r.done for r in runners) < n:
        assert time.monotonic() < deadline
        time.sleep(0.0005)
    return runners


def test_word_across_fork() -> None:
    """A shared word (MAP_SHARED memory) woken across a real fork, and the same with an
    emulated fork: the child's wait is ended by the parent's wake."""
    if native is None:
        pytest.skip(NATIVE_SKIP)
    mem = mmap.mmap(-1, 4096)
    w = native.Word(mem, 0)
    ready = native.Word(mem, 4)
    pid = os.fork()
    if pid == 0:  # child: announce, wait until woken with the value changed
        code = 1
        try:
            ready.store(1)
            ready.wake(1)
            while w.load() == 0:
                w.wait(0, 30.0)
            code = 0 if w.load() == 9 else 2
        finally:
            os._exit(code)
    while ready.load() == 0:
        ready.wait(0, 30.0)
    w.store(9)
    deadline = time.monotonic() + BOUND
    while True:  # wake until the child has left the word (it may not have slept yet)
        w.wake(ALL)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert os.waitstatus_to_exitcode(status) == 0
    w.release()
    ready.release()
    mem.close()

    k = LinuxKernel()
    parent = k.new_process()
    shared = parent.mmap(4096, shared=True)
    child = parent.fork()
    pw = EmulatedWord(parent.new_task(), shared)
    cw = EmulatedWord(child.new_task(), shared)
    out: list[bool] = []
    th = threading.Thread(target=lambda: out.append(cw.wait(0)))
    th.start()
    deadline = time.monotonic() + BOUND
    while cw.task.blocked is None:
        assert time.monotonic() < deadline
        time.sleep(0.0005)
    pw.store(9)
    assert pw.wake(ALL) == 1
    th.join(BOUND)
    assert out == [True] and cw.load() == 9
