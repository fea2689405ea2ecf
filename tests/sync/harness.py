"""One test body, four environments: {native, emulated} kernel x {threads, processes}.

Issue 13: "one generic test body per primitive family runs on both kernels and both
concurrency kinds; timed tests on the manual clock".  An :class:`Env` is where a test
makes its primitives and runs its workers:

``env.make(cls, *args, **opts)``
    A fresh primitive (``cls.create`` at the next 64-byte slot of the environment's
    shared arena).  Native: an anonymous ``MAP_SHARED`` mmap, so a forked child shares
    it.  Emulated: a ``MAP_SHARED`` mapping of an emulated process of a
    ``LinuxKernel(clock=ManualClock())``, as :class:`futex.sync.emulated.Memory`.
``env.shared()``
    A :class:`Shared` u32 in the same arena (counters, in-section flags, gates) that
    every worker sees.
``env.start(fn, *args)``
    Runs ``fn(*args)`` concurrently and returns a :class:`Handle`
    (``handle.result(timeout)``; ``handle.tid`` is the worker's TID, the owner TID its
    locks record).  Workers by environment:

    ================  ===============================  =================================
    kernel            threads                          processes
    ================  ===============================  =================================
    native            ``threading.Thread``             ``os.fork`` child; the result or
                                                       exception comes back pickled
                                                       through a pipe, then ``os._exit``
    emulated          a Python thread bound            ``proc.fork()``: a new emulated
                      (``futex.sync.emulated.bind``)   process sharing the arena, a task
                      to a new task of the same        there driven by a Python thread;
                      emulated process                 every primitive argument is
                                                       attached afresh in the child
                                                       (``cls.attach(Memory(child, ..))``)
    ================  ===============================  =================================

``env.start_together(n, fn, *args)``
    ``n`` workers held at a shared gate until all of them sleep there, then released
    together (exclusion tests need workers that overlap in time).
``env.blocked(handle)`` / ``env.wait_blocked(handle, what)``
    Whether the worker is asleep in the kernel on the arena (for wait-for-state tests).
    Emulated: its task is blocked in a futex call (only futex calls block there).
    Native: ``/proc/<pid>/task/<tid>/stat`` says ``S`` *and* ``.../syscall`` shows
    futex(2) with its first argument inside the arena — so a thread waiting for the GIL
    (also a futex sleep, but on CPython's own memory) does not count.  Where the syscall
    file cannot be read (no ptrace access, a kernel without it) it falls back to state
    ``S`` plus ``wchan`` naming a futex function when wchan is readable; that fallback
    can report a GIL wait as blocked, which makes a test's interleaving less sharp but
    never its verdict wrong (the algorithms are correct whenever the waiter sleeps).
``env.advance(seconds)``
    Moves the emulated kernel's ManualClock (``env.manual_clock`` says whether there is
    one).  Timed tests run exactly there; natively they only check "False, and not
    before the deadline", with generous bounds.

Every wait is bounded (:data:`tests.support.STATE_TIMEOUT`); the fixture's teardown
kills forked children still running and, on the emulated kernel, exits stuck tasks and
checks every futex manager's invariants.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import select
import signal
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Final

import pytest

from futex.kernel import ClockId, ManualClock
from futex.linux import LinuxKernel
from futex.linux.kernel import Process, Task
from futex.linux.word import EmulatedWord
from futex.sync.emulated import Memory, bind, current_task
from futex.sync.layout import Primitive
from tests.support import STATE_TIMEOUT, wait_until

__all__ = ["ENVS", "KERNELS", "KINDS", "Env", "Handle", "Shared"]

KERNELS: Final = ("native", "emulated")
KINDS: Final = ("threads", "processes")
#: Every (kernel, kind) pair, as test ids "native-threads", ...
ENVS: Final = [(k, c) for k in KERNELS for c in KINDS]
ARENA: Final = 1 << 16
SLOT: Final = 64
_ALL: Final = 0x7FFF_FFFF


def _syscall_futex() -> int:
    from futex.native import _native

    return int(_native.SYS_futex)


class Shared:
    """A u32 of the environment's arena, usable from every worker (a counter, a flag, a
    gate).  Atomic; :meth:`set` wakes :meth:`wait_for`."""

    def __init__(self, env: Env, offset: int) -> None:
        self._native = env.kernel == "native"
        self.addr = env.base + offset
        self._word: Any = None
        if self._native:
            from futex.native import Word

            self._word = Word(env.arena, offset)

    def _w(self) -> Any:
        return self._word if self._native else EmulatedWord(current_task(), self.addr)

    def load(self) -> int:
        return int(self._w().load())

    def add(self, n: int = 1) -> int:
        """Add ``n``; the old value."""
        return int(self._w().fetch_add(n))

    def swap(self, value: int) -> int:
        return int(self._w().swap(value))

    def set(self, value: int) -> None:
        """Store ``value`` and wake every :meth:`wait_for`."""
        w = self._w()
        w.store(value)
        w.wake(_ALL)

    def wait_for(self, value: int, timeout: float = STATE_TIMEOUT) -> None:
        """Sleep until the word is ``value`` (natively bounded by ``timeout`` seconds of
        real time; emulated waits are untimed, ended by :meth:`set` or by the task's
        exit at teardown)."""
        w = self._w()
        end = time.monotonic() + timeout
        while (v := w.load()) != value:
            if not self._native:
                w.wait(v)
            elif time.monotonic() > end:
                raise TimeoutError(f"shared word stayed {v}, never became {value}")
            else:
                w.wait(v, 0.05)

    def release(self) -> None:
        if self._word is not None:
            self._word.release()


class Handle:
    """A running worker: ``result(timeout)`` returns ``fn``'s value or raises its error."""

    #: The worker's kernel TID (what a lock it takes records as its owner).
    tid: int
    #: The process the TID is in (native: a host pid; emulated: the emulated pid).
    pid: int
    task: Task | None = None

    def done(self) -> bool:
        raise NotImplementedError

    def result(self, timeout: float = STATE_TIMEOUT) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        """Teardown: end a worker that is still running (best effort)."""


