"""Sections 1-4 of ``bench_emulated.py``: FUTEX_WAIT, FUTEX_WAKE and FUTEX_CMP_REQUEUE.

1. the cost per call of WAKE with no waiters and of WAIT returning EAGAIN (private, and
   shared on MAP_PRIVATE / MAP_SHARED pages), emulated against the host kernel;
2. wake(1) from a queue of N waiters on one word, through the syscall layer and the core
   layer;
3. CMP_REQUEUE of k waiters between two words in different buckets;
4. the cost of a WAKE / WAIT-EAGAIN call with many waiters parked on *other* words
   against none.

The calls are checked outside the timed regions (``expect``): their results before the
samples, the queue lengths after them, and the drains, so a figure whose calls did not do
what its label says fails the run.  Between samples the woken waiters are re-parked
(untimed), so every batch of section 2 runs against a queue of N to N + batch waiters.
"""

from __future__ import annotations

import ctypes
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from _emulated_common import (
    CMP_REQUEUE_PRIVATE,
    EAGAIN,
    ENOSYS,
    INT_MAX,
    PAGE,
    PRIV,
    PROT_RW,
    WAIT,
    WAIT_PRIVATE,
    WAKE,
    WAKE_PRIVATE,
    Config,
    FutexCall,
    collect,
    new_process,
    park,
    queued_at,
)
from _host import hostfutex as _hostfutex
from _timing import BenchError, Runner, call_loop, expect, interleaved, log, paired_ratio

from futex.kernel import MATCH_ANY, Waiter
from futex.linux import LinuxKernel, Process, Task, abi
from tests.support.hostfutex import (
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    MAP_SHARED,
    host_futex,
    host_mmap,
)

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


def core_wake_loop(p: Process, uaddr: int, n: int) -> Runner:
    """A runner making ``n`` core-level private wake(1) calls on ``uaddr``."""
    wake, space = p.futex.wake, p.space
    rng = range(n)

    def run() -> None:
        for _ in rng:
            wake(space, uaddr, True, MATCH_ANY, 1)

    return run


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
