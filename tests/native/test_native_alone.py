"""futex.native in a process that has never had a second thread: sleeps keep the GIL.

Where glibc says the process is single-threaded (``__libc_single_threaded``), nobody
could take the GIL, so ``wait``, ``lock_pi`` and ``waitv`` sleep without handing it
over.  What must not change: another process still wakes the sleeper, a PI lock is
still handed over, SIGINT still ends the sleep with KeyboardInterrupt within 100 ms
(EINTR needs no GIL), and a handler that returns keeps the original deadline.

The pytest process has run threads, so each case runs in a fresh interpreter (a child
started with ``subprocess``, never a thread), on a word in a shared file mapping.  The
test side observes the child asleep through ``/proc/<pid>/syscall`` and acts on it.
"""

from __future__ import annotations

import json
import mmap
import os
import platform
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import host_has

try:
    import futex.native as native
    from futex.native import Word

    IMPORT_ERROR: ImportError | None = None
except ImportError as exc:
    IMPORT_ERROR = exc

pytestmark = pytest.mark.skipif(IMPORT_ERROR is not None, reason=f"no futex.native: {IMPORT_ERROR}")

#: Generous bound on waiting for a state (the child asleep, the child done).
STATE_TIMEOUT = 30.0

#: glibc has had __libc_single_threaded since 2.32; elsewhere sleeps always release.
libc, libc_version = platform.libc_ver()
GLIBC_FLAG = libc == "glibc" and tuple(int(x) for x in libc_version.split(".")[:2]) >= (2, 32)

CHILD = textwrap.dedent(
    """
    import json, mmap, os, signal, sys, threading, time
    import futex.native as native
    from futex.native import Word, waitv

    mode, path = sys.argv[1], sys.argv[2]
    fd = os.open(path, os.O_RDWR)
    mem = mmap.mmap(fd, mmap.PAGESIZE)
    w, other = Word(mem, 0), Word(mem, 64)
    out = {"releases": native.sleeps_release_gil()}
    if mode == "wait":
        out["result"] = w.wait(0, 60)
        out["value"] = w.load()
    elif mode == "waitv":
        out["result"] = waitv([(other, 0), (w, 0)], 60)
    elif mode == "lock_pi":
        out["result"] = w.lock_pi(60)
        out["owner"] = w.load() & 0x3FFFFFFF == native.gettid()
        w.unlock_pi()
    elif mode == "sigint":
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            w.wait(0, 60)
            out["raised"] = False
        except KeyboardInterrupt:
            out["raised"] = True
            out["at"] = time.monotonic()
    elif mode == "handler":
        hits = []
        signal.signal(signal.SIGUSR1, lambda *_: hits.append(time.monotonic()))
        t0 = time.monotonic()
        out["result"] = w.wait(0, 1.0)
        out["elapsed"] = time.monotonic() - t0
        out["hits"] = [h - t0 for h in hits]
    elif mode == "thread":
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
        out["after_thread"] = native.sleeps_release_gil()
        pid = os.fork()
        if pid == 0:
            os._exit(0 if native.sleeps_release_gil() else 1)
        out["fork_child_releases"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    print(json.dumps(out), flush=True)
    """
)


