"""What makes one kernel's futexes differ from another's — every difference by name.

The core has no branch on *which* kernel it serves.  A personality (``futex.linux``,
``futex.zircon``, ``futex.liteos``) builds its managers and answers from one
:class:`FutexPolicy`, and the differences between the three kernels are exactly the
fields of their three policy objects (``LINUX_POLICY``, ``ZIRCON_POLICY``,
``LITEOS_POLICY``):

=======================  ==================  ===================  ======================
field                    Linux               Zircon               LiteOS-A
=======================  ==================  ===================  ======================
``order``                priority, FIFO      best thread (eff.    priority, FIFO
                         (plist)             priority), FIFO
``layout``               private + shared    per-process 37,      one global 80-bucket
                         tables              ``addr >> 2``        table, FNV-1a
``inheritance``          rt_mutex (PI ops)   owned wait queue     none
``ownership``            no (PI word only)   owners named by      no
                                             waiters
``outcomes``             ETIMEDOUT, restart  TIMED_OUT, retry     ETIMEDOUT, signal -> 0
                         table
``value_mismatch``       -EAGAIN             ZX_ERR_BAD_STATE     -EBADF
``empty_wake``           0 (a count)         ZX_OK                -EBADF
``same_futex_requeue``   allowed (no-op)     ZX_ERR_INVALID_ARGS  -EINVAL
``misaligned``           -EINVAL             ZX_ERR_INVALID_ARGS  -EINVAL
``fault``                -EFAULT             ZX_ERR_INVALID_ARGS  -EINVAL
``pi_conflict``          -EINVAL             none                 none
=======================  ==================  ===================  ======================

The last three are the error ladder of :func:`futex.kernel.decode.error_code`: the answer
to a core error (``MisalignedAddress``, ``MemoryFault``, ``PiWaiterConflict``; a value
mismatch answers ``value_mismatch``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from futex.kernel.blocking import WaitOutcomes
    from futex.kernel.buckets import BucketLayout
    from futex.kernel.pi import Inheritance
    from futex.kernel.waiter import QueueOrder

__all__ = ["FutexPolicy"]


@dataclass(frozen=True)
class FutexPolicy:
    """One kernel's futex behaviour where the kernels differ (see the module table)."""

    name: str
    #: Where a new waiter queues, hence who a wake picks.
    order: QueueOrder
    #: A fresh bucket layout for a root manager (forks derive theirs from it).
    layout: Callable[[], BucketLayout]
    #: How priority-inheritance queues order waiters (what an owner inherits), or ``None``
    #: where futexes carry no inheritance at all.
    inheritance: Inheritance | None
    #: Whether plain futexes have owners, named by their waiters.
    ownership: bool
    #: How a blocked wait ends when nobody woke it: timeout, kill, signal.
    outcomes: WaitOutcomes
    #: The answer to a wait or compare that found another value in the word.
    value_mismatch: int
    #: The answer to a wake that found nobody (``None``: the number woken, 0).
    empty_wake: int | None
    #: The answer to a requeue onto the futex it requeues from (``None``: allowed).
    same_futex_requeue: int | None
    #: The answer to a misaligned futex address.
    misaligned: int
    #: The answer to a word or key the memory does not allow.
    fault: int
    #: The answer to a plain operation that met a PI waiter (``None``: the kernel has no
    #: PI waiters on plain futex queues; the error propagates).
    pi_conflict: int | None = None
