"""Probe the Linux host this process runs on: each fact by trying it, never by version.

:func:`probe` answers a :class:`HostProbe`: the :class:`~futex.linux.facts.LinuxFacts`
the host behaves by (so ``LinuxKernel(facts=probe().facts)`` — or
:meth:`~futex.linux.LinuxKernel.like_host` — answers as this host does), plus what the
probe saw on the way (the release string, the architecture, notes on what could not be
probed).  The result is cached; each probe is a handful of system calls that change
nothing (a wait on a word that does not match, a wake nobody hears, a lock the caller
already holds, a read-only prctl), made from a throw-away thread where a call would
change the calling thread.  Every fact is measured, never read off the release string.

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
private_hash       the same once a throw-away thread has run: > 0 (a private hash) or 0
user_ptr_max       FUTEX_WAKE_PRIVATE touches no memory: the highest aligned address whose
                   wake is not EFAULT (``access_ok``), by bisection
wait_rejects_      FUTEX_WAIT_PRIVATE | FUTEX_CLOCK_REALTIME on a word that does not match:
clock_realtime     ENOSYS or EAGAIN
waitv_validates_   futex_waitv, one entry with ``val`` = 2**32 + 1 on a word holding 0:
val                EINVAL or EAGAIN (false without futex_waitv)
get_robust_list_   on a throw-away thread, set_robust_list(-EFAULT) then get_robust_list(0):
is_err             -EFAULT or 0 (the thread's head is put back)
robust_pending_    a throw-away thread ends with a pending robust entry on a word holding
wake_tid0          FUTEX_OWNER_DIED; the caller sleeps on it: woken by the exit or not
                   (the only probe that sleeps, until the thread is gone; see
                   ``_robust_exit_wake``)
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
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from futex.linux.facts import NEWEST, LinuxFacts, parse_release

__all__ = ["HostLibc", "HostProbe", "host_libc", "probe"]

#: Host system call numbers: futex, futex_waitv, futex_wake, futex_wait, futex_requeue,
#: prctl, set_robust_list, get_robust_list.
_SYSCALLS = {
    "x86_64": (202, 449, 454, 455, 456, 157, 273, 274),
    "aarch64": (98, 449, 454, 455, 456, 167, 99, 100),
}
_FUTEX_WAIT = 0
_FUTEX_WAKE = 1
_FUTEX_WAIT_PRIVATE = 0x80
_FUTEX_WAKE_PRIVATE = 0x81
_FUTEX_CLOCK_REALTIME = 0x100
_FUTEX_OWNER_DIED = 0x40000000
_ROBUST_HEAD_SIZE = 24
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


class HostLibc:
    """The raw host calls the probe makes (libc through :mod:`ctypes`, loaded on first use):
    ``syscall``, ``mmap``, ``munmap``, ``mprotect``.  Unsafe by nature (raw addresses); the
    tests and benchmarks build their host baseline on it.  Linux only."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        #: libc's ``syscall`` (seven ``long`` arguments, a ``long`` result; errno kept by
        #: ctypes): for callers that convert their own registers on a hot path.
        self.syscall_fn = self._syscall = libc.syscall
        self._syscall.restype = ctypes.c_long
        self._syscall.argtypes = [ctypes.c_long] * 7
        self._mmap = libc.mmap
        self._mmap.restype = ctypes.c_void_p
        self._mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                               ctypes.c_int, ctypes.c_long]  # fmt: skip
        self._munmap = libc.munmap
        self._munmap.restype = ctypes.c_int
        self._munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self._mprotect = libc.mprotect
        self._mprotect.restype = ctypes.c_int
        self._mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

    @staticmethod
    def as_long(v: int) -> int:
        """A register value as C's ``long`` (two's complement of its low 64 bits)."""
        v &= 0xFFFFFFFFFFFFFFFF
        return v - (1 << 64) if v >> 63 else v

    def call(self, nr: int, *args: int) -> int:
        """A raw system call (the host's number ``nr``) with up to six register values:
        its result, or -errno."""
        regs = [self.as_long(v) for v in args] + [0] * (6 - len(args))
        r: int = self._syscall(nr, *regs)
        return r if r >= 0 else -ctypes.get_errno()

    def mmap(self, length: int, prot: int, flags: int, addr: int = 0, fd: int = -1,
             offset: int = 0) -> int:  # fmt: skip
        """mmap(2); raises OSError on failure."""
        r = self._mmap(addr or None, length, prot, flags, fd, offset)
        if r is None or r == ctypes.c_void_p(-1).value:
            self._raise()
        return int(r)

    def munmap(self, addr: int, length: int) -> None:
        """munmap(2); raises OSError on failure."""
        if self._munmap(addr, length):
            self._raise()

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        """mprotect(2); raises OSError on failure."""
        if self._mprotect(addr, length, prot):
            self._raise()

    @staticmethod
    def _raise() -> None:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@functools.cache
