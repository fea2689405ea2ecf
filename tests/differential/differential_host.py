"""Differential harness, the host side: raw system calls on the host kernel, the watchdog
that ends a host call that blocked, and the peer thread.

The host is reached through the raw entries of ``futex.native`` (``syscall_futex``,
``syscall6``, ``gettid``): futex(2), futex2, and the mmap / mprotect / munmap / msync
that build the layout, all as raw system calls.  ctypes stays only for reading and
writing the layout's memory at raw addresses (``string_at``, ``memmove``), which the
extension does not offer.  Without the extension (``NATIVE_MISSING`` says why) the
calls fall back to ``tests/support/hostfutex.py`` (ctypes), for the futex2 checks of
``test_futex2``; ``test_differential`` skips.

:class:`Watchdog` ends a host call that does not return (a signal, or a rescue for a call
a signal only restarts); :class:`Peer` is the idle thread PI words may name, which runs
:class:`PeerJob` s: calls made while the main thread sleeps in one.  The layout's
reservation on the host is ``differential_host_layout``.
"""

from __future__ import annotations

import ctypes
import functools
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence

from futex.linux import abi
from tests.differential.differential_layout import PAGE, U64
from tests.differential.differential_steps import PEER_SIGNAL

__all__ = [
    "NATIVE_MISSING",
    "PEER_PATIENCE_SECONDS",
    "WATCHDOG_SECONDS",
    "Peer",
    "PeerJob",
    "Watchdog",
    "gettid",
    "host_futex",
    "host_mmap",
    "host_mprotect",
    "host_munmap",
    "host_page_mapped",
    "host_syscall",
]


MS_ASYNC = 1
#: Host calls that do not return within this many seconds are taken to be blocked.
WATCHDOG_SECONDS = 2.0
#: How long the peer waits for the caller to fall asleep in its call.
PEER_PATIENCE_SECONDS = 1.5


#: Why the host oracle is the ctypes fallback (futex.native did not import), or "".
NATIVE_MISSING = ""
try:
    from futex import native as _native
except ImportError as exc:  # pragma: no cover - the extension is built in CI
    _native = None  # type: ignore[assignment]
    NATIVE_MISSING = f"futex.native (the C extension) is not available: {exc}"

if _native is not None:
    #: futex(2) on the host with raw register values: >= 0 or -errno (the extension's
    #: raw entry; the GIL is released only for the commands that can sleep).
    host_futex: Callable[[int, int, int, int, int, int], int] = _native.syscall_futex
    #: System call ``nr`` on the host with up to six raw register values: >= 0 or -errno.
    host_syscall: Callable[..., int] = _native.syscall6
    #: The calling thread's host tid.
    gettid: Callable[[], int] = _native.gettid
else:  # pragma: no cover - only test_futex2's checks get here; test_differential skips
    from tests.support import hostfutex as _hf

    host_futex = _hf.host_futex
    gettid = _hf.gettid
    _libc = ctypes.CDLL(None, use_errno=True)
    _host_syscall = _libc.syscall
    _host_syscall.restype = ctypes.c_long
    _host_syscall.argtypes = [ctypes.c_long] * 7

    def host_syscall(nr: int, *args: int) -> int:
        regs = [(a & U64) - (1 << 64) if (a & U64) >> 63 else a & U64 for a in args]
        regs += [0] * (6 - len(regs))
        r: int = _host_syscall(nr, *regs)
        return r if r >= 0 else -ctypes.get_errno()


SYS_MMAP, SYS_MPROTECT, SYS_MUNMAP, SYS_MSYNC = 9, 10, 11, 26  # x86-64


def _check(r: int, what: str) -> int:
    if r < 0:
        raise OSError(-r, f"{what}: {os.strerror(-r)}")
    return r


