"""The Linux personality: futex(2) with Linux 6.x's exact answers, over the futex core.

>>> from futex.linux import LinuxKernel
>>> k = LinuxKernel()
>>> p = k.new_process(); t = p.new_task()
>>> a = p.mmap(4096)
>>> t.syscall_futex(a, 0x81, 1, 0, 0, 0)   # FUTEX_WAKE_PRIVATE, nobody waits
0
>>> t.syscall_futex(a, 0x80, 1, 0, 0, 0)   # FUTEX_WAIT_PRIVATE, word is 0, not 1
-11

Modules, as Linux's ``kernel/futex`` splits them: :mod:`.abi` (data), :mod:`.decode`
(registers, timeouts, errno), :mod:`.syscalls` (dispatch), :mod:`.waitwake`, :mod:`.pi`,
:mod:`.requeue_pi`, :mod:`.futex2`, :mod:`.robust`, :mod:`.exit` and :mod:`.pi_exit`,
:mod:`.futexhash` (prctl PR_FUTEX_HASH), :mod:`.policy` (how Linux differs from the other
kernels, its restart rules), :mod:`.kernel` (processes and tasks), and :mod:`.facts` /
:mod:`.host` (which Linux).  ``PendingWait`` is the core's
(:class:`futex.kernel.blocking.PendingWait`), with Linux's outcomes.
"""

from futex.kernel.blocking import PendingWait
from futex.kernel.request import Deadline
from futex.linux import abi
from futex.linux.kernel import LinuxKernel, Process, Task

__all__ = ["Deadline", "LinuxKernel", "PendingWait", "Process", "Task", "abi"]
