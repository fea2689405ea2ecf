"""The calling thread as a lock owner: its TID and its robust list.

An owned primitive (Mutex, RLock, the writer gate of RWLock, the lock under Condition)
writes its owner's TID into its futex word and links its 40-byte node into the owner
thread's *robust list*, so that when the thread dies holding it — SIGKILL, ``os._exit``,
a thread that ends — the kernel marks the word FUTEX_OWNER_DIED and wakes a waiter
(Linux ``exit_robust_list`` / ``handle_futex_death``).  :class:`Owner` is that
interface; the algorithms use nothing else of the thread.

Two modes (:data:`ROBUST_LIST`, :data:`PID_LIVENESS`):

``robust-list``
    On the host: the node joins *glibc's own* per-thread list (its head from
    ``get_robust_list(0)``; never ``set_robust_list``, which would cut glibc's robust
    mutexes off — sync_design §2b), in glibc's order: set ``list_op_pending``, take
    the word, link, clear pending; unlock: set pending, unlink, release, clear pending.
    On the emulated kernel the owner plays glibc: it registers a glibc-shaped head for
    the task (``set_robust_list`` of the emulated kernel) and links the same way.
``pid-liveness``
    The fallback where the kernel path is not available (no glibc head — musl —, a
    foreign list format, ``get_robust_list`` refused by a sandbox): the owner writes its
    pid and its thread's start time into the node, and a waiter sleeps in slices and
    checks :meth:`Owner.alive` between them.  ``FUTEX_SYNC_ROBUST=pid`` in the
    environment forces this mode (for tests).

Every process that shares an owned primitive must be in one PID namespace, in both
modes: a TID names the owner in the word, and two namespaces can hand out the same TID
(POSIX robust mutexes have the same limit).
"""

from __future__ import annotations

import os
import threading
from typing import Any, Final, Protocol

__all__ = [
    "PID_LIVENESS",
    "ROBUST_LIST",
    "Owner",
    "native_owner",
    "robust_mode",
    "thread_start_time",
]

ROBUST_LIST: Final = "robust-list"
PID_LIVENESS: Final = "pid-liveness"
#: Environment variable that forces the fallback mode ("pid").
FORCE_ENV: Final = "FUTEX_SYNC_ROBUST"


class Owner(Protocol):
    """What an owned primitive needs of the calling thread."""

    @property
    def mode(self) -> str:
        """:data:`ROBUST_LIST` or :data:`PID_LIVENESS`."""
        ...

    @property
    def tid(self) -> int: ...

    @property
    def pid(self) -> int: ...

    def start_time(self) -> int:
        """The calling thread's start time (clock ticks since boot; 0 if unknown)."""
        ...

    def pending(self, node: int) -> None:
        """Set the robust list's ``list_op_pending`` to the node at ``node`` (0 clears)."""
        ...

    def link(self, node: int, keep: object) -> None:
        """Link the node whose lock word is at address ``node``; ``keep`` stays alive
        (and so its memory mapped) while linked."""
        ...

    def unlink(self, node: int, keep: object) -> None:
        """Take the node off the list (``keep``: what :meth:`link` was given)."""
        ...

    def alive(self, pid: int, tid: int, start: int) -> bool:
        """Whether thread ``tid`` of process ``pid``, started at ``start``, still runs
        (pid 0 or start 0: unknown, not compared)."""
        ...


def thread_start_time(pid: int, tid: int) -> int | None:
    """Field 22 (starttime) of ``/proc/pid/task/tid/stat`` (``/proc/tid/stat`` for pid 0:
    unknown); None: no such thread (or a zombie, or /proc is not this PID namespace's)."""
    path = f"/proc/{tid}/stat" if pid == 0 else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path, "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def _forced_pid() -> bool:
    return os.environ.get(FORCE_ENV, "").lower() in ("pid", PID_LIVENESS)


class _Held(threading.local):
    def __init__(self) -> None:
        self.nodes: dict[int, object] = {}
        #: (pid, tid) the start time was read for, and that start time (a fork child
        #: has a new pid and tid, so the cache cannot outlive the thread it describes)
        self.start_of: tuple[int, int] = (0, 0)
        self.start = 0


class NativeOwner:
    """The calling host thread (one object serves every thread: the C side keeps the
    TID and the list head in thread-local storage, refreshed after fork)."""

    def __init__(self) -> None:
        from futex.native import _native

        self._n: Any = _native
        self._held = _Held()
        # a build without the robust-list entry points (an old extension) can only
        # offer the fallback
        self._forced = _forced_pid() or not hasattr(_native, "robust_mode")

    @property
    def mode(self) -> str:
        if self._forced:
            return PID_LIVENESS
        mode: str = self._n.robust_mode()
        return mode

    @property
    def tid(self) -> int:
        if self._forced and not hasattr(self._n, "sync_tid"):
            return threading.get_native_id()
        tid: int = self._n.sync_tid()
        return tid

    @property
    def pid(self) -> int:
        return os.getpid()

    def start_time(self) -> int:
        held = self._held
        me = (os.getpid(), self.tid)
        if held.start_of != me:  # one /proc read per thread (about 10 us)
            held.start = thread_start_time(*me) or 0
            held.start_of = me
        return held.start

    def pending(self, node: int) -> None:
        if self.mode == ROBUST_LIST:
            self._n.robust_pending(node)

    def link(self, node: int, keep: object) -> None:
        if self.mode == ROBUST_LIST:  # the C list keeps a reference, as the C core does
            self._n.robust_link(node, keep)
        else:
            self._held.nodes[node] = keep

    def unlink(self, node: int, keep: object) -> None:
        if self.mode == ROBUST_LIST:
            self._n.robust_unlink(node, keep)
        else:
            self._held.nodes.pop(node, None)

    def alive(self, pid: int, tid: int, start: int) -> bool:
        now = thread_start_time(pid, tid)
        return now is not None and (start == 0 or now == start)


_native_owner: NativeOwner | None = None


def native_owner() -> NativeOwner:
    """The host's owner context."""
    global _native_owner
    if _native_owner is None:
        _native_owner = NativeOwner()
    return _native_owner


def robust_mode() -> str:
    """Which robustness mode owned primitives use on the host kernel in this process:
    :data:`ROBUST_LIST` (the kernel recovers a dead holder's locks at once) or
    :data:`PID_LIVENESS` (waiters check the holder's liveness every few ms)."""
    return native_owner().mode
