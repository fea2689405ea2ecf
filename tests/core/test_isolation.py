"""Issue 11, "no input crashes, corrupts or silently hangs": one caller's mistake stays its own.

1. Callbacks are isolated (:mod:`futex.kernel.blocking`, :mod:`futex.kernel.clock`): a
   done callback or a timer callback that raises is logged and dropped -- it never
   reaches the waker, never stops the other callbacks of the same wake (no lost
   wakeup), never stops a clock.  All three personalities share the machinery; each is
   checked.
2. Linux ``exit_pi_state_list`` (``kernel/futex/core.c``): a task that exits or execs
   owning a *private* PI futex of another process (the word names its TID; the waiters
   keyed it in their own address space) hands it on in the waiters' bucket, and the top
   waiter owns it with OWNER_DIED (``__fixup_pi_state_owner``: ``if (!pi_state->owner)
   newtid |= FUTEX_OWNER_DIED``).
3. Memory (:mod:`futex.memory.args`): a refused ``mmap`` changes nothing (later mappings
   are placed as if it never happened), and every argument is checked up front
   (TypeError for a wrong type, MappingError for a bad value) on the address space and on
   every personality's process.

Cooperative forms on a :class:`ManualClock` unless a test says "threaded" or "real
clock": then real threads run and the test waits for state with generous bounds.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from futex.kernel import ClockId, ManualClock, RealClock
from futex.kernel.blocking import PendingWait
from futex.linux import LinuxKernel, Process, Task, abi
from futex.liteos import LiteosKernel
from futex.liteos import abi as los
from futex.memory import (
    PAGE_SIZE,
    PROT_READ,
    AddressSpace,
    AnonymousMemory,
    File,
    MappingError,
)
from futex.zircon import ZirconKernel
from futex.zircon import abi as zx
from tests.support import STATE_TIMEOUT, Blocking, wait_until

PRIV = abi.FUTEX_PRIVATE_FLAG
LOCK_PI = abi.FUTEX_LOCK_PI | PRIV
UNLOCK_PI = abi.FUTEX_UNLOCK_PI | PRIV
W = abi.FUTEX_WAITERS
OD = abi.FUTEX_OWNER_DIED
MS = 1_000_000


class Boom(Exception):
    """What a broken callback raises."""


def boom(*_: Any) -> None:
    raise Boom("a broken callback")


def callback_errors(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records
        if r.name == logger and r.exc_info is not None and r.exc_info[0] is Boom
    ]


# -- the three personalities, one shape ----------------------------------------------------


@dataclass
class Personality:
    """Three waiters and a waker on one word of one process, whatever the kernel."""

    name: str
    clock: ManualClock
    wait: Callable[[int, int | None], PendingWait]  # (waiter index, timeout ns) -> pending
    wake: Callable[[int], int]  # n -> how many the waker woke
    timed_out: int
    check: Callable[[], None]


def _linux(clock: ManualClock) -> Personality:
    k = LinuxKernel(clock=clock)
    p = k.new_process()
    a = p.mmap(PAGE_SIZE)
    ts = a + 64
    waiters = [p.new_task() for _ in range(3)]
    waker = p.new_task()

    def wait(i: int, timeout: int | None) -> PendingWait:
        utime = 0
        if timeout is not None:
            p.write(ts, struct.pack("<qq", *divmod(timeout, 10**9)))
            utime = ts
        r = waiters[i].syscall_futex_nb(a, abi.FUTEX_WAIT | PRIV, 0, utime, 0, 0)
        assert isinstance(r, PendingWait), r
        return r

    def wake(n: int) -> int:
        return waker.syscall_futex(a, abi.FUTEX_WAKE | PRIV, n, 0, 0, 0)

    def check() -> None:
        p.futex.check_invariants()

    return Personality("linux", clock, wait, wake, -abi.ETIMEDOUT, check)


def _zircon(clock: ManualClock) -> Personality:
    k = ZirconKernel(clock=clock)
    p = k.new_process()
    f = p.mmap(PAGE_SIZE)
    threads = [p.new_thread(f"w{i}") for i in range(3)]
    waker = p.new_thread("waker")
    for t in [*threads, waker]:
        t.start()

    def wait(i: int, timeout: int | None) -> PendingWait:
        deadline = zx.ZX_TIME_INFINITE
        if timeout is not None:
            deadline = clock.now(ClockId.MONOTONIC) + timeout
        r = threads[i].futex_wait_nb(f, 0, zx.ZX_HANDLE_INVALID, deadline)
        assert isinstance(r, PendingWait), r
        return r

    def wake(n: int) -> int:
        before = p.futex.stats().wakes
        assert waker.futex_wake(f, n) == zx.ZX_OK
        return p.futex.stats().wakes - before

    return Personality("zircon", clock, wait, wake, zx.ZX_ERR_TIMED_OUT, k.check_invariants)


def _liteos(clock: ManualClock) -> Personality:
    k = LiteosKernel(clock=clock)
    p = k.new_process()
    a = p.mmap(PAGE_SIZE)
    tasks = [p.new_task() for _ in range(3)]
    waker = p.new_task()

    def wait(i: int, timeout: int | None) -> PendingWait:
        us = los.LOS_WAIT_FOREVER if timeout is None else timeout // 1000
        r = tasks[i].syscall_futex_nb(a, los.FUTEX_WAIT | los.FUTEX_PRIVATE, 0, us, 0)
        assert isinstance(r, PendingWait), r
        return r

    def wake(n: int) -> int:
        before = k.futex.stats().wakes
        r = waker.syscall_futex(a, los.FUTEX_WAKE | los.FUTEX_PRIVATE, n, 0, 0)
        assert r == 0, r
        return k.futex.stats().wakes - before

    return Personality(
        "liteos", clock, wait, wake, -los.LOS_ETIMEDOUT, k.futex.check_invariants
    )


@pytest.fixture(params=[_linux, _zircon, _liteos], ids=["linux", "zircon", "liteos"])
def kern(request: pytest.FixtureRequest) -> Iterator[Personality]:
    pers: Personality = request.param(ManualClock())
    yield pers
    pers.check()


# -- 1. done callbacks ----------------------------------------------------------------------


def test_raising_done_callback_never_reaches_the_waker_nor_loses_the_next_wakeup(
    kern: Personality, caplog: pytest.LogCaptureFixture
) -> None:
    """A wake that dequeues two waiters settles both, whatever the first one's callback
    does (Linux ``wake_up_q`` wakes every task of the queue); the waker's call returns its
    own answer; the exception is logged, with its traceback, on futex.kernel.blocking."""
    first, second = kern.wait(0, None), kern.wait(1, None)
    heard: list[int] = []
    first.add_done_callback(boom)
    second.add_done_callback(lambda pw: heard.append(pw.result()))
    assert kern.wake(2) == 2
    assert first.done() and second.done()
    assert first.result() == second.result() == 0
    assert heard == [0]
    (record,) = callback_errors(caplog, "futex.kernel.blocking")
    assert record.levelno == logging.ERROR


def test_raising_done_callback_does_not_stop_the_other_callbacks_of_its_call(
    kern: Personality, caplog: pytest.LogCaptureFixture
) -> None:
    """Every callback of one call runs, in registration order, around a raising one."""
    pw = kern.wait(0, None)
    order: list[str] = []
    pw.add_done_callback(lambda _: order.append("a"))
    pw.add_done_callback(boom)
    pw.add_done_callback(lambda _: order.append("c"))
    assert kern.wake(1) == 1
    assert order == ["a", "c"]
    assert len(callback_errors(caplog, "futex.kernel.blocking")) == 1


def test_raising_done_callback_on_a_timeout_does_not_stop_the_manual_clock(
    kern: Personality, caplog: pytest.LogCaptureFixture
) -> None:
    """Two waits time out at the same advance(); the first one's callback raises: the
    second still times out, advance() returns normally, and later timeouts fire."""
    a, b = kern.wait(0, 5 * MS), kern.wait(1, 5 * MS)
    a.add_done_callback(boom)
    kern.clock.advance(10 * MS)
    assert a.result() == b.result() == kern.timed_out
    c = kern.wait(2, 5 * MS)
    kern.clock.advance(10 * MS)
    assert c.result() == kern.timed_out
    assert len(callback_errors(caplog, "futex.kernel.blocking")) == 1


def test_raising_done_callback_on_a_call_already_over_is_isolated_too(
    kern: Personality, caplog: pytest.LogCaptureFixture
) -> None:
    """Registered after the call ended, the callback runs at once, in the registering
    thread -- and its exception is logged there too, not raised: a callback behaves the
    same whichever side of the race it was registered on."""
    pw = kern.wait(0, None)
    assert kern.wake(1) == 1
    pw.add_done_callback(boom)
    after: list[int] = []
    pw.add_done_callback(lambda p: after.append(p.result()))
    assert after == [0]
    assert len(callback_errors(caplog, "futex.kernel.blocking")) == 1


def test_raising_done_callback_on_a_kill_does_not_reach_the_killer(
    kern: Personality, caplog: pytest.LogCaptureFixture
) -> None:
    """kill() (the task exits) settles the call; a raising callback changes neither
    kill()'s answer nor the call's result."""
    pw = kern.wait(0, None)
    pw.add_done_callback(boom)
    assert pw.kill() is True
    assert pw.done()
    assert pw.result() == pw.outcomes.killed
    assert len(callback_errors(caplog, "futex.kernel.blocking")) == 1


def test_raising_done_callback_on_a_signal_does_not_reach_the_signaller(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Linux: a signal with a handler ends an untimed FUTEX_WAIT with EINTR; the task's
    interrupt() answers True and the call's result is EINTR, whatever the callback does."""
    pers = _linux(ManualClock())
    pw = pers.wait(0, None)
    pw.add_done_callback(boom)
    assert pw.interrupt(handler=True, restart=False) is True
    assert pw.result() == -abi.EINTR
    assert len(callback_errors(caplog, "futex.kernel.blocking")) == 1
    pers.check()


