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

Calls return Zircon statuses (``abi.ZX_OK``, ``abi.ZX_ERR_*``).  See
:mod:`futex.zircon.futex` for the order of checks and the ownership rules, and
:mod:`futex.zircon.kernel` for processes, threads, handles and the bad-handle policy.
"""

from futex.zircon import abi
from futex.zircon.blocking import ZIRCON_OUTCOMES, ZirconPendingWait
from futex.zircon.kernel import (
    BadHandlePolicy,
    Event,
    Process,
    ProcessKilled,
    Thread,
    ThreadState,
    ZirconKernel,
)

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
