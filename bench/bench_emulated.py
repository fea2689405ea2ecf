#!/usr/bin/env python3
"""Benchmark of the emulated futex kernel (``futex.linux`` over ``futex.kernel``).

Run from the repository root::

    python bench/bench_emulated.py            # full run, under a minute on an idle machine
    python bench/bench_emulated.py --quick    # ~20 s
    python bench/bench_emulated.py --plain --json figures.json
    # --repeats N: samples per figure; --gc: keep the cyclic GC on while timing

What it measures, all in one run (every ratio is against a baseline measured in the
same run, interleaved with it where the two can coexist):

1. the cost per call of FUTEX_WAKE with no waiters and of FUTEX_WAIT returning EAGAIN
   (private, and shared on MAP_PRIVATE / MAP_SHARED pages) through
   ``Task.syscall_futex``, against the same calls on the host kernel through ctypes;
2. wake(1) from a queue of N waiters on one address (per wake, over a batch), through
   the syscall layer (tasks parked with ``syscall_futex_nb``) and the core layer
   (``Waiter`` + ``FutexManager.wait_prepare``);
3. FUTEX_CMP_REQUEUE of k waiters, per call and per waiter moved;
4. the cost of a WAKE / WAIT-EAGAIN call with 100,000 waiters parked on *other*
   addresses against none (the per-key queues should keep it flat);
5. bytes per queued waiter (tracemalloc), core and syscall layers;
6. PI futexes: uncontended FUTEX_LOCK_PI / TRYLOCK_PI / UNLOCK_PI through the kernel
   (emulated vs host, with the real thread's own tid in the host's word); UNLOCK_PI handing
   the lock to a waiter parked cooperatively (``syscall_futex_nb``, emulated only); and a
   two-thread PI ping-pong (one thread blocked in LOCK_PI, the other's UNLOCK_PI hands the
   lock over, roles swap) on the host and on the emulated kernel, per round trip.

Timing: ``time.perf_counter_ns`` around a batch of calls, divided by the batch size;
each figure is sampled several times after a warm-up, and the median (and min) per call
is reported.  Figures that are compared are sampled round-robin and their ratio is the
median of the per-round ratios.  A sample during which the thread was descheduled
(thread CPU time < 90% of wall time: the machine is shared) is retried.  The cyclic GC
is disabled inside timed regions, as ``timeit`` does.  The PI ping-pong's two threads are
pinned to one CPU and take turns on it, so there the share is of the process's CPU time.
"""

from __future__ import annotations

import ctypes
import gc
import os
import resource
import statistics
import sys
import threading
import time
import tracemalloc
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from _report import Table, emit, ns, parse_args, ratio
from _timing import (
    RETRIES,
    SAMPLING,
    BenchError,
    Runner,
    end_meta,
    expect,
    interleaved,
    log,
    paired_ratio,
    start_meta,
    status_line,
)

from futex import _hostfutex
from futex._hostfutex import (
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    MAP_SHARED,
    gettid,
    host_futex,
    host_mmap,
    host_munmap,
)
from futex.kernel import MATCH_ANY, ManualClock, Waiter
from futex.linux import LinuxKernel, PendingWait, Process, Task, abi

# -- futex(2) op words -----------------------------------------------------------------------

PRIV = abi.FUTEX_PRIVATE_FLAG
WAIT = abi.FUTEX_WAIT
WAKE = abi.FUTEX_WAKE
WAIT_PRIVATE = WAIT | PRIV
WAKE_PRIVATE = WAKE | PRIV
CMP_REQUEUE_PRIVATE = abi.FUTEX_CMP_REQUEUE | PRIV
LOCK_PI_PRIVATE = abi.FUTEX_LOCK_PI | PRIV
UNLOCK_PI_PRIVATE = abi.FUTEX_UNLOCK_PI | PRIV
TRYLOCK_PI_PRIVATE = abi.FUTEX_TRYLOCK_PI | PRIV
FUTEX_WAITERS = abi.FUTEX_WAITERS
INT_MAX = 0x7FFFFFFF
EAGAIN = -abi.EAGAIN
EINVAL = -abi.EINVAL
EWOULDBLOCK = -abi.EWOULDBLOCK
ENOSYS = -abi.ENOSYS
PROT_RW = 0x3
PAGE = 4096

#: A six-register futex call: ``f(uaddr, op, val, utime, uaddr2, val3) -> int``.
FutexCall = Callable[[int, int, int, int, int, int], int]
#: A timed body: runs a batch of operations.
# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    quick: bool
    repeats: int  # samples per figure
    call_n: int  # calls per sample (sections 1 and 4)
    wake_sizes: tuple[int, ...]  # section 2 queue lengths
    wake_reps: int  # wakes per sample (section 2)
    requeue_ks: tuple[int, ...]  # section 3
    requeue_moves: int  # waiters moved per sample (section 3)
    unrelated: int  # section 4 waiters on other addresses
    mem_n: int  # section 5 waiters
    pi_handoffs: int  # section 6: cooperative hand-offs per sample
    pi_round_trips: int  # section 6: ping-pong round trips per sample


FULL = Config(
    quick=False,
    repeats=21,
    call_n=10_000,
    wake_sizes=(10, 1_000, 100_000),
    wake_reps=1_000,
    requeue_ks=(1, 100, 10_000),
    requeue_moves=40_000,
    unrelated=100_000,
    mem_n=10_000,
    pi_handoffs=2_000,
    pi_round_trips=1_000,
)
QUICK = Config(
    quick=True,
    repeats=7,
    call_n=2_000,
    wake_sizes=(10, 1_000, 100_000),
    wake_reps=200,
    requeue_ks=(1, 100, 10_000),
    requeue_moves=4_000,
    unrelated=100_000,
    mem_n=10_000,
    pi_handoffs=500,
    pi_round_trips=300,
)

def call_loop(f: FutexCall, args: tuple[int, int, int, int, int, int], n: int) -> Runner:
    """A runner making ``n`` identical six-argument calls."""
    a0, a1, a2, a3, a4, a5 = args
    rng = range(n)

    def run() -> None:
        for _ in rng:
            f(a0, a1, a2, a3, a4, a5)

    return run


def core_wake_loop(p: Process, uaddr: int, n: int) -> Runner:
    """A runner making ``n`` core-level private wake(1) calls on ``uaddr``."""
    wake, space = p.futex.wake, p.space
    rng = range(n)

    def run() -> None:
        for _ in rng:
            wake(space, uaddr, True, MATCH_ANY, 1)

    return run


def new_process() -> tuple[LinuxKernel, Process, Task]:
    k = LinuxKernel(clock=ManualClock())
    p = k.new_process()
    return k, p, p.new_task()


def park(task: Task, uaddr: int, op: int, val: int = 0) -> PendingWait:
    """Block ``task`` cooperatively in FUTEX_WAIT on ``uaddr``."""
    r = task.syscall_futex_nb(uaddr, op, val, 0, 0, 0)
    if not isinstance(r, PendingWait):
        raise BenchError(f"wait on {uaddr:#x} returned {r} instead of blocking")
    return r


def queued_at(p: Process, uaddr: int, private: bool = True) -> int:
    """Waiters queued on the futex at ``uaddr`` (untimed check)."""
    m = p.futex
    key = m.key(p.space, uaddr, private)
    q = m.bucket_of(key).queues.get(key)
    return 0 if q is None else q.count


def collect() -> None:
    gc.collect()


# -- 1. call cost, emulated vs real ----------------------------------------------------------


def _host_noop(uaddr: int, op: int, val: int, utime: int, uaddr2: int, val3: int) -> int:
    return 0


