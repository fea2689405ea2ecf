"""futex.native — the host kernel's futex(2) and 32-bit atomics, over shared memory.

A second, real "kernel" beside the emulated one: a small C extension
(``futex.native._native``) makes the syscalls and the atomics; ``futex.native._shm``
holds the Python-level policy (pickling, attaching to shared memory by name) that the
C type calls.  Linux only; where the extension is absent, importing this module raises
ImportError saying why.

Word
    ``Word(buffer, offset=0, *, private=False)`` is the 32-bit word at byte ``offset``
    of a writable, contiguous buffer: bytearray, mmap.mmap, a
    ``multiprocessing.shared_memory.SharedMemory`` (or its ``.buf``), a ctypes or
    numpy array, ...  The Word holds the buffer export for its lifetime (or until
    ``release()`` / the end of a ``with`` block), so the memory cannot be closed or
    resized under it: ``mmap.close()``, ``SharedMemory.close()`` and resizing a
    bytearray raise BufferError meanwhile (``ctypes.resize()`` alone ignores buffer
    exports, a CPython limitation: never resize a ctypes array a live Word is on).
    Bad input raises at construction: TypeError for a buffer that is read-only,
    non-contiguous, or no buffer at all; ValueError for an offset that is misaligned
    (the word's address must be a multiple of 4) or out of range, or a buffer smaller
    than 4 bytes.

    Values are unsigned 32-bit ints; arguments may be given in ``-2**31 .. 2**32-1``
    (negative ones wrap).  Atomics are sequentially consistent: ``load``, ``store``,
    ``cas(expected, new) -> old``, ``swap``, ``fetch_add/sub/or/and/xor -> old``.

Shared or private
    Futex calls are *shared* by default (no FUTEX_PRIVATE_FLAG): the kernel keys the
    futex by the memory object, so a word in shared memory works across processes
    and across two mappings of it.  ``private=True`` (per Word, or per call) keys it
    by address in this process only — cheaper, for words never shared between
    processes.

Outcomes of the futex calls
    ==========================  ==============================================
    ``wait(expected, timeout)``  True: woken, value mismatch (EAGAIN: the word did
                                 not hold ``expected``; nothing slept) or a spurious
                                 wake-up — re-check the word.  False: the timeout
                                 expired (ETIMEDOUT).
    ``lock_pi / lock_pi2``       True: the lock is ours.  False: timeout.
    ``trylock_pi``               True: locked.  False: held by another (EWOULDBLOCK).
    ``wake``, ``requeue``,       the kernel's count (woken, or woken + requeued).
    ``cmp_requeue``, ``wake_op``
    ``waitv(pairs, timeout)``    index of the woken word; -1: a value mismatch
                                 (EAGAIN); None: timeout.
    any other errno              OSError with that errno (its subclass: EAGAIN from
                                 ``cmp_requeue`` is BlockingIOError, EPERM from
                                 ``unlock_pi`` PermissionError, EDEADLK an OSError).
    ==========================  ==============================================

    ``wake(0)`` wakes nobody (FUTEX_WAKE itself would wake one); counts above
    INT_MAX mean "all" (``abi.ALL``).  Timeouts are seconds (None: forever), turned
    once into an absolute deadline: CLOCK_MONOTONIC for ``wait``, ``lock_pi2`` and
    ``waitv``; CLOCK_REALTIME for ``lock_pi`` (the kernel's rule for FUTEX_LOCK_PI).

Blocking and signals
    Only the calls that can sleep (``wait``, ``lock_pi``, ``lock_pi2``, ``waitv``)
    release the GIL, and only in a process that has had a second thread: where none
    ever started (glibc's ``__libc_single_threaded``; ``sleeps_release_gil()`` tells)
    nobody could take the GIL, so the sleep keeps it and saves the hand-over (four
    mutex operations and two condition signals per wait).  When a signal interrupts
    one (EINTR), the Python signal handlers run; if one raises (KeyboardInterrupt on
    Ctrl-C), the call ends with that exception, else it sleeps again until the *same*
    deadline.  Handlers run only in the main thread, and a process-directed signal
    may be delivered to another thread: then the main thread's wait is not
    interrupted.  FUTEX_LOCK_PI and LOCK_PI2 never end with EINTR (the kernel
    restarts them after a signal), so in the main thread ``lock_pi`` and ``lock_pi2``
    sleep in slices of 20 ms and run the handlers after each: Ctrl-C ends them within
    a slice (also when the signal went to another thread), a returning handler leaves
    the deadline as it was, and a lock the kernel granted while a handler raised is
    unlocked again (handed on) before the exception propagates: a Ctrl-C never leaves
    the caller holding a lock it was not told about (save one that arrives after the
    call's last check, as with ``threading.Lock``).  Between two slices the caller is
    briefly off the lock's wait list.  Other threads sleep in one call: Python runs no
    handlers there.

Arguments
    Every call converts all its arguments before it touches the word's memory, and
    then checks that the Word is still live: an ``__index__``, ``__float__`` or
    ``__bool__`` (or waitv's iterable) that calls ``release()`` gets ValueError ("the
    Word was released while the arguments were converted"); one that tries to close
    or resize the buffer under the live Word gets the exporter's BufferError; one that
    raises keeps its exception.  A timeout may be an int of any size (beyond ~31.7
    million years: forever; negative: already expired); NaN is ValueError; a
    non-number TypeError.

Sharing a Word with another process
    A Word on an anonymous ``mmap.mmap(-1, n)`` is inherited across ``os.fork``.  A
    Word on a SharedMemory pickles as (name, offset, private); unpickling — or
    ``Word.attach(name, offset)`` — maps the same shared memory object afresh
    (without registering it with multiprocessing's resource tracker) and returns the
    Word there.  Other Words do not pickle.

Raw entries (unsafe: for differential tests only)
    ``syscall_futex(uaddr, op, val, utime, uaddr2, val3)`` and ``syscall6(nr, ...)``
    take raw integer addresses and return the raw result (>= 0 or -errno).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if sys.platform != "linux":
    raise ImportError(f"futex.native needs Linux (this is {sys.platform!r})")

try:
    from futex.native._native import (
        SYS_futex,
        SYS_gettid,
        Word,
        gettid,
        sleeps_release_gil,
        syscall6,
        syscall_futex,
        waitv,
    )
except ImportError as exc:  # not built: no compiler at install time, or a stale build
    raise ImportError(
        "futex.native: the C extension futex.native._native is not built or does not "
        "load (reinstall the package where a C compiler and the Python headers are "
        f"available): {exc}"
    ) from exc

from futex.native import abi

if TYPE_CHECKING:  # Word implements futex.word.FutexWord (checked by mypy --strict)
    from futex.word import FutexWord

    def _conforms(w: Word) -> FutexWord:
        return w

__all__ = [
    "SYS_futex",
    "SYS_gettid",
    "Word",
    "abi",
    "gettid",
    "sleeps_release_gil",
    "syscall6",
    "syscall_futex",
    "waitv",
]
