"""futex.native's SemCore and EventCore (src/futex/native/_syncsem.c) on native Words.

SemCore is glibc's 32-bit sem_t (nptl/sem_post.c, nptl/sem_waitcommon.c: value =
count << 1 | waiters bit, nwaiters beside it, __sem_wait_32_finish clearing the bit when
the last waiter leaves) with threading.Semaphore's Python semantics (Lib/threading.py:
argument errors, "Semaphore released too many times").  EventCore is a generation word
with threading.Event's semantics (wait after set is True, timeout False).  The cases
pin peer defects measured in the project's research notes on Python peers
(``python_peers.md``): fastipc's
lost wakeup (two waiters blocked on count 0, two posts back to back: one stayed asleep)
and fastipc's NamedEvent returning False for an event already set.  Waits are detected
through the words' state (nwaiters, the waiters bits) or, for Event waiters, the futex
syscall they sleep in; nothing sleeps and hopes.
"""

from __future__ import annotations

import mmap
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import STATE_TIMEOUT, asleep_in_futex, wait_until

try:
    from futex.native import Word
    from futex.native._native import SEM_VALUE_MAX, EventCore, SemCore
except ImportError as exc:  # no extension: every test skips
    pytestmark = pytest.mark.skip(reason=f"futex.native unavailable: {exc}")

WAITERS = 1  # SemCore value bit 0
EV_SET, EV_WAITERS, EV_GEN = 1, 2, 4



def make_sem(
    mem: mmap.mmap, count: int, *, bound: int = 0x7FFFFFFF, private: bool = False, off: int = 0
) -> SemCore:
    struct.pack_into("<III", mem, off, count << 1, 0, bound)
    return SemCore(Word(mem, off, private=private), bound != 0x7FFFFFFF)


def words(mem: mmap.mmap, off: int = 0) -> tuple[int, int]:
    """(value, nwaiters) of the semaphore at ``off``."""
    value, nwaiters = struct.unpack_from("<II", mem, off)
    return value, nwaiters


def ev_word(mem: mmap.mmap, off: int = 64) -> int:
    value: int = struct.unpack_from("<I", mem, off)[0]
    return value


class Waiter:
    """A blocking call on a daemon thread; ``result()`` joins it."""

    def __init__(self, fn: Callable[[], bool]) -> None:
        self.out: list[bool | BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], bool]) -> None:
        try:
            self.out.append(fn())
        except BaseException as exc:  # reported by result()
            self.out.append(exc)

    @property
    def done(self) -> bool:
        return bool(self.out)

    def result(self) -> bool | BaseException:
        self.thread.join(STATE_TIMEOUT)
        assert not self.thread.is_alive(), "the call never returned"
        return self.out[0]


