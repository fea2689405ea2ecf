"""Host facts: the probe, the emulator's model of each variant, and fresh pages on the host.

- The probe (:func:`futex.linux.host.probe`) must describe a kernel the emulator can be;
  ``LinuxKernel.like_host()`` is built from it.
- Every variant of a machine fact runs on the emulator whatever the host is: protection
  keys or not (execute-only pages), the NUMA nodes, the top of the user address space.
- Page presence, which the differential layout keeps uniform, is compared with the host
  on freshly mapped pages: every kind of page, fresh and once touched, under the calls
  whose answer depends on it (``get_futex_key``'s lockless lookup of execute-only pages,
  the PI paths' ``futex_get_value_locked`` + ``fault_in_user_writeable``).
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from futex.kernel import ManualClock
from futex.linux import LinuxKernel, Process, abi
from futex.linux.facts import LinuxFacts
from futex.linux.host import probe
from futex.memory import PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, MappingError
from tests.support import hostfutex as hf

RW = PROT_READ | PROT_WRITE
PRIV = abi.FUTEX_PRIVATE_FLAG
INT_MAX = 0x7FFFFFFF


def kernel_with(**facts: object) -> LinuxKernel:
    return LinuxKernel(clock=ManualClock(), facts=LinuxFacts().replace(**facts))


# -- the probe ----------------------------------------------------------------------------


def test_probe_is_cached_and_builds_the_host_twin() -> None:
    """``like_host`` is a kernel with exactly the probed facts; the probe runs once."""
    got = probe()
    assert probe() is got
    k = LinuxKernel.like_host(clock=ManualClock())
    assert k.facts == got.facts
    assert any(line.startswith("protection_keys: ") for line in got.describe())
    assert got.facts.local_node in got.facts.numa_nodes


def test_facts_reject_inconsistent_machines() -> None:
    with pytest.raises(ValueError, match="local_node"):
        LinuxFacts(numa_nodes=frozenset({0}), local_node=1)
    with pytest.raises(ValueError, match="release"):
        LinuxFacts(release="six")
    with pytest.raises(TypeError, match="LinuxFacts"):
        LinuxKernel(facts="6.18")  # type: ignore[arg-type]


# -- protection keys, on the emulator -----------------------------------------------------


@dataclass
class Pages:
    p: Process
    rw: int  # a private read-write word, 0
    shrw: int  # a shared read-write word, 0
    exec_priv: int
    exec_shared: int  # shared anonymous, PROT_EXEC from the start: fresh

    def call(self, op: int, uaddr: int, val: int = 0, utime: int = 0, uaddr2: int = 0,
             val3: int = 0) -> int:  # fmt: skip
        return self.p.tasks[self.p.pid].syscall_futex(uaddr, op, val, utime, uaddr2, val3)


@pytest.fixture(params=[True, False], ids=["pku", "no-pku"])
def pages(request: pytest.FixtureRequest) -> Iterator[Pages]:
    k = kernel_with(protection_keys=request.param)
    p = k.new_process()
    p.new_task()
    yield Pages(
        p,
        p.mmap(PAGE_SIZE),
        p.mmap(PAGE_SIZE, shared=True),
        p.mmap(PAGE_SIZE, prot=PROT_EXEC),
        p.mmap(PAGE_SIZE, prot=PROT_EXEC, shared=True),
    )
    p.futex.check_invariants()


def pku(pages: Pages) -> bool:
    return pages.p.kernel.facts.protection_keys


def test_wait_on_execute_only_memory(pages: Pages) -> None:
    """The probe's own question: FUTEX_WAIT_PRIVATE with a wrong value on a PROT_EXEC
    page is EFAULT with protection keys (the read faults) and EAGAIN without (it reads
    0)."""
    want = -abi.EFAULT if pku(pages) else -abi.EAGAIN
    assert pages.call(abi.FUTEX_WAIT | PRIV, pages.exec_priv, 1) == want


def test_shared_key_on_execute_only_memory_needs_a_present_page(pages: Pages) -> None:
    """``get_futex_key``: the lockless lookup finds a present page only without
    protection keys; ``get_user_pages`` wants VM_READ, so a fresh page is EFAULT on any
    CPU, and a FUTEX_WRITE key (LOCK_PI) always."""
    x = pages.exec_shared
    assert pages.call(abi.FUTEX_WAKE, x, 1) == -abi.EFAULT
    pages.call(abi.FUTEX_WAIT | PRIV, x, 1)  # get_user: the page becomes present
    assert pages.call(abi.FUTEX_WAKE, x, 1) == (-abi.EFAULT if pku(pages) else 0)
    assert pages.call(abi.FUTEX_LOCK_PI, x) == -abi.EFAULT


def test_unlock_pi_reads_execute_only_memory_first(pages: Pages) -> None:
    """``futex_unlock_pi``: ``get_user`` (EFAULT) before the owner check (EPERM)."""
    want = -abi.EFAULT if pku(pages) else -abi.EPERM
    assert pages.call(abi.FUTEX_UNLOCK_PI | PRIV, pages.exec_priv) == want


def test_requeue_pi_target_on_execute_only_memory(pages: Pages) -> None:
    """``futex_proxy_trylock_atomic`` reads the PI word with page faults disabled and
    falls back to ``fault_in_user_writeable``: EFAULT while the page is fresh; once
    present, without protection keys it reads (no waiter: 0)."""
    op = abi.FUTEX_CMP_REQUEUE_PI | PRIV
    x = pages.exec_priv
    assert pages.call(op, pages.rw, 1, INT_MAX, x, 0) == -abi.EFAULT
    pages.call(abi.FUTEX_WAIT | PRIV, x, 1)
    assert pages.call(op, pages.rw, 1, INT_MAX, x, 0) == (-abi.EFAULT if pku(pages) else 0)


def test_timeout_on_execute_only_memory(pages: Pages) -> None:
    """``get_timespec64`` reads the timeout: EFAULT, or (readable) its bytes -- zeros,
    an already expired absolute deadline."""
    op = abi.FUTEX_WAIT_BITSET | PRIV
    got = pages.call(op, pages.rw, 0, pages.exec_priv, 0, abi.FUTEX_BITSET_MATCH_ANY)
    assert got == (-abi.EFAULT if pku(pages) else -abi.ETIMEDOUT)


# -- NUMA nodes and the top of user space, on the emulator --------------------------------


@pytest.mark.parametrize("nodes", [frozenset({0}), frozenset({0, 1}), frozenset({0, 2})])
def test_numa_node_word_must_name_a_possible_node(nodes: frozenset[int]) -> None:
    """FUTEX2_NUMA: a node word naming no possible node is EINVAL; FUTEX_NO_NODE becomes
    the local node (``get_futex_key``)."""
    local = max(nodes)
    k = kernel_with(numa_nodes=nodes, local_node=local)
    p = k.new_process()
    t = p.new_task()
    a = p.mmap(PAGE_SIZE)
    flags = abi.FUTEX2_SIZE_U32 | abi.FUTEX2_PRIVATE | abi.FUTEX2_NUMA
    for node in range(4):
        p.write(a, struct.pack("<II", 0, node))
        got = t.syscall(abi.SYS_futex_wake, a, 0xFFFFFFFF, 1, flags)
        assert got == (0 if node in nodes else -abi.EINVAL), node
    p.write(a, struct.pack("<II", 0, 0xFFFFFFFF))
    assert t.syscall(abi.SYS_futex_wake, a, 0xFFFFFFFF, 1, flags) == 0
    assert struct.unpack("<II", p.read(a, 8))[1] == local


@pytest.mark.parametrize("top", [0x7FFFFFFFF000, 0x7FFFFFFFEFFC, 0xFFFFFFFFFFFFF000])
def test_access_ok_follows_user_ptr_max(top: int) -> None:
    """A private wake touches no memory: only ``access_ok`` can fail, at the top."""
    k = kernel_with(user_ptr_max=top)
    t = k.new_process().new_task()
    assert t.syscall_futex(top, abi.FUTEX_WAKE | PRIV, 1, 0, 0, 0) == 0
    assert t.syscall_futex(top + 4, abi.FUTEX_WAKE | PRIV, 1, 0, 0, 0) == -abi.EFAULT


@pytest.mark.parametrize("release", ["5.15", "6.6", "6.12", "6.18"])
def test_mappable_space_ends_at_task_size_whatever_access_ok_accepts(release: str) -> None:
    """``access_ok``'s limit moved between releases (``user_ptr_max``), ``TASK_SIZE`` did
    not: the top page maps, the page past it never does (4-level paging)."""
    p = LinuxKernel(clock=ManualClock(), release=release).new_process()
    top = (1 << 47) - 2 * PAGE_SIZE
    assert p.mmap(PAGE_SIZE, addr=top) == top
    with pytest.raises(MappingError, match="outside user space"):
        p.mmap(PAGE_SIZE, addr=top + PAGE_SIZE)


def test_tids_stay_below_pid_max_and_wrap_past_it() -> None:
    """``alloc_pid``: pids below ``pid_max``; past it, allocation starts again at 300
    (``RESERVED_PIDS``), skipping those in use."""
    k = kernel_with(pid_max=310)
    p = k.new_process()
    with pytest.raises(ValueError, match="pid_max 310"):
        p.new_task(tid=310)
    assert p.new_task(tid=309).tid == 309
    tids = [p.new_task().tid for _ in range(5)]
    assert tids == [2, 3, 4, 5, 6]  # pid 1 is the process; the main task took it
    k2 = kernel_with(pid_max=304)
    q = k2.new_process()
    got = [q.new_task().tid for _ in range(303)]
    assert sorted(got) == list(range(1, 304))
    with pytest.raises(RuntimeError, match="no free pid"):
        q.new_task()


@pytest.mark.parametrize("rt_sched", [True, False])
def test_rt_policies_follow_the_users_privilege(rt_sched: bool) -> None:
    """sched_setscheduler(SCHED_FIFO) needs CAP_SYS_NICE or an RLIMIT_RTPRIO: EPERM for a
    plain user (``LinuxFacts.rt_sched``); SCHED_OTHER is always allowed."""
    p = kernel_with(rt_sched=rt_sched).new_process()
    t = p.new_task()
    if rt_sched:
        t.set_scheduler(abi.SCHED_FIFO, 10)
        assert t.prio == 89
    else:
        with pytest.raises(PermissionError, match="EPERM"):
            t.set_scheduler(abi.SCHED_FIFO, 10)
        with pytest.raises(PermissionError):
            p.new_task(policy=abi.SCHED_RR, priority=1)
        assert t.prio == abi.DEFAULT_PRIO
    t.set_scheduler(abi.SCHED_OTHER, 0, 5)
    assert t.prio == abi.DEFAULT_PRIO + 5


# -- fresh pages: the host against its twin -----------------------------------------------

host = pytest.mark.skipif(not hf.available(), reason="needs the host kernel: Linux on x86-64")

#: Page kinds: (protection, shared); every one mapped fresh for each sequence.
KINDS = {
    "priv-ro": (PROT_READ, False),
    "shared-ro": (PROT_READ, True),
    "priv-rw": (RW, False),
    "shared-rw": (RW, True),
    "priv-exec": (PROT_EXEC, False),
    "shared-exec": (PROT_EXEC, True),
    "priv-wo": (PROT_WRITE, False),
}
#: Calls on the page word ``x`` (0 there; ``w``: a private RW word holding 0).  None can
#: block: every wait expects 1.
CALLS = {
    "wait-private": lambda x, w: (x, abi.FUTEX_WAIT | PRIV, 1, 0, 0, 0),
    "wait-shared": lambda x, w: (x, abi.FUTEX_WAIT, 1, 0, 0, 0),
    "wake-shared": lambda x, w: (x, abi.FUTEX_WAKE, 1, 0, 0, 0),
    "requeue-shared": lambda x, w: (x, abi.FUTEX_REQUEUE, 1, 1, w, 0),
    "cmp-requeue-pi-private": lambda x, w: (w, abi.FUTEX_CMP_REQUEUE_PI | PRIV, 1, INT_MAX, x, 0),
    "lock-pi-private": lambda x, w: (x, abi.FUTEX_LOCK_PI | PRIV, 0, 0, 0, 0),
    "trylock-pi-private": lambda x, w: (x, abi.FUTEX_TRYLOCK_PI | PRIV, 0, 0, 0, 0),
    "unlock-pi-private": lambda x, w: (x, abi.FUTEX_UNLOCK_PI | PRIV, 0, 0, 0, 0),
    "wake-op-private": lambda x, w: (w, abi.FUTEX_WAKE_OP | PRIV, 1, 1, x, 0),
}
#: What runs before the call: nothing (a fresh page), or a read by the kernel (get_user).
BEFORE = ("fresh", "touched")


def _run_host(kind: str, before: str, call: str) -> int:
    prot, shared = KINDS[kind]
    flags = (hf.MAP_SHARED if shared else hf.MAP_PRIVATE) | hf.MAP_ANONYMOUS
    x = hf.host_mmap(0, PAGE_SIZE, prot, flags)
    w = hf.host_mmap(0, PAGE_SIZE, RW, hf.MAP_PRIVATE | hf.MAP_ANONYMOUS)
    try:
        ctypes.memmove(w, bytes(4), 4)
        if before == "touched":
            hf.host_futex(x, abi.FUTEX_WAIT | PRIV, 1, 0, 0, 0)
        return hf.host_futex(*CALLS[call](x, w))
    finally:
        hf.host_munmap(x, PAGE_SIZE)
        hf.host_munmap(w, PAGE_SIZE)


def _run_emulated(kind: str, before: str, call: str) -> int:
    prot, shared = KINDS[kind]
    p = LinuxKernel.like_host(clock=ManualClock()).new_process()
    t = p.new_task(tid=hf.gettid())
    x = p.mmap(PAGE_SIZE, prot=prot, shared=shared)
    w = p.mmap(PAGE_SIZE)
    p.store_u32(w, 0)
    if before == "touched":
        t.syscall_futex(x, abi.FUTEX_WAIT | PRIV, 1, 0, 0, 0)
    got = t.syscall_futex(*CALLS[call](x, w))
    p.futex.check_invariants()
    return got


@host
def test_fresh_and_touched_pages_answer_as_on_the_host() -> None:
    """Every page kind x fresh/touched x call: the host's answer, with the emulator built
    from the probe (so on a CPU with or without protection keys alike)."""
    bad = []
    for kind in KINDS:
        for before in BEFORE:
            for call in CALLS:
                want, got = _run_host(kind, before, call), _run_emulated(kind, before, call)
                if want != got:
                    bad.append(f"{kind} {before} {call}: host {want}, emulator {got}")
    assert not bad, "\n".join(bad)
