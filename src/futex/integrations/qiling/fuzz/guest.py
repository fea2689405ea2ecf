"""The guest, the fuzzer's pages and :class:`Harness`: calls through Qiling's dispatch.

The guest is a static x86-64 ELF built here (:func:`guest_elf`: no compiler); it loops on
``getpid``, which the fuzzer answers, in guest context, with its calls.  :func:`answers` runs
one script that way (the tests pin single answers with it).  The fuzzer's pages: a words
page and a scratch page (RW), a read-only page, an unmapped hole, one more RW page, a page
without permissions; the constants below name them.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Callable
from typing import Any

from futex.linux import abi

__all__ = ["FUZZED", "HandlerEscape", "Harness", "answers", "guest_elf", "signed"]

MASK64 = (1 << 64) - 1
#: The fuzzer's pages: words (RW), scratch (RW), read-only, a hole, RW2, no permissions.
RW = 0x1000_0000
SCRATCH = RW + 0x1000
RO = RW + 0x2000
HOLE = RW + 0x3000
RW2 = RW + 0x4000
NONE = RW + 0x5000
PAGE = 0x1000
KERNEL_HALF = 0xFFFF_8000_0000_0000
VSYSCALL = 0xFFFF_FFFF_FF60_0000  # Qiling maps it rwx
CODE = 0x40_0000
WORDS = tuple(RW + 4 * i for i in range(48))
HOT = WORDS[:6]  # where the helpers wait and most calls aim: wakes find waiters
RO_WORDS = tuple(RO + 4 * i for i in range(8))
TIMESPECS = SCRATCH  # 16 of them
WAITV = SCRATCH + 0x100  # 3 arrays of 8
ROBUST = SCRATCH + 0x400  # head, then 8 entries of 16 bytes
OUT = SCRATCH + 0x600
EDGES = (
    RO - 2, RO - 4, HOLE - 4, HOLE - 2, HOLE, RW2 - 4, RW2 - 2, RW2 + PAGE - 4,
    RW2 + PAGE - 2, NONE, NONE + PAGE - 2, NONE + PAGE, 0, 4, PAGE, CODE, KERNEL_HALF,
    VSYSCALL, MASK64 - 3, MASK64, 0x7FFF_FFFF_F000, 0x8000_0000_0000,
)  # fmt: skip
FUZZED: dict[int, str] = {
    abi.SYS_futex: "futex", abi.SYS_set_robust_list: "set_robust_list",
    abi.SYS_get_robust_list: "get_robust_list", abi.SYS_futex_waitv: "futex_waitv",
    abi.SYS_futex_wake: "futex_wake", abi.SYS_futex_wait: "futex_wait",
    abi.SYS_futex_requeue: "futex_requeue", 218: "set_tid_address", 228: "clock_gettime",
    230: "clock_nanosleep", 35: "nanosleep", 435: "clone3", 334: "rseq",
}  # fmt: skip
HELPER_TIDS = (3001, 3002, 3003)
NOTHING: Any = object()
TS = struct.Struct("<qq")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
WAITV_ENTRY = struct.Struct("<QQII")


def guest_elf() -> bytes:
    """A static x86-64 ELF, one PT_LOAD (r-x at 0x400000), hand-assembled::

        loop: mov eax, 39 ; syscall        getpid: the fuzzer's hook answers 0 or 1
              test rax, rax ; jz loop
              xor edi, edi ; mov eax, 231 ; syscall        exit_group(0)
              jmp $
    """
    code = bytes.fromhex("b8270000000f054885c074f431ffb8e70000000f05ebfe")
    ehsize, phsize = 64, 56
    size = ehsize + phsize + len(code)
    entry = CODE + ehsize + phsize
    ehdr = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, 2, 62, 1,
                       entry, ehsize, 0, 0, ehsize, phsize, 1, 64, 0, 0)  # fmt: skip
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, CODE, CODE, size, size, PAGE)
    return ehdr + phdr + code


def signed(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v >> 63 else v


def ours(addr: int, n: int) -> bool:
    """Whether ``[addr, addr + n)`` lies in the fuzzer's readable pages."""
    return (addr >= RW and addr + n <= RO + PAGE) or (addr >= RW2 and addr + n <= RW2 + PAGE)


class HandlerEscape(Exception):
    """An exception left ``load_syscall``: the acceptance's one forbidden outcome."""


