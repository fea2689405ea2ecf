"""LiteOS-A's futex hash: one global table of 80 buckets (``g_futexHash``), as a
:class:`~futex.kernel.buckets.BucketLayout` policy of the core.

Keys are plain tuples ``(pid, address)``:

===========  ==========================  =================================================
kind         key                         bucket
===========  ==========================  =================================================
private      ``(pid, user vaddr)``       ``FNV-1a-32(vaddr) & 63``         (0..63)
shared       ``(OS_INVALID, paddr)``     ``(FNV-1a-32(paddr) & 15) + 64``  (64..79)
===========  ==========================  =================================================

The hash is ``LOS_HashFNV32aBuf`` over the 4 bytes of the key as they lie in memory
(little-endian ARM), seeded with 0x811c9dc5 (``OsFutexKeyToIndex``).  The pid is not
hashed: equal addresses of two processes share a private bucket and are told apart by the
pid when a head is looked up (``OsFindFutexNode`` compares key and pid).

Invariants: the table is global — every process's futexes live in the one table, so
:meth:`LiteosLayout.fork` returns the layout itself; a key's bucket depends on the key
alone, so every lookup of a key finds the bucket its waiters were queued in.  Each bucket
has one lock (LiteOS's per-bucket ``listLock`` mutex); the core takes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from futex.kernel.buckets import BucketTable
from futex.kernel.decode import u32
from futex.kernel.keys import Key
from futex.liteos import abi

if TYPE_CHECKING:
    from futex.kernel.buckets import Bucket

__all__ = [
    "LiteosLayout",
    "fnv1a_32",
    "futex_index",
    "private_index",
    "shared_index",
]

def fnv1a_32(data: bytes, seed: int = abi.FNV1_32A_INIT) -> int:
    """``LOS_HashFNV32aBuf``: FNV-1a over ``data``, 32 bits."""
    h = seed
    for octet in data:
        h = u32((h ^ octet) * abi.FNV_32_PRIME)
    return h


def _key_hash(address: int) -> int:
    return fnv1a_32(u32(address).to_bytes(abi.KEY_BYTES, "little"))


def private_index(vaddr: int) -> int:
    """The bucket of a private futex at ``vaddr`` (0..63)."""
    return _key_hash(vaddr) & abi.FUTEX_HASH_PRIVATE_MASK


def shared_index(paddr: int) -> int:
    """The bucket of a shared futex at physical address ``paddr`` (64..79)."""
    return (_key_hash(paddr) & abi.FUTEX_HASH_SHARED_MASK) + abi.FUTEX_INDEX_SHARED_POS


def futex_index(key: Key) -> int:
    """``OsFutexKeyToIndex`` of a ``(pid, address)`` key."""
    assert isinstance(key, tuple), f"a LiteOS futex key is (pid, address), got {key!r}"
    pid, address = key
    return shared_index(address) if pid == abi.OS_INVALID else private_index(address)


class LiteosLayout:
    """``g_futexHash``: 64 private and 16 shared buckets in one table, shared by every
    process (the core's :class:`~futex.kernel.buckets.BucketLayout` protocol)."""

    __slots__ = ("table",)

    def __init__(self) -> None:
        # futex_index never exceeds 79, so the table's "% size" leaves it as it is: the
        # bucket of a key is bucket futex_index(key).
        self.table = BucketTable(abi.FUTEX_INDEX_MAX, futex_index, rank=0, name="g_futexHash")

    def tables(self) -> tuple[BucketTable, ...]:
        return (self.table,)

    def bucket_of(self, key: Key) -> Bucket:
        return self.table.bucket_for(key)

    def fork(self) -> LiteosLayout:
        """The table is global: a new address space uses the same one."""
        return self

    def __repr__(self) -> str:
        return f"<LiteosLayout {abi.FUTEX_INDEX_PRIVATE_MAX}+{abi.FUTEX_INDEX_SHARED_MAX} buckets>"
