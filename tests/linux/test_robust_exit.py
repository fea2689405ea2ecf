"""What task exit and exec do for futexes: the robust-list walk, list_op_pending,
CLONE_CHILD_CLEARTID.

Each test names the Linux function it pins down (``kernel/futex/core.c``:
``exit_robust_list``, ``handle_futex_death``, ``futex_cleanup``; ``kernel/fork.c``:
``mm_release``, ``exit_mm_release``, ``exec_mm_release``) -- where gVisor differs from
Linux, these follow Linux.  Facts measured on the host (a pending entry whose owner is 0
is woken even if the word is not 0; the last thread of a process does not store to its
clear_child_tid) are checked against it in ``test_robust_host.py``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest

import futex.linux.exit
from futex.demo.robust_mutex import GLIBC_FUTEX_OFFSET
from futex.linux import LinuxKernel, Task, abi
from futex.linux.exit import exec_futex
from futex.memory import PROT_NONE, PROT_READ
from tests.linux.robust_support import (
    FILL,
    GET,
    HEAD_SIZE,
    LIMIT,
    OWNER_DIED,
    PAGE,
    SET,
    WAIT,
    WAITERS,
    RobustList,
    end_waits,
    scene,
    u64,
    wait_on,
    woken,
)

# -- the exit walk (Linux exit_robust_list / handle_futex_death) -------------------------------


def test_exit_marks_only_the_dying_tasks_words(kernel: LinuxKernel) -> None:
    """Linux handle_futex_death: a word owned by the dying task becomes (word & WAITERS) |
    OWNER_DIED -- the TID cleared -- and a word owned by someone else is left alone."""
    s = scene(kernel)
    tid, other = s.owner.tid, s.other.tid
    es = [s.entry(i) for i in range(6)]
    s.rl.link(es)
    before = [tid, tid | WAITERS, tid | OWNER_DIED, other, other | WAITERS, 0]
    s.rl.set_words(dict(zip(es, before, strict=True)))
    s.register()
    s.owner.exit()
    assert s.rl.words(es) == [
        OWNER_DIED,
        WAITERS | OWNER_DIED,
        OWNER_DIED,
        other,
        other | WAITERS,
        0,
    ]
    assert s.owner.robust_list == 0


def test_exit_wakes_one_waiter_where_waiters_was_set(kernel: LinuxKernel) -> None:
    """Linux handle_futex_death: with FUTEX_WAITERS set, one waiter (not all) is woken by a
    shared wake -- also when OWNER_DIED was already set (recursive death); without
    WAITERS nobody is woken, even if someone waits."""
    s = scene(kernel)
    tid = s.owner.tid
    with_waiters, recursive, without = s.entry(0), s.entry(1), s.entry(2)
    s.rl.link([with_waiters, recursive, without])
    s.rl.set_words({with_waiters: tid | WAITERS, recursive: tid | WAITERS | OWNER_DIED})
    s.rl.set_words({without: tid})
    s.register()
    waiters = [s.p.new_task() for _ in range(2)]
    a = [wait_on(w, s.rl.word(with_waiters)) for w in waiters]
    b = [wait_on(w, s.rl.word(recursive)) for w in [s.p.new_task(), s.p.new_task()]]
    c = [wait_on(s.p.new_task(), s.rl.word(without))]
    s.owner.exit()
    assert (woken(a), woken(b), woken(c)) == (1, 1, 0)
    assert s.rl.words([with_waiters, recursive, without]) == [
        WAITERS | OWNER_DIED,
        WAITERS | OWNER_DIED,
        OWNER_DIED,
    ]
    end_waits(a + b + c)


def test_exit_wake_is_shared(kernel: LinuxKernel) -> None:
    """Linux handle_futex_death wakes with FLAGS_SHARED (gVisor takes the private flag
    from bit 7 of the TID): a private waiter on the word is not woken; a shared waiter in
    another process, on the same MAP_SHARED page, is."""
    p = kernel.new_process()
    owner = p.new_task(tid=0x80 | 0x1000)  # bit 7 set, where gVisor goes wrong
    shm = p.mmap(PAGE, shared=True)
    rl = RobustList(p, shm)
    e = shm + 0x40
    rl.link([e])
    p.store_u32(rl.word(e), owner.tid | WAITERS)
    assert owner.syscall(SET, rl.head, HEAD_SIZE) == 0
    private = wait_on(p.new_task(), rl.word(e), private=True)
    child = p.fork()
    shared = wait_on(child.new_task(), rl.word(e))
    owner.exit()
    assert (private.done(), shared.done()) == (False, True)
    assert shared.result() == 0
    end_waits([private])


def test_exit_pi_entry_marked_but_not_woken(kernel: LinuxKernel) -> None:
    """Linux exit_robust_list: bit 0 of a list pointer marks a PI futex; the bit is
    stripped before the pointer is followed.  handle_futex_death sets OWNER_DIED (keeping
    WAITERS) on a PI word but wakes nobody: PI waiters get the lock from
    exit_pi_state_list, not from a plain wake.  (gVisor does not strip the bit.)"""
    s = scene(kernel)
    tid = s.owner.tid
    pi, plain = s.entry(0) | 1, s.entry(1)
    s.rl.link([pi, plain])
    s.rl.set_words({pi: tid | WAITERS, plain: tid})
    s.register()
    w = wait_on(s.other, s.rl.word(pi))
    s.owner.exit()
    assert s.rl.words([pi, plain]) == [WAITERS | OWNER_DIED, OWNER_DIED]
    assert not w.done()
    end_waits([w])


def test_exit_pi_bit_on_the_head_pointer(kernel: LinuxKernel) -> None:
    """Linux fetch_robust_entry: ``head->list.next`` is stripped of bit 0 like every other
    pointer -- the first entry can be a PI futex, and head|1 is an empty list."""
    s = scene(kernel)
    tid = s.owner.tid
    e = s.entry(0)
    s.rl.link([e | 1])
    s.rl.set_words({e: tid | WAITERS})
    s.register()
    w = wait_on(s.other, s.rl.word(e))
    s.owner.exit()
    assert s.rl.words([e]) == [WAITERS | OWNER_DIED]
    assert not w.done()
    end_waits([w])

    # head|1 is the empty list: the walk goes straight to the pending entry (were the bit
    # kept, head|1 would be an entry with a misaligned word, and the walk would abort)
    t = s.p.new_task()
    pending = s.entry(3)
    s.rl.link([], pending=pending)
    s.p.write(s.rl.head, struct.pack("<Q", s.rl.head | 1))
    s.rl.set_words({pending: t.tid})
    assert t.syscall(SET, s.rl.head, HEAD_SIZE) == 0
    t.exit()
    assert s.rl.words([pending]) == [OWNER_DIED]


# -- list_op_pending ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "pi", "after", "wakes"),
    [
        (0, False, 0, 1),  # died between unlocking and waking: wake only
        (WAITERS, False, WAITERS, 1),  # owner part 0: wake only, word untouched
        (OWNER_DIED, False, OWNER_DIED, 1),  # owner part 0 though the word is not 0
        (0, True, 0, 0),  # a PI futex: never woken here
        ("tid", False, OWNER_DIED, 0),  # died after taking the lock: like a list entry
        ("tid|W", False, WAITERS | OWNER_DIED, 1),
        ("tid|W", True, WAITERS | OWNER_DIED, 0),
        ("other", False, "other", 0),  # someone else's lock: untouched, no wake
    ],
)
def test_exit_pending_op(
    kernel: LinuxKernel, word: int | str, pi: bool, after: int | str, wakes: int
) -> None:
    """Linux handle_futex_death(pending_op=true): a pending non-PI entry whose owner (the
    TID bits) is 0 gets one shared wake and no store -- ``!owner``, not ``!uval`` (measured
    on the host: a pending word of OWNER_DIED alone, or WAITERS alone, is woken); otherwise
    the pending entry is handled like a list entry."""
    s = scene(kernel)
    values = {"tid": s.owner.tid, "tid|W": s.owner.tid | WAITERS, "other": s.other.tid}
    w0 = values[word] if isinstance(word, str) else word
    w1 = values[after] if isinstance(after, str) else after
    listed, pending = s.entry(0), s.entry(5)
    s.rl.link([listed], pending=pending | pi)
    s.rl.set_words({listed: 0, pending: w0})
    s.register()
    waits = [wait_on(t, s.rl.word(pending)) for t in (s.p.new_task(), s.p.new_task())]
    s.owner.exit()
    assert s.rl.words([pending]) == [w1]
    assert woken(waits) == wakes
    end_waits(waits)


def test_exit_pending_entry_on_the_list_is_handled_once(kernel: LinuxKernel) -> None:
    """Linux exit_robust_list: "a pending lock might already be on the list, so don't
    process it twice" -- the list skips it and it is handled last.  Handled twice, its
    word (now WAITERS|OWNER_DIED, owner 0) would be woken a second time."""
    s = scene(kernel)
    es = [s.entry(i) for i in range(3)]
    s.rl.link(es, pending=es[1])
    s.rl.set_words(dict.fromkeys(es, s.owner.tid | WAITERS))
    s.register()
    waits = [wait_on(s.p.new_task(), s.rl.word(es[1])) for _ in range(3)]
    s.owner.exit()
    assert s.rl.words(es) == [WAITERS | OWNER_DIED] * 3
    assert woken(waits) == 1
    end_waits(waits)


# -- long, circular and broken lists -----------------------------------------------------------


def test_exit_list_limit(kernel: LinuxKernel) -> None:
    """Linux exit_robust_list: at most ROBUST_LIST_LIMIT (2048) entries are handled; the
    2049th is not, but the pending entry still is (the limit breaks, it does not return)."""
    s = scene(kernel, pages=12)
    n = LIMIT + 2
    es = [s.entry(i) for i in range(n)]
    pending = s.base + 0x800
    s.rl.link(es, pending=pending)
    s.rl.set_words(dict.fromkeys([*es, pending], s.owner.tid))
    s.register()
    s.owner.exit()
    words = s.rl.words(es)
    assert words[:LIMIT] == [OWNER_DIED] * LIMIT
    assert words[LIMIT:] == [s.owner.tid] * 2
    assert s.rl.words([pending]) == [OWNER_DIED]


def test_exit_circular_list_terminates(kernel: LinuxKernel) -> None:
    """Linux exit_robust_list: a list that loops without coming back to the head ends at
    the limit; each entry is handled (the first visit marks it, later visits find the TID
    gone), then the pending entry."""
    s = scene(kernel)
    a, b, c = s.entry(0), s.entry(1), s.entry(2)
    pending = s.entry(9)
    s.rl.link([a, b, c], pending=pending, end=b)  # a -> b -> c -> b -> c ...
    s.rl.set_words(dict.fromkeys([a, b, c, pending], s.owner.tid))
    s.register()
    s.owner.exit()
    assert s.rl.words([a, b, c, pending]) == [OWNER_DIED] * 4


def test_exit_self_loop_terminates(kernel: LinuxKernel) -> None:
    """Linux exit_robust_list: an entry whose next is itself is visited 2048 times; the
    first visit marks it and wakes one waiter, the later ones find its TID gone and skip
    it (the owner-0 wake is for the pending entry only): one wake in all."""
    s = scene(kernel)
    e = s.entry(0)
    s.rl.link([e], end=e)
    s.rl.set_words({e: s.owner.tid | WAITERS})
    s.register()
    waits = [wait_on(s.p.new_task(), s.rl.word(e)) for _ in range(3)]
    s.owner.exit()
    assert s.rl.words([e]) == [WAITERS | OWNER_DIED]
    assert woken(waits) == 1
    end_waits(waits)


def test_exit_unreadable_next_stops_after_the_entry(kernel: LinuxKernel) -> None:
    """Linux exit_robust_list: the next pointer is fetched first, but the entry is handled
    before the fetch's failure is acted on -- so an entry whose ``next`` faults is still
    marked, then the walk stops silently: later entries and the pending one are not."""
    s = scene(kernel)
    s.rl.futex_offset = -8  # the word sits just before the entry
    broken = s.base + 3 * PAGE  # first byte of a PROT_NONE page; its word is readable
    later, pending = s.entry(1), s.entry(5)
    s.rl.link([s.entry(0), broken, later], pending=pending)
    s.rl.set_words(dict.fromkeys([s.entry(0), broken, later, pending], s.owner.tid))
    s.p.mprotect(broken, PAGE, PROT_NONE)
    s.register()
    s.owner.exit()
    assert s.rl.words([s.entry(0), broken, later, pending]) == [
        OWNER_DIED,
        OWNER_DIED,
        s.owner.tid,
        s.owner.tid,
    ]


def test_exit_null_terminated_list(kernel: LinuxKernel) -> None:
    """Linux exit_robust_list on a list ending in NULL instead of the head: the last entry
    is handled, then NULL is an entry whose word (at 0 + futex_offset) faults: the walk
    stops and the pending entry is not handled."""
    s = scene(kernel)
    es = [s.entry(0), s.entry(1)]
    pending = s.entry(5)
    s.rl.link(es, pending=pending, end=0)
    s.rl.set_words(dict.fromkeys([*es, pending], s.owner.tid))
    s.register()
    s.owner.exit()
    assert s.rl.words([*es, pending]) == [OWNER_DIED, OWNER_DIED, s.owner.tid]


@pytest.mark.parametrize("where", ["unmapped", "prot_none", "read_only", "misaligned"])
def test_exit_bad_word_stops_the_walk(kernel: LinuxKernel, where: str) -> None:
    """Linux handle_futex_death returns -1 -- and exit_robust_list stops, skipping the
    rest and the pending entry -- for a misaligned word, a word it cannot read, and a word
    of the dying task it cannot write (``fault_in_user_writeable`` fails)."""
    s = scene(kernel)
    tid = s.owner.tid
    word_page = s.base + 5 * PAGE
    # the bad entry is the last 8 bytes of a readable page, its word the next page's first
    bad = s.base + 4 * PAGE + 0x42 if where == "misaligned" else word_page - 8
    first, last, pending = s.entry(0), s.entry(2), s.entry(5)
    s.rl.link([first, bad, last], pending=pending)
    s.rl.set_words(dict.fromkeys([first, last, pending], tid))
    s.p.write(s.rl.word(bad), struct.pack("<I", tid))
    if where == "unmapped":
        s.p.munmap(word_page, PAGE)
    elif where == "prot_none":
        s.p.mprotect(word_page, PAGE, PROT_NONE)
    elif where == "read_only":
        s.p.mprotect(word_page, PAGE, PROT_READ)
    s.register()
    s.owner.exit()
    assert s.rl.words([first, last, pending]) == [OWNER_DIED, tid, tid]
    if where in ("read_only", "misaligned"):
        assert s.p.read(s.rl.word(bad), 4) == struct.pack("<I", tid)


def test_exit_read_only_word_of_someone_else_is_skipped(kernel: LinuxKernel) -> None:
    """Linux handle_futex_death only writes words the dying task owns: a read-only word
    owned by another TID is read, skipped, and the walk goes on."""
    s = scene(kernel)
    ro = s.base + 4 * PAGE + 0x40
    first, last = s.entry(0), s.entry(1)
    s.rl.link([first, ro, last])
    s.rl.set_words({first: s.owner.tid, ro: s.other.tid, last: s.owner.tid})
    s.p.mprotect(s.base + 4 * PAGE, PAGE, PROT_READ)
    s.register()
    s.owner.exit()
    assert s.rl.words([first, ro, last]) == [OWNER_DIED, s.other.tid, OWNER_DIED]


def test_exit_unreadable_or_null_head(kernel: LinuxKernel) -> None:
    """Linux futex_cleanup: no walk for a NULL head; exit_robust_list: a head that cannot
    be read (any of its three fields) ends the walk before it starts."""
    s = scene(kernel)
    e, pending = s.entry(0), s.entry(1)
    head = s.base + 2 * PAGE - 16  # futex_offset and list_op_pending straddle into...
    s.rl.head = head
    s.rl.link([e], pending=pending)
    s.rl.set_words({e: s.owner.tid, pending: s.owner.tid})
    s.p.mprotect(s.base + 2 * PAGE, PAGE, PROT_NONE)  # ...an unreadable page
    s.register()
    s.owner.exit()
    assert s.rl.words([e, pending]) == [s.owner.tid] * 2
    t = s.p.new_task()
    assert t.syscall(SET, 0, HEAD_SIZE) == 0
    t.exit()


def test_exit_large_futex_offset_wraps(kernel: LinuxKernel) -> None:
    """Linux exit_robust_list adds ``futex_offset`` (a long) modulo 2**64: glibc's is
    negative (-32), the word before the entry."""
    s = scene(kernel)
    s.rl.futex_offset = GLIBC_FUTEX_OFFSET
    e = s.entry(4)
    s.rl.link([e])
    s.rl.set_words({e: s.owner.tid})
    s.register()
    s.owner.exit()
    assert s.p.load_u32(e - 32) == OWNER_DIED


# -- order of the exit path, exec --------------------------------------------------------------


def test_exit_order(kernel: LinuxKernel, monkeypatch: pytest.MonkeyPatch) -> None:
    """Linux exit_mm_release: futex_exit_release (futex_cleanup: exit_robust_list, the head
    set to NULL, then exit_pi_state_list) before mm_release's CLONE_CHILD_CLEARTID."""
    s = scene(kernel)
    e = s.entry(0)
    ctid = s.base + 0x80
    s.p.store_u32(ctid, 12345)
    owner = s.p.new_task(clear_child_tid=ctid)
    s.rl.link([e])
    s.rl.set_words({e: owner.tid})
    assert owner.syscall(SET, s.rl.head, HEAD_SIZE) == 0
    seen: list[tuple[int, int, int]] = []

    def pi_cleanup(task: Task) -> None:
        seen.append((s.p.load_u32(s.rl.word(e)), task.robust_list, s.p.load_u32(ctid)))

    monkeypatch.setattr(futex.linux.exit, "exit_pi_state_list", pi_cleanup)
    owner.exit()
    assert seen == [(OWNER_DIED, 0, 12345)]
    assert s.p.load_u32(ctid) == 0
    assert kernel.task(owner.tid) is None


