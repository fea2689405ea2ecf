"""Where a primitive lives: create / attach / create_or_attach, the header checks, sharing
by pickling and by name, and the lifetime of a primitive's own shared memory.

Sources: sync_design §3 "In caller memory" / "By name" (``X.create`` fails on initialised
memory, ``X(buf)`` attaches, ``create_or_attach`` works like O_CREAT; "on attach a
16-byte header is validated ... a mismatch raises ValueError naming the field"; "pickling
gives (name, offset) for SharedMemory buffers"), §1.8 (the header's init word makes
racing initialisers initialise once), the contract's header table, and
``multiprocessing``'s start methods (fork, spawn, forkserver: a no-buffer primitive
passes to children like ``multiprocessing.Lock``).
"""

from __future__ import annotations

import gc
import mmap
import multiprocessing
import os
import pickle
import struct
import subprocess
import sys
import threading
from multiprocessing.shared_memory import SharedMemory
from typing import Any, ClassVar

import pytest

from futex.sync import LayoutError, Mutex, OwnerDied, RLock, robust_mode
from futex.sync.layout import COMPLETE, MAGIC, VERSION
from tests.support import STATE_TIMEOUT, wait_until
from tests.sync.harness import ARENA, Env, Shared

SHM_DIR = "/dev/shm"


# -- create / attach / create_or_attach ----------------------------------------------


def test_attach_sees_the_created_lock(kernel_env: Env) -> None:
    """``X.attach`` on memory ``X.create`` initialised is the same lock: a hold through
    one object shows through the other (sync_design §3 "In caller memory")."""
    env = kernel_env
    m = env.make(Mutex)
    other = Mutex.attach(env.memory(), m.offset)
    assert m.acquire()
    assert other.locked()
    assert other.statistics().owner == env.tid()
    other.release()  # the same thread holds it, whichever object it goes through
    assert not m.locked()
    assert m.acquire()
    m.release()
    assert other.acquire(blocking=False)
    other.release()
    other.close()


def test_create_or_attach_creates_then_attaches(kernel_env: Env) -> None:
    """create_or_attach initialises fresh (zeroed) memory, and on initialised memory
    attaches without re-initialising: a held lock stays held (O_CREAT without O_EXCL)."""
    env = kernel_env
    off = env.reserve(Mutex.SIZE)
    first = Mutex.create_or_attach(env.memory(), off)
    assert first.acquire()
    second = Mutex.create_or_attach(env.memory(), off)
    assert second.statistics().owner == env.tid()
    first.release()
    assert not second.locked()
    with pytest.raises(LayoutError, match="is a Mutex, not a RLock"):
        RLock.create_or_attach(env.memory(), off)
    first.close()
    second.close()


class _Counting(Mutex):
    """A Mutex that counts its initialisations (per offset) in shared words."""

    inits: ClassVar[dict[int, Shared]] = {}

    def _init_fields(self, *args: Any, **opts: Any) -> None:
        _Counting.inits[self.offset].add(1)
        super()._init_fields(*args, **opts)


def test_racing_create_or_attach_initialises_once(process_env: Env) -> None:
    """Two processes racing create_or_attach over the same fresh slots: each slot is
    initialised exactly once and both get a working lock (sync_design §1.8: the header's
    init word is claimed by CAS 0 → TID, losers wait for COMPLETE)."""
    env = process_env
    slots = [env.reserve(Mutex.SIZE) for _ in range(32)]
    _Counting.inits = {off: env.shared() for off in slots}

    def race() -> int:
        mem = env.memory()
        for off in slots:
            m = _Counting.create_or_attach(mem, off)
            assert m.acquire(timeout=STATE_TIMEOUT)
            m.release()
            m.close()
        return len(slots)

    racers = env.start_together(2, race)
    assert [h.result() for h in racers] == [len(slots)] * 2
    assert [_Counting.inits[off].load() for off in slots] == [1] * len(slots)
    for off in slots:
        assert not Mutex.attach(env.memory(), off).locked()


def _forge_header(env: Env, off: int, type_code: int = 1) -> None:
    """Write a complete header at ``off`` the way a creator does: fields, then the
    header, then COMPLETE into the init word (waking attachers)."""
    env.write(off + 4, struct.pack("<4sHHI", MAGIC, VERSION, type_code, 0))
    env.word(off).set(COMPLETE)


def _claim_as_creator(env: Env, off: int, tid: int, pid: int) -> None:
    """Make the slot at ``off`` look claimed by a creator (thread ``tid`` of process
    ``pid``) that has not finished: the init word holds its TID, the magic's place its
    pid (layout.py ``_claim``)."""
    env.write(off + 4, struct.pack("<I", pid))
    env.word(off).set(tid)


def _main_pid(env: Env) -> int:
    return os.getpid() if env.kernel == "native" else env.process.pid


