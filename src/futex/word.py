"""The futex word protocol: what synchronization primitives need of a 32-bit futex word.

One protocol, two kernels: :class:`futex.native.Word` is a word in real memory on the
host kernel; :class:`futex.linux.word.EmulatedWord` is a word in an emulated process,
driven by one emulated task.  Primitives written against :class:`FutexWord` run on both,
so the emulated kernel (manual clock, chosen interleavings) can prove what then runs for
real.

Outcomes (the same on both kernels):

==========================  ==============================================================
call                        result
==========================  ==============================================================
``wait(expected, timeout)``  ``True``: woken, the word did not hold ``expected`` (nothing
                             slept), or a spurious wake-up — re-check the word; ``False``:
                             the timeout (seconds, ``None`` = forever) expired
``wake(n)``                  how many were woken (``wake(0)`` wakes nobody)
``requeue``/``cmp_requeue``  woken + requeued; ``cmp_requeue`` on a changed word raises
                             ``BlockingIOError`` (EAGAIN)
``wake_op``                  woken on both words
``lock_pi(timeout)``         ``True``: the lock is ours; ``False``: timeout
``trylock_pi()``             ``True``: locked; ``False``: held by another
``unlock_pi()``              ``None``; not the owner: ``PermissionError`` (EPERM)
any other errno              ``OSError`` with that errno
bad arguments                ``ValueError`` / ``TypeError`` saying which
==========================  ==============================================================

Counts are ``>= 0``; above INT_MAX they mean "all" (:data:`ALL`).  Values are unsigned
32-bit; arguments in ``-2**31 .. 2**32-1`` wrap.
"""

from __future__ import annotations

from typing import Final, Protocol, TypeVar

__all__ = ["ALL", "FutexWord"]

#: A wake or requeue count meaning "all" (the kernel's counts are ints).
ALL: Final = 0x7FFF_FFFF

_W = TypeVar("_W", bound="FutexWord")


class FutexWord(Protocol):
    """A 32-bit futex word: atomics and the futex calls (see the module table)."""

    @property
    def private(self) -> bool:
        """Whether the futex calls are private (process-local keys) by default."""
        ...

    def load(self) -> int: ...
    def store(self, value: int, /) -> None: ...
    def cas(self, expected: int, new: int, /) -> int:
        """Compare-and-swap; returns the old value (swapped iff it equals ``expected``)."""
        ...

    def swap(self, value: int, /) -> int: ...
    def fetch_add(self, value: int, /) -> int: ...
    def fetch_sub(self, value: int, /) -> int: ...
    def fetch_or(self, value: int, /) -> int: ...
    def fetch_and(self, value: int, /) -> int: ...
    def fetch_xor(self, value: int, /) -> int: ...

    def wait(
        self,
        expected: int,
        timeout: float | None = None,
        *,
        bitset: int | None = None,
        private: bool | None = None,
    ) -> bool: ...

    def wake(
        self, n: int = 1, *, bitset: int | None = None, private: bool | None = None
    ) -> int: ...

    def requeue(
        self: _W, to: _W, wake: int = 1, requeue: int = ALL, *, private: bool | None = None
    ) -> int: ...

    def cmp_requeue(
        self: _W,
        to: _W,
        expected: int,
        wake: int = 1,
        requeue: int = ALL,
        *,
        private: bool | None = None,
    ) -> int: ...

    def wake_op(
        self: _W,
        other: _W,
        op: int,
        oparg: int,
        cmp: int,
        cmparg: int,
        *,
        wake: int = 1,
        wake_other: int = 1,
        private: bool | None = None,
    ) -> int: ...

    def lock_pi(self, timeout: float | None = None, *, private: bool | None = None) -> bool: ...
    def lock_pi2(self, timeout: float | None = None, *, private: bool | None = None) -> bool: ...
    def trylock_pi(self, *, private: bool | None = None) -> bool: ...
    def unlock_pi(self, *, private: bool | None = None) -> None: ...
