"""Where a schedule's tasks run: green threads (greenlet) or pooled OS threads.

Exactly one context runs at a time -- the *hub* (the caller of ``run_schedule``) or one
task -- and control passes explicitly: :meth:`Backend.switch` ``(me, to)`` suspends
``me`` and resumes ``to``.  Both backends give the same traces for the same choices: the
schedule's decisions are made by the same code whatever context it runs in, and nothing
else runs in between.

- :class:`GreenletBackend`: each task runs on a greenlet from a per-thread pool (a fresh
  greenlet costs about 10 µs to start and end, a switch about 0.5 µs); a task that
  returns parks its greenlet in the pool and switches to the hub.
- :class:`ThreadBackend`: each task runs on a worker thread from a process-wide pool
  (threads are started once and reused: starting one costs about 130 µs); a switch is a
  baton pass -- release ``to``'s lock, block on ``me``'s -- about 10 µs.  A task that
  returns hands its worker back to the pool and releases the hub.

Each context's lock is held while it runs or is suspended and released once by whoever
resumes it, so a release never meets a released lock.

greenlet is optional (``pip install 'futex[check]'``); :func:`make_backend` with
``None`` picks it when it is installed, else threads.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from futex.check.model import ATOMICS

if TYPE_CHECKING:
    from futex.check.model import OpInfo, TaskFn
    from futex.check.words import PointWord
    from futex.kernel.blocking import PendingWait
    from futex.linux.kernel import Task as KTask

__all__ = [
    "BLOCKED",
    "Abort",
    "DONE",
    "GREENLET_MISSING",
    "READY",
    "Backend",
    "GreenletBackend",
    "TaskState",
    "ThreadBackend",
    "have_greenlet",
    "make_backend",
]

#: The reason the greenlet backend is unavailable (tests skip with it).
GREENLET_MISSING = "greenlet is not installed: pip install 'futex[check]'"

try:  # imported by name: greenlet ships no type information
    _greenlet: Any = importlib.import_module("greenlet")
except ImportError:  # pragma: no cover - exercised where greenlet is absent
    _greenlet = None


def have_greenlet() -> bool:
    """Whether the greenlet backend can run."""
    return _greenlet is not None


class Backend(Protocol):
    """How task contexts are made and switched (see the module docstring)."""

    name: str
    #: The hub's context (the caller of ``run_schedule``).
    hub: Any

    def spawn(self, body: Callable[[Any], None], arg: Any) -> Any:
        """A suspended context that runs ``body(arg)`` when first switched to, then
        returns control to the hub."""
        ...

    def switch(self, me: Any, to: Any) -> None:
        """Suspend ``me`` (the running context) and resume ``to``; returns when something
        switches back to ``me``."""
        ...


if _greenlet is not None:

    class _Green(_greenlet.greenlet):  # type: ignore[misc]  # greenlet is untyped
        """A pooled greenlet: runs one job at a time, parking in the hub between jobs
        (starting a fresh greenlet costs about 10 µs; resuming a parked one 0.5 µs)."""

        def __init__(self, hub: Any) -> None:
            super().__init__(parent=hub)
            self.job: Callable[[Any], None] | None = None
            self.arg: Any = None
            self.hub = hub

        def run(self) -> None:
            while True:
                job, arg, hub = self.job, self.arg, self.hub
                self.job = self.arg = None
                try:
                    if job is not None:
                        job(arg)
                finally:
                    arg = None
                    job = None  # nor keep the finished schedule alive while parked
                    _green_idle.idle.append(self)
                hub.switch()


class _GreenIdle(threading.local):
    def __init__(self) -> None:
        self.idle: list[Any] = []


_green_idle = _GreenIdle()  # greenlets run only in their own thread: a pool per thread


class GreenletBackend:
    """Tasks as pooled greenlets (see the module docstring)."""

    name = "greenlet"

    def __init__(self) -> None:
        if _greenlet is None:
            raise RuntimeError(GREENLET_MISSING)
        self.hub = _greenlet.getcurrent()

    def spawn(self, body: Callable[[Any], None], arg: Any) -> Any:
        idle = _green_idle.idle
        hub = self.hub
        while idle:
            g = idle.pop()
            if not g.dead:
                if g.parent is not hub:
                    g.parent = hub
                g.hub = hub
                g.job, g.arg = body, arg
                return g
        g = _Green(hub)
        g.job, g.arg = body, arg
        return g

    def switch(self, me: Any, to: Any) -> None:
        to.switch()


class _Hub:
    __slots__ = ("lock",)

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()


class _Worker:
    """A pooled thread: runs one job at a time, each started by a release of ``lock``."""

    __slots__ = ("arg", "hub", "job", "lock", "thread")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.job: Callable[[Any], None] | None = None
        self.arg: Any = None
        self.hub: _Hub | None = None
        self.thread = threading.Thread(target=self._loop, name="futex-check-task", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            self.lock.acquire()
            job, arg, hub = self.job, self.arg, self.hub
            if job is None or hub is None:
                return
            self.job = self.arg = self.hub = None
            try:
                job(arg)
            finally:
                job = arg = None  # nor keep the finished schedule alive while parked
                _idle.append(self)
                hub.lock.release()


_idle: list[_Worker] = []


class ThreadBackend:
    """Tasks on pooled worker threads (see the module docstring)."""

    name = "threads"

    def __init__(self) -> None:
        self.hub = _Hub()

    def spawn(self, body: Callable[[Any], None], arg: Any) -> Any:
        try:
            w = _idle.pop()
        except IndexError:
            w = _Worker()
        w.job, w.arg = body, arg
        w.hub = self.hub
        return w

    def switch(self, me: Any, to: Any) -> None:
        to.lock.release()
        me.lock.acquire()


class Abort(BaseException):
    """Unwinds a task when its schedule is over (raised at its scheduling point)."""


#: A task's states: parked at a scheduling point (or running), asleep in a futex call,
#: finished.
READY, BLOCKED, DONE = 0, 1, 2


class TaskState:
    """A task of a schedule: its function, its kernel task ``k``, its context ``ctx``,
    where it is (``state``; ``op`` / ``args`` / ``word``: the operation it is parked
    before, or the call it sleeps in), what it returned or raised, its spin record
    (``seen``: the observations since a word last changed, ``stale``: how many repeated
    one), and, asleep, the word and value it queued at (after a requeue: the new word)."""

    __slots__ = (
        "args", "ctx", "error", "finished", "fn", "index", "k", "name", "op", "pending", "raw",
        "requeued_from", "result", "seen", "stale", "state", "wait_addr",
        "wait_value", "word",
    )  # fmt: skip

    def __init__(self, index: int, name: str, fn: TaskFn, k: KTask) -> None:
        self.index = index
        self.name = name
        self.fn = fn
        self.k = k
        self.ctx: Any = None
        self.state = READY
        self.op: OpInfo | None = None
        self.args: tuple[object, ...] = ()
        self.word: PointWord | None = None
        self.raw: object = None
        self.pending: PendingWait | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = False
        self.seen: dict[tuple[str, str, tuple[object, ...]], object] | None = None
        self.stale = 0
        self.wait_addr = 0
        self.wait_value = 0
        self.requeued_from: str | None = None

    def spins(self) -> bool:
        """Whether it is about to repeat an observation of words nobody changed since
        (await model checking: running it would change nothing)."""
        op, seen = self.op, self.seen
        if self.stale < 1 or seen is None or op is None or op.kind not in ATOMICS:
            return False
        return (op.kind, op.word, self.args) in seen


def make_backend(name: str | None) -> Backend:
    """``"greenlet"``, ``"threads"``, or ``None``: greenlet when installed, else threads."""
    if name is None:
        name = "greenlet" if _greenlet is not None else "threads"
    if name == "greenlet":
        return GreenletBackend()
    if name == "threads":
        return ThreadBackend()
    raise ValueError(f"backend must be 'greenlet', 'threads' or None, not {name!r}")
