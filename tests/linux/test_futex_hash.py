"""prctl(PR_FUTEX_HASH): the per-process private futex hash (:mod:`futex.linux.futexhash`).

Each test names the kernel function it pins (Linux 6.18 ``kernel/sys.c`` prctl switch,
``kernel/futex/core.c``: ``futex_hash_prctl``, ``futex_hash_allocate``,
``futex_hash_allocate_default``, ``futex_hash_get_slots``, ``__futex_hash``,
``futex_rehash_private``; ``kernel/fork.c``: ``copy_process``).  The unit tests run on the
emulator (ManualClock, cooperative waits, no sleeps).  The differential tests at the end
run the same sequences on the host kernel — each in a fresh forked process of one helper
subprocess, since SET_SLOTS changes a process for good — and on a fresh emulated process
built like the host, and compare every answer.
"""

from __future__ import annotations

import functools
import json
import platform
import random
import struct
import subprocess
import sys
from typing import Any

import pytest

from futex.kernel import ManualClock
from futex.linux import LinuxKernel, PendingWait, Process, Task, abi
from futex.linux.facts import LinuxFacts
from futex.linux.futexhash import default_slots, global_hash_slots
from futex.linux.host import probe
from futex.memory import PAGE_SIZE

PR = abi.PR_FUTEX_HASH
SET = abi.PR_FUTEX_HASH_SET_SLOTS
GET = abi.PR_FUTEX_HASH_GET_SLOTS
EINVAL, EBUSY, ENOMEM = -abi.EINVAL, -abi.EBUSY, -abi.ENOMEM
U64 = (1 << 64) - 1
PRIV32 = abi.FUTEX2_SIZE_U32 | abi.FUTEX2_PRIVATE
NUMA = abi.FUTEX2_NUMA
ANY = abi.FUTEX_BITSET_MATCH_ANY
LEGACY_WAIT = abi.FUTEX_WAIT | abi.FUTEX_PRIVATE_FLAG
LEGACY_WAKE = abi.FUTEX_WAKE | abi.FUTEX_PRIVATE_FLAG

#: A sequence: ``("T",)`` creates a thread (CLONE_THREAD), ``("X",)`` ends the newest
#: extra thread (emulator only), ``("P", option, arg2, ...)`` is prctl from the main thread.
Op = tuple[Any, ...]


def S(slots: int, arg4: int = 0, arg5: int = 0) -> Op:
    return ("P", PR, SET, slots, arg4, arg5)


G: Op = ("P", PR, GET)
T: Op = ("T",)


def emulate(seq: list[Op], facts: LinuxFacts | None = None) -> list[Any]:
    """Run ``seq`` on a fresh emulated process; one answer per op ("T"/"X" for threads)."""
    k = LinuxKernel(facts=facts or LinuxFacts(), clock=ManualClock())
    p = k.new_process()
    main = p.new_task()
    extra: list[Task] = []
    out: list[Any] = []
    for op in seq:
        if op[0] == "T":
            extra.append(p.new_task())
        elif op[0] == "X":
            extra.pop().exit()
        else:
            out.append(main.syscall(abi.SYS_prctl, *op[1:]))
            continue
        out.append(op[0])
    return out


def answers(seq: list[Op], facts: LinuxFacts | None = None) -> list[int]:
    return [r for r in emulate(seq, facts) if isinstance(r, int)]


# -- futex_hash_get_slots / futex_hash_allocate_default (kernel/fork.c) -----------------------


def test_single_threaded_process_has_no_private_hash() -> None:
    """``futex_hash_get_slots``: no ``mm->futex_phash`` until the first CLONE_THREAD."""
    assert answers([G, G]) == [0, 0]


@pytest.mark.parametrize(
    ("cpus", "expect"),
    [(2, [16] * 10), (8, [16, 16, 16, 16, 32, 32, 32, 32, 32, 32]),
     (16, [16, 16, 16, 16, 32, 32, 32, 32, 64, 64])],
)  # fmt: skip
def test_default_hash_sized_at_each_clone_thread(cpus: int, expect: list[int]) -> None:
    """``futex_hash_allocate_default`` from ``copy_process`` (CLONE_THREAD|CLONE_VM):
    ``roundup_pow_of_two(4 * min(threads before the clone, online CPUs))``, at least 16."""
    facts = LinuxFacts(online_cpus=cpus)
    assert answers([T, G] * 10, facts) == expect
    assert [default_slots(facts, n) for n in range(1, 11)] == expect


