"""futex.memory: mappings, protections, faults, copy-on-write fork, atomics and futex keys.

Key semantics follow Linux ``get_futex_key`` (see futex.memory's docstring); the access_ok
bound was measured on the host (0x7ffffffff000 passes, 0x7ffffffff004 faults).
"""

from __future__ import annotations

import threading

import pytest

from futex.kernel import KeyKind, MemoryFault, key_kind
from futex.memory import (
    PAGE_SIZE,
    PROT_EXEC,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    USER_PTR_MAX_X86_64,
    AddressSpace,
    File,
    MappingError,
)

RW = PROT_READ | PROT_WRITE


def test_anonymous_memory_is_zero_filled_and_round_trips() -> None:
    s = AddressSpace()
    a = s.mmap(3 * PAGE_SIZE)
    assert s.read(a, 3 * PAGE_SIZE) == bytes(3 * PAGE_SIZE)
    s.write(a + PAGE_SIZE - 2, b"abcd")  # straddles a page boundary
    assert s.read(a + PAGE_SIZE - 2, 4) == b"abcd"
    s.store_u32(a + 8, 0xDEADBEEF)
    assert s.load_u32(a + 8) == 0xDEADBEEF
    assert s.read(a + 8, 4) == (0xDEADBEEF).to_bytes(4, "little")


def test_unmapped_and_protected_accesses_fault() -> None:
    s = AddressSpace()
    a = s.mmap(3 * PAGE_SIZE)
    s.munmap(a + PAGE_SIZE, PAGE_SIZE)  # punch a hole: the mapping splits in two
    assert [(m.start, m.end) for m in s.mappings] == [
        (a, a + PAGE_SIZE),
        (a + 2 * PAGE_SIZE, a + 3 * PAGE_SIZE),
    ]
    with pytest.raises(MemoryFault):
        s.load_u32(a + PAGE_SIZE)
    s.mprotect(a, PAGE_SIZE, PROT_READ)
    assert s.load_u32(a) == 0
    with pytest.raises(MemoryFault):
        s.store_u32(a, 1)
    with pytest.raises(MemoryFault):
        s.cas_u32(a, 0, 1)
    s.mprotect(a + 2 * PAGE_SIZE, PAGE_SIZE, PROT_NONE)
    with pytest.raises(MemoryFault):
        s.load_u32(a + 2 * PAGE_SIZE)
    with pytest.raises(MemoryFault):
        s.mprotect(a, 3 * PAGE_SIZE, RW)  # the hole is not mapped


@pytest.mark.parametrize("protection_keys", [True, False], ids=["pku", "no-pku"])
def test_execute_only_memory_reads_only_without_protection_keys(protection_keys: bool) -> None:
    """PROT_EXEC alone: execute-only on a CPU with protection keys (every read faults);
    without them readable, and a shared key exists once the page is present, through
    ``get_futex_key``'s lockless ``get_user_page_fast_only`` (measured on a host without
    PKU: a shared FUTEX_WAKE on an exec-only shmem page is EFAULT while fresh, 0 after a
    private FUTEX_WAIT read it); ``get_user_pages`` wants VM_READ on any CPU, so a key
    for writing faults either way."""
    s = AddressSpace(exec_readable=not protection_keys)
    a = s.mmap(PAGE_SIZE, prot=PROT_EXEC, shared=True)
    with pytest.raises(MemoryFault, match="VM_READ"):
        s.futex_key(a, private=False)  # fresh: not present on either CPU
    if protection_keys:
        with pytest.raises(MemoryFault, match="not readable"):
            s.load_u32(a)
        with pytest.raises(MemoryFault, match="VM_READ"):
            s.futex_key(a, private=False)
        return
    assert s.load_u32(a) == 0
    assert s.present(a)
    assert s.futex_key(a, private=False) == s.futex_key(a, private=False)
    with pytest.raises(MemoryFault, match="not writable"):
        s.futex_key(a, private=False, write=True)
    # a private exec-only page: anonymous and read-only, so never keyable (Linux: "a RO
    # anonymous page will never change"), present or not
    p = s.mmap(PAGE_SIZE, prot=PROT_EXEC)
    assert s.load_u32(p) == 0
    with pytest.raises(MemoryFault):
        s.futex_key(p, private=False)


def test_write_implies_read_on_x86() -> None:
    w = AddressSpace()
    b = w.mmap(PAGE_SIZE, prot=PROT_WRITE)
    assert w.load_u32(b) == 0


