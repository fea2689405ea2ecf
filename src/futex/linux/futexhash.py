"""prctl(2) and PR_FUTEX_HASH: the per-process private futex hash (Linux 6.16+).

Sources: Linux 6.18 ``kernel/sys.c`` (the prctl switch), ``kernel/futex/core.c``
(``futex_hash_prctl``, ``futex_hash_allocate``, ``futex_hash_allocate_default``,
``futex_hash_get_slots``, ``__futex_hash``, ``futex_rehash_private``), ``kernel/fork.c``
(the default hash at the first CLONE_THREAD), the PR_FUTEX_HASH_SET_SLOTS(2const) and
PR_FUTEX_HASH_GET_SLOTS(2const) man pages; every answer below was also measured on Linux
6.18 (x86-64, 2 CPUs, one NUMA node) — see ``tests/linux/test_futex_hash.py``.

What a process has (``Process.futex_hash``, a :class:`PrivateHash` or None): no private
hash (a new process, a forked child: its mm is new), a private hash of ``slots`` buckets,
or the global hash *for good* (``slots == 0``, after SET_SLOTS(0)).  ``custom`` says
SET_SLOTS made it.  The first CLONE_THREAD (every :meth:`Process.new_task` after the
first) sizes a default hash, ``clamp(roundup_pow_of_two(4 * min(threads, online_cpus)),
16, global hash size)`` with ``threads`` the live threads before the new one, and grows it
as threads are added, unless it is custom (or the global hash); it never shrinks.

prctl(option, arg2, arg3, arg4, arg5), in the kernel's order of checks:

1. ``option`` is an ``int`` (only the register's low 32 bits count); anything but
   PR_FUTEX_HASH (78) is EINVAL here — the other prctl options are not modelled and answer
   what an unknown option answers.  Before 6.16 (``LinuxFacts.futex_hash`` false) 78 is
   unknown too: EINVAL.
2. ``arg2`` (unsigned long, all 64 bits): SET_SLOTS (1), GET_SLOTS (2); anything else
   EINVAL.  ``arg5`` is never looked at, nor are ``arg3``/``arg4`` by GET_SLOTS.
3. SET_SLOTS: ``arg4`` (unsigned long) nonzero: EINVAL; then ``futex_hash_allocate`` with
   ``arg3`` cut to ``unsigned int`` (so ``1 << 32`` asks for 0 slots and ``-2`` for
   0xfffffffe): 1 or not a power of two: EINVAL; the process already on the global hash
   for good: EBUSY (0 included); then the allocation (ENOMEM, below); then the new hash is
   in place: 0.  A custom size may be changed any number of times, up or down.
4. GET_SLOTS: the private hash's size, or 0 (none, or the global hash).

ENOMEM model: ``kvzalloc`` refuses any size above INT_MAX, and the hash takes a 64-byte
header plus 64 bytes a slot (``____cacheline_aligned`` buckets; more with
CONFIG_PROVE_LOCKING, not modelled), so 2**25 slots and more are ENOMEM; any smaller size
succeeds here, though a real kernel may also fail it when memory (or the memory cgroup)
runs short.

Linux 6.16 (``LinuxFacts.private_hash`` false): PR_FUTEX_HASH exists but the private hash was
disabled for that release (CONFIG_FUTEX_PRIVATE_HASH ``depends on BROKEN``, commit
9a57c3773152): SET_SLOTS answers EINVAL for an ``arg4`` other than 0 or FH_FLAG_IMMUTABLE
(1) and EINVAL anyway after it; GET_SLOTS and PR_FUTEX_HASH_GET_IMMUTABLE (3) answer 0;
no thread gets a hash.  6.17 removed FH_FLAG_IMMUTABLE and GET_IMMUTABLE (3 is EINVAL).

The effect on futexes (``__futex_hash``): private futexes hash in the private hash when
the process has one with slots, in the global table otherwise, where ``futex_match``
ignores the node — so with no private hash (on one NUMA node) a FUTEX2_NUMA|PRIVATE futex
meets a plain private futex at the same address (measured: either wakes the other after
SET_SLOTS(0)).  :func:`numa_meets_private` tells ``futex.linux.futex2`` which key to
give.  Going to the global hash moves the queued private waiters there
(``futex_rehash_private``) behind the NUMA waiters already in it: the NUMA waiters of an
address are woken first (measured).

Not modelled: the other prctl options; racing SET_SLOTS calls (``futex_hash_less``) and a
futex call racing the switch; LSM and seccomp hooks; execve's new mm; several NUMA nodes
(a plain private futex then sits in the table of the node its hash picks, which the
emulator cannot know: there NUMA and plain private futexes never meet); the global hash
sized by possible CPUs (``online_cpus`` stands in).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from futex.kernel.decode import u32, u64
from futex.linux import abi

if TYPE_CHECKING:
    from futex.kernel import FutexManager
    from futex.linux.facts import LinuxFacts
    from futex.linux.kernel import Process, Task
    from futex.memory import AddressSpace

__all__ = [
    "BUCKET_BYTES",
    "NodeHashed",
    "PrivateHash",
    "default_slots",
    "futex_hash_allocate",
    "futex_hash_allocate_default",
    "futex_hash_get_slots",
    "futex_hash_prctl",
    "global_hash_slots",
    "numa_meets_private",
    "private_hash_enabled",
    "sys_prctl",
]

_INT_MAX = (1 << 31) - 1
#: One hash bucket (and the hash's header): a cache line.
BUCKET_BYTES = 64
_MIN_DEFAULT = 16

#: Serializes changes of every process's private hash (Linux: ``mm->futex_hash_lock``).
_lock = threading.Lock()


class NodeHashed:
    """Marks the private futex keys of one address space that FUTEX2_NUMA hashes by node
    (Linux's global node table) while the process's plain private futexes live in its
    private hash (:func:`futex_hash_allocate` merges them when that hash goes;
    :mod:`futex.linux.futex2` makes the keys)."""

    __slots__ = ("space",)

    def __init__(self, space: AddressSpace) -> None:
        self.space = space

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NodeHashed) and other.space is self.space

    def __hash__(self) -> int:
        return hash(self.space) ^ 0x6E756D61

    def __repr__(self) -> str:
        return "NUMA"


@dataclass(frozen=True)
class PrivateHash:
    """A process's ``mm->futex_phash``: ``slots`` buckets (0: the global hash, for good);
    ``custom``: set by PR_FUTEX_HASH_SET_SLOTS, so thread creation leaves it alone."""

    slots: int
    custom: bool


def private_hash_enabled(facts: LinuxFacts) -> bool:
    """Whether processes get private hashes: from 6.17 on (``LinuxFacts.private_hash``;
    6.16 has PR_FUTEX_HASH with the private hash disabled)."""
    return facts.futex_hash and facts.private_hash


def _roundup_pow2(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def global_hash_slots(facts: LinuxFacts) -> int:
    """``futex_init``: the global hash's buckets per node,
    ``roundup_pow_of_two(max(4, 256 * CPUs / nodes))``."""
    return _roundup_pow2(max(4, 256 * facts.online_cpus // len(facts.numa_nodes)))


def default_slots(facts: LinuxFacts, threads: int) -> int:
    """The default private hash for a process of ``threads`` threads (before the new one):
    ``clamp(roundup_pow_of_two(4 * min(threads, online_cpus)), 16, global size)``, with
    the kernel's ``clamp`` (the upper bound is tested first)."""
    want = _roundup_pow2(4 * min(threads, facts.online_cpus))
    hi = global_hash_slots(facts)
    return hi if want >= hi else max(want, _MIN_DEFAULT)


def sys_prctl(
    task: Task, option: int, arg2: int, arg3: int, arg4: int, arg5: int, _unused: int = 0
) -> int:
    """prctl(2) (x86-64 157): PR_FUTEX_HASH, else EINVAL (see the module docstring)."""
    if u32(option) != abi.PR_FUTEX_HASH or not task.kernel.facts.futex_hash:
        return -abi.EINVAL
    return futex_hash_prctl(task.process, u64(arg2), u64(arg3), u64(arg4))


def futex_hash_prctl(process: Process, arg2: int, arg3: int, arg4: int) -> int:
    """``futex_hash_prctl``: PR_FUTEX_HASH's sub-options on ``process`` (unsigned
    arguments); 0 / a slot count, or -errno."""
    if not private_hash_enabled(process.kernel.facts):  # 6.16
        if arg2 == abi.PR_FUTEX_HASH_SET_SLOTS:
            return -abi.EINVAL  # arg4 & ~FH_FLAG_IMMUTABLE, then the disabled allocator
        if arg2 in (abi.PR_FUTEX_HASH_GET_SLOTS, abi.PR_FUTEX_HASH_GET_IMMUTABLE):
            return 0
        return -abi.EINVAL
    if arg2 == abi.PR_FUTEX_HASH_SET_SLOTS:
        if arg4:
            return -abi.EINVAL
        return futex_hash_allocate(process, u32(arg3), custom=True)
    if arg2 == abi.PR_FUTEX_HASH_GET_SLOTS:
        return futex_hash_get_slots(process)
    return -abi.EINVAL


def futex_hash_get_slots(process: Process) -> int:
    """``futex_hash_get_slots``: the private hash's size, 0 without one."""
    h = process.futex_hash
    return h.slots if h is not None else 0


def futex_hash_allocate(process: Process, slots: int, *, custom: bool) -> int:
    """``futex_hash_allocate``: give ``process`` a private hash of ``slots`` buckets (0:
    the global hash, for good).  Returns 0, -EINVAL, -EBUSY or -ENOMEM."""
    if slots and (slots == 1 or slots & (slots - 1)):
        return -abi.EINVAL
    with _lock:
        cur = process.futex_hash
        if cur is not None and cur.slots == 0:
            return -abi.EBUSY if custom else 0
        if BUCKET_BYTES * (slots + 1) > _INT_MAX:  # kvzalloc: no sizes above INT_MAX
            return -abi.ENOMEM
        process.futex_hash = PrivateHash(slots, custom)
        if slots == 0 and len(process.kernel.facts.numa_nodes) == 1:
            _merge_numa_waiters(process.futex, process)
    return 0


def futex_hash_allocate_default(process: Process, threads: int) -> None:
    """The hook of a CLONE_THREAD (``copy_process``): size ``process``'s default hash for
    ``threads`` live threads (before the new one), unless it has a custom one or a
    bigger one already."""
    facts = process.kernel.facts
    if not private_hash_enabled(facts):
        return
    cur = process.futex_hash
    if cur is not None and cur.custom:
        return
    want = default_slots(facts, threads)
    if cur is not None and cur.slots >= want:
        return
    futex_hash_allocate(process, want, custom=False)


def numa_meets_private(process: Process) -> bool:
    """Whether a FUTEX2_NUMA|PRIVATE futex of ``process`` meets a plain private futex at the
    same address: the process hashes private futexes globally (no private hash, or the
    global one for good) and the machine has one NUMA node."""
    h = process.futex_hash
    return (h is None or h.slots == 0) and len(process.kernel.facts.numa_nodes) == 1


def _merge_numa_waiters(mgr: FutexManager, process: Process) -> None:
    """``futex_rehash_private`` into the global hash: every queue of FUTEX2_NUMA private
    waiters joins the plain private queue of its address, the NUMA waiters first (they
    were in the global table already; the rehashed plain ones are added behind them).
    Nothing is counted: the futexes did not change, their keys' places did."""
    mark = NodeHashed(process.space)
    for key in mgr.queued_keys():
        if not (isinstance(key, tuple) and len(key) == 3 and key[1] == mark):
            continue
        addr: int = key[2]
        with mgr.lock_keys(key, addr) as (src, dst):
            numa = list(src.waiters(key))
            if not numa:
                continue
            behind = list(dst.waiters(addr))
            for w in numa:
                src.rehash(w, dst, addr)
            for w in behind:
                dst.rehash(w, dst, addr)
