"""Checked futex words: every atomic and futex call is a scheduling point.

A scenario's ``setup(env)`` builds its state with :class:`Env`:

- ``env.word(name, initial=0, private=True)`` -> a :class:`CheckedWord`, a
  :class:`~futex.word.FutexWord` living in the schedule's emulated process.  It is bound to
  whichever task is running: each call is made by that task (its futex calls are that
  task's futex(2) calls on :mod:`futex.linux`).  ``peek()`` reads it without a scheduling
  point, for invariants and final checks.
- ``env.memory(size, name=None)`` -> a :class:`futex.sync.emulated.Memory` whose primitives
  (``Mutex.create(env.memory(64))``...) get :class:`PointWord` s: futex.sync runs
  unchanged, one scheduling point per atomic and futex call it makes.
- ``env.clock``: the schedule's :class:`~futex.check.machine.CheckClock` (virtual time).

A call from a task (``word.cas(0, 1)``) goes: scheduling point (the task parks until the
schedule picks it: :meth:`Scheduler.point`), the operation on the emulated kernel, the
step recorded (:meth:`Scheduler.done`, or :meth:`Scheduler.raised`).  Outside a task --
in ``setup``, an invariant, the final check -- a call is made at once by task 0, with no
scheduling point and no step; a futex call that would block there is an error.

Python state the tasks share outside words (lists, attributes) is invisible to the
checker: no scheduling point comes before it, so no interleaving of it is explored.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from futex.linux.kernel import Process, Task
from futex.linux.word import EmulatedWord
from futex.sync.emulated import Memory
from futex.word import ALL

if TYPE_CHECKING:
    from futex.check.machine import CheckClock, Machine
    from futex.word import FutexWord

__all__ = ["CheckedMemory", "CheckedWord", "Env", "PointWord", "Scheduler"]

_T = TypeVar("_T")
_MEMORY_ALIGN = 64


class Scheduler(Protocol):
    """What checked words need of the schedule running them (:mod:`futex.check.runtime`)."""

    #: The index of the task whose code runs now (0 outside tasks).
    index: int
    #: Whether a task's code runs now (its calls are scheduling points).
    in_task: bool
    #: Whether futex.sync primitives run (the bound task follows the running task).
    sync: bool
    process: Process
    ktasks: list[Task]
    machine: Machine
    clock: CheckClock

    def point(self, word: PointWord, kind: str, args: tuple[object, ...]) -> Any:
        """Park the running task before ``kind`` on ``word`` until the schedule picks it;
        returns the task's record, for :meth:`done`."""
        ...

    def done(self, task: Any, raw: object) -> None:
        """Record the step ``task`` (from :meth:`point`) just made (raw result)."""
        ...

    def raised(self, task: Any, error: BaseException) -> None:
        """Record the step ``task`` just made, which raised ``error``."""
        ...

    def alloc(self, size: int, align: int) -> int:
        """``size`` zeroed bytes of the schedule's arena, aligned; their address."""
        ...

    def register(self, name: str, addr: int) -> None:
        """Show the word at ``addr`` as ``name`` in the trace (once per address)."""
        ...


def _name_of(w: object) -> str:
    name = getattr(w, "name", None)
    if isinstance(name, str):
        return name
    addr = getattr(w, "addr", None)
    return f"{addr:#x}" if isinstance(addr, int) else repr(w)