def host_libc() -> HostLibc:
    """The process's :class:`HostLibc` (made once)."""
    return HostLibc()


class _Prober:
    def __init__(self, libc: HostLibc, numbers: tuple[int, ...]) -> None:
        self.libc = libc
        (self.nr_futex, self.nr_waitv, self.nr_wake, self.nr_wait, self.nr_requeue,
         self.nr_prctl, self.nr_set_robust, self.nr_get_robust) = numbers  # fmt: skip
        # Two words in memory this process owns: [value, node] (8-aligned for NUMA).
        self.buf = ctypes.create_string_buffer(64)
        self.word = (ctypes.addressof(self.buf) + 7) & ~7

    def futex(self, uaddr: int, op: int, val: int = 0, utime: int = 0) -> int:
        return self.libc.call(self.nr_futex, uaddr, op, val, utime, 0, 0)

    def put(self, value: int, node: int = 0) -> None:
        ctypes.memmove(self.word, struct.pack("<II", value, node), 8)

    def protection_keys(self) -> bool:
        page = self.libc.mmap(mmap.PAGESIZE, mmap.PROT_EXEC, _MAP_PRIVATE_ANON)
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

    def private_hash(self) -> bool:
        """Once the process has had a second thread, GET_SLOTS answers the private hash's
        size (6.17+: at least 16) or 0 (6.16: the private hash is disabled).  A process
        that went back to the global hash for good also answers 0: then it has none."""
        t = threading.Thread(target=lambda: None, name="futex-probe-thread")
        t.start()
        t.join()
        return self.libc.call(self.nr_prctl, _PR_FUTEX_HASH, _PR_FUTEX_HASH_GET_SLOTS) > 0

    def wait_rejects_clock_realtime(self) -> bool:
        """FUTEX_WAIT_PRIVATE | FUTEX_CLOCK_REALTIME on a word that does not match: ENOSYS
        (5.13+) or EAGAIN (accepted, older)."""
        self.put(0)
        r = self.futex(self.word, _FUTEX_WAIT_PRIVATE | _FUTEX_CLOCK_REALTIME, 1)
        if r not in (-errno.ENOSYS, -errno.EAGAIN):
            raise OSError(-r, f"FUTEX_WAIT | FUTEX_CLOCK_REALTIME answered {r}")
        return r == -errno.ENOSYS

    def waitv_validates_val(self) -> bool:
        """futex_waitv with one entry whose ``val`` has bit 32 set and low bits that do not
        match the word: EINVAL (6.7+) or EAGAIN (truncated, 5.16 .. 6.6); never sleeps."""
        self.put(0)
        entry = ctypes.create_string_buffer(struct.pack("<QQII", 1 << 32 | 1, self.word,
                                                        _FUTEX2_U32_PRIVATE, 0))  # fmt: skip
        r = self.libc.call(self.nr_waitv, ctypes.addressof(entry), 1, 0, 0, 0)
        if r not in (-errno.EINVAL, -errno.EAGAIN):
            raise OSError(-r, f"futex_waitv with a 33-bit val answered {r}")
        return r == -errno.EINVAL

    def get_robust_list_is_err(self) -> bool:
        """On a throw-away thread: set_robust_list(-EFAULT), then get_robust_list(0):
        -EFAULT (6.18+, the head is taken for an errno) or 0 (stored like any head)."""
        got: list[int] = []
        out = ctypes.create_string_buffer(16)
        head_ptr = ctypes.addressof(out)

        def attempt() -> None:
            saved = ctypes.create_string_buffer(16)
            at = ctypes.addressof(saved)
            libc = self.libc
            if libc.call(self.nr_get_robust, 0, at, at + 8) != 0:
                got.append(1)
                return
            old = struct.unpack_from("<Q", saved.raw)[0]
            libc.call(self.nr_set_robust, -errno.EFAULT, _ROBUST_HEAD_SIZE)
            got.append(libc.call(self.nr_get_robust, 0, head_ptr, head_ptr + 8))
            libc.call(self.nr_set_robust, old, _ROBUST_HEAD_SIZE)

        t = threading.Thread(target=attempt, name="futex-probe-robust")
        t.start()
        t.join()
        if got[0] not in (0, -errno.EFAULT):
            raise OSError(-got[0], f"get_robust_list after set_robust_list(-14) said {got[0]}")
        return got[0] == -errno.EFAULT

    def robust_pending_wake_tid0(self) -> bool | None:
        """Whether a thread's exit wakes a waiter of its pending robust entry whose word is
        FUTEX_OWNER_DIED with no TID (6.2+), or leaves it asleep; ``None`` if the probe
        cannot tell (no ``/proc``, a signal).  See :func:`_robust_exit_wake`."""
        return _robust_exit_wake(self)

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


#: How long the robust-exit probe waits for a state before it gives up (it never needs to).
_PROBE_DEADLINE = 5.0