def test_keyboard_interrupt_in_a_callback_is_reraised_after_the_other_callbacks(
    kern: Personality,
) -> None:
    """KeyboardInterrupt / SystemExit are the running thread's, not the callback's (Ctrl-C
    lands wherever the main thread is): not swallowed, but held until every callback of
    the call has run."""
    pw = kern.wait(0, None)
    ran: list[int] = []

    def interrupted(_: PendingWait) -> None:
        raise KeyboardInterrupt

    pw.add_done_callback(interrupted)
    pw.add_done_callback(lambda p: ran.append(p.result()))
    with pytest.raises(KeyboardInterrupt):
        pw.kill()
    assert pw.done() and ran == [pw.outcomes.killed]


# -- 1. clocks ------------------------------------------------------------------------------


def test_manual_clock_advance_fires_every_due_timer_around_a_raising_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``__hrtimer_run_queues`` runs every expired timer: one raising timer callback
    neither skips the others (they fire in deadline order) nor reaches advance()."""
    clock = ManualClock()
    base = clock.now(ClockId.MONOTONIC)
    fired: list[int] = []
    clock.call_at(ClockId.MONOTONIC, base + 1, lambda: fired.append(1))
    clock.call_at(ClockId.MONOTONIC, base + 2, boom)
    clock.call_at(ClockId.MONOTONIC, base + 3, lambda: fired.append(3))
    clock.call_at(ClockId.MONOTONIC, base + 100, lambda: fired.append(100))
    clock.advance(10)
    assert fired == [1, 3]
    assert [t.deadline for t in clock.pending()] == [base + 100]
    clock.advance(100)
    assert fired == [1, 3, 100]
    assert len(callback_errors(caplog, "futex.kernel.clock")) == 1


def test_manual_clock_call_at_with_a_past_deadline_isolates_the_callback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """call_at() fires an expired timer at once, inside whoever armed it (a futex call):
    its exception is logged, not raised there."""
    clock = ManualClock()
    timer = clock.call_at(ClockId.MONOTONIC, 0, boom)
    assert not timer.active
    assert len(callback_errors(caplog, "futex.kernel.clock")) == 1


def test_real_clock_survives_a_raising_timer_callback(caplog: pytest.LogCaptureFixture) -> None:
    """Real clock: a raising timer callback used to end the timer thread, and no later
    timeout ever fired.  Now the next timer still fires (waited for with a generous
    bound)."""
    clock = RealClock()
    now = clock.now(ClockId.MONOTONIC)
    later = threading.Event()
    clock.call_at(ClockId.MONOTONIC, now + MS, boom)
    clock.call_at(ClockId.MONOTONIC, now + 2 * MS, later.set)
    assert later.wait(STATE_TIMEOUT), "the timer thread died of a callback"
    wait_until(lambda: len(callback_errors(caplog, "futex.kernel.clock")) == 1,
               "the exception is logged")
    again = threading.Event()
    clock.call_at(ClockId.MONOTONIC, clock.now(ClockId.MONOTONIC) + MS, again.set)
    assert again.wait(STATE_TIMEOUT)


def test_real_clock_timeout_with_a_raising_done_callback_keeps_later_timeouts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Real clock, through the Linux kernel: a timed FUTEX_WAIT times out on the timer
    thread, its done callback raises (then another callback of it runs); a later timed
    wait still times out (ETIMEDOUT), and a threaded one too."""
    k = LinuxKernel(clock=RealClock())
    p = k.new_process()
    a = p.mmap(PAGE_SIZE)
    ts = a + 64
    p.write(ts, struct.pack("<qq", 0, MS))
    t1, t2, t3 = p.new_task(), p.new_task(), p.new_task()
    first = t1.syscall_futex_nb(a, abi.FUTEX_WAIT | PRIV, 0, ts, 0, 0)
    assert isinstance(first, PendingWait)
    after = threading.Event()
    first.add_done_callback(boom)
    first.add_done_callback(lambda _: after.set())
    assert after.wait(STATE_TIMEOUT), "the second callback of the timed-out call never ran"
    assert first.result() == -abi.ETIMEDOUT
    second = t2.syscall_futex_nb(a, abi.FUTEX_WAIT | PRIV, 0, ts, 0, 0)
    assert isinstance(second, PendingWait)
    assert second.wait(STATE_TIMEOUT) == -abi.ETIMEDOUT
    threaded = Blocking(lambda: t3.syscall_futex(a, abi.FUTEX_WAIT | PRIV, 0, ts, 0, 0))
    assert threaded.result() == -abi.ETIMEDOUT
    wait_until(lambda: len(callback_errors(caplog, "futex.kernel.blocking")) == 1,
               "the exception is logged")
    p.futex.check_invariants()


