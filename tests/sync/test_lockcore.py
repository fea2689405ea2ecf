"""futex.native.LockCore: futex.sync's Mutex / RLock algorithm in C, on a real lock node.

The node is glibc's ``pthread_mutex_t`` shape (sync contract, "Layout"): the lock word at
node+0 (here byte 16 of a 64-byte shared anonymous mmap, as in a Lock primitive), the RLock
count at +4, the state at +8, the robust-list ``prev`` at +24 and ``next`` at +32 (the list
points at node+32, futex_offset -32) and the spin estimate at +40.  The word is the robust
TID word of Linux: TID in bits 0-29, FUTEX_OWNER_DIED (bit 30), FUTEX_WAITERS (bit 31).

Sources the tests pin:

- the order and shape of glibc's robust list (``nptl/descr.h`` ENQUEUE_MUTEX_BOTH /
  DEQUEUE_MUTEX, ``nptl/pthread_mutex_lock.c`` robust path: set list_op_pending, take
  the word, link, clear pending);
- the kernel's exit walk (Linux ``kernel/futex/core.c`` ``exit_robust_list`` /
  ``handle_futex_death``): a dead owner's word becomes ``(word & W) | OD`` and, with W,
  a waiter is woken; a pending entry whose TID bits are 0 gets a wake (6.2+, 90d758896787);
- glibc BZ #20973 (commit 353683a22e): a thread that has slept takes the lock with W
  ("assume other futex waiters"), the owner-died takeover included;
- sync_design §8: release keeps W in the free word while waiters may remain, and takes
  it back to 0 only when its wake woke nobody.

Hooks: a Python subclass defines ``_owner_died``, ``_not_recoverable``, ``_not_owner`` and
``_deadlock``, as futex.sync.mutex.Mutex does; here they record or raise.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
import signal
import struct
import threading
import time
import weakref
from collections.abc import Callable, Iterator

import pytest

from tests.support import STATE_TIMEOUT, Blocking, asleep_in_futex, host_has, wait_until

try:
    from futex.native import Word
    from futex.native._native import (
        LockCore,
        robust_link,
        robust_mode,
        robust_pending,
        robust_unlink,
        sync_tid,
        syscall6,
    )
except ImportError as exc:  # pragma: no cover - hosts without the extension
    pytest.skip(f"futex.native unavailable: {exc}", allow_module_level=True)

W = 0x80000000
OD = 0x40000000
TID_MASK = 0x3FFFFFFF
NOTRECOVERABLE = 0x3FFFFFFF
INCONSISTENT = 1
#: get_robust_list(2) by machine (asm-generic's 100 on the newer ports).
GET_ROBUST_LIST = {"x86_64": 274, "aarch64": 100, "arm64": 100, "riscv64": 100}

pytestmark = pytest.mark.skipif(
    robust_mode() != "robust-list",
    reason="no glibc robust list to join (robust_mode() is 'pid-liveness': not 64-bit glibc, "
    "or get_robust_list refused): LockCore is not built there",
)


class OwnerDied(Exception):
    pass


class NotRecoverable(Exception):
    pass


class Core(LockCore):
    """LockCore with the hooks of futex.sync.mutex.Mutex reduced to recording/raising."""

    def __init__(self, node: Node, recursive: bool = False, *, raise_died: bool = False) -> None:
        super().__init__(node.word, recursive)
        self.node = node
        self.raise_died = raise_died
        #: (hook, word, count, state) seen by each _owner_died call
        self.seen: list[tuple[str, int, int, int]] = []

    def _owner_died(self) -> None:
        n = self.node
        self.seen.append(("owner_died", n.word.load(), n.u32(4), n.u32(8)))
        if self.raise_died:
            raise OwnerDied
        n.set_u32(8, 0)  # what on_owner_died returning does: the lock is consistent again

    _owner_died_in_with = _owner_died  # __enter__'s hook: the same record

    def _not_recoverable(self) -> None:
        raise NotRecoverable

    def _not_owner(self, what: str) -> None:
        raise RuntimeError(f"{what} by a thread that does not own the lock")

    def _deadlock(self) -> None:
        raise RuntimeError("would deadlock: this thread holds the Mutex")


class Node:
    """A 64-byte lock primitive in shared anonymous memory; the node starts at +16."""

    def __init__(self) -> None:
        self.mem = mmap.mmap(-1, 64)
        self.word = Word(self.mem, 16)
        self.addr = self.word.address

    def u32(self, off: int) -> int:
        value: int = struct.unpack_from("<I", self.mem, 16 + off)[0]
        return value

    def set_u32(self, off: int, value: int) -> None:
        struct.pack_into("<I", self.mem, 16 + off, value)

    def u64(self, off: int) -> int:
        value: int = struct.unpack_from("<Q", self.mem, 16 + off)[0]
        return value

    def close(self) -> None:
        # Never unmap a node that is still on this thread's list: glibc's next robust
        # mutex operation would write into it.
        if self.u64(32) != 0 and self.word.load() & TID_MASK == sync_tid():
            robust_unlink(self.addr)
        self.word.release()
        self.mem.close()


@pytest.fixture
def node() -> Iterator[Node]:
    n = Node()
    yield n
    n.close()


def u64_at(addr: int) -> int:
    return ctypes.c_uint64.from_address(addr).value


def robust_head(tid: int = 0) -> int:
    """A thread's robust-list head (0: the calling thread's), by get_robust_list."""
    nr = GET_ROBUST_LIST.get(platform.machine())
    if nr is None:
        pytest.skip(f"get_robust_list's number on {platform.machine()} is not in the table")
    head, length = ctypes.c_uint64(0), ctypes.c_uint64(0)
    assert syscall6(nr, tid, ctypes.addressof(head), ctypes.addressof(length)) == 0
    assert length.value == 24 and ctypes.c_int64.from_address(head.value + 8).value == -32
    return head.value




class Holder:
    """A thread that takes the lock and holds it until finish()."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.tid = 0
        self.held = threading.Event()
        self.go = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.held.wait(STATE_TIMEOUT)

    def _run(self) -> None:
        self.tid = sync_tid()
        assert self.core.acquire()
        self.held.set()
        self.go.wait(STATE_TIMEOUT)
        self.core.release()

    def finish(self) -> None:
        self.go.set()
        self.thread.join(STATE_TIMEOUT)
        assert not self.thread.is_alive()


