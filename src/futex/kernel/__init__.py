"""The futex core: keys, buckets, waiters, and the operations on them — no ABI.

It takes keys, values, bitmasks, counts and callables, and returns results or raises the
errors of :mod:`futex.kernel.errors`; :mod:`futex.linux` (and the other personalities)
decode system-call arguments and translate results.

Operations (on :class:`FutexManager`):

- ``wait_prepare`` / ``wait_complete`` — the two-phase wait (:mod:`.waitwake`);
- ``wake`` (with a bitset), ``wake_op`` (:mod:`.waitwake`);
- ``requeue`` with an optional compare value (:mod:`.requeue`);
- ``lock_key`` / ``lock_keys`` / ``lock_waiter`` — locked-bucket handles, the only way
  code outside the core acts on a queue (:mod:`.locked`);
- ``fork``, ``stats``, ``queues``, ``queued_keys``, ``bucket_snapshots``,
  ``check_invariants`` (:mod:`.core`).

Queueing never blocks: ``wait_prepare`` returns at once and whoever called it blocks as it
likes, then calls ``wait_complete`` (the protocol is in :mod:`.waitwake`).  The core also
offers the two usual ways to block on a queued call, for every personality:
:class:`~futex.kernel.blocking.PendingWait` (a thread waits on it, a cooperative scheduler
registers a callback) driving a :class:`~futex.kernel.request.Request`.

Also here, shared by the personalities: priority inheritance (:mod:`.pi`), the policy
object that names how kernels differ (:mod:`.policy`), register truncation and the error
ladder (:mod:`.decode`), clocks (:mod:`.clock`), the caller guard (:mod:`.caller`), and
the locking contract -- the lock order of the whole package and the ``_locked`` naming
rule -- in :mod:`.locking`.
"""

from futex.kernel.buckets import BucketTable, HashFn, default_bucket_count, fold_hash
from futex.kernel.clock import Clock, ClockId, ManualClock, RealClock, Timer
from futex.kernel.core import FutexStats, notify_all
from futex.kernel.errors import (
    FutexError,
    MemoryFault,
    MisalignedAddress,
    PiWaiterConflict,
    TaskStateError,
    ValueMismatch,
)
from futex.kernel.keys import (
    Key,
    KeyKind,
    key_address,
    key_kind,
    mappable_key,
    private_key,
    shared_private_key,
)
from futex.kernel.locked import BucketSnapshot, LockedBucket
from futex.kernel.manager import FutexManager
from futex.kernel.pi import PiDeadlock, PiDomain, PiState, PiTask, PiWaiter
from futex.kernel.target import FutexTarget
from futex.kernel.waiter import DEFAULT_QUEUE_PRIO, FIFO, MATCH_ANY, PRIORITY, QueueOrder, Waiter

__all__ = [
    "DEFAULT_QUEUE_PRIO",
    "FIFO",
    "MATCH_ANY",
    "PRIORITY",
    "BucketSnapshot",
    "BucketTable",
    "Clock",
    "ClockId",
    "FutexError",
    "FutexManager",
    "FutexStats",
    "FutexTarget",
    "HashFn",
    "Key",
    "KeyKind",
    "LockedBucket",
    "ManualClock",
    "MemoryFault",
    "MisalignedAddress",
    "PiDeadlock",
    "PiDomain",
    "PiState",
    "PiTask",
    "PiWaiter",
    "PiWaiterConflict",
    "QueueOrder",
    "RealClock",
    "TaskStateError",
    "Timer",
    "ValueMismatch",
    "Waiter",
    "default_bucket_count",
    "fold_hash",
    "key_address",
    "key_kind",
    "mappable_key",
    "notify_all",
    "private_key",
    "shared_private_key",
]