def test_presence_follows_accesses_not_peeks() -> None:
    """A page is present once read, written or keyed; a peek leaves it as it was; munmap
    and a fresh mmap drop it; mprotect keeps it."""
    s = AddressSpace()
    a = s.mmap(2 * PAGE_SIZE, prot=PROT_READ)
    assert s.peek(a, 4) == bytes(4) and not s.present(a)
    s.read(a, 4)
    assert s.present(a) and not s.present(a + PAGE_SIZE)
    s.mprotect(a, PAGE_SIZE, PROT_EXEC)
    assert s.present(a)
    s.mmap(PAGE_SIZE, addr=a, prot=PROT_READ)  # MAP_FIXED over it: a new mapping
    assert not s.present(a)
    b = s.mmap(PAGE_SIZE, shared=True)
    s.futex_key(b, private=False)
    assert s.present(b)
    s.munmap(b, PAGE_SIZE)
    assert not s.present(b)


def test_pi_reads_fault_on_a_fresh_read_only_page() -> None:
    """``futex_get_value_locked`` reads with page faults disabled and the PI paths fall
    back to ``fault_in_user_writeable``: a fresh read-only page faults, a touched one
    reads, a writable one is faulted in (measured on the host: CMP_REQUEUE_PI with its PI
    word on a fresh PROT_READ page is EFAULT, and 0 once the page was read)."""
    s = AddressSpace()
    ro = s.mmap(PAGE_SIZE, prot=PROT_READ)
    with pytest.raises(MemoryFault, match="not present"):
        s.load_u32_nofault(ro)
    assert s.load_u32(ro) == 0
    assert s.load_u32_nofault(ro) == 0
    rw = s.mmap(PAGE_SIZE)
    assert not s.present(rw)
    assert s.load_u32_nofault(rw) == 0 and s.present(rw)
    with pytest.raises(ValueError, match="aligned"):
        s.load_u32_nofault(rw + 2)


@pytest.mark.parametrize("protection_keys", [True, False], ids=["pku", "no-pku"])
def test_pi_reads_of_execute_only_pages(protection_keys: bool) -> None:
    """Without protection keys a present exec-only page reads in the PI paths too; with
    them it never does; a fresh one faults either way (not writable to fault in)."""
    s = AddressSpace(exec_readable=not protection_keys)
    x = s.mmap(PAGE_SIZE, prot=PROT_EXEC)
    with pytest.raises(MemoryFault):
        s.load_u32_nofault(x)
    if protection_keys:
        with pytest.raises(MemoryFault):
            s.load_u32(x)
    else:
        s.load_u32(x)
        assert s.load_u32_nofault(x) == 0


def test_fork_copies_presence_only_for_private_mappings_with_pages() -> None:
    """``copy_page_range`` copies a VMA's page tables only when it has an ``anon_vma``:
    a private mapping that holds a page of its own; shared mappings start empty."""
    s = AddressSpace()
    priv = s.mmap(2 * PAGE_SIZE)
    shared = s.mmap(PAGE_SIZE, shared=True)
    untouched_priv = s.mmap(PAGE_SIZE, prot=PROT_READ)
    s.store_u32(priv, 1)
    s.load_u32(priv + PAGE_SIZE)  # present, no page of its own, same mapping
    s.store_u32(shared, 1)
    s.load_u32(untouched_priv)
    child = s.fork()
    assert child.present(priv) and child.present(priv + PAGE_SIZE)
    assert not child.present(shared)
    assert not child.present(untouched_priv)


def test_bad_mapping_requests_are_refused_with_a_reason() -> None:
    s = AddressSpace()
    with pytest.raises(MappingError, match="positive"):
        s.mmap(0)
    with pytest.raises(MappingError, match="page aligned"):
        s.mmap(PAGE_SIZE, addr=0x10001)
    with pytest.raises(MappingError, match="protection"):
        s.mmap(PAGE_SIZE, prot=0x100)
    with pytest.raises(MappingError, match="outside user space"):
        s.mmap(2 * PAGE_SIZE, addr=USER_PTR_MAX_X86_64 - PAGE_SIZE)
    with pytest.raises(ValueError, match="aligned"):
        s.load_u32(s.mmap(PAGE_SIZE) + 2)


def test_fixed_mapping_replaces_what_was_there() -> None:
    s = AddressSpace()
    a = s.mmap(2 * PAGE_SIZE)
    s.store_u32(a, 5)
    b = s.mmap(PAGE_SIZE, addr=a)
    assert b == a and s.load_u32(a) == 0
    assert len(s.mappings) == 2


