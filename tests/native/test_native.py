"""futex.native: the host kernel's futex(2) and 32-bit atomics through the C extension.

Each test names the Linux behaviour it pins down.  Blocking is observed, never guessed:
a thread (or process) counts as asleep in a futex call once
``/proc/<pid>/task/<tid>/syscall`` shows it inside that syscall on that address — the
kernel only reports a syscall there while the task is off the CPU in it, so the waiter
is queued.  Word-level tests run for shared and private futexes alike.

The module skips when the extension is absent, except ``test_extension_is_built_on_linux``,
which fails on Linux: CI must build it.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import pickle
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing import shared_memory
from typing import Any

import pytest

from futex.linux.host import probe
from tests.support import host_has, in_syscall

try:
    import futex.native as native
    from futex.native import Word, abi, waitv

    IMPORT_ERROR: ImportError | None = None
except ImportError as exc:  # the skip below says why
    IMPORT_ERROR = exc

#: Generous bound on waiting for a state (a thread asleep, a process exited).
STATE_TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def _needs_extension(request: pytest.FixtureRequest) -> None:
    if IMPORT_ERROR is not None and request.node.name != "test_extension_is_built_on_linux":
        pytest.skip(f"futex.native unavailable: {IMPORT_ERROR}")


def test_extension_is_built_on_linux() -> None:
    if sys.platform != "linux":
        pytest.skip("futex.native is Linux-only")
    assert IMPORT_ERROR is None, f"the C extension must be built on Linux: {IMPORT_ERROR}"


# -- helpers -----------------------------------------------------------------------------




def wait_asleep(
    tid: int, addr: int | None, *, nr: int | None = None, pid: int | None = None
) -> list[int]:
    """Poll until the task sleeps in syscall ``nr`` (futex by default) on ``addr``."""
    want = native.SYS_futex if nr is None else nr
    end = time.monotonic() + STATE_TIMEOUT
    while time.monotonic() < end:
        s = in_syscall(tid, pid)
        if s is not None and s[0] == want and (addr is None or s[1] == addr):
            return s
        time.sleep(0.0005)
    pytest.fail(f"task {tid} never slept in syscall {want} on {addr}")


class Background:
    """A call on its own thread; ``result()`` joins it and returns or re-raises."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._out: list[Any] = []
        self._err: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(fn, args, kwargs), daemon=True)
        self.thread.start()
        assert self.thread.native_id is not None
        self.tid: int = self.thread.native_id

    def _run(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> None:
        try:
            self._out.append(fn(*args, **kwargs))
        except BaseException as exc:  # re-raised by result()
            self._err.append(exc)

    def asleep_on(self, word: Word, nr: int | None = None) -> list[int]:
        return wait_asleep(self.tid, word.address if nr is None else None, nr=nr)

    def result(self) -> Any:
        self.thread.join(STATE_TIMEOUT)
        assert not self.thread.is_alive(), "the call never returned"
        if self._err:
            raise self._err[0]
        return self._out[0]


def fork_child(body: Callable[[], int]) -> int:
    """Run ``body`` in a forked child; its return value is the exit status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 99
        try:
            code = body()
        finally:
            os._exit(code)
    return pid


def child_status(pid: int) -> int:
    end = time.monotonic() + STATE_TIMEOUT
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.001)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("child process never exited")


@pytest.fixture(params=[False, True], ids=["shared", "private"])
def private(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)



@pytest.fixture
def word(mem: mmap.mmap, private: bool) -> Word:
    return Word(mem, 0, private=private)


@pytest.fixture
def words(mem: mmap.mmap, private: bool) -> list[Word]:
    return [Word(mem, 4 * i, private=private) for i in range(4)]


# -- construction: which buffers, and precise refusals -----------------------------------


def _sources() -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("bytearray", lambda: bytearray(16)),
        ("mmap", lambda: mmap.mmap(-1, 16)),
        ("ctypes array", lambda: (ctypes.c_uint32 * 4)()),
        ("memoryview", lambda: memoryview(bytearray(16))),
    ]


@pytest.mark.parametrize("make", [m for _, m in _sources()], ids=[n for n, _ in _sources()])
def test_word_reads_and_writes_the_buffer_memory(make: Callable[[], Any]) -> None:
    buf = make()
    w = Word(buf, 8)
    w.store(0x01020304)
    assert struct.unpack_from("=I", memoryview(buf).cast("B"), 8)[0] == 0x01020304
    struct.pack_into("=I", memoryview(buf).cast("B"), 8, 77)
    assert w.load() == 77
    assert w.offset == 8 and w.obj is buf and not w.private
    w.release()


def test_word_on_shared_memory_object_and_its_buf() -> None:
    shm = shared_memory.SharedMemory(create=True, size=64)
    try:
        a, b = Word(shm, 4), Word(shm.buf, 4)
        a.store(9)
        assert b.load() == 9 and a.obj is shm
        with pytest.raises(BufferError):  # the export keeps the mapping open
            shm.close()
        a.release()
        b.release()
    finally:
        shm.close()
        shm.unlink()


def test_closed_shared_memory_refused() -> None:
    shm = shared_memory.SharedMemory(create=True, size=64)
    shm.close()
    shm.unlink()
    with pytest.raises(ValueError, match="closed"):
        Word(shm)


def test_word_on_numpy_array() -> None:
    np = pytest.importorskip("numpy")
    arr = np.zeros(8, dtype=np.uint32)
    w = Word(arr, 12)
    w.store(5)
    assert arr[3] == 5
    with pytest.raises(TypeError, match="read-only"):
        ro = np.zeros(4, dtype=np.uint32)
        ro.flags.writeable = False
        Word(ro)
    with pytest.raises(TypeError, match="contiguous"):
        Word(arr[::2])


@pytest.mark.parametrize(
    "make",
    [
        lambda: b"\0" * 8,
        lambda: memoryview(bytearray(8)).toreadonly(),
        lambda: mmap.mmap(-1, 8, access=mmap.ACCESS_READ),
    ],
    ids=["bytes", "readonly memoryview", "ACCESS_READ mmap"],
)
def test_read_only_buffer_refused(make: Callable[[], Any]) -> None:
    with pytest.raises(TypeError, match="read-only"):
        Word(make())


def test_non_contiguous_buffer_refused() -> None:
    with pytest.raises(TypeError, match="contiguous"):
        Word(memoryview(bytearray(32))[::2])


def test_not_a_buffer_refused() -> None:
    with pytest.raises(TypeError, match="writable buffer"):
        Word(42)  # type: ignore[arg-type]


def test_misaligned_offset_refused() -> None:
    with pytest.raises(ValueError, match="misaligned"):
        Word(bytearray(16), 2)
    base = memoryview(mmap.mmap(-1, 16))[1:]  # the buffer itself starts misaligned
    with pytest.raises(ValueError, match="buffer starts at"):
        Word(base, 0)
    assert Word(base, 3).offset == 3


@pytest.mark.parametrize("offset", [-4, 16, 13, 1 << 40])
def test_offset_out_of_range_refused(offset: int) -> None:
    with pytest.raises(ValueError, match=r"out of range.*offsets 0\.\.12"):
        Word(bytearray(16), offset)


def test_buffer_too_small_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        Word(bytearray(3))


def test_closing_an_mmap_under_a_live_word_raises_buffer_error() -> None:
    m = mmap.mmap(-1, 4096)
    w = Word(m, 0)
    with pytest.raises(BufferError):
        m.close()
    w.store(1)  # still mapped
    w.release()
    m.close()


def test_resizing_a_bytearray_under_a_live_word_raises_buffer_error() -> None:
    ba = bytearray(8)
    with Word(ba, 4) as w:
        with pytest.raises(BufferError):
            ba.extend(b"x" * 4096)
        w.store(3)
    ba.extend(b"ok")  # released at the end of the with block


def test_word_keeps_its_memory_alive() -> None:
    w = Word(mmap.mmap(-1, 4096), 64)  # the only reference to the mmap is the export
    w.store(123)
    assert w.load() == 123


def test_released_word_refuses_every_operation(word: Word) -> None:
    word.release()
    word.release()  # idempotent
    assert word.released and word.obj is None
    for call in (word.load, lambda: word.store(1), word.wake, lambda: word.wait(0)):
        with pytest.raises(ValueError, match="released"):
            call()
    assert "released" in repr(word)


def test_release_refused_while_a_thread_is_asleep_on_the_word(word: Word) -> None:
    waiter = Background(word.wait, 0)
    waiter.asleep_on(word)
    with pytest.raises(BufferError, match="blocking call"):
        word.release()
    assert word.wake() == 1
    assert waiter.result() is True
    word.release()


# -- atomics --------------------------------------------------------------------------------


def test_atomics_return_the_old_value_and_wrap_modulo_2_32(word: Word) -> None:
    assert word.load() == 0
    word.store(-1)  # negative values wrap
    assert word.load() == 0xFFFF_FFFF
    assert word.fetch_add(2) == 0xFFFF_FFFF and word.load() == 1
    assert word.fetch_sub(3) == 1 and word.load() == 0xFFFF_FFFE
    assert word.cas(0xFFFF_FFFE, 10) == 0xFFFF_FFFE and word.load() == 10  # swapped
    assert word.cas(11, 20) == 10 and word.load() == 10  # not swapped: old value back
    assert word.swap(0b1100) == 10
    assert word.fetch_or(0b0011) == 0b1100 and word.load() == 0b1111
    assert word.fetch_and(0b0110) == 0b1111 and word.load() == 0b0110
    assert word.fetch_xor(0b0101) == 0b0110 and word.load() == 0b0011


class _Int(int):
    pass


class _Index:
    def __init__(self, v: int) -> None:
        self.v = v

    def __index__(self) -> int:
        return self.v


@pytest.mark.parametrize(
    "value",
    [0, 1, (1 << 30) - 1, 1 << 30, (1 << 32) - 1, -1, -((1 << 30) - 1), -(1 << 30), -(1 << 31)],
)
def test_values_either_side_of_one_int_digit_convert_alike(word: Word, value: int) -> None:
    """Arguments of one CPython digit (|v| < 2**30) are read inline, wider ones through
    the general conversion; int subclasses, bools and __index__ objects take the general
    path too.  All must land as the same 32-bit word."""
    want = value & 0xFFFF_FFFF
    for arg in (value, _Int(value), _Index(value)):
        word.store(0)
        word.store(arg)  # type: ignore[arg-type]
        assert word.load() == want
        assert word.cas(arg, 5) == want and word.load() == 5  # type: ignore[arg-type]
        word.store(value)
        assert word.wait(arg, 0) is False  # type: ignore[arg-type]  # equal: sleeps, times out
        assert word.wait(arg ^ 1 if isinstance(arg, int) else value ^ 1) is True
    word.store(True)
    assert word.load() == 1


def test_atomics_refuse_values_outside_32_bits(word: Word) -> None:
    for bad in (1 << 32, -(1 << 31) - 1):
        with pytest.raises(OverflowError, match="32-bit"):
            word.store(bad)
    with pytest.raises(TypeError, match="int"):
        word.store(1.5)  # type: ignore[arg-type]


def test_fetch_add_is_atomic_across_processes() -> None:
    m = mmap.mmap(-1, 4096)
    w = Word(m, 0)
    n = 20_000

    def body() -> int:
        for _ in range(n):
            w.fetch_add(1)
        return 0

    pids = [fork_child(body) for _ in range(2)]
    body()
    assert [child_status(p) for p in pids] == [0, 0]
    assert w.load() == 3 * n


# -- FUTEX_WAIT / FUTEX_WAKE ---------------------------------------------------------------


def test_wait_on_a_changed_value_returns_at_once(word: Word) -> None:
    """FUTEX_WAIT: *uaddr != val -> EAGAIN without sleeping; Word.wait says True."""
    word.store(1)
    t0 = time.monotonic()
    assert word.wait(0) is True
    assert word.wait(0, timeout=5) is True
    assert time.monotonic() - t0 < 1
    op = abi.FUTEX_WAIT | (abi.FUTEX_PRIVATE_FLAG if word.private else 0)
    assert native.syscall_futex(word.address, op, 0, 0, 0, 0) == -errno.EAGAIN


def test_wait_times_out_not_before_its_deadline(word: Word) -> None:
    """FUTEX_WAIT_BITSET with an absolute CLOCK_MONOTONIC deadline: ETIMEDOUT -> False."""
    for timeout in (0.05, 0.2):
        t0 = time.monotonic()
        assert word.wait(0, timeout) is False
        assert time.monotonic() - t0 >= timeout


def test_expired_timeout_still_checks_the_value(word: Word) -> None:
    assert word.wait(0, 0) is False
    assert word.wait(0, -1) is False
    assert word.wait(1, 0) is True  # mismatch wins over the expired deadline
    with pytest.raises(ValueError, match="NaN"):
        word.wait(0, float("nan"))


def test_wake_wakes_a_sleeping_waiter(word: Word) -> None:
    waiter = Background(word.wait, 0)
    waiter.asleep_on(word)
    assert word.wake() == 1
    assert waiter.result() is True


def test_wake_with_no_waiters_returns_zero(word: Word) -> None:
    assert word.wake() == 0
    assert word.wake(abi.ALL) == 0


def test_wake_counts_and_wake_zero(word: Word) -> None:
    """FUTEX_WAKE returns how many it woke, at most n; wake(0) wakes nobody (the raw
    FUTEX_WAKE with val 0 would wake one)."""
    waiters = [Background(word.wait, 0) for _ in range(3)]
    for w in waiters:
        w.asleep_on(word)
    assert word.wake(0) == 0
    assert word.wake(2) == 2
    assert word.wake(1 << 40) == 1  # counts above INT_MAX mean all
    assert [w.result() for w in waiters] == [True] * 3
    with pytest.raises(ValueError, match=">= 0"):
        word.wake(-1)


def test_private_and_shared_futexes_never_match(word: Word) -> None:
    """A waiter's key is private (mm, address) or shared (page): a wake of the other
    kind does not find it."""
    waiter = Background(word.wait, 0)
    waiter.asleep_on(word)
    assert word.wake(private=not word.private) == 0
    assert word.wake() == 1
    waiter.result()


def test_wake_bitset_wakes_only_intersecting_waiters(word: Word) -> None:
    """FUTEX_WAKE_BITSET wakes waiters whose bitset intersects; plain WAKE matches any."""
    low = Background(word.wait, 0, bitset=0b01)
    high = Background(word.wait, 0, bitset=0b10)
    low.asleep_on(word)
    high.asleep_on(word)
    assert word.wake(abi.ALL, bitset=0b100) == 0
    assert word.wake(abi.ALL, bitset=0b110) == 1
    assert high.result() is True
    assert word.wake() == 1
    assert low.result() is True
    with pytest.raises(ValueError, match="bitset"):
        word.wait(0, bitset=0)
    with pytest.raises(ValueError, match="bitset"):
        word.wake(bitset=0)


# -- requeue, wake_op -----------------------------------------------------------------------


def test_requeue_wakes_some_and_moves_the_rest(words: list[Word]) -> None:
    """FUTEX_REQUEUE returns woken + requeued; the moved waiter sleeps on the target.
    (/proc still shows a requeued waiter's original uaddr, so only wakes tell.)"""
    a, b = words[0], words[1]
    waiters = [Background(a.wait, 0) for _ in range(2)]
    for w in waiters:
        w.asleep_on(a)
    assert a.requeue(b, 1, 1) == 2
    assert a.wake() == 0  # the requeue is done when the call returns: a's queue is empty
    assert b.wake() == 1
    assert [w.result() for w in waiters] == [True, True]


def test_cmp_requeue_on_a_changed_value_raises_eagain(words: list[Word]) -> None:
    """FUTEX_CMP_REQUEUE: *uaddr != val3 -> EAGAIN, nothing woken or moved."""
    a, b = words[0], words[1]
    a.store(5)
    with pytest.raises(BlockingIOError) as err:
        a.cmp_requeue(b, 4)
    assert err.value.errno == errno.EAGAIN
    assert "FUTEX_CMP_REQUEUE" in str(err.value)


def test_cmp_requeue_moves_all_but_the_woken(words: list[Word]) -> None:
    a, b = words[0], words[1]
    waiters = [Background(a.wait, 0) for _ in range(3)]
    for w in waiters:
        w.asleep_on(a)
    assert a.cmp_requeue(b, 0, wake=0) == 3  # wake none, move all
    assert a.wake(abi.ALL) == 0
    assert b.wake(abi.ALL) == 3
    for w in waiters:
        w.result()
    with pytest.raises(TypeError, match="Word"):
        a.requeue(object())  # type: ignore[arg-type]


def test_wake_op_applies_the_op_and_wakes_on_the_comparison(words: list[Word]) -> None:
    """FUTEX_WAKE_OP: wake on uaddr; atomically *uaddr2 op= oparg; wake on uaddr2 if
    old <cmp> cmparg.  Returns the total woken."""
    a, b = words[0], words[1]
    on_a, on_b = Background(a.wait, 0), Background(b.wait, 0)
    on_a.asleep_on(a)
    on_b.asleep_on(b)
    assert a.wake_op(b, abi.OP_ADD, 1, abi.CMP_EQ, 5) == 1  # old 0 != 5: b's waiter sleeps
    assert b.load() == 1
    on_a.result()
    assert a.wake_op(b, abi.OP_OR | abi.OP_OPARG_SHIFT, 4, abi.CMP_LT, 2) == 1  # old 1 < 2
    assert b.load() == 1 | 16
    on_b.result()
    with pytest.raises(ValueError, match="op must be"):
        a.wake_op(b, 7, 0, abi.CMP_EQ, 0)
    with pytest.raises(ValueError, match="oparg"):
        a.wake_op(b, abi.OP_SET, 4096, abi.CMP_EQ, 0)
    with pytest.raises(ValueError, match="shift"):
        a.wake_op(b, abi.OP_SET | abi.OP_OPARG_SHIFT, 32, abi.CMP_EQ, 0)


# -- PI futexes ---------------------------------------------------------------------------


def test_lock_pi_uncontended_stores_the_callers_tid(word: Word) -> None:
    """FUTEX_LOCK_PI on 0 makes the caller owner (word = its tid); relocking is EDEADLK;
    UNLOCK_PI with no waiters stores 0."""
    assert word.lock_pi() is True
    assert word.load() == native.gettid() == threading.get_native_id()
    with pytest.raises(OSError) as err:
        word.lock_pi()
    assert err.value.errno == errno.EDEADLK
    word.unlock_pi()
    assert word.load() == 0
    assert word.trylock_pi() is True and word.load() == native.gettid()
    word.unlock_pi()


LOCKS = ["lock_pi", pytest.param("lock_pi2", marks=host_has("lock_pi2"))]


@pytest.mark.parametrize("lock", LOCKS)
def test_unlock_pi_hands_the_lock_to_the_sleeping_waiter(word: Word, lock: str) -> None:
    """A contended LOCK_PI sets FUTEX_WAITERS and sleeps; UNLOCK_PI makes the top waiter
    the owner (its tid in the word) before it even runs."""

    def contend() -> tuple[bool, int]:
        got = getattr(word, lock)(10)
        seen = word.load()  # as the new owner found it
        word.unlock_pi()
        return got, seen

    assert getattr(word, lock)() is True
    contender = Background(contend)
    contender.asleep_on(word)
    assert word.load() == native.gettid() | abi.FUTEX_WAITERS
    word.unlock_pi()
    with pytest.raises(PermissionError):  # EPERM: no longer the owner
        word.unlock_pi()
    # wake_futex_pi stores FUTEX_WAITERS | new owner, waiters left or not, so that the
    # new owner's unlock also goes through the kernel
    assert contender.result() == (True, contender.tid | abi.FUTEX_WAITERS)
    assert word.load() == 0


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_pi_times_out_on_a_held_lock(word: Word, lock: str) -> None:
    """LOCK_PI's absolute deadline is on CLOCK_REALTIME, LOCK_PI2's on CLOCK_MONOTONIC;
    either way ETIMEDOUT -> False, and the word is left owned by the holder."""
    assert word.lock_pi() is True
    t0 = time.monotonic()
    assert Background(getattr(word, lock), 0.1).result() is False
    assert time.monotonic() - t0 >= 0.1
    assert word.load() & abi.FUTEX_TID_MASK == native.gettid()
    word.unlock_pi()


def test_trylock_pi_on_a_held_lock_returns_false(word: Word) -> None:
    """FUTEX_TRYLOCK_PI on a word another thread owns: EWOULDBLOCK -> False."""
    assert word.lock_pi() is True
    assert Background(word.trylock_pi).result() is False
    word.unlock_pi()
    assert Background(word.trylock_pi).result() is True  # that thread now owns it


def test_unlock_pi_by_a_non_owner_is_eperm(word: Word) -> None:
    with pytest.raises(PermissionError) as err:
        word.unlock_pi()
    assert err.value.errno == errno.EPERM


# -- futex_waitv --------------------------------------------------------------------------


@host_has("futex_waitv")
def test_waitv_returns_the_index_of_the_woken_word(words: list[Word]) -> None:
    """futex_waitv sleeps on every word and returns the index of the one woken."""
    waiter = Background(waitv, [(w, 0) for w in words])
    waiter.asleep_on(words[0], nr=abi.SYS_futex_waitv)
    assert words[2].wake() == 1
    assert waiter.result() == 2


@host_has("futex_waitv")
def test_waitv_mixes_private_and_shared_words(mem: mmap.mmap) -> None:
    shared, priv = Word(mem, 0), Word(mem, 4, private=True)
    waiter = Background(waitv, [(shared, 0), (priv, 0)])
    waiter.asleep_on(shared, nr=abi.SYS_futex_waitv)
    assert priv.wake(private=False) == 0  # the waiter's key for it is private
    assert priv.wake() == 1
    assert waiter.result() == 1


@host_has("futex_waitv")
def test_waitv_value_mismatch_and_timeout(words: list[Word]) -> None:
    """EAGAIN (some word changed) -> -1; ETIMEDOUT -> None."""
    words[3].store(1)
    assert waitv([(w, 0) for w in words]) == -1
    t0 = time.monotonic()
    assert waitv([(w, 0) for w in words[:3]], 0.05) is None
    assert time.monotonic() - t0 >= 0.05


@host_has("futex_waitv")
def test_waitv_takes_any_iterable_of_pairs(words: list[Word]) -> None:
    words[0].store(1)
    assert waitv((w, 0) for w in words) == -1


def test_waitv_refuses_bad_input(words: list[Word]) -> None:
    with pytest.raises(ValueError, match="1 to 128"):
        waitv([])
    with pytest.raises(ValueError, match="1 to 128"):
        waitv([(words[0], 0)] * 129)
    with pytest.raises(TypeError, match="Word, expected"):
        waitv([(1, 0)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="iterable"):
        waitv(5)  # type: ignore[arg-type]


# -- across processes -------------------------------------------------------------------


def test_shared_futex_wakes_a_waiter_in_a_forked_child(mem: mmap.mmap) -> None:
    """A shared futex on MAP_SHARED memory is keyed by the page: parent and child meet."""
    w = Word(mem, 8)

    def child() -> int:
        return 0 if w.wait(0, 20) is True and w.load() == 1 else 1

    pid = fork_child(child)
    wait_asleep(pid, w.address, pid=pid)
    w.store(1)
    assert w.wake() == 1
    assert child_status(pid) == 0


def test_private_futex_does_not_cross_processes(mem: mmap.mmap) -> None:
    """A private key is (mm, address): the parent's private wake misses the child."""
    w = Word(mem, 8, private=True)

    def child() -> int:
        return 0 if w.wait(0, 1.0) is False else 1  # times out: never woken

    pid = fork_child(child)
    wait_asleep(pid, w.address, pid=pid)
    assert w.wake() == 0
    assert child_status(pid) == 0


def test_pickled_word_is_the_same_word_in_a_second_mapping() -> None:
    """Unpickling attaches the shared memory afresh (another address); a shared futex
    key names the page, so a wake through one mapping wakes a waiter on the other."""
    shm = shared_memory.SharedMemory(create=True, size=4096)
    try:
        w = Word(shm, 16)
        w2 = pickle.loads(pickle.dumps(w))
        assert w2.address != w.address and w2.offset == 16 and not w2.private
        w.store(7)
        assert w2.load() == 7
        waiter = Background(w2.wait, 7)
        waiter.asleep_on(w2)
        assert w.wake() == 1
        assert waiter.result() is True
        w3 = Word.attach(shm.name, 16, private=True)
        assert w3.load() == 7 and w3.private
        assert pickle.loads(pickle.dumps(w3)).private
        for x in (w, w2, w3):
            x.release()
    finally:
        shm.close()
        shm.unlink()


def test_attach_leaves_the_resource_tracker_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from multiprocessing import resource_tracker

    shm = shared_memory.SharedMemory(create=True, size=64)
    try:
        calls: list[Any] = []
        monkeypatch.setattr(resource_tracker, "register", lambda *a: calls.append(a))
        Word.attach(shm.name).release()
        assert calls == []
        with pytest.raises(FileNotFoundError):
            Word.attach(shm.name + "-missing")
        with pytest.raises(ValueError, match="not a shared memory name"):
            Word.attach("a/b")
    finally:
        shm.close()
        shm.unlink()


def test_word_on_plain_memory_does_not_pickle() -> None:
    with pytest.raises(TypeError, match="bytearray"):
        pickle.dumps(Word(bytearray(8)))


def _spawned_child(w: Word) -> None:
    w.fetch_add(1)  # 0 -> 1, then wake: the parent is asleep on 0, or will see 1
    w.wake()
    while w.load() != 2:
        w.wait(1, STATE_TIMEOUT)


def test_word_passed_to_a_spawned_process_by_pickle() -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    shm = shared_memory.SharedMemory(create=True, size=64)
    try:
        w = Word(shm, 4)
        proc = ctx.Process(target=_spawned_child, args=(w,))
        proc.start()
        end = time.monotonic() + STATE_TIMEOUT
        while w.load() == 0 and time.monotonic() < end:
            w.wait(0, 1.0)
        assert w.load() == 1
        w.store(2)
        w.wake()
        proc.join(STATE_TIMEOUT)
        assert proc.exitcode == 0
        w.release()
    finally:
        shm.close()
        shm.unlink()


# -- raw entries ----------------------------------------------------------------------------


def test_syscall_futex_returns_raw_results(word: Word) -> None:
    """Raw futex(2): >= 0 or -errno, registers wrapped modulo 2**64."""
    sf, a = native.syscall_futex, word.address
    assert sf(a, abi.FUTEX_WAKE, 1, 0, 0, 0) == 0
    assert sf(a, abi.FUTEX_WAIT, 1, 0, 0, 0) == -errno.EAGAIN
    assert sf(a, 2, 0, 0, 0, 0) == -errno.ENOSYS  # FUTEX_FD: gone since 2.6.26
    assert sf(a + 1, abi.FUTEX_WAKE, 1, 0, 0, 0) == -errno.EINVAL  # misaligned
    assert sf(a, abi.FUTEX_WAKE_BITSET, 1, 0, 0, -1) == 0  # -1 is MATCH_ANY
    assert sf(a, abi.FUTEX_WAKE_BITSET, 1, 0, 0, 0) == -errno.EINVAL
    with pytest.raises(TypeError):
        sf(a, 1, 1, 0, 0)  # type: ignore[call-arg]


def test_syscall_futex_blocking_wait_drops_the_gil(word: Word) -> None:
    sf, a = native.syscall_futex, word.address
    waiter = Background(sf, a, abi.FUTEX_WAIT, 0, 0, 0, 0)
    waiter.asleep_on(word)
    assert sf(a, abi.FUTEX_WAKE, 1, 0, 0, 0) == 1
    assert waiter.result() == 0


def test_syscall6_reaches_gettid_and_futex_waitv(word: Word) -> None:
    assert native.syscall6(native.SYS_gettid) == native.gettid() == threading.get_native_id()

    class WaitV(ctypes.Structure):
        _fields_ = [
            ("val", ctypes.c_uint64),
            ("uaddr", ctypes.c_uint64),
            ("flags", ctypes.c_uint32),
            ("reserved", ctypes.c_uint32),
        ]

    v = WaitV(1, word.address, abi.FUTEX2_SIZE_U32, 0)
    r = native.syscall6(abi.SYS_futex_waitv, ctypes.addressof(v), 1, 0, 0, 1)
    bad = native.syscall6(abi.SYS_futex_waitv, 0, 0, 0, 0, 1)
    if probe().facts.futex_waitv:  # the word holds 0, not 1; then no entries at all
        assert (r, bad) == (-errno.EAGAIN, -errno.EINVAL)
    else:  # a kernel before 5.16
        assert (r, bad) == (-errno.ENOSYS, -errno.ENOSYS)
