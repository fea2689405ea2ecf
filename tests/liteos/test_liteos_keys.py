"""futex.liteos: the futex hash, keys of processes and forks, and the table view, pinned
against OpenHarmony LiteOS-A's source.

Sources, fixtures and the clock: the package docstring (``tests/liteos/__init__.py``).
"""

from __future__ import annotations

import pytest

from futex.liteos import (
    FutexTable,
    LiteosKernel,
    LiteosLayout,
    abi,
    fnv1a_32,
    format_chain,
    futex_index,
    private_index,
    shared_index,
)
from futex.memory import PAGE_SIZE, File
from tests.liteos.liteos_support import (
    EBADF,
    WAIT,
    WAKE,
    WAKE_P,
    wait,
)

# -- B.2 the hash: FNV-1a, 64 private + 16 shared buckets -----------------------------------


def test_los_hash_fnv32a_buf_matches_the_published_fnv1a_vectors() -> None:
    """los_hash.h LOS_HashFNV32aBuf: seed 0x811c9dc5, prime 0x01000193, xor then multiply."""
    assert fnv1a_32(b"") == 0x811C9DC5
    assert fnv1a_32(b"a") == 0xE40C292C
    assert fnv1a_32(b"foobar") == 0xBF9CF968


@pytest.mark.parametrize(
    ("address", "h", "private", "shared"),
    [
        # h = FNV-1a over the key's 4 bytes in memory order (little-endian ARM)
        (0x00000000, 0x4B95F515, 21, 69),  # 0x15 & 63 = 21; (0x5 & 15) + 64 = 69
        (0x01000000, 0x4A95F382, 2, 66),  # bytes 00 00 00 01: 0x82 & 63 = 2; 2 + 64
        (0x1F800000, 0x3B58A8F8, 56, 72),  # 0xf8 & 63 = 56; (0x8) + 64 = 72
        (0x1F800004, 0x15223B7C, 60, 76),  # 0x7c & 63 = 60; (0xc) + 64 = 76
    ],
)
def test_os_futex_key_to_index_private_h_and_63_shared_h_and_15_plus_64(
    address: int, h: int, private: int, shared: int
) -> None:
    """los_futex.c OsFutexKeyToIndex: index = h & 63 (private), (h & 15) + 64 (shared)."""
    assert fnv1a_32(address.to_bytes(4, "little")) == h
    assert private_index(address) == private == h & 63
    assert shared_index(address) == shared == (h & 15) + 64
    assert futex_index((7, address)) == private
    assert futex_index((abi.OS_INVALID, address)) == shared


def test_g_futex_hash_is_one_global_table_of_80_buckets(lk: LiteosKernel) -> None:
    """los_futex.c g_futexHash[FUTEX_INDEX_MAX]: 0-63 private, 64-79 shared, one table
    for every process (fork keeps it)."""
    layout = lk.layout
    assert isinstance(layout, LiteosLayout)
    (table,) = layout.tables()
    assert table.size == 80
    assert layout.fork() is layout
    assert lk.futex.fork().layout is layout
    for a in range(abi.USER_ASPACE_BASE, abi.USER_ASPACE_BASE + 4096, 4):
        assert 0 <= private_index(a) < 64
        assert 64 <= shared_index(a) < 80
        assert layout.bucket_of((1, a)) is table.buckets[private_index(a)]


def test_os_futex_flags_to_key_private_is_pid_and_vaddr_shared_is_paddr(
    lk: LiteosKernel,
) -> None:
    """los_futex.c OsFutexFlagsToKey / OsFutexSetKey: FUTEX_PRIVATE -> (pid, vaddr);
    otherwise (OS_INVALID, LOS_PaddrQuery(vaddr))."""
    p = lk.new_process()
    a = p.mmap(PAGE_SIZE, shared=True)
    assert p.futex_key(a + 8) == (p.pid, a + 8)
    paddr = p.paddr(a + 8)
    assert paddr and paddr & 0xFFF == 8
    assert p.futex_key(a + 8, private=False) == (abi.OS_INVALID, paddr)


