"""A futex word in an emulated process: :class:`futex.word.FutexWord` on ``futex.linux``.

An :class:`EmulatedWord` is the word at ``addr`` of a :class:`~futex.linux.Process`, bound
to the :class:`~futex.linux.Task` that makes its calls: its futex calls are real futex(2)
system calls of the emulated kernel (``task.syscall_futex``), with timeouts turned into
absolute deadlines in a ``struct timespec`` in the process's memory, exactly as
:class:`futex.native.Word` does on the host — so code written against the protocol runs
on both and the outcomes match call for call (see the table in :mod:`futex.word`).

A word is used from one thread at a time, the thread that drives its task; another
thread takes ``word.on(its_task)``.  Each task gets one page of scratch memory (mapped on
first use) for its timespecs and futex_waitv arrays.
"""

from __future__ import annotations

import errno
import math
import os
import struct
import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from futex.kernel import ClockId
from futex.kernel.decode import U32_MASK
from futex.linux import abi
from futex.linux.kernel import Task
from futex.word import ALL

if TYPE_CHECKING:
    from futex.word import FutexWord

__all__ = ["EmulatedWord", "waitv"]

_INT_MAX: Final = 0x7FFF_FFFF
_TIMESPEC: Final = struct.Struct("<qq")
_WAITV: Final = struct.Struct("<QQII")  # struct futex_waitv: val, uaddr, flags, reserved
_WAITV_AT: Final = 64  # scratch offset of the futex_waitv array
WAITV_MAX: Final = 128
#: Longest timeout taken literally (as futex.native): beyond it means "no timeout".
_TIMEOUT_FOREVER: Final = 1e15

_scratch: weakref.WeakKeyDictionary[Task, int] = weakref.WeakKeyDictionary()
_scratch_lock = threading.Lock()


def _scratch_of(task: Task) -> int:
    with _scratch_lock:
        addr = _scratch.get(task)
        if addr is None:
            addr = _scratch[task] = task.process.mmap(4096)
        return addr


def _u32(value: int, what: str) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not -(1 << 31) <= value <= U32_MASK:
        raise OverflowError(f"{what} does not fit in a 32-bit word (-2**31 <= value < 2**32)")
    return value & U32_MASK


def _count(n: int, what: str) -> int:
    if not isinstance(n, int):
        raise TypeError(f"{what} must be an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{what} must be >= 0")
    return min(n, _INT_MAX)


def _small(v: int, what: str, lo: int, hi: int) -> int:
    if not isinstance(v, int):
        raise TypeError(f"{what} must be an int, not {type(v).__name__}")
    if not lo <= v <= hi:
        raise ValueError(f"{what} must be in {lo}..{hi}")
    return v


def _oserror(r: int, call: str) -> OSError:
    return OSError(-r, f"{call}: {os.strerror(-r)}")