def test_default_hash_never_shrinks() -> None:
    """``futex_hash_allocate_default``: ``current_buckets >= buckets`` returns early, so
    threads that exit leave the hash as big as it grew; it grows again only past it."""
    facts = LinuxFacts(online_cpus=16)
    seq = [T] * 5 + [G] + [("X",)] * 5 + [T, G] + [T] * 7 + [G, T, G]
    assert answers(seq, facts) == [32, 32, 32, 64]


def test_default_hash_clamped_to_the_global_hash() -> None:
    """``futex_init`` / ``futex_hash_allocate_default``: the global hash has
    ``roundup_pow_of_two(max(4, 256 * CPUs / nodes))`` buckets a node, and the default
    private hash is ``clamp(..., 16, that)`` — the kernel's clamp tests the upper bound
    first, so a tiny global hash wins over the 16."""
    assert global_hash_slots(LinuxFacts(online_cpus=2)) == 512
    assert global_hash_slots(LinuxFacts(online_cpus=8)) == 2048
    tiny = LinuxFacts(online_cpus=1, numa_nodes=frozenset(range(128)))
    assert global_hash_slots(tiny) == 4
    assert answers([T, G], tiny) == [4]


def test_custom_hash_survives_new_threads_and_can_resize() -> None:
    """``futex_hash_allocate_default``: ``fph->custom`` returns early; SET_SLOTS replaces a
    custom hash with any other size, smaller or bigger (``__futex_pivot_hash``)."""
    seq = [S(4), G, T, T, G, S(2), G, S(1 << 16), G, T, G]
    assert answers(seq) == [0, 4, 4, 0, 2, 0, 65536, 65536]
    assert answers([T, G, S(256), G, T, G]) == [16, 0, 256, 256]


def test_fork_child_starts_without_a_private_hash() -> None:
    """``dup_mm`` -> ``futex_mm_init``: a forked child's new mm has no private hash (even
    when the parent set one); its first thread gets the default."""
    k = LinuxKernel(clock=ManualClock())
    p = k.new_process()
    t = p.new_task()
    assert t.syscall(abi.SYS_prctl, PR, SET, 128) == 0
    child = p.fork()
    c = child.new_task()
    assert c.syscall(abi.SYS_prctl, PR, GET) == 0
    child.new_task()
    assert c.syscall(abi.SYS_prctl, PR, GET) == 16
    assert t.syscall(abi.SYS_prctl, PR, GET) == 128


# -- futex_hash_prctl / futex_hash_allocate ----------------------------------------------------


def test_set_slots_zero_is_the_global_hash_for_good() -> None:
    """``futex_hash_allocate``: "Once we've disabled the global hash there is no way
    back" — a later SET_SLOTS is EBUSY (0 too), a new thread keeps the global hash."""
    assert answers([S(0), G, S(16), S(0), S(2), T, G]) == [0, 0, EBUSY, EBUSY, EBUSY, 0]
    assert answers([T, G, S(0), G, S(16), T, G]) == [16, 0, 0, EBUSY, 0]


@pytest.mark.parametrize("slots", [1, 3, 6, 12, 24, 0xFFFFFFFF, 0x80000001, -2])
def test_set_slots_not_a_power_of_two_is_einval(slots: int) -> None:
    """``futex_hash_allocate``: ``hash_slots == 1 || !is_power_of_2(hash_slots)`` —
    checked before EBUSY (``-2`` is 0xfffffffe as an unsigned int)."""
    assert answers([S(slots), G, S(0), S(slots)]) == [EINVAL, 0, 0, EINVAL]


def test_set_slots_truncates_to_unsigned_int() -> None:
    """``futex_hash_allocate(unsigned int hash_slots, ...)`` gets ``arg3`` (an unsigned
    long): the high half is dropped, so ``1 << 32`` asks for the global hash."""
    assert answers([S((1 << 32) | 8), G, S((1 << 63) | 64), G]) == [0, 8, 0, 64]
    assert answers([S(1 << 32), G, S(16)]) == [0, 0, EBUSY]


