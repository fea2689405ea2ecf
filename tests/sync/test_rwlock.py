"""futex.sync.RWLock: readers share, writers exclude, and dead holders are recovered.

Sources pinned: Rust std ``library/std/src/sys/sync/rwlock/futex.rs`` (the state word,
readers blocked while a writer waits, the last reader wakes the writer); glibc commit
3c9c61febe ("a writer that times out must wake the readers queued behind it");
sync_design §1.5 (the writer gate, the reader table) and §5 ("RWLock: concurrent
readers; writers not starved; a writer timeout wakes queued readers; a dead writer and a
dead reader are recovered").  The write side also runs the generic lock suite
(tests/sync/test_generic_lock.py, family "RWLock.write").

Most bodies take the harness's environments (tests/sync/harness.py): native and
emulated kernel, thread or process workers.  A worker that returns while holding a lock
dies holding it natively (the thread ends, or the forked child exits); on the emulated
kernel the test ends its task (``task.exit()``), which runs the same robust-list walk.
"""

from __future__ import annotations

import struct
import time

import pytest

from futex.sync import LayoutError, LockNotRecoverable, Mutex, NotOwnerError, OwnerDied
from futex.sync.rwlock import SLICE, RWLock, RWLockStatistics, size_for
from futex.sync.rwreaders import IDLE, PENDING, READY, STATE, TABLE
from tests.support import STATE_TIMEOUT, wait_until
from tests.sync.harness import Env, Handle


def _die(h: Handle) -> None:
    """A worker that returned holding a lock dies holding it: natively it already has
    (its thread ended / its process exited); emulated, end its task now."""
    h.result()
    if h.task is not None:
        h.task.exit()


def _stats(rw: RWLock) -> RWLockStatistics:
    return rw.statistics()


def _write_once(rw: RWLock) -> bool:
    """A worker: take the write lock (bounded), release it; whether it got it."""
    ok = rw.acquire_write(timeout=STATE_TIMEOUT)
    if ok:
        rw.release_write()
    return ok


def _u32(env: Env, offset: int) -> int:
    return int(struct.unpack("<I", env.read(offset, 4))[0])


def _slot_of(env: Env, rw: RWLock, tid: int) -> int:
    """The arena offset of the slot whose tid word is ``tid``."""
    for i in range(rw.slots):
        if _u32(env, rw.offset + TABLE + 16 * i) == tid:
            return rw.offset + TABLE + 16 * i
    raise AssertionError(f"no slot names thread {tid}")


# -- readers and writers ---------------------------------------------------------------


def test_readers_share(env: Env) -> None:
    """Several readers hold the lock at once (Rust rwlock/futex.rs: the state counts
    readers); statistics() counts them and their slots."""
    rw = env.make(RWLock)
    assert rw.acquire_read()

    def also_read(rw: RWLock) -> tuple[bool, int]:
        ok = rw.acquire_read(blocking=False)
        n = rw.statistics().readers
        rw.release_read()
        return ok, n

    assert env.start(also_read, rw).result() == (True, 2)
    st = _stats(rw)
    assert (st.readers, st.write_locked, st.slots_used, st.unslotted) == (1, False, 1, 0)
    with rw.read_lock():
        assert _stats(rw).readers == 2  # re-entry by the same thread
    rw.release_read()
    assert _stats(rw).readers == 0
    assert _stats(rw).slots_used == 0


def test_writer_excludes_everyone(env: Env) -> None:
    """The write lock excludes readers and writers; a read lock excludes writers (Rust
    rwlock/futex.rs: WRITE_LOCKED = the whole count field)."""
    rw = env.make(RWLock)

    def try_both(rw: RWLock) -> tuple[bool, bool]:
        return rw.acquire_read(blocking=False), rw.acquire_write(timeout=0)

    def try_write(rw: RWLock) -> bool:
        return rw.acquire_write(blocking=False)

    assert rw.acquire_write()
    assert env.start(try_both, rw).result() == (False, False)
    st = _stats(rw)
    assert (st.write_locked, st.writer, st.readers) == (True, env.tid(), 0)
    rw.release_write()
    assert rw.acquire_read()
    assert env.start(try_write, rw).result() is False
    rw.release_read()


