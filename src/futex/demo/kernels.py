"""The futex calls the demo workload needs, one adapter per kernel personality.

The mutex, condition variable and ring of :mod:`futex.demo.sync` are written once; what
differs between Linux, Zircon and LiteOS-A is behind a :class:`FutexOps` adapter bound to
one emulated process:

===========================  ==================  =====================  ====================
adapter call                 Linux futex(2)      Zircon                 LiteOS-A SysFutex
===========================  ==================  =====================  ====================
``wait(t, a, v, owner)``     ``FUTEX_WAIT``;     ``zx_futex_wait``      ``FUTEX_WAIT``,
                             mismatch EAGAIN     naming ``owner``;      forever; mismatch
                                                 mismatch BAD_STATE     EBADF
``wake(t, a, n)``            ``FUTEX_WAKE``      ``zx_futex_wake``      ``FUTEX_WAKE``
                             (count)             (no count)             (0, or EBADF: none)
``wake_owner(t, a)``         ``FUTEX_WAKE`` 1    ``zx_futex_wake_       ``FUTEX_WAKE`` 1
                                                 single_owner``
``requeue(t, a, v, b, o)``   ``FUTEX_CMP_        ``zx_futex_requeue``   ``FUTEX_REQUEUE``:
wake 1, move the rest        REQUEUE``           (compares ``v``,       no compare value
                                                 names owner ``o``)
mutex word: uncontested /    1 / 2               the owner's handle /   1 / 2
contested                                        handle, bit 0 clear
===========================  ==================  =====================  ====================

Every call is made on the private futex of the adapter's process, blocks the calling
Python thread while the kernel says it sleeps, and raises :class:`FutexCallError` on any
result a correct kernel cannot give the algorithm.  ``wait`` returns whether the caller
slept (False: the word no longer held ``v``).  ``wake`` and ``requeue`` report how many
waiters the kernel woke (and moved) when the personality says so, ``None`` when it does
not (Zircon answers ZX_OK only; a successful LiteOS REQUEUE answers 0).

Besides the calls, an adapter creates and names the worker tasks (with the priorities
its personality makes visible), reads the mutex word protocol (:meth:`FutexOps.locked_value`,
:meth:`FutexOps.contested`, :meth:`FutexOps.owner_of_word`), and observes: calls by name,
the core's statistics, the kernel's invariants, a live status line and the closing report
lines.  This module holds the base class and the Linux adapter; Zircon's is in
:mod:`futex.demo.zircon`, LiteOS's in :mod:`futex.demo.liteos`.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from futex.kernel import FutexManager, FutexStats
from futex.linux import LinuxKernel, Process, Task, abi
from futex.memory import AddressSpace

__all__ = [
    "INT_MAX",
    "Check",
    "FutexCallError",
    "FutexOps",
    "LinuxOps",
    "TaskT",
    "View",
]

#: "All of them", as a futex count (C's ``INT_MAX``).
INT_MAX = 0x7FFFFFFF

_U32 = 0xFFFFFFFF

TaskT = TypeVar("TaskT")

FUTEX_WAIT_PRIVATE = abi.FUTEX_WAIT | abi.FUTEX_PRIVATE_FLAG
FUTEX_WAKE_PRIVATE = abi.FUTEX_WAKE | abi.FUTEX_PRIVATE_FLAG
FUTEX_CMP_REQUEUE_PRIVATE = abi.FUTEX_CMP_REQUEUE | abi.FUTEX_PRIVATE_FLAG


class FutexCallError(RuntimeError):
    """A futex call returned something the algorithm cannot get from a correct kernel."""


@dataclass(frozen=True)
class Check:
    """One verdict of a final check."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class View:
    """What an adapter shows of its kernel while the workload runs: one ``status`` line
    (plain output) and ``detail`` lines (the live display)."""

    status: str = ""
    detail: tuple[str, ...] = ()


