"""Real Linux binaries under Qiling get a faithful futex: ``install(ql)``.

Qiling (https://qiling.io) runs a Linux program's threads as gevent greenlets and answers
its system calls in Python.  Its own futex handles only the untimed waits and plain wakes:
every timed wait of glibc hangs, PRIO_INHERIT mutexes admit two owners, robust mutexes
never recover, REQUEUE / WAKE_OP / PI return 0 doing nothing, bitset wakes drop waiters,
futex_waitv crashes the emulator.  After ``install(ql)`` the guest's futex family is
answered by :mod:`futex.linux` -- the same results, in the same order of checks, as the
host's own kernel (``LinuxKernel.like_host``) -- with Linux's thread-exit path, the host's
clocks, and blocking the Qiling way::

    from qiling import Qiling
    from futex.integrations.qiling import install

    ql = Qiling([rootfs + "/bin/prog"], rootfs, multithread=True)
    integration = install(ql)
    ql.run()
    print("\\n".join(integration.report_lines()))

What is patched, how a blocking call waits, and what is not modelled (signals: Qiling
delivers none; x86-64 guests; one process): :mod:`futex.integrations.qiling.integration`.
Clocks: :mod:`~futex.integrations.qiling.timecalls`.  Memory faults:
:mod:`~futex.integrations.qiling.memory`.  ``python -m futex.integrations.qiling.run``
runs a binary from the command line.

Needs ``qiling`` (the extra ``futex[qiling]`` pins the release this is tested against);
importing this package does not import it.
"""

from __future__ import annotations

from futex.integrations.qiling.clock import GeventClock
from futex.integrations.qiling.integration import Integration, install, installed, uninstall
from futex.integrations.qiling.memory import GuestMemory

__all__ = ["GeventClock", "GuestMemory", "Integration", "install", "installed", "uninstall"]
