"""The Linux personality: futex(2) with Linux 6.x's exact answers, over the futex core.

>>> from futex.linux import LinuxKernel
>>> k = LinuxKernel()
>>> p = k.new_process(); t = p.new_task()
>>> a = p.mmap(4096)
>>> t.syscall_futex(a, 0x81, 1, 0, 0, 0)   # FUTEX_WAKE_PRIVATE, nobody waits
0
>>> t.syscall_futex(a, 0x80, 1, 0, 0, 0)   # FUTEX_WAIT_PRIVATE, word is 0, not 1
-11
"""

from futex.linux import abi
from futex.linux.blocking import Deadline, PendingWait
from futex.linux.kernel import LinuxKernel, Process, Task

__all__ = ["Deadline", "LinuxKernel", "PendingWait", "Process", "Task", "abi"]