def taking_waiter(core: Core, node: Node) -> Blocking:
    """A thread that acquires ``core`` (asleep while it is held) and releases it; its
    result: (its TID, the word as it took the lock)."""

    def waiter() -> tuple[int, int]:
        assert core.acquire(timeout=STATE_TIMEOUT)
        got = node.word.load()
        core.release()
        return sync_tid(), got

    return Blocking(waiter)


class Interrupted(Exception):
    """Raised by the SIGUSR1 handler of :func:`interrupted`."""


def interrupted(acquire: Callable[[], object], signaller: Callable[[], None]) -> None:
    """Call ``acquire`` in the main thread while ``signaller`` runs on another thread and
    sends SIGUSR1, whose handler raises :class:`Interrupted`: it must end ``acquire``."""

    def handler(signum: int, frame: object) -> None:
        raise Interrupted

    old = signal.signal(signal.SIGUSR1, handler)
    try:
        thread = threading.Thread(target=signaller, daemon=True)
        thread.start()
        with pytest.raises(Interrupted):
            acquire()
        thread.join(STATE_TIMEOUT)
    finally:
        signal.signal(signal.SIGUSR1, old)


# -- uncontended --------------------------------------------------------------------------


def test_uncontended_acquire_stores_the_tid_and_release_zero(node: Node) -> None:
    """glibc pthread_mutex_lock.c robust path: the free word 0 becomes the owner's TID;
    unlock with no waiter leaves 0."""
    core = Core(node)
    assert not core.locked() and not core._is_owned()
    assert core.acquire() is True
    assert node.word.load() == sync_tid()
    assert core.locked() and core._is_owned()
    core.release()
    assert node.word.load() == 0
    with core as entered:
        assert entered is core and node.word.load() == sync_tid()
    assert node.word.load() == 0
    with pytest.raises(KeyError), core:
        raise KeyError("the body's exception propagates; __exit__ releases")
    assert node.word.load() == 0