class EmulatedWord:
    """The futex word at ``addr`` of ``task``'s process, with ``task`` making the calls.
    ``private``: the calls' default (shared unless said, as :class:`futex.native.Word`).
    """

    __slots__ = ("addr", "private", "process", "task")

    def __init__(self, task: Task, addr: int, *, private: bool = False) -> None:
        if addr & 3:
            raise ValueError(f"a futex word must be 4-byte aligned, got address {addr:#x}")
        self.task = task
        self.process = task.process
        self.addr = addr
        self.private = private

    def __repr__(self) -> str:
        return f"<EmulatedWord {self.addr:#x} tid={self.task.tid} value={self.load():#x}>"

    def on(self, task: Task) -> EmulatedWord:
        """The same word, with ``task`` (of the same process) making the calls."""
        if task.process is not self.process:
            raise ValueError(f"task {task.tid} is not in the word's process {self.process.pid}")
        return EmulatedWord(task, self.addr, private=self.private)

    # -- atomics ---------------------------------------------------------------------------

    def load(self) -> int:
        return self.process.load_u32(self.addr)

    def store(self, value: int, /) -> None:
        self.process.store_u32(self.addr, _u32(value, "value"))

    def cas(self, expected: int, new: int, /) -> int:
        return self.process.cas_u32(self.addr, _u32(expected, "expected"), _u32(new, "new"))

    def swap(self, value: int, /) -> int:
        v = _u32(value, "value")
        return self.process.update_u32(self.addr, lambda _old: v)

    def fetch_add(self, value: int, /) -> int:
        v = _u32(value, "value")
        return self.process.update_u32(self.addr, lambda old: (old + v) & U32_MASK)

    def fetch_sub(self, value: int, /) -> int:
        v = _u32(value, "value")
        return self.process.update_u32(self.addr, lambda old: (old - v) & U32_MASK)

    def fetch_or(self, value: int, /) -> int:
        v = _u32(value, "value")
        return self.process.update_u32(self.addr, lambda old: old | v)

    def fetch_and(self, value: int, /) -> int:
        v = _u32(value, "value")
        return self.process.update_u32(self.addr, lambda old: old & v)

    def fetch_xor(self, value: int, /) -> int:
        v = _u32(value, "value")
        return self.process.update_u32(self.addr, lambda old: old ^ v)

    # -- futex calls -----------------------------------------------------------------------

    def _flag(self, private: bool | None) -> int:
        return abi.FUTEX_PRIVATE_FLAG if (self.private if private is None else private) else 0

    def _deadline(self, timeout: float | None, clock: ClockId) -> int:
        """A timespec holding now + ``timeout`` on ``clock`` (0: no timeout)."""
        if timeout is None or timeout >= _TIMEOUT_FOREVER:
            return 0
        if timeout != timeout:
            raise ValueError("timeout must not be NaN")
        # A negative timeout has already expired (the value is still checked once);
        # round up: never wake before the deadline.
        when = self.task.kernel.clock.now(clock) + math.ceil(max(timeout, 0.0) * 1e9)
        at = _scratch_of(self.task)
        self.process.write(at, _TIMESPEC.pack(*divmod(when, 10**9)))
        return at

    def _call(self, op: int, val: int, utime: int = 0, uaddr2: int = 0, val3: int = 0) -> int:
        return self.task.syscall_futex(self.addr, op, val, utime, uaddr2, val3)

    def wait(
        self,
        expected: int,
        timeout: float | None = None,
        *,
        bitset: int | None = None,
        private: bool | None = None,
    ) -> bool:
        exp = _u32(expected, "expected")
        bits = abi.FUTEX_BITSET_MATCH_ANY if bitset is None else _u32(bitset, "bitset")
        utime = self._deadline(timeout, ClockId.MONOTONIC)
        r = self._call(abi.FUTEX_WAIT_BITSET | self._flag(private), exp, utime, 0, bits)
        if r in (0, -errno.EAGAIN, -errno.EINTR):
            return True
        if r == -errno.ETIMEDOUT:
            return False
        raise _oserror(r, "FUTEX_WAIT_BITSET")

    def wake(
        self, n: int = 1, *, bitset: int | None = None, private: bool | None = None
    ) -> int:
        count = _count(n, "n")
        if count == 0:
            return 0  # FUTEX_WAKE would wake one
        if bitset is None:
            r = self._call(abi.FUTEX_WAKE | self._flag(private), count)
        else:
            bits = _u32(bitset, "bitset")
            r = self._call(abi.FUTEX_WAKE_BITSET | self._flag(private), count, 0, 0, bits)
        if r < 0:
            raise _oserror(r, "FUTEX_WAKE")
        return r

    def requeue(
        self,
        to: EmulatedWord,
        wake: int = 1,
        requeue: int = ALL,
        *,
        private: bool | None = None,
    ) -> int:
        nwake, nreq = _count(wake, "wake"), _count(requeue, "requeue")
        r = self._call(abi.FUTEX_REQUEUE | self._flag(private), nwake, nreq, self._other(to))
        if r < 0:
            raise _oserror(r, "FUTEX_REQUEUE")
        return r

    def cmp_requeue(
        self,
        to: EmulatedWord,
        expected: int,
        wake: int = 1,
        requeue: int = ALL,
        *,
        private: bool | None = None,
    ) -> int:
        nwake, nreq = _count(wake, "wake"), _count(requeue, "requeue")
        exp = _u32(expected, "expected")
        op = abi.FUTEX_CMP_REQUEUE | self._flag(private)
        r = self._call(op, nwake, nreq, self._other(to), exp)
        if r < 0:
            raise _oserror(r, "FUTEX_CMP_REQUEUE")
        return r

    def wake_op(
        self,
        other: EmulatedWord,
        op: int,
        oparg: int,
        cmp: int,
        cmparg: int,
        *,
        wake: int = 1,
        wake_other: int = 1,
        private: bool | None = None,
    ) -> int:
        _small(op, "op", 0, 15)
        if op & 7 > 4:
            raise ValueError(
                "op must be OP_SET, OP_ADD, OP_OR, OP_ANDN or OP_XOR, optionally | OP_OPARG_SHIFT"
            )
        if op & 8:
            _small(oparg, "oparg (a shift, with OP_OPARG_SHIFT)", 0, 31)
        else:
            _small(oparg, "oparg", -2048, 2047)
        _small(cmp, "cmp", 0, 5)
        _small(cmparg, "cmparg", -2048, 2047)
        encoded = (op << 28) | (cmp << 24) | ((oparg & 0xFFF) << 12) | (cmparg & 0xFFF)
        n1, n2 = _count(wake, "wake"), _count(wake_other, "wake_other")
        r = self._call(
            abi.FUTEX_WAKE_OP | self._flag(private), n1, n2, self._other(other), encoded
        )
        if r < 0:
            raise _oserror(r, "FUTEX_WAKE_OP")
        return r

    def lock_pi(self, timeout: float | None = None, *, private: bool | None = None) -> bool:
        # FUTEX_LOCK_PI measures its timeout on CLOCK_REALTIME.
        return self._lock(abi.FUTEX_LOCK_PI, timeout, ClockId.REALTIME, private, "LOCK_PI")

    def lock_pi2(self, timeout: float | None = None, *, private: bool | None = None) -> bool:
        return self._lock(abi.FUTEX_LOCK_PI2, timeout, ClockId.MONOTONIC, private, "LOCK_PI2")

    def _lock(
        self, cmd: int, timeout: float | None, clock: ClockId, private: bool | None, name: str
    ) -> bool:
        r = self._call(cmd | self._flag(private), 0, self._deadline(timeout, clock))
        if r == 0:
            return True
        if r == -errno.ETIMEDOUT:
            return False
        raise _oserror(r, f"FUTEX_{name}")

    def trylock_pi(self, *, private: bool | None = None) -> bool:
        r = self._call(abi.FUTEX_TRYLOCK_PI | self._flag(private), 0)
        if r == 0:
            return True
        if r == -errno.EWOULDBLOCK:
            return False
        raise _oserror(r, "FUTEX_TRYLOCK_PI")

    def unlock_pi(self, *, private: bool | None = None) -> None:
        r = self._call(abi.FUTEX_UNLOCK_PI | self._flag(private), 0)
        if r < 0:
            raise _oserror(r, "FUTEX_UNLOCK_PI")

    def _other(self, w: EmulatedWord) -> int:
        if not isinstance(w, EmulatedWord) or w.process is not self.process:
            raise TypeError("the other word must be an EmulatedWord of the same process")
        return w.addr


