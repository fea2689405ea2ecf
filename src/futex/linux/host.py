"""Probe the Linux host this process runs on: each fact by trying it, never by version.

:func:`probe` answers a :class:`HostProbe`: the :class:`~futex.linux.facts.LinuxFacts`
the host behaves by (so ``LinuxKernel(facts=probe().facts)`` — or
:meth:`~futex.linux.LinuxKernel.like_host` — answers as this host does), plus what the
probe saw on the way (the release string, the architecture, notes on what could not be
probed).  The result is cached; each probe is a handful of system calls that change
nothing (a wait on a word that does not match, a wake nobody hears, a lock the caller
already holds, a read-only prctl), made from a throw-away thread where a call would
change the calling thread.

How each fact is measured:

=================  ===========================================================================
fact               the call, and how its answer reads
=================  ===========================================================================
protection_keys    FUTEX_WAIT_PRIVATE with a wrong value on a fresh ``PROT_EXEC`` page:
                   EFAULT (the read faults: execute-only) or EAGAIN (it read 0)
lock_pi2           FUTEX_LOCK_PI2_PRIVATE on a word holding the caller's tid: EDEADLK or ENOSYS
futex_waitv        futex_waitv(NULL, 0, 0, NULL, 0): EINVAL or ENOSYS
futex2             futex_wake with mask 0: EINVAL or ENOSYS (futex_wait, futex_requeue alike;
                   all three must exist)
futex2_numa        futex_wake(FUTEX2_NUMA) on ``{0, FUTEX_NO_NODE}``: 0 or EINVAL
numa_nodes         with FUTEX2_NUMA: the nodes 0..63 a node word may name (else sysfs)
futex_hash         prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS): >= 0 or EINVAL
user_ptr_max       FUTEX_WAKE_PRIVATE touches no memory: the highest aligned address whose
                   wake is not EFAULT (``access_ok``), by bisection
rt_sched           sched_setscheduler(SCHED_FIFO, 1) on a throw-away thread: allowed or EPERM
online_cpus        ``os.sysconf("SC_NPROCESSORS_ONLN")``
pid_max            ``/proc/sys/kernel/pid_max``
=================  ===========================================================================

The system call numbers are the host's (x86-64 and arm64 are known); on another
architecture, or off Linux, the futex facts keep their defaults and ``notes`` says so.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import mmap
import os
import platform
import struct
import sys
import threading
from dataclasses import dataclass, field

from futex.linux.facts import NEWEST, LinuxFacts, parse_release

__all__ = ["HostProbe", "probe"]

#: Host system call numbers: futex, futex_waitv, futex_wake, futex_wait, futex_requeue,
#: prctl.
_SYSCALLS = {
    "x86_64": (202, 449, 454, 455, 456, 157),
    "aarch64": (98, 449, 454, 455, 456, 167),
}
_FUTEX_WAIT_PRIVATE = 0x80
_FUTEX_WAKE_PRIVATE = 0x81
_FUTEX_LOCK_PI2_PRIVATE = 13 | 0x80
_FUTEX2_U32_PRIVATE = 0x02 | 0x80
_FUTEX2_NUMA = 0x04
_PR_FUTEX_HASH = 78
_PR_FUTEX_HASH_GET_SLOTS = 2
_MAP_PRIVATE_ANON = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS


@dataclass(frozen=True)
class HostProbe:
    """What :func:`probe` found: ``facts`` to build an emulator from, and how it got them."""

    facts: LinuxFacts
    uname_release: str = ""
    machine: str = ""
    euid: int = -1
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> list[str]:
        """Lines for a report or the pytest header."""
        who = "root" if self.euid == 0 else f"uid {self.euid}"
        head = [f"host: Linux {self.uname_release} on {self.machine}, as {who}"]
        return head + self.facts.describe() + [f"note: {n}" for n in self.notes]


class _Libc:
    """The few libc entries the probe needs, with errno."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.syscall = libc.syscall
        self.syscall.restype = ctypes.c_long
        self.syscall.argtypes = [ctypes.c_long] * 7
        self.mmap = libc.mmap
        self.mmap.restype = ctypes.c_void_p
        self.mmap.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        ]
        self.munmap = libc.munmap
        self.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]

    def call(self, nr: int, *args: int) -> int:
        """A raw system call: its result, or -errno."""
        a = [v - (1 << 64) if v >> 63 else v for v in (x & (2**64 - 1) for x in args)]
        a += [0] * (6 - len(a))
        r: int = self.syscall(nr, *a)
        return r if r >= 0 else -ctypes.get_errno()


