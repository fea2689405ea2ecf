"""Robust lists on the host kernel and the emulated one, side by side.

The same robust lists, at the same addresses, walked by the host kernel (a forked child
process registers the list and exits) and by the emulated one, must leave the same memory
and wake the same waiters (Linux ``exit_robust_list`` / ``handle_futex_death``); and the
same set/get_robust_list calls must answer the same and store the same bytes.  The host
facts the emulation rests on (get_robust_list stores the length first; each store is all
or nothing; the IS_ERR quirk of a head in [-4095, -1]; a pending entry whose owner is 0 is
woken even if the word is not 0; the last thread of a process does not store to its
clear_child_tid) were measured that way too.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import struct
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from futex.kernel import ManualClock
from futex.linux import LinuxKernel, Process
from futex.memory import PROT_EXEC, PROT_NONE, PROT_READ
from tests.linux.robust_support import (
    GET,
    HEAD_SIZE,
    INT_MAX,
    LIMIT,
    OWNER_DIED,
    PAGE,
    RW,
    SET,
    TID_MASK,
    U64,
    WAIT,
    WAITERS,
    WAKE,
    wait_on,
    woken,
)
from tests.support import hostfutex as hf
from tests.support import wait_until

host = pytest.mark.skipif(not hf.available(), reason="needs the host kernel: Linux on x86-64")


#: The region: 17 pages, MAP_SHARED in the test process (so that a forked child's stores
#: show); the child gives some pages other protections in its own address space.
NPAGES = 17

RO_PAGE, NONE_PAGE, HOLE_PAGE, EXEC_PAGE = 12, 13, 14, 16

CHILD_PROT = {RO_PAGE: PROT_READ, NONE_PAGE: PROT_NONE, EXEC_PAGE: PROT_EXEC}

#: Pages whose content is compared (readable and never written by the test process).
COMPARED = (*range(RO_PAGE + 1), 15)

HOST_BASES = (0x7D1100000000, 0x6D1100000000, 0x5D1100000000, 0x4D1100000000)


@pytest.fixture(scope="module")
def region() -> Iterator[int]:
    """The region on the host, between two PROT_NONE guard pages (unmapped in the
    emulation: both fault)."""
    if not hf.available():
        pytest.skip("needs the host kernel: Linux on x86-64")
    shared = hf.MAP_SHARED | hf.MAP_ANONYMOUS | hf.MAP_FIXED_NOREPLACE
    guard = hf.MAP_PRIVATE | hf.MAP_ANONYMOUS | hf.MAP_FIXED_NOREPLACE
    for base in HOST_BASES:
        maps = [
            (base - PAGE, PAGE, PROT_NONE, guard),
            (base, NPAGES * PAGE, RW, shared),
            (base + NPAGES * PAGE, PAGE, PROT_NONE, guard),
        ]
        done: list[tuple[int, int]] = []
        for addr, length, prot, flags in maps:
            try:
                got = hf.host_mmap(addr, length, prot, flags)
            except OSError:
                break
            done.append((got, length))
            if got != addr:  # a kernel without MAP_FIXED_NOREPLACE
                break
        else:
            break
        for addr, length in done:
            hf.host_munmap(addr, length)
    else:
        pytest.skip("cannot reserve the robust-list region on the host")
    yield base
    for addr, length in done:
        hf.host_munmap(addr, length)


def child_protect(base: int) -> None:
    """In the forked child: the same protections the emulated child process gets."""
    for page, prot in CHILD_PROT.items():
        hf.host_mprotect(base + page * PAGE, PAGE, prot)
    hf.host_munmap(base + HOLE_PAGE * PAGE, PAGE)


def emulated_child(kernel: LinuxKernel, base: int, image: bytes) -> tuple[Process, Process]:
    """The emulated counterpart: a parent process with the region (shared, all RW, holding
    ``image``) and a forked child with the child's protections."""
    parent = kernel.new_process()
    parent.mmap(NPAGES * PAGE, shared=True, addr=base)
    parent.write(base, image)
    child = parent.fork()
    for page, prot in CHILD_PROT.items():
        child.mprotect(base + page * PAGE, PAGE, prot)
    child.munmap(base + HOLE_PAGE * PAGE, PAGE)
    return parent, child


def host_pages(base: int) -> dict[int, bytes]:
    return {i: ctypes.string_at(base + i * PAGE, PAGE) for i in COMPARED}


def emulated_pages(p: Process, base: int) -> dict[int, bytes]:
    return {i: p.read(base + i * PAGE, PAGE) for i in COMPARED}


