"""set_robust_list and get_robust_list: what they accept, store and answer.

Each test names its source: LTP (``set_robust_list01``, ``get_robust_list01``), gVisor's
``test/syscalls/linux/futex.cc`` (``RobustFutexTest``), or Linux itself
(``kernel/futex/syscalls.c``: ``set_robust_list``, ``get_robust_list``) -- where gVisor
differs from Linux, these follow Linux.  What the host answers to the same calls is in
``test_robust_host.py``.
"""

from __future__ import annotations

import struct

import pytest

from futex.linux import LinuxKernel, abi
from futex.memory import PROT_READ
from tests.linux.robust_support import (
    FILL,
    GET,
    HEAD_SIZE,
    INT_MAX,
    PAGE,
    SET,
    U64,
    fill,
    scene,
    u64,
)

# -- LTP ---------------------------------------------------------------------------------------


def test_ltp_set_robust_list01(kernel: LinuxKernel) -> None:
    """LTP set_robust_list01: len -1 is EINVAL; len sizeof(struct robust_list_head) is 0."""
    p = kernel.new_process()
    t = p.new_task()
    head = p.mmap(PAGE)
    assert t.syscall(SET, head, -1) == -abi.EINVAL
    assert t.robust_list == 0
    assert t.syscall(SET, head, HEAD_SIZE) == 0
    assert t.robust_list == head


def test_ltp_get_robust_list01(kernel: LinuxKernel) -> None:
    """LTP get_robust_list01: a NULL len_ptr or head_ptr is EFAULT; an unused pid is ESRCH;
    pid 0 succeeds.  (Beyond LTP, from the host: the length is stored first, so a NULL
    head_ptr leaves the length written, and a NULL len_ptr leaves the head alone.)"""
    p = kernel.new_process()
    t = p.new_task()
    buf = p.mmap(PAGE)
    head, length = buf, buf + 8
    fill(p, head, length)
    assert t.syscall(GET, 0, head, 0) == -abi.EFAULT
    assert p.read(head, 8) == FILL
    assert t.syscall(GET, 0, 0, length) == -abi.EFAULT
    assert u64(p, length) == HEAD_SIZE
    unused_pid = 0x3FFF_0000
    assert kernel.task(unused_pid) is None
    fill(p, head, length)
    assert t.syscall(GET, unused_pid, head, length) == -abi.ESRCH
    assert p.read(head, 16) == FILL * 2
    assert t.syscall(GET, 0, head, length) == 0
    assert (u64(p, head), u64(p, length)) == (0, HEAD_SIZE)


def test_ltp_get_robust_list01_eperm() -> None:
    """LTP get_robust_list01, last case: after setuid(1), pid 1 (root's) is EPERM."""
    pytest.skip(
        "EPERM comes from ptrace_may_access(PTRACE_MODE_READ_REALCREDS); the emulated "
        "kernel has one user and no credentials, so the check always passes (see "
        "futex.linux.robust)"
    )


# -- gVisor RobustFutexTest --------------------------------------------------------------------


def test_gvisor_basic_set_get(kernel: LinuxKernel) -> None:
    """gVisor RobustFutexTest.BasicSetGet: get_robust_list(0) gives back the head that
    set_robust_list stored, and len == sizeof(struct robust_list_head) == 24."""
    p = kernel.new_process()
    t = p.new_task()
    hd, out = p.mmap(PAGE), p.mmap(PAGE)
    assert t.syscall(SET, hd, HEAD_SIZE) == 0
    fill(p, out, out + 8)
    assert t.syscall(GET, 0, out, out + 8) == 0
    assert (u64(p, out), u64(p, out + 8)) == (hd, HEAD_SIZE)


def test_gvisor_get_from_other_tid(kernel: LinuxKernel) -> None:
    """gVisor RobustFutexTest.GetFromOtherTid: a new thread's head is its own, and
    get_robust_list(parent's tid) from it gives the parent's head."""
    p = kernel.new_process()
    parent = p.new_task()
    mem = p.mmap(PAGE)
    parent_head, child_head, out = mem, mem + 0x40, mem + 0x100
    assert parent.syscall(SET, parent_head, HEAD_SIZE) == 0
    child = p.new_task()
    assert child.syscall(SET, child_head, HEAD_SIZE) == 0
    assert child.syscall(GET, 0, out, out + 8) == 0
    assert u64(p, out) == child_head != parent_head
    assert child.syscall(GET, parent.tid, out, out + 8) == 0
    assert (u64(p, out), u64(p, out + 8)) == (parent_head, HEAD_SIZE)


def test_get_robust_list_of_a_task_in_another_process(kernel: LinuxKernel) -> None:
    """Linux get_robust_list: ``find_task_by_vpid`` finds any task of the pid namespace,
    and the answer goes to the caller's memory."""
    p, q = kernel.new_process(), kernel.new_process()
    t, u = p.new_task(), q.new_task()
    assert t.syscall(SET, 0x1234_5678, HEAD_SIZE) == 0
    out = q.mmap(PAGE)
    assert u.syscall(GET, t.tid, out, out + 8) == 0
    assert (u64(q, out), u64(q, out + 8)) == (0x1234_5678, HEAD_SIZE)


