"""LTP's futex wake and requeue tests (``testcases/kernel/syscalls/futex/futex_wake*``,
``futex_cmp_requeue*``), ported to the emulated Linux kernel; the wait cases are in
``test_wait.py``.

Each test names the LTP case it ports.  LTP's forked processes become emulated processes
(:meth:`Process.fork`, then a task in the child) and its threads become tasks of one
process; a task blocks either on a real thread (``threads``) or cooperatively through
:class:`PendingWait` (``cooperative``).

What cannot be emulated is adapted and said so in the docstring: huge pages become subpages
of one large mapping (futex_wake04).  Where LTP only bounds a count because real threads
wake spuriously (futex_cmp_requeue01), the emulation has no spurious wakeups and the counts
are asserted exactly.

Facts beyond LTP that the adaptations rely on (private ops never look at the mapping, the
CMP_REQUEUE argument order) were checked on the host kernel with
``tests/support/hostfutex.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from futex.kernel import ManualClock
from futex.linux import LinuxKernel, Process, Task, abi
from futex.memory import PAGE_SIZE, PROT_NONE, File
from tests.linux.ltp.support import (
    CMP_REQUEUE,
    FLAGS,
    INT_MAX,
    PRIV,
    WAIT,
    WAKE,
    assert_timers_idle,
    make_start,
    timespec,
)
from tests.support import StartWait, Wait

# -- futex_wake01 ------------------------------------------------------------------------------


@FLAGS
@pytest.mark.parametrize("nr_wake", [0, 1, INT_MAX])
@pytest.mark.parametrize("shared_mem", [False, True], ids=["MAP_PRIVATE", "MAP_SHARED"])
def test_futex_wake01_no_waiters_returns_zero(
    kernel: LinuxKernel, flags: int, nr_wake: int, shared_mem: bool, start_coop: StartWait
) -> None:
    """LTP futex_wake01: WAKE with nobody waiting on the word -> 0, for any count; a waiter
    on the neighbouring word is a different futex and stays asleep."""
    p = kernel.new_process()
    t = p.new_task()
    sleeper = p.new_task()
    f = p.mmap(PAGE_SIZE, shared=shared_mem)
    assert t.syscall_futex(f, WAKE | flags, nr_wake, 0, 0, 0) == 0
    w = start_coop(sleeper, f + 4, WAIT | flags, 0)
    assert t.syscall_futex(f, WAKE | flags, nr_wake, 0, 0, 0) == 0
    assert not w.done()
    assert t.syscall_futex(f + 4, WAKE | flags, 1, 0, 0, 0) == 1
    assert w.result() == 0


# -- futex_wake02 / futex_wake03 ---------------------------------------------------------------

WAKE_WAITERS = 55


def check_wake_in_steps(waker: Task, f: int, flags: int, waits: list[Wait]) -> None:
    """For i in 1..10: WAKE(i) returns i and exactly the next i waiters (FIFO) wake."""
    woken = 0
    for i in range(1, 11):
        assert waker.syscall_futex(f, WAKE | flags, i, 0, 0, 0) == i
        woken += i
        assert [w.done() for w in waits] == [n < woken for n in range(len(waits))], (
            f"WAKE({i}) did not wake exactly the next {i} waiters"
        )
    assert woken == len(waits)
    assert waker.syscall_futex(f, WAKE | flags, 1, 0, 0, 0) == 0
    assert [w.result() for w in waits] == [0] * len(waits)


def test_futex_wake02_threads_wake_exactly_n(kernel: LinuxKernel, start: StartWait) -> None:
    """LTP futex_wake02: 55 threads wait on a private futex; for i = 1..10, WAKE(i)
    returns i and exactly i threads wake; a last WAKE(1) finds nobody -> 0."""
    p = kernel.new_process()
    main = p.new_task()
    f = p.mmap(PAGE_SIZE)
    waits = [start(p.new_task(), f, WAIT | PRIV, 0) for _ in range(WAKE_WAITERS)]
    assert p.futex.stats().queued == WAKE_WAITERS
    check_wake_in_steps(main, f, PRIV, waits)


def test_futex_wake03_processes_wake_exactly_n(kernel: LinuxKernel, start: StartWait) -> None:
    """LTP futex_wake03: 55 forked processes wait on a futex in MAP_SHARED memory (shared
    op); for i = 1..10 the parent's WAKE(i) returns i and exactly i children wake."""
    p = kernel.new_process()
    parent = p.new_task()
    f = p.mmap(PAGE_SIZE, shared=True)
    waits = [start(p.fork().new_task(), f, WAIT, 0) for _ in range(WAKE_WAITERS)]
    assert p.futex.stats().queued == WAKE_WAITERS  # the shared table is common
    check_wake_in_steps(parent, f, 0, waits)


