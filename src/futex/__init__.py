"""futex: the futex subsystem — the kernel half of fast userspace mutexes — in Python.

- :mod:`futex.kernel` — the emulated futex core (keys, buckets, waiters, operations);
- :mod:`futex.linux` — the Linux personality (futex(2) with Linux's exact answers);
- :mod:`futex.memory` — emulated address spaces (mappings, faults, fork with COW).
"""

__version__ = "0.1.0"
