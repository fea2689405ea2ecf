"""The demo's robust-futex scenario: an owner task exits holding a robust mutex, and the
task waiting for it recovers the lock.

Real Python threads drive the tasks of **one** emulated process; the mutexes, and each
thread's ``struct robust_list_head``, live in that process's emulated memory.  The
user-space half is glibc's, step by step (``nptl/pthread_mutex_lock.c`` /
``pthread_mutex_unlock.c`` / ``pthread_mutex_consistent.c`` for a robust mutex, with and
without ``PTHREAD_PRIO_INHERIT``: :mod:`futex.demo.robust_mutex`); the kernel half is the
emulated futex(2), ``set_robust_list`` and task exit.

(a) **Robust PI mutex.**  A SCHED_OTHER owner takes the mutex (user-space CAS 0 -> TID,
    the entry linked on its robust list with bit 0 set: a PI futex, following glibc's
    ``list_op_pending`` protocol).  A SCHED_FIFO waiter blocks in ``FUTEX_LOCK_PI``; the
    owner's effective priority (``task.prio``) is boosted to the waiter's.  The owner
    exits holding the mutex: the robust-list walk sets ``FUTEX_OWNER_DIED`` (and clears
    the TID), ``exit_pi_state_list`` hands the lock to the waiter, whose ``FUTEX_LOCK_PI``
    returns 0 with the word ``OWNER_DIED | WAITERS | its TID``: glibc's EOWNERDEAD.  The
    waiter clears OWNER_DIED, makes the mutex consistent and unlocks it (``FUTEX_UNLOCK_PI``:
    WAITERS is set); the dead owner's boost is gone.

(b) **Plain robust mutex.**  The owner takes it, a waiter sets ``FUTEX_WAITERS`` and
    sleeps in ``FUTEX_WAIT``, the owner exits: the exit walk sets OWNER_DIED (keeping
    WAITERS, clearing the TID) and wakes the waiter, which takes the lock with EOWNERDEAD,
    makes it consistent and unlocks it (``FUTEX_WAKE``, since it set WAITERS itself).

:func:`run_robust_demo` checks every value along the way (words, return values, robust
lists, priorities, the kernel's queues and invariants) and returns a
:class:`RobustReport` whose steps read as a numbered narrative.  Every wait for another
thread waits for *state* (the task queued in the kernel, a call returned) with a bound;
a bound reached is a failed check, not a hang.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import TypeVar

from futex.demo.robust_mutex import (
    EOWNERDEAD,
    PTHREAD_MUTEX_INCONSISTENT,
    RobustList,
    RobustMutex,
)
from futex.demo.robust_report import Narrator, RobustPart, RobustReport
from futex.linux import LinuxKernel, Process, Task, abi

__all__ = [
    "DEFAULT_TIMEOUT",
    "RT_PRIORITY",
    "describe_word",
    "run_robust_demo",
]

#: How long (real seconds) a step may wait for another thread before it is a failure.
DEFAULT_TIMEOUT = 10.0
#: The waiter's SCHED_FIFO priority in part (a): its ``prio`` is 99 - 50 = 49.
RT_PRIORITY = 50

_WAITERS = abi.FUTEX_WAITERS
_OWNER_DIED = abi.FUTEX_OWNER_DIED
_TID = abi.FUTEX_TID_MASK

# Memory layout of each part's page.
_PAGE = 4096
_HEADS = 0x000  # one 24-byte robust_list_head per task, 0x40 apart
_MUTEX = 0x200

T = TypeVar("T")


def describe_word(value: int) -> str:
    """A futex word in hex with its meaning: ``0xc0000007 (OWNER_DIED | WAITERS | tid 7)``."""
    parts = [
        name for bit, name in ((_OWNER_DIED, "OWNER_DIED"), (_WAITERS, "WAITERS")) if value & bit
    ]
    if value & _TID:
        parts.append(f"tid {value & _TID}")
    return f"{value:#010x} ({' | '.join(parts) or 'unlocked'})"


def _sched(task: Task) -> str:
    if task.policy == abi.SCHED_FIFO:
        return f"SCHED_FIFO {task.rt_priority}, prio {task.prio}"
    return f"SCHED_OTHER, prio {task.prio}"


# -- threads that drive tasks -------------------------------------------------------------


class _Stuck(Exception):
    """A bounded wait for another thread ran out."""


class _Actor:
    """A real thread driving one task: it runs the functions posted to it, in order."""

    def __init__(self, role: str, task: Task, rl: RobustList) -> None:
        self.role, self.task, self.rl = role, task, rl
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(
            target=self._loop, name=f"robust-{role}-{task.tid}", daemon=True
        )
        self.thread.start()

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def post(self, fn: Callable[[], T]) -> Future[T]:
        fut: Future[T] = Future()

        def job() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn())
            except Exception as exc:  # handed to whoever waits on the future
                fut.set_exception(exc)

        self._jobs.put(job)
        return fut

    def stop(self, timeout: float) -> None:
        """Let the thread finish; a task still blocked in the kernel is made to exit (its
        call ends) first, so that no thread is left behind."""
        self._jobs.put(None)
        if self.task.alive and self.task.blocked is not None:
            self.task.exit()
        self.thread.join(timeout)


def _result(fut: Future[T], what: str, timeout: float) -> T:
    try:
        return fut.result(timeout)
    except FutureTimeout:
        raise _Stuck(f"timed out after {timeout:g} s waiting until {what}") from None


def _until(cond: Callable[[], bool], what: str, timeout: float) -> None:
    """Poll a state until it holds (every 0.5 ms); :class:`_Stuck` after ``timeout``."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise _Stuck(f"timed out after {timeout:g} s waiting until {what}")
        time.sleep(0.0005)