# -- 2. Linux: exit / exec owning another process's private PI futex -----------------------


@dataclass
class CrossPi:
    """An owner task in process A; waiters in process B blocked in LOCK_PI_PRIVATE on a
    word of B's memory that names the owner's TID (B keyed it privately, in B)."""

    kernel: LinuxKernel
    a: Process
    b: Process
    owner: Task
    word: int

    def lock(self, t: Task) -> PendingWait:
        r = t.syscall_futex_nb(self.word, LOCK_PI, 0, 0, 0, 0)
        assert isinstance(r, PendingWait), f"LOCK_PI ended at once: {r}"
        return r

    def value(self) -> int:
        return self.b.load_u32(self.word)


@pytest.fixture
def cross(kernel: LinuxKernel) -> CrossPi:
    a, b = kernel.new_process(), kernel.new_process()
    owner = a.new_task()
    a.mmap(PAGE_SIZE)  # the same address in A: a private key there is another futex
    word = b.mmap(PAGE_SIZE)
    b.store_u32(word, owner.tid)
    return CrossPi(kernel, a, b, owner, word)


@pytest.mark.parametrize("how", ["exit", "exec"])
def test_exit_pi_state_list_hands_a_cross_process_private_pi_futex_on(
    cross: CrossPi, how: str
) -> None:
    """``exit_pi_state_list`` hashes ``pi_state->key`` -- the waiters' private key, with
    their ``mm`` -- so the hand-off happens in the waiters' bucket (it used to look in the
    owner's process and die on an assertion).  The top waiter owns the lock with
    OWNER_DIED | WAITERS | its TID; the next one stays blocked on it, now inheriting
    through the new owner, and gets it at that owner's UNLOCK_PI."""
    w1, w2 = cross.b.new_task(), cross.b.new_task()
    first, second = cross.lock(w1), cross.lock(w2)
    assert cross.owner.pi_states
    getattr(cross.owner, how)()
    assert first.result() == 0
    assert cross.value() == OD | W | w1.tid
    assert not second.done()
    assert cross.owner.pi_states == []
    assert [s.owner for s in w1.pi_states] == [w1]
    assert w1.syscall_futex(cross.word, UNLOCK_PI, 0, 0, 0, 0) == 0
    assert second.result() == 0
    assert cross.value() & abi.FUTEX_TID_MASK == w2.tid
    assert w2.syscall_futex(cross.word, UNLOCK_PI, 0, 0, 0, 0) == 0
    assert cross.value() == 0