def test_exec_walks_and_clears_the_robust_list(kernel: LinuxKernel) -> None:
    """Linux exec_mm_release -> futex_exec_release: the robust list is walked as at exit
    and the head set to NULL, but the task lives on (it must register again)."""
    s = scene(kernel)
    tid = s.owner.tid
    es = [s.entry(0), s.entry(1)]
    s.rl.link(es)
    s.rl.set_words({es[0]: tid, es[1]: tid | WAITERS})
    s.register()
    w = wait_on(s.other, s.rl.word(es[1]))
    exec_futex(s.owner)
    assert s.rl.words(es) == [OWNER_DIED, WAITERS | OWNER_DIED]
    assert w.done() and w.result() == 0
    assert s.owner.alive and kernel.task(tid) is s.owner
    out = s.base + 0x40
    assert s.owner.syscall(GET, 0, out, out + 8) == 0
    assert u64(s.p, out) == 0
    s.rl.set_words({es[0]: tid})
    exec_futex(s.owner)  # nothing registered: nothing walked
    assert s.rl.words(es[:1]) == [tid]


def test_task_exec_runs_the_exec_cleanup(kernel: LinuxKernel) -> None:
    """Linux exec_mm_release through :meth:`Task.exec`, for a task alone in its process (as
    after ``de_thread``): the robust list is walked and dropped; the CLONE_CHILD_CLEARTID
    address is forgotten without a store (the old mm has no other user)."""
    p = kernel.new_process()
    mem = p.mmap(PAGE)
    t = p.new_task(clear_child_tid=mem + 0x80)
    p.store_u32(mem + 0x80, t.tid)
    rl = RobustList(p, mem)
    e = mem + 0x40
    rl.link([e])
    rl.set_words({e: t.tid})
    assert t.syscall(SET, rl.head, HEAD_SIZE) == 0
    t.exec()
    assert rl.words([e]) == [OWNER_DIED]
    assert (t.alive, t.robust_list, t.clear_child_tid) == (True, 0, 0)
    assert p.load_u32(mem + 0x80) == t.tid