def test_exclusion_under_load(env: Env) -> None:
    """Readers and writers in loops: a writer never sees a reader or another writer
    inside, readers never see a writer (in-section words, as Trio's generic_lock_test)."""
    rw = env.make(RWLock)
    writers_in, readers_in, bad, total = env.shared(), env.shared(), env.shared(), env.shared()
    rounds = 100 if env.kernel == "native" else 20

    def writer(rw: RWLock) -> int:
        for _ in range(rounds):
            with rw.write_lock():
                if writers_in.add(1) or readers_in.load():
                    bad.add(1)
                time.sleep(0)
                writers_in.add(-1 & 0xFFFF_FFFF)
                total.add(1)
        return rounds

    def reader(rw: RWLock) -> int:
        for _ in range(rounds):
            with rw.read_lock():
                readers_in.add(1)
                if writers_in.load():
                    bad.add(1)
                time.sleep(0)
                readers_in.add(-1 & 0xFFFF_FFFF)
        return rounds

    handles = [env.start(writer, rw), env.start(reader, rw), env.start(writer, rw),
               env.start(reader, rw)]
    assert [h.result() for h in handles] == [rounds] * 4
    assert bad.load() == 0
    assert total.load() == 2 * rounds
    st = _stats(rw)
    assert (st.readers, st.write_locked, st.slots_used) == (0, False, 0)


def test_write_release_wakes_every_blocked_reader(kernel_env: Env) -> None:
    """Readers asleep behind the write lock all get in on its release, together, with no
    clock movement (Rust rwlock/futex.rs write_unlock → wake all readers)."""
    env = kernel_env
    rw = env.make(RWLock)
    inside, go = env.shared(), env.shared()
    assert rw.acquire_write()
    start = env.monotonic()

    def reader(rw: RWLock) -> bool:
        with rw.read_lock():
            inside.add(1)
            go.wait_for(1)
        return True

    handles = [env.start(reader, rw) for _ in range(3)]
    for h in handles:
        env.wait_blocked(h, "a reader sleeps behind the writer")
    assert _stats(rw).readers_waiting
    rw.release_write()
    wait_until(lambda: inside.load() == 3, "the three readers are inside together")
    go.set(1)
    assert all(h.result() for h in handles)
    if env.manual_clock:
        assert env.monotonic() == start


def test_writer_not_starved_by_readers(kernel_env: Env) -> None:
    """While a writer waits, new readers do not get in (Rust rwlock/futex.rs
    is_read_lockable: no WRITERS_WAITING); the last reader out hands over to the writer
    (read_unlock wakes the writer)."""
    env = kernel_env
    rw = env.make(RWLock)
    assert rw.acquire_read()

    w = env.start(_write_once, rw)
    env.wait_blocked(w, "the writer waits for the reader")
    assert _stats(rw).writers_waiting

    def read_now(rw: RWLock) -> bool:
        return rw.acquire_read(blocking=False)

    assert env.start(read_now, rw).result() is False
    rw.release_read()
    assert w.result() is True


def test_writer_gets_in_despite_a_reader_stream(env: Env) -> None:
    """Readers that keep overlapping never let the count reach 0 on their own; a
    writer still gets in, since WRITERS_WAITING stops new readers (sync_design §5
    "writers not starved")."""
    rw = env.make(RWLock)
    stop, reads, running = env.shared(), env.shared(), env.shared()

    def stream(rw: RWLock) -> int:
        n = 0
        running.add(1)
        while not stop.load():
            with rw.read_lock():
                reads.add(1)
                time.sleep(0)
            n += 1
        return n

    readers = [env.start(stream, rw) for _ in range(3)]
    wait_until(lambda: running.load() == 3 and reads.load() > 30, "the readers stream")

    assert env.start(_write_once, rw).result() is True
    stop.set(1)
    assert sum(h.result() for h in readers) == reads.load()