def test_exit_hands_on_pi_futexes_of_its_own_and_of_another_process_alike(
    cross: CrossPi,
) -> None:
    """The owner holds one PI futex in its own process and one in another, at the same
    address: each is handed on in its own waiters' bucket; neither process's queues are
    touched for the other's."""
    own = cross.a.new_task()
    mine = cross.word  # the same address, in A's memory
    cross.a.store_u32(mine, cross.owner.tid)
    r = own.syscall_futex_nb(mine, LOCK_PI, 0, 0, 0, 0)
    assert isinstance(r, PendingWait)
    other = cross.lock(cross.b.new_task())
    assert len(cross.owner.pi_states) == 2
    cross.owner.exit()
    assert r.result() == other.result() == 0
    assert cross.a.load_u32(mine) == OD | W | own.tid
    assert cross.value() & abi.FUTEX_TID_MASK == other.task.tid
    assert cross.a.futex.queues() == {} and cross.b.futex.queues() == {}


def test_cross_process_pi_owner_exit_while_the_waiter_blocks_on_a_thread(
    cross: CrossPi,
) -> None:
    """Threaded: the waiter's thread blocks in LOCK_PI; the owner exits on this thread;
    the waiter's call returns 0 owning the lock."""
    w = cross.b.new_task()
    call = Blocking(lambda: w.syscall_futex(cross.word, LOCK_PI, 0, 0, 0, 0))
    wait_until(lambda: w.blocked is not None, "the waiter blocks in LOCK_PI")
    cross.owner.exit()
    assert call.result() == 0
    assert cross.value() == OD | W | w.tid