def _queued(task: Task) -> bool:
    """Whether ``task`` is blocked in a futex call *and* queued in the kernel (the
    pending wait marks the task blocked just before it queues the waiter)."""
    if task.blocked is None:
        return False
    return any(w.owner is task for ws in task.process.futex.queues().values() for w in ws)


def _w(value: int) -> str:
    return describe_word(value)


def _ptr(value: int) -> str:
    return f"{value:#x}" if value else "NULL"


def _hex_entries(rl: RobustList) -> str:
    return " -> ".join(
        ["head", *(f"{e:#x}" + (" (PI)" if e & 1 else "") for e in rl.entries()), "head"]
    )


# -- the scenarios --------------------------------------------------------------------------


@dataclass
class _Scene:
    process: Process
    base: int
    timeout: float
    actors: list[_Actor] = field(default_factory=list)

    def actor(self, role: str, policy: int = abi.SCHED_OTHER, priority: int = 0) -> _Actor:
        task = self.process.new_task(policy=policy, priority=priority)
        head = self.base + _HEADS + 0x40 * len(self.actors)
        a = _Actor(role, task, RobustList(task, head))
        self.actors.append(a)
        return a

    def do(self, actor: _Actor, fn: Callable[[], T], what: str) -> T:
        return _result(actor.post(fn), f"{actor.role} {what}", self.timeout)


def _register(n: Narrator, scene: _Scene, a: _Actor) -> None:
    r = scene.do(a, a.rl.register, "set_robust_list returned")
    n.expect(
        f"set_robust_list({a.rl.head:#x}, 24) = {r}",
        ("set_robust_list", r, 0),
        ("the kernel's head", hex(a.task.robust_list), hex(a.rl.head)),
    )


def _take_uncontended(n: Narrator, scene: _Scene, a: _Actor, m: RobustMutex) -> None:
    t = a.task
    n.step(
        a.role,
        f"tid {t.tid} ({_sched(t)}) registers its robust list and locks the mutex:",
        f"list_op_pending = {m.list_entry:#x}, CAS word 0 -> {t.tid} (user space, no system call),",
        "links the mutex on its list"
        + (" (bit 0 set: a PI futex)" if m.pi else "")
        + ", list_op_pending = NULL",
    )
    _register(n, scene, a)
    out = scene.do(a, lambda: m.lock(a.rl), "pthread_mutex_lock returned")
    n.expect(
        f"pthread_mutex_lock = {out.result}, futex calls: {out.syscall or 'none'}",
        ("pthread_mutex_lock", out.result, 0),
        ("futex call", out.syscall, None),
    )
    n.expect(f"word {_w(m.value)}", ("word", _w(m.value), _w(t.tid)))
    n.expect(
        f"robust list: {_hex_entries(a.rl)}, list_op_pending " + _ptr(a.rl.pending),
        ("entries", a.rl.entries(), [m.list_entry]),
        ("list_op_pending", a.rl.pending, 0),
    )