def test_writer_timeout_wakes_queued_readers(kernel_env: Env) -> None:
    """A writer that times out while readers hold the lock clears WRITERS_WAITING and
    wakes the readers queued behind it (glibc commit 3c9c61febe; sync_design §1.5
    pitfall).  Emulated, the writer's timeout is shorter than the readers' SLICE, so
    only the writer's wake can let the queued reader in."""
    env = kernel_env
    rw = env.make(RWLock)
    assert rw.acquire_read()
    timeout = SLICE / 2 if env.manual_clock else 0.2

    def write(rw: RWLock) -> bool:
        return rw.acquire_write(timeout=timeout)

    def read(rw: RWLock) -> bool:
        ok = rw.acquire_read()
        rw.release_read()
        return ok

    w = env.start(write, rw)
    env.wait_blocked(w, "the writer waits for the reader")
    r = env.start(read, rw)
    if env.manual_clock:
        env.wait_blocked(r, "a reader queues behind the waiting writer")
        env.advance(timeout)
    else:  # natively the reader may come after the timeout: only the outcome is pinned
        wait_until(lambda: env.blocked(r) or r.done(), "the reader queues or is through")
    assert w.result() is False
    assert r.result() is True  # no further clock movement
    st = _stats(rw)
    assert (st.readers, st.writers_waiting, st.readers_waiting) == (1, False, False)
    rw.release_read()


def test_reentrant_read_while_a_writer_waits(kernel_env: Env) -> None:
    """A thread that holds a read lock may take another although a writer waits (the
    reader table knows it holds one; Rust would deadlock here)."""
    env = kernel_env
    rw = env.make(RWLock)
    assert rw.acquire_read()

    w = env.start(_write_once, rw)
    env.wait_blocked(w, "the writer waits")
    assert rw.acquire_read(blocking=False)
    assert _stats(rw).readers == 2
    rw.release_read()
    rw.release_read()
    assert w.result() is True


def test_would_deadlock_raises(kernel_env: Env) -> None:
    """Upgrading, a reading writer and a second write acquire raise RuntimeError rather
    than sleeping forever (threading's Lock would hang; we know the holders)."""
    rw = kernel_env.make(RWLock)
    rw.acquire_read()
    with pytest.raises(RuntimeError, match="holds a read lock"):
        rw.acquire_write()
    rw.release_read()
    rw.acquire_write()
    with pytest.raises(RuntimeError, match="holds the write lock"):
        rw.acquire_read()
    with pytest.raises(RuntimeError, match="holds the write lock"):
        rw.acquire_write(timeout=0)
    rw.release_write()


def test_release_by_a_non_holder_raises(kernel_env: Env) -> None:
    """release_read without a read lock and release_write by a non-writer raise
    NotOwnerError (the lock is owned; sync_design §2e "locks are owned")."""
    env = kernel_env
    rw = env.make(RWLock)
    with pytest.raises(NotOwnerError, match="does not hold a read lock"):
        rw.release_read()
    with pytest.raises(NotOwnerError, match="does not hold"):
        rw.release_write()
    rw.acquire_read()

    def other(rw: RWLock) -> str:
        with pytest.raises(NotOwnerError) as caught:
            rw.release_read()
        return str(caught.value)

    assert "does not hold" in env.start(other, rw).result()
    with pytest.raises(NotOwnerError):
        rw.release_write()  # a reader is not the writer
    rw.release_read()


# -- dead holders -----------------------------------------------------------------------


def test_dead_writer_gives_owner_died(env: Env) -> None:
    """A writer dies write-locked: the next writer gets the lock with OwnerDied, as a
    robust Mutex's next owner does (sync_design §1.5 "Robust writers"); releasing
    without make_consistent() makes the lock not recoverable (POSIX robust mutexes)."""
    rw = env.make(RWLock)

    def write_and_die(rw: RWLock) -> bool:
        return rw.acquire_write()

    _die(env.start(write_and_die, rw))
    with pytest.raises(OwnerDied) as caught:
        rw.acquire_write(timeout=STATE_TIMEOUT)
    assert caught.value.lock is rw
    st = _stats(rw)
    assert (st.write_locked, st.writer, st.inconsistent) == (True, env.tid(), True)
    assert not rw.consistent
    rw.make_consistent()
    rw.release_write()
    assert rw.acquire_read()
    rw.release_read()
    assert rw.acquire_write()
    rw.release_write()


def test_released_inconsistent_is_not_recoverable(kernel_env: Env) -> None:
    """After OwnerDied, release_write without make_consistent(): readers and writers get
    LockNotRecoverable until reset() (glibc ENOTRECOVERABLE; the Mutex contract)."""
    env = kernel_env
    rw = env.make(RWLock)
    _die(env.start(lambda rw: rw.acquire_write(), rw))
    with pytest.raises(OwnerDied):
        rw.acquire_write()
    rw.release_write()
    assert _stats(rw).not_recoverable
    with pytest.raises(LockNotRecoverable):
        rw.acquire_read()
    with pytest.raises(LockNotRecoverable):
        rw.acquire_write()
    rw.reset()
    st = _stats(rw)
    assert (st.not_recoverable, st.inconsistent, st.write_locked) == (False, False, False)
    with rw.write_lock():
        pass
    with pytest.raises(ValueError, match="not-recoverable"):
        rw.reset()