class PointWord(EmulatedWord):
    """An :class:`~futex.linux.word.EmulatedWord` whose calls are scheduling points of
    ``run`` (see the module docstring); ``name`` is how the trace shows it."""

    __slots__ = ("_run", "name")

    def __init__(self, run: Scheduler, task: Task, addr: int, name: str, *, private: bool) -> None:
        super().__init__(task, addr, private=private)
        self._run = run
        self.name = name

    def __repr__(self) -> str:
        return f"<PointWord {self.name} tid={self.task.tid}>"

    def on(self, task: Task) -> PointWord:
        if task.process is not self.process:
            raise ValueError(f"task {task.tid} is not in the word's process {self.process.pid}")
        return PointWord(self._run, task, self.addr, self.name, private=self.private)

    def _do(self, kind: str, args: tuple[object, ...], fn: Callable[[], _T]) -> _T:
        """``fn()`` as a step: a scheduling point first, the step recorded after."""
        run = self._run
        if not run.in_task:
            return fn()
        t = run.point(self, kind, args)
        try:
            r = fn()
        except BaseException as exc:
            run.raised(t, exc)
            raise
        run.done(t, r)
        return r

    def _atomic0(self, kind: str, fn: Callable[[EmulatedWord], int]) -> int:
        """:meth:`_do` for an atomic without arguments (a load).  The atomics come in
        one helper per arity: a call through ``*args`` costs a C-level frame, which
        every greenlet switch then copies."""
        run = self._run
        if not run.in_task:
            return fn(self)
        t = run.point(self, kind, ())
        try:
            r = fn(self)
        except BaseException as exc:
            run.raised(t, exc)
            raise
        run.done(t, r)
        return r

    def _atomic1(self, kind: str, fn: Callable[[EmulatedWord, int], _T], value: int) -> _T:
        """:meth:`_atomic0` with one argument."""
        run = self._run
        if not run.in_task:
            return fn(self, value)
        t = run.point(self, kind, (value,))
        try:
            r = fn(self, value)
        except BaseException as exc:
            run.raised(t, exc)
            raise
        run.done(t, r)
        return r

    def _atomic2(
        self, kind: str, fn: Callable[[EmulatedWord, int, int], int], a: int, b: int
    ) -> int:
        """:meth:`_atomic0` with two arguments (a CAS)."""
        run = self._run
        if not run.in_task:
            return fn(self, a, b)
        t = run.point(self, kind, (a, b))
        try:
            r = fn(self, a, b)
        except BaseException as exc:
            run.raised(t, exc)
            raise
        run.done(t, r)
        return r

    # -- atomics ---------------------------------------------------------------------------

    def load(self) -> int:
        return self._atomic0("load", EmulatedWord.load)

    def store(self, value: int, /) -> None:
        self._atomic1("store", EmulatedWord.store, value)

    def cas(self, expected: int, new: int, /) -> int:
        return self._atomic2("cas", EmulatedWord.cas, expected, new)

    def swap(self, value: int, /) -> int:
        return self._atomic1("swap", EmulatedWord.swap, value)

    def fetch_add(self, value: int, /) -> int:
        return self._atomic1("fetch_add", EmulatedWord.fetch_add, value)

    def fetch_sub(self, value: int, /) -> int:
        return self._atomic1("fetch_sub", EmulatedWord.fetch_sub, value)

    def fetch_or(self, value: int, /) -> int:
        return self._atomic1("fetch_or", EmulatedWord.fetch_or, value)

    def fetch_and(self, value: int, /) -> int:
        return self._atomic1("fetch_and", EmulatedWord.fetch_and, value)

    def fetch_xor(self, value: int, /) -> int:
        return self._atomic1("fetch_xor", EmulatedWord.fetch_xor, value)

    # -- futex calls -----------------------------------------------------------------------

    def wait(
        self,
        expected: int,
        timeout: float | None = None,
        *,
        bitset: int | None = None,
        private: bool | None = None,
    ) -> bool:
        args: tuple[object, ...] = (expected,)
        if timeout is not None:
            args += (f"timeout={timeout:g}",)
        if bitset is not None:
            args += (f"bitset={bitset:#x}",)
        return self._do(
            "wait",
            args,
            lambda: EmulatedWord.wait(self, expected, timeout, bitset=bitset, private=private),
        )

    def wake(self, n: int = 1, *, bitset: int | None = None, private: bool | None = None) -> int:
        args: tuple[object, ...] = (n,) if bitset is None else (n, f"bitset={bitset:#x}")
        return self._do(
            "wake", args, lambda: EmulatedWord.wake(self, n, bitset=bitset, private=private)
        )

    def requeue(
        self,
        to: EmulatedWord,
        wake: int = 1,
        requeue: int = ALL,
        *,
        private: bool | None = None,
    ) -> int:
        args = (f"to={_name_of(to)}", wake, "ALL" if requeue == ALL else requeue)
        return self._do(
            "requeue",
            args,
            lambda: EmulatedWord.requeue(self, to, wake, requeue, private=private),
        )

    def cmp_requeue(
        self,
        to: EmulatedWord,
        expected: int,
        wake: int = 1,
        requeue: int = ALL,
        *,
        private: bool | None = None,
    ) -> int:
        args = (f"to={_name_of(to)}", expected, wake, "ALL" if requeue == ALL else requeue)
        return self._do(
            "cmp_requeue",
            args,
            lambda: EmulatedWord.cmp_requeue(self, to, expected, wake, requeue, private=private),
        )

    def wake_op(
        self,
        other: EmulatedWord,
        op: int,
        oparg: int,
        cmp: int,
        cmparg: int,
        *,
        wake: int = 1,
        wake_other: int = 1,
        private: bool | None = None,
    ) -> int:
        args = (f"other={_name_of(other)}", op, oparg, cmp, cmparg, wake, wake_other)
        return self._do(
            "wake_op",
            args,
            lambda: EmulatedWord.wake_op(
                self, other, op, oparg, cmp, cmparg, wake=wake, wake_other=wake_other,
                private=private,
            ),
        )  # fmt: skip

    def lock_pi(self, timeout: float | None = None, *, private: bool | None = None) -> bool:
        args: tuple[object, ...] = () if timeout is None else (f"timeout={timeout:g}",)
        return self._do(
            "lock_pi", args, lambda: EmulatedWord.lock_pi(self, timeout, private=private)
        )

    def lock_pi2(self, timeout: float | None = None, *, private: bool | None = None) -> bool:
        args: tuple[object, ...] = () if timeout is None else (f"timeout={timeout:g}",)
        return self._do(
            "lock_pi2", args, lambda: EmulatedWord.lock_pi2(self, timeout, private=private)
        )

    def trylock_pi(self, *, private: bool | None = None) -> bool:
        return self._do("trylock_pi", (), lambda: EmulatedWord.trylock_pi(self, private=private))

    def unlock_pi(self, *, private: bool | None = None) -> None:
        self._do("unlock_pi", (), lambda: EmulatedWord.unlock_pi(self, private=private))