def test_robust_list_links_the_node_in_glibc_order(node: Node) -> None:
    """nptl/descr.h ENQUEUE_MUTEX_BOTH / DEQUEUE_MUTEX: the head points at node+32, the
    node's next is the old first entry and its prev the head; list_op_pending is clear
    after each operation; unlink restores the list."""
    head = robust_head()
    before = u64_at(head)
    core = Core(node)
    core.acquire()
    assert u64_at(head) == node.addr + 32
    assert (node.u64(32), node.u64(24)) == (before, head)
    assert u64_at(head + 16) == 0
    core.release()
    assert u64_at(head) == before
    assert (node.u64(32), node.u64(24), u64_at(head + 16)) == (0, 0, 0)


def test_unlinking_from_the_middle_of_the_list() -> None:
    """DEQUEUE_MUTEX is O(1) anywhere in the list: release in acquire order."""
    head = robust_head()
    before = u64_at(head)
    a, b = Node(), Node()
    try:
        ca, cb = Core(a), Core(b)
        ca.acquire()
        cb.acquire()
        assert u64_at(head) == b.addr + 32 and b.u64(32) == a.addr + 32
        ca.release()
        assert u64_at(head) == b.addr + 32 and b.u64(32) == before
        cb.release()
        assert u64_at(head) == before
    finally:
        a.close()
        b.close()


def test_rlock_counts_recursion(node: Node) -> None:
    """RLock (sync_design §1.2): re-entry by the owner counts at node+4; the word is
    released only when the count drops to 0."""
    core = Core(node, recursive=True)
    for depth in (1, 2, 3):
        assert core.acquire() is True
        assert (node.word.load(), node.u32(4)) == (sync_tid(), depth)
    core.release()
    core.release()
    assert (node.word.load(), node.u32(4)) == (sync_tid(), 1)
    core.release()
    assert (node.word.load(), node.u32(4)) == (0, 0)


def test_mutex_reacquire_by_its_owner_calls_deadlock(node: Node) -> None:
    """Contract: a Mutex re-acquired by its owner thread raises (_deadlock hook), blocking
    or not; the lock stays held and list_op_pending is clear."""
    core = Core(node)
    core.acquire()
    with pytest.raises(RuntimeError, match="would deadlock"):
        core.acquire()
    with pytest.raises(RuntimeError, match="would deadlock"):
        core.acquire(False)
    assert node.word.load() == sync_tid() and u64_at(robust_head() + 16) == 0
    core.release()


def test_release_by_a_non_owner_calls_not_owner(node: Node) -> None:
    """Locks are owned (sync_design §2e): release of a free lock, or of one another thread
    holds, calls _not_owner('release') and changes nothing."""
    core = Core(node)
    with pytest.raises(RuntimeError, match=r"^release by a thread"):
        core.release()
    holder = Holder(core)
    with pytest.raises(RuntimeError, match=r"^release by a thread"):
        core.release()
    assert node.word.load() == holder.tid and core.locked() and not core._is_owned()
    holder.finish()
    assert node.word.load() == 0