def _until(cond: Callable[[], bool]) -> bool:
    """Poll ``cond`` until it holds (True) or :data:`_PROBE_DEADLINE` passes (False)."""
    end = time.monotonic() + _PROBE_DEADLINE
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.0005)
    return True


def _blocked_in(task: int, nr: int, arg0: int) -> bool:
    """``/proc/self/task/<task>/syscall`` shows the task asleep in call ``nr`` on ``arg0``."""
    try:
        with open(f"/proc/self/task/{task}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return False
    return fields[:2] == [str(nr), f"{arg0:#x}"]


def _robust_exit_wake(p: _Prober) -> bool | None:
    """Does a thread's exit wake a waiter of its pending robust entry whose word is
    FUTEX_OWNER_DIED without a TID?  (``handle_futex_death``: 6.2+ looks at the TID bits
    only; before, only a word of 0 gets the wake.)

    Three threads and one word in this process's memory: a throw-away *dying* thread
    registers a robust list whose pending entry is the word, the calling thread sleeps on
    the word (a shared FUTEX_WAIT, as the exit path wakes shared), and a *controller* lets
    the dying thread end once ``/proc`` shows the caller asleep, waits until the dying
    thread is gone, and wakes the word itself: it finds the caller still asleep (1: the
    exit woke nobody) or not (0: the exit woke it).  No wait is left behind and nothing
    else is touched; ``None`` if ``/proc`` cannot show the states or a signal interfered.
    """
    me = threading.get_native_id()
    if not os.path.exists(f"/proc/self/task/{me}/syscall"):
        return None
    mem = ctypes.create_string_buffer(64)  # head (24 bytes), the entry, the word
    head = (ctypes.addressof(mem) + 7) & ~7
    entry, word = head + 24, head + 32
    ctypes.memmove(head, struct.pack("<QqQ", head, word - entry, entry), 24)
    ctypes.memmove(word, struct.pack("<I", _FUTEX_OWNER_DIED), 4)
    registered, go = threading.Event(), threading.Event()
    dying_tid: list[int] = []
    seen: list[bool] = []
    woken_here: list[int] = []

    def dying() -> None:
        dying_tid.append(threading.get_native_id())
        p.libc.call(p.nr_set_robust, head, _ROBUST_HEAD_SIZE)
        registered.set()
        go.wait(_PROBE_DEADLINE)  # then the thread ends with the entry pending

    def controller() -> None:
        try:
            ok = registered.wait(_PROBE_DEADLINE) and _until(
                lambda: _blocked_in(me, p.nr_futex, word)
            )
            go.set()
            gone = f"/proc/self/task/{dying_tid[0]}" if dying_tid else ""
            seen.append(ok and _until(lambda: not os.path.exists(gone)))
        finally:
            go.set()
            woken_here.append(p.futex(word, _FUTEX_WAKE, 1))

    threads = [threading.Thread(target=f, name=f"futex-probe-{f.__name__}", daemon=True)
               for f in (dying, controller)]  # fmt: skip
    for t in threads:
        t.start()
    limit = ctypes.create_string_buffer(struct.pack("<qq", int(3 * _PROBE_DEADLINE), 0))
    r = p.futex(word, _FUTEX_WAIT, _FUTEX_OWNER_DIED, ctypes.addressof(limit))
    for t in threads:
        t.join()
    if r != 0 or not seen or not seen[0]:
        return None
    return woken_here[0] == 0


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
        p = _Prober(host_libc(), numbers)
        numa = p.futex2() and p.futex2_numa()
        waitv = p.futex_waitv()
        nodes, local = p.numa_nodes() if numa else (_sysfs_nodes(), -1)
        if local not in nodes:
            local = min(nodes)
        fields.update(
            protection_keys=p.protection_keys(),
            lock_pi2=p.lock_pi2(),
            futex_waitv=waitv,
            futex2=p.futex2(),
            futex2_numa=numa,
            numa_nodes=nodes,
            local_node=local,
            futex_hash=p.futex_hash(),
            private_hash=p.futex_hash() and p.private_hash(),
            user_ptr_max=p.user_ptr_max(),
            rt_sched=_rt_sched(),
            wait_rejects_clock_realtime=p.wait_rejects_clock_realtime(),
            # before futex_waitv existed, nothing checked an entry's val
            waitv_validates_val=waitv and p.waitv_validates_val(),
            get_robust_list_is_err=p.get_robust_list_is_err(),
        )
        wake_tid0 = p.robust_pending_wake_tid0()
        if wake_tid0 is None:
            notes.append("robust_pending_wake_tid0 not probed (no /proc, or a signal): newest")
        else:
            fields["robust_pending_wake_tid0"] = wake_tid0
    facts = LinuxFacts(release=_major_minor(model_release), **fields)  # type: ignore[arg-type]
    euid = os.geteuid() if hasattr(os, "geteuid") else -1
    return HostProbe(facts, release, machine, euid, tuple(notes))


def _major_minor(release: str) -> str:
    major, minor = parse_release(release)
    return f"{major}.{minor}"