def test_on_owner_died_repairs_inside_with(kernel_env: Env) -> None:
    """``with rw.write_lock():`` runs ``on_owner_died`` with the write lock held; its
    return marks the lock consistent (the Mutex's with-statement rule, sync_design §3)."""
    env = kernel_env
    rw = env.make(RWLock)
    seen: list[bool] = []
    rw.on_owner_died = lambda lock: seen.append(lock.statistics().write_locked)
    _die(env.start(lambda rw: rw.acquire_write(), rw))
    with rw.write_lock():
        assert rw.consistent
    assert seen == [True]


def test_readers_recover_from_a_dead_writer(kernel_env: Env) -> None:
    """Readers asleep behind a writer that dies do not sleep forever: after a SLICE they
    see the writer gate marked OWNER_DIED, take it, repair the state and read; the next
    writer is then told with OwnerDied (the choice documented in futex.sync.rwlock)."""
    env = kernel_env
    rw = env.make(RWLock)
    held, go = env.shared(), env.shared()

    def write_then_die(rw: RWLock) -> bool:
        rw.acquire_write()
        held.set(1)
        go.wait_for(1)
        return True

    w = env.start(write_then_die, rw)
    held.wait_for(1)

    def read(rw: RWLock) -> bool:
        ok = rw.acquire_read(timeout=STATE_TIMEOUT)
        rw.release_read()
        return ok

    r = env.start(read, rw)
    env.wait_blocked(r, "the reader sleeps behind the writer")
    go.set(1)
    _die(w)
    if env.manual_clock:
        env.advance(SLICE)
    assert r.result() is True
    assert not rw.consistent
    with pytest.raises(OwnerDied):
        rw.acquire_write()
    rw.make_consistent()
    rw.release_write()


def test_nonblocking_reader_repairs_a_dead_writer(env: Env) -> None:
    """acquire_read(blocking=False) on a lock whose writer died write-locked looks at the
    writer gate before giving up: it repairs and reads at once, no slice needed."""
    rw = env.make(RWLock)
    _die(env.start(lambda rw: rw.acquire_write(), rw))
    if env.kernel == "native":  # the kernel marks the gate when the thread/process is gone
        wait_until(lambda: rw.acquire_read(blocking=False), "a reader gets past the dead writer")
    else:
        assert rw.acquire_read(blocking=False)
    st = _stats(rw)
    assert (st.readers, st.write_locked, st.inconsistent) == (1, False, True)
    rw.release_read()


def test_writer_dead_while_waiting_for_readers(env: Env) -> None:
    """A writer that dies holding the gate with WRITERS_WAITING set (waiting for readers)
    leaves no lasting block: a reader repairs it after a SLICE, and the next writer is
    not told OwnerDied, since no write section was interrupted."""
    rw = env.make(RWLock)

    def gate_and_die(rw: RWLock) -> bool:  # the memory of a writer killed in its wait
        Mutex.acquire(rw._gate)
        rw._region.word(STATE).fetch_or(0x8000_0000)
        return True

    _die(env.start(gate_and_die, rw))
    assert _stats(rw).writers_waiting

    def read(rw: RWLock) -> bool:
        ok = rw.acquire_read(timeout=STATE_TIMEOUT)
        rw.release_read()
        return ok

    r = env.start(read, rw)
    if env.manual_clock:
        env.wait_blocked(r, "the reader waits behind the dead writer's WRITERS_WAITING")
        env.advance(SLICE)
    assert r.result() is True
    assert rw.acquire_write()
    assert rw.consistent
    rw.release_write()


def test_dead_reader_does_not_block_writers(env: Env) -> None:
    """A reader dies holding a read lock: a writer that waits a SLICE finds its slot's
    thread dead and takes the hold back (sync_design §1.5 "Readers", §2d)."""
    rw = env.make(RWLock)

    def read_and_die(rw: RWLock) -> bool:
        return rw.acquire_read()

    _die(env.start(read_and_die, rw))
    assert _stats(rw).readers == 1

    w = env.start(_write_once, rw)
    if env.manual_clock:
        env.wait_blocked(w, "the writer waits for the dead reader")
        env.advance(SLICE)
    assert w.result() is True
    st = _stats(rw)
    assert (st.readers, st.slots_used) == (0, 0)