def test_exec_clear_child_tid(kernel: LinuxKernel) -> None:
    """Linux exec_mm_release -> mm_release: CLONE_CHILD_CLEARTID is handled at exec too
    (store 0, shared wake) while the old mm has other users, and forgotten either way."""
    p = kernel.new_process()
    mem = p.mmap(PAGE)
    t = p.new_task(clear_child_tid=mem)
    p.store_u32(mem, t.tid)
    w = wait_on(p.new_task(), mem)
    exec_futex(t)
    assert p.load_u32(mem) == 0 and w.done() and w.result() == 0
    assert t.clear_child_tid == 0
    p.store_u32(mem, 7)
    t.exit()
    assert p.load_u32(mem) == 7


# -- CLONE_CHILD_CLEARTID (Linux mm_release) ---------------------------------------------------


def test_clear_child_tid_pthread_join(
    kernel: LinuxKernel, run_blocking: Callable[..., Any]
) -> None:
    """Linux mm_release: at exit, 0 is stored to the CLONE_CHILD_CLEARTID address and one
    waiter is woken by a shared FUTEX_WAKE -- glibc's pthread_join waits shared on the
    thread's tid word until it is 0."""
    p = kernel.new_process()
    main = p.new_task()
    mem = p.mmap(PAGE)
    thread = p.new_task(clear_child_tid=mem)
    p.store_u32(mem, thread.tid)

    def join() -> int:
        while (tid := p.load_u32(mem)) != 0:
            r = main.syscall_futex(mem, WAIT, tid, 0, 0, 0)
            assert r in (0, -abi.EAGAIN)
        return 0

    joiner = run_blocking(join, main)
    assert main.blocked is not None
    thread.exit()
    assert joiner.result() == 0
    assert p.load_u32(mem) == 0