@pytest.mark.parametrize("arg4", [1, 2, 1 << 32, 1 << 63, U64])
def test_set_slots_flags_must_be_zero(arg4: int) -> None:
    """``futex_hash_prctl``: ``if (arg4) return -EINVAL`` (all 64 bits, and 6.17 dropped
    FH_FLAG_IMMUTABLE) — before the slot check and before EBUSY."""
    assert answers([S(16, arg4), S(3, arg4), S(0), S(16, arg4), G]) == [
        EINVAL, EINVAL, 0, EINVAL, 0]  # fmt: skip


def test_arg5_is_never_looked_at() -> None:
    """``kernel/sys.c``: ``case PR_FUTEX_HASH: futex_hash_prctl(arg2, arg3, arg4)``;
    GET_SLOTS ignores arg3 and arg4 as well."""
    assert answers([S(8, 0, U64), ("P", PR, GET, 5, 6, 7)]) == [0, 8]


def test_absurd_sizes_are_enomem() -> None:
    """``futex_hash_allocate`` -> ``kvzalloc``: no size above INT_MAX, and the hash takes
    64 bytes a slot plus a 64-byte header, so 2**25 slots and more are ENOMEM (measured
    on the host; 2**24, 1 GiB, succeeds there).  The old hash stays; EBUSY comes first."""
    seq = [S(1 << 25), S(1 << 31), S(-(1 << 31)), G, S(32), S(1 << 30), G, S(1 << 24), G]
    assert answers(seq) == [ENOMEM, ENOMEM, ENOMEM, 0, 0, ENOMEM, 32, 0, 1 << 24]
    assert answers([S(0), S(1 << 25)]) == [0, EBUSY]


@pytest.mark.parametrize("arg2", [0, 3, 4, (1 << 32) | 1, (1 << 32) | 2, U64])
def test_unknown_sub_option_is_einval(arg2: int) -> None:
    """``futex_hash_prctl``: ``switch (arg2)`` on the whole unsigned long; 6.17 removed
    PR_FUTEX_HASH_GET_IMMUTABLE (3)."""
    assert answers([("P", PR, arg2, 16)]) == [EINVAL]


def test_option_is_an_int_and_other_options_are_einval() -> None:
    """``SYSCALL_DEFINE5(prctl, int, option, ...)``: only the low 32 bits name the option;
    the other options are not modelled and answer as an unknown one (EINVAL).  The call
    counts as "prctl"."""
    k = LinuxKernel(clock=ManualClock())
    t = k.new_process().new_task()
    assert t.syscall(abi.SYS_prctl, (1 << 32) | PR, GET) == 0
    for option in (0, 1000, -1, (1 << 32) | 0x7FFFFFFF, 0x7FFFFFFF):
        assert t.syscall(abi.SYS_prctl, option, GET) == EINVAL
    assert t.calls["prctl"] == 6


def test_releases_before_6_17() -> None:
    """Before 6.16 PR_FUTEX_HASH is an unknown option; 6.16 has it with
    CONFIG_FUTEX_PRIVATE_HASH ``depends on BROKEN`` (commit 9a57c3773152): SET_SLOTS is
    EINVAL (``arg4 & ~FH_FLAG_IMMUTABLE`` first, then the disabled allocator), GET_SLOTS
    and GET_IMMUTABLE answer 0, and no thread gets a hash."""
    old = LinuxFacts.for_release("6.15")
    assert answers([G, S(16), ("P", PR, 3)], old) == [EINVAL] * 3
    v616 = LinuxFacts.for_release("6.16")
    seq = [G, T, G, S(16), S(16, 1), S(16, 2), S(0), ("P", PR, 3), ("P", PR, 4)]
    assert answers(seq, v616) == [0, 0, EINVAL, EINVAL, EINVAL, EINVAL, 0, EINVAL]


# -- the effect on futexes: __futex_hash, futex_match, futex_rehash_private --------------------