class _ThreadWorker(Handle):
    """``fn(*args)`` on a Python thread (bound to ``task`` on the emulated kernel)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        task: Task | None = None,
        prepare: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None,
    ) -> None:
        self.task = task
        self._fn, self._args, self._prepare = fn, args, prepare
        self._value: list[Any] = []
        self._error: list[BaseException] = []
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"sync-{fn.__name__}")
        self.thread.start()
        if not self._ready.wait(STATE_TIMEOUT):
            pytest.fail("a worker thread did not start")

    def _run(self) -> None:
        try:
            with bind(self.task) if self.task is not None else contextlib.nullcontext():
                if self.task is not None:
                    self.tid, self.pid = self.task.tid, self.task.process.pid
                else:
                    self.tid, self.pid = threading.get_native_id(), os.getpid()
                self._ready.set()
                args = self._prepare(self._args) if self._prepare else self._args
                self._value.append(self._fn(*args))
        except BaseException as exc:  # re-raised by result()
            self._error.append(exc)
        finally:
            self._ready.set()

    def done(self) -> bool:
        return not self.thread.is_alive()

    def result(self, timeout: float = STATE_TIMEOUT) -> Any:
        self.thread.join(timeout)
        if self.thread.is_alive():
            pytest.fail(f"worker {self.tid} did not finish within {timeout} s")
        if self._error:
            raise self._error[0]
        return self._value[0]

    def stop(self) -> None:
        if self.task is not None and self.thread.is_alive() and self.task.alive:
            with contextlib.suppress(RuntimeError):
                self.task.exit()  # its blocked call ends; its next call raises
            self.thread.join(5.0)


class _ForkWorker(Handle):
    """``fn(*args)`` in a forked child; the result comes back pickled through a pipe."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        r, w = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child: never returns into the test
            code = 0
            try:
                os.close(r)
                try:
                    payload: tuple[Any, ...] = ("ok", fn(*args), "")
                except BaseException as exc:
                    payload = ("err", exc, traceback.format_exc())
                try:
                    data = pickle.dumps(payload)
                except Exception:
                    data = pickle.dumps(("err", RuntimeError(repr(payload[1])), payload[2]))
                view = memoryview(data)
                while view:
                    view = view[os.write(w, view) :]
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        self.pid = self.tid = pid
        self._r: int | None = r
        self._chunks: list[bytes] = []
        self._status: int | None = None

    def _pump(self, timeout: float) -> bool:
        """Read what the child sent; True once it closed the pipe."""
        if self._r is None:
            return True
        end = time.monotonic() + timeout
        while True:
            left = max(0.0, end - time.monotonic())
            ready, _, _ = select.select([self._r], [], [], left)
            if not ready:
                return False
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                os.close(self._r)
                self._r = None
                _, self._status = os.waitpid(self.pid, 0)
                return True
            self._chunks.append(chunk)

    def done(self) -> bool:
        return self._pump(0.0)

    def result(self, timeout: float = STATE_TIMEOUT) -> Any:
        if not self._pump(timeout):
            self.stop()
            pytest.fail(f"worker process {self.pid} did not finish within {timeout} s")
        data = b"".join(self._chunks)
        if not data:
            pytest.fail(f"worker process {self.pid} died (status {self._status:#x})")
        kind, value, tb = pickle.loads(data)
        if kind == "err":
            value.add_note(f"in worker process {self.pid}:\n{tb}")
            raise value
        return value

    def stop(self) -> None:
        if self._r is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.close(self._r)
        self._r = None
        with contextlib.suppress(ChildProcessError):
            _, self._status = os.waitpid(self.pid, 0)


