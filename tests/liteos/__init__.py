"""The LiteOS-A personality's tests, pinned against OpenHarmony LiteOS-A's source.

Sources (``openharmony/kernel_liteos_a``): ``kernel/base/ipc/los_futex.c`` (named by
function in each test), ``syscall/process_syscall.c`` (SysFutex), ``kernel/base/ipc/los_signal.c``
(OsPendingTaskWake), ``kernel/base/core/los_sys.c`` (OsNS2Tick), ``kernel/include/
los_hash.h`` (LOS_HashFNV32aBuf), ``los_vm_common.h`` / ``los_vm_zone.h`` (user range).
The fixtures ``lk`` / ``faithful_lk`` are in ``conftest.py``, the helpers in
``liteos_support.py``.

Time is a ManualClock: nothing sleeps.  Real-thread tests wait for state, never for time.
"""