class FutexOps(ABC, Generic[TaskT]):
    """The futex calls of the demo workload on one process of one kernel (module
    docstring); ``TaskT`` is the personality's thread type.

    Memory is the process's :class:`~futex.memory.AddressSpace`: loads, stores and
    atomic read-modify-writes of aligned u32 words, which the algorithms use directly.
    """

    #: The personality's name (``--kernel``).
    kernel: ClassVar[str]
    #: What the header says the workload runs on.
    title: ClassVar[str]

    def __init__(self, space: AddressSpace) -> None:
        self.space = space
        #: Named futex words to observe (:meth:`watch`).
        self.words: dict[str, int] = {}
        #: ``time.perf_counter()`` when the workload started (:meth:`started`).
        self.t0 = time.perf_counter()
        self._names: dict[int, str] = {}

    # -- memory ------------------------------------------------------------------------

    @abstractmethod
    def mmap(self, length: int) -> int:
        """Map ``length`` bytes of private, zeroed, read-write memory; its address."""

    def load(self, addr: int) -> int:
        return self.space.load_u32(addr)

    def store(self, addr: int, value: int) -> None:
        self.space.store_u32(addr, value)

    def cas(self, addr: int, old: int, new: int) -> int:
        """Compare-and-swap; returns the value seen (``old`` when it succeeded)."""
        return self.space.cas_u32(addr, old, new)

    def update(self, addr: int, fn: Callable[[int], int]) -> int:
        """Atomically store ``fn(old)``; returns ``old``."""
        return self.space.update_u32(addr, fn)

    # -- tasks -------------------------------------------------------------------------

    @abstractmethod
    def new_task(self, name: str, role: str = "") -> TaskT:
        """A new, runnable task called ``name``; ``role`` (``"producer"`` /
        ``"consumer"``) picks its priority where the personality has them."""

    @abstractmethod
    def task_id(self, task: TaskT) -> int:
        """The kernel's id for ``task`` (tid, koid)."""

    @abstractmethod
    def blocked(self, task: TaskT) -> object | None:
        """The wait ``task`` is blocked in, if any."""

    def name_of(self, task: TaskT) -> str:
        return self._names.get(self.task_id(task), f"task {self.task_id(task)}")

    def describe(self, task: TaskT) -> str:
        """``name (tid n)`` for reports."""
        return f"{self.name_of(task)} ({self.id_label} {self.task_id(task)})"

    #: What the kernel calls a task id.
    id_label: ClassVar[str] = "tid"

    def _named(self, task: TaskT, name: str) -> TaskT:
        self._names[self.task_id(task)] = name
        return task

    # -- the mutex word protocol (futex.demo.sync.FutexMutex) ---------------------------

    def locked_value(self, task: TaskT) -> int:
        """The mutex word of ``task`` holding the lock, uncontested."""
        return 1

    def contested(self, value: int) -> int:
        """The locked word ``value`` marked contested (waiters may sleep on it)."""
        return 2

    def owner_of_word(self, value: int) -> int:
        """The owner a waiter names to the kernel for a locked word (0: none)."""
        return 0

    # -- futex calls -------------------------------------------------------------------

    @abstractmethod
    def wait(self, task: TaskT, addr: int, expected: int, owner: int = 0) -> bool:
        """Sleep while the word at ``addr`` holds ``expected``; False if it did not."""

    @abstractmethod
    def wake(self, task: TaskT, addr: int, n: int) -> int | None:
        """Wake up to ``n`` waiters; how many, if the kernel says."""

    def wake_owner(self, task: TaskT, addr: int) -> None:
        """A mutex unlock's wake: one waiter (Zircon: who then owns the futex)."""
        self.wake(task, addr, 1)

    @abstractmethod
    def requeue(
        self, task: TaskT, addr: int, expected: int, target: int, owner: int
    ) -> tuple[bool, int | None]:
        """Wake one waiter of ``addr`` and move the others to ``target`` (whose owner,
        where the kernel records one, is ``owner``).  ``(False, None)`` if the kernel
        compared the word with ``expected`` and it differed; else ``(True, woken + moved
        if the kernel says)``."""

    # -- observation -------------------------------------------------------------------

    def watch(self, words: Mapping[str, int]) -> None:
        """Name the futex words the reports talk about (``mutex``, ...)."""
        self.words.update(words)

    def started(self) -> None:
        """The workers are about to start: timelines count from now."""
        self.t0 = time.perf_counter()

    @property
    @abstractmethod
    def manager(self) -> FutexManager:
        """The core futex manager holding this process's waiters."""

    def stats(self) -> FutexStats:
        return self.manager.stats()

    @abstractmethod
    def calls(self) -> Counter[str]:
        """Futex calls so far, by name."""

    def total_calls(self) -> int:
        return sum(self.calls().values())

    @abstractmethod
    def check_invariants(self) -> None:
        """Assert the kernel's invariants (AssertionError when one fails)."""

    @abstractmethod
    def bucket_index(self, addr: int) -> int:
        """The hash bucket the futex word at ``addr`` lives in."""

    def view(self) -> View:
        """The kernel state worth showing now (sampled by the watcher every tick)."""
        return View()

    def extra_checks(self) -> list[Check]:
        """The personality's own end-of-run checks."""
        return []

    def report_lines(self) -> list[str]:
        """The personality's closing report (after the common lines)."""
        return []

    def facts(self) -> dict[str, int]:
        """Counts the adapter recorded (for tests and summaries)."""
        return {}


