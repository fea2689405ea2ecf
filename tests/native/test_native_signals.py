"""futex.native and signals: Ctrl-C (SIGINT -> KeyboardInterrupt) ends a wait, a wait in
futex_waitv and a contended lock_pi / lock_pi2 within 100 ms; a handler that returns keeps
the call's deadline; a SIGINT racing a lock's grant never leaves the lock held (the
extension's blocking rule, ``src/futex/native/_native.h``).  The fixtures and helpers are
tests/native/test_native.py's.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.native.test_native import (  # fixtures are parameters by name
    LOCKS,
    STATE_TIMEOUT,
    Background,
    _needs_extension,  # noqa: F401
    private,  # noqa: F401
    wait_asleep,
    word,  # noqa: F401
)
from tests.support import host_has

try:
    import futex.native as native
    from futex.native import Word, abi, waitv
except ImportError:  # _needs_extension skips every test
    pass


# -- signals -------------------------------------------------------------------------------


def _interrupt_main_when_asleep(addr: int | None, nr: int | None, sig: int, delay: float) -> Any:
    main = threading.main_thread()
    assert main.native_id is not None and main.ident is not None
    tid, ident = main.native_id, main.ident
    sent: list[float] = []

    def run() -> None:
        wait_asleep(tid, addr, nr=nr)
        time.sleep(delay)
        sent.append(time.monotonic())
        signal.pthread_kill(ident, sig)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, sent


@pytest.mark.parametrize("call", ["wait", pytest.param("waitv", marks=host_has("futex_waitv"))])
def test_sigint_ends_a_wait_with_keyboard_interrupt_within_100ms(word: Word, call: str) -> None:
    """EINTR: the Python handlers run; a raising one (SIGINT -> KeyboardInterrupt) ends
    the wait."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread")
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        nr = abi.SYS_futex_waitv if call == "waitv" else None
        thread, sent = _interrupt_main_when_asleep(
            word.address if nr is None else None, nr, signal.SIGINT, 0.0
        )
        with pytest.raises(KeyboardInterrupt):
            if call == "wait":
                word.wait(0, 20)
            else:
                waitv([(word, 0)], 20)
        ended = time.monotonic()
        thread.join()
    finally:
        signal.signal(signal.SIGINT, old)
    assert ended - sent[0] < 0.1
    word.release()  # no blocking call is left marked on the word