# -- futex_wake04 ------------------------------------------------------------------------------


@FLAGS
@pytest.mark.parametrize("memory", ["private-anon", "shared-anon", "shared-file"])
def test_futex_wake04_subpages_of_one_mapping_are_distinct(
    kernel: LinuxKernel, flags: int, memory: str, start: StartWait
) -> None:
    """LTP futex_wake04 (regression for 13d60f4b6ab5b), adapted: MAP_HUGETLB becomes one
    2 MiB mapping; futexes at the same offset of its 1st and 2nd 4 KiB subpages are
    distinct: waking futex2 wakes thread2, never thread1."""
    size = 2 << 20
    p = kernel.new_process()
    main = p.new_task()
    if memory == "shared-file":
        huge = File("huge", size=size + 2 * PAGE_SIZE)
        base = p.mmap(size, shared=True, file=huge, offset=PAGE_SIZE)
    else:
        base = p.mmap(size, shared=memory == "shared-anon")
    off = 0x40
    futex1 = base + off
    futex2 = base + PAGE_SIZE + off
    t1 = p.new_task()
    t2 = p.new_task()
    w1 = start(t1, futex1, WAIT | flags, 0)
    w2 = start(t2, futex2, WAIT | flags, 0)
    assert main.syscall_futex(futex2, WAKE | flags, 1, 0, 0, 0) == 1
    assert w2.result() == 0
    assert not w1.done(), "waking futex2 woke the waiter on futex1"
    assert main.syscall_futex(futex2, WAKE | flags, 1, 0, 0, 0) == 0
    assert main.syscall_futex(futex1, WAKE | flags, 1, 0, 0, 0) == 1
    assert w1.result() == 0


# -- futex_wake05 / futex_cmp_requeue03: EFAULT ------------------------------------------------


def bad_word(p: Process, kind: str) -> int:
    """A futex address Linux cannot key as a shared futex (and whose value cannot be read)."""
    if kind == "unmapped":
        a = p.mmap(PAGE_SIZE)
        p.munmap(a, PAGE_SIZE)
        return a
    if kind == "PROT_NONE":
        a = p.mmap(PAGE_SIZE)
        p.mprotect(a, PAGE_SIZE, PROT_NONE)
        return a
    if kind == "shared-file-past-EOF":
        f = File("f", size=PAGE_SIZE)
        a = p.mmap(PAGE_SIZE, shared=True, file=f)
        f.truncate(0)
        return a
    if kind == "private-file-past-EOF":
        f = File("f", size=PAGE_SIZE)
        a = p.mmap(PAGE_SIZE, shared=False, file=f)
        f.truncate(0)
        return a
    raise AssertionError(kind)


