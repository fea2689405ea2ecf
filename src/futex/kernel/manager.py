"""The futex manager: gVisor's ``Manager`` shape with Linux's semantics.

One manager per address space.  Its private table holds private and shared-on-private
keys; its shared table (mappable keys) is common to every manager made by :meth:`fork`, so
shared futexes interoperate across processes and private ones never do.
"""

from __future__ import annotations

from futex.kernel.requeue import RequeueOps
from futex.kernel.waitwake import WaitWakeOps

__all__ = ["FutexManager"]


class FutexManager(WaitWakeOps, RequeueOps):
    """Futex queues for one address space.  See :mod:`futex.kernel` for the operations.

    ``buckets`` sizes each table (default: Linux's ``roundup_pow_of_two(256 * CPUs)``),
    ``hash_fn`` maps keys to buckets, ``order`` is the queueing policy (default
    :data:`~futex.kernel.waiter.PRIORITY`, Linux's).
    """

    def fork(self) -> FutexManager:
        """A manager for a new address space: fresh private buckets, the same shared ones."""
        return FutexManager(order=self.order, layout=self.layout.fork(), pi=self.pi)
