"""Fuzz the system call handlers of ``install(ql)`` with random registers, from a real guest.

    python -m futex.integrations.qiling.fuzz [--seconds 60] [--seed N] [--json]

Issue 14's acceptance: *no Python exception escapes a syscall handler for any register
values; the guest sees -errno*.  This runs a real Qiling (x86-64 Linux, ``multithread=True``)
with the integration installed, on a tiny static guest embedded here as bytes (no compiler:
:func:`guest_elf`), which loops on ``getpid`` until told to ``exit_group(0)``.  Qiling's
own shellcode mode cannot serve: it runs ``emu_start`` without thread management, so
``ql.os.thread_management`` stays ``None`` and no handler has a current thread.

Each ``getpid`` is answered by the fuzzer, in guest context (a unicorn callback, the
current thread the guest's main thread), with a batch of calls through Qiling's own
dispatch: the registers are set (rax = the number; rdi, rsi, rdx, r10, r8, r9) and
``ql.os.load_syscall()`` runs -- the syscall mapper (449, 454-456), the hook lookup and
Qiling's raw unsigned arguments, as a ``syscall`` instruction gets them.  Fuzzed: futex
(202), set/get_robust_list (273/274), futex_waitv (449), futex_wake / wait / requeue
(454-456), set_tid_address, clock_gettime, clock_nanosleep, nanosleep, clone3 and rseq;
exit_group once, at the very end, after a crafted robust list.

Registers mix fully random 64-bit values, small ints, -1, garbage in the upper halves of
32-bit arguments, commands and flags near the valid ones (FUTEX_* with PRIVATE and
CLOCK_REALTIME, WAKE_OP encodings, futex2 sizes with NUMA/MPOL, clock ids) and pointers
into a layout the fuzzer maps: a words page whose values it keeps known (so WAIT, LOCK_PI,
CMP_REQUEUE and waitv pass their value checks), a scratch page of timespecs, waitv arrays
and robust lists, a read-only page, an unmapped hole, a page without permissions, page
boundaries (``end - 2``), misaligned words, the stack, kernel-half addresses (and Qiling's
rwx vsyscall page).  Three extra kernel tasks (not Qiling threads; two SCHED_FIFO where
the host allows, for PI boosts) block on a few "hot" words between batches -- plain,
bitset, PI, requeue-PI and waitv waits, a quarter of them killed and redrawn each batch --
so wakes, requeues and PI hand-offs find waiters.

Checks per call: no exception out of ``load_syscall`` (a ``UcError`` included); the
handler returned an int, >= 0 or -1..-4095; rax holds it; ``integ.internal_errors`` did not
grow (``Integration._guarded`` turns a bug into -EINVAL for users: here it is a failure).
A call that parks (the thread's ``sched_cb`` set, the emulation stopped) is undone: its
pending wait killed and ``sched_cb`` reset, the task not left blocked.  A few parks (a
budget of ~5% of the run time) instead run for real, bounded by a 2 ms ``gevent.Timeout``:
the late result Qiling finds in the saved rax is checked too.  At the end: the crafted exit,
the helpers' exit paths, ``check_invariants()`` of the process's futex queues.  Exit
status 0 only if every check held.  Errnos outside each call's man page are reported as
warnings (``EXPECTED``), not failures; get_robust_list answering a head that IS_ERR (Linux
6.x returns such a head as the result) is counted as "IS_ERR head".  A failure carries the
syscall, its six registers and the 64 bytes of the fuzzer's pages each register pointed at
before the call: replay it with :func:`answers`.

Modules: :mod:`.guest` (the ELF, the pages, :class:`Harness`, :func:`answers`),
:mod:`.args` (the register generators), :mod:`.engine` (the loop, checks, report, CLI).
"""

from __future__ import annotations

from futex.integrations.qiling.fuzz.engine import EXPECTED, FuzzReport, fuzz, main
from futex.integrations.qiling.fuzz.guest import (
    FUZZED,
    HOLE,
    KERNEL_HALF,
    NONE,
    OUT,
    PAGE,
    RO,
    ROBUST,
    RW,
    RW2,
    SCRATCH,
    TIMESPECS,
    VSYSCALL,
    WORDS,
    HandlerEscape,
    Harness,
    answers,
    guest_elf,
)

__all__ = [
    "EXPECTED", "FUZZED", "HOLE", "KERNEL_HALF", "NONE", "OUT", "PAGE", "RO", "ROBUST", "RW",
    "RW2", "SCRATCH", "TIMESPECS", "VSYSCALL", "WORDS", "FuzzReport", "HandlerEscape",
    "Harness", "answers", "fuzz", "guest_elf", "main",
]  # fmt: skip