def test_gvisor_invalid_size(kernel: LinuxKernel) -> None:
    """gVisor RobustFutexTest.InvalidSize: set_robust_list(NULL, sizeof + 1) is EINVAL.
    Linux also refuses every other length but 24 (``len`` is a full size_t: 2**64 + 24
    wraps to 24 and is accepted, 2**32 + 24 is not), and keeps the old head."""
    p = kernel.new_process()
    t = p.new_task()
    assert t.syscall(SET, 0x1000, HEAD_SIZE) == 0
    for bad in (HEAD_SIZE + 1, 0, 12, 23, -1, (1 << 32) + HEAD_SIZE):
        assert t.syscall(SET, 0, bad) == -abi.EINVAL, bad
    assert t.robust_list == 0x1000
    assert t.syscall(SET, 0x2000, (1 << 64) + HEAD_SIZE) == 0
    assert t.robust_list == 0x2000


# -- Linux set_robust_list / get_robust_list ---------------------------------------------------


def test_set_robust_list_stores_any_head(kernel: LinuxKernel) -> None:
    """Linux set_robust_list stores the head unvalidated; get_robust_list returns it -- but
    a head in the top 4095 addresses comes back as an error number, nothing written (6.18
    returns the head through ``IS_ERR``; measured on the host)."""
    p = kernel.new_process()
    t = p.new_task()
    out = p.mmap(PAGE)
    for head in (0, 0xDEAD_BEEF_0001, 1 << 63, U64 - 4095, U64 + 1 - (1 << 12)):
        assert t.syscall(SET, head, HEAD_SIZE) == 0
        fill(p, out, out + 8)
        assert t.syscall(GET, 0, out, out + 8) == 0
        assert (u64(p, out), u64(p, out + 8)) == (head, HEAD_SIZE)
    for errno in (1, abi.EFAULT, 4095):
        assert t.syscall(SET, -errno, HEAD_SIZE) == 0
        fill(p, out, out + 8)
        assert t.syscall(GET, 0, out, out + 8) == -errno
        assert t.syscall(GET, 0, 0, 0) == -errno
        assert p.read(out, 16) == FILL * 2


def test_get_robust_list_pid_is_an_int(kernel: LinuxKernel) -> None:
    """Linux get_robust_list(int pid, ...): the register is truncated to 32 bits (2**32 is
    pid 0, the caller) and a negative pid names no task: ESRCH (gVisor: EINVAL)."""
    p = kernel.new_process()
    t = p.new_task()
    out = p.mmap(PAGE)
    assert t.syscall(SET, 0x5000, HEAD_SIZE) == 0
    for pid in (1 << 32, (1 << 32) + t.tid, t.tid - (1 << 32)):
        fill(p, out, out + 8)
        assert t.syscall(GET, pid, out, out + 8) == 0
        assert u64(p, out) == 0x5000
    for pid in (-1, -t.tid, INT_MAX):
        assert t.syscall(GET, pid, out, out + 8) == -abi.ESRCH


def test_get_robust_list_stores_are_all_or_nothing(kernel: LinuxKernel) -> None:
    """Linux get_robust_list: each put_user of 8 bytes either completes or faults whole --
    a store straddling into an unwritable page writes neither page (measured)."""
    p = kernel.new_process()
    t = p.new_task()
    mem = p.mmap(3 * PAGE)
    p.mprotect(mem + PAGE, PAGE, PROT_READ)
    p.munmap(mem + 2 * PAGE, PAGE)
    ok = mem + 0x100
    assert t.syscall(SET, 0x1122_3344_5566_7788, HEAD_SIZE) == 0
    fill(p, mem + PAGE - 8, ok, ok + 8)
    assert t.syscall(GET, 0, ok, mem + PAGE - 4) == -abi.EFAULT  # len straddles into RO
    assert p.read(mem + PAGE - 8, 8) == FILL and p.read(ok, 8) == FILL
    assert t.syscall(GET, 0, mem + PAGE - 4, ok + 8) == -abi.EFAULT
    assert p.read(mem + PAGE - 8, 8) == FILL and u64(p, ok + 8) == HEAD_SIZE
    p.mmap(PAGE, addr=mem + 2 * PAGE)
    fill(p, mem + 2 * PAGE)
    p.munmap(mem + PAGE, PAGE)  # a hole, then a writable page: the later part is not written
    assert t.syscall(GET, 0, ok, mem + 2 * PAGE - 4) == -abi.EFAULT
    assert p.read(mem + 2 * PAGE, 8) == FILL
    assert t.syscall(GET, 0, ok + 1, ok + 5) == 0  # misaligned, overlapping: len first
    assert p.read(ok + 1, 12) == struct.pack("<QI", 0x1122_3344_5566_7788, 0)


def test_get_robust_list_of_exited_task_is_esrch(kernel: LinuxKernel) -> None:
    """Linux get_robust_list: a pid that names no task is ESRCH (an exited thread is
    released at once)."""
    s = scene(kernel)
    s.register()
    out = s.base + 0x40
    assert s.other.syscall(GET, s.owner.tid, out, out + 8) == 0
    tid = s.owner.tid
    s.owner.exit()
    assert s.other.syscall(GET, tid, out, out + 8) == -abi.ESRCH