def test_clear_child_tid_wakes_one_shared_waiter(kernel: LinuxKernel) -> None:
    """Linux mm_release: ``do_futex(clear_child_tid, FUTEX_WAKE, 1, ...)`` -- one waiter,
    shared: a private waiter on the same word is never woken."""
    p = kernel.new_process()
    mem = p.mmap(PAGE)
    t = p.new_task(clear_child_tid=mem)
    p.store_u32(mem, t.tid)
    private = wait_on(p.new_task(), mem, private=True)
    shared = [wait_on(p.new_task(), mem) for _ in range(2)]
    t.exit()
    assert woken(shared) == 1 and not private.done()
    end_waits([private, *shared])


def test_clear_child_tid_last_task_stores_nothing(kernel: LinuxKernel) -> None:
    """Linux mm_release: only ``if (atomic_read(&mm->mm_users) > 1)`` -- the last task of a
    process stores nothing and wakes nobody (measured on the host: a single-threaded
    child's set_tid_address word in MAP_SHARED memory keeps its value after _exit)."""
    p = kernel.new_process()
    shm = p.mmap(PAGE, shared=True)
    t = p.new_task(clear_child_tid=shm)
    p.store_u32(shm, t.tid)
    w = wait_on(p.fork().new_task(), shm)
    t.exit()
    assert p.load_u32(shm) == t.tid and not w.done()
    end_waits([w])


@pytest.mark.parametrize("where", ["misaligned", "unmapped", "read_only", "straddling"])
def test_clear_child_tid_bad_address_is_ignored(kernel: LinuxKernel, where: str) -> None:
    """Linux mm_release: "We don't check the error code - if userspace has not set up a
    proper pointer then tough luck": the store (a 4-byte put_user, all or nothing) and the
    wake fail silently and the exit completes."""
    p = kernel.new_process()
    mem = p.mmap(2 * PAGE)
    p.write(mem, FILL)
    p.write(mem + PAGE - 8, FILL)
    addr = {
        "misaligned": mem + 2,
        "unmapped": 0x1000,
        "read_only": mem + PAGE + 4,
        "straddling": mem + PAGE - 2,
    }[where]
    p.mprotect(mem + PAGE, PAGE, PROT_READ)
    keep = p.new_task()
    t = p.new_task(clear_child_tid=addr)
    t.exit()
    assert not t.alive and kernel.task(t.tid) is None
    if where == "misaligned":  # x86's put_user does not mind: stored, but no wake
        assert p.read(mem, 8) == FILL[:2] + bytes(4) + FILL[:2]
    else:
        assert p.read(mem + PAGE - 8, 8) == FILL
    keep.exit()