def waitv(
    waiters: Iterable[tuple[EmulatedWord, int]], timeout: float | None = None
) -> int | None:
    """futex_waitv(2) on emulated words (made by the first word's task): the index of the
    word woken; -1 when a word did not hold its expected value; ``None`` on timeout."""
    pairs = list(waiters)
    if not 1 <= len(pairs) <= WAITV_MAX:
        raise ValueError(f"waitv takes 1..{WAITV_MAX} (word, expected) pairs, got {len(pairs)}")
    first = pairs[0][0]
    task = first.task
    base = _scratch_of(task) + _WAITV_AT
    packed = bytearray()
    for w, expected in pairs:
        if not isinstance(w, EmulatedWord) or w.process is not first.process:
            raise TypeError("waitv needs EmulatedWords of one process")
        flags = abi.FUTEX2_SIZE_U32 | (abi.FUTEX2_PRIVATE if w.private else 0)
        packed += _WAITV.pack(_u32(expected, "expected"), w.addr, flags, 0)
    task.process.write(base, bytes(packed))
    utime = first._deadline(timeout, ClockId.MONOTONIC)
    r = task.syscall(abi.SYS_futex_waitv, base, len(pairs), 0, utime, ClockId.MONOTONIC)
    if r >= 0:
        return r
    if r == -errno.EAGAIN:
        return -1
    if r == -errno.ETIMEDOUT:
        return None
    raise _oserror(r, "futex_waitv")


if TYPE_CHECKING:  # EmulatedWord implements the protocol (checked by mypy --strict)

    def _conforms(w: EmulatedWord) -> FutexWord:
        return w