def test_nonblocking_and_argument_errors(node: Node) -> None:
    """threading.Lock.acquire's argument rules: a timeout with blocking=False and a
    negative timeout other than -1 are ValueError; -1 and None wait forever."""
    core = Core(node)
    holder = Holder(core)
    assert core.acquire(False) is False
    assert core.acquire(blocking=False) is False
    assert node.word.load() == holder.tid  # a non-blocking try never marks W
    with pytest.raises(ValueError, match="non-blocking"):
        core.acquire(False, 1)
    with pytest.raises(ValueError, match="non-negative"):
        core.acquire(timeout=-2)
    with pytest.raises(ValueError, match="NaN"):
        core.acquire(timeout=float("nan"))
    with pytest.raises(TypeError, match="timeout must be a number"):
        core.acquire(timeout="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        core.acquire(True, -1, 3)  # type: ignore[call-arg]
    holder.finish()
    assert core.acquire(True, -1)
    core.release()
    assert core.acquire(timeout=None)
    core.release()


def test_constructor_errors() -> None:
    """The node needs a live native Word, 8-aligned, with 48 bytes from it."""
    mem = mmap.mmap(-1, 64)
    with pytest.raises(TypeError, match=r"futex\.native\.Word"):
        LockCore(mem, False)  # type: ignore[arg-type]
    with Word(mem, 20) as w, pytest.raises(ValueError, match="8-aligned"):
        LockCore(w, False)
    with Word(mem, 24) as w, pytest.raises(ValueError, match="needs 48 bytes"):
        LockCore(w, False)
    released = Word(mem, 16)
    released.release()
    with pytest.raises(ValueError, match="released"):
        LockCore(released, False)
    bare = LockCore.__new__(LockCore)
    with pytest.raises(ValueError, match="not initialised"):
        bare.acquire()
    n = Node()
    core = Core(n)
    assert weakref.ref(core)() is core
    n.word.release()
    with pytest.raises(ValueError, match="released Word"):
        core.acquire()
    n.mem.close()
    mem.close()


# -- contended ----------------------------------------------------------------------------


def test_contended_handoff_marks_w_and_the_woken_keeps_it(node: Node) -> None:
    """A waiter sets W before FUTEX_WAIT (shared key); the release wakes it; having slept
    it takes the lock as TID|W (glibc BZ #20973); its own release then wakes nobody and
    takes W back to 0 (sync_design §8)."""
    core = Core(node)
    core.acquire()
    me = sync_tid()
    b = taking_waiter(core, node)
    wait_until(lambda: node.word.load() == me | W, "the waiter set FUTEX_WAITERS")
    core.release()
    tid, got = b.result()
    assert got == tid | W
    assert node.word.load() == 0


def test_release_keeps_w_when_its_wake_woke_someone(node: Node) -> None:
    """sync_design §8: the release of TID|W stores W (not 0, as glibc's does) and wakes
    one; the word stays W while the woken may not have taken it, so a later unlock still
    wakes if that waiter dies.  Here the woken is a plain futex waiter that never takes
    the lock."""
    core = Core(node)
    core.acquire()
    me = sync_tid()
    node.word.store(me | W)
    b = Blocking(lambda: node.word.wait(me | W, STATE_TIMEOUT))
    wait_until(lambda: asleep_in_futex(b.thread.native_id or 0, node.addr), "waiter asleep")
    core.release()
    assert b.result() is True
    assert node.word.load() == W
    assert core.acquire() is True and node.word.load() == me | W  # a free W word keeps W
    core.release()
    assert node.word.load() == 0  # this time the wake woke nobody: W goes back to 0


def test_a_thread_that_slept_takes_a_free_word_with_w(node: Node) -> None:
    """glibc BZ #20973 (commit 353683a22e), "assume other futex waiters": once a thread
    has slept it takes even a 0 word as TID|W, since other sleepers may remain."""
    core = Core(node)
    core.acquire()
    me = sync_tid()
    b = taking_waiter(core, node)
    tid = b.thread.native_id or 0
    wait_until(lambda: asleep_in_futex(tid, node.addr), "the waiter sleeps in futex")
    assert node.word.load() == me | W
    robust_unlink(node.addr)  # an unlock that leaves 0, as a W-dropping release would
    node.word.store(0)
    node.word.wake(1)
    assert b.result() == (tid, tid | W)


def test_timeout_returns_false_after_the_deadline(node: Node) -> None:
    """threading semantics: False once the timeout (one CLOCK_MONOTONIC deadline) passes;
    a waiter that slept leaves its W for the holder's release, which then wakes nobody
    and clears it; an expired deadline returns at once, as the Python reference does."""
    core = Core(node)
    holder = Holder(core)
    assert core.acquire(timeout=0) is False
    assert node.word.load() == holder.tid  # an expired deadline neither marks W nor sleeps
    t0 = time.monotonic()
    assert core.acquire(timeout=0.05) is False
    assert time.monotonic() - t0 >= 0.05
    assert node.word.load() == holder.tid | W
    assert u64_at(robust_head() + 16) == 0
    holder.finish()
    assert node.word.load() == 0


def test_word_stays_mapped_while_a_waiter_sleeps(node: Node) -> None:
    """A blocking acquire holds Word.busy (as Word.wait does): release() refuses."""
    core = Core(node)
    holder = Holder(core)

    def waiter() -> bool:
        got = core.acquire(timeout=STATE_TIMEOUT)
        core.release()
        return got

    b = Blocking(waiter)
    wait_until(lambda: node.word.load() == holder.tid | W, "the waiter set FUTEX_WAITERS")
    with pytest.raises(BufferError):
        node.word.release()
    holder.finish()
    assert b.result() is True
    assert node.word.load() == 0


def test_a_sleeping_waiter_keeps_list_op_pending(node: Node) -> None:
    """glibc pthread_mutex_lock.c robust path: list_op_pending names the node while the
    waiter sleeps (so the kernel wakes another waiter if it dies woken but before taking
    the word), and is cleared once the lock is taken and linked."""
    core = Core(node)
    holder = Holder(core)
    seen: list[int] = []

    def waiter() -> int:
        assert core.acquire(timeout=STATE_TIMEOUT)
        seen.append(u64_at(robust_head() + 16))
        core.release()
        return u64_at(robust_head() + 16)

    b = Blocking(waiter)
    tid = b.thread.native_id or 0
    wait_until(lambda: asleep_in_futex(tid, node.addr), "the waiter sleeps in futex")
    assert u64_at(robust_head(tid) + 16) == node.addr + 32
    holder.finish()
    assert b.result() == 0 and seen == [0]


@pytest.mark.parametrize("target", ["main", "other"])
def test_a_raising_signal_handler_ends_the_wait(node: Node, target: str) -> None:
    """Signals during acquire: the main thread sleeps in slices of <= 50 ms and runs the
    handlers between them (a signal on another thread only sets the flag), or is woken by
    EINTR; a raising handler ends acquire, list_op_pending is cleared, W stays."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread only")
    core = Core(node)
    holder = Holder(core)
    main_tid = sync_tid()

    def poke() -> None:
        wait_until(lambda: asleep_in_futex(main_tid, node.addr), "acquire sleeps in futex")
        ident = threading.main_thread().ident if target == "main" else threading.get_ident()
        assert ident is not None
        signal.pthread_kill(ident, signal.SIGUSR1)

    interrupted(lambda: core.acquire(timeout=STATE_TIMEOUT), poke)
    assert u64_at(robust_head() + 16) == 0
    assert node.word.load() == holder.tid | W
    holder.finish()
    assert node.word.load() == 0


def test_a_woken_waiter_that_leaves_passes_the_wake_on(node: Node) -> None:
    """sync_design §1.1 "Leaving after a wake" (glibc lll_timedlock_wait redoes the
    exchange after every wake): a waiter that was woken and then leaves (here a raising
    signal handler) wakes one more, so the wake it consumed is not lost to the others."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread only")
    core = Core(node)
    holder = Holder(core)
    main_tid = sync_tid()
    other: list[Blocking] = []

    def conduct() -> None:
        wait_until(lambda: asleep_in_futex(main_tid, node.addr), "acquire sleeps in futex")
        # a second sleeper queued behind the main thread (futex queues are FIFO)
        other.append(Blocking(lambda: node.word.wait(holder.tid | W, 10.0)))
        tid = other[0].thread.native_id or 0
        wait_until(lambda: asleep_in_futex(tid, node.addr), "the second waiter sleeps")
        assert node.word.wake(1) == 1  # wakes the main thread: it sleeps again, woken once
        ident = threading.main_thread().ident
        assert ident is not None
        signal.pthread_kill(ident, signal.SIGUSR1)

    interrupted(core.acquire, conduct)
    assert other[0].result() is True  # woken by the pass-on, not by its 10 s timeout
    holder.finish()
    assert node.word.load() == 0