def test_cross_process_pi_futex_whose_waiter_left_is_just_dropped(cross: CrossPi) -> None:
    """A waiter that gave up (timeout, signal: here killed) leaves the PI state idle; the
    owner's exit then has nothing to hand on and the word keeps its value."""
    pw = cross.lock(cross.b.new_task())
    pw.kill()
    assert cross.owner.pi_states == []
    cross.owner.exit()
    assert cross.value() == W | cross.owner.tid


# -- 3. memory: a refused mmap changes nothing; arguments checked up front ------------------


def _linux_process() -> Any:
    return LinuxKernel(clock=ManualClock()).new_process()


def _zircon_process() -> Any:
    return ZirconKernel(clock=ManualClock()).new_process()


def _liteos_process() -> Any:
    return LiteosKernel(clock=ManualClock()).new_process()


@pytest.fixture(
    params=[_linux_process, _zircon_process, _liteos_process, AddressSpace],
    ids=["linux", "zircon", "liteos", "space"],
)
def mapper(request: pytest.FixtureRequest) -> Any:
    return request.param()


def _mappings(m: Any) -> list[tuple[int, int, int, bool]]:
    space = m if isinstance(m, AddressSpace) else m.space
    return [(x.start, x.end, x.prot, x.shared) for x in space.mappings]


