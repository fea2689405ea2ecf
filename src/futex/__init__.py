"""futex: the futex subsystem — the kernel half of fast userspace mutexes — in Python.

The layers, bottom up (an arrow is "is built on"; nothing imports upwards):

- :mod:`futex.kernel` — the core: keys, bucket tables, wait queues, the two-phase wait,
  wake, wake_op, requeue, priority inheritance, pending waits and their clocks.  It has no
  ABI (no register, errno or status code of any kernel) and owns its queues: whoever is
  above reaches them only through its operations and its locked-bucket handles.  It
  defines the protocols the layers above implement: :class:`~futex.kernel.FutexTarget`
  (memory) and :class:`~futex.kernel.policy.FutexPolicy` (how a kernel differs).
- Beside one another, above the core:

  - :mod:`futex.memory` — emulated address spaces (mappings, faults, page presence, fork
    with copy-on-write); it implements the core's target protocol, as gVisor's Task
    implements its futex package's ``Target``, and an emulator embedding the core
    implements it over guest memory instead;
  - the personalities, each the same skeleton (``abi`` data / ``decode`` / ``syscalls``
    dispatch / ``waitwake`` / ``pi`` / ``kernel`` / ``policy``):
    :mod:`futex.linux` (futex(2), futex_waitv, the futex2 calls, robust lists, Linux's
    exact answers), :mod:`futex.zircon` (``zx_futex_*`` with ownership and priority
    inheritance) and :mod:`futex.liteos` (OpenHarmony LiteOS-A's ``SysFutex``).

- :mod:`futex.uapi` — Linux's ``<linux/futex.h>`` values, data only: the one source both
  :mod:`futex.linux.abi` and :mod:`futex.native.abi` take them from.
- :mod:`futex.word` — the ``FutexWord`` protocol one algorithm is written against, with two
  implementations: :mod:`futex.native` (the host kernel's futex and atomics, a C extension)
  and ``futex.linux.word.EmulatedWord`` (the emulated Linux kernel).
- :mod:`futex.demo` — the ``python -m futex demo`` workloads and their report (``rich`` is
  the optional ``demo`` extra).

Rooms the next floors take: ``futex.sync`` (cross-process primitives over ``FutexWord``),
``futex.check`` (a schedule checker over the emulated kernel), ``futex.integrations``
(e.g. Qiling).
"""

__version__ = "0.1.0"
