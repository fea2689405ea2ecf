"""Issue 11, "no input crashes, corrupts or silently hangs": the call guards of the three
personalities, Zircon's argument checks, and ``wait_blocked``.

- Zircon ``zx_futex_requeue(_single_owner)`` checks both pointers before it touches a
  queue (``FutexContext::FutexRequeue``; ``futex_requeue.md``: "not a valid userspace
  pointer" is ZX_ERR_INVALID_ARGS, and a failed call changes nothing); no zx_futex_* call
  fails once it has changed state.
- Every zx_futex_* argument is an int, truncated as the C prototype truncates it.
- One rule for Linux, Zircon and LiteOS: a task blocked in a call, or exited, makes no
  call (:class:`futex.kernel.TaskStateError`); a settled wait unblocks its task before
  the done-callbacks run.
- ``wait_blocked``: wait, without polling, until a task is blocked in a call.

Time is a manual clock; waits are cooperative unless a test is about real threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import futex.kernel.pi as kernel_pi
from futex.kernel import ClockId, ManualClock, TaskStateError
from futex.kernel.blocking import PendingWait
from futex.linux import LinuxKernel
from futex.linux import Process as LinuxProcess
from futex.linux import Task as LinuxTask
from futex.linux import abi as lx
from futex.liteos import LiteosKernel
from futex.liteos import abi as los
from futex.zircon import Process, Thread, ZirconKernel, ZirconPendingWait
from futex.zircon.abi import (
    ZX_ERR_BAD_STATE,
    ZX_ERR_INVALID_ARGS,
    ZX_ERR_TIMED_OUT,
    ZX_HANDLE_INVALID,
    ZX_KOID_INVALID,
    ZX_OK,
    ZX_TIME_INFINITE,
)

INF = ZX_TIME_INFINITE
U32 = 0xFFFFFFFF
U64 = (1 << 64) - 1
WAIT_P = lx.FUTEX_WAIT | lx.FUTEX_PRIVATE_FLAG
WAKE_P = lx.FUTEX_WAKE | lx.FUTEX_PRIVATE_FLAG
L_WAIT_P = los.FUTEX_WAIT | los.FUTEX_PRIVATE
L_WAKE_P = los.FUTEX_WAKE | los.FUTEX_PRIVATE
#: Generous: only a broken wait_blocked ever waits this long.
PATIENCE = 30.0


# -- Zircon fixtures -------------------------------------------------------------------------


class Zx:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.kernel = ZirconKernel(clock=self.clock)
        self.process: Process = self.kernel.new_process()
        self.main = self.thread("main")
        self.f = self.process.mmap(4096)
        self.f2 = self.f + 4

    def thread(self, name: str = "") -> Thread:
        t = self.process.new_thread(name)
        t.start()
        return t

    def wait(self, t: Thread, addr: int, owner: Thread | None = None) -> ZirconPendingWait:
        h = ZX_HANDLE_INVALID if owner is None else self.process.handle(owner)
        r = t.futex_wait_nb(addr, 0, h, INF)
        assert isinstance(r, ZirconPendingWait), f"the wait ended at once with {r}"
        return r

    def snapshot(self) -> tuple[object, ...]:
        """Everything a failed call must leave as it was."""
        p = self.process
        return (
            {k: (s.owner, [w.task for w in s.waiters]) for k, s in p.states.items()},
            {k: [w.owner for w in q] for k, q in p.futex.queues().items()},
            {t.koid: (t.effective_priority, t.blocking_futex) for t in p.threads.values()},
        )


@pytest.fixture
def zx() -> Iterator[Zx]:
    z = Zx()
    yield z
    z.kernel.check_invariants()


# -- 1. Zircon: requeue checks both pointers before touching a queue ------------------------

BAD_REQUEUE_POINTERS = {
    "outside user space": 1 << 60,
    "negative (2**64 - 4)": -4,
    "null": 0,
    "misaligned": 0x10000002,
    "kernel half": 0xFFFF_8000_0000_0000,
}


@pytest.mark.parametrize("single_owner", [False, True], ids=["requeue", "single_owner"])
@pytest.mark.parametrize("bad", list(BAD_REQUEUE_POINTERS.values()), ids=list(BAD_REQUEUE_POINTERS))
def test_zircon_requeue_bad_requeue_pointer_is_invalid_args_and_changes_nothing(
    zx: Zx, bad: int, single_owner: bool
) -> None:
    """FutexContext::FutexRequeue validates both pointers first; futex_requeue.md: "not a
    valid userspace pointer" -> ZX_ERR_INVALID_ARGS, and a failed requeue changes nothing.
    Before the fix a pointer outside user space raised MemoryFault from the core's requeue
    after the target futex had been activated: "futex ... is active without waiters"."""
    owner = zx.thread("owner")
    waiters = [zx.thread(f"w{i}") for i in range(2)]
    pending = [zx.wait(w, zx.f, owner) for w in waiters]
    before = zx.snapshot()
    h = zx.process.handle(owner)
    if single_owner:
        r = zx.main.futex_requeue_single_owner(zx.f, 0, bad, 1, h)
    else:
        r = zx.main.futex_requeue(zx.f, 1, 0, bad, 1, h)
    assert r == ZX_ERR_INVALID_ARGS
    assert zx.snapshot() == before
    assert zx.process.owner_of(zx.f) is owner and owner.effective_priority == 16
    zx.kernel.check_invariants()
    assert not any(p.done() for p in pending)
    assert zx.main.futex_wake(zx.f, U32) == ZX_OK
    assert [p.result() for p in pending] == [ZX_OK, ZX_OK]


def test_zircon_requeue_pointer_checks_come_before_the_value_check(zx: Zx) -> None:
    """The pointer checks come first (ValidateFutexPointer, then the same-futex check, all
    before the word is read): a bad requeue pointer with a stale value is INVALID_ARGS."""
    w = zx.wait(zx.thread(), zx.f)
    assert zx.main.futex_requeue(zx.f, 1, 7, 1 << 60, 1, ZX_HANDLE_INVALID) == ZX_ERR_INVALID_ARGS
    assert zx.main.futex_requeue(zx.f, 1, 7, zx.f2, 1, ZX_HANDLE_INVALID) == ZX_ERR_BAD_STATE
    assert not w.done()
    zx.main.futex_wake(zx.f, 1)


def test_zircon_requeue_to_an_unmapped_user_pointer_is_a_key(zx: Zx) -> None:
    """Zircon never reads the requeue word (FutexId is the address): an unmapped address
    in the user range is a futex like any other."""
    unmapped = zx.f + 64 * 4096
    owner = zx.thread("owner")
    w = zx.wait(zx.thread(), zx.f)
    h = zx.process.handle(owner)
    assert zx.main.futex_requeue(zx.f, 0, 0, unmapped, 1, h) == ZX_OK
    assert zx.process.owner_of(unmapped) is owner and zx.process.owner_of(zx.f) is None
    zx.kernel.check_invariants()
    assert zx.main.futex_wake(unmapped, 1) == ZX_OK
    assert w.result() == ZX_OK


def test_zircon_requeue_wake_pointer_fault_changes_nothing(zx: Zx) -> None:
    """A wake pointer outside user space faults when read: INVALID_ARGS, nothing changed
    (the target's owner is not dropped first)."""
    owner = zx.thread("owner")
    w = zx.wait(zx.thread(), zx.f2, owner)
    h = zx.process.handle(zx.thread())
    before = zx.snapshot()
    assert zx.main.futex_requeue(1 << 60, 0, 0, zx.f2, 1, h) == ZX_ERR_INVALID_ARGS
    assert zx.snapshot() == before and zx.process.owner_of(zx.f2) is owner
    zx.main.futex_wake(zx.f2, 1)
    assert w.result() == ZX_OK


def test_zircon_wait_with_an_owner_chain_too_deep_drops_the_owner(
    zx: Zx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An owner chain longer than the PI walk follows is treated as a cycle: the wait
    blocks with no owner (LockForOwnerReplacement).  Before the fix the chain check of
    block() raised PiDeadlock after the waiter was queued: "active without waiters"."""
    monkeypatch.setattr(kernel_pi, "MAX_LOCK_DEPTH", 3)
    ts = [zx.thread(str(i)) for i in range(6)]
    pending = []
    for i in range(len(ts) - 2, -1, -1):  # t[i] waits on f+4i owned by t[i+1]: a chain
        pending.append(zx.wait(ts[i], zx.f + 4 * i, ts[i + 1]))
        zx.kernel.check_invariants()
    assert zx.process.owner_of(zx.f + 4) is None  # this link would have been too deep
    assert zx.process.owner_of(zx.f) is ts[1]
    for i in range(len(ts) - 1):
        zx.main.futex_wake(zx.f + 4 * i, 1)
    assert all(p.result() == ZX_OK for p in pending)


# -- 2a. Zircon: argument types and truncation ----------------------------------------------

ZxCall = Callable[[Zx, Any], Any]

#: (call, argument name, how to call it with the argument replaced)
ZX_ARGUMENTS: list[tuple[str, ZxCall]] = [
    ("wait.value_ptr", lambda z, v: z.main.futex_wait_nb(v, 0, 0, INF)),
    ("wait.current_value", lambda z, v: z.main.futex_wait_nb(z.f, v, 0, INF)),
    ("wait.new_futex_owner", lambda z, v: z.main.futex_wait_nb(z.f, 0, v, INF)),
    ("wait.deadline", lambda z, v: z.main.futex_wait_nb(z.f, 0, 0, v)),
    ("wake.value_ptr", lambda z, v: z.main.futex_wake(v, 1)),
    ("wake.wake_count", lambda z, v: z.main.futex_wake(z.f, v)),
    ("wake_single_owner.value_ptr", lambda z, v: z.main.futex_wake_single_owner(v)),
    ("requeue.value_ptr", lambda z, v: z.main.futex_requeue(v, 1, 0, z.f2, 1, 0)),
    ("requeue.wake_count", lambda z, v: z.main.futex_requeue(z.f, v, 0, z.f2, 1, 0)),
    ("requeue.current_value", lambda z, v: z.main.futex_requeue(z.f, 1, v, z.f2, 1, 0)),
    ("requeue.requeue_ptr", lambda z, v: z.main.futex_requeue(z.f, 1, 0, v, 1, 0)),
    ("requeue.requeue_count", lambda z, v: z.main.futex_requeue(z.f, 1, 0, z.f2, v, 0)),
    ("requeue.new_requeue_owner", lambda z, v: z.main.futex_requeue(z.f, 1, 0, z.f2, 1, v)),
    ("requeue_single_owner.requeue_count",
     lambda z, v: z.main.futex_requeue_single_owner(z.f, 0, z.f2, v, 0)),
    ("get_owner.value_ptr", lambda z, v: z.main.futex_get_owner(v, z.f2)),
    ("get_owner.koid", lambda z, v: z.main.futex_get_owner(z.f, v)),
]


@pytest.mark.parametrize("bad", [1.5, "4", None, b"\0"], ids=["float", "str", "None", "bytes"])
@pytest.mark.parametrize("call", [c for _, c in ZX_ARGUMENTS], ids=[n for n, _ in ZX_ARGUMENTS])
def test_zircon_non_int_argument_is_a_type_error_and_changes_nothing(
    zx: Zx, call: ZxCall, bad: object
) -> None:
    """Every zx_futex_* argument is an int (a register): anything else is TypeError naming
    the argument, raised before any queue or owner changes (a wait stays queued, its owner
    stays)."""
    owner = zx.thread("owner")
    w = zx.wait(zx.thread(), zx.f, owner)
    zx.wait(zx.thread(), zx.f2, owner)
    before = zx.snapshot()
    with pytest.raises(TypeError, match=r"argument \w+ must be an int"):
        call(zx, bad)
    assert zx.snapshot() == before and not w.done()
    zx.kernel.check_invariants()
    zx.main.futex_wake(zx.f, U32)
    zx.main.futex_wake(zx.f2, U32)


def test_zircon_arguments_truncate_like_the_c_prototype(zx: Zx) -> None:
    """zx_futex_*'s prototypes: pointers uintptr_t, counts uint32_t, the value a 32-bit
    zx_futex_t, handles uint32_t, deadlines int64_t."""
    ws = [zx.thread(f"w{i}") for i in range(3)]
    # wake_count -1 is UINT32_MAX: everybody; 2**32 is 0: nobody (but RELEASE unowns).
    pending = [zx.wait(w, zx.f, zx.main) for w in ws]
    assert zx.main.futex_wake(zx.f, 1 << 32) == ZX_OK
    assert not any(p.done() for p in pending) and zx.process.owner_of(zx.f) is None
    assert zx.main.futex_wake(zx.f + (1 << 64), -1) == ZX_OK  # the pointer wraps too
    assert all(p.result() == ZX_OK for p in pending)
    # current_value: -1 is the word 0xFFFFFFFF; the owner handle wraps at 32 bits.
    zx.process.store_u32(zx.f, U32)
    owner = zx.thread("owner")
    w = ws[0].futex_wait_nb(zx.f, -1, zx.process.handle(owner) + (1 << 32), INF)
    assert isinstance(w, ZirconPendingWait) and zx.process.owner_of(zx.f) is owner
    # requeue: counts wrap (requeue_count -1 is all), current_value wraps.
    w2 = ws[1].futex_wait_nb(zx.f, U32, zx.process.handle(owner), INF)
    assert isinstance(w2, ZirconPendingWait)
    more = [w, w2]
    assert zx.main.futex_requeue(zx.f, 0, U32 + (1 << 32), zx.f2, -1, 0) == ZX_OK
    assert zx.process.owner_of(zx.f2) is None and sorted(
        t.koid for t in (ws[0], ws[1])
    ) == sorted(pw.task.koid for pw in zx.process.states[zx.f2].waiters)
    assert zx.main.futex_wake(zx.f2, U32) == ZX_OK
    assert all(p.result() == ZX_OK for p in more)
    # deadline: int64_t; 2**64 is 0 (long past), INF + 2**64 is still infinite.
    zx.process.store_u32(zx.f, 0)
    assert ws[2].futex_wait_nb(zx.f, 0, 0, 1 << 64) == ZX_ERR_TIMED_OUT
    late = ws[2].futex_wait_nb(zx.f, 0, 0, INF + (1 << 64))
    assert isinstance(late, ZirconPendingWait) and late.deadline is None
    zx.main.futex_wake(zx.f, 1)
    # get_owner: the koid pointer wraps.
    out = zx.process.mmap(4096)
    assert zx.main.futex_get_owner(zx.f, out + (1 << 64)) == ZX_OK
    assert zx.process.load_u32(out) == ZX_KOID_INVALID


# -- 2b. one guard for the three personalities ---------------------------------------------


@dataclass(frozen=True)
class LinuxSetup:
    """A Linux kernel on a manual clock, a process with two tasks and a zeroed page."""

    kernel: LinuxKernel
    process: LinuxProcess
    task: LinuxTask
    other: LinuxTask
    page: int


def _linux() -> LinuxSetup:
    k = LinuxKernel(clock=ManualClock())
    p = k.new_process()
    t, other = p.new_task(), p.new_task()
    return LinuxSetup(kernel=k, process=p, task=t, other=other, page=p.mmap(4096))


LINUX_ENTRIES: dict[str, Callable[[Any, int], object]] = {
    "syscall": lambda t, a: t.syscall(lx.SYS_futex, a, WAKE_P, 1),
    "syscall_nb": lambda t, a: t.syscall_nb(lx.SYS_futex, a, WAKE_P, 1),
    "syscall_futex": lambda t, a: t.syscall_futex(a, WAKE_P, 1, 0, 0, 0),
    "syscall_futex_nb": lambda t, a: t.syscall_futex_nb(a, WAKE_P, 1, 0, 0, 0),
    "syscall(set_robust_list)": lambda t, a: t.syscall(lx.SYS_set_robust_list, a, 24),
    "syscall(unknown)": lambda t, a: t.syscall_nb(4095),
}


@pytest.mark.parametrize("entry", list(LINUX_ENTRIES.values()), ids=list(LINUX_ENTRIES))
def test_linux_blocked_task_cannot_call(entry: Callable[[Any, int], object]) -> None:
    """A Linux task blocked in a call makes no other: TaskStateError (a RuntimeError)
    naming the task and "blocked", nothing done or counted; once its wait settled it calls
    again."""
    env = _linux()
    k, t, other, a = env.kernel, env.task, env.other, env.page
    pw = t.syscall_futex_nb(a, WAIT_P, 0, 0, 0, 0)
    assert isinstance(pw, PendingWait)
    calls = k.calls()
    with pytest.raises(TaskStateError, match=f"task {t.tid} is blocked") as info:
        entry(t, a)
    assert isinstance(info.value, RuntimeError)
    assert (info.value.task, info.value.tid, info.value.state) == (t, t.tid, "blocked")
    assert k.calls() == calls and t.blocked is pw and not pw.done()
    assert other.syscall_futex(a, WAKE_P, 1, 0, 0, 0) == 1
    assert pw.result() == 0 and t.blocked is None
    entry(t, a)  # allowed again


@pytest.mark.parametrize("entry", list(LINUX_ENTRIES.values()), ids=list(LINUX_ENTRIES))
def test_linux_exited_or_exiting_task_cannot_call(entry: Callable[[Any, int], object]) -> None:
    """Exiting (between begin_exit and exit), in its exec (begin_exec .. exec) or exited:
    not in user mode, so no call."""
    env = _linux()
    t, a = env.task, env.page
    t.begin_exec()
    with pytest.raises(TaskStateError, match="is in its exec") as info:
        entry(t, a)
    assert info.value.state == "exec"
    t.exec()
    entry(t, a)  # the exec is over: the task runs the new program
    t.begin_exit()
    with pytest.raises(TaskStateError, match="is exiting"):
        entry(t, a)
    t.exit()
    with pytest.raises(TaskStateError, match=f"task {t.tid} has exited") as info:
        entry(t, a)
    assert info.value.state == "exited"


def test_linux_syscall_number_must_be_an_int() -> None:
    """The number is a register too: 202.0 is not futex(2) (it used to dispatch as 202)."""
    env = _linux()
    k, t, a = env.kernel, env.task, env.page
    for nr in (202.0, "202", None):
        with pytest.raises(TypeError, match="system call number must be an int"):
            t.syscall_nb(nr, a, WAKE_P, 1)
    assert sum(k.calls().values()) == 0


def test_zircon_thread_guard_new_blocked_exited(zx: Zx) -> None:
    """A Zircon thread calls only while running and not blocked; get_owner (an observer,
    not a call) is allowed in any state."""
    calls: list[Callable[[Thread], object]] = [
        lambda t: t.futex_wait_nb(zx.f2, 0, 0, INF),
        lambda t: t.futex_wait(zx.f2, 0, 0, INF),
        lambda t: t.futex_wake(zx.f2, 1),
        lambda t: t.futex_wake_single_owner(zx.f2),
        lambda t: t.futex_requeue(zx.f, 1, 0, zx.f2, 1, 0),
        lambda t: t.futex_requeue_single_owner(zx.f, 0, zx.f2, 1, 0),
        lambda t: t.futex_get_owner(zx.f, zx.f2),
    ]
    new = zx.process.new_thread("new")
    t = zx.thread("t")
    pw = zx.wait(t, zx.f)
    for call in calls:
        for who, state in ((new, "new"), (t, "blocked")):
            with pytest.raises(TaskStateError) as info:
                call(who)
            assert info.value.state == state and info.value.task is who
    assert t.get_owner(zx.f) == ZX_KOID_INVALID
    t.exit()
    assert pw.done()
    for call in calls:
        with pytest.raises(TaskStateError, match=f"thread {t.koid} has exited"):
            call(t)
    with pytest.raises(TaskStateError):
        t.exit()


def test_liteos_guard_is_the_shared_exception() -> None:
    """LiteOS already refused both; it now raises the shared TaskStateError."""
    k = LiteosKernel(clock=ManualClock())
    p = k.new_process()
    t, other = p.new_task(), p.new_task()
    a = p.mmap(4096)
    pw = t.syscall_futex_nb(a, L_WAIT_P, 0, los.LOS_WAIT_FOREVER, 0)
    assert isinstance(pw, PendingWait)
    with pytest.raises(TaskStateError, match="blocked") as info:
        t.syscall_futex_nb(a, L_WAKE_P, 1, 0, 0)
    assert info.value.state == "blocked"
    assert other.syscall_futex(a, L_WAKE_P, 1, 0, 0) == 0 and pw.result() == 0
    t.exit()
    with pytest.raises(TaskStateError, match="exited"):
        t.syscall_futex(a, L_WAKE_P, 1, 0, 0)


# -- 2c. a settled wait unblocks its task before the done-callbacks run -----------------------


class Coop:
    """One personality, cooperatively: ``wait(t)`` -> a pending wait, ``wake()``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.clock = ManualClock()
        if name == "linux":
            lk = LinuxKernel(clock=self.clock)
            lp = lk.new_process()
            self.tasks: list[Any] = [lp.new_task() for _ in range(2)]
            self.a = lp.mmap(4096)
            ts = lp.mmap(4096)
            lp.write(ts, (1).to_bytes(8, "little") + bytes(8))  # 1 s
            self.timeout = ts
        elif name == "zircon":
            zk = ZirconKernel(clock=self.clock)
            zp = zk.new_process()
            self.tasks = [zp.new_thread(str(i)) for i in range(2)]
            for t in self.tasks:
                t.start()
            self.a = zp.mmap(4096)
        else:
            k = LiteosKernel(clock=self.clock)
            p = k.new_process()
            self.tasks = [p.new_task() for _ in range(2)]
            self.a = p.mmap(4096)

    def wait(self, t: Any, timed: bool = False) -> PendingWait | int:
        if self.name == "linux":
            return t.syscall_futex_nb(self.a, WAIT_P, 0, self.timeout if timed else 0, 0, 0)
        if self.name == "zircon":
            now = self.clock.now(ClockId.MONOTONIC)
            return t.futex_wait_nb(self.a, 0, 0, now + 10**9 if timed else INF)
        return t.syscall_futex_nb(self.a, L_WAIT_P, 0, 10**6 if timed else los.LOS_WAIT_FOREVER, 0)

    def wake(self, t: Any) -> None:
        if self.name == "linux":
            t.syscall_futex(self.a, WAKE_P, 1, 0, 0, 0)
        elif self.name == "zircon":
            t.futex_wake(self.a, 1)
        else:
            t.syscall_futex(self.a, L_WAKE_P, 1, 0, 0)


PERSONALITIES = ["linux", "zircon", "liteos"]


@pytest.mark.parametrize("how", ["wake", "timeout"])
@pytest.mark.parametrize("name", PERSONALITIES)
def test_a_scheduler_resumes_the_task_from_its_done_callback(name: str, how: str) -> None:
    """Cooperative form: when the wait settles (woken or timed out), ``task.blocked`` is
    already None when the done-callback runs, so a scheduler resuming the task there may
    make its next call at once."""
    c = Coop(name)
    t, waker = c.tasks
    timed = how == "timeout"
    first = c.wait(t, timed)
    assert isinstance(first, PendingWait) and t.blocked is first
    seen: list[object] = []

    def resume(pw: PendingWait) -> None:
        seen.append(t.blocked)
        seen.append(c.wait(t))  # the task's next call, from the callback

    first.add_done_callback(resume)
    if timed:
        c.clock.advance(2 * 10**9)
    else:
        c.wake(waker)
    assert first.done() and seen[0] is None
    second = seen[1]
    assert isinstance(second, PendingWait) and t.blocked is second
    c.wake(waker)
    assert second.done() and t.blocked is None


# -- 3. wait_blocked ---------------------------------------------------------------------------


def test_wait_blocked_replaces_the_busy_wait_of_the_quickstart() -> None:
    """The README quickstart on real threads: wait for the waiter to block (no polling),
    then wake it."""
    k = LinuxKernel()
    p = k.new_process()
    waiter, waker = p.new_task(), p.new_task()
    a = p.mmap(4096)
    results: list[int] = []
    th = threading.Thread(target=lambda: results.append(waiter.syscall_futex(a, 0x80, 0, 0, 0, 0)))
    th.start()
    pw = waiter.wait_blocked(timeout=PATIENCE)
    assert isinstance(pw, PendingWait) and pw.task is waiter
    p.store_u32(a, 1)
    assert waker.syscall_futex(a, 0x81, 1, 0, 0, 0) == 1
    th.join(PATIENCE)
    assert results == [0] and pw.result() == 0


@pytest.mark.parametrize("name", PERSONALITIES)
def test_wait_blocked_returns_the_current_wait_at_once(name: str) -> None:
    c = Coop(name)
    t, waker = c.tasks
    pw = c.wait(t)
    assert t.wait_blocked() is pw
    assert t.wait_blocked(timeout=0) is pw
    c.wake(waker)


@pytest.mark.parametrize("name", PERSONALITIES)
def test_wait_blocked_times_out(name: str) -> None:
    """A task that never blocks: TimeoutError after the timeout (real time)."""
    t = Coop(name).tasks[0]
    with pytest.raises(TimeoutError, match=f"task {t.tid} did not block"):
        t.wait_blocked(timeout=0)
    with pytest.raises(TimeoutError):
        t.wait_blocked(timeout=0.01)


@pytest.mark.parametrize("name", PERSONALITIES)
def test_wait_blocked_on_a_task_that_exits_raises(name: str) -> None:
    """A task that exits (before or while a thread waits for it to block) will never block:
    TaskStateError, not a hang until the timeout."""
    c = Coop(name)
    t, u = c.tasks
    outcome: list[BaseException] = []

    def watch() -> None:
        try:
            u.wait_blocked(timeout=PATIENCE)
        except BaseException as exc:
            outcome.append(exc)

    th = threading.Thread(target=watch)
    th.start()
    u.exit()
    th.join(PATIENCE)
    assert not th.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], TaskStateError)
    assert outcome[0].state == "exited"
    t.exit()
    with pytest.raises(TaskStateError, match="has exited"):
        t.wait_blocked()


def test_wait_blocked_on_a_linux_task_that_begins_exiting_raises() -> None:
    env = _linux()
    t = env.task
    t.begin_exit()
    with pytest.raises(TaskStateError, match="is exiting"):
        t.wait_blocked(timeout=PATIENCE)
    t.exit()


def test_wait_blocked_returns_a_wait_that_began_and_ended_meanwhile() -> None:
    """A call that blocked after wait_blocked was called and was woken before the watcher
    looked is returned, done, instead of waiting for another block."""
    env = _linux()
    t, other, a = env.task, env.other, env.page
    got: list[PendingWait] = []
    th = threading.Thread(target=lambda: got.append(t.wait_blocked(timeout=PATIENCE)))
    th.start()
    seen: list[PendingWait] = []
    while th.is_alive() and len(seen) < 10**6:  # block and wake until the watcher saw one
        pw = t.syscall_futex_nb(a, WAIT_P, 0, 0, 0, 0)
        assert isinstance(pw, PendingWait)
        seen.append(pw)
        assert other.syscall_futex(a, WAKE_P, 1, 0, 0, 0) == 1
    th.join(PATIENCE)
    assert len(got) == 1 and got[0] in seen and got[0].done() and got[0].result() == 0
    assert t.blocked is None