class Child:
    """A fresh interpreter running one CHILD mode on the shared page."""

    def __init__(self, mode: str, path: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, mode, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def asleep(self, nr: int) -> None:
        """Poll /proc until the child's only thread sleeps in syscall ``nr``."""
        end = time.monotonic() + STATE_TIMEOUT
        while time.monotonic() < end:
            assert self.proc.poll() is None, self.proc.communicate()
            try:
                with open(f"/proc/{self.proc.pid}/syscall") as fh:
                    fields = fh.read().split()
            except FileNotFoundError:
                fields = []
            if fields and fields[0] == str(nr):
                return
            time.sleep(0.0005)
        pytest.fail(f"the child never slept in syscall {nr}")

    def result(self) -> dict[str, Any]:
        try:
            out, err = self.proc.communicate(timeout=STATE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            pytest.fail("the child never finished")
        assert self.proc.returncode == 0, err
        data: dict[str, Any] = json.loads(out)
        return data


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[Path, mmap.mmap]]:
    path = tmp_path / "page"
    path.write_bytes(bytes(mmap.PAGESIZE))
    with open(path, "r+b") as fh:
        mem = mmap.mmap(fh.fileno(), mmap.PAGESIZE)
    yield path, mem
    mem.close()


def expect_alone(data: dict[str, Any]) -> None:
    """The child took the single-threaded path, where the C library can tell."""
    assert data["releases"] is (not GLIBC_FLAG)


def test_fresh_interpreter_keeps_the_gil_until_a_thread_has_run(page: Any) -> None:
    """glibc clears __libc_single_threaded at the first pthread_create and never sets it
    back, not even in a fork child: from then on every sleep hands the GIL over."""
    path, _ = page
    data = Child("thread", path).result()
    expect_alone(data)
    assert data["after_thread"] is True
    assert data["fork_child_releases"] is True


def test_this_process_releases_the_gil_once_it_has_threads() -> None:
    started = threading.Thread(target=lambda: None)
    started.start()
    started.join()
    assert native.sleeps_release_gil() is True


def test_single_threaded_waiter_is_woken_by_another_process(page: Any) -> None:
    """FUTEX_WAIT on a shared file mapping: the other process's FUTEX_WAKE finds it."""
    path, mem = page
    w = Word(mem, 0)
    child = Child("wait", path)
    child.asleep(native.SYS_futex)
    w.store(7)
    assert w.wake() == 1
    data = child.result()
    expect_alone(data)
    assert data["result"] is True and data["value"] == 7
    w.release()


@host_has("futex_waitv")
def test_single_threaded_waitv_reports_the_woken_word(page: Any) -> None:
    path, mem = page
    w = Word(mem, 0)
    child = Child("waitv", path)
    child.asleep(native.abi.SYS_futex_waitv)
    assert w.wake() == 1
    data = child.result()
    expect_alone(data)
    assert data["result"] == 1  # the second pair's word
    w.release()


def test_single_threaded_lock_pi_waiter_receives_the_lock(page: Any) -> None:
    """FUTEX_UNLOCK_PI hands the lock to the sleeping waiter of another process, which
    finds its own TID in the word (LTP futex_lock_pi, across processes)."""
    path, mem = page
    w = Word(mem, 0)
    assert w.lock_pi() is True
    child = Child("lock_pi", path)
    child.asleep(native.SYS_futex)
    w.unlock_pi()
    data = child.result()
    expect_alone(data)
    assert data["result"] is True and data["owner"] is True
    assert w.load() == 0  # the child unlocked it again
    w.release()


def test_single_threaded_sleep_ends_on_sigint_within_100ms(page: Any) -> None:
    """EINTR wakes the sleeper without the GIL changing hands; the handler then raises."""
    path, _ = page
    child = Child("sigint", path)
    child.asleep(native.SYS_futex)
    sent = time.monotonic()
    os.kill(child.proc.pid, signal.SIGINT)
    data = child.result()
    expect_alone(data)
    assert data["raised"] is True
    assert data["at"] - sent < 0.1  # CLOCK_MONOTONIC is one clock for both processes


def test_single_threaded_handler_that_returns_keeps_the_deadline(page: Any) -> None:
    """A returning handler: the wait sleeps again until the same absolute deadline."""
    path, _ = page
    child = Child("handler", path)
    child.asleep(native.SYS_futex)
    time.sleep(0.5)  # the signal lands mid-wait; the deadline is what is checked
    os.kill(child.proc.pid, signal.SIGUSR1)
    data = child.result()
    expect_alone(data)
    assert data["result"] is False and len(data["hits"]) == 1
    assert 1.0 <= data["elapsed"] < 1.4  # a restart with the full timeout ends >= 1.5 s