# -- processes, fork, physical addresses ---------------------------------------------------------


def test_mmap_places_mappings_in_the_liteos_map_region(lk: LiteosKernel) -> None:
    """los_vm_common.h USER_MAP_BASE = USER_ASPACE_TOP_MAX >> 1: mmap without an address
    lands there, inside the futex key range."""
    p = lk.new_process()
    a1, a2 = p.mmap(PAGE_SIZE), p.mmap(3 * PAGE_SIZE)
    assert a1 == abi.USER_MAP_BASE == 0x1F800000
    assert a2 == a1 + PAGE_SIZE
    assert p.mmap(PAGE_SIZE) == a2 + 3 * PAGE_SIZE


def test_private_futexes_of_parent_and_child_never_meet(lk: LiteosKernel) -> None:
    """OsFindFutexNode matches key and pid: a private futex at the same vaddr in two
    processes shares a bucket (the pid is not hashed) but not a head; among equal keys a
    new head goes first (OsFutexInsertNewFutexKeyToHash)."""
    parent = lk.new_process()
    a = parent.mmap(PAGE_SIZE)
    child = parent.fork()
    tp, tc = parent.new_task(), child.new_task()
    wp, wc = wait(tp, a), wait(tc, a)
    (bucket,) = lk.table().buckets
    assert bucket.index == private_index(a)
    assert [(h.pid, h.address) for h in bucket.heads] == [(child.pid, a), (parent.pid, a)]
    assert child.new_task().syscall_futex(a, WAKE_P, 1, 0, 0) == 0
    assert wc.result() == 0 and not wp.done()
    assert child.new_task().syscall_futex(a, WAKE_P, 1, 0, 0) == -EBADF
    tp.exit()


def test_shared_futex_meets_across_fork_by_physical_address(lk: LiteosKernel) -> None:
    """OsFutexFlagsToKey: a shared key is LOS_PaddrQuery(vaddr) with pid OS_INVALID, so
    MAP_SHARED memory inherited by a child meets the parent's futex; it lives in a shared
    bucket (64..79)."""
    parent = lk.new_process()
    a = parent.mmap(PAGE_SIZE, shared=True)
    child = parent.fork()
    assert child.paddr(a) == parent.paddr(a) != 0
    tc = child.new_task()
    w = wait(tc, a, flags=WAIT)
    (bucket,) = lk.table().buckets
    assert bucket.shared and bucket.index == shared_index(parent.paddr(a))
    assert bucket.heads[0].pid == abi.OS_INVALID
    assert parent.new_task().syscall_futex(a, WAKE_P, 1, 0, 0) == -EBADF  # private: no
    assert parent.new_task().syscall_futex(a, WAKE, 1, 0, 0) == 0
    assert w.result() == 0


def test_shared_futex_matches_by_physical_not_virtual_address(lk: LiteosKernel) -> None:
    """LOS_PaddrQuery: one file page mapped at different addresses in two processes is one
    shared futex."""
    f = File("futex-page", PAGE_SIZE)
    p1, p2 = lk.new_process(), lk.new_process()
    a1 = p1.mmap(PAGE_SIZE, shared=True, file=f)
    p2.mmap(PAGE_SIZE)
    a2 = p2.mmap(PAGE_SIZE, shared=True, file=f)
    assert a1 != a2 and p1.paddr(a1 + 12) == p2.paddr(a2 + 12)
    w = wait(p1.new_task(), a1 + 12, flags=WAIT)
    assert p2.new_task().syscall_futex(a2 + 12, WAKE, 1, 0, 0) == 0
    assert w.result() == 0