def _unwrap(w: object, index: int) -> EmulatedWord:
    if isinstance(w, CheckedWord):
        return w.on_task(index)
    if isinstance(w, EmulatedWord):
        return w
    raise TypeError(f"the other word must be a checked word, not {type(w).__name__}")


class CheckedWord:
    """A futex word of a schedule, made by ``env.word``: its calls are made by the task
    that runs them (see the module docstring)."""

    __slots__ = ("_on", "_private", "_run", "addr", "name")

    def __init__(self, run: Scheduler, name: str, addr: int, *, private: bool) -> None:
        self._run = run
        self.name = name
        self.addr = addr
        self._private = private
        # The word as each task makes its calls: kept by the machine across schedules (a
        # schedule's words sit at the same addresses every time) and bound to this run.
        words = run.machine.words
        key = (addr, name, private)
        on = words.get(key)
        if on is None:
            if len(words) >= 4096:
                words.clear()
            on = words[key] = [None] * len(run.ktasks)
        else:
            for w in on:
                if w is not None:
                    w._run = run
        self._on: list[PointWord | None] = on

    def __repr__(self) -> str:
        return f"<CheckedWord {self.name} value={self.peek()}>"

    @property
    def private(self) -> bool:
        return self._private

    def peek(self) -> int:
        """The value now, read without a scheduling point."""
        return self._run.process.load_u32(self.addr)

    def on_task(self, index: int) -> PointWord:
        """This word as task ``index`` makes its calls."""
        w = self._on[index]
        if w is None:
            run = self._run
            w = self._on[index] = PointWord(
                run, run.ktasks[index], self.addr, self.name, private=self._private
            )
        return w

    def _w(self) -> PointWord:
        i = self._run.index
        w = self._on[i]
        return w if w is not None else self.on_task(i)

    def load(self) -> int:
        return self._w()._atomic0("load", EmulatedWord.load)

    def store(self, value: int, /) -> None:
        self._w()._atomic1("store", EmulatedWord.store, value)

    def cas(self, expected: int, new: int, /) -> int:
        return self._w()._atomic2("cas", EmulatedWord.cas, expected, new)

    def swap(self, value: int, /) -> int:
        return self._w()._atomic1("swap", EmulatedWord.swap, value)

    def fetch_add(self, value: int, /) -> int:
        return self._w()._atomic1("fetch_add", EmulatedWord.fetch_add, value)

    def fetch_sub(self, value: int, /) -> int:
        return self._w()._atomic1("fetch_sub", EmulatedWord.fetch_sub, value)

    def fetch_or(self, value: int, /) -> int:
        return self._w()._atomic1("fetch_or", EmulatedWord.fetch_or, value)

    def fetch_and(self, value: int, /) -> int:
        return self._w()._atomic1("fetch_and", EmulatedWord.fetch_and, value)

    def fetch_xor(self, value: int, /) -> int:
        return self._w()._atomic1("fetch_xor", EmulatedWord.fetch_xor, value)

    def wait(
        self,
        expected: int,
        timeout: float | None = None,
        *,
        bitset: int | None = None,
        private: bool | None = None,
    ) -> bool:
        return self._w().wait(expected, timeout, bitset=bitset, private=private)

    def wake(self, n: int = 1, *, bitset: int | None = None, private: bool | None = None) -> int:
        return self._w().wake(n, bitset=bitset, private=private)

    def requeue(
        self, to: CheckedWord, wake: int = 1, requeue: int = ALL, *, private: bool | None = None
    ) -> int:
        i = self._run.index
        return self._w().requeue(_unwrap(to, i), wake, requeue, private=private)

    def cmp_requeue(
        self,
        to: CheckedWord,
        expected: int,
        wake: int = 1,
        requeue: int = ALL,
        *,
        private: bool | None = None,
    ) -> int:
        i = self._run.index
        return self._w().cmp_requeue(_unwrap(to, i), expected, wake, requeue, private=private)

    def wake_op(
        self,
        other: CheckedWord,
        op: int,
        oparg: int,
        cmp: int,
        cmparg: int,
        *,
        wake: int = 1,
        wake_other: int = 1,
        private: bool | None = None,
    ) -> int:
        o = _unwrap(other, self._run.index)
        return self._w().wake_op(
            o, op, oparg, cmp, cmparg, wake=wake, wake_other=wake_other, private=private
        )

    def lock_pi(self, timeout: float | None = None, *, private: bool | None = None) -> bool:
        return self._w().lock_pi(timeout, private=private)

    def lock_pi2(self, timeout: float | None = None, *, private: bool | None = None) -> bool:
        return self._w().lock_pi2(timeout, private=private)

    def trylock_pi(self, *, private: bool | None = None) -> bool:
        return self._w().trylock_pi(private=private)

    def unlock_pi(self, *, private: bool | None = None) -> None:
        self._w().unlock_pi(private=private)