def assert_same_pages(host_view: dict[int, bytes], emu_view: dict[int, bytes], base: int) -> None:
    diffs = []
    for i in COMPARED:
        h, e = host_view[i], emu_view[i]
        for off in range(0, PAGE, 4):
            if h[off : off + 4] != e[off : off + 4]:
                hv, ev = (struct.unpack_from("<I", x, off)[0] for x in (h, e))
                diffs.append(f"{base + i * PAGE + off:#x}: host {hv:#x}, emulated {ev:#x}")
    assert not diffs, "memory differs:\n" + "\n".join(diffs[:20])


def blocked_in_futex(tid: int, uaddr: int) -> bool:
    """Whether host thread ``tid`` sleeps in futex(2) on ``uaddr`` (``/proc``: syscall 202
    with that first argument, state S) -- not, say, on the GIL."""
    try:
        with open(f"/proc/self/task/{tid}/syscall") as f:
            fields = f.read().split()
        with open(f"/proc/self/task/{tid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return fields[:2] == [str(hf.SYS_futex), hex(uaddr)] and state == "S"


@dataclass
class HostExit:
    """What a forked host child's exit did: its pid, the memory after, and per waited
    address how many of its waiters the exit woke."""

    pid: int
    rc: int
    pages: dict[int, bytes]
    woken: dict[int, int] = field(default_factory=dict)


def run_host_child(
    base: int,
    build: Callable[[int], bytes],
    head_of: Callable[[int], int],
    waits: dict[int, int] | None = None,
) -> HostExit:
    """Fork a child that writes ``build(pid)`` over the region, takes the child's
    protections, registers ``head_of(pid)`` with set_robust_list and, once the parent's
    ``waits`` (address -> number of waiters, shared FUTEX_WAIT on the word) are asleep,
    exits -- and the host kernel walks its list."""
    waits = waits or {}
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(ready_r)
            os.close(go_w)
            me = os.getpid()
            ctypes.memmove(base, build(me), NPAGES * PAGE)
            child_protect(base)
            rc = hf.host_syscall(SET, head_of(me), HEAD_SIZE)
            os.write(ready_w, json.dumps({"rc": rc}).encode() + b"\n")
            os.read(go_r, 1)
        except BaseException:
            os.write(ready_w, json.dumps({"error": traceback.format_exc()}).encode() + b"\n")
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(go_r)
    try:
        msg = json.loads(os.read(ready_r, 65536).split(b"\n")[0])
        assert "error" not in msg, msg.get("error")
        timeout = ctypes.create_string_buffer(struct.pack("<qq", 60, 0))
        threads: list[tuple[int, threading.Thread, list[int]]] = []
        for addr, n in waits.items():
            value = struct.unpack("<I", ctypes.string_at(addr, 4))[0]
            for _ in range(n):
                out: list[int] = []

                def waiter(addr: int = addr, value: int = value, out: list[int] = out) -> None:
                    out.append(threading.get_native_id())
                    out.append(hf.host_futex(addr, WAIT, value, ctypes.addressof(timeout), 0, 0))

                th = threading.Thread(target=waiter, daemon=True)
                th.start()
                threads.append((addr, th, out))
        for addr, _th, out in threads:
            wait_until(lambda out=out: bool(out), "a host waiter starts")
            wait_until(
                lambda out=out, addr=addr: blocked_in_futex(out[0], addr), "a host waiter sleeps"
            )
    finally:
        with contextlib.suppress(BrokenPipeError):
            os.write(go_w, b"g")
        os.close(go_w)
        os.close(ready_r)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    result = HostExit(pid, msg["rc"], host_pages(base))
    for addr, n in waits.items():
        left = hf.host_futex(addr, WAKE, INT_MAX, 0, 0, 0)
        result.woken[addr] = n - left
    for _, th, out in threads:
        th.join(30)
        assert out[1] == 0, out
    return result


def emulated_exit(
    base: int,
    build: Callable[[int], bytes],
    head_of: Callable[[int], int],
    pid: int,
    waits: dict[int, int] | None = None,
) -> HostExit:
    """The same as :func:`run_host_child` on an emulated kernel, the dying task's tid being
    the host child's pid."""
    waits = waits or {}
    kernel = LinuxKernel.like_host(clock=ManualClock())
    parent, child = emulated_child(kernel, base, build(pid))
    t = child.new_task(tid=pid)
    rc = t.syscall(SET, head_of(pid), HEAD_SIZE)
    pending = {
        addr: [wait_on(parent.new_task(), addr) for _ in range(n)] for addr, n in waits.items()
    }
    t.exit()
    result = HostExit(pid, rc, emulated_pages(parent, base))
    waker = parent.new_task()
    for addr, ws in pending.items():
        result.woken[addr] = n = woken(ws)
        assert waker.syscall_futex(addr, WAKE, INT_MAX, 0, 0, 0) == len(ws) - n
    for p in kernel.processes.values():
        p.futex.check_invariants()
    return result


def differential_exit(
    base: int,
    build: Callable[[int], bytes],
    head_of: Callable[[int], int],
    waits: dict[int, int] | None = None,
) -> HostExit:
    h = run_host_child(base, build, head_of, waits)
    e = emulated_exit(base, build, head_of, h.pid, waits)
    assert e.rc == h.rc
    assert_same_pages(h.pages, e.pages, base)
    assert e.woken == h.woken
    return h


# -- list descriptions for the host --


@dataclass(frozen=True)
class Entry:
    """An entry at ``rel`` (bytes from the region's base), with the PI bit on pointers to
    it, and its word's value by kind (resolved against the dying pid)."""

    rel: int
    pi: bool = False
    word: str = "tid"


@dataclass(frozen=True)
class ListSpec:
    futex_offset: int
    entries: tuple[Entry, ...]
    head_rel: int = 0x100
    #: "head", "null", an int (the index of the entry the last one points back to), or
    #: ("abs", address relative to the base, possibly outside the region)
    end: object = "head"
    #: None, ("entry", index, pi), or ("own", Entry)
    pending: object = None


WORDS = {
    "tid": lambda t: t,
    "tid|W": lambda t: t | WAITERS,
    "tid|OD": lambda t: t | OWNER_DIED,
    "tid|W|OD": lambda t: t | WAITERS | OWNER_DIED,
    "0": lambda t: 0,
    "W": lambda t: WAITERS,
    "OD": lambda t: OWNER_DIED,
    "W|OD": lambda t: WAITERS | OWNER_DIED,
    "other": lambda t: (t + 1) & TID_MASK,
    "other|W": lambda t: ((t + 1) & TID_MASK) | WAITERS,
}


def build_image(spec: ListSpec, base: int, pid: int) -> bytes:
    """The region's content for ``spec``: words, then the entries' next fields, then the
    head (later stores win where they overlap; both kernels see the same bytes anyway)."""
    img = bytearray(NPAGES * PAGE)

    def put(rel: int, data: bytes) -> None:
        if rel >= 0 and rel + len(data) <= len(img):
            img[rel : rel + len(data)] = data

    own = spec.pending[1] if isinstance(spec.pending, tuple) and spec.pending[0] == "own" else None
    for e in (*spec.entries, *([own] if isinstance(own, Entry) else [])):
        put(e.rel + spec.futex_offset, struct.pack("<I", WORDS[e.word](pid)))

    def ptr(e: Entry) -> int:
        return (base + e.rel) | e.pi

    if spec.end == "head":
        last = base + spec.head_rel
    elif spec.end == "null":
        last = 0
    elif isinstance(spec.end, int):
        last = ptr(spec.entries[spec.end])
    else:
        assert isinstance(spec.end, tuple)
        last = (base + spec.end[1]) & U64
    for e, nxt in zip(spec.entries, [*(ptr(x) for x in spec.entries[1:]), last], strict=False):
        put(e.rel, struct.pack("<Q", nxt))
    pending = 0
    if isinstance(spec.pending, tuple):
        if spec.pending[0] == "entry":
            _, i, pi = spec.pending
            pending = (base + spec.entries[i].rel) | pi
        elif isinstance(own, Entry):
            pending = ptr(own)
    first = ptr(spec.entries[0]) if spec.entries else base + spec.head_rel
    put(spec.head_rel, struct.pack("<QqQ", first, spec.futex_offset, pending))
    return bytes(img)


def host_word(h: HostExit, rel: int) -> int:
    """The u32 at ``rel`` in the host's memory after the exit."""
    page, off = divmod(rel, PAGE)
    value: int = struct.unpack_from("<I", h.pages[page], off)[0]
    return value


def differential_list(region: int, spec: ListSpec, waits: dict[int, int] | None = None) -> HostExit:
    return differential_exit(
        region,
        lambda pid: build_image(spec, region, pid),
        lambda pid: region + spec.head_rel,
        {region + rel: n for rel, n in (waits or {}).items()},
    )


@host
def test_host_exit_list_limit_cycle_null(region: int) -> None:
    """Host vs emulation, Linux exit_robust_list: the 2048-entry limit (then the pending
    entry), a cycle that never returns to the head, and a NULL-terminated list (stops at
    the fault: no pending)."""
    long_list = tuple(Entry(PAGE + 16 * i) for i in range(LIMIT + 2))
    own = Entry(0x800)
    h = differential_list(region, ListSpec(8, long_list, pending=("own", own)))
    assert [host_word(h, PAGE + 16 * i + 8) for i in (LIMIT - 1, LIMIT)] == [OWNER_DIED, h.pid]
    assert host_word(h, own.rel + 8) == OWNER_DIED
    cycle = tuple(Entry(PAGE + 64 * i) for i in range(3))
    differential_list(region, ListSpec(8, cycle, end=1, pending=("own", own)))
    differential_list(region, ListSpec(8, cycle, end="null", pending=("own", own)))


@host
def test_host_exit_wakes(region: int) -> None:
    """Host vs emulation, Linux handle_futex_death's wakes: one waiter per word with
    WAITERS (also with OWNER_DIED already set), none without it, none for PI; a pending
    entry with owner 0 is woken whatever the other bits; a pending entry that is also on
    the list is handled once."""
    es = (
        Entry(0x1000, word="tid|W"),
        Entry(0x1040, word="tid|W|OD"),
        Entry(0x1080, word="tid"),
        Entry(0x10C0, pi=True, word="tid|W"),
        Entry(0x1100, word="other|W"),
    )
    waits = {e.rel + 8: 2 for e in es}
    for word in ("0", "OD", "W", "tid|W"):
        for pi in (False, True):
            own = Entry(0x2000, pi=pi, word=word)
            h = differential_list(
                region, ListSpec(8, es, pending=("own", own)), {**waits, own.rel + 8: 2}
            )
            assert h.woken[region + 0x1008] == 1
            assert h.woken[region + 0x10C8] == 0
    h = differential_list(region, ListSpec(8, es, pending=("entry", 0, False)), waits)
    assert h.woken[region + 0x1008] == 1


# hypothesis: random lists, on the host and emulated

#: Interesting places for entries and heads: page starts and ends (reads straddling into
#: the next page), misaligned ones, in every kind of page.
REL_PAGES = (0, 1, 1, 2, 2, 11, 15, 15, RO_PAGE, RO_PAGE, NONE_PAGE, HOLE_PAGE, EXEC_PAGE)

REL_OFFSETS = (
    0,
    2,
    4,
    0x40,
    0x46,
    0x48,
    0x200,
    0x208,
    0x800,
    PAGE - 64,
    PAGE - 8,
    PAGE - 6,
    PAGE - 4,
)

rels = st.builds(
    lambda pg, off: pg * PAGE + off, st.sampled_from(REL_PAGES), st.sampled_from(REL_OFFSETS)
)
#: Word kinds, the dying task's own more often than the rest.
WORD_KINDS = (
    "tid",
    "tid",
    "tid|W",
    "tid|W",
    "tid|OD",
    "tid|W|OD",
    *(k for k in WORDS if "tid" not in k),
)

entries = st.builds(Entry, rels, st.booleans(), st.sampled_from(WORD_KINDS))


#: futex_offset: mostly 8; small, negative, misaligned, and a page away.
FUTEX_OFFSETS = (8, 8, 8, 8, 8, 8, 12, 16, -8, -32, 4, 2, 9, PAGE, -PAGE, -4092)


@st.composite
def specs(draw: st.DrawFn) -> ListSpec:
    es = tuple(draw(st.lists(entries, max_size=8, unique_by=lambda e: e.rel)))
    ends: list[st.SearchStrategy[object]] = [
        st.just("head"),
        st.just("head"),
        st.just("null"),
        st.sampled_from([("abs", -PAGE), ("abs", HOLE_PAGE * PAGE + 8), ("abs", 1 << 63)]),
    ]
    pendings: list[st.SearchStrategy[object]] = [st.none(), st.tuples(st.just("own"), entries)]
    if es:
        ends.append(st.integers(0, len(es) - 1))
        pendings.append(st.tuples(st.just("entry"), st.integers(0, len(es) - 1), st.booleans()))
    return ListSpec(
        futex_offset=draw(st.sampled_from(FUTEX_OFFSETS)),
        entries=es,
        head_rel=draw(st.one_of(st.just(0x100), rels)),
        end=draw(st.one_of(ends)),
        pending=draw(st.one_of(pendings)),
    )


@host
@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs())
def test_host_exit_random_lists(region: int, spec: ListSpec) -> None:
    """Host vs emulation: random robust lists -- PI bits, pending entries on and off the
    list, misaligned and far futex offsets, entries, words and heads in read-only,
    PROT_NONE, execute-only and unmapped pages or straddling into them, cycles, NULL and
    wild ends -- leave the same memory after the owner's exit."""
    differential_list(region, spec)


