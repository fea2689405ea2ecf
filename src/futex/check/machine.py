"""The emulated machine a schedule runs on, reused from schedule to schedule.

Every schedule starts from the same state: one :class:`~futex.linux.LinuxKernel` with one
process (pid 1), ``n`` tasks (tids 1..n), an arena of zeroed memory at the same address
where :class:`~futex.check.words.Env` places the scenario's words and memories, and a
fresh :class:`CheckClock` at the same instant.  Building that costs about 100 µs (a
``LinuxKernel`` with Linux's default 2 x 512 eager buckets, 1.5 ms), so a machine is kept
in a pool per task count and **reset** after each schedule (a few µs):

1. every wait still in flight is killed (the kernel dequeues its waiter, cancels its
   timer, drops a PI state nobody waits on);
2. the machine is checked to be back where it started -- no waiter queued, no PI state
   owned or boost left, each task's robust list head where it was, no task exited or
   created, no mapping added; anything else retires the machine and the next schedule
   builds a fresh one, identical to the first;
3. the arena bytes the schedule used are zeroed, the robust list head pages restored
   (futex.sync links and unlinks its locks there), the clock is replaced.

Each task's robust list head is registered when the machine is built, as glibc does at
thread start (futex.sync would register it at the task's first lock).

A machine's kernel has 16 buckets per table instead of Linux's ``roundup_pow_of_two(256 *
CPUs)``: which keys share a bucket changes no result, only lock contention, and there is
none in a schedule (one task runs at a time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from futex.kernel import ClockId, ManualClock, Timer
from futex.kernel.blocking import block
from futex.linux import LinuxKernel
from futex.linux.facts import LinuxFacts
from futex.linux.kernel import Process, Task
from futex.linux.word import _scratch_of
from futex.sync.emulated import owner_of
from futex.sync.owner import ROBUST_LIST

__all__ = ["ARENA_SIZE", "CheckClock", "Machine", "acquire", "release"]

#: Bytes of zeroed memory every schedule may place words and memories in.
ARENA_SIZE = 64 * 1024
_BUCKETS = 16
_FACTS = LinuxFacts()


class CheckClock(ManualClock):
    """A :class:`~futex.kernel.ManualClock` that knows its pending timers cheaply: the
    checker asks after every step whether a timer could fire."""

    def __init__(self) -> None:
        super().__init__()
        self.armed: list[Timer] = []

    def call_at(self, clock: ClockId, deadline: int, fn: Callable[[], None]) -> Timer:
        timer = super().call_at(clock, deadline, fn)
        if timer.active:
            self.armed.append(timer)
        return timer

    def has_pending(self) -> bool:
        """Whether a timer is armed and not cancelled."""
        armed = self.armed
        if not armed:
            return False
        live = [t for t in armed if t.active]
        if len(live) != len(armed):
            self.armed = live
        return bool(live)

    def until_next(self) -> int | None:
        """Nanoseconds until the earliest pending timer is due (0 if overdue)."""
        if not self.has_pending():
            return None
        return max(0, min(t.deadline - self.now(t.clock) for t in self.armed))

    def fire_next(self) -> int:
        """Move the clock to the earliest pending deadline and fire every timer due then;
        returns how far it moved (ns)."""
        delta = self.until_next()
        if delta is None:
            raise RuntimeError("no timer is pending")
        self.advance(delta)
        self.has_pending()  # prune the fired ones
        return delta


class Machine:
    """A kernel, its process, ``ntasks`` tasks and the arena (see the module docstring)."""

    def __init__(self, ntasks: int) -> None:
        self.clock = CheckClock()
        self.kernel = LinuxKernel(clock=self.clock, buckets=_BUCKETS, facts=_FACTS)
        self.process: Process = self.kernel.new_process()
        self.tasks: list[Task] = [self.process.new_task() for _ in range(ntasks)]
        self.arena = self.process.mmap(ARENA_SIZE)
        self.process.write(self.arena, bytes(ARENA_SIZE))  # every arena page present
        self._robust: list[tuple[int, bytes]] = []
        for t in self.tasks:
            _scratch_of(t)  # each task's timespec page, mapped now: the same layout always
            # The robust list head futex.sync registers at a task's first lock, made now
            # (glibc registers it at thread start): a schedule using futex.sync changes
            # only its page, which reset() restores.
            if owner_of(t).mode == ROBUST_LIST:
                page = t.robust_list & ~4095
                self._robust.append((page, self.process.read(page, 4096)))
        self._heads = [t.robust_list for t in self.tasks]
        self._mappings = len(self.process.space.mappings)
        self._ntasks = len(self.process.tasks)
        #: Arena bytes handed out in this schedule (zeroed again on reset).
        self.used = 0
        #: Whether futex.sync ran in this schedule (robust list heads to restore).
        self.sync = False
        #: The checked words' per-task words by (address, name, private), reused by the
        #: next schedule's words at the same place (:class:`futex.check.words.CheckedWord`).
        self.words: dict[tuple[int, str, bool], list[Any]] = {}

    def alloc(self, size: int, align: int) -> int:
        """``size`` bytes of the arena at a multiple of ``align`` (zeroed: the arena is
        zeroed on reset); their address."""
        at = -(-self.used // align) * align
        if at + size > ARENA_SIZE:
            raise MemoryError(f"the scenario's words and memories exceed {ARENA_SIZE} bytes")
        self.used = at + size
        return self.arena + at

    def fresh_clock(self) -> CheckClock:
        """A new clock at the start instant, installed as the kernel's."""
        self.clock = CheckClock()
        self.kernel.clock = self.clock
        return self.clock

    def reset(self) -> bool:
        """Back to the start state; ``False`` if that is not possible (retire it)."""
        for t in self.tasks:
            pending = t.blocked
            if pending is not None:
                pending.kill()
            t.blocker = block
        for t in self.tasks:
            if (
                t.blocked is not None
                or not t.alive
                or t.pi_states
                or t.pi_blocked_on is not None
                or t.prio != t.normal_prio
                or t.clear_child_tid
            ):
                return False
            t.calls.clear()
        if [t.robust_list for t in self.tasks] != self._heads:
            return False
        process = self.process
        if (
            len(process.tasks) != self._ntasks
            or len(self.kernel.processes) != 1
            or len(process.space.mappings) != self._mappings
        ):
            return False
        if self.used:
            process.write(self.arena, bytes(self.used))
            self.used = 0
        if self.sync:  # futex.sync ran: its robust lists are back to empty
            for page, data in self._robust:
                process.write(page, data)
            self.sync = False
        return True


_pool: dict[int, list[Machine]] = {}


def acquire(ntasks: int) -> Machine:
    """A machine in its start state with ``ntasks`` tasks (from the pool, or new)."""
    free = _pool.get(ntasks)
    if free:
        try:
            m = free.pop()
        except IndexError:  # another thread took the last one
            m = Machine(ntasks)
    else:
        m = Machine(ntasks)
    m.fresh_clock()
    return m


def release(m: Machine) -> None:
    """Give a machine back after its schedule: reset and pooled, or dropped."""
    if m.reset():
        _pool.setdefault(len(m.tasks), []).append(m)