def test_fork_private_memory_is_copy_on_write() -> None:
    parent = AddressSpace()
    a = parent.mmap(PAGE_SIZE)
    parent.store_u32(a, 1)
    child = parent.fork()
    assert child.load_u32(a) == 1
    parent.store_u32(a, 2)
    assert (parent.load_u32(a), child.load_u32(a)) == (2, 1)
    child.store_u32(a + 4, 9)
    assert (parent.load_u32(a + 4), child.load_u32(a + 4)) == (0, 9)


def test_written_pages_follow_every_mapping_change() -> None:
    """The atomics reach a page already written without the fault path (a per-space
    cache): a written page that then turns read-only, is unmapped, or becomes shared
    copy-on-write by a fork must behave exactly as a page never written would (Linux:
    mprotect and munmap change the VMA the next access faults on; fork write-protects
    every private page of both sides)."""
    s = AddressSpace()
    a = s.mmap(2 * PAGE_SIZE)
    s.store_u32(a, 1)
    s.store_u32(a + PAGE_SIZE, 2)
    s.mprotect(a, PAGE_SIZE, PROT_READ)
    assert s.load_u32(a) == 1
    for write in (
        lambda: s.store_u32(a, 3),
        lambda: s.cas_u32(a, 1, 3),
        lambda: s.update_u32(a, lambda v: v + 1),
    ):
        with pytest.raises(MemoryFault):
            write()
    assert s.load_u32(a) == 1
    s.munmap(a + PAGE_SIZE, PAGE_SIZE)
    with pytest.raises(MemoryFault):
        s.load_u32(a + PAGE_SIZE)
    with pytest.raises(MemoryFault):
        s.store_u32(a + PAGE_SIZE, 4)
    s.mprotect(a, PAGE_SIZE, RW)
    s.store_u32(a, 5)
    child = s.fork()
    s.store_u32(a, 6)  # the parent's page is shared with the child now: it copies
    assert child.cas_u32(a, 5, 7) == 5
    assert (s.load_u32(a), child.load_u32(a)) == (6, 7)


def test_fork_shared_memory_is_the_same_memory() -> None:
    parent = AddressSpace()
    a = parent.mmap(PAGE_SIZE, shared=True)
    child = parent.fork()
    child.store_u32(a, 7)
    assert parent.load_u32(a) == 7
    parent.cas_u32(a, 7, 8)
    assert child.load_u32(a) == 8


def test_file_mappings_share_the_file_and_fault_past_eof() -> None:
    f = File("data", size=PAGE_SIZE)
    s1, s2 = AddressSpace(), AddressSpace()
    a1 = s1.mmap(2 * PAGE_SIZE, shared=True, file=f)
    a2 = s2.mmap(PAGE_SIZE, shared=True, file=f)
    s1.store_u32(a1 + 16, 42)
    assert s2.load_u32(a2 + 16) == 42
    assert f.pread(16, 4) == (42).to_bytes(4, "little")
    with pytest.raises(MemoryFault, match="past the end"):
        s1.load_u32(a1 + PAGE_SIZE)  # second page is past EOF (SIGBUS in Linux)
    f.truncate(0)
    with pytest.raises(MemoryFault):
        s2.load_u32(a2)


def test_private_file_mapping_sees_the_file_until_written() -> None:
    f = File("data", size=PAGE_SIZE)
    f.pwrite(0, (3).to_bytes(4, "little"))
    s = AddressSpace()
    a = s.mmap(PAGE_SIZE, file=f)
    assert s.load_u32(a) == 3
    s.store_u32(a, 4)
    assert s.load_u32(a) == 4 and f.pread(0, 4) == (3).to_bytes(4, "little")


def test_atomics_return_the_previous_value() -> None:
    s = AddressSpace()
    a = s.mmap(PAGE_SIZE)
    assert s.cas_u32(a, 0, 5) == 0 and s.load_u32(a) == 5
    assert s.cas_u32(a, 0, 6) == 5 and s.load_u32(a) == 5  # failed CAS leaves it
    assert s.swap_u32(a, 9) == 5 and s.load_u32(a) == 9
    assert s.update_u32(a, lambda v: v + 0xFFFFFFFF) == 9 and s.load_u32(a) == 8  # wraps


