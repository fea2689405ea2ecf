"""The OpenHarmony LiteOS-A personality: ``SysFutex`` with LiteOS-A's answers, its
80-bucket global hash and priority-ordered queues, over the futex core.

>>> from futex.kernel import ManualClock
>>> from futex.liteos import LiteosKernel, abi
>>> k = LiteosKernel(clock=ManualClock())
>>> p = k.new_process(); t = p.new_task(priority=20)
>>> a = p.mmap(4096)
>>> t.syscall_futex(a, abi.FUTEX_WAKE | abi.FUTEX_PRIVATE, 1, 0, 0)  # nobody waits
-9
>>> t.syscall_futex(a, abi.FUTEX_WAIT | abi.FUTEX_PRIVATE, 1, 100, 0)  # word is 0, not 1
-9
>>> w = p.new_task(priority=22).syscall_futex_nb(a, abi.FUTEX_WAIT | abi.FUTEX_PRIVATE, 0,
...                                              abi.LOS_WAIT_FOREVER, 0)
>>> k.table().head(p.futex_key(a)).chain()
'2(22) ->'

Modules: :mod:`.abi` (constants, data only), :mod:`.decode` (registers, timeouts, user
addresses), :mod:`.syscalls` (``SysFutex``: the order of checks, dispatch),
:mod:`.waitwake` (WAIT, WAKE, REQUEUE and the futex node), :mod:`.kernel` (processes,
tasks), :mod:`.policy` (what differs from the other kernels, wait outcomes),
:mod:`.layout` (the bucket layout), :mod:`.memory` (physical addresses, keys),
:mod:`.table` (snapshots).  LiteOS-A has no priority inheritance on futexes.  A call
that blocks returns the core's :class:`~futex.kernel.blocking.PendingWait`, exported
here as ``PendingWait``.
"""

from futex.kernel.blocking import PendingWait
from futex.liteos import abi
from futex.liteos.kernel import LiteosKernel, Process, Task
from futex.liteos.layout import LiteosLayout, fnv1a_32, futex_index, private_index, shared_index
from futex.liteos.memory import FutexTarget, PhysicalMemory
from futex.liteos.policy import LITEOS_OUTCOMES
from futex.liteos.table import BucketView, FutexTable, HeadView, QueuedTask, format_chain
from futex.liteos.waitwake import FutexNode

__all__ = [
    "LITEOS_OUTCOMES",
    "BucketView",
    "FutexNode",
    "FutexTable",
    "FutexTarget",
    "HeadView",
    "LiteosKernel",
    "LiteosLayout",
    "PendingWait",
    "PhysicalMemory",
    "Process",
    "QueuedTask",
    "Task",
    "abi",
    "fnv1a_32",
    "format_chain",
    "futex_index",
    "private_index",
    "shared_index",
]