class Harness:
    """The guest-context side: the fuzzer's pages, and :meth:`call` through Qiling's
    dispatch.  Made inside the first ``getpid`` (the current thread exists then)."""

    def __init__(self, ql: Any, integ: Any) -> None:
        from qiling.const import QL_INTERCEPT
        from unicorn import UC_PROT_NONE, UC_PROT_READ, UC_PROT_WRITE

        self.ql, self.integ = ql, integ
        self.thread = ql.os.thread_management.cur_thread
        self.task = integ.task_of(self.thread)
        self.main_tid: int = self.thread.id
        self.stack: int = ql.arch.regs.rsp & ~0xF
        rw = UC_PROT_READ | UC_PROT_WRITE
        for addr, size, perms in ((RW, 2 * PAGE, rw), (RO, PAGE, UC_PROT_READ),
                                  (RW2, PAGE, rw), (NONE, PAGE, UC_PROT_NONE)):  # fmt: skip
            ql.mem.map(addr, size, perms, info="[futex fuzz]")
        self.default_sched_cb = type(self.thread)._default_sched_cb
        self._ret: Any = NOTHING
        for name in FUZZED.values():
            ql.os.set_syscall(name, self._record, QL_INTERCEPT.EXIT)

    def _record(self, ql: Any, *args: Any) -> None:
        self._ret = args[-1]

    def poke(self, addr: int, data: bytes) -> None:
        self.ql.mem.write(addr, data)  # ignores protection: the fuzzer's own stores

    def snapshot(self, regs: tuple[int, ...]) -> dict[int, bytes]:
        """The 64 bytes (from 8-byte alignment) of the fuzzer's pages each register points
        at, before a call: a failure's reproducer."""
        read = self.ql.mem.read
        return {v: bytes(read(v & ~7, 64)) for v in regs if ours(v & ~7, 64)}

    def word(self, addr: int) -> int | None:
        """The u32 at ``addr`` if it is in the fuzzer's readable pages, else None."""
        if ours(addr, 4):
            value: int = U32.unpack(self.ql.mem.read(addr, 4))[0]
            return value
        return None

    def call(self, nr: int, *regs: int) -> Any:
        """Run system call ``nr`` with these registers through ``ql.os.load_syscall``;
        the handler's return value (``NOTHING`` if no handler answered).  Raises
        :class:`HandlerEscape` if an exception left the dispatch."""
        r = self.ql.arch.regs
        regs6 = [v & MASK64 for v in (*regs, 0, 0, 0, 0, 0, 0)[:6]]
        r.rax = nr
        r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9 = regs6
        self._ret = NOTHING
        try:
            self.ql.os.load_syscall()
        except Exception as exc:
            raise HandlerEscape(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self.ql.os.stats.clear()  # Qiling logs every call: keep memory flat
        return self._ret

    def parked(self) -> bool:
        return self.thread.sched_cb is not self.default_sched_cb

    def unpark(self) -> None:
        """Undo a park: kill the pending wait, give the thread Qiling's sched_cb back."""
        pending = self.integ.task_of(self.thread).blocked
        if pending is not None:
            pending.kill()
        self.thread.sched_cb = self.default_sched_cb


def with_guest(
    step: Callable[[Harness], bool], prepare: Callable[[Any, Any], None] | None = None
) -> BaseException | None:
    """Run the guest under an installed integration; ``step(h)`` answers each getpid
    (True: exit now).  Returns the exception ``ql.run()`` raised, if any."""
    from qiling import Qiling
    from qiling.const import QL_INTERCEPT, QL_VERBOSE

    from futex.integrations.qiling import install

    with tempfile.TemporaryDirectory(prefix="futex-fuzz-") as root:
        path = os.path.join(root, "guest")
        with open(path, "wb") as f:
            f.write(guest_elf())
        os.chmod(path, 0o755)
        ql: Any = Qiling([path], root, multithread=True, verbose=QL_VERBOSE.DISABLED)
        integ = install(ql)
        if prepare is not None:
            prepare(ql, integ)
        box: list[Harness] = []

        def getpid(ql: Any) -> int:
            if not box:
                box.append(Harness(ql, integ))
            h = box[0]
            saved = [getattr(ql.arch.regs, n) for n in ("rdi", "rsi", "rdx", "r10", "r8", "r9")]
            done = step(h)
            for n, v in zip(("rdi", "rsi", "rdx", "r10", "r8", "r9"), saved, strict=True):
                setattr(ql.arch.regs, n, v)
            return 1 if done else 0

        ql.os.set_syscall("getpid", getpid, QL_INTERCEPT.CALL)
        try:
            ql.run()
        except Exception as exc:  # UcError, gevent's LoopExit, a handler's: reported
            return exc
    return None


def answers(script: Callable[[Harness], Any]) -> Any:
    """Run ``script(h)`` once in guest context (then the guest exits); its return value.
    For pinning single answers: ``h.call(nr, *regs)``, the pages above, ``h.poke``."""
    out: list[Any] = []

    def step(h: Harness) -> bool:
        out.append(script(h))
        return True

    exc = with_guest(step)
    if exc is not None:
        raise RuntimeError(f"the guest run failed: {exc!r}") from exc
    return out[0]