def test_shared_key_on_a_copy_on_write_page_follows_the_physical_page(lk: LiteosKernel) -> None:
    """LOS_PaddrQuery on MAP_PRIVATE memory after fork: parent and child map one physical
    page until either writes it; the writer's copy is a new frame, so a shared futex on it
    stops matching the other process (a consequence of paddr keys)."""
    parent = lk.new_process()
    a = parent.mmap(PAGE_SIZE)
    parent.store_u32(a, 1)  # the page exists (has a frame) before the fork
    child = parent.fork()
    assert child.paddr(a) == parent.paddr(a) != 0
    tc, tp = child.new_task(), parent.new_task()
    w = wait(tc, a, val=1, flags=WAIT)
    assert tp.syscall_futex(a, WAKE, 1, 0, 0) == 0
    assert w.result() == 0
    w = wait(tc, a, val=1, flags=WAIT)
    parent.store_u32(a, 2)  # copy-on-write break: the parent's page moves
    assert parent.paddr(a) != child.paddr(a)
    assert tp.syscall_futex(a, WAKE, 1, 0, 0) == -EBADF
    assert child.new_task().syscall_futex(a, WAKE, 1, 0, 0) == 0
    assert w.result() == 0


def test_los_paddr_query_is_zero_without_a_frame(lk: LiteosKernel) -> None:
    """LOS_PaddrQuery returns 0 for an unmapped page (and, here, for an anonymous private
    page never written); frames are stable once given."""
    p = lk.new_process()
    a = p.mmap(2 * PAGE_SIZE)
    assert p.paddr(a + 3 * PAGE_SIZE) == 0
    assert p.paddr(a) == 0
    p.store_u32(a + 4, 9)
    frame = p.paddr(a)
    assert frame and frame == p.paddr(a + 4) - 4 and p.paddr(a) == frame
    assert p.paddr(a + PAGE_SIZE) == 0


# -- the table view ----------------------------------------------------------------------------


def test_lock_list_heads_are_sorted_by_key_within_a_bucket(lk: LiteosKernel) -> None:
    """OsFutexInsertNewFutexKeyToHash: a bucket's lockList is sorted by ascending key,
    whatever order the heads arrived in; each head keeps its own ring."""
    p = lk.new_process()
    base = p.mmap(16 * PAGE_SIZE)
    want = private_index(base)
    same = [x for x in range(base, base + 16 * PAGE_SIZE, 4) if private_index(x) == want][:3]
    assert len(same) == 3
    ts = [p.new_task(priority=i) for i in (3, 2, 1)]
    for t, addr in zip(ts, reversed(same), strict=True):
        wait(t, addr)
    (bucket,) = lk.table().buckets
    assert [h.address for h in bucket.heads] == same
    assert [h.tids() for h in bucket.heads] == [[ts[2].tid], [ts[1].tid], [ts[0].tid]]
    for t in ts:
        t.exit()


def test_table_renders_as_os_futex_hash_show(lk: LiteosKernel) -> None:
    """los_futex.c OsFutexHashShow / OsFutexShowTaskNodeAttr: "hash -> index : N" then
    "key(pid) : 0xKEY(PID) : -> taskID(priority) -> ..." (the chains LiteOS tests annotate;
    a shared key's pid OS_INVALID prints as -1)."""
    p = lk.new_process()
    a = p.mmap(PAGE_SIZE)
    s = p.mmap(PAGE_SIZE, shared=True)
    t1, t2, t3 = p.new_task(priority=22, tid=30), p.new_task(priority=20, tid=31), p.new_task()
    wait(t1, a)
    wait(t2, a)
    wait(t3, s, flags=WAIT)
    table = lk.table()
    assert isinstance(table, FutexTable)
    assert table.head(p.futex_key(a)).chain() == "31(20) -> 30(22) ->"  # type: ignore[union-attr]
    assert format_chain(table.waiters(p.futex_key(s, private=False))) == f"{t3.tid}(10) ->"
    assert str(table).splitlines() == [
        "#################### los_futex_pri.hash ####################",
        f"hash -> index : {private_index(a)}",
        f"key(pid)           : {a:#x}({p.pid}) : -> 31(20) -> 30(22) ->",
        f"hash -> index : {shared_index(p.paddr(s))}",
        f"key(pid)           : {p.paddr(s):#x}(-1) : -> {t3.tid}(10) ->",
    ]
    for t in (t1, t2, t3):
        t.exit()