def _part_pi(n: Narrator, scene: _Scene) -> None:
    m = RobustMutex(scene.process, scene.base + _MUTEX, pi=True)
    owner = scene.actor("owner")
    waiter = scene.actor("waiter", abi.SCHED_FIFO, RT_PRIORITY)
    o, w = owner.task, waiter.task
    normal, rt_prio = abi.DEFAULT_PRIO, abi.MAX_RT_PRIO - 1 - RT_PRIORITY
    n.part.title = (
        f"robust PI mutex at {m.addr:#x} (PTHREAD_PRIO_INHERIT + PTHREAD_MUTEX_ROBUST); "
        "its owner exits holding it"
    )

    _take_uncontended(n, scene, owner, m)

    n.step(
        "waiter",
        f"tid {w.tid} ({_sched(w)}) registers its robust list and locks:",
        f"list_op_pending = {m.list_entry:#x}, CAS 0 -> {w.tid} fails, so FUTEX_LOCK_PI: "
        "the kernel",
        "sets WAITERS, queues it on the PI state and boosts the owner",
    )
    _register(n, scene, waiter)
    prio_before = o.prio
    locked = waiter.post(lambda: m.lock(waiter.rl))
    _until(
        lambda: _queued(w) or locked.done(), "the waiter is queued in FUTEX_LOCK_PI", scene.timeout
    )
    n.expect(
        f"waiter blocked in FUTEX_LOCK_PI, list_op_pending {waiter.rl.pending:#x}",
        ("queued", _queued(w), True),
        ("list_op_pending", hex(waiter.rl.pending), hex(m.list_entry)),
    )
    n.expect(f"word {_w(m.value)}", ("word", _w(m.value), _w(_WAITERS | o.tid)))
    n.expect(
        f"owner prio {prio_before} -> {o.prio}: boosted to the waiter's (priority "
        f"inheritance); normal_prio {o.normal_prio}",
        ("prio", (prio_before, o.prio), (normal, rt_prio)),
        ("normal_prio", o.normal_prio, normal),
    )

    n.step(
        "owner",
        f"tid {o.tid} exits holding the mutex (task.exit()): the robust-list walk finds the PI",
        "entry it owns, sets OWNER_DIED and clears the TID (no wake: PI), then",
        "exit_pi_state_list hands the lock to the top waiter",
    )
    boosted = o.prio
    scene.do(owner, o.exit, "the owner's exit returned")
    n.expect(
        f"owner tid {o.tid} gone: robust list head {_ptr(o.robust_list)}, PI states held "
        f"{len(o.pi_states)}",
        ("alive", o.alive, False),
        ("robust list head", o.robust_list, 0),
        ("PI states", len(o.pi_states), 0),
    )
    n.expect(
        f"owner prio {boosted} -> {o.prio}: the boost is gone with the lock",
        ("prio", (boosted, o.prio), (rt_prio, normal)),
    )

    out = _result(locked, "the waiter's pthread_mutex_lock returned", scene.timeout)
    n.step(
        "waiter",
        f"FUTEX_LOCK_PI returned {out.syscall_result}, owning the lock; the word says "
        "OWNER_DIED, so glibc:",
        "clears OWNER_DIED, sets __owner = PTHREAD_MUTEX_INCONSISTENT, links the mutex on its",
        "own list and returns EOWNERDEAD",
    )
    woken = out.woken_word if out.woken_word is not None else -1
    n.expect(
        f"FUTEX_LOCK_PI = {out.syscall_result}, word on return {_w(woken & 0xFFFFFFFF)}",
        ("futex call", out.syscall, "LOCK_PI"),
        ("result", out.syscall_result, 0),
        ("word", _w(woken & 0xFFFFFFFF), _w(_OWNER_DIED | _WAITERS | w.tid)),
    )
    n.expect(
        f"pthread_mutex_lock = {out.result} (EOWNERDEAD)",
        ("pthread_mutex_lock", out.result, EOWNERDEAD),
    )
    n.expect(f"word {_w(m.value)}", ("word", _w(m.value), _w(_WAITERS | w.tid)))
    n.expect(
        f"__owner {m.owner:#x} (PTHREAD_MUTEX_INCONSISTENT); robust list: "
        f"{_hex_entries(waiter.rl)}",
        ("__owner", hex(m.owner), hex(PTHREAD_MUTEX_INCONSISTENT)),
        ("entries", waiter.rl.entries(), [m.list_entry]),
        ("list_op_pending", waiter.rl.pending, 0),
    )

    n.step("waiter", "pthread_mutex_consistent: it has repaired what the mutex protects")
    r = scene.do(waiter, lambda: m.consistent(waiter.rl), "pthread_mutex_consistent returned")
    n.expect(
        f"pthread_mutex_consistent = {r}, __owner {m.owner}",
        ("result", r, 0),
        ("__owner", m.owner, w.tid),
    )

    n.step(
        "waiter",
        "pthread_mutex_unlock: unlinks the mutex; WAITERS is set, so FUTEX_UNLOCK_PI (nobody",
        "left to hand it to: the kernel stores 0)",
    )
    r2 = scene.do(waiter, lambda: m.unlock(waiter.rl), "pthread_mutex_unlock returned")
    n.expect(f"FUTEX_UNLOCK_PI = {r2}", ("FUTEX_UNLOCK_PI", r2, 0))
    n.expect(
        f"word {_w(m.value)}, __owner {m.owner}, robust list: {_hex_entries(waiter.rl)}",
        ("word", _w(m.value), _w(0)),
        ("__owner", m.owner, 0),
        ("entries", waiter.rl.entries(), []),
    )
    n.expect(
        f"waiter prio {w.prio} (its own), PI states held {len(w.pi_states)}",
        ("prio", w.prio, rt_prio),
        ("PI states", len(w.pi_states), 0),
    )


