"""The futex core: keys, buckets, waiters, and the operations on them — no ABI.

It takes keys, values, bitmasks, counts and callables, and returns results or raises the
errors of :mod:`futex.kernel.errors`; :mod:`futex.linux` (and the other personalities)
decode system-call arguments and translate results.

Operations (on :class:`FutexManager`):

- ``wait_prepare`` / ``wait_complete`` — the two-phase wait (:mod:`.waitwake`);
- ``wake`` (with a bitset), ``wake_op`` (:mod:`.waitwake`);
- ``requeue`` with an optional compare value (:mod:`.requeue`);
- ``fork``, ``stats``, ``queues``, ``check_invariants`` (:mod:`.core`).

Blocking is never done here: see :mod:`futex.kernel.waitwake` for the protocol.
"""

from futex.kernel.buckets import Bucket, BucketTable, HashFn, default_bucket_count, fold_hash
from futex.kernel.clock import Clock, ClockId, ManualClock, RealClock, Timer
from futex.kernel.core import FutexStats
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
from futex.kernel.manager import FutexManager
from futex.kernel.pi import PiDeadlock, PiDomain, PiState, PiTask, PiWaiter
from futex.kernel.target import FutexTarget
from futex.kernel.waiter import DEFAULT_PRIO, FIFO, MATCH_ANY, PRIORITY, QueueOrder, Waiter

__all__ = [
    "DEFAULT_PRIO",
    "FIFO",
    "MATCH_ANY",
    "PRIORITY",
    "Bucket",
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
    "private_key",
    "shared_private_key",
]