@host
def test_host_set_get_robust_list(region: int) -> None:
    """Host vs emulation, set_robust_list / get_robust_list argument handling, one task:
    the same calls with the same pointers (good, NULL, read-only, PROT_NONE, unmapped,
    execute-only, kernel, straddling page boundaries, misaligned, overlapping), pids (0,
    own, truncated to 32 bits, negative, unused), lengths and heads (including the IS_ERR
    range) return the same and store the same bytes."""

    def slot(i: int) -> int:
        return region + PAGE + 16 * i

    ro, none = region + RO_PAGE * PAGE, region + NONE_PAGE * PAGE
    hole, exe = region + HOLE_PAGE * PAGE, region + EXEC_PAGE * PAGE

    def calls(tid: int) -> list[tuple[int, int, int, int]]:
        slots = (region + PAGE + 16 * i for i in range(PAGE // 16))
        out: list[tuple[int, int, int, int]] = [(SET, region + 0x100, HEAD_SIZE, 0)]

        def get(pid: int = 0, head_ptr: int | None = None, len_ptr: int | None = None) -> None:
            s = next(slots)
            out.append(
                (
                    GET,
                    pid,
                    s if head_ptr is None else head_ptr,
                    s + 8 if len_ptr is None else len_ptr,
                )
            )

        for pid in (0, tid, tid + (1 << 32), 1 << 32, -1, INT_MAX, -tid, tid - (1 << 32)):
            get(pid)
        get(INT_MAX, none, none)  # the lookup comes first
        for bad in (none, ro, hole, exe, 0, 0xFFFF_8000_0000_0000, 1 << 47, U64 - 3):
            get(len_ptr=bad)
            get(head_ptr=bad)
        get(len_ptr=ro - 4)  # straddles RW -> read-only
        get(head_ptr=region + 16 * PAGE - 4)  # straddles RW (page 15) -> execute-only
        get(len_ptr=hole + PAGE - 4)  # starts in the hole, ends in RW
        s = next(slots)
        out.append((GET, 0, s + 1, s + 3))  # misaligned, overlapping
        s = next(slots)
        out.append((GET, 0, s, s))  # the same address: the head wins
        for length in (0, 12, 23, 25, -1, (1 << 32) + HEAD_SIZE, (1 << 64) + HEAD_SIZE):
            out.append((SET, region + 0x200 + length % 64, length, 0))
            get()
        for head in (0, 0xDEAD_BEEF_0001, 1 << 63, -4096, -4095, -14, -1, U64 - 4096):
            out.append((SET, head, HEAD_SIZE, 0))
            get()
            get(0, none, none)
        out.append((SET, 0, HEAD_SIZE + 1, 0))  # gVisor InvalidSize
        out.append((SET, 0, HEAD_SIZE, 0))  # NULL: nothing is walked at exit
        get()
        return out

    def build(pid: int) -> bytes:
        return b"\xaa" * (NPAGES * PAGE)

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(r)
            me = os.getpid()
            ctypes.memmove(region, build(me), NPAGES * PAGE)
            child_protect(region)
            results = [hf.host_syscall(*c) for c in calls(me)]
            os.write(w, json.dumps(results).encode())
        except BaseException:
            os.write(w, json.dumps(traceback.format_exc()).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    host_results = json.loads(b"".join(chunks))
    assert isinstance(host_results, list), host_results
    host_view = host_pages(region)

    kernel = LinuxKernel.like_host(clock=ManualClock())
    parent, child = emulated_child(kernel, region, build(pid))
    t = child.new_task(tid=pid)
    cs = calls(pid)
    emu_results = [t.syscall(*c) for c in cs]
    mismatches = [
        (c, h, e) for c, h, e in zip(cs, host_results, emu_results, strict=True) if h != e
    ]
    assert not mismatches, mismatches
    assert_same_pages(host_view, emulated_pages(parent, region), region)