@pytest.mark.parametrize("pid_written", [True, False], ids=["pid", "no-pid-yet"])
def test_attach_waits_for_an_initialiser(process_env: Env, pid_written: bool) -> None:
    """An attacher that finds the init word claimed by a live creator sleeps until the
    creator stores COMPLETE, then attaches without initialising again (the forged holder
    TID survives) — the losing side of the create_or_attach race, made deterministic.
    ``no-pid-yet``: the creator has not written its pid (between its CAS and the pid
    store, or after ``_initialise`` zeroed the fields): still a live creator."""
    env = process_env
    off = env.reserve(Mutex.SIZE)
    pid = _main_pid(env) if pid_written else 0
    _claim_as_creator(env, off, env.tid(), pid)  # this thread "initialises"

    def attach() -> int:
        m = Mutex.create_or_attach(env.memory(), off)
        return int(m.statistics().owner)

    h = env.start(attach)
    env.wait_blocked(h, "the attacher waits for the initialiser")
    env.write(off + 16, struct.pack("<I", 77))  # the creator's fields: held by TID 77
    _forge_header(env, off)
    assert h.result() == 77


def _dead_tid(env: Env) -> int:
    """The TID of a thread (task) of this process that has exited."""
    if env.kernel == "emulated":
        task = env.process.new_task()
        task.exit()
        return task.tid
    tids: list[int] = []
    t = threading.Thread(target=lambda: tids.append(threading.get_native_id()))
    t.start()
    t.join()
    return tids[0]


def test_create_or_attach_takes_over_from_a_dead_creator(kernel_env: Env) -> None:
    """A creator that died initialising (its TID in the init word, its thread gone):
    create_or_attach takes the init word over and initialises afresh, where attach
    would wait and give up (sync_design §1.8: "a killed initialiser reruns it")."""
    env = kernel_env
    off = env.reserve(Mutex.SIZE)
    env.write(off + 16, struct.pack("<I", 77))  # half-written fields
    _claim_as_creator(env, off, _dead_tid(env), _main_pid(env))
    m = Mutex.create_or_attach(env.memory(), off)
    assert m.statistics().owner == 0
    assert m.acquire()
    m.release()
    assert Mutex.attach(env.memory(), off).statistics().owner == 0


def test_attach_gives_up_on_an_initialiser_that_never_completes(kernel_env: Env) -> None:
    """An init word stuck at a TID: attach gives up after its 2 s bound with LayoutError
    saying so (checked on the emulated kernel's ManualClock; natively it would cost 2 s
    of real time)."""
    env = kernel_env
    if not env.manual_clock:
        pytest.skip("the 2 s initialiser bound is checked on the manual clock only")
    off = env.reserve(Mutex.SIZE)
    env.word(off).set(4242)

    def attach() -> str:
        with pytest.raises(LayoutError, match="being initialised by thread 4242") as e:
            Mutex.attach(env.memory(), off)
        return str(e.value)

    h = env.start(attach)
    env.wait_blocked(h, "the attacher waits for the initialiser")
    env.advance(1.9)
    env.wait_blocked(h, "the attacher is still waiting 0.1 s before its bound")
    env.advance(0.1)
    assert "did not complete within" in h.result()


# -- what attach and create refuse ----------------------------------------------------


def test_attach_rejects_a_bad_magic(kernel_env: Env) -> None:
    """Attach on zeroed memory or a wrong magic names the magic (sync_design §3)."""
    env = kernel_env
    off = env.reserve(Mutex.SIZE)
    with pytest.raises(LayoutError, match="magic"):
        Mutex.attach(env.memory(), off)
    m = env.make(Mutex)
    env.write(m.offset + 4, b"XXXX")
    with pytest.raises(LayoutError, match=r"magic b'XXXX', expected b'FXSY'"):
        Mutex.attach(env.memory(), m.offset)


def test_attach_rejects_another_version(kernel_env: Env) -> None:
    """A layout version this futex.sync does not read is refused, naming both."""
    env = kernel_env
    m = env.make(Mutex)
    env.write(m.offset + 8, struct.pack("<H", VERSION + 1))
    with pytest.raises(LayoutError, match=f"version {VERSION + 1}.*reads version {VERSION}"):
        Mutex.attach(env.memory(), m.offset)


def test_attach_rejects_another_type(kernel_env: Env) -> None:
    """Attach as the wrong type names what is there and what was asked for; an unknown
    type code says so (the contract's type codes)."""
    env = kernel_env
    r = env.make(RLock)
    with pytest.raises(LayoutError, match="is a RLock, not a Mutex"):
        Mutex.attach(env.memory(), r.offset)
    env.write(r.offset + 10, struct.pack("<H", 99))
    with pytest.raises(LayoutError, match="unknown type 99"):
        RLock.attach(env.memory(), r.offset)