def _part_plain(n: Narrator, scene: _Scene) -> None:
    m = RobustMutex(scene.process, scene.base + _MUTEX, pi=False)
    owner = scene.actor("owner")
    waiter = scene.actor("waiter")
    o, w = owner.task, waiter.task
    n.part.title = (
        f"plain robust mutex at {m.addr:#x} (PTHREAD_MUTEX_ROBUST); its owner exits holding it"
    )

    _take_uncontended(n, scene, owner, m)

    n.step(
        "waiter",
        f"tid {w.tid} ({_sched(w)}) registers its robust list and locks: CAS 0 -> {w.tid} fails,",
        f"so it sets WAITERS and sleeps in FUTEX_WAIT(word, {_WAITERS | o.tid:#x})",
    )
    _register(n, scene, waiter)
    locked = waiter.post(lambda: m.lock(waiter.rl))
    _until(lambda: _queued(w) or locked.done(), "the waiter is queued in FUTEX_WAIT", scene.timeout)
    n.expect("waiter blocked in FUTEX_WAIT", ("queued", _queued(w), True))
    n.expect(f"word {_w(m.value)}", ("word", _w(m.value), _w(_WAITERS | o.tid)))

    n.step(
        "owner",
        f"tid {o.tid} exits holding the mutex: the walk sets the word to (word & WAITERS) | "
        "OWNER_DIED",
        "and, WAITERS being set, wakes one waiter (a shared FUTEX_WAKE)",
    )
    scene.do(owner, o.exit, "the owner's exit returned")
    n.expect(
        f"owner tid {o.tid} gone: robust list head {_ptr(o.robust_list)}",
        ("alive", o.alive, False),
        ("robust list head", o.robust_list, 0),
    )

    out = _result(locked, "the waiter's pthread_mutex_lock returned", scene.timeout)
    n.step(
        "waiter",
        f"FUTEX_WAIT returned {out.syscall_result}; it re-reads the word, sees OWNER_DIED and "
        f"CASes it to {w.tid} | WAITERS:",
        "EOWNERDEAD, __owner = PTHREAD_MUTEX_INCONSISTENT, the mutex linked on its list",
    )
    woken = out.woken_word if out.woken_word is not None else -1
    n.expect(
        f"FUTEX_WAIT = {out.syscall_result} (woken by the exit walk), word when woken "
        f"{_w(woken & 0xFFFFFFFF)}",
        ("futex call", out.syscall, "WAIT"),
        ("result", out.syscall_result, 0),
        ("word", _w(woken & 0xFFFFFFFF), _w(_OWNER_DIED | _WAITERS)),
    )
    n.expect(
        f"pthread_mutex_lock = {out.result} (EOWNERDEAD)",
        ("pthread_mutex_lock", out.result, EOWNERDEAD),
    )
    n.expect(
        f"word {_w(m.value)}, __owner {m.owner:#x} (PTHREAD_MUTEX_INCONSISTENT)",
        ("word", _w(m.value), _w(_WAITERS | w.tid)),
        ("__owner", hex(m.owner), hex(PTHREAD_MUTEX_INCONSISTENT)),
    )

    n.step(
        "waiter",
        "pthread_mutex_consistent, then pthread_mutex_unlock: the exchange to 0 takes WAITERS",
        "away, so FUTEX_WAKE(word, 1) (nobody left to wake)",
    )
    r = scene.do(waiter, lambda: m.consistent(waiter.rl), "pthread_mutex_consistent returned")
    n.expect(
        f"pthread_mutex_consistent = {r}, __owner {m.owner}",
        ("result", r, 0),
        ("__owner", m.owner, w.tid),
    )
    r2 = scene.do(waiter, lambda: m.unlock(waiter.rl), "pthread_mutex_unlock returned")
    n.expect(
        f"FUTEX_WAKE = {r2}; word {_w(m.value)}, robust list: {_hex_entries(waiter.rl)}",
        ("FUTEX_WAKE", r2, 0),
        ("word", _w(m.value), _w(0)),
        ("entries", waiter.rl.entries(), []),
    )