def _word(p: Process) -> int:
    f = p.mmap(PAGE_SIZE)
    p.store_u32(f, 0)
    p.store_u32(f + 4, 0)  # the node word of a FUTEX2_NUMA futex: node 0
    return f


def _start(t: Task, kind: str, flags: int, f: int) -> PendingWait:
    p = t.process
    if kind == "wait":
        r = t.syscall_nb(abi.SYS_futex_wait, f, 0, ANY, flags, 0, 0)
    elif kind == "waitv":
        arr = p.mmap(PAGE_SIZE)
        p.write(arr, struct.pack("<QQII", 0, f, flags, 0))
        r = t.syscall_nb(abi.SYS_futex_waitv, arr, 1, 0, 0, 0)
    else:
        r = t.syscall_futex_nb(f, LEGACY_WAIT, 0, 0, 0, 0)
    assert isinstance(r, PendingWait)
    return r


def _wake(t: Task, kind: str, flags: int, f: int, n: int = 1) -> int:
    if kind == "legacy":
        return t.syscall_futex(f, LEGACY_WAKE, n, 0, 0, 0)
    return t.syscall(abi.SYS_futex_wake, f, ANY, n, flags)


#: (waiter kind, waiter flags, waker kind, waker flags): NUMA on exactly one side.
PAIRS = [
    ("wait", PRIV32 | NUMA, "legacy", 0),
    ("waitv", PRIV32 | NUMA, "legacy", 0),
    ("wait", PRIV32 | NUMA, "wake", PRIV32),
    ("legacy", 0, "wake", PRIV32 | NUMA),
    ("wait", PRIV32, "wake", PRIV32 | NUMA),
]
#: (prctl args before the waiter's thread, after it): how the process hashes.
HASHES = {
    "default": ([], []),
    "global-first": ([(PR, SET, 0)], []),
    "custom": ([(PR, SET, 16)], []),
    "global-later": ([], [(PR, SET, 0)]),
}