def test_too_small_a_buffer_is_refused(kernel_env: Env) -> None:
    """Fewer than SIZE bytes at the offset: LayoutError (a ValueError) saying so."""
    env = kernel_env
    with pytest.raises(LayoutError, match="too small"):
        Mutex.create(env.memory(), ARENA - Mutex.SIZE // 2)
    if env.kernel == "native":
        with pytest.raises(LayoutError, match="too small"):
            Mutex.create(bytearray(Mutex.SIZE - 1))
    assert issubclass(LayoutError, ValueError)


def test_a_misaligned_offset_is_refused(kernel_env: Env) -> None:
    """The primitive's address must be 8-aligned (its node holds 64-bit pointers; the
    contract's layout section)."""
    env = kernel_env
    off = env.reserve(2 * Mutex.SIZE)
    with pytest.raises(LayoutError, match="multiple of 8"):
        Mutex.create(env.memory(), off + 4)


@pytest.mark.parametrize("kind", ["bytes", "mmap", "memoryview"])
def test_a_read_only_buffer_is_refused(kind: str) -> None:
    """A read-only buffer cannot hold a lock: TypeError naming it read-only."""
    buf: Any
    if kind == "bytes":
        buf = bytes(Mutex.SIZE)
    elif kind == "mmap":
        buf = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ)
    else:
        buf = memoryview(bytearray(Mutex.SIZE)).toreadonly()
    with pytest.raises(TypeError, match="read-only"):
        Mutex.create(buf)


def test_create_on_initialised_memory_is_refused(kernel_env: Env) -> None:
    """create fails where a primitive already is, naming it (sync_design §3: "X.create
    initialises and fails if the memory is already initialised")."""
    env = kernel_env
    m = env.make(Mutex)
    with pytest.raises(LayoutError, match=r"already initialised \(a Mutex, version 1\)"):
        Mutex.create(env.memory(), m.offset)
    with pytest.raises(LayoutError, match="already initialised"):
        RLock.create(env.memory(), m.offset)
    again = Mutex.attach(env.memory(), m.offset)
    assert again.acquire(blocking=False)
    again.release()


def test_a_closed_primitive_raises_value_error(kernel_env: Env) -> None:
    """After close() every operation raises ValueError (as a closed file or a released
    memoryview); close is idempotent and the memory keeps the primitive for others."""
    env = kernel_env
    m = env.make(Mutex)
    m.close()
    m.close()
    assert m.closed
    for op in (m.acquire, m.release, m.locked, m.statistics):
        with pytest.raises(ValueError):
            op()
    again = Mutex.attach(env.memory(), m.offset)
    assert again.acquire(blocking=False)
    again.release()


_DROP_HELD = """
import mmap
from futex.sync import Mutex
mm = mmap.mmap(-1, mmap.PAGESIZE)
Mutex.create(mm, 0).acquire()  # held (its node linked), and the object dropped
try:
    mm.close()
except BufferError:
    print("kept")
else:
    print("unmapped")
"""


def test_a_held_lock_keeps_its_memory_mapped() -> None:
    """A lock this thread holds stays on its robust list, so its memory must stay mapped
    even when the program drops the lock object: the buffer cannot be closed under it
    (sync_design §1.1 "Our objects hold the buffer export, so it cannot be closed under
    them"; an unmapped node makes the next robust-list link write to nothing).  Run in a
    fresh interpreter: a failure there must not corrupt this process's list.  Both paths:
    the C core's and the Python reference's (FUTEX_SYNC_ROBUST=pid off)."""
    done = subprocess.run([sys.executable, "-c", _DROP_HELD], capture_output=True,
                          text=True, timeout=STATE_TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["kept"]


# -- sharing: pickling, names, start methods --------------------------------------------


def _child_acquires(m: Mutex) -> None:
    """multiprocessing child: take the lock (the parent releases it once this one
    sleeps), check it is the owner, release; the exit code reports."""
    ok = m.acquire(timeout=STATE_TIMEOUT)
    owner = m.statistics().owner
    m.release()
    sys.exit(0 if ok and owner == threading.get_native_id() else 3)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_no_buffer_mutex_passes_to_multiprocessing_children(method: str) -> None:
    """``Mutex()`` goes to a multiprocessing child under every start method (inherited
    under fork, pickled by its shared memory name under spawn and forkserver) and works
    there: the child sleeps on the parent's hold (the W bit shows it) and gets the lock
    on release (multiprocessing.Lock's contract; sync_design §3 "By name")."""
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"multiprocessing has no {method!r} start method here")
    ctx: Any = multiprocessing.get_context(method)
    m = Mutex()
    assert m.acquire()
    p = ctx.Process(target=_child_acquires, args=(m,))
    p.start()
    try:
        wait_until(lambda: m.statistics().waiters or not p.is_alive(),
                   f"the {method} child sleeps on the Mutex")
        assert p.is_alive(), f"the child exited early ({p.exitcode})"
        m.release()
        p.join(STATE_TIMEOUT)
        assert p.exitcode == 0
    finally:
        if p.is_alive():
            p.kill()
            p.join()
    assert not m.locked()
    assert os.path.exists(os.path.join(SHM_DIR, m.name or "")) or not os.path.isdir(SHM_DIR)