# -- owner died ---------------------------------------------------------------------------


def test_owner_died_takeover_keeps_w_and_marks_inconsistent(node: Node) -> None:
    """Kernel handle_futex_death leaves OD|W; acquire takes it as TID|W (the W of the word
    kept, glibc BZ #20973) and sets state INCONSISTENT (an RLock's count 1) before
    _owner_died runs; a hook that returns lets acquire return True."""
    core = Core(node, recursive=True)
    node.word.store(OD | W)
    node.set_u32(4, 7)  # a dead owner's count
    assert core.acquire() is True
    assert core.seen == [("owner_died", sync_tid() | W, 1, INCONSISTENT)]
    assert u64_at(robust_head()) == node.addr + 32
    core.release()  # the hook made it consistent: W stays, nobody woken, back to 0
    assert node.word.load() == 0
    node.word.store(OD)
    assert core.acquire() is True and core.seen[-1][1] == sync_tid()
    core.release()


def test_owner_died_raised_leaves_the_lock_held_then_notrecoverable(node: Node) -> None:
    """OwnerDied is raised with the lock held (glibc EOWNERDEAD); released without
    make_consistent the word becomes NOTRECOVERABLE and every acquire raises."""
    core = Core(node, recursive=True, raise_died=True)
    node.word.store(OD)
    with pytest.raises(OwnerDied):
        core.acquire()
    assert node.word.load() == sync_tid() and core._is_owned()
    assert (node.u32(4), node.u32(8)) == (1, INCONSISTENT)
    core.release()
    assert node.word.load() == NOTRECOVERABLE and node.u32(8) == INCONSISTENT
    assert core.locked() and not core._is_owned()  # as the Python reference says
    with pytest.raises(NotRecoverable):
        core.acquire()
    with pytest.raises(NotRecoverable):
        core.acquire(False)
    with pytest.raises(RuntimeError, match=r"^release"):
        core.release()
    assert u64_at(robust_head() + 16) == 0
    node.word.store(0)  # what reset() does
    node.set_u32(8, 0)
    node.set_u32(4, 0)