_PARTS: dict[str, tuple[str, Callable[[Narrator, _Scene], None]]] = {
    "a": ("robust PI mutex", _part_pi),
    "b": ("plain robust mutex", _part_plain),
}


def _finish(n: Narrator, scene: _Scene) -> None:
    """Stop the part's threads and check what the kernel was left with."""
    tasks = [a.task for a in scene.actors]
    blocked = [t.tid for t in tasks if t.blocked is not None]
    for a in scene.actors:
        a.stop(scene.timeout)
    for t in tasks:
        n.part.calls.update(t.calls)
    stuck = [a.thread.name for a in scene.actors if a.thread.is_alive()]
    queued = scene.process.futex.stats().queued
    try:
        scene.process.futex.check_invariants()
        for t in tasks:
            scene.process.futex.pi.check_task(t)
        broken = ""
    except AssertionError as exc:
        broken = str(exc) or "AssertionError"
    n.step("kernel", "after the part:")
    n.expect(
        "no task blocked, no thread left running, no waiter queued; invariants hold "
        "(queues, PI state)",
        ("blocked tasks", blocked, []),
        ("threads still running", stuck, []),
        ("waiters queued", queued, 0),
        ("invariant", broken, ""),
    )


def run_robust_demo(parts: str = "ab", *, timeout: float = DEFAULT_TIMEOUT) -> RobustReport:
    """Run the robust scenarios named in ``parts`` (``"a"``: robust PI mutex, ``"b"``:
    plain robust mutex), in that order, on a fresh :class:`LinuxKernel`: one process, a
    page of its memory per part, one real thread per task.  ``timeout`` bounds every
    wait for another thread."""
    unknown = set(parts) - set(_PARTS)
    if unknown:
        raise ValueError(f"unknown robust scenario(s): {''.join(sorted(unknown))}")
    process = LinuxKernel().new_process()
    report = RobustReport([], 0.0)
    start = time.perf_counter()
    for label in parts:
        title, body = _PARTS[label]
        part = RobustPart(label, title)
        report.parts.append(part)
        n = Narrator(part)
        scene = _Scene(process, process.mmap(_PAGE), timeout)
        try:
            body(n, scene)
        except _Stuck as exc:
            n.fail(f"stuck: {exc}")
        except Exception as exc:  # a failed step, reported; the part stops here
            n.fail(f"{type(exc).__name__}: {exc}")
        finally:
            _finish(n, scene)
    report.elapsed = time.perf_counter() - start
    return report