def test_a_primitive_on_shared_memory_pickles_by_name() -> None:
    """A primitive in a SharedMemory pickles as (name, offset) and unpickles attached
    to the same memory (sync_design §3: "Pickling gives (name, offset)")."""
    shm = SharedMemory(create=True, size=2 * Mutex.SIZE)
    try:
        m = Mutex.create(shm, Mutex.SIZE)
        copy = pickle.loads(pickle.dumps(m))
        assert type(copy)._public() is Mutex
        assert (copy.name, copy.offset) == (shm.name.lstrip("/"), Mutex.SIZE)
        assert m.acquire()
        assert copy.statistics().owner == threading.get_native_id()
        m.release()
        copy.close()
        m.close()
    finally:
        shm.close()
        shm.unlink()


_ATTACH_BY_NAME = """
import sys
from futex.sync import Mutex
m = Mutex.attach(sys.argv[1], int(sys.argv[2]))
ok = m.acquire(blocking=False)
print(ok, m.statistics().owner)
if ok:
    m.release()
"""


def test_attach_by_name_from_an_unrelated_process() -> None:
    """An unrelated process (a fresh interpreter, no inheritance, no pickling) attaches
    by the shared memory name and offset, sees the holder's TID, takes the lock once it
    is free; its exit does not unlink the memory (no resource tracker; futex.native._shm).
    """
    shm = SharedMemory(create=True, size=2 * Mutex.SIZE)
    name = shm.name.lstrip("/")

    def run() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", _ATTACH_BY_NAME, name, str(Mutex.SIZE)],
            capture_output=True, text=True, timeout=STATE_TIMEOUT, check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    try:
        m = Mutex.create(shm, Mutex.SIZE)
        assert m.acquire()
        assert run() == ["False", str(threading.get_native_id())]
        m.release()
        assert run() == ["True", "0"] or run()[0] == "True"
        assert not m.locked()
        if os.path.isdir(SHM_DIR):
            assert os.path.exists(os.path.join(SHM_DIR, name))
        m.close()
    finally:
        shm.close()
        shm.unlink()


def test_a_primitive_on_private_memory_refuses_to_pickle(kernel_env: Env) -> None:
    """Memory with no name (a bytearray, an anonymous mmap, an emulated process) cannot
    be reopened elsewhere: pickling raises TypeError saying what pickles instead."""
    m = Mutex.create(bytearray(Mutex.SIZE))
    with pytest.raises(TypeError, match=r"cannot pickle a Mutex on bytearray.*SharedMemory"):
        pickle.dumps(m)
    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(kernel_env.make(RLock))
    m.close()


def test_no_buffer_memory_is_unlinked_when_collected() -> None:
    """``Mutex()`` owns its shared memory: once the object is collected the name is
    gone from /dev/shm (no leak; weakref.finalize in futex.sync.layout)."""
    if not os.path.isdir(SHM_DIR):
        pytest.skip(f"no {SHM_DIR}: shared memory names are not visible here")
    m = Mutex()
    path = os.path.join(SHM_DIR, m.name or "")
    assert os.path.exists(path)
    attached = Mutex.attach(m.name or "")
    assert m.acquire()
    assert attached.locked()
    m.release()
    attached.close()
    del m, attached
    gc.collect()
    assert not os.path.exists(path)



@pytest.mark.skipif(robust_mode() != "robust-list",
                    reason="no glibc robust list here: a dead holder is found by polling")
@pytest.mark.parametrize("kind", [Mutex, RLock])
def test_on_owner_died_repairs_inside_with(kind: type[Mutex]) -> None:
    """``with m:`` on a lock whose holder died runs ``on_owner_died`` with the lock held
    and enters the body with it consistent (sync_design §3 "OwnerDied": the body cannot
    run if ``__enter__`` raises); ``acquire()`` raises OwnerDied.  On the host both go
    through the C core (its ``__enter__`` calls ``_owner_died_in_with``)."""
    seen: list[bool] = []
    m = kind(on_owner_died=lambda lock: seen.append(lock.consistent))

    def killed_holding() -> None:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            m.acquire()
            os._exit(0)
        os.waitpid(pid, 0)

    killed_holding()
    with m:
        assert m.consistent and seen == [False]
    killed_holding()
    with pytest.raises(OwnerDied):
        m.acquire()
    m.make_consistent()
    m.release()
    assert seen == [False]