class CallCounter:
    """Futex calls by name, counted by many threads (for personalities whose kernel does
    not count them itself)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counts)


def expect(result: int, what: str, *allowed: int) -> int:
    """``result`` if it is >= 0 or one of ``allowed``; else raise :class:`FutexCallError`."""
    if result >= 0 or result in allowed:
        return result
    raise FutexCallError(f"{what} returned {result}")


# -- Linux -------------------------------------------------------------------------------


class LinuxOps(FutexOps[Task]):
    """futex(2) of :mod:`futex.linux`, private futexes (``FUTEX_PRIVATE_FLAG``).  Every
    task is SCHED_OTHER (Linux's plain futexes ignore priorities)."""

    kernel = "linux"
    title = "Linux futex(2)"

    def __init__(self, process: Process | None = None) -> None:
        self.process = process if process is not None else LinuxKernel().new_process()
        self.linux = self.process.kernel
        super().__init__(self.process.space)

    def mmap(self, length: int) -> int:
        return self.process.mmap(length)

    def new_task(self, name: str, role: str = "") -> Task:
        return self._named(self.process.new_task(), name)

    def task_id(self, task: Task) -> int:
        return task.tid

    def blocked(self, task: Task) -> object | None:
        return task.blocked

    def wait(self, task: Task, addr: int, expected: int, owner: int = 0) -> bool:
        r = task.syscall_futex(addr, FUTEX_WAIT_PRIVATE, expected, 0, 0, 0)
        return expect(r, "FUTEX_WAIT", -abi.EAGAIN, -abi.EINTR) == 0

    def wake(self, task: Task, addr: int, n: int) -> int:
        return expect(task.syscall_futex(addr, FUTEX_WAKE_PRIVATE, n, 0, 0, 0), "FUTEX_WAKE")

    def requeue(
        self, task: Task, addr: int, expected: int, target: int, owner: int
    ) -> tuple[bool, int | None]:
        r = task.syscall_futex(addr, FUTEX_CMP_REQUEUE_PRIVATE, 1, INT_MAX, target, expected)
        if r == -abi.EAGAIN:
            return False, None
        return True, expect(r, "FUTEX_CMP_REQUEUE")

    @property
    def manager(self) -> FutexManager:
        return self.process.futex

    def calls(self) -> Counter[str]:
        return self.linux.calls()

    def check_invariants(self) -> None:
        self.process.futex.check_invariants()

    def bucket_index(self, addr: int) -> int:
        futex = self.process.futex
        return futex.bucket_index(futex.key(self.process.space, addr, True))
