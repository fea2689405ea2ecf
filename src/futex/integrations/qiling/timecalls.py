"""clock_gettime, clock_nanosleep and nanosleep for the guest, on the host's clocks.

Stock Qiling answers ``clock_gettime`` with the host's wall time for every clock id and
microseconds in ``tv_nsec`` (50 ms reads as 0.05 ms), and sleeps relative even when
TIMER_ABSTIME is given.  A CLOCK_MONOTONIC deadline computed from such a reading lies in
the far future of the kernel's monotonic clock, so a timed wait would never end.  Here the
guest reads the host's own clocks at nanosecond precision -- the clocks
:class:`~futex.integrations.qiling.clock.GeventClock` arms the kernel's timeouts on -- so a
guest deadline and the futex kernel's timer measure the same time.

The checks run in Linux's order (``SYSCALL_DEFINE4(clock_nanosleep)``: the clock, whether it
can sleep, the request's read (EFAULT), its validity (EINVAL)).  Clock ids: REALTIME 0,
MONOTONIC 1, PROCESS_CPUTIME 2, THREAD_CPUTIME 3, MONOTONIC_RAW 4, REALTIME_COARSE 5,
MONOTONIC_COARSE 6, BOOTTIME 7, REALTIME_ALARM 8, BOOTTIME_ALARM 9, TAI 11 read the host's
clock of the same id (the CPU-time clocks: the emulator's, the only CPU time there is);
negative ids (per-process CPU clocks, dynamic clocks) and any other are EINVAL.  Sleeps run
on REALTIME, MONOTONIC, BOOTTIME, TAI and the two ALARM clocks (as their base clocks);
the clocks without ``nsleep`` (MONOTONIC_RAW, the COARSE ones) are EOPNOTSUPP, as Linux
answers; THREAD_CPUTIME is EINVAL (``thread_cpu_nsleep``); PROCESS_CPUTIME is EOPNOTSUPP
here (a CPU-time sleep of an emulated process is not modelled).  No signal ever arrives,
so a sleep never ends early and ``rem`` is never written.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from futex.integrations.qiling.parking import park
from futex.kernel import MemoryFault
from futex.linux import abi

if TYPE_CHECKING:
    from futex.integrations.qiling.integration import Integration

__all__ = ["handlers"]

_TIMESPEC = struct.Struct("<qq")
_NSEC = 1_000_000_000
_READABLE = frozenset({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11})
#: Clocks that sleep, and the host clock a sleep on them measures.
_SLEEPS = {0: 0, 1: 1, 7: 7, 8: 0, 9: 7, 11: 11}
_EOPNOTSUPP = 95
_TIMER_ABSTIME = 1


def _clockid(raw: int) -> int:
    """``clockid_t`` is an int: the low 32 bits, signed."""
    raw &= 0xFFFFFFFF
    return raw - (1 << 32) if raw & 0x80000000 else raw


def _now(clock: int) -> int:
    return time.clock_gettime_ns(clock)


def handlers(integ: Integration) -> dict[str, Callable[..., int]]:
    """The three handlers, by system call name, over ``integ``'s guest memory."""
    memory = integ.memory

    def clock_gettime(ql: Any, clockid: int, tp: int) -> int:
        def run() -> int:
            cid = _clockid(clockid)
            if cid not in _READABLE:
                return -abi.EINVAL
            try:
                ns = _now(cid)
            except OSError as exc:  # a clock this host's kernel lacks
                return -(exc.errno or abi.EINVAL)
            try:
                memory.write(tp, _TIMESPEC.pack(*divmod(ns, _NSEC)))
            except MemoryFault:
                return -abi.EFAULT
            return 0

        return integ._guarded("clock_gettime", run)

    def sleep(ql: Any, cid: int, flags: int, req: int) -> int:
        if cid in (2, 4, 5, 6):
            return -_EOPNOTSUPP
        host = _SLEEPS.get(cid)
        if host is None:
            return -abi.EINVAL
        try:
            sec, nsec = _TIMESPEC.unpack(memory.read(req, _TIMESPEC.size))
        except MemoryFault:
            return -abi.EFAULT
        if sec < 0 or not 0 <= nsec < _NSEC:  # timespec64_valid
            return -abi.EINVAL
        deadline = sec * _NSEC + nsec
        if not flags & _TIMER_ABSTIME:
            deadline += _now(host)
        park(ql, ql.os.thread_management.cur_thread, lambda: _sleep_until(host, deadline))
        return 0

    def clock_nanosleep(ql: Any, clockid: int, flags: int, req: int, rem: int) -> int:
        return integ._guarded(
            "clock_nanosleep", lambda: sleep(ql, _clockid(clockid), flags & 0xFFFFFFFF, req)
        )

    def nanosleep(ql: Any, req: int, rem: int) -> int:
        return integ._guarded("nanosleep", lambda: sleep(ql, 1, 0, req))

    return {
        "clock_gettime": clock_gettime,
        "clock_nanosleep": clock_nanosleep,
        "nanosleep": nanosleep,
    }


def _sleep_until(clock: int, deadline: int) -> int:
    """Sleep this greenlet until host clock ``clock`` reaches ``deadline`` (ns); 0."""
    import gevent

    while True:
        left = deadline - _now(clock)
        if left <= 0:
            return 0
        gevent.sleep(left / _NSEC)