def emulate_meet(pre: list[Op], post: list[Op], pair: tuple[Any, ...],
                 facts: LinuxFacts | None = None) -> dict[str, Any]:  # fmt: skip
    """A waiter thread and a waker (the main thread) with NUMA on one side only."""
    wk, wf, kk, kf = pair
    k = LinuxKernel(facts=facts or LinuxFacts(), clock=ManualClock())
    p = k.new_process()
    main = p.new_task()
    f = _word(p)
    out: dict[str, Any] = {"pre": [main.syscall(abi.SYS_prctl, *a) for a in pre]}
    pw = _start(p.new_task(), wk, wf, f)
    out["post"] = [main.syscall(abi.SYS_prctl, *a) for a in post]
    out["slots"] = main.syscall(abi.SYS_prctl, PR, GET)
    out["met"] = _wake(main, kk, kf, f)
    out["confirm"] = None if out["met"] else _wake(main, "wake" if wk == "waitv" else wk, wf, f)
    out["waiter"] = pw.result() if pw.done() else "blocked"
    return out


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}{p[1]:#x}-{p[2]}{p[3]:#x}")
@pytest.mark.parametrize("hashing", list(HASHES))
def test_numa_and_plain_private_futexes_meet_without_a_private_hash(
    hashing: str, pair: tuple[Any, ...]
) -> None:
    """``__futex_hash``: a key without a node goes to the private hash if the process has
    one with slots, else to the global table — where the FUTEX2_NUMA key of the same
    address is, and ``futex_match`` ignores the node: they meet (one node)."""
    pre, post = HASHES[hashing]
    got = emulate_meet(pre, post, pair)
    meet = hashing.startswith("global")
    assert got["met"] == int(meet)
    assert got["confirm"] == (None if meet else 1)
    assert got["waiter"] == 0


def test_numa_meets_plain_on_6_16_but_not_on_several_nodes() -> None:
    """6.16 never allocates a private hash (``futex_hash_allocate_default`` is a stub), so
    NUMA and plain private futexes always meet there.  With several nodes a plain key
    goes to the node its hash picks, which the emulator cannot know: kept apart."""
    pair = PAIRS[0]
    assert emulate_meet([], [], pair, LinuxFacts.for_release("6.16"))["met"] == 1
    two = LinuxFacts(numa_nodes=frozenset({0, 1}))
    assert emulate_meet([(PR, SET, 0)], [], pair, two)["met"] == 0


def emulate_order(first: str, second: str, waker: str) -> dict[str, Any]:
    """Two waiters at one address, plain and NUMA, queued in the given order; the process
    goes global (SET_SLOTS(0)); one wake, then the rest."""
    k = LinuxKernel(clock=ManualClock())
    p = k.new_process()
    main = p.new_task()
    f = _word(p)
    kinds = {"plain": ("legacy", 0), "numa": ("wait", PRIV32 | NUMA)}
    pws = {name: _start(p.new_task(), *kinds[name], f) for name in (first, second)}
    out: dict[str, Any] = {"set": main.syscall(abi.SYS_prctl, PR, SET, 0)}
    out["n"] = _wake(main, *kinds[waker], f)
    out["first"] = [name for name, pw in pws.items() if pw.done()]
    out["rest"] = _wake(main, *kinds[waker], f, 5)
    assert all(pw.result() == 0 for pw in pws.values())
    p.futex.check_invariants()
    return out


@pytest.mark.parametrize(("first", "second"), [("plain", "numa"), ("numa", "plain")])
@pytest.mark.parametrize("waker", ["plain", "numa"])
def test_going_global_queues_plain_waiters_behind_numa_ones(
    first: str, second: str, waker: str
) -> None:
    """``futex_rehash_private`` into a zero-slot hash: each queued plain private waiter is
    re-added (``plist_add``) to the global bucket, behind the FUTEX2_NUMA waiters that
    were there already — the NUMA waiter is woken first whoever waited first (measured)."""
    got = emulate_order(first, second, waker)
    assert got == {"set": 0, "n": 1, "first": ["numa"], "rest": 1}


# -- differential: the host kernel -------------------------------------------------------------

HOST_SCRIPT = r"""
import ctypes, json, os, struct, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
sc = libc.syscall
sc.restype = ctypes.c_long
sc.argtypes = [ctypes.c_long] * 7
M = (1 << 64) - 1

def call(nr, *args):
    a = [(x & M) - (1 << 64) if (x & M) >> 63 else x & M for x in args]
    r = sc(nr, *(a + [0] * (6 - len(a))))
    return r if r >= 0 else -ctypes.get_errno()

def in_child(fn, arg):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = fn(arg)
        except BaseException as e:
            out = {"error": repr(e)}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 1 << 16):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)

def prctl_seq(seq):
    stop, threads, out = threading.Event(), [], []
    for op in seq:
        if op[0] == "T":
            threads.append(threading.Thread(target=stop.wait))
            threads[-1].start()
            out.append("T")
        else:
            out.append(call(157, *op[1:]))
    stop.set()
    for t in threads:
        t.join()
    return out

buf = ctypes.create_string_buffer(4096)
F = (ctypes.addressof(buf) + 63) & ~63
WV = F + 64
TS = F + 128

def deadline():
    t = time.clock_gettime(time.CLOCK_MONOTONIC) + 5
    ctypes.memmove(TS, struct.pack("<qq", int(t), int(t % 1 * 1e9)), 16)
    return TS

def blocked_in(tid, nr, arg):
    end = time.monotonic() + 5
    while time.monotonic() < end:
        try:
            with open(f"/proc/self/task/{tid}/syscall") as f:
                fields = f.read().split()
        except OSError:
            time.sleep(0.05)
            return
        if fields[0] == str(nr) and int(fields[1], 16) == arg:
            time.sleep(0.005)
            return
        time.sleep(0.001)

def wait(kind, flags, into, name):
    into.setdefault("tids", {})[name] = threading.get_native_id()
    if kind == "wait":
        r = call(455, F, 0, 0xFFFFFFFF, flags, deadline(), 1)
    elif kind == "waitv":
        ctypes.memmove(WV, struct.pack("<QQII", 0, F, flags, 0), 24)
        r = call(449, WV, 1, 0, deadline(), 1)
    else:
        ctypes.memmove(TS, struct.pack("<qq", 5, 0), 16)
        r = call(202, F, 0x80, 0, TS, 0, 0)
    into.setdefault("done", []).append([name, r])

def start(kind, flags, into, name):
    t = threading.Thread(target=wait, args=(kind, flags, into, name))
    t.start()
    while name not in into.get("tids", {}):
        time.sleep(0.0005)
    nr, arg = {"wait": (455, F), "waitv": (449, WV)}.get(kind, (202, F))
    blocked_in(into["tids"][name], nr, arg)
    return t

def wake(kind, flags, n=1):
    if kind == "legacy":
        return call(202, F, 0x81, n, 0, 0, 0)
    return call(454, F, 0xFFFFFFFF, n, flags)

def meet(case):
    pre, post, (wk, wf, kk, kf) = case
    ctypes.memmove(F, bytes(8), 8)
    st = {}
    out = {"pre": [call(157, *a) for a in pre]}
    t = start(wk, wf, st, "w")
    out["post"] = [call(157, *a) for a in post]
    out["slots"] = call(157, 78, 2)
    out["met"] = wake(kk, kf)
    out["confirm"] = None if out["met"] else wake("wake" if wk == "waitv" else wk, wf)
    t.join()
    out["waiter"] = st["done"][0][1]
    return out

def order(case):
    (first, second, waker), kinds = case, {"plain": ("legacy", 0), "numa": ("wait", 0x86)}
    ctypes.memmove(F, bytes(8), 8)
    st = {}
    ts = [start(*kinds[name], st, name) for name in (first, second)]
    out = {"set": call(157, 78, 1, 0), "n": wake(*kinds[waker])}
    end = time.monotonic() + 5
    while not st.get("done") and time.monotonic() < end:
        time.sleep(0.001)
    out["first"] = [name for name, r in st.get("done", [])]
    out["rest"] = wake(*kinds[waker], 5)
    for t in ts:
        t.join()
    return out

job = json.load(sys.stdin)
json.dump({
    "prctl": [in_child(prctl_seq, s) for s in job["prctl"]],
    "meet": [in_child(meet, c) for c in job["meet"]],
    "order": [in_child(order, c) for c in job["order"]],
}, sys.stdout)
"""


def _host_skip() -> str | None:
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return f"host is {sys.platform}/{platform.machine()}, not Linux x86-64 (prctl 157)"
    if not probe().facts.futex_hash:
        return "host kernel has no prctl(PR_FUTEX_HASH) (Linux 6.16+)"
    return None


def _numa_skip() -> str | None:
    facts = probe().facts
    if not facts.futex2_numa:
        return "host kernel has no FUTEX2_NUMA (Linux 6.16+)"
    if len(facts.numa_nodes) != 1:
        return "host has several NUMA nodes: a plain key's node is picked by its hash"
    return None


needs_host = pytest.mark.skipif(_host_skip() is not None, reason=str(_host_skip()))


def _generated(n: int = 40, seed: int = 0x5EED) -> list[list[Op]]:
    """Seeded sequences over every check: slots of each class, flags, arg5, sub-options,
    option truncation, threads (a few; sizes up to 2**16 or past the ENOMEM bound only)."""
    rng = random.Random(seed)
    slots = [0, 1, 2, 3, 4, 6, 16, 32, 1024, 1 << 16, 1 << 25, 1 << 31, (1 << 32) | 16,
             1 << 32, U64, -2, (1 << 63) | 8]  # fmt: skip
    seqs = []
    for _ in range(n):
        seq: list[Op] = []
        for _ in range(rng.randint(1, 9)):
            roll = rng.random()
            if roll < 0.15 and seq.count(T) < 4:
                seq.append(T)
            elif roll < 0.45:
                seq.append(("P", PR, GET, rng.choice([0, rng.getrandbits(64)])))
            elif roll < 0.9:
                n_slots = rng.choice([*slots, 1 << rng.randint(1, 16)])
                arg4 = rng.choice([0, 0, 0, 0, 1, 1 << 32, 1 << 63])
                seq.append(S(n_slots, arg4, rng.choice([0, rng.getrandbits(64)])))
            else:
                option = rng.choice([PR, (1 << 32) | PR, 0, 1000, U64])
                seq.append(("P", option, rng.choice([0, 1, 2, 3, 4, (1 << 32) | 2]), 16))
        seqs.append(seq)
    return seqs


TABLE: dict[str, list[Op]] = {
    "get-single": [G, ("P", PR, GET, 1, 2, 3)],
    "default-at-first-thread": [G, T, G, T, T, T, T, G],
    "global-for-good": [S(0), G, S(16), S(0), T, G],
    "threads-then-global": [T, G, S(0), G, S(8), T, G],
    "custom-resize": [S(16), G, T, G, S(2), G, S(4), G, S(0), G, S(16), G],
    "custom-before-thread": [T, S(32), G, T, G],
    "einval-slots": [S(1), S(3), S(6), S(-2), S(U64), S(2), G],
    "enomem": [S(1 << 25), G, S(1 << 31), S(-(1 << 31)), S(1 << 32), G],
    "truncation": [S((1 << 32) | 8), G, S((1 << 63) | 4), G, S(1 << 32), S(4)],
    "flags": [S(16, 1), S(16, 1 << 32), S(3, 1), S(16, 0, 1), G, S(2, 0, U64), G],
    "after-global-order": [S(0), S(16, 1), S(3), S(1 << 25), S(1), G],
    "sub-options": [("P", PR, 3), ("P", PR, 0), ("P", PR, 4), ("P", PR, (1 << 32) | 2)],
    "option-truncated": [("P", (1 << 32) | PR, GET), ("P", PR, GET, 5, 6, 7), T, G],
    "other-options": [("P", 0), ("P", 1000), ("P", -1), ("P", (1 << 32) | 0x7FFFFFFF)],
}
GENERATED = _generated()
MEET = [(HASHES[h][0], HASHES[h][1], pair) for h in HASHES for pair in PAIRS]
ORDER = [(a, b, w) for a, b in (("plain", "numa"), ("numa", "plain")) for w in ("plain", "numa")]


@functools.cache
def host_results() -> dict[str, Any]:
    """Every host sequence, each in a fresh forked process of one helper subprocess."""
    numa = _numa_skip() is None
    job = {"prctl": [*TABLE.values(), *GENERATED], "meet": MEET if numa else [],
           "order": ORDER if numa else []}  # fmt: skip
    run = subprocess.run([sys.executable, "-c", HOST_SCRIPT], input=json.dumps(job),
                         capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def host_facts() -> LinuxFacts:
    return probe().facts


@needs_host
@pytest.mark.parametrize("name", list(TABLE))
def test_differential_table(name: str) -> None:
    """``futex_hash_prctl`` and friends, one hand-written sequence per check: the host's
    answers equal the emulator's (a fresh process on each side)."""
    got = host_results()["prctl"][list(TABLE).index(name)]
    assert got == emulate(TABLE[name], host_facts())


@needs_host
def test_differential_generated() -> None:
    """``futex_hash_prctl``, ``futex_hash_allocate``, ``futex_hash_allocate_default``:
    seeded random sequences, host against emulator."""
    got = host_results()["prctl"][len(TABLE) :]
    for seq, host in zip(GENERATED, got, strict=True):
        assert host == emulate(seq, host_facts()), seq


@needs_host
@pytest.mark.skipif(_numa_skip() is not None, reason=str(_numa_skip()))
def test_differential_numa_meets_plain() -> None:
    """``__futex_hash`` / ``futex_match``: whether a FUTEX2_NUMA|PRIVATE futex and a plain
    private one meet, for each way the process hashes, host against emulator."""
    for case, host in zip(MEET, host_results()["meet"], strict=True):
        assert host == emulate_meet(case[0], case[1], case[2], host_facts()), case


@needs_host
@pytest.mark.skipif(_numa_skip() is not None, reason=str(_numa_skip()))
def test_differential_going_global_order() -> None:
    """``futex_rehash_private``: after SET_SLOTS(0) the NUMA waiter is woken first, whoever
    waited first — on the host as in the emulator."""
    for case, host in zip(ORDER, host_results()["order"], strict=True):
        assert host == emulate_order(*case), case