def bench_call_cost(cfg: Config) -> list[dict[str, Any]]:
    log("1. call cost: emulated vs host kernel")
    _, p, t = new_process()
    e_priv = p.mmap(PAGE)
    e_shm = p.mmap(PAGE, shared=True)
    emu: FutexCall = t.syscall_futex
    host = _hostfutex.available()
    r_priv = r_shm = 0
    if host:
        r_priv = host_mmap(0, PAGE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS)
        r_shm = host_mmap(0, PAGE, PROT_RW, MAP_SHARED | MAP_ANONYMOUS)
        for a in (r_priv, r_shm):  # fault the pages in; the word is 0
            ctypes.c_uint32.from_address(a).value = 0

    # (label, op, val, expected result, emulated address, real address)
    cases = [
        ("WAKE_PRIVATE, no waiters", WAKE_PRIVATE, 1, 0, e_priv, r_priv),
        ("WAIT_PRIVATE -> EAGAIN", WAIT_PRIVATE, 1, EAGAIN, e_priv, r_priv),
        ("WAKE shared, MAP_PRIVATE page", WAKE, 1, 0, e_priv, r_priv),
        ("WAIT shared -> EAGAIN, MAP_PRIVATE page", WAIT, 1, EAGAIN, e_priv, r_priv),
        ("WAKE shared, MAP_SHARED page", WAKE, 1, 0, e_shm, r_shm),
        ("WAIT shared -> EAGAIN, MAP_SHARED page", WAIT, 1, EAGAIN, e_shm, r_shm),
    ]
    n = cfg.call_n
    runners: dict[str, tuple[Runner, int]] = {}
    for label, op, val, want, ea, ra in cases:
        args = (ea, op, val, 0, 0, 0)
        expect(emu(*args), want, f"emulated {label}")
        runners["emu " + label] = (call_loop(emu, args, n), n)
        if host:
            rargs = (ra, op, val, 0, 0, 0)
            expect(host_futex(*rargs), want, f"host {label}")
            runners["real " + label] = (call_loop(host_futex, rargs, n), n)
    runners["ref noop"] = (call_loop(_host_noop, (e_priv, 0, 0, 0, 0, 0), n), n)
    if host:
        # FUTEX_FD is ENOSYS since 2.6.26: the floor of ctypes + syscall entry/exit.
        enosys = (r_priv, abi.FUTEX_FD | PRIV, 0, 0, 0, 0)
        expect(host_futex(*enosys), ENOSYS, "host FUTEX_FD")
        runners["ref enosys"] = (call_loop(host_futex, enosys, n), n)
    stats = interleaved(runners, cfg.repeats)

    rows: list[dict[str, Any]] = []
    for label, *_ in cases:
        e = stats["emu " + label]
        r = stats.get("real " + label)
        rows.append(
            {
                "call": label,
                "emulated": e.as_json(),
                "real": r.as_json() if r else None,
                "ratio": paired_ratio(e, r) if r else None,
                "ratio_of_medians": e.median / r.median if r else None,
                "ratio_of_mins": e.min / r.min if r else None,
            }
        )
    rows.append(
        {
            "call": "reference: Python no-op function, 6 args",
            "emulated": None,
            "real": stats["ref noop"].as_json(),
            "ratio": None,
            "ratio_of_medians": None,
            "ratio_of_mins": None,
        }
    )
    if host:
        rows.append(
            {
                "call": "reference: host_futex(FUTEX_FD) -> ENOSYS (floor)",
                "emulated": None,
                "real": stats["ref enosys"].as_json(),
                "ratio": None,
                "ratio_of_medians": None,
                "ratio_of_mins": None,
            }
        )
    return rows


# -- 2. wake(1) from a queue of N ------------------------------------------------------------


def bench_wake_queue(cfg: Config) -> list[dict[str, Any]]:
    log("2. wake(1) from a queue of N waiters")
    _, p, waker = new_process()
    a = p.mmap(PAGE)
    reps = cfg.wake_reps
    most = max(cfg.wake_sizes) + reps
    log(f"   creating {most:,} tasks")
    pool = [p.new_task() for _ in range(most)]
    rows: list[dict[str, Any]] = []
    m, space = p.futex, p.space
    for n in cfg.wake_sizes:
        total = n + reps

        # syscall layer: tasks blocked through syscall_futex_nb, woken by FUTEX_WAKE_PRIVATE
        log(f"   N={n:,}: parking {total:,} tasks (syscall_futex_nb)")
        parked: deque[Task] = deque()
        for task in pool[:total]:
            park(task, a, WAIT_PRIVATE)
            parked.append(task)
        expect(queued_at(p, a), total, "queue length")

        def refill_tasks(_name: str, parked: deque[Task] = parked) -> None:
            for _ in range(reps):
                task = parked.popleft()
                if task.blocked is not None:
                    raise BenchError("a task meant to be woken is still blocked")
                park(task, a, WAIT_PRIVATE)
                parked.append(task)

        sc: FutexCall = waker.syscall_futex
        sys_stat = interleaved(
            {"sys": (call_loop(sc, (a, WAKE_PRIVATE, 1, 0, 0, 0), reps), reps)},
            cfg.repeats,
            between=refill_tasks,
        )["sys"]
        expect(queued_at(p, a), total, "queue length after the samples")
        expect(sc(a, WAKE_PRIVATE, INT_MAX, 0, 0, 0), total, "drain")
        del parked

        # core layer: bare Waiters (no notify), woken by FutexManager.wake
        log(f"   N={n:,}: parking {total:,} Waiters (FutexManager.wait_prepare)")
        waiters: deque[Waiter] = deque(Waiter() for _ in range(total))
        for w in waiters:
            m.wait_prepare(w, space, a, True, 0)

        def refill_waiters(_name: str, waiters: deque[Waiter] = waiters) -> None:
            for _ in range(reps):
                w = waiters.popleft()
                if not w.woken or w.queued:
                    raise BenchError("a waiter meant to be woken is still queued")
                m.wait_prepare(w, space, a, True, 0)
                waiters.append(w)

        core_run = core_wake_loop(p, a, reps)
        core_stat = interleaved({"core": (core_run, reps)}, cfg.repeats, refill_waiters)["core"]
        expect(queued_at(p, a), total, "queue length after the samples")
        expect(m.wake(space, a, True, MATCH_ANY, INT_MAX), total, "drain")
        del waiters

        queue = f"{n:,}..{total:,}"
        rows.append(
            {
                "layer": "syscall",
                "n": n,
                "queue_during_batch": queue,
                "batch": reps,
                "per_wake": sys_stat.as_json(),
            }
        )
        rows.append(
            {
                "layer": "core",
                "n": n,
                "queue_during_batch": queue,
                "batch": reps,
                "per_wake": core_stat.as_json(),
            }
        )
        collect()
    rows.sort(key=lambda r: (r["layer"] != "syscall", r["n"]))
    p.futex.check_invariants()
    for task in pool:
        if task.blocked is not None:
            raise BenchError("a task is still blocked after the drain")
    return rows


# -- 3. requeue ------------------------------------------------------------------------------


