"""The emulated side: :class:`Emulated` builds a fresh emulated kernel, process and task
(and the peer's task) with ``LAYOUT`` mapped at the base the host's reservation got, page
by page as ``host_layout`` maps it on the host.  :meth:`Emulated.fresh` starts a run: both
sides from the fresh state.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from futex.kernel import ManualClock
from futex.linux import LinuxKernel, Process, Task
from futex.memory import PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE, File
from tests.differential.harness.host import gettid
from tests.differential.harness.layout import (
    FILE_A_SIZE,
    FILE_B_SIZE,
    FILE_C_SIZE,
    P_COWED,
    P_EXEC_SHARED,
    P_PRIV_RO,
    P_PRIV_RW,
    P_SHARED_RO,
    P_SHARED_RW,
    P_WRITE_ONLY_PRIV,
    P_WRITE_ONLY_SHARED,
    PAGE,
    PAGE_INDEX,
    READABLE_PAGES,
    file_a,
    file_b,
    file_c,
    pattern,
    pi_page,
    timespec_page,
)

if TYPE_CHECKING:
    from tests.differential.harness.host_layout import HostLayout

__all__ = [
    "Emulated",
]


#: Hash buckets per emulated table: few, as one task never has more than one waiter (and a
#: fresh kernel per sequence must be cheap).
EMULATED_BUCKETS = 4


class Emulated:
    """A fresh emulated kernel, process and task with the layout at ``base``; the task has
    ``self_tid`` (default: the calling thread's tid).  With ``peer_tid``, the process has a
    second, idle task: the peer (:class:`Peer`)."""

    def __init__(
        self,
        base: int,
        timespecs: bytes,
        mono_ns: int,
        rt_ns: int,
        self_tid: int | None = None,
        peer_tid: int | None = None,
    ) -> None:
        if self_tid is None:
            self_tid = gettid()
        pi = pi_page(self_tid)
        self.clock = ManualClock(monotonic=mono_ns, realtime=rt_ns)
        # the host's facts (protection keys, release...): the emulator is the host's twin
        self.kernel = LinuxKernel.like_host(clock=self.clock, buckets=EMULATED_BUCKETS)
        self.process: Process = self.kernel.new_process()
        self.task: Task = self.process.new_task(tid=self_tid)
        self.peer: Task | None = None
        if peer_tid is not None:
            self.peer = self.process.new_task(tid=peer_tid)
        p = self.process
        fa = File("futex-diff-a", size=FILE_A_SIZE)
        fa.pwrite(0, file_a())
        fb = File("futex-diff-b", size=FILE_B_SIZE)
        fb.pwrite(0, file_b())
        fc = File("futex-diff-c", size=FILE_C_SIZE)
        fc.pwrite(0, file_c())

        def at(name: str) -> int:
            return base + PAGE_INDEX[name] * PAGE

        p.mmap(PAGE, addr=at("PRIV_RW"))
        p.write(at("PRIV_RW"), pattern(P_PRIV_RW))
        p.mmap(PAGE, addr=at("TIMESPEC"))
        p.write(at("TIMESPEC"), timespecs)
        p.mmap(PAGE, addr=at("PRIV_RO"))
        p.write(at("PRIV_RO"), pattern(P_PRIV_RO))
        p.mprotect(at("PRIV_RO"), PAGE, PROT_READ)
        p.mmap(PAGE, addr=at("PROT_NONE"), prot=PROT_NONE)
        p.mmap(PAGE, addr=at("SHARED_RW"), shared=True)
        p.write(at("SHARED_RW"), pattern(P_SHARED_RW))
        p.mmap(PAGE, addr=at("SHARED_RO"), shared=True)
        p.write(at("SHARED_RO"), pattern(P_SHARED_RO))
        p.mprotect(at("SHARED_RO"), PAGE, PROT_READ)
        p.mmap(PAGE, addr=at("FILE_SHARED_RW"), shared=True, file=fa)
        p.mmap(PAGE, addr=at("FILE_SHARED_RO"), shared=True, file=fa, prot=PROT_READ)
        p.mmap(PAGE, addr=at("FILE_PRIV_RW"), file=fb)
        p.mmap(PAGE, addr=at("FILE_PRIV_RO"), file=fb, prot=PROT_READ)
        p.mmap(PAGE, addr=at("FILE_PRIV_COWED_RO"), file=fb, offset=PAGE)
        p.write(at("FILE_PRIV_COWED_RO"), pattern(P_COWED))
        p.mprotect(at("FILE_PRIV_COWED_RO"), PAGE, PROT_READ)
        p.mmap(2 * PAGE, addr=at("EOF_SHARED"), shared=True, file=fc)
        p.mmap(PAGE, addr=at("EOF_PRIV_PAST"), file=fc, offset=PAGE)
        p.mmap(PAGE, addr=at("FILE_PRIV_ALIAS_RW"), file=fa)
        p.mmap(PAGE, addr=at("FILE_PRIV_ALIAS_RO"), file=fa, prot=PROT_READ)
        p.mmap(PAGE, addr=at("PRIV_RO_ZERO"), prot=PROT_READ)
        p.mmap(PAGE, addr=at("SHARED_RO_ZERO"), shared=True, prot=PROT_READ)
        p.mmap(PAGE, addr=at("EXEC_PRIV"), prot=PROT_EXEC)
        p.mmap(PAGE, addr=at("EXEC_SHARED"), shared=True)
        p.write(at("EXEC_SHARED"), pattern(P_EXEC_SHARED))
        p.mprotect(at("EXEC_SHARED"), PAGE, PROT_EXEC)
        p.mmap(PAGE, addr=at("EXEC_FILE_SHARED"), shared=True, file=fa, prot=PROT_EXEC)
        p.mmap(PAGE, addr=at("EXEC_FILE_PRIV"), file=fb, prot=PROT_EXEC)
        p.mmap(PAGE, addr=at("WRITE_ONLY_PRIV"), prot=PROT_WRITE)
        p.write(at("WRITE_ONLY_PRIV"), pattern(P_WRITE_ONLY_PRIV))
        p.mmap(PAGE, addr=at("WRITE_ONLY_SHARED"), shared=True, prot=PROT_WRITE)
        p.write(at("WRITE_ONLY_SHARED"), pattern(P_WRITE_ONLY_SHARED))
        for name, shared in (("PI_PRIV_RO", False), ("PI_SHARED_RO", True)):
            p.mmap(PAGE, addr=at(name), shared=shared)
            p.write(at(name), pi)
            p.mprotect(at(name), PAGE, PROT_READ)
        for page in READABLE_PAGES:  # present from the start, as on the host
            p.read(base + page * PAGE, 4)

    @classmethod
    def fresh(cls, layout: HostLayout) -> Emulated:
        """Both sides from the fresh state: the host ``layout`` brought back to it (its
        timespec slots filled for the clocks now) and its emulated twin, a new kernel
        whose process has the caller's tid and the peer's."""
        mono, rt = time.monotonic_ns(), time.time_ns()
        timespecs = timespec_page(mono, rt)
        layout.reset(timespecs)
        assert layout.peer is not None
        return cls(layout.base, timespecs, mono, rt, layout.self_tid, layout.peer.tid)