def fork_child(body: Callable[[], bool]) -> int:
    """Run ``body`` in a fork child: exit status 0 when it returns True, else 1."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            code = 0 if body() else 1
        finally:
            os._exit(code)
    return pid


def join_child(pid: int) -> int:
    status: list[int] = []

    def reaped() -> bool:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status.append(os.waitstatus_to_exitcode(st))
        return done != 0

    wait_until(reaped, f"child {pid} exits")
    return status[0]




# -- SemCore: counts and words ---------------------------------------------------------------


def test_counts_and_words_after_each_operation(mem: mmap.mmap) -> None:
    """glibc's 32-bit sem_t: value = count << 1, the waiters bit only while someone is
    in the slow path; release(n) adds 2n (sem_post.c); no waiter -> nwaiters 0."""
    s = make_sem(mem, 2)
    assert words(mem) == (4, 0) and s._value() == 2
    assert s.acquire() is True and words(mem) == (2, 0)
    assert s.acquire(timeout=1) is True and words(mem) == (0, 0)
    assert s.acquire(blocking=False) is False and words(mem) == (0, 0)
    s.release()
    assert words(mem) == (2, 0)
    s.release(3)
    assert words(mem) == (8, 0) and s._value() == 4
    with s as entered:
        assert entered is True and s._value() == 3  # __enter__ returns True like threading
    assert s._value() == 4


@pytest.mark.parametrize("timeout", [0, -1, 0.05])
def test_timeout_returns_false_and_leaves_the_words_clean(mem: mmap.mmap, timeout: float) -> None:
    """threading.Semaphore: an expired (<= 0) or elapsed timeout returns False; the
    leaving waiter clears the waiters bit it set (__sem_wait_32_finish)."""
    s = make_sem(mem, 0)
    t0 = time.monotonic()
    assert s.acquire(timeout=timeout) is False
    assert time.monotonic() - t0 >= max(timeout, 0)
    assert words(mem) == (0, 0)


def test_argument_errors_are_precise(mem: mmap.mmap) -> None:
    """threading.Semaphore's errors: n < 1 and a timeout with blocking=False are
    ValueError; a core needs a native Word with 12 bytes from its offset."""
    s = make_sem(mem, 1)
    with pytest.raises(ValueError, match="n must be one or more"):
        s.release(0)
    with pytest.raises(ValueError, match="n must be one or more"):
        s.release(-(2**70))
    with pytest.raises(TypeError):
        s.release(1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="can't specify timeout for non-blocking acquire"):
        s.acquire(blocking=False, timeout=1)
    with pytest.raises(ValueError, match="NaN"):
        s.acquire(timeout=float("nan"))
    with pytest.raises(TypeError, match=r"needs a futex\.native\.Word"):
        SemCore(mem, False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs 12 bytes"):
        SemCore(Word(mem, mmap.PAGESIZE - 8), False)
    with pytest.raises(RuntimeError, match="__init__"):
        SemCore.__new__(SemCore).acquire()
    assert words(mem) == (2, 0)
    word = Word(mem, 128)
    core = SemCore(word, False)
    word.release()
    with pytest.raises(ValueError, match="released"):
        core.release()


def test_bounded_over_release_raises_and_changes_nothing(mem: mmap.mmap) -> None:
    """threading.BoundedSemaphore: "Semaphore released too many times", and the count
    stays; an unbounded SemCore stops at SEM_VALUE_MAX (the value word stays < 2**31)."""
    s = make_sem(mem, 1, bound=2)
    with pytest.raises(ValueError, match="released too many times"):
        s.release(2)
    assert words(mem) == (2, 0)
    s.release()
    assert words(mem) == (4, 0)
    with pytest.raises(ValueError, match="released too many times"):
        s.release()
    assert words(mem) == (4, 0)
    u = make_sem(mem, SEM_VALUE_MAX - 1, off=256)
    u.release()
    assert words(mem, 256) == (SEM_VALUE_MAX << 1, 0)
    for n in (1, 2**70):
        with pytest.raises(ValueError, match="released too many times"):
            u.release(n)
    assert u._value() == SEM_VALUE_MAX


def test_subclass_with_python_state_and_weakref(mem: mmap.mmap) -> None:
    """The core is a base class (futex.sync's Semaphore mixes it in) and weakly
    referenceable."""
    import weakref

    class Sem(SemCore):
        def __init__(self, word: Word) -> None:
            super().__init__(word, bounded=False)
            self.name = "s"

    struct.pack_into("<III", mem, 0, 2, 0, 0x7FFFFFFF)
    s = Sem(Word(mem, 0))
    assert s.name == "s" and s.acquire(blocking=False) and s.bounded is False
    ref = weakref.ref(s)
    del s
    assert ref() is None


# -- SemCore: waking -------------------------------------------------------------------------


@pytest.mark.parametrize("private", [False, True], ids=["shared", "private"])
def test_release_n_wakes_n_waiters(mem: mmap.mmap, private: bool) -> None:
    """sem_post.c: a release of n with the waiters bit set wakes n; exactly n acquires
    return, the rest sleep on (value == waiters bit, nwaiters counts them)."""
    s = make_sem(mem, 0, private=private)
    waiters = [Waiter(lambda: s.acquire(timeout=STATE_TIMEOUT)) for _ in range(3)]
    wait_until(lambda: words(mem) == (WAITERS, 3), "three waiters in the slow path")
    s.release(2)
    wait_until(lambda: sum(w.done for w in waiters) == 2, "two acquires return")
    wait_until(lambda: words(mem) == (WAITERS, 1), "the third sleeps on")
    s.release()
    assert [w.result() for w in waiters] == [True, True, True]
    assert words(mem) == (0, 0)  # the last waiter leaving cleared the bit


def test_two_posts_wake_two_processes_fastipc_lost_wakeup(mem: mmap.mmap) -> None:
    """fastipc 0.1.5 woke only on a 0 -> n transition: with two processes blocked on
    count 0, two back-to-back posts left one asleep (python_peers.md, 20/20 trials).
    Every release with the waiters bit set wakes."""
    s = make_sem(mem, 0)
    pids = [fork_child(lambda: s.acquire(timeout=STATE_TIMEOUT)) for _ in range(2)]
    wait_until(lambda: words(mem) == (WAITERS, 2), "both children wait")
    s.release()
    s.release()
    assert [join_child(p) for p in pids] == [0, 0]
    assert words(mem) == (0, 0)


@pytest.mark.parametrize("kind", ["SemCore", "EventCore"])
def test_cross_process_ping_pong(mem: mmap.mmap, kind: str) -> None:
    """Two processes hand a turn back and forth through shared memory, 500 rounds; a
    counter each side bumps on its turn proves strict alternation."""
    rounds = 500
    if kind == "SemCore":
        a, b = make_sem(mem, 0, off=0), make_sem(mem, 0, off=16)

        def ping() -> bool:
            a.release()
            return b.acquire(timeout=STATE_TIMEOUT)

        def pong() -> bool:
            ok = a.acquire(timeout=STATE_TIMEOUT)
            return ok

        def pong_done() -> None:
            b.release()

    else:
        ea, eb = EventCore(Word(mem, 0)), EventCore(Word(mem, 16))

        def ping() -> bool:
            ea.set()
            ok = eb.wait(STATE_TIMEOUT)
            eb.clear()
            return ok

        def pong() -> bool:
            ok = ea.wait(STATE_TIMEOUT)
            ea.clear()
            return ok

        def pong_done() -> None:
            eb.set()

    counter = Word(mem, 32)

    def child() -> bool:
        for i in range(rounds):
            if not pong() or counter.load() != 2 * i + 1:
                return False
            counter.fetch_add(1)
            pong_done()
        return True

    pid = fork_child(child)
    for i in range(rounds):
        counter.fetch_add(1)
        assert ping() is True
        assert counter.load() == 2 * i + 2
    assert join_child(pid) == 0


# -- SemCore: signals ------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["main", "other"], ids=["to-main", "to-other-thread"])
def test_sigint_ends_a_wait_in_the_main_thread_and_leaves_the_words_consistent(
    mem: mmap.mmap, target: str
) -> None:
    """Ctrl-C: KeyboardInterrupt within 100 ms, whether the kernel gives SIGINT to the
    waiting main thread (EINTR) or to another thread (whose C handler only records it:
    the main thread sleeps in <= 50 ms slices, _native.h's blocking rule); the leaving
    waiter drops out of nwaiters and clears the waiters bit (__sem_wait_32_finish)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread")
    s = make_sem(mem, 0)
    main = threading.main_thread().ident
    assert main is not None
    sent: list[float] = []

    def interrupt() -> None:
        wait_until(lambda: words(mem) == (WAITERS, 1), "the main thread waits")
        sent.append(time.monotonic())
        signal.pthread_kill(main if target == "main" else threading.get_ident(), signal.SIGINT)

    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        helper = threading.Thread(target=interrupt, daemon=True)
        helper.start()
        with pytest.raises(KeyboardInterrupt):
            s.acquire(timeout=STATE_TIMEOUT)
        ended = time.monotonic()
        helper.join(STATE_TIMEOUT)
    finally:
        signal.signal(signal.SIGINT, old)
    assert ended - sent[0] < 0.1
    assert words(mem) == (0, 0)
    assert s.word is not None
    s.word.release()  # no blocking call is left marked busy


_ALONE_CHILD = """
import mmap, signal, struct, sys, time
from futex.native import Word, sleeps_release_gil
from futex.native._native import SemCore
with open(sys.argv[1], "r+b") as fh:
    mem = mmap.mmap(fh.fileno(), 4096)
s = SemCore(Word(mem, 0), False)
assert not sleeps_release_gil(), "this process has had a second thread"
t0 = time.monotonic()
assert s.acquire(timeout=0.05) is False and time.monotonic() - t0 >= 0.05
assert struct.unpack_from("<II", mem, 0) == (0, 0)
signal.signal(signal.SIGINT, signal.default_int_handler)
mem[64] = 1  # the untimed wait begins
try:
    s.acquire()
except KeyboardInterrupt:
    assert struct.unpack_from("<II", mem, 0) == (0, 0)
    sys.exit(7)
"""


def test_a_process_that_never_had_a_thread_times_out_and_takes_sigint(tmp_path: Path) -> None:
    """The single-threaded case of the blocking rule (_native.h): the sleep keeps the GIL
    (nobody could take it); a timed wait still returns False at its deadline, and SIGINT
    still raises KeyboardInterrupt (EINTR, or the next 50 ms slice if it landed just
    before the sleep), leaving the words clean."""
    path = tmp_path / "sem"
    path.write_bytes(bytes(4096))
    with open(path, "r+b") as fh:
        mem = mmap.mmap(fh.fileno(), 4096)
    try:
        child = subprocess.Popen([sys.executable, "-c", _ALONE_CHILD, str(path)])
        try:
            wait_until(
                lambda: child.poll() is not None or (mem[64] == 1 and words(mem) == (WAITERS, 1)),
                "the child sleeps without a timeout",
            )
            child.send_signal(signal.SIGINT)
            assert child.wait(STATE_TIMEOUT) == 7
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    finally:
        mem.close()


def test_a_waiting_core_keeps_its_word_busy(mem: mmap.mmap) -> None:
    """The extension's lifetime rule: Word.release() refuses while a blocking call
    sleeps on it, so the memory stays mapped under the kernel."""
    s = make_sem(mem, 0)
    w = Waiter(lambda: s.acquire(timeout=STATE_TIMEOUT))
    wait_until(lambda: words(mem) == (WAITERS, 1), "the waiter is in the slow path")
    assert s.word is not None
    with pytest.raises(BufferError, match="blocking call"):
        s.word.release()
    s.release()
    assert w.result() is True


# -- EventCore -------------------------------------------------------------------------------


def test_event_set_clear_and_the_generation_word(mem: mmap.mmap) -> None:
    """threading.Event: wait after set() is True (fastipc's NamedEvent said False), is_set
    follows set/clear; each set() of a clear event starts a generation (+4)."""
    e = EventCore(Word(mem, 64))
    assert e.is_set() is False and ev_word(mem) == 0
    e.set()
    assert e.is_set() is True and ev_word(mem) == EV_GEN | EV_SET
    assert e.wait() is True and e.wait(0) is True
    e.set()  # already set: nothing changes
    assert ev_word(mem) == EV_GEN | EV_SET
    e.clear()
    assert e.is_set() is False and ev_word(mem) == EV_GEN
    e.clear()
    assert ev_word(mem) == EV_GEN


@pytest.mark.parametrize("timeout", [0, -1, 0.05])
def test_event_wait_times_out_with_false(mem: mmap.mmap, timeout: float) -> None:
    """threading.Event.wait(timeout) on a clear event: False once the timeout passed."""
    e = EventCore(Word(mem, 64))
    t0 = time.monotonic()
    assert e.wait(timeout) is False
    assert time.monotonic() - t0 >= max(timeout, 0)
    assert ev_word(mem) & EV_SET == 0


def test_event_pulse_wakes_every_waiter_with_true(mem: mmap.mmap) -> None:
    """set() immediately followed by clear(): every waiter asleep before returns True
    (the generation moved), as a waiter of threading.Event would have seen the flag."""
    word = Word(mem, 64)
    e = EventCore(word)
    waiters = [Waiter(lambda: e.wait(STATE_TIMEOUT)) for _ in range(3)]
    tids = [w.thread.native_id for w in waiters]
    wait_until(
        lambda: all(t is not None and asleep_in_futex(t, word.address) for t in tids),
        "every waiter sleeps in futex(2) on the word",
    )
    assert ev_word(mem) == EV_WAITERS
    e.set()
    e.clear()
    assert [w.result() for w in waiters] == [True, True, True]
    assert ev_word(mem) == EV_GEN  # set() cleared WAITERS


def test_event_wait_in_another_process(mem: mmap.mmap) -> None:
    """A shared (not private) futex key: a child waits, the parent's set() wakes it."""
    e = EventCore(Word(mem, 64))
    pid = fork_child(lambda: e.wait(STATE_TIMEOUT))
    wait_until(lambda: ev_word(mem) == EV_WAITERS, "the child waits")
    e.set()
    assert join_child(pid) == 0