def test_a_refused_mmap_changes_nothing(mapper: Any) -> None:
    """``p.mmap(1 << 47)`` (more than user space) used to move the placement hint past
    the top, so that no later mapping could be placed.  Now it is refused (MappingError)
    and the next mapping goes where it would have gone without it."""
    first = mapper.mmap(PAGE_SIZE)
    before = _mappings(mapper)
    for bad in (1 << 47, 1 << 64):
        with pytest.raises(MappingError):
            mapper.mmap(bad)
        assert _mappings(mapper) == before
    second = mapper.mmap(PAGE_SIZE)
    assert second == first + PAGE_SIZE
    mapper.store_u32(second, 7)
    assert mapper.load_u32(second) == 7


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"length": "4096"}, TypeError, "length must be an int"),
        ({"length": 4096.0}, TypeError, "length must be an int"),
        ({"length": True}, TypeError, "length must be an int"),
        ({"length": None}, TypeError, "length must be an int"),
        ({"file": "x"}, TypeError, "file must be a MemoryObject"),
        ({"file": b"data"}, TypeError, "file must be a MemoryObject"),
        ({"prot": "rw"}, TypeError, "prot must be an int"),
        ({"prot": 1.0}, TypeError, "prot must be an int"),
        ({"shared": "yes"}, TypeError, "shared must be a bool"),
        ({"shared": 1}, TypeError, "shared must be a bool"),
        ({"addr": "0x10000000"}, TypeError, "addr must be an int"),
        ({"addr": 0x10000000 + 0.0}, TypeError, "addr must be an int"),
        ({"offset": None}, TypeError, "offset must be an int"),
        ({"length": 0}, MappingError, "positive"),
        ({"length": -PAGE_SIZE}, MappingError, "positive"),
        ({"prot": 0x100}, MappingError, "protection"),
        ({"prot": -1}, MappingError, "protection"),
        ({"offset": 1}, MappingError, "multiple of the page"),
        ({"offset": -PAGE_SIZE}, MappingError, "multiple of the page"),
        ({"offset": 1 << 80, "file": File("f")}, MappingError, "overflows pgoff"),
        ({"addr": 0x10000001}, MappingError, "page aligned"),
        ({"addr": -PAGE_SIZE}, MappingError, "outside user space"),
        ({"addr": 1 << 48}, MappingError, "outside user space"),
        ({"length": 1 << 48}, MappingError, "larger than user space"),
    ],
)
def test_mmap_arguments_are_checked_up_front_with_a_precise_error(
    mapper: Any, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Every argument, by type then by range, before anything is placed or mapped:
    ``mmap(file='x')`` used to be accepted and fail later inside a futex call."""
    first = mapper.mmap(PAGE_SIZE)
    before = _mappings(mapper)
    args: dict[str, Any] = {"length": PAGE_SIZE, **kwargs}
    length = args.pop("length")
    with pytest.raises(error, match=match):
        mapper.mmap(length, **args)
    assert _mappings(mapper) == before
    assert mapper.mmap(PAGE_SIZE) == first + PAGE_SIZE


def test_a_refused_fixed_mmap_keeps_what_was_mapped_there(mapper: Any) -> None:
    """A MAP_FIXED-like request refused for a bad argument does not unmap the range."""
    a = mapper.mmap(PAGE_SIZE)
    mapper.store_u32(a, 0x1234)
    with pytest.raises(TypeError):
        mapper.mmap(PAGE_SIZE, addr=a, file="not a file")
    with pytest.raises(MappingError):
        mapper.mmap(PAGE_SIZE, addr=a, prot=0x100)
    assert mapper.load_u32(a) == 0x1234


@pytest.mark.parametrize("call", ["munmap", "mprotect"])
def test_munmap_and_mprotect_arguments_are_checked_too(mapper: Any, call: str) -> None:
    """The same precise errors for the range calls; a refused one changes nothing."""
    a = mapper.mmap(PAGE_SIZE)
    before = _mappings(mapper)
    fn = getattr(mapper, call)
    extra = (PROT_READ,) if call == "mprotect" else ()
    with pytest.raises(TypeError, match="addr must be an int"):
        fn(str(a), PAGE_SIZE, *extra)
    with pytest.raises(TypeError, match="length must be an int"):
        fn(a, None, *extra)
    with pytest.raises(MappingError, match=f"bad {call} range"):
        fn(a + 1, PAGE_SIZE, *extra)
    with pytest.raises(MappingError, match=f"bad {call} range"):
        fn(a, 1 << 64, *extra)
    if call == "mprotect":
        with pytest.raises(TypeError, match="prot must be an int"):
            fn(a, PAGE_SIZE, "r")
    assert _mappings(mapper) == before


def test_placement_searches_again_from_the_base_before_refusing() -> None:
    """The placement hint only moves up; once nothing fits above it, the search starts
    over from the mmap base (the bottom-up ``arch_get_unmapped_area``'s second pass from
    ``TASK_UNMAPPED_BASE``), so a hole left by munmap is used rather than refused."""
    base = 0x10000000
    s = AddressSpace(task_size=base + 3 * PAGE_SIZE)
    a, b, c = (s.mmap(PAGE_SIZE) for _ in range(3))
    assert (a, b, c) == (base, base + PAGE_SIZE, base + 2 * PAGE_SIZE)
    with pytest.raises(MappingError, match="no room"):
        s.mmap(PAGE_SIZE)
    s.munmap(b, PAGE_SIZE)
    assert s.mmap(PAGE_SIZE) == b
    with pytest.raises(MappingError, match="no room"):
        s.mmap(PAGE_SIZE)


def test_liteos_map_region_full_is_a_mapping_error_and_changes_nothing() -> None:
    """LiteOS places mmaps first-fit in its map region (``OsAllocRange``); a request
    larger than any gap is LOS_MMap's ENOMEM -- MappingError, not MemoryError -- and the
    next mapping goes where it would have."""
    p = _liteos_process()
    first = p.mmap(PAGE_SIZE)
    with pytest.raises(MappingError, match="no room"):
        p.mmap(los.USER_ASPACE_TOP_MAX - los.USER_MAP_BASE)
    assert p.mmap(PAGE_SIZE) == first + PAGE_SIZE


def test_shared_anonymous_mmap_ignores_the_offset_as_do_mmap_does() -> None:
    """``do_mmap``: MAP_SHARED|MAP_ANONYMOUS ignores ``pgoff``; the mapping used to keep it
    and fault on every access past its own new object's end."""
    p = _linux_process()
    a = p.mmap(PAGE_SIZE, shared=True, offset=16 * PAGE_SIZE)
    p.store_u32(a, 5)
    m = p.space.mapping_at(a)
    assert m is not None and m.offset == 0 and isinstance(m.obj, AnonymousMemory)
    assert p.load_u32(a) == 5
