"""The Zircon (Fuchsia) personality: futexes with ownership and priority inheritance.

Quick start::

    from futex.kernel import ManualClock
    from futex.zircon import ZirconKernel, abi

    k = ZirconKernel(clock=ManualClock())
    p = k.new_process()
    a, b = p.new_thread("a"), p.new_thread("b")
    a.start(); b.start()
    f = p.mmap(4096)
    r = a.futex_wait_nb(f, 0, p.handle(b), abi.ZX_TIME_INFINITE)   # a waits, b owns
    assert p.owner_of(f) is b and b.effective_priority == 16
    b.futex_wake_single_owner(f)                                  # ZX_OK; a runs

Calls return Zircon statuses (``abi.ZX_OK``, ``abi.ZX_ERR_*``).

Modules: :mod:`.abi` (numbers, data only), :mod:`.decode` (arguments as the C prototypes
take them, user pointers), :mod:`.syscalls` (the calls: order of checks, lock order),
:mod:`.waitwake` (wait, wake, requeue), :mod:`.pi` (ownership and priority inheritance),
:mod:`.kernel` (processes, threads, handles, the bad-handle policy), :mod:`.policy` (what
differs from the other kernels).
"""

from futex.kernel.blocking import PendingWait
from futex.zircon import abi
from futex.zircon.kernel import (
    BadHandlePolicy,
    Event,
    Process,
    ProcessKilled,
    Thread,
    ThreadState,
    ZirconKernel,
)
from futex.zircon.policy import ZIRCON_OUTCOMES

#: A blocked ``zx_futex_wait``: the core's pending wait (the name is kept for the types
#: of user code and tests).
ZirconPendingWait = PendingWait

__all__ = [
    "ZIRCON_OUTCOMES",
    "BadHandlePolicy",
    "Event",
    "Process",
    "ProcessKilled",
    "Thread",
    "ThreadState",
    "ZirconKernel",
    "ZirconPendingWait",
    "abi",
]