def test_cas_is_atomic_across_threads_and_address_spaces() -> None:
    parent = AddressSpace()
    a = parent.mmap(PAGE_SIZE, shared=True)
    spaces = [parent, parent.fork(), parent.fork()]

    def bump(s: AddressSpace) -> None:
        for _ in range(2000):
            while True:
                v = s.load_u32(a)
                if s.cas_u32(a, v, v + 1) == v:
                    break

    threads = [threading.Thread(target=bump, args=(s,)) for s in spaces for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert parent.load_u32(a) == 6 * 2000


class TestFutexKeys:
    """Linux ``get_futex_key``: which words are the same futex."""

    def test_private_keys_need_only_access_ok(self) -> None:
        s = AddressSpace()
        assert key_kind(s.futex_key(0, private=True)) is KeyKind.PRIVATE  # NULL is fine
        assert s.futex_key(USER_PTR_MAX_X86_64, private=True) == USER_PTR_MAX_X86_64
        with pytest.raises(MemoryFault):
            s.futex_key(USER_PTR_MAX_X86_64 + 4, private=True)

    def test_shared_op_on_private_mapping_is_keyed_per_address_space(self) -> None:
        s = AddressSpace()
        a = s.mmap(PAGE_SIZE)
        k = s.futex_key(a, private=False)
        assert key_kind(k) is KeyKind.SHARED_PRIVATE
        assert k != s.futex_key(a, private=True)  # FUT_OFF_MMSHARED: never matches private
        assert s.fork().futex_key(a, private=False) != k

    def test_shared_mapping_keys_match_across_processes_and_addresses(self) -> None:
        f = File("f", size=2 * PAGE_SIZE)
        s1, s2 = AddressSpace(), AddressSpace()
        a1 = s1.mmap(2 * PAGE_SIZE, shared=True, file=f)
        a2 = s2.mmap(PAGE_SIZE, shared=True, file=f, offset=PAGE_SIZE)
        k = s1.futex_key(a1 + PAGE_SIZE + 8, private=False)
        assert key_kind(k) is KeyKind.SHARED_MAPPABLE
        assert s2.futex_key(a2 + 8, private=False) == k
        anon = s1.mmap(PAGE_SIZE, shared=True)
        assert s1.fork().futex_key(anon, private=False) == s1.futex_key(anon, private=False)

    def test_shared_keys_fault_where_linux_answers_efault(self) -> None:
        s = AddressSpace()
        ro_anon = s.mmap(PAGE_SIZE, prot=PROT_READ)
        none = s.mmap(PAGE_SIZE, prot=PROT_NONE)
        ro_shared = s.mmap(PAGE_SIZE, prot=PROT_READ, shared=True)
        with pytest.raises(MemoryFault, match="anonymous"):
            s.futex_key(ro_anon, private=False)  # "a RO anonymous page will never change"
        with pytest.raises(MemoryFault, match="not readable"):
            s.futex_key(none, private=False)
        with pytest.raises(MemoryFault, match="not mapped"):
            s.futex_key(none + 16 * PAGE_SIZE, private=False)
        assert key_kind(s.futex_key(ro_shared, private=False)) is KeyKind.SHARED_MAPPABLE
        with pytest.raises(MemoryFault, match="writable"):
            s.futex_key(ro_shared, private=False, write=True)  # FUTEX_WAKE_OP's uaddr2

    def test_read_only_private_file_page_keys_by_file_until_written(self) -> None:
        f = File("f", size=PAGE_SIZE)
        s = AddressSpace()
        a = s.mmap(PAGE_SIZE, file=f, prot=PROT_READ)
        assert key_kind(s.futex_key(a, private=False)) is KeyKind.SHARED_MAPPABLE
        s.mprotect(a, PAGE_SIZE, RW)
        s.store_u32(a, 1)  # now an anonymous copy
        s.mprotect(a, PAGE_SIZE, PROT_READ)
        with pytest.raises(MemoryFault):
            s.futex_key(a, private=False)

    def test_shared_key_on_writable_private_file_page_breaks_cow(self) -> None:
        """get_futex_key's get_user_pages(FOLL_WRITE) write-faults the page: the private
        mapping stops following the file (found by the differential tests)."""
        f = File("f", size=PAGE_SIZE)
        s = AddressSpace()
        shared = s.mmap(PAGE_SIZE, shared=True, file=f)
        private = s.mmap(PAGE_SIZE, file=f)
        s.store_u32(shared, 1)
        assert s.load_u32(private) == 1  # untouched private page shows the file
        assert key_kind(s.futex_key(private, private=False)) is KeyKind.SHARED_PRIVATE
        s.store_u32(shared, 2)
        assert s.load_u32(private) == 1  # now a copy
        s.futex_key(private + 4, private=True)  # a private key touches nothing