def test_live_reader_is_never_taken_back(kernel_env: Env) -> None:
    """The reaping writer leaves a live reader alone slice after slice, and times out
    (exclusion is never traded for progress)."""
    env = kernel_env
    rw = env.make(RWLock)
    held, go = env.shared(), env.shared()

    def read_and_stay(rw: RWLock) -> bool:
        with rw.read_lock():
            held.set(1)
            go.wait_for(1)
        return True

    r = env.start(read_and_stay, rw)
    held.wait_for(1)

    def write(rw: RWLock) -> bool:
        return rw.acquire_write(timeout=5 * SLICE if env.manual_clock else 0.1)

    w = env.start(write, rw)
    if env.manual_clock:
        for _ in range(5):
            env.wait_blocked(w, "the writer waits a slice")
            env.advance(SLICE)
    assert w.result() is False
    st = _stats(rw)
    assert (st.readers, st.slots_used, st.writers_waiting) == (1, 1, False)
    go.set(1)
    assert r.result() is True
    assert _stats(rw).readers == 0


@pytest.mark.parametrize("pending", [False, True], ids=["settled", "pending"])
def test_reader_killed_between_its_two_steps(kernel_env: Env, pending: bool) -> None:
    """A reader killed after its state increment but before its slot's final store
    leaves ``count | PENDING`` in its slot: the writer takes back the lower bound, and
    the phantom rule (futex.sync.rwreaders) clears the one hold no slot explains."""
    env = kernel_env
    rw = env.make(RWLock)
    h = env.start(lambda rw: rw.acquire_read(), rw)
    assert h.result() is True
    slot = _slot_of(env, rw, h.tid)
    if pending:  # as if killed between "CAS state + 1" and "count = 1 | READY"
        env.write(slot + 4, struct.pack("<I", 1 | READY | PENDING))
    _die(h)

    w = env.start(_write_once, rw)
    if env.manual_clock:
        env.wait_blocked(w, "the writer waits")
        env.advance(SLICE)
    assert w.result() is True
    assert struct.unpack("<I", env.read(rw.offset + STATE, 4))[0] == 0


def test_a_slot_left_claimed_by_a_dead_thread_is_freed(kernel_env: Env) -> None:
    """A reader killed between claiming a slot and its first count store leaves the
    slot claimed with no holds; a reaping writer frees it once no thread has that TID
    (futex.sync.rwreaders), so kills do not eat the table."""
    env = kernel_env
    off = env.reserve(size_for(1))
    rw = RWLock.create(env.memory(), off, slots=1)
    gone = env.start(lambda: True)
    _die(gone)
    env.write(off + TABLE, struct.pack("<I", gone.tid))  # claimed, count word 0
    held, go = env.shared(), env.shared()

    def read(rw: RWLock) -> bool:
        with rw.read_lock():
            held.set(1)
            go.wait_for(1)
        return True

    r = env.start(read, rw)
    held.wait_for(1)
    assert (_stats(rw).slots_used, _stats(rw).unslotted) == (1, 1)  # no free slot

    w = env.start(_write_once, rw)
    env.wait_blocked(w, "the writer waits for the reader")
    if env.manual_clock:
        env.advance(SLICE)
    wait_until(lambda: _stats(rw).slots_used == 0, "the dead thread's slot is freed")
    go.set(1)
    assert r.result() and w.result()


def test_readers_without_a_slot_still_read(kernel_env: Env) -> None:
    """A reader that finds every slot taken reads all the same, counted as unslotted
    (documented: it is then not recoverable if it dies)."""
    env = kernel_env
    off = env.reserve(size_for(1))
    rw = RWLock.create(env.memory(), off, slots=1)
    assert rw.acquire_read()
    inside, go = env.shared(), env.shared()

    def read(rw: RWLock) -> int:
        with rw.read_lock():
            inside.set(1)
            go.wait_for(1)
        return 1

    h = env.start(read, rw)
    inside.wait_for(1)
    st = _stats(rw)
    assert (st.readers, st.slots, st.slots_used, st.unslotted) == (2, 1, 1, 1)
    go.set(1)
    assert h.result() == 1
    rw.release_read()
    st = _stats(rw)
    assert (st.readers, st.slots_used, st.unslotted) == (0, 0, 0)