BAD_KINDS = ["unmapped", "PROT_NONE", "shared-file-past-EOF", "private-file-past-EOF"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_futex_wake05_shared_wake_efault(kernel: LinuxKernel, kind: str) -> None:
    """LTP futex_wake05: a shared WAKE on an unmapped word (no VMA), a PROT_NONE word
    (gup fails) or a file page past a truncated EOF (VM_FAULT_SIGBUS) -> EFAULT."""
    p = kernel.new_process()
    t = p.new_task()
    a = bad_word(p, kind)
    assert t.syscall_futex(a, WAKE, 1, 0, 0, 0) == -abi.EFAULT


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_futex_wake05_private_wake_needs_no_mapping(kernel: LinuxKernel, kind: str) -> None:
    """LTP futex_wake05, contrast (host-checked): a private key is just the address, and
    WAKE never reads the word, so FUTEX_WAKE_PRIVATE on the same words -> 0."""
    p = kernel.new_process()
    t = p.new_task()
    a = bad_word(p, kind)
    assert t.syscall_futex(a, WAKE | PRIV, 1, 0, 0, 0) == 0


def test_futex_wake05_truncation_faults_only_pages_past_eof(kernel: LinuxKernel) -> None:
    """LTP futex_wake05, detail: after truncating a two-page file to 100 bytes, the first
    page (partly inside the file) still keys, the second faults."""
    p = kernel.new_process()
    t = p.new_task()
    f = File("f", size=2 * PAGE_SIZE)
    a = p.mmap(2 * PAGE_SIZE, shared=True, file=f)
    f.truncate(100)
    assert t.syscall_futex(a + 0x200, WAKE, 1, 0, 0, 0) == 0
    assert t.syscall_futex(a + PAGE_SIZE, WAKE, 1, 0, 0, 0) == -abi.EFAULT


@pytest.mark.parametrize("kind", BAD_KINDS)
@pytest.mark.parametrize("bad", ["uaddr", "uaddr2"])
@pytest.mark.parametrize("cmp_matches", [True, False], ids=["val3-match", "val3-mismatch"])
def test_futex_cmp_requeue03_shared_efault(
    kernel: LinuxKernel, kind: str, bad: str, cmp_matches: bool, start_coop: StartWait
) -> None:
    """LTP futex_cmp_requeue03: a shared CMP_REQUEUE whose uaddr or uaddr2 is unmapped,
    PROT_NONE or past a truncated file's EOF -> EFAULT.  Both keys are looked up before
    the compare, so a mismatching val3 still gives EFAULT; a waiter on the good futex is
    neither woken nor moved."""
    p = kernel.new_process()
    t = p.new_task()
    sleeper = p.new_task()
    good = p.mmap(PAGE_SIZE, shared=True)
    w = start_coop(sleeper, good, WAIT, 0)
    worse = bad_word(p, kind)
    uaddr, uaddr2 = (worse, good) if bad == "uaddr" else (good, worse)
    val3 = 0 if cmp_matches else 1
    assert t.syscall_futex(uaddr, CMP_REQUEUE, 1, 1, uaddr2, val3) == -abi.EFAULT
    assert not w.done()
    assert p.futex.stats().queued == 1
    assert t.syscall_futex(good, WAKE, 1, 0, 0, 0) == 1
    assert w.result() == 0


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_futex_cmp_requeue03_private_keys_need_no_mapping(kernel: LinuxKernel, kind: str) -> None:
    """LTP futex_cmp_requeue03, contrast (host-checked): private keys need no mapping, so
    a private CMP_REQUEUE with a bad uaddr2 succeeds (nobody to move -> 0; a mismatch ->
    EAGAIN); a bad uaddr still faults, because its value is compared."""
    p = kernel.new_process()
    t = p.new_task()
    good = p.mmap(PAGE_SIZE)
    worse = bad_word(p, kind)
    assert t.syscall_futex(good, CMP_REQUEUE | PRIV, 1, 1, worse, 0) == 0
    assert t.syscall_futex(good, CMP_REQUEUE | PRIV, 1, 1, worse, 1) == -abi.EAGAIN
    assert t.syscall_futex(worse, CMP_REQUEUE | PRIV, 1, 1, good, 0) == -abi.EFAULT


# -- futex_cmp_requeue01 -----------------------------------------------------------------------

#: (waiters, wakes, requeues) from LTP's table.
REQUEUE_TABLE = [
    (10, 3, 7),
    (10, 0, 10),
    (10, 2, 6),
    (100, 50, 50),
    (100, 0, 70),
    (1000, 100, 900),
    (1000, 300, 500),
]

REQUEUE_CASES = [
    pytest.param(w, k, r, variant, id=f"{w}-{k}-{r}-{variant}")
    for w, k, r in REQUEUE_TABLE
    for variant in ("processes-cooperative", "processes-threads", "private-cooperative")
    if not (w == 1000 and variant == "processes-threads")
]


@pytest.mark.parametrize(("waiters", "wakes", "requeues", "variant"), REQUEUE_CASES)
def test_futex_cmp_requeue01_counts(
    kernel: LinuxKernel,
    clock: ManualClock,
    run_blocking: Callable[..., Any],
    waiters: int,
    wakes: int,
    requeues: int,
    variant: str,
) -> None:
    """LTP futex_cmp_requeue01: N waiters (with a timeout) on futex1; CMP_REQUEUE(wakes,
    requeues, futex2, val3 = *futex1).  With no spurious wakeups the counts are exact: the
    call returns min(N, wakes + requeues); exactly the first ``wakes`` waiters wake; waking
    futex2 wakes exactly the min(requeues, N - wakes) moved ones; the rest are still on
    futex1; nobody times out.

    ``processes-*``: forked processes on MAP_SHARED memory with shared ops (LTP's setup;
    the 1000-waiter rows spread their tasks over 100 processes and run cooperatively);
    ``private-*``: tasks of one process with private ops."""
    mode = variant.split("-")[1]
    start = make_start(mode, run_blocking)
    p = kernel.new_process()
    parent = p.new_task()
    if variant.startswith("processes"):
        flags = 0
        base = p.mmap(PAGE_SIZE, shared=True)
        ts = timespec(p, 30, 0)  # in private memory: each child inherits a copy
        procs = [p.fork() for _ in range(min(waiters, 100))]
        tasks = [procs[i % len(procs)].new_task() for i in range(waiters)]
    else:
        flags = PRIV
        base = p.mmap(PAGE_SIZE)
        ts = timespec(p, 30, 0)
        tasks = [p.new_task() for _ in range(waiters)]
    futex1, futex2 = base, base + 4
    waits = [start(task, futex1, WAIT | flags, 0, ts) for task in tasks]

    r = parent.syscall_futex(futex1, CMP_REQUEUE | flags, wakes, requeues, futex2, 0)
    assert r == min(waiters, wakes + requeues)
    done = [w.done() for w in waits]
    assert sum(done) == wakes
    assert done == [i < wakes for i in range(waiters)], "woke other than the first waiters"

    moved = min(requeues, waiters - wakes)
    assert parent.syscall_futex(futex2, WAKE | flags, INT_MAX, 0, 0, 0) == moved
    done = [w.done() for w in waits]
    assert done == [i < wakes + moved for i in range(waiters)], "requeued other waiters"

    left = waiters - wakes - moved
    assert parent.syscall_futex(futex1, WAKE | flags, INT_MAX, 0, 0, 0) == left
    assert [w.result() for w in waits] == [0] * waiters, "a waiter timed out"
    assert_timers_idle(clock)


# -- futex_cmp_requeue02 -----------------------------------------------------------------------

#: (val, val2, val3 matches, errno)
REQUEUE02_CASES = [
    pytest.param(1, -1, True, abi.EINVAL, id="val2=-1"),
    pytest.param(-1, 1, True, abi.EINVAL, id="val=-1"),
    pytest.param(1, 1, False, abi.EAGAIN, id="val3-mismatch"),
    pytest.param(1, -1, False, abi.EINVAL, id="val2=-1-before-mismatch"),
    pytest.param(-1, 1, False, abi.EINVAL, id="val=-1-before-mismatch"),
    pytest.param(1, 0x80000000, True, abi.EINVAL, id="val2=INT_MIN"),
    pytest.param(0x80000000, 1, True, abi.EINVAL, id="val=INT_MIN"),
]


@FLAGS
@pytest.mark.parametrize(("val", "val2", "matches", "errno"), REQUEUE02_CASES)
def test_futex_cmp_requeue02_errors(
    kernel: LinuxKernel,
    flags: int,
    val: int,
    val2: int,
    matches: bool,
    errno: int,
    start_coop: StartWait,
) -> None:
    """LTP futex_cmp_requeue02 (CVE-2018-6927 regression): CMP_REQUEUE with a negative
    val2 or val -> EINVAL (checked first); val3 != *uaddr -> EAGAIN; nothing moves."""
    p = kernel.new_process()
    t = p.new_task()
    sleeper = p.new_task()
    base = p.mmap(PAGE_SIZE)
    futex1, futex2 = base, base + 4
    w = start_coop(sleeper, futex1, WAIT | flags, 0)
    val3 = 0 if matches else 1
    assert t.syscall_futex(futex1, CMP_REQUEUE | flags, val, val2, futex2, val3) == -errno
    assert not w.done()
    assert t.syscall_futex(futex2, WAKE | flags, 1, 0, 0, 0) == 0
    assert t.syscall_futex(futex1, WAKE | flags, 1, 0, 0, 0) == 1
    assert w.result() == 0


def test_futex_cmp_requeue02_negative_count_before_fault(kernel: LinuxKernel) -> None:
    """LTP futex_cmp_requeue02, order (host-checked): the negative-count EINVAL comes
    before the key lookup, so an unmapped uaddr with val2 = -1 -> EINVAL, not EFAULT."""
    p = kernel.new_process()
    t = p.new_task()
    good = p.mmap(PAGE_SIZE, shared=True)
    worse = bad_word(p, "unmapped")
    assert t.syscall_futex(worse, CMP_REQUEUE, 1, -1, good, 0) == -abi.EINVAL