def host_mmap(addr: int, length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
    """mmap(2) on the host; raises OSError on failure."""
    return _check(host_syscall(SYS_MMAP, addr, length, prot, flags, fd, offset), "mmap")


def host_munmap(addr: int, length: int) -> None:
    _check(host_syscall(SYS_MUNMAP, addr, length), "munmap")


def host_mprotect(addr: int, length: int, prot: int) -> None:
    _check(host_syscall(SYS_MPROTECT, addr, length, prot), "mprotect")


#: Addresses at or above this are never user mappings (TASK_SIZE of 4-level paging).
_TASK_SIZE = 0x7FFFFFFFF000


def host_page_mapped(page: int) -> bool:
    """Whether the host process has anything mapped at ``page`` (page aligned)."""
    if page >= _TASK_SIZE or page < 0:
        return False
    return host_syscall(SYS_MSYNC, page, PAGE, MS_ASYNC) == 0


class Watchdog:
    """Ends a host call that blocks: after ``arm(seconds)`` it sends SIGUSR1 to the main
    thread unless ``disarm()`` came first.  SIGUSR1 gets a no-op handler (without
    SA_RESTART), so the futex call returns -EINTR.  A PI lock restarts after a signal
    (ERESTARTNOINTR): ``arm(seconds, rescue)`` calls ``rescue()`` instead."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._rescue: Callable[[], None] | None = None
        self._fired = False
        self._closed = False
        self._target = threading.main_thread().ident
        self._old = signal.signal(signal.SIGUSR1, lambda *_: None)
        self._thread = threading.Thread(target=self._run, name="futex-diff-watchdog", daemon=True)
        self._thread.start()

    def arm(self, seconds: float, rescue: Callable[[], None] | None = None) -> None:
        with self._cond:
            self._deadline = time.monotonic() + seconds
            self._rescue = rescue
            self._fired = False
            self._cond.notify()

    def disarm(self) -> bool:
        """Stop watching; return whether the signal was sent."""
        with self._cond:
            self._deadline = None
            return self._fired

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        signal.signal(signal.SIGUSR1, self._old)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self._deadline = None
                self._fired = True
                if self._rescue is not None:
                    self._rescue()
                    continue
                assert self._target is not None
                signal.pthread_kill(self._target, signal.SIGUSR1)


class Peer:
    """An idle thread of this process: the one live task, besides the caller, that PI
    words may name on the host (the emulated process has a task with its tid too).  It
    also rescues a host PI lock that blocked on it: :meth:`unlock` has it run UNLOCK_PI,
    which hands the lock to the blocked caller; and it runs :class:`PeerJob` s (calls
    made while the caller sleeps)."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        ready = threading.Event()
        self.tid = 0

        def run() -> None:
            self.tid = gettid()
            ready.set()
            while (request := self._requests.get()) is not None:
                request()

        self._thread = threading.Thread(target=run, name="futex-diff-peer", daemon=True)
        self._thread.start()
        ready.wait()

    def unlock(self, uaddr: int, flags: int) -> None:
        self.submit(functools.partial(host_futex, uaddr, abi.FUTEX_UNLOCK_PI | flags, 0, 0, 0, 0))

    def submit(self, fn: Callable[[], object]) -> None:
        self._requests.put(fn)

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join()


def _proc_args(nr: int, args: Sequence[int]) -> list[str]:
    """How ``/proc/<pid>/task/<tid>/syscall`` shows a task asleep in this call (the
    number and the first two registers)."""
    return [str(nr), *(f"{a & U64:#x}" for a in (*args, 0, 0)[:2])]


class PeerJob:
    """Runs on the peer thread while the main thread makes system call ``nr(args)``: once
    ``/proc`` shows the main thread asleep in it, make ``calls`` until it no longer sleeps
    (a futex_waitv woken through one entry leaves the others queued until it runs: a wake
    of those would race with it); if it still sleeps in it after them, send it SIGUSR1 (a
    futex wait answers EINTR; a requeue-PI wait still on its condition word restarts).
    ``results`` stays ``None`` if the main thread never slept in the call (it returned,
    or ``PEER_PATIENCE_SECONDS`` passed)."""

    def __init__(
        self,
        main_tid: int,
        nr: int,
        args: Sequence[int],
        calls: Sequence[tuple[int, Sequence[int]]],
    ) -> None:
        self.path = f"/proc/self/task/{main_tid}/syscall"
        self.stat_path = f"/proc/self/task/{main_tid}/stat"
        self.signature = _proc_args(nr, args)
        self.calls = calls
        self.target = threading.main_thread().ident
        self.results: list[object] | None = None
        self.signalled = False
        self.returned = threading.Event()
        self.finished = threading.Event()

    def asleep(self) -> bool:
        """Whether the main thread sleeps in the call: its state is S (a task just woken
        is R, or TASK_WAKING, which ``/proc/.../syscall`` would still show in the call),
        then its system call is this one (read second: a task that was asleep in it and
        is not woken stays there)."""
        try:
            with open(self.stat_path) as f:
                stat = f.read()
            if stat[stat.rindex(")") + 2 :].split(" ", 1)[0] != "S":
                return False
            with open(self.path) as f:
                fields = f.read().split()
        except (OSError, ValueError):  # pragma: no cover - /proc not readable
            return False
        return fields[: len(self.signature)] == self.signature

    def __call__(self) -> None:
        try:
            deadline = time.monotonic() + PEER_PATIENCE_SECONDS
            while not self.asleep():
                if self.returned.is_set() or time.monotonic() > deadline:
                    return
                time.sleep(0.0001)
            results: list[object] = []
            for nr, args in self.calls:
                if nr == PEER_SIGNAL:
                    results.append(self._signal())
                else:
                    results.append(host_syscall(nr, *args))
                if not self.asleep():
                    break  # woken: what else the peer would do races with its return
            self.results = results
            if self.asleep():
                self.signalled = True
                assert self.target is not None
                signal.pthread_kill(self.target, signal.SIGUSR1)
        finally:
            self.finished.set()

    def _signal(self) -> str:
        """SIGUSR1 to the caller; ``"restarted"`` once it sleeps in its call again, or
        ``"returned"``."""
        assert self.target is not None
        signal.pthread_kill(self.target, signal.SIGUSR1)
        deadline = time.monotonic() + PEER_PATIENCE_SECONDS
        while not self.returned.is_set() and time.monotonic() < deadline:
            if self.asleep():
                return "restarted"
            time.sleep(0.0001)
        return "returned"
