"""What the sections of ``bench_emulated.py`` share: op words, configuration, helpers.

The futex(2) op words and errno values the sections pass to ``Task.syscall_futex`` (and
to ``host_futex``, which takes the same six registers); the run's :class:`Config` (the
full and the quick sizes); the two timeouts that keep the PI sections from hanging; and
small helpers: a runner making one call ``n`` times, a fresh emulated process with a
task, and a task parked cooperatively in FUTEX_WAIT (``syscall_futex_nb``) with the
queue-length check that goes with it.  None of the helpers times anything: the checks
are made outside the timed regions.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass

from _timing import BenchError

from futex.kernel import ManualClock
from futex.linux import LinuxKernel, PendingWait, Process, Task, abi

# -- futex(2) op words -----------------------------------------------------------------------

PRIV = abi.FUTEX_PRIVATE_FLAG
WAIT = abi.FUTEX_WAIT
WAKE = abi.FUTEX_WAKE
WAIT_PRIVATE = WAIT | PRIV
WAKE_PRIVATE = WAKE | PRIV
CMP_REQUEUE_PRIVATE = abi.FUTEX_CMP_REQUEUE | PRIV
LOCK_PI_PRIVATE = abi.FUTEX_LOCK_PI | PRIV
UNLOCK_PI_PRIVATE = abi.FUTEX_UNLOCK_PI | PRIV
TRYLOCK_PI_PRIVATE = abi.FUTEX_TRYLOCK_PI | PRIV
FUTEX_WAITERS = abi.FUTEX_WAITERS
INT_MAX = 0x7FFFFFFF
EAGAIN = -abi.EAGAIN
EINVAL = -abi.EINVAL
EWOULDBLOCK = -abi.EWOULDBLOCK
ENOSYS = -abi.ENOSYS
PROT_RW = 0x3
PAGE = 4096

#: A six-register futex call: ``f(uaddr, op, val, utime, uaddr2, val3) -> int``.
FutexCall = Callable[[int, int, int, int, int, int], int]
# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    quick: bool
    repeats: int  # samples per figure
    call_n: int  # calls per sample (sections 1 and 4)
    wake_sizes: tuple[int, ...]  # section 2 queue lengths
    wake_reps: int  # wakes per sample (section 2)
    requeue_ks: tuple[int, ...]  # section 3
    requeue_moves: int  # waiters moved per sample (section 3)
    unrelated: int  # section 4 waiters on other addresses
    mem_n: int  # section 5 waiters
    pi_handoffs: int  # section 6: cooperative hand-offs per sample
    pi_round_trips: int  # section 6: ping-pong round trips per sample


FULL = Config(
    quick=False,
    repeats=21,
    call_n=10_000,
    wake_sizes=(10, 1_000, 100_000),
    wake_reps=1_000,
    requeue_ks=(1, 100, 10_000),
    requeue_moves=40_000,
    unrelated=100_000,
    mem_n=10_000,
    pi_handoffs=2_000,
    pi_round_trips=1_000,
)
QUICK = Config(
    quick=True,
    repeats=7,
    call_n=2_000,
    wake_sizes=(10, 1_000, 100_000),
    wake_reps=200,
    requeue_ks=(1, 100, 10_000),
    requeue_moves=4_000,
    unrelated=100_000,
    mem_n=10_000,
    pi_handoffs=500,
    pi_round_trips=300,
)


#: A blocked PI call gives up after this long (host: LOCK_PI's absolute timeout, refreshed
#: before every sample; emulated: a watchdog ends the blocked calls), so nothing can hang.
PI_TIMEOUT_S = 10.0
#: Joins of the helper threads wait at most this long.
JOIN_TIMEOUT_S = 5.0


def new_process() -> tuple[LinuxKernel, Process, Task]:
    k = LinuxKernel(clock=ManualClock())
    p = k.new_process()
    return k, p, p.new_task()


def park(task: Task, uaddr: int, op: int, val: int = 0) -> PendingWait:
    """Block ``task`` cooperatively in FUTEX_WAIT on ``uaddr``."""
    r = task.syscall_futex_nb(uaddr, op, val, 0, 0, 0)
    if not isinstance(r, PendingWait):
        raise BenchError(f"wait on {uaddr:#x} returned {r} instead of blocking")
    return r


def queued_at(p: Process, uaddr: int, private: bool = True) -> int:
    """Waiters queued on the futex at ``uaddr`` (untimed check)."""
    m = p.futex
    key = m.key(p.space, uaddr, private)
    q = m.bucket_of(key).queues.get(key)
    return 0 if q is None else q.count


def collect() -> None:
    gc.collect()