def test_forked_child_exiting_with_the_lock_marks_owner_died(node: Node) -> None:
    """Linux exit_robust_list: a process that exits holding the lock (a fork child: new
    TID, refreshed by the atfork handler; glibc's _Fork empties its list) leaves OD; the
    next acquire calls _owner_died."""
    core = Core(node)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 3
        try:
            code = 0 if core.acquire() and node.word.load() == os.getpid() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert node.word.load() == OD
    assert core.acquire() is True
    assert core.seen == [("owner_died", sync_tid(), 0, INCONSISTENT)]  # a Mutex: no count
    core.release()
    assert node.word.load() == 0


def test_a_fork_child_cannot_release_the_parents_lock(node: Node) -> None:
    """The atfork child handler drops the cached TID: the child (a new TID) is not the
    owner of a lock the parent's thread holds (sync_design §2e, "Fork")."""
    core = Core(node)
    core.acquire()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 3
        try:
            assert sync_tid() == os.getpid() and not core._is_owned()
            try:
                core.release()
                code = 2
            except RuntimeError:
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert node.word.load() == sync_tid()
    core.release()


def test_sigkilled_holder_wakes_the_waiter(node: Node) -> None:
    """SIGKILL of the holder: the kernel marks OD|W and wakes the sleeping waiter (shared
    futex key), which takes the lock as TID|W (sync_design §2a)."""
    core = Core(node)

    def waiter() -> tuple[bool, int]:
        got = core.acquire(timeout=STATE_TIMEOUT)
        core.release()
        return got, sync_tid()

    ready_r, ready_w = os.pipe()
    never_r, never_w = os.pipe()  # the child sleeps reading it until killed
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            core.acquire()
            os.write(ready_w, b"x")
            os.read(never_r, 1)
        finally:
            os._exit(1)
    try:
        assert os.read(ready_r, 1) == b"x"
        assert node.word.load() == pid
        b = Blocking(waiter)
        wait_until(lambda: node.word.load() == pid | W, "the waiter set FUTEX_WAITERS")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        for fd in (ready_r, ready_w, never_r, never_w):
            os.close(fd)
    ok, tid = b.result()
    assert ok is True
    assert core.seen == [("owner_died", tid | W, 0, INCONSISTENT)]
    assert node.word.load() == 0