def test_an_idle_slot_is_kept_then_taken_over(kernel_env: Env) -> None:
    """After its last release a thread's slot stays its own, idle (``IDLE | TID``,
    futex.sync.rwreaders): its next read claims nothing, and statistics() counts the slot
    as free.  A reader that finds no free slot takes it over (CAS of its count word);
    the slot's thread, reading again, finds its CAS failing and claims afresh (here:
    none left, so it reads unslotted)."""
    env = kernel_env
    off = env.reserve(size_for(1))
    rw = RWLock.create(env.memory(), off, slots=1)
    me, slot = env.tid(), off + TABLE
    for _ in range(2):
        with rw.read_lock():
            assert (_u32(env, slot), _u32(env, slot + 4)) == (me, 1 | READY)
        assert (_u32(env, slot), _u32(env, slot + 4)) == (me, IDLE | me)
        assert (_stats(rw).readers, _stats(rw).slots_used) == (0, 0)
    inside, go = env.shared(), env.shared()

    def read(rw: RWLock) -> bool:
        with rw.read_lock():
            inside.set(1)
            go.wait_for(1)
        return True

    h = env.start(read, rw)
    inside.wait_for(1)
    assert _u32(env, slot) == h.tid
    st = _stats(rw)
    assert (st.readers, st.slots_used, st.unslotted) == (1, 1, 0)
    assert rw.acquire_read()
    st = _stats(rw)
    assert (st.readers, st.slots_used, st.unslotted) == (2, 1, 1)
    rw.release_read()
    go.set(1)
    assert h.result() is True
    st = _stats(rw)
    assert (st.readers, st.slots_used, st.unslotted) == (0, 0, 0)


def test_a_slot_taken_back_from_a_live_reader(kernel_env: Env) -> None:
    """A thread's cached slot is checked by the CAS that uses it: if its holds were taken
    back (as reap() does to a reader it judged dead, e.g. one of another PID namespace),
    release_read raises NotOwnerError rather than write a slot that is not its own, and
    the next read claims afresh."""
    env = kernel_env
    rw = env.make(RWLock)
    assert rw.acquire_read()
    slot = _slot_of(env, rw, env.tid())
    env.write(slot + 4, struct.pack("<I", 0))  # reap(): free the slot, subtract the hold
    env.write(slot, struct.pack("<I", 0))
    env.write(rw.offset + STATE, struct.pack("<I", 0))
    with pytest.raises(NotOwnerError, match="does not hold a read lock"):
        rw.release_read()
    assert (_u32(env, slot), _u32(env, slot + 4)) == (0, 0)  # not written
    with rw.read_lock():
        assert (_stats(rw).readers, _stats(rw).slots_used) == (1, 1)


def test_a_fork_child_holds_none_of_its_parents_reads(process_env: Env) -> None:
    """A forked child's thread holds none of the read locks of the thread it was copied
    from, although that thread's cache was copied with it (futex.sync.rwreaders forgets
    it in the child: os.register_at_fork), and reads with a slot of its own."""
    env = process_env
    rw = env.make(RWLock)
    assert rw.acquire_read()
    mine = _slot_of(env, rw, env.tid())

    def child(rw: RWLock) -> int:
        with pytest.raises(NotOwnerError):
            rw.release_read()
        with rw.read_lock():
            return rw.statistics().readers

    assert env.start(child, rw).result() == 2
    assert (_u32(env, mine + 4), _stats(rw).readers) == (1 | READY, 1)
    rw.release_read()


def test_a_dead_threads_idle_slot_is_freed(kernel_env: Env) -> None:
    """The idle slot of a thread that has ended is freed by a reaping writer (its holds
    were none, so the state is not touched): dead threads do not eat the table."""
    env = kernel_env
    rw = env.make(RWLock)

    def read_once(rw: RWLock) -> bool:
        with rw.read_lock():
            return True

    gone = env.start(read_once, rw)
    _die(gone)
    slot = _slot_of(env, rw, gone.tid)
    assert _u32(env, slot + 4) == IDLE | gone.tid
    assert rw.acquire_read()  # a live reader, so that the writer waits and reaps

    w = env.start(_write_once, rw)
    env.wait_blocked(w, "the writer waits for the reader")
    if env.manual_clock:
        env.advance(SLICE)
    wait_until(lambda: _u32(env, slot) == 0, "the dead thread's idle slot is freed")
    rw.release_read()
    assert w.result() is True