def _proc_state(pid: int, tid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split(" ", 1)[0]


#: Arenas that must never be unmapped (see :meth:`Env.close`).
_KEPT: list[Any] = []


def _linked_here(prim: Any) -> bool:
    """Whether the calling thread holds ``prim`` (its node is on this thread's robust
    list: unmapping the memory would leave the list pointing at nothing)."""
    for name in ("_is_owned", "_is_writer"):
        check = getattr(prim, name, None)
        if check is not None:
            with contextlib.suppress(Exception):
                if check():
                    return True
    return False


class Env:
    """See the module docstring.  Build with :func:`open_env` (the ``env`` fixture)."""

    def __init__(self, kernel: str, kind: str) -> None:
        if kernel not in KERNELS or kind not in KINDS:
            raise ValueError(f"no environment {kernel}-{kind}")
        self.kernel, self.kind = kernel, kind
        self._next = 0
        self._prims: list[Primitive] = []
        self._shared: list[Shared] = []
        self._handles: list[Handle] = []
        self.clock: ManualClock | None = None
        if kernel == "native":
            from futex.native import Word

            self.arena: Any = mmap.mmap(-1, ARENA)  # MAP_SHARED | MAP_ANONYMOUS
            probe = Word(self.arena, 0)
            self.base = probe.address
            probe.release()
            self._syscall_ok: bool | None = None
        else:
            self.clock = ManualClock()
            self.emulator = LinuxKernel(clock=self.clock)
            self.process: Process = self.emulator.new_process()
            self.main_task = self.process.new_task()
            self.base = self.process.mmap(ARENA, shared=True)
            self.arena = Memory(self.process, self.base, ARENA)

    # -- memory ---------------------------------------------------------------------

    def _alloc(self, size: int) -> int:
        off = self._next
        self._next += -(-size // SLOT) * SLOT
        if self._next > ARENA:
            raise MemoryError("the test environment's arena is full")
        return off

    def make(self, cls: type[Any], *args: Any, **opts: Any) -> Any:
        """A new ``cls`` (``cls.create(arena, offset, *args, **opts)``)."""
        prim = cls.create(self.arena, self._alloc(cls.SIZE), *args, **opts)
        self._prims.append(prim)
        return prim

    def reserve(self, size: int) -> int:
        """The offset of ``size`` fresh (zeroed) bytes of the arena, 64-aligned."""
        return self._alloc(size)

    def memory(self) -> Any:
        """The arena as the calling worker passes it to ``X.create``/``X.attach``: the
        mmap natively, a :class:`Memory` of the calling task's process when emulated."""
        if self.kernel == "native":
            return self.arena
        return Memory(current_task().process, self.base, ARENA)

    def read(self, offset: int, n: int) -> bytes:
        if self.kernel == "native":
            return bytes(self.arena[offset : offset + n])
        return current_task().process.read(self.base + offset, n)

    def write(self, offset: int, data: bytes) -> None:
        """Plain bytes into the arena (to forge or corrupt a header)."""
        if self.kernel == "native":
            self.arena[offset : offset + len(data)] = data
        else:
            current_task().process.write(self.base + offset, data)

    def word(self, offset: int) -> Shared:
        """The u32 at ``offset`` (e.g. a primitive's init word) as a :class:`Shared`."""
        s = Shared(self, offset)
        self._shared.append(s)
        return s

    def shared(self, value: int = 0) -> Shared:
        """A new shared u32, initially ``value``."""
        s = Shared(self, self._alloc(4))
        s.set(value)
        self._shared.append(s)
        return s

    # -- workers --------------------------------------------------------------------

    def start(self, fn: Callable[..., Any], *args: Any) -> Handle:
        """Run ``fn(*args)`` as a worker of this environment's kind."""
        h: Handle
        if self.kernel == "native":
            h = _ThreadWorker(fn, args) if self.kind == "threads" else _ForkWorker(fn, args)
        elif self.kind == "threads":
            h = _ThreadWorker(fn, args, self.process.new_task())
        else:
            child = self.process.fork()
            h = _ThreadWorker(fn, args, child.new_task(), lambda a: self._attach_in(child, a))
        self._handles.append(h)
        return h

    def start_together(self, n: int, fn: Callable[..., Any], *args: Any) -> list[Handle]:
        """``n`` workers of ``fn(*args)`` released at once: each first sleeps at a
        shared gate, which opens when all ``n`` are asleep there (so that they overlap
        in time, however slow the start of a worker is)."""
        gate = self.shared()

        def gated(*a: Any) -> Any:
            gate.wait_for(1)
            return fn(*a)

        gated.__name__ = fn.__name__
        handles = [self.start(gated, *args) for _ in range(n)]
        for h in handles:
            self.wait_blocked(h, f"worker {h.tid} waits at the start gate")
        gate.set(1)
        return handles

    def _attach_in(self, child: Process, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """The arguments as the emulated child sees them: its own primitive objects."""
        mem = Memory(child, self.base, ARENA)
        return tuple(
            type(a)._public().attach(mem, a.offset) if isinstance(a, Primitive) else a
            for a in args
        )

    def tid(self) -> int:
        """The calling thread's TID on this environment's kernel."""
        return current_task().tid if self.kernel == "emulated" else threading.get_native_id()

    # -- state ----------------------------------------------------------------------

    def blocked(self, h: Handle) -> bool:
        """Whether worker ``h`` is asleep in the kernel on this environment's memory."""
        if h.task is not None:
            return h.task.blocked is not None
        pid, tid = (os.getpid(), h.tid) if self.kind == "threads" else (h.pid, h.pid)
        if _proc_state(pid, tid) != "S":
            return False
        if self._syscall_ok is not False:
            try:
                with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                    fields = f.read().split()
                self._syscall_ok = True
            except OSError:
                if self._syscall_ok or _proc_state(pid, tid) is None:
                    return False  # the task has gone (the file could be read before)
                self._syscall_ok = False  # not readable here: the fallback from now on
            else:
                if len(fields) < 2 or fields[0] != str(_syscall_futex()):
                    return False
                return self.base <= int(fields[1], 16) < self.base + ARENA
        try:
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                wchan = f.read().strip()
        except OSError:
            wchan = ""
        return "futex" in wchan or wchan in ("", "0")

    def wait_blocked(self, h: Handle, what: str) -> None:
        """Wait (bounded) until ``h`` sleeps in the kernel; fail if it finishes instead."""
        wait_until(lambda: self.blocked(h) or h.done(), what)
        if not self.blocked(h) and h.done():
            pytest.fail(f"the worker finished instead of blocking ({what}): {h.result(0)!r}")

    @property
    def manual_clock(self) -> bool:
        return self.clock is not None

    def advance(self, seconds: float) -> None:
        """Move the emulated kernel's clock (its timers fire in this thread)."""
        if self.clock is None:
            raise RuntimeError("the native kernel has no manual clock: skip timed steps")
        self.clock.advance(round(seconds * 1e9))

    def monotonic(self) -> float:
        """The kernel's CLOCK_MONOTONIC in seconds."""
        if self.clock is None:
            return time.monotonic()
        return self.clock.now(ClockId.MONOTONIC) / 1e9

    # -- teardown -------------------------------------------------------------------

    def close(self) -> None:
        for h in self._handles:
            h.stop()
        stuck = [h for h in self._handles if not h.done()]
        if self.kernel == "emulated":
            if not stuck:
                for p in list(self.emulator.processes.values()):
                    p.futex.check_invariants()
            return
        if stuck or any(_linked_here(p) for p in self._prims):
            # a live thread may still touch the arena, or a lock of it is still on this
            # thread's robust list (a failed test): keep it mapped for good
            _KEPT.append(self.arena)
            return
        for prim in self._prims:
            prim.close()
        for s in self._shared:
            s.release()
        with contextlib.suppress(BufferError):
            self.arena.close()


@contextlib.contextmanager
def open_env(kernel: str, kind: str) -> Iterator[Env]:
    """An :class:`Env`; on the emulated kernel the calling thread drives its main task."""
    env = Env(kernel, kind)
    try:
        if env.kernel == "emulated":
            with bind(env.main_task):
                yield env
        else:
            yield env
    finally:
        env.close()