def test_thread_ending_with_the_lock_marks_owner_died(node: Node) -> None:
    """A threading.Thread that ends holding the lock: the kernel walks its list when the
    OS thread exits (after join() may already have returned), so acquire waits for it."""
    core = Core(node)
    t = threading.Thread(target=core.acquire)
    t.start()
    t.join()
    assert core.acquire(timeout=STATE_TIMEOUT) is True
    assert len(core.seen) == 1
    _, word, count, state = core.seen[0]
    assert word & ~W == sync_tid() and (count, state) == (0, INCONSISTENT)
    core.release()


@host_has("robust_pending_wake_tid0")
def test_pending_entry_of_a_free_w_word_gets_a_wake(node: Node) -> None:
    """handle_futex_death's pending rule (6.2+, 90d758896787): a process that dies with
    list_op_pending on a word whose TID bits are 0 (the W kept in a free word) wakes one
    waiter — what rescues the others when a woken waiter is killed."""
    node.word.store(W)
    b = Blocking(lambda: node.word.wait(W, STATE_TIMEOUT))
    wait_until(lambda: asleep_in_futex(b.thread.native_id or 0, node.addr), "waiter asleep")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            robust_pending(node.addr)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert b.result() is True
    assert node.word.load() == W


# -- the owner context functions ----------------------------------------------------------


def test_owner_context_functions(node: Node) -> None:
    """robust_link / robust_pending / robust_unlink on the calling thread's glibc head, as
    the Python reference Mutex uses them; sync_tid is gettid."""
    head = robust_head()
    before = u64_at(head)
    assert sync_tid() == threading.get_native_id()
    robust_pending(node.addr)
    assert u64_at(head + 16) == node.addr + 32
    robust_link(node.addr)
    assert u64_at(head) == node.addr + 32
    robust_pending(0)
    assert u64_at(head + 16) == 0
    robust_unlink(node.addr)
    assert u64_at(head) == before
    with pytest.raises(ValueError, match="on no list"):
        robust_unlink(node.addr)
    with pytest.raises(ValueError, match="multiple of 8"):
        robust_link(node.addr + 4)
    with pytest.raises(ValueError, match="multiple of 8"):
        robust_link(0)
    with pytest.raises(TypeError, match="int address"):
        robust_link("1")  # type: ignore[arg-type]


def test_reference_rlock_reentry_leaves_nothing_pending() -> None:
    """The Python reference agrees with the C core on list_op_pending: an RLock re-entry
    (the node already linked) clears it, as glibc's robust lock leaves pending 0 after
    every acquire (nptl/pthread_mutex_lock.c: the recursive owner check returns before
    list_op_pending is set)."""
    from futex.sync import RLock

    head = robust_head()
    m = RLock.create(bytearray(RLock.SIZE))
    for acquire in (m.acquire, lambda: RLock.acquire(m)):  # C core, Python reference
        assert acquire()
        assert acquire()  # re-entry
        assert u64_at(head + 16) == 0, "list_op_pending left set after a re-entry"
        m.release()
        m.release()
    m.close()