# -- layout and arguments ----------------------------------------------------------------


def test_slots_set_the_size_and_attach_reads_them(kernel_env: Env) -> None:
    """SIZE = 128 + 16 * slots (sync_design §3 "RWLock 128 plus 16 per reader slot");
    the header's flags carry the slot count, so attach needs no argument."""
    env = kernel_env
    assert RWLock.SIZE == size_for(16) == 384
    off = env.reserve(size_for(40))
    rw = RWLock.create(env.memory(), off, slots=40)
    assert (rw.slots, rw.SIZE, type(rw).SIZE) == (40, 128 + 640, 128 + 640)
    again = RWLock.attach(env.memory(), off)
    assert again.slots == 40
    assert RWLock.create_or_attach(env.memory(), off, slots=40).slots == 40
    with pytest.raises(LayoutError, match="40 reader slots, not 16"):
        RWLock.create_or_attach(env.memory(), off)
    assert repr(again).startswith("<futex.sync.RWLock ")


def test_own_memory_pickles_by_name() -> None:
    """RWLock() allocates shared memory; pickling reattaches by name with its slots
    (the Primitive contract)."""
    import pickle

    rw = RWLock(slots=3)
    assert rw.slots == 3 and rw.name
    copy = pickle.loads(pickle.dumps(rw))
    assert type(copy) is type(rw) and copy.slots == 3
    assert rw.acquire_read()
    assert copy.statistics().readers == 1
    rw.release_read()


def test_bad_arguments(kernel_env: Env) -> None:
    """Bad input raises precisely: the slot count's type and range, threading's timeout
    rules, extra options, a wrong primitive at the offset, a misaligned offset."""
    env = kernel_env
    mem = env.memory()
    off = env.reserve(1024)
    with pytest.raises(TypeError, match="slots must be an int"):
        RWLock.create(mem, off, slots="4")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="slots must be an int"):
        RWLock.create(mem, off, slots=True)
    with pytest.raises(ValueError, match=r"slots must be in 0\.\.4096"):
        RWLock.create(mem, off, slots=-1)
    with pytest.raises(ValueError, match=r"slots must be in 0\.\.4096"):
        RWLock.create(mem, off, slots=4097)
    with pytest.raises(TypeError):
        RWLock.create(mem, off, 8)  # type: ignore[call-arg]
    with pytest.raises(LayoutError, match="multiple of 8"):
        RWLock.create(mem, off + 4)
    with pytest.raises(LayoutError, match="too small"):
        RWLock.create(mem, (1 << 16) - 64)
    Mutex.create(mem, off)
    with pytest.raises(LayoutError, match="is a Mutex, not a RWLock"):
        RWLock.attach(mem, off)
    rw = env.make(RWLock)
    with pytest.raises(ValueError, match="non-blocking"):
        rw.acquire_read(blocking=False, timeout=1)
    with pytest.raises(ValueError, match="non-negative"):
        rw.acquire_write(timeout=-2)
    with pytest.raises(RuntimeError, match="not inconsistent"), rw.write_lock():
        rw.make_consistent()
    with pytest.raises(NotOwnerError):
        rw.make_consistent()


def test_write_side_statistics(kernel_env: Env) -> None:
    """write_lock().statistics() reads as a lock's (locked, owner, waiters), for the
    generic lock suite (Trio's LockStatistics shape)."""
    env = kernel_env
    rw = env.make(RWLock)
    side = rw.write_lock()
    assert (side.statistics().locked, side.statistics().owner) == (False, 0)
    with side:
        s = side.statistics()
        assert (s.locked, s.owner, s.count, s.inconsistent) == (True, env.tid(), 1, False)
    assert rw.read_lock().statistics().readers == 0


def test_close_while_holding_the_write_lock_raises(kernel_env: Env) -> None:
    """close() refuses while this thread holds the write lock: the gate's node is on the
    thread's robust list, which must never point into unmapped memory (the Mutex.close
    rule of futex.sync.mutex)."""
    rw = kernel_env.make(RWLock)
    rw.acquire_write()
    with pytest.raises(RuntimeError, match="release the RWLock's write lock first"):
        rw.close()
    rw.release_write()
    rw.close()
    assert rw.closed