def test_signal_whose_handler_returns_keeps_the_original_deadline(word: Word) -> None:
    """EINTR with a handler that returns: the wait sleeps again until the same absolute
    deadline (not restarted with the full timeout)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread")
    hits: list[float] = []
    old = signal.signal(signal.SIGUSR1, lambda *_: hits.append(time.monotonic()))
    timeout, at = 1.0, 0.5
    try:
        t0 = time.monotonic()
        thread, _ = _interrupt_main_when_asleep(word.address, None, signal.SIGUSR1, at)
        assert word.wait(0, timeout) is False
        elapsed = time.monotonic() - t0
        thread.join()
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert len(hits) == 1 and hits[0] - t0 >= at
    assert timeout <= elapsed < timeout + at - 0.1  # a restart would end at >= 1.5 s


# FUTEX_LOCK_PI(2) never fails with EINTR: the kernel restarts it after the C-level
# signal handler (-ERESTARTNOINTR), so the Python handler would only run once the lock
# was taken.  In the main thread Word.lock_pi sleeps in slices (20 ms) and runs the
# handlers between them.


@contextlib.contextmanager
def _held_by_another_thread(word: Word) -> Iterator[Background]:
    """The PI lock on ``word``, held by a live thread until the block ends."""
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        assert word.lock_pi() is True
        held.set()
        done.wait(STATE_TIMEOUT)
        word.unlock_pi()

    holder = Background(hold)
    assert held.wait(STATE_TIMEOUT)
    try:
        yield holder
    finally:
        done.set()
        holder.result()


def _main_thread_only() -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread")


def _interrupt_other_thread_when_main_asleep(addr: int) -> Any:
    """SIGINT to a helper thread (its C handler only records it) once the main thread
    sleeps in a futex call on addr."""
    main_tid = threading.main_thread().native_id
    assert main_tid is not None
    sent: list[float] = []

    def run() -> None:
        wait_asleep(main_tid, addr)
        sent.append(time.monotonic())
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # to this thread

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, sent


@pytest.mark.parametrize("lock", LOCKS)
@pytest.mark.parametrize("target", ["main", "other thread"])
def test_sigint_ends_a_contended_lock_pi_with_keyboard_interrupt_within_100ms(
    word: Word, lock: str, target: str
) -> None:
    """Ctrl-C used to leave lock_pi / lock_pi2 asleep until the lock came (the kernel
    restarts the call); now KeyboardInterrupt ends it within a slice, and the lock stays
    with its holder.  Also when the signal lands on another thread (a process-directed
    Ctrl-C may): that thread's C handler only records it, and the main thread's next
    slice runs the Python handler."""
    _main_thread_only()
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with _held_by_another_thread(word) as holder:
            if target == "main":
                thread, sent = _interrupt_main_when_asleep(word.address, None, signal.SIGINT, 0.0)
            else:
                thread, sent = _interrupt_other_thread_when_main_asleep(word.address)
            with pytest.raises(KeyboardInterrupt):
                getattr(word, lock)(20)
            ended = time.monotonic()
            thread.join()
            assert word.load() & abi.FUTEX_TID_MASK == holder.tid  # not taken by the loser
    finally:
        signal.signal(signal.SIGINT, old)
    assert ended - sent[0] < 0.1
    word.release()  # no blocking call is left marked on the word


@pytest.mark.parametrize("lock", LOCKS)
def test_signal_whose_handler_returns_keeps_the_lock_pi_deadline(word: Word, lock: str) -> None:
    """A handler that returns: lock_pi goes on sleeping until the same absolute deadline
    (not restarted with the full timeout), then times out with the lock still held."""
    _main_thread_only()
    hits: list[float] = []
    old = signal.signal(signal.SIGUSR1, lambda *_: hits.append(time.monotonic()))
    timeout, at = 1.0, 0.5
    try:
        with _held_by_another_thread(word) as holder:
            t0 = time.monotonic()
            thread, _ = _interrupt_main_when_asleep(word.address, None, signal.SIGUSR1, at)
            assert getattr(word, lock)(timeout) is False
            elapsed = time.monotonic() - t0
            thread.join()
            assert word.load() & abi.FUTEX_TID_MASK == holder.tid
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert len(hits) == 1 and hits[0] - t0 >= at
    assert timeout <= elapsed < timeout + at - 0.1  # a restart would end at >= 1.5 s


@pytest.mark.parametrize("lock", LOCKS)
def test_sigint_racing_the_grant_leaves_the_lock_pi_unheld(word: Word, lock: str) -> None:
    """SIGINT, then at once the unlock that hands the lock to the sleeping main thread:
    the call returns with the lock granted and KeyboardInterrupt pending.  It must not
    return True only for the exception to fire at the next bytecode (the caller would
    hold a lock it was never told about): it unlocks again and raises."""
    _main_thread_only()
    main = threading.main_thread()
    assert main.ident is not None and main.native_id is not None
    ident, main_tid = main.ident, main.native_id
    holding = threading.Event()

    def hold_then_interrupt_and_hand_over() -> None:
        assert word.lock_pi() is True
        holding.set()
        wait_asleep(main_tid, word.address)
        signal.pthread_kill(ident, signal.SIGINT)
        word.unlock_pi()

    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        holder = Background(hold_then_interrupt_and_hand_over)
        assert holding.wait(STATE_TIMEOUT)
        with pytest.raises(KeyboardInterrupt):
            getattr(word, lock)(20)
        holder.result()
    finally:
        signal.signal(signal.SIGINT, old)
    assert word.load() & abi.FUTEX_TID_MASK == 0  # handed on to nobody: free
    assert word.trylock_pi() is True
    word.unlock_pi()


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_pi_sleeping_in_slices_still_receives_the_lock(word: Word, lock: str) -> None:
    """The main thread's slices do not lose the lock: after sleeping across several of
    them, the holder's unlock hands it over (or leaves it free for the next slice)."""
    _main_thread_only()
    main_tid = threading.get_native_id()
    holding = threading.Event()
    release_now = threading.Event()

    def hold() -> None:
        assert word.lock_pi() is True
        holding.set()
        release_now.wait(STATE_TIMEOUT)
        wait_asleep(main_tid, word.address)
        time.sleep(0.1)  # five slices; the outcome must not depend on where it lands
        word.unlock_pi()

    holder = Background(hold)
    assert holding.wait(STATE_TIMEOUT)
    release_now.set()
    assert getattr(word, lock)(STATE_TIMEOUT) is True
    assert word.load() & abi.FUTEX_TID_MASK == main_tid
    word.unlock_pi()
    holder.result()


_LOCK_PI_SIGINT_CHILD = """
import json, mmap, os, signal, sys, time
from futex.native import Word, sleeps_release_gil

lock, path = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR)
w = Word(mmap.mmap(fd, mmap.PAGESIZE), 0)
signal.signal(signal.SIGINT, signal.default_int_handler)
out = {"releases": sleeps_release_gil()}
try:
    getattr(w, lock)(60)
    out["raised"] = False
except KeyboardInterrupt:
    out["raised"], out["at"] = True, time.monotonic()
print(json.dumps(out), flush=True)
"""


@pytest.mark.parametrize("lock", LOCKS)
def test_sigint_ends_lock_pi_in_a_single_threaded_process_within_100ms(
    tmp_path: Any, lock: str
) -> None:
    """The same in a process that never had a second thread (the sleep keeps the GIL):
    a fresh interpreter blocks on a lock this process holds, on a shared file page."""

    path = tmp_path / "page"
    path.write_bytes(bytes(mmap.PAGESIZE))
    with open(path, "r+b") as fh:
        mem = mmap.mmap(fh.fileno(), mmap.PAGESIZE)
    w = Word(mem, 0)
    assert w.lock_pi() is True
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", _LOCK_PI_SIGINT_CHILD, lock, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        s = wait_asleep(child.pid, None, pid=child.pid)
        cmd = s[2] & ~(abi.FUTEX_PRIVATE_FLAG | abi.FUTEX_CLOCK_REALTIME)
        assert cmd in (abi.FUTEX_LOCK_PI, abi.FUTEX_LOCK_PI2)
        sent = time.monotonic()
        os.kill(child.pid, signal.SIGINT)
        out, err = child.communicate(timeout=STATE_TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, err
    data = json.loads(out)
    assert data["raised"] is True
    assert data["at"] - sent < 0.1  # CLOCK_MONOTONIC is one clock for both processes
    assert w.load() & abi.FUTEX_TID_MASK == native.gettid()  # still ours
    w.unlock_pi()
    w.release()
    mem.close()