class _Prober:
    def __init__(self, libc: _Libc, numbers: tuple[int, ...]) -> None:
        self.libc = libc
        (self.nr_futex, self.nr_waitv, self.nr_wake, self.nr_wait, self.nr_requeue,
         self.nr_prctl) = numbers  # fmt: skip
        # Two words in memory this process owns: [value, node] (8-aligned for NUMA).
        self.buf = ctypes.create_string_buffer(64)
        self.word = (ctypes.addressof(self.buf) + 7) & ~7

    def futex(self, uaddr: int, op: int, val: int = 0, utime: int = 0) -> int:
        return self.libc.call(self.nr_futex, uaddr, op, val, utime, 0, 0)

    def put(self, value: int, node: int = 0) -> None:
        ctypes.memmove(self.word, struct.pack("<II", value, node), 8)

    def protection_keys(self) -> bool:
        page = self.libc.mmap(None, mmap.PAGESIZE, mmap.PROT_EXEC, _MAP_PRIVATE_ANON, -1, 0)
        if page in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap(PROT_EXEC) failed")
        try:
            r = self.futex(page, _FUTEX_WAIT_PRIVATE, 1)
        finally:
            self.libc.munmap(page, mmap.PAGESIZE)
        if r not in (-errno.EFAULT, -errno.EAGAIN):
            raise OSError(-r, f"FUTEX_WAIT on an execute-only page answered {r}")
        return r == -errno.EFAULT

    def lock_pi2(self) -> bool:
        tid = threading.get_native_id()
        self.put(tid)
        return self.futex(self.word, _FUTEX_LOCK_PI2_PRIVATE) != -errno.ENOSYS

    def futex_waitv(self) -> bool:
        return self.libc.call(self.nr_waitv, 0, 0, 0, 0, 0) != -errno.ENOSYS

    def futex2(self) -> bool:
        w = self.word
        calls = (
            (self.nr_wake, w, 0, 1, _FUTEX2_U32_PRIVATE),  # mask 0
            (self.nr_wait, w, 0, 0, _FUTEX2_U32_PRIVATE, 0, 0),  # mask 0
            (self.nr_requeue, 0, 1, 0, 0),  # flags != 0
        )
        return all(self.libc.call(*c) != -errno.ENOSYS for c in calls)

    def numa_wake(self, node: int) -> int:
        self.put(0, node)
        return self.libc.call(self.nr_wake, self.word, 0xFFFFFFFF, 1,
                              _FUTEX2_U32_PRIVATE | _FUTEX2_NUMA)  # fmt: skip

    def futex2_numa(self) -> bool:
        return self.numa_wake(0xFFFFFFFF) == 0

    def numa_nodes(self) -> tuple[frozenset[int], int]:
        """The nodes a FUTEX2_NUMA word may name, and the node FUTEX_NO_NODE becomes."""
        nodes = frozenset(n for n in range(64) if self.numa_wake(n) == 0)
        self.numa_wake(0xFFFFFFFF)  # the kernel writes the caller's node back
        return nodes, struct.unpack("<II", ctypes.string_at(self.word, 8))[1]

    def futex_hash(self) -> bool:
        return self.libc.call(self.nr_prctl, _PR_FUTEX_HASH, _PR_FUTEX_HASH_GET_SLOTS) >= 0

    def user_ptr_max(self) -> int:
        """Bisect the highest 4-aligned address a private wake accepts (no memory is
        touched: only ``access_ok`` can fail)."""
        lo, hi = 0, 1 << 64  # lo passes, hi fails (invariant)
        if self.futex(lo, _FUTEX_WAKE_PRIVATE, 1) != 0:
            raise OSError("FUTEX_WAKE_PRIVATE at address 0 failed")
        while hi - lo > 4:
            mid = ((lo + hi) // 2) & ~3
            if self.futex(mid, _FUTEX_WAKE_PRIVATE, 1) == 0:
                lo = mid
            else:
                hi = mid
        return lo


def _sysfs_nodes() -> frozenset[int]:
    try:
        with open("/sys/devices/system/node/possible") as f:
            text = f.read().strip()
    except OSError:
        return frozenset({0})
    nodes: set[int] = set()
    for part in text.split(","):
        a, _, b = part.partition("-")
        nodes.update(range(int(a), int(b or a) + 1))
    return frozenset(nodes) or frozenset({0})


def _rt_sched() -> bool:
    """Whether this user may make a thread SCHED_FIFO (tried on a throw-away thread)."""
    got: list[bool] = []

    def attempt() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            got.append(True)
        except OSError:
            got.append(False)

    t = threading.Thread(target=attempt, name="futex-probe-rt")
    t.start()
    t.join()
    return got[0]


def _pid_max() -> int:
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return int(f.read())
    except (OSError, ValueError):
        return LinuxFacts().pid_max


@functools.cache
def probe() -> HostProbe:
    """Probe this host once (cached).  Off Linux, or on an architecture whose system call
    numbers are unknown, the futex facts are the defaults and ``notes`` says so."""
    notes: list[str] = []
    uname = os.uname() if hasattr(os, "uname") else None
    release = uname.release if uname else ""
    machine = platform.machine()
    try:
        parse_release(release)
        model_release = release
    except ValueError:
        model_release = NEWEST
    fields: dict[str, object] = {
        "online_cpus": os.sysconf("SC_NPROCESSORS_ONLN") if hasattr(os, "sysconf") else 1,
        "pid_max": _pid_max(),
    }
    numbers = _SYSCALLS.get(machine)
    if sys.platform != "linux" or numbers is None:
        notes.append(f"futex facts not probed: {sys.platform}/{machine} has no known numbers")
    else:
        p = _Prober(_Libc(), numbers)
        numa = p.futex2() and p.futex2_numa()
        nodes, local = p.numa_nodes() if numa else (_sysfs_nodes(), -1)
        if local not in nodes:
            local = min(nodes)
        fields.update(
            protection_keys=p.protection_keys(),
            lock_pi2=p.lock_pi2(),
            futex_waitv=p.futex_waitv(),
            futex2=p.futex2(),
            futex2_numa=numa,
            numa_nodes=nodes,
            local_node=local,
            futex_hash=p.futex_hash(),
            user_ptr_max=p.user_ptr_max(),
            rt_sched=_rt_sched(),
        )
    facts = LinuxFacts(release=_major_minor(model_release), **fields)  # type: ignore[arg-type]
    euid = os.geteuid() if hasattr(os, "geteuid") else -1
    return HostProbe(facts, release, machine, euid, tuple(notes))


def _major_minor(release: str) -> str:
    major, minor = parse_release(release)
    return f"{major}.{minor}"