class CheckedMemory(Memory):
    """Memory of a schedule (``env.memory``): futex.sync primitives created in it use
    :class:`PointWord` s named ``<name>+<offset>``."""

    __slots__ = ("_run", "name")

    def __init__(self, run: Scheduler, addr: int, size: int, name: str) -> None:
        super().__init__(run.process, addr, size)
        self._run = run
        self.name = name

    def __repr__(self) -> str:
        return f"<CheckedMemory {self.name} {self.size} bytes>"

    def word(self, task: Task, addr: int) -> EmulatedWord:
        name = f"{self.name}+{addr - self.addr}"
        self._run.register(name, addr)
        return PointWord(self._run, task, addr, name, private=False)


class Env:
    """What ``setup(env)`` builds a schedule's state with (see the module docstring)."""

    def __init__(self, run: Scheduler) -> None:
        self._run = run
        self._names: set[str] = set()
        self._memories = 0
        #: The schedule's virtual clock (a ManualClock): ``env.clock.now(ClockId.MONOTONIC)``.
        self.clock = run.clock

    def _claim(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError("a word or memory needs a name (a non-empty str)")
        if name in self._names:
            raise ValueError(f"the name {name!r} is taken in this scenario")
        self._names.add(name)

    def word(self, name: str, initial: int = 0, private: bool = True) -> CheckedWord:
        """A futex word holding ``initial``; ``private``: its futex calls' default."""
        self._claim(name)
        run = self._run
        addr = run.alloc(4, 4)
        if initial:
            run.process.store_u32(addr, initial & 0xFFFF_FFFF)
        run.register(name, addr)
        return CheckedWord(run, name, addr, private=private)

    def memory(self, size: int, name: str | None = None) -> Memory:
        """``size`` zeroed bytes (64-byte aligned) for futex.sync primitives:
        ``Mutex.create(env.memory(64))``."""
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"a memory needs a positive size, got {size!r}")
        if name is None:
            name = f"mem{self._memories}"
        self._claim(name)
        self._memories += 1
        run = self._run
        run.sync = True
        run.machine.sync = True
        return CheckedMemory(run, run.alloc(size, _MEMORY_ALIGN), size, name)

    @staticmethod
    def namespace(**fields: Any) -> SimpleNamespace:
        """``SimpleNamespace(**fields)``: a convenient state object."""
        return SimpleNamespace(**fields)


if TYPE_CHECKING:  # CheckedWord implements the word protocol (checked by mypy --strict)

    def _conforms(w: CheckedWord) -> FutexWord:
        return w