def bench_requeue(cfg: Config) -> list[dict[str, Any]]:
    log("3. FUTEX_CMP_REQUEUE_PRIVATE of k waiters")
    _, p, caller = new_process()
    a = p.mmap(PAGE)
    b = a + 256  # another word, another bucket
    if p.futex.bucket_of(a) is p.futex.bucket_of(b):
        raise BenchError("the two requeue words share a bucket")
    pool = [p.new_task() for _ in range(max(cfg.requeue_ks))]
    sc: FutexCall = caller.syscall_futex
    rows: list[dict[str, Any]] = []
    for k in cfg.requeue_ks:
        for task in pool[:k]:
            park(task, a, WAIT_PRIVATE)
        # A -> B then B -> A: every call moves all k waiters; nr_wake 0, nr_requeue k,
        # cmpval 0 (the word's value).
        expect(sc(a, CMP_REQUEUE_PRIVATE, 0, k, b, 0), k, "requeue a->b")
        expect(sc(b, CMP_REQUEUE_PRIVATE, 0, k, a, 0), k, "requeue b->a")
        pairs = max(1, cfg.requeue_moves // (2 * k))

        def run(k: int = k, pairs: int = pairs) -> None:
            for _ in range(pairs):
                sc(a, CMP_REQUEUE_PRIVATE, 0, k, b, 0)
                sc(b, CMP_REQUEUE_PRIVATE, 0, k, a, 0)

        st = interleaved({"rq": (run, 2 * pairs)}, cfg.repeats)["rq"]
        expect(queued_at(p, a), k, "waiters back on the first word")
        expect(sc(a, WAKE_PRIVATE, INT_MAX, 0, 0, 0), k, "drain")
        rows.append(
            {
                "k": k,
                "calls_per_sample": 2 * pairs,
                "per_call": st.as_json(),
                "per_waiter_median_ns": st.median / k,
                "per_waiter_min_ns": st.min / k,
            }
        )
    p.futex.check_invariants()
    return rows


# -- 4. unrelated waiters --------------------------------------------------------------------


@dataclass
class Setup:
    """A process where the measured word lives, optionally loaded with other waiters."""

    kernel: LinuxKernel
    process: Process
    task: Task
    uaddr: int  # the measured word (nobody waits on it)
    private: bool
    tasks: list[Task] = field(default_factory=list)


def _setup_base(shared: bool) -> Setup:
    k, p, t = new_process()
    # The measured word comes from the first mapping of every setup, so it is the same
    # address (and bucket index) in the loaded and the empty process.
    uaddr = p.mmap(PAGE, shared=shared) + 64
    return Setup(k, p, t, uaddr, private=not shared)


def _park_all(s: Setup, addrs: Sequence[int]) -> None:
    op = WAIT_PRIVATE if s.private else WAIT
    p = s.process
    s.tasks = [p.new_task() for _ in range(len(addrs))]
    for task, addr in zip(s.tasks, addrs, strict=True):
        park(task, addr, op)


def _same_bucket_addrs(s: Setup, n: int) -> list[int]:
    """``n`` distinct word addresses in a fresh private mapping whose keys hash to the
    bucket of the measured word."""
    m = s.process.futex
    target = m.bucket_of(m.key(s.process.space, s.uaddr, True))
    size = m.private.size
    per_page = max(1, (PAGE // 4) // size)
    pages = -(-n // per_page) + 2
    length = pages * PAGE * max(1, size // (PAGE // 4)) + PAGE
    base = s.process.mmap(length)
    addrs: list[int] = []
    page = base
    fold = m.private.hash_fn
    while len(addrs) < n:
        if page >= base + length:
            raise BenchError("ran out of pages looking for same-bucket words")
        # Within a page only the (addr >> 2) term of fold_hash moves, one per word; a
        # different hash_fn falls back to trying every word of the page.
        first = (target.index - fold(page)) % size
        cands = [page + 4 * w for w in range(first, PAGE // 4, size)]
        if not cands or any(m.private.bucket_for(c) is not target for c in cands):
            cands = [
                page + 4 * w
                for w in range(PAGE // 4)
                if m.private.bucket_for(page + 4 * w) is target
            ]
        addrs.extend(cands[: n - len(addrs)])
        page += PAGE
    return addrs


def _scenario(name: str, n: int) -> Setup:
    if name == "private, spread":
        s = _setup_base(shared=False)
        region = s.process.mmap(n * 4)
        _park_all(s, range(region, region + 4 * n, 4))
    elif name == "private, same bucket, distinct words":
        s = _setup_base(shared=False)
        _park_all(s, _same_bucket_addrs(s, n))
    elif name == "private, same bucket, one word":
        s = _setup_base(shared=False)
        other = _same_bucket_addrs(s, 1)[0]
        _park_all(s, [other] * n)
    elif name == "shared (MAP_SHARED), spread":
        s = _setup_base(shared=True)
        region = s.process.mmap(n * 4, shared=True)
        _park_all(s, range(region, region + 4 * n, 4))
    else:
        raise ValueError(name)
    stats = s.process.futex.stats()
    expect(stats.queued, n, f"{name}: waiters queued")
    expect(queued_at(s.process, s.uaddr, s.private), 0, f"{name}: measured word's queue")
    return s


SCENARIOS = (
    "private, spread",
    "private, same bucket, distinct words",
    "private, same bucket, one word",
    "shared (MAP_SHARED), spread",
)


def bench_unrelated(cfg: Config) -> list[dict[str, Any]]:
    log(f"4. call cost with {cfg.unrelated:,} waiters on other addresses vs none")
    rows: list[dict[str, Any]] = []
    n = cfg.call_n
    for name in SCENARIOS:
        log(f"   {name}: parking {cfg.unrelated:,} tasks (syscall_futex_nb)")
        loaded = _scenario(name, cfg.unrelated)
        empty = _setup_base(shared=not loaded.private)
        expect(empty.uaddr, loaded.uaddr, "measured address")
        info = loaded.process.futex.stats()
        wake_op = WAKE_PRIVATE if loaded.private else WAKE
        wait_op = WAIT_PRIVATE if loaded.private else WAIT
        runners: dict[str, tuple[Runner, int]] = {}
        for tag, s in (("none", empty), ("loaded", loaded)):
            f: FutexCall = s.task.syscall_futex
            wake_args = (s.uaddr, wake_op, 1, 0, 0, 0)
            wait_args = (s.uaddr, wait_op, 1, 0, 0, 0)
            expect(f(*wake_args), 0, f"{name}: WAKE")
            expect(f(*wait_args), EAGAIN, f"{name}: WAIT")
            runners[f"WAKE {tag}"] = (call_loop(f, wake_args, n), n)
            runners[f"WAIT {tag}"] = (call_loop(f, wait_args, n), n)
        collect()
        stats = interleaved(runners, cfg.repeats)
        for call in ("WAKE", "WAIT"):
            none, full = stats[f"{call} none"], stats[f"{call} loaded"]
            rows.append(
                {
                    "scenario": name,
                    "call": "WAKE, no waiters" if call == "WAKE" else "WAIT -> EAGAIN",
                    "private": loaded.private,
                    "unrelated_waiters": cfg.unrelated,
                    "layer": "syscall_futex_nb (Task + PendingWait)",
                    "buckets_used": info.buckets_used,
                    "busiest_bucket": info.busiest_bucket,
                    "none": none.as_json(),
                    "loaded": full.as_json(),
                    "ratio": paired_ratio(full, none),
                    "ratio_of_medians": full.median / none.median,
                    "ratio_of_mins": full.min / none.min,
                }
            )
        del loaded, empty, runners, stats
        collect()
    return rows


# -- 5. memory -------------------------------------------------------------------------------


def _traced(run: Callable[[], None]) -> tuple[int, tracemalloc.Snapshot, tracemalloc.Snapshot]:
    collect()
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot()
        base = tracemalloc.get_traced_memory()[0]
        run()
        grown = tracemalloc.get_traced_memory()[0] - base
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return grown, before, after


def _mem_core(n: int, distinct: bool) -> int:
    """Bytes to park ``n`` bare Waiters with ``FutexManager.wait_prepare``."""
    _, p, _ = new_process()
    a = p.mmap(n * 4)
    addrs = [a + 4 * i for i in range(n)] if distinct else [a] * n
    m, space = p.futex, p.space
    keep: list[Waiter | None] = [None] * n

    def core() -> None:
        for i, addr in enumerate(addrs):
            w = Waiter()
            m.wait_prepare(w, space, addr, True, 0)
            keep[i] = w

    grown, _, _ = _traced(core)
    expect(m.stats().queued, n, "core waiters queued")
    return grown


def _mem_syscall(n: int, distinct: bool) -> tuple[int, tracemalloc.Snapshot, tracemalloc.Snapshot]:
    """Bytes to park ``n`` tasks with ``syscall_futex_nb`` (the tasks exist beforehand)."""
    _, p, _ = new_process()
    a = p.mmap(n * 4)
    addrs = [a + 4 * i for i in range(n)] if distinct else [a] * n
    tasks = [p.new_task() for _ in range(n)]
    for task, addr in zip(tasks, addrs, strict=True):  # the calls Counter gets "WAIT"
        expect(task.syscall_futex(addr, WAIT_PRIVATE, 1, 0, 0, 0), EAGAIN, "warm-up")

    def sysc() -> None:
        for task, addr in zip(tasks, addrs, strict=True):
            park(task, addr, WAIT_PRIVATE)

    out = _traced(sysc)
    expect(p.futex.stats().queued, n, "syscall waiters queued")
    return out


def _mem_task(n: int) -> int:
    """Bytes to create ``n`` tasks (a reference: not per waiter)."""
    _, p, _ = new_process()
    made: list[Task] = []

    def make_tasks() -> None:
        for _ in range(n):
            made.append(p.new_task())

    grown, _, _ = _traced(make_tasks)
    return grown


def bench_memory(cfg: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    log(f"5. bytes per queued waiter (tracemalloc, {cfg.mem_n:,} waiters)")
    n = cfg.mem_n
    rows: list[dict[str, Any]] = []
    breakdown: list[dict[str, Any]] = []

    def record(layer: str, words: str, grown: int, what: str) -> None:
        rows.append(
            {
                "layer": layer,
                "words": words,
                "n": n,
                "bytes_total": grown,
                "bytes_per_waiter": grown / n,
                "counts": what,
            }
        )

    for distinct in (False, True):
        words = f"{n:,} distinct words" if distinct else "one word"
        queue = " + its queue" if distinct else ""
        record("core", words, _mem_core(n, distinct), "Waiter" + queue)
        collect()
        grown, before, after = _mem_syscall(n, distinct)
        record("syscall_futex_nb", words, grown, "Waiter + PendingWait" + queue)
        if not distinct:
            for diff in after.compare_to(before, "lineno")[:8]:
                if diff.size_diff <= 0:
                    continue
                frame = diff.traceback[0]
                breakdown.append(
                    {
                        "site": f"{os.path.relpath(frame.filename)}:{frame.lineno}",
                        "bytes_per_waiter": diff.size_diff / n,
                        "blocks_per_waiter": diff.count_diff / n,
                    }
                )
        collect()
    record("reference: Task", "-", _mem_task(n), "Task + calls Counter + registry")
    collect()
    return rows, breakdown


# -- 6. PI futexes ---------------------------------------------------------------------------

#: A blocked PI call gives up after this long (host: LOCK_PI's absolute timeout, refreshed
#: before every sample; emulated: a watchdog ends the blocked calls), so nothing can hang.
PI_TIMEOUT_S = 10.0
#: Joins of the helper threads wait at most this long.
JOIN_TIMEOUT_S = 5.0


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def host_u32(addr: int) -> int:
    return ctypes.c_uint32.from_address(addr).value


def pi_batch(f: FutexCall, addrs: Sequence[int], op: int) -> Runner:
    """A runner making one ``op`` call on each word of ``addrs``."""
    words = list(addrs)

    def run() -> None:
        for a in words:
            f(a, op, 0, 0, 0, 0)

    return run


def pi_pair_loop(f: FutexCall, uaddr: int, lock_op: int, n: int) -> Runner:
    """A runner making ``n`` (``lock_op``, UNLOCK_PI) pairs on one word."""
    rng = range(n)

    def run() -> None:
        for _ in rng:
            f(uaddr, lock_op, 0, 0, 0, 0)
            f(uaddr, UNLOCK_PI_PRIVATE, 0, 0, 0, 0)

    return run


def park_pi(task: Task, uaddr: int) -> PendingWait:
    """Block ``task`` cooperatively in FUTEX_LOCK_PI_PRIVATE on ``uaddr`` (held by another)."""
    r = task.syscall_futex_nb(uaddr, LOCK_PI_PRIVATE, 0, 0, 0, 0)
    if not isinstance(r, PendingWait):
        raise BenchError(f"LOCK_PI on {uaddr:#x} returned {r} instead of blocking")
    return r


@dataclass
class PiSide:
    """The words of one side (emulated or real) of the uncontended PI measurements."""

    f: FutexCall
    load: Callable[[int], int]  # read a word
    tid: int  # the caller's tid, as the kernel writes it
    lock_words: list[int]  # LOCK_PI batch: 0 before a sample
    unlock_words: list[int]  # UNLOCK_PI batch: held before a sample
    try_words: list[int]  # TRYLOCK_PI batch: 0 before a sample
    pair_word: int  # LOCK_PI + UNLOCK_PI pairs
    try_pair_word: int  # TRYLOCK_PI + UNLOCK_PI pairs
    held_word: int  # held by another live thread / task: TRYLOCK_PI -> EWOULDBLOCK

    def each(self, words: Sequence[int], op: int, want: int, what: str) -> None:
        f = self.f
        for a in words:
            r = f(a, op, 0, 0, 0, 0)
            if r != want:
                raise BenchError(f"{what} on {a:#x}: got {r}, expected {want}")

    def check_words(self, words: Sequence[int], want: int, what: str) -> None:
        for a in words:
            got = self.load(a)
            if got != want:
                raise BenchError(f"{what}: word {a:#x} is {got:#x}, expected {want:#x}")

    def restore(self, kind: str) -> None:
        """After a sample: check what the timed calls did and reset the words (untimed)."""
        if kind == "LOCK_PI":
            self.check_words(self.lock_words, self.tid, "after LOCK_PI")
            self.each(self.lock_words, UNLOCK_PI_PRIVATE, 0, "UNLOCK_PI (restore)")
        elif kind == "TRYLOCK_PI":
            self.check_words(self.try_words, self.tid, "after TRYLOCK_PI")
            self.each(self.try_words, UNLOCK_PI_PRIVATE, 0, "UNLOCK_PI (restore)")
        elif kind == "UNLOCK_PI":
            self.check_words(self.unlock_words, 0, "after UNLOCK_PI")
            self.each(self.unlock_words, LOCK_PI_PRIVATE, 0, "LOCK_PI (restore)")
        elif kind == "pair":
            self.check_words([self.pair_word], 0, "after LOCK_PI + UNLOCK_PI")
        elif kind == "try pair":
            self.check_words([self.try_pair_word], 0, "after TRYLOCK_PI + UNLOCK_PI")
        elif kind == "held":
            got = self.load(self.held_word) & abi.FUTEX_TID_MASK
            if got == self.tid or got == 0:
                raise BenchError(f"the held word's owner changed to {got}")


def _pi_words(base: int, n: int) -> tuple[list[int], list[int], list[int], int, int, int]:
    """Three batches of ``n`` words, then three single words, from ``base``."""
    words = [base + 4 * i for i in range(3 * n + 3)]
    return words[:n], words[n : 2 * n], words[2 * n : 3 * n], words[-3], words[-2], words[-1]


def _pi_span(n: int) -> int:
    return -(-(4 * (3 * n + 3)) // PAGE) * PAGE


#: Uncontended PI figures: (label, runner kind).
PI_CASES = (
    ("LOCK_PI_PRIVATE, 0 word -> 0 (takes it)", "LOCK_PI"),
    ("UNLOCK_PI_PRIVATE, no waiters -> 0 (word 0)", "UNLOCK_PI"),
    ("TRYLOCK_PI_PRIVATE, 0 word -> 0 (takes it)", "TRYLOCK_PI"),
    ("LOCK_PI + UNLOCK_PI pair, uncontended", "pair"),
    ("TRYLOCK_PI + UNLOCK_PI pair, uncontended", "try pair"),
    ("TRYLOCK_PI_PRIVATE, word held by another thread -> EWOULDBLOCK", "held"),
)


class _HandOff:
    """Cooperative hand-offs on the emulated kernel: word ``i`` is held by ``holders[i]``
    while ``waiters[i]`` is parked in LOCK_PI on it (``syscall_futex_nb``); an UNLOCK_PI by
    the holder hands the word to the waiter, and the old holder re-parks behind it, so the
    two swap roles."""

    def __init__(self, n: int) -> None:
        _, p, _ = new_process()
        self.process = p
        base = p.mmap(-(-(4 * n) // PAGE) * PAGE)
        self.addrs = [base + 4 * i for i in range(n)]
        self.holders = [p.new_task() for _ in range(n)]
        self.waiters = [p.new_task() for _ in range(n)]
        for h, w, a in zip(self.holders, self.waiters, self.addrs, strict=True):
            expect(h.syscall_futex(a, LOCK_PI_PRIVATE, 0, 0, 0, 0), 0, "holder LOCK_PI")
            park_pi(w, a)
        self._bind()

    def _bind(self) -> None:
        self.unlock_fns: list[FutexCall] = [t.syscall_futex for t in self.holders]
        self.park_fns = [t.syscall_futex_nb for t in self.holders]

    def handoff_runner(self) -> Runner:
        def run() -> None:
            for f, a in zip(self.unlock_fns, self.addrs, strict=True):
                f(a, UNLOCK_PI_PRIVATE, 0, 0, 0, 0)

        return run

    def handoff_repark_runner(self) -> Runner:
        def run() -> None:
            for f, nb, a in zip(self.unlock_fns, self.park_fns, self.addrs, strict=True):
                f(a, UNLOCK_PI_PRIVATE, 0, 0, 0, 0)
                nb(a, LOCK_PI_PRIVATE, 0, 0, 0, 0)

        return run

    def after(self, reparked: bool) -> None:
        """Check every word went to its waiter; re-park the old holders unless the
        sample did; swap the roles (untimed)."""
        load = self.process.load_u32
        for h, w, a in zip(self.holders, self.waiters, self.addrs, strict=True):
            if w.blocked is not None:
                raise BenchError(f"task {w.tid} was not handed the lock at {a:#x}")
            expect(load(a), FUTEX_WAITERS | w.tid, "word after the hand-off")
            if not reparked:
                park_pi(h, a)
            elif h.blocked is None:
                raise BenchError(f"task {h.tid} did not re-park on {a:#x}")
        self.holders, self.waiters = self.waiters, self.holders
        self._bind()

    def close(self) -> None:
        for h, w, a in zip(self.holders, self.waiters, self.addrs, strict=True):
            expect(h.syscall_futex(a, UNLOCK_PI_PRIVATE, 0, 0, 0, 0), 0, "final hand-off")
            expect(w.syscall_futex(a, UNLOCK_PI_PRIVATE, 0, 0, 0, 0), 0, "final unlock")
        self.process.futex.check_invariants()


def bench_pi_uncontended(cfg: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    log("6a. PI futexes, uncontended: emulated vs host kernel; cooperative hand-off")
    n = cfg.call_n
    span = _pi_span(n)
    _, p, t = new_process()
    other = p.new_task()  # holds the emulated held_word
    e_base = p.mmap(span)
    sides: dict[str, PiSide] = {}
    e_words = _pi_words(e_base, n)
    sides["emu"] = PiSide(t.syscall_futex, p.load_u32, t.tid, *e_words)
    host = _hostfutex.available()
    r_base = 0
    holder: threading.Thread | None = None
    release = threading.Event()
    took: list[int] = []  # the host holder thread's results
    if host:
        r_base = host_mmap(0, span, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS)
        ctypes.memset(r_base, 0, span)  # fault the pages in
        sides["real"] = PiSide(host_futex, host_u32, gettid(), *_pi_words(r_base, n))
    try:
        # The held words: another task (emulated) / a live thread (host) owns them.
        emu_held = sides["emu"].held_word
        expect(other.syscall_futex(emu_held, LOCK_PI_PRIVATE, 0, 0, 0, 0), 0, "other LOCK_PI")
        if host:
            held = sides["real"].held_word
            got = threading.Event()

            def hold() -> None:
                took.append(host_futex(held, LOCK_PI_PRIVATE, 0, 0, 0, 0))
                got.set()
                release.wait(600)
                took.append(host_futex(held, UNLOCK_PI_PRIVATE, 0, 0, 0, 0))

            holder = threading.Thread(target=hold, name="pi-holder", daemon=True)
            holder.start()
            if not got.wait(JOIN_TIMEOUT_S) or took != [0]:
                raise BenchError(f"host holder thread: LOCK_PI gave {took}")

        runners: dict[str, tuple[Runner, int]] = {}
        for tag, sd in sides.items():
            who = f"{tag} "
            # Check each call once, as the timed loops will make it.
            sd.each(sd.lock_words[:1], LOCK_PI_PRIVATE, 0, who + "LOCK_PI")
            sd.check_words(sd.lock_words[:1], sd.tid, who + "LOCK_PI wrote the tid")
            sd.each(sd.lock_words[:1], UNLOCK_PI_PRIVATE, 0, who + "UNLOCK_PI")
            sd.check_words(sd.lock_words[:1], 0, who + "UNLOCK_PI cleared the word")
            sd.each(sd.try_words[:1], TRYLOCK_PI_PRIVATE, 0, who + "TRYLOCK_PI")
            sd.each(sd.try_words[:1], UNLOCK_PI_PRIVATE, 0, who + "UNLOCK_PI")
            sd.each([sd.held_word], TRYLOCK_PI_PRIVATE, EWOULDBLOCK, who + "TRYLOCK_PI held")
            sd.each(sd.unlock_words, LOCK_PI_PRIVATE, 0, who + "LOCK_PI (setup)")
            f = sd.f
            runners[who + "LOCK_PI"] = (pi_batch(f, sd.lock_words, LOCK_PI_PRIVATE), n)
            runners[who + "UNLOCK_PI"] = (pi_batch(f, sd.unlock_words, UNLOCK_PI_PRIVATE), n)
            runners[who + "TRYLOCK_PI"] = (pi_batch(f, sd.try_words, TRYLOCK_PI_PRIVATE), n)
            runners[who + "pair"] = (pi_pair_loop(f, sd.pair_word, LOCK_PI_PRIVATE, n), n)
            runners[who + "try pair"] = (
                pi_pair_loop(f, sd.try_pair_word, TRYLOCK_PI_PRIVATE, n),
                n,
            )
            runners[who + "held"] = (
                call_loop(f, (sd.held_word, TRYLOCK_PI_PRIVATE, 0, 0, 0, 0), n),
                n,
            )
        # Emulated only: UNLOCK_PI handing the lock to a cooperatively parked waiter.
        hn = cfg.pi_handoffs
        ho = _HandOff(hn)
        runners["coop handoff"] = (ho.handoff_runner(), hn)
        runners["coop handoff+repark"] = (ho.handoff_repark_runner(), hn)

        def between(name: str) -> None:
            if name == "coop handoff":
                ho.after(reparked=False)
            elif name == "coop handoff+repark":
                ho.after(reparked=True)
            else:
                tag, kind = name.split(" ", 1)
                sides[tag].restore(kind)

        stats = interleaved(runners, cfg.repeats, between)
        ho.close()
        for sd in sides.values():
            sd.each(sd.unlock_words, UNLOCK_PI_PRIVATE, 0, "UNLOCK_PI (teardown)")
        expect(other.syscall_futex(emu_held, UNLOCK_PI_PRIVATE, 0, 0, 0, 0), 0, "other UNLOCK")
    finally:
        release.set()
        if holder is not None:
            holder.join(JOIN_TIMEOUT_S)
            if holder.is_alive():
                raise BenchError("the host PI holder thread did not finish")
        if r_base:
            host_munmap(r_base, span)
    if holder is not None:
        expect(took, [0, 0], "host holder thread: LOCK_PI, UNLOCK_PI")
    p.futex.check_invariants()

    rows: list[dict[str, Any]] = []
    for label, kind in PI_CASES:
        e = stats["emu " + kind]
        r = stats.get("real " + kind)
        rows.append(
            {
                "call": label,
                "kind": kind,
                "ops_per_sample": n,
                "emulated": e.as_json(),
                "real": r.as_json() if r else None,
                "ratio": paired_ratio(e, r) if r else None,
                "ratio_of_medians": e.median / r.median if r else None,
                "ratio_of_mins": e.min / r.min if r else None,
            }
        )
    h1, h2 = stats["coop handoff"], stats["coop handoff+repark"]
    coop = [
        {
            "case": "UNLOCK_PI hands off to a parked LOCK_PI waiter",
            "kind": "handoff",
            "ops_per_sample": hn,
            "emulated": h1.as_json(),
        },
        {
            "case": "UNLOCK_PI hand-off + re-park (LOCK_PI -> PendingWait)",
            "kind": "handoff+repark",
            "ops_per_sample": hn,
            "emulated": h2.as_json(),
        },
        {
            "case": "re-park alone (difference of the two medians)",
            "kind": "repark",
            "ops_per_sample": hn,
            "emulated": {"median_ns": round(h2.median - h1.median, 2), "min_ns": None},
        },
    ]
    return rows, coop


class _Watchdog:
    """Calls ``on_expiry()`` once if :meth:`refresh` is not called for ``seconds``."""

    def __init__(self, on_expiry: Callable[[], None], seconds: float) -> None:
        self.on_expiry = on_expiry
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.fired = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pi-watchdog", daemon=True)
        self._thread.start()

    def refresh(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def _run(self) -> None:
        while not self._done.wait(max(0.01, self.deadline - time.monotonic())):
            if time.monotonic() >= self.deadline:
                self.fired = True
                self.on_expiry()
                return

    def close(self) -> None:
        self._done.set()
        self._thread.join(JOIN_TIMEOUT_S)


_syscall_gil = ctypes.PyDLL(None, use_errno=True).syscall  # PyDLL: keeps the GIL
_syscall_gil.restype = ctypes.c_long
_syscall_gil.argtypes = [ctypes.c_long] * 7


def host_futex_gil(uaddr: int, op: int, val: int, utime: int, uaddr2: int, val3: int) -> int:
    """``host_futex`` without dropping the GIL around the syscall (for calls that never
    block: the ping-pong's UNLOCK_PI, made with the GIL held like the emulated one)."""
    as_long = _hostfutex._as_long
    r: int = _syscall_gil(
        _hostfutex.SYS_futex,
        as_long(uaddr),
        as_long(op),
        as_long(val),
        as_long(utime),
        as_long(uaddr2),
        as_long(val3),
    )
    return r if r >= 0 else -ctypes.get_errno()


#: A ping-pong thread gives up after this many sched_yields waiting for the other thread
#: to queue in LOCK_PI (seconds), or sooner once the other thread is gone.
SPIN_LIMIT = 10_000_000


class PingPong:
    """One PI word bounced between two threads: the calling (timing) thread and a helper.

    Between samples the calling thread holds the word and the helper is blocked in
    FUTEX_LOCK_PI on it.  A round trip: the caller's UNLOCK_PI hands the word to the
    helper and the caller's LOCK_PI blocks; the helper wakes owning it, and its UNLOCK_PI
    hands it back before it blocks in LOCK_PI again.  Both threads run the same Python.

    Every UNLOCK_PI must find the other thread queued, or it would just clear the word
    (no hand-off) and the other's LOCK_PI would take it without sleeping.  With the GIL,
    the thread woken by a hand-off (or by the GIL the other drops on its way into
    LOCK_PI) can run before the other has entered the kernel, so before each UNLOCK_PI a
    thread probes with FUTEX_WAKE_PRIVATE, which is EINVAL exactly when a PI waiter is
    queued on the word (``futex_wake`` meets its PI state), and yields the CPU until it
    is (``spins``).  The UNLOCK_PI is made with the GIL held (``unlock``), as the
    emulated kernel's is.  A non-zero result anywhere fails the sample.
    """

    def __init__(
        self,
        tag: str,
        calls: tuple[FutexCall, FutexCall],
        unlocks: tuple[FutexCall, FutexCall],
        uaddr: int,
        utime: int,
        round_trips: int,
        cap: int,
        cpu: int | None,
        unstick: Callable[[], None] | None = None,
    ) -> None:
        self.tag = tag
        self.unstick = unstick  # ends the threads' blocked calls (emulated)
        self.calls = calls  # (caller's, helper's) blocking calls: LOCK_PI and the probe
        self.unlocks = unlocks  # (caller's, helper's) UNLOCK_PI
        self.uaddr = uaddr
        self.utime = utime  # LOCK_PI's timeout pointer (0: none)
        self.round_trips = round_trips
        self.cap = cap  # the helper's iteration limit
        self.cpu = cpu  # pin the helper to this CPU
        self.stop = [False]
        self.spins = [0]  # yields waiting for the other thread to queue
        self.errors: list[str] = []
        self.thread: threading.Thread | None = None

    def _helper(self) -> None:
        f, unlock = self.calls[1], self.unlocks[1]
        a, utime, stop, spins, errors = self.uaddr, self.utime, self.stop, self.spins, self.errors
        yield_cpu = os.sched_yield
        try:
            if self.cpu is not None:
                os.sched_setaffinity(0, {self.cpu})
            for _ in range(self.cap):
                r = f(a, LOCK_PI_PRIVATE, 0, utime, 0, 0)
                if r:
                    errors.append(f"helper LOCK_PI returned {r}")
                    return
                if stop[0]:
                    r = unlock(a, UNLOCK_PI_PRIVATE, 0, 0, 0, 0)
                    if r:
                        errors.append(f"helper's last UNLOCK_PI returned {r}")
                    return
                n = 0
                while f(a, WAKE_PRIVATE, 1, 0, 0, 0) != EINVAL:
                    n += 1
                    if not n & 0x3FF and (stop[0] or n > SPIN_LIMIT):
                        errors.append("the timing thread never queued in LOCK_PI")
                        return
                    yield_cpu()
                if n:
                    spins[0] += n
                r = unlock(a, UNLOCK_PI_PRIVATE, 0, 0, 0, 0)
                if r:
                    errors.append(f"helper UNLOCK_PI returned {r}")
                    return
            errors.append("the helper reached its iteration limit")
        except BaseException as exc:  # reported by the timing thread
            errors.append(f"helper raised {exc!r}")

    def start(self) -> None:
        """Take the word, start the helper, and wait until it is blocked on the word."""
        f, a = self.calls[0], self.uaddr
        expect(f(a, LOCK_PI_PRIVATE, 0, 0, 0, 0), 0, f"{self.tag} LOCK_PI")
        self.thread = threading.Thread(target=self._helper, name=f"pi-{self.tag}", daemon=True)
        self.thread.start()
        until = time.monotonic() + JOIN_TIMEOUT_S
        while f(a, WAKE_PRIVATE, 1, 0, 0, 0) != EINVAL:
            self.check()
            if time.monotonic() > until:
                raise BenchError(f"{self.tag}: the helper thread never blocked in LOCK_PI")
            time.sleep(0.001)

    def runner(self) -> Runner:
        f, unlock, a, utime = self.calls[0], self.unlocks[0], self.uaddr, self.utime
        spins, errors = self.spins, self.errors
        yield_cpu = os.sched_yield
        rng = range(self.round_trips)

        def run() -> None:
            for _ in rng:
                n = 0
                while f(a, WAKE_PRIVATE, 1, 0, 0, 0) != EINVAL:
                    n += 1
                    if not n & 0x3FF and (n > SPIN_LIMIT or not self.helper_alive()):
                        raise BenchError(f"{self.tag}: the helper never queued; {errors}")
                    yield_cpu()
                if n:
                    spins[0] += n
                if unlock(a, UNLOCK_PI_PRIVATE, 0, 0, 0, 0) or f(
                    a, LOCK_PI_PRIVATE, 0, utime, 0, 0
                ):
                    raise BenchError(f"{self.tag}: a PI call failed; {errors}")

        return run

    def probe_runner(self, n: int) -> Runner:
        """``n`` probes, as the round trips make them (the helper is queued): their cost."""
        return call_loop(self.calls[0], (self.uaddr, WAKE_PRIVATE, 1, 0, 0, 0), n)

    def helper_alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive() and not self.errors

    def check(self) -> None:
        if self.errors:
            raise BenchError(f"{self.tag} ping-pong: {'; '.join(self.errors)}")

    def close(self) -> None:
        """Hand the word to the helper with the stop flag set; it unlocks and exits."""
        th = self.thread
        if th is None:
            return
        self.thread = None
        self.stop[0] = True
        if th.is_alive():
            self.unlocks[0](self.uaddr, UNLOCK_PI_PRIVATE, 0, 0, 0, 0)
        th.join(JOIN_TIMEOUT_S)
        if th.is_alive() and self.unstick is not None:
            self.unstick()
            th.join(JOIN_TIMEOUT_S)
        if th.is_alive():
            raise BenchError(f"{self.tag}: the helper thread did not finish")


def _pin_cpu() -> tuple[int | None, set[int] | None]:
    """A CPU for both ping-pong threads, and the affinity to restore afterwards."""
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return None, None
    return max(allowed), set(allowed)


def bench_pi_pingpong(cfg: Config) -> dict[str, Any]:
    k_rt = cfg.pi_round_trips
    log(f"6b. PI hand-off ping-pong between two threads ({k_rt:,} round trips per sample)")
    # Round trips the helper may make: warm-up and every sample with all its retries.
    cap = (1 + cfg.repeats * (RETRIES + 1)) * k_rt + 10
    cpu, restore = _pin_cpu()
    pongs: dict[str, PingPong] = {}
    switches: dict[str, list[float]] = {}  # per run: context switches per round trip
    queued: list[float] = []  # emulated, per run: LOCK_PIs that queued, per round trip
    spins: dict[str, list[float]] = {}  # per run: yields per round trip

    _, p, ta = new_process()
    tb = p.new_task()
    e_word = p.mmap(PAGE)
    e_bucket = p.futex.bucket_of(p.futex.key(p.space, e_word, True))

    def kill_blocked() -> None:
        for task in (ta, tb):
            pending = task.blocked
            if pending is not None:
                pending.kill()

    watchdog = _Watchdog(kill_blocked, PI_TIMEOUT_S)
    emu_calls = (ta.syscall_futex, tb.syscall_futex)
    pongs["emu"] = PingPong(
        "emu", emu_calls, emu_calls, e_word, 0, k_rt, cap, cpu, unstick=kill_blocked
    )
    host = _hostfutex.available()
    r_page = 0
    ts = Timespec(0, 0)

    def refresh() -> None:
        watchdog.refresh()
        ts.tv_sec = int(time.time() + PI_TIMEOUT_S)

    refresh()
    if host:
        r_page = host_mmap(0, PAGE, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS)
        ctypes.c_uint32.from_address(r_page).value = 0
        pongs["real"] = PingPong(
            "real",
            (host_futex, host_futex),
            (host_futex_gil, host_futex_gil),
            r_page,
            ctypes.addressof(ts),
            k_rt,
            cap,
            cpu,
        )
    last: dict[str, int] = {}

    def counters() -> dict[str, int]:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        out = {"csw": ru.ru_nvcsw + ru.ru_nivcsw, "queued": e_bucket.waits}
        for tag, pp in pongs.items():
            out[tag] = pp.spins[0]
        return out

    def between(name: str) -> None:
        refresh()
        now = counters()
        if name in pongs:  # a round-trip sample: what it did, per round trip
            pongs[name].check()
            switches.setdefault(name, []).append((now["csw"] - last["csw"]) / k_rt)
            spins.setdefault(name, []).append((now[name] - last[name]) / k_rt)
            if name == "emu":
                queued.append((now["queued"] - last["queued"]) / k_rt)
        last.update(now)

    n_probe = cfg.call_n
    runners: dict[str, tuple[Runner, int]] = {}
    clocks: dict[str, Callable[[], int] | None] = {}
    for tag, pp in pongs.items():
        runners[tag] = (pp.runner(), k_rt)
        # Two threads taking turns on one CPU: the process's CPU time is the on-CPU
        # measure (unpinned, no check).
        clocks[tag] = time.process_time_ns if cpu is not None else None
        runners[tag + " probe"] = (pp.probe_runner(n_probe), n_probe)
    try:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        for pp in pongs.values():
            pp.start()
        last.update(counters())
        stats = interleaved(runners, cfg.repeats, between, clocks)
        for pp in pongs.values():
            pp.close()
    finally:
        try:
            for pp in pongs.values():
                pp.close()
        finally:
            watchdog.close()
            if restore is not None:
                os.sched_setaffinity(0, restore)
            if r_page:
                host_munmap(r_page, PAGE)
    if watchdog.fired:
        raise BenchError("the emulated ping-pong hit its watchdog")
    expect(p.load_u32(e_word), 0, "emulated PI word after the ping-pong")
    p.futex.check_invariants()

    e, r = stats["emu"], stats.get("real")
    ep, rp = stats["emu probe"], stats.get("real probe")
    e_net = [rt - 2 * pr for rt, pr in zip(e.samples, ep.samples, strict=True)]
    r_net = [rt - 2 * pr for rt, pr in zip(r.samples, rp.samples, strict=True)] if r and rp else []
    net_ratio = (
        statistics.median(a / b for a, b in zip(e_net, r_net, strict=True)) if r_net else None
    )
    return {
        "call": "round trip: UNLOCK_PI hands off to the thread blocked in LOCK_PI, "
        "which hands it back",
        "round_trips_per_sample": k_rt,
        "pinned_cpu": cpu,
        "emulated": e.as_json(),
        "real": r.as_json() if r else None,
        "ratio": paired_ratio(e, r) if r else None,
        "ratio_of_medians": e.median / r.median if r else None,
        "ratio_of_mins": e.min / r.min if r else None,
        "probe": {
            "emulated": ep.as_json(),
            "real": rp.as_json() if rp else None,
            "ratio": paired_ratio(ep, rp) if rp else None,
            "ratio_of_mins": ep.min / rp.min if rp else None,
        },
        "net_of_probes": {
            "emulated_median_ns": statistics.median(e_net),
            "emulated_min_ns": min(e_net),
            "real_median_ns": statistics.median(r_net) if r_net else None,
            "real_min_ns": min(r_net) if r_net else None,
            "ratio": net_ratio,
            "ratio_of_mins": min(e_net) / min(r_net) if r_net else None,
        },
        "context_switches_per_round_trip": {k: statistics.median(v) for k, v in switches.items()},
        "yields_per_round_trip": {k: statistics.median(v) for k, v in spins.items()},
        "emulated_lock_pi_queued_per_round_trip": statistics.median(queued),
    }


# -- output ----------------------------------------------------------------------------------


def build_tables(res: dict[str, Any], cfg: Config) -> list[Table]:
    tables: list[Table] = []
    t1 = Table(
        "1. Cost per call: emulated (Task.syscall_futex) vs real (ctypes host futex)",
        [
            "call",
            "emulated med",
            "emulated min",
            "real med",
            "real min",
            "emu/real",
            "emu/real of mins",
        ],
        note=f"{cfg.call_n:,} calls per sample, {cfg.repeats} samples, interleaved; emu/real "
        "is the median of the per-round ratios. Real = futex._hostfutex.host_futex: ctypes "
        "marshalling + the syscall (the ENOSYS row is that floor).",
    )
    for r in res["call_cost"]:
        e, h = r["emulated"], r["real"]
        t1.rows.append(
            [
                r["call"],
                ns(e["median_ns"]) if e else "-",
                ns(e["min_ns"]) if e else "-",
                ns(h["median_ns"]) if h else "-",
                ns(h["min_ns"]) if h else "-",
                ratio(r["ratio"]),
                ratio(r["ratio_of_mins"]),
            ]
        )
    tables.append(t1)

    t2 = Table(
        "2. wake(1) from a queue of N waiters on one word (per wake)",
        ["layer", "N", "queue during batch", "median", "min", "vs N=" + f"{cfg.wake_sizes[0]:,}"],
        note=f"Park N+{cfg.wake_reps:,}, time {cfg.wake_reps:,} wakes, re-park (untimed); "
        f"{cfg.repeats} samples. syscall: waiters are tasks blocked via syscall_futex_nb "
        "(PendingWait), woken by Task.syscall_futex(FUTEX_WAKE_PRIVATE, 1). core: bare "
        "Waiters via FutexManager.wait_prepare, woken by FutexManager.wake.",
    )
    first: dict[str, float] = {}
    for r in res["wake_queue"]:
        med = r["per_wake"]["median_ns"]
        first.setdefault(r["layer"], med)
        t2.rows.append(
            [
                r["layer"],
                f"{r['n']:,}",
                r["queue_during_batch"],
                ns(med),
                ns(r["per_wake"]["min_ns"]),
                ratio(med / first[r["layer"]]),
            ]
        )
    tables.append(t2)

    t3 = Table(
        "3. FUTEX_CMP_REQUEUE_PRIVATE moving k waiters (nr_wake 0)",
        ["k", "calls/sample", "per call med", "per call min", "per waiter med", "per waiter min"],
        note="Waiters: tasks blocked via syscall_futex_nb; each call moves all k between "
        "two words (A->B, B->A).",
    )
    for r in res["requeue"]:
        t3.rows.append(
            [
                f"{r['k']:,}",
                f"{r['calls_per_sample']:,}",
                ns(r["per_call"]["median_ns"]),
                ns(r["per_call"]["min_ns"]),
                ns(r["per_waiter_median_ns"]),
                ns(r["per_waiter_min_ns"]),
            ]
        )
    tables.append(t3)

    t4 = Table(
        f"4. Call cost with {cfg.unrelated:,} waiters on OTHER words vs none (goal <= 1.2x)",
        [
            "unrelated waiters",
            "call",
            "none med",
            "loaded med",
            "ratio",
            "ratio of mins",
            "buckets used / busiest",
            "goal",
        ],
        note="Waiters parked via syscall_futex_nb (one task each); the empty and the loaded "
        "process are sampled interleaved and the ratio is the median of the per-round "
        "ratios; the measured word is the same address in both.",
    )
    for r in res["unrelated"]:
        t4.rows.append(
            [
                r["scenario"],
                r["call"],
                ns(r["none"]["median_ns"]),
                ns(r["loaded"]["median_ns"]),
                ratio(r["ratio"]),
                ratio(r["ratio_of_mins"]),
                f"{r['buckets_used']:,} / {r['busiest_bucket']:,}",
                "ok" if r["ratio"] <= 1.2 else "OVER",
            ]
        )
    tables.append(t4)

    t5 = Table(
        "5. Memory per queued waiter (tracemalloc)",
        ["layer", "words", "waiters", "bytes/waiter", "counts"],
        note="Bytes requested from Python's allocators (no arena slack); tasks exist before "
        "the measurement, except in the Task reference row.",
    )
    for r in res["memory"]:
        t5.rows.append(
            [r["layer"], r["words"], f"{r['n']:,}", f"{r['bytes_per_waiter']:,.0f}", r["counts"]]
        )
    tables.append(t5)

    if res["memory_breakdown"]:
        t6 = Table(
            "5b. Where a syscall-layer waiter's bytes go (one word)",
            ["allocation site", "bytes/waiter", "blocks/waiter"],
        )
        for r in res["memory_breakdown"]:
            t6.rows.append(
                [r["site"], f"{r['bytes_per_waiter']:,.0f}", f"{r['blocks_per_waiter']:.2f}"]
            )
        tables.append(t6)

    t7 = Table(
        "6a. PI futexes, uncontended: emulated (Task.syscall_futex) vs real (host futex)",
        list(t1.columns),
        note=f"{cfg.call_n:,} calls (or pairs) per sample, {cfg.repeats} samples, interleaved. "
        "Every call goes through the kernel (no user-space CAS fast path). Real: a private "
        "anonymous page, the calling thread's own tid in the word; the LOCK_PI / TRYLOCK_PI "
        "/ UNLOCK_PI rows use a batch of distinct words, reset between samples (untimed). "
        "EWOULDBLOCK row: the word is held by another live thread (host) / task (emulated).",
    )
    for r in res["pi_uncontended"]:
        e, h = r["emulated"], r["real"]
        t7.rows.append(
            [
                r["call"],
                ns(e["median_ns"]),
                ns(e["min_ns"]),
                ns(h["median_ns"]) if h else "-",
                ns(h["min_ns"]) if h else "-",
                ratio(r["ratio"]),
                ratio(r["ratio_of_mins"]),
            ]
        )
    tables.append(t7)

    pp = res["pi_pingpong"]
    sw = pp["context_switches_per_round_trip"]
    yl = pp["yields_per_round_trip"]
    where = f"both on CPU {pp['pinned_cpu']}" if pp["pinned_cpu"] is not None else "unpinned"
    t8 = Table(
        "6b. PI hand-off: UNLOCK_PI to a thread blocked in LOCK_PI, two-thread ping-pong",
        [*t1.columns, "switches | yields per RT, emu / real"],
        note=f"Two threads ({where}) bounce one PI word, {pp['round_trips_per_sample']:,} "
        f"round trips (RT) per sample, {cfg.repeats} samples, emulated and real interleaved. "
        "A RT: the timing thread's UNLOCK_PI hands the word to the helper blocked in "
        "LOCK_PI, its own LOCK_PI then blocks until the helper's UNLOCK_PI hands it back: "
        "2 hand-offs, each waking a sleeping thread. Real: host_futex (GIL dropped) for "
        "LOCK_PI, with a 10 s absolute timeout, and the probe; UNLOCK_PI with the GIL held "
        "(ctypes.PyDLL), as the emulated one is. Emulated: Task.syscall_futex, the thread "
        "parked on a lock. Before each UNLOCK_PI a thread probes with FUTEX_WAKE_PRIVATE "
        "(EINVAL iff a PI waiter is queued) and sched_yield()s until the other thread is "
        "queued, so every unlock is a hand-off (emulated LOCK_PIs that queued per RT, "
        f"exact: {pp['emulated_lock_pi_queued_per_round_trip']:.2f}); the probe row is "
        "its cost per call, and the net row subtracts 2 probes from each RT sample. "
        "Switches: voluntary + involuntary context switches of the process per RT (GIL "
        "hand-overs included). On-CPU check: the process's CPU time (the threads take "
        "turns on one CPU). Cooperative rows (emulated only): "
        f"{res['pi_cooperative'][0]['ops_per_sample']:,} words each held by one task with "
        "another parked on it via syscall_futex_nb (PendingWait); the timed UNLOCK_PI "
        "hands each word over (the waiter's PendingWait settles in the unlocker's thread); "
        "re-park = the old holder's LOCK_PI returning a PendingWait.",
    )

    def cells(e: dict[str, Any], r: dict[str, Any] | None) -> list[str]:
        return [
            ns(e["median_ns"]),
            ns(e["min_ns"]),
            ns(r["median_ns"]) if r else "-",
            ns(r["min_ns"]) if r else "-",
        ]

    t8.rows.append(
        [
            "round trip (2 hand-offs + 2 probes)",
            *cells(pp["emulated"], pp["real"]),
            ratio(pp["ratio"]),
            ratio(pp["ratio_of_mins"]),
            f"{sw.get('emu', 0):.1f} | {yl.get('emu', 0):.2f} / "
            + (f"{sw['real']:.1f} | {yl['real']:.2f}" if "real" in sw else "-"),
        ]
    )
    pr = pp["probe"]
    t8.rows.append(
        [
            "probe: FUTEX_WAKE_PRIVATE -> EINVAL (PI waiter queued)",
            *cells(pr["emulated"], pr["real"]),
            ratio(pr["ratio"]),
            ratio(pr["ratio_of_mins"]),
            "-",
        ]
    )
    net = pp["net_of_probes"]
    t8.rows.append(
        [
            "round trip net of its 2 probes",
            ns(net["emulated_median_ns"]),
            ns(net["emulated_min_ns"]),
            ns(net["real_median_ns"]),
            ns(net["real_min_ns"]),
            ratio(net["ratio"]),
            ratio(net["ratio_of_mins"]),
            "-",
        ]
    )
    for r in res["pi_cooperative"]:
        e = r["emulated"]
        t8.rows.append(
            [
                "cooperative: " + r["case"],
                ns(e["median_ns"]),
                ns(e["min_ns"]),
                "-",
                "-",
                "-",
                "-",
                "-",
            ]
        )
    tables.append(t8)
    return tables


def key_ratios(res: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    short = {
        "WAKE_PRIVATE, no waiters": "WAKE_PRIVATE (no waiters)",
        "WAIT_PRIVATE -> EAGAIN": "WAIT_PRIVATE (EAGAIN)",
        "WAKE shared, MAP_PRIVATE page": "WAKE shared, MAP_PRIVATE (no waiters)",
        "WAIT shared -> EAGAIN, MAP_PRIVATE page": "WAIT shared, MAP_PRIVATE (EAGAIN)",
        "WAKE shared, MAP_SHARED page": "WAKE shared, MAP_SHARED (no waiters)",
        "WAIT shared -> EAGAIN, MAP_SHARED page": "WAIT shared, MAP_SHARED (EAGAIN)",
    }
    for r in res["call_cost"]:
        if r["call"] in short and r["ratio"] is not None:
            what = short[r["call"]]
            out.append((f"emulated / real, {what}", ratio(r["ratio"])))
    for layer in ("syscall", "core"):
        rows = [r for r in res["wake_queue"] if r["layer"] == layer]
        if len(rows) >= 2:
            lo, hi = rows[0], rows[-1]
            out.append(
                (
                    f"wake(1) from {hi['n']:,} / from {lo['n']:,} waiters ({layer} layer)",
                    ratio(hi["per_wake"]["median_ns"] / lo["per_wake"]["median_ns"]),
                )
            )
    if res["requeue"]:
        big = res["requeue"][-1]
        out.append(
            (f"CMP_REQUEUE per waiter moved (k={big['k']:,})", ns(big["per_waiter_median_ns"]))
        )
    for r in res["unrelated"]:
        out.append(
            (
                f"{r['call']} with {r['unrelated_waiters']:,} unrelated waiters / none "
                f"[{r['scenario']}]",
                ratio(r["ratio"]),
            )
        )
    if res["unrelated"]:
        worst = max(res["unrelated"], key=lambda r: r["ratio"])
        verdict = "ok" if worst["ratio"] <= 1.2 else "OVER"
        out.append(
            (
                f"call cost with {worst['unrelated_waiters']:,} unrelated waiters / none, worst "
                f"case ({worst['call']}, {worst['scenario']})",
                f"{ratio(worst['ratio'])} (goal <= 1.2x: {verdict})",
            )
        )
    for r in res["memory"]:
        if r["words"] == "one word":
            out.append((f"bytes per queued waiter ({r['layer']})", f"{r['bytes_per_waiter']:,.0f}"))
    pi_short = {
        "pair": "emulated LOCK_PI+UNLOCK_PI (uncontended) / real",
        "try pair": "emulated TRYLOCK_PI+UNLOCK_PI (uncontended) / real",
        "held": "emulated TRYLOCK_PI on a held word (EWOULDBLOCK) / real",
    }
    for r in res.get("pi_uncontended", []):
        if r["kind"] in pi_short and r["ratio"] is not None:
            out.append((pi_short[r["kind"]], ratio(r["ratio"])))
    for r in res.get("pi_cooperative", []):
        if r["kind"] == "handoff":
            out.append(
                ("emulated UNLOCK_PI hand-off to a parked waiter", ns(r["emulated"]["median_ns"]))
            )
    pp = res.get("pi_pingpong")
    if pp and pp["ratio"] is not None:
        net = pp["net_of_probes"]
        out.append(
            (
                "PI hand-off round trip emulated / real",
                f"{ratio(pp['ratio'])} ({ns(pp['emulated']['median_ns'])} vs "
                f"{ns(pp['real']['median_ns'])}; net of the probes "
                f"{ratio(net['ratio'])})",
            )
        )
    return out


# -- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__, 20, argv)
    SAMPLING.gc_off = not args.gc
    cfg = QUICK if args.quick else FULL
    if args.repeats:
        cfg = Config(**{**cfg.__dict__, "repeats": args.repeats})

    probe = LinuxKernel(clock=ManualClock()).new_process().futex
    meta = start_meta(
        cfg.quick,
        cfg.repeats,
        buckets_per_table=probe.private.size,
        queue_order=probe.order.name,
        host_futex=_hostfutex.available(),
    )
    log(f"futex emulated-kernel benchmark ({meta['mode']}), Python {meta['python']}")
    res: dict[str, Any] = {"meta": meta}
    res["call_cost"] = bench_call_cost(cfg)
    collect()
    res["wake_queue"] = bench_wake_queue(cfg)
    collect()
    res["requeue"] = bench_requeue(cfg)
    collect()
    res["unrelated"] = bench_unrelated(cfg)
    collect()
    res["memory"], res["memory_breakdown"] = bench_memory(cfg)
    collect()
    res["pi_uncontended"], res["pi_cooperative"] = bench_pi_uncontended(cfg)
    collect()
    res["pi_pingpong"] = bench_pi_pingpong(cfg)
    ratios = key_ratios(res)
    res["key_ratios"] = dict(ratios)
    end_meta(meta)

    header = (
        f"futex emulated kernel — Python {meta['python']} on {meta['platform']}, "
        f"{meta['cpus']} CPUs, {meta['buckets_per_table']} buckets/table, "
        f"{meta['mode']} run, {cfg.repeats} samples per figure (median, min), "
        f"GC {'off' if SAMPLING.gc_off else 'on'} while timing"
    )
    emit(args, [header, status_line(meta)], build_tables(res, cfg), ratios, res, 140)
    if args.json:
        log(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
