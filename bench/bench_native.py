#!/usr/bin/env python3
"""Benchmark of ``futex.native`` (the C extension) against ctypes and against C.

Run from the repository root::

    python bench/bench_native.py            # full run, about half a minute
    python bench/bench_native.py --quick    # ~10 s
    python bench/bench_native.py --plain --json figures.json
    # --repeats N: samples per figure; --gc: keep the cyclic GC on while timing

What it measures, all in one run; every ratio is against a baseline measured in the
same run:

1. the cost per call, from Python, of an atomic load, a CAS, FUTEX_WAKE with no waiters
   (shared and private) and FUTEX_WAIT on a mismatched value (EAGAIN), on a word in a
   MAP_SHARED anonymous page: through ``futex.native.Word``, through the raw entry
   ``futex.native.syscall_futex``, through ctypes (``libc.syscall`` with ``argtypes``
   set), and in a C loop doing the same (compiled by this script with gcc into a
   temporary directory).  ``Word.wait`` compares the value before any syscall, so its
   mismatch row measures that shortcut; the raw rows measure the syscall.
2. a wait/wake ping-pong between two processes (``os.fork``) on two words of a shared
   page, per round trip (each side: store, FUTEX_WAKE, then FUTEX_WAIT until the other
   answers), with both processes pinned to one CPU (``os.sched_setaffinity``) and
   unpinned, against the same protocol in C (the floor).  Both processes are
   single-threaded, so ``Word.wait`` keeps the GIL while asleep.  Two more pinned rows:
   every wait with a timeout (an absolute CLOCK_MONOTONIC deadline, as ``Word.wait``
   makes one; the C floor the same), and, last, after a thread has started, where every
   wait hands the GIL over.

Timing: ``time.perf_counter_ns`` around a batch of calls, divided by the batch size.
Python figures that are compared are sampled round-robin (the order rotating each
round) and their ratio is the median of the per-round ratios; the C loops sample
themselves the same way in their own process, and ratios against them are ratios of
medians.  A sample during which the thread was descheduled (thread CPU time < 90% of
wall time: the machine is shared) is retried.  The cyclic GC is off inside timed
regions, as ``timeit`` does.  Ping-pong samples are not checked (the two processes take
turns by design); their median and min are reported.
"""

from __future__ import annotations

import ctypes
import gc
import mmap
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from _report import Table, emit, ns, parse_args, ratio
from _timing import (
    SAMPLING,
    Runner,
    Stat,
    call_loop,
    end_meta,
    expect,
    interleaved,
    log,
    paired_ratio,
    start_meta,
    status_line,
)

try:
    import futex.native as native
    from futex.native import Word, abi, sleeps_release_gil
except ImportError as exc:  # pragma: no cover - depends on the build
    sys.exit(f"bench_native: {exc}")

SYS_futex = native.SYS_futex
WAKE, WAIT, PRIV = abi.FUTEX_WAKE, abi.FUTEX_WAIT, abi.FUTEX_PRIVATE_FLAG


#: Timeout of every wait in the timed ping-pong row (seconds; far beyond any round trip).
TIMED_S = 60


# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    quick: bool
    repeats: int  # samples per figure
    call_n: int  # calls per sample (section 1)
    c_scale: int  # the C loops make call_n * c_scale calls per sample (they are fast)
    rounds: int  # ping-pong round trips per sample
    warmup_rounds: int


FULL = Config(
    quick=False, repeats=21, call_n=100_000, c_scale=5, rounds=20_000, warmup_rounds=2_000
)
QUICK = Config(quick=True, repeats=9, call_n=20_000, c_scale=5, rounds=5_000, warmup_rounds=1_000)


# -- measurement -------------------------------------------------------------------------------


def loop0(f: Callable[[], object], n: int) -> Runner:
    rng = range(n)

    def run() -> None:
        for _ in rng:
            f()

    return run


def loop1(f: Callable[[int], object], a: int, n: int) -> Runner:
    rng = range(n)

    def run() -> None:
        for _ in rng:
            f(a)

    return run


def loop2(f: Callable[[int, int], object], a: int, b: int, n: int) -> Runner:
    rng = range(n)

    def run() -> None:
        for _ in rng:
            f(a, b)

    return run


def loop7(f: Callable[..., object], args: tuple[int, ...], n: int) -> Runner:
    a0, a1, a2, a3, a4, a5, a6 = args
    rng = range(n)

    def run() -> None:
        for _ in rng:
            f(a0, a1, a2, a3, a4, a5, a6)

    return run


# -- the C side -----------------------------------------------------------------------------

C_SOURCE = r"""
#define _GNU_SOURCE
#include <linux/futex.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint32_t *w;
static volatile uint32_t sink;

static long futex(uint32_t *a, int op, uint32_t v)
{
    return syscall(SYS_futex, a, op, v, NULL, NULL, 0);
}

/* FUTEX_WAIT_BITSET until an absolute CLOCK_MONOTONIC deadline `secs` from now, as
 * futex.native.Word.wait(v, secs) does. */
static long futex_wait_timed(uint32_t *a, uint32_t v, long secs)
{
    struct timespec d;
    clock_gettime(CLOCK_MONOTONIC, &d);
    d.tv_sec += secs;
    return syscall(SYS_futex, a, FUTEX_WAIT_BITSET, v, &d, NULL, FUTEX_BITSET_MATCH_ANY);
}

static long long ns(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void b_load(long n)
{
    uint32_t s = 0;
    for (long i = 0; i < n; i++) s += __atomic_load_n(w, __ATOMIC_SEQ_CST);
    sink = s;
}
static void b_cas(long n)
{
    for (long i = 0; i < n; i++) {
        uint32_t e = 0;
        __atomic_compare_exchange_n(w, &e, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    }
}
static void b_wake(long n) { for (long i = 0; i < n; i++) futex(w, FUTEX_WAKE, 1); }
static void b_wake_private(long n) { for (long i = 0; i < n; i++) futex(w, FUTEX_WAKE_PRIVATE, 1); }
static void b_wait_eagain(long n) { for (long i = 0; i < n; i++) futex(w, FUTEX_WAIT, 1); }
static void b_wait_eagain_private(long n)
{
    for (long i = 0; i < n; i++) futex(w, FUTEX_WAIT_PRIVATE, 1);
}

struct body { const char *name; void (*run)(long); };
static const struct body bodies[] = {
    {"load", b_load}, {"cas", b_cas}, {"wake", b_wake}, {"wake_private", b_wake_private},
    {"wait_eagain", b_wait_eagain}, {"wait_eagain_private", b_wait_eagain_private},
};
#define NB (sizeof bodies / sizeof bodies[0])

/* calls N REPEATS: per body one line "name ns/op ns/op ...", sampled round-robin. */
static int calls(long n, int repeats)
{
    static double out[NB][1000];
    w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    *w = 0;
    for (size_t b = 0; b < NB; b++) bodies[b].run(n);
    for (int r = 0; r < repeats; r++) {
        for (size_t j = 0; j < NB; j++) {
            size_t b = (j + (size_t)r) % NB;
            double best = 0, best_share = -1;
            for (int attempt = 0; attempt < 7; attempt++) {
                long long c0 = ns(CLOCK_THREAD_CPUTIME_ID), t0 = ns(CLOCK_MONOTONIC);
                bodies[b].run(n);
                long long t1 = ns(CLOCK_MONOTONIC), c1 = ns(CLOCK_THREAD_CPUTIME_ID);
                double share = (double)(c1 - c0) / (double)(t1 - t0);
                if (share > best_share) { best_share = share; best = (double)(t1 - t0) / n; }
                if (share >= 0.9) break;
            }
            out[b][r] = best;
        }
    }
    for (size_t b = 0; b < NB; b++) {
        printf("%s", bodies[b].name);
        for (int r = 0; r < repeats; r++) printf(" %.3f", out[b][r]);
        printf("\n");
    }
    return 0;
}

/* pingpong ROUNDS REPEATS WARMUP CPU TIMEOUT: ns per round trip, one line of samples.
 * TIMEOUT > 0: every wait has a deadline TIMEOUT seconds ahead (never reached). */
#define WAIT_FOR(a, v)                                                                     \
    (timeout > 0 ? futex_wait_timed((a), (v), timeout) : futex((a), FUTEX_WAIT, (v)))
static int pingpong(long rounds, int repeats, long warmup, int cpu, long timeout)
{
    uint32_t *ping = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                          -1, 0);
    uint32_t *pong = ping + 16;
    long total = warmup + rounds * repeats;
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) { perror("affinity"); return 1; }
    }
    pid_t pid = fork();
    if (pid == 0) {
        for (uint32_t i = 1; i <= (uint32_t)total; i++) {
            while (__atomic_load_n(ping, __ATOMIC_SEQ_CST) != i) WAIT_FOR(ping, i - 1);
            __atomic_store_n(pong, i, __ATOMIC_SEQ_CST);
            futex(pong, FUTEX_WAKE, 1);
        }
        _exit(0);
    }
    uint32_t i = 0;
    printf("pingpong");
    for (int r = -1; r < repeats; r++) {
        long k = r < 0 ? warmup : rounds;
        long long t0 = ns(CLOCK_MONOTONIC);
        for (long j = 0; j < k; j++) {
            i++;
            __atomic_store_n(ping, i, __ATOMIC_SEQ_CST);
            futex(ping, FUTEX_WAKE, 1);
            while (__atomic_load_n(pong, __ATOMIC_SEQ_CST) != i) WAIT_FOR(pong, i - 1);
        }
        long long t1 = ns(CLOCK_MONOTONIC);
        if (r >= 0) printf(" %.3f", (double)(t1 - t0) / k);
    }
    printf("\n");
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "calls") == 0)
        return calls(atol(argv[2]), atoi(argv[3]));
    if (argc == 7 && strcmp(argv[1], "pingpong") == 0)
        return pingpong(atol(argv[2]), atoi(argv[3]), atol(argv[4]), atoi(argv[5]),
                        atol(argv[6]));
    fprintf(stderr, "usage: calls N REPEATS | pingpong ROUNDS REPEATS WARMUP CPU TIMEOUT\n");
    return 2;
}
"""


def compile_c(tmpdir: str) -> tuple[str | None, str]:
    """Build the C baselines; returns (binary or None, why not)."""
    cc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
    if cc is None:
        return None, "no C compiler (gcc/cc) found"
    src = os.path.join(tmpdir, "bench_futex.c")
    exe = os.path.join(tmpdir, "bench_futex")
    with open(src, "w") as fh:
        fh.write(C_SOURCE)
    r = subprocess.run([cc, "-O2", "-Wall", "-o", exe, src], capture_output=True, text=True)
    if r.returncode != 0:
        return None, f"C baseline did not compile: {r.stderr.strip()[:300]}"
    return exe, ""


def run_c(exe: str, *args: object) -> dict[str, Stat]:
    r = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, check=True)
    out: dict[str, Stat] = {}
    for line in r.stdout.splitlines():
        name, *vals = line.split()
        out[name] = Stat([float(v) for v in vals])
    return out


# -- 1. per-call cost --------------------------------------------------------------------------


def bench_calls(cfg: Config, exe: str | None) -> list[dict[str, Any]]:
    log("1. cost per call: Word / syscall_futex / ctypes / C loop")
    mem = mmap.mmap(-1, mmap.PAGESIZE)  # MAP_SHARED | MAP_ANONYMOUS
    w = Word(mem, 0)
    wp = Word(mem, 0, private=True)
    a = w.address
    libc = ctypes.CDLL(None, use_errno=True)
    sc = libc.syscall
    sc.restype = ctypes.c_long
    sc.argtypes = [ctypes.c_long] * 7
    cword = ctypes.c_uint32.from_address(a)  # no buffer export: mem can close at the end
    sf = native.syscall_futex
    n = cfg.call_n

    expect(w.wake(), 0, "Word.wake")
    expect(w.wait(1), True, "Word.wait mismatch")
    expect(sf(a, WAIT, 1, 0, 0, 0), -11, "syscall_futex WAIT")
    expect(sc(SYS_futex, a, WAIT, 1, 0, 0, 0), -1, "ctypes WAIT")

    # (label, C body, {column: runner})
    cases: list[tuple[str, str, dict[str, Runner]]] = [
        (
            "atomic load",
            "load",
            {"native": loop0(w.load, n), "ctypes": loop0(lambda: cword.value, n)},
        ),
        ("CAS", "cas", {"native": loop2(w.cas, 0, 0, n)}),
        (
            "FUTEX_WAKE, no waiters (shared)",
            "wake",
            {
                "native": loop0(w.wake, n),
                "raw": call_loop(sf, (a, WAKE, 1, 0, 0, 0), n),
                "ctypes": loop7(sc, (SYS_futex, a, WAKE, 1, 0, 0, 0), n),
            },
        ),
        (
            "FUTEX_WAKE_PRIVATE, no waiters",
            "wake_private",
            {
                "native": loop0(wp.wake, n),
                "raw": call_loop(sf, (a, WAKE | PRIV, 1, 0, 0, 0), n),
                "ctypes": loop7(sc, (SYS_futex, a, WAKE | PRIV, 1, 0, 0, 0), n),
            },
        ),
        (
            "FUTEX_WAIT, value mismatch (shared)",
            "wait_eagain",
            {
                "native": loop1(w.wait, 1, n),
                "raw": call_loop(sf, (a, WAIT, 1, 0, 0, 0), n),
                "ctypes": loop7(sc, (SYS_futex, a, WAIT, 1, 0, 0, 0), n),
            },
        ),
        (
            "FUTEX_WAIT_PRIVATE, value mismatch",
            "wait_eagain_private",
            {
                "native": loop1(wp.wait, 1, n),
                "raw": call_loop(sf, (a, WAIT | PRIV, 1, 0, 0, 0), n),
                "ctypes": loop7(sc, (SYS_futex, a, WAIT | PRIV, 1, 0, 0, 0), n),
            },
        ),
    ]
    runners: dict[str, tuple[Runner, int]] = {}
    for label, _, cols in cases:
        for col, run in cols.items():
            runners[f"{col} {label}"] = (run, n)
    runners["ref empty loop"] = (loop0(int, n), n)  # loop + a trivial C call
    stats = interleaved(runners, cfg.repeats)
    cstats: dict[str, Stat] = {}
    if exe is not None:
        cstats = run_c(exe, "calls", n * cfg.c_scale, cfg.repeats)
    rows: list[dict[str, Any]] = []
    for label, cname, _ in cases:
        nat = stats[f"native {label}"]
        row: dict[str, Any] = {"call": label, "native": nat.as_json()}
        for col in ("raw", "ctypes"):
            st = stats.get(f"{col} {label}")
            row[col] = st.as_json() if st else None
            row[f"native_over_{col}"] = paired_ratio(nat, st) if st else None
        c = cstats.get(cname)
        row["c_loop"] = c.as_json() if c else None
        row["native_over_c"] = nat.median / c.median if c else None
        raw = stats.get(f"raw {label}")
        row["raw_over_c"] = raw.median / c.median if c and raw else None
        rows.append(row)
    ref = stats["ref empty loop"].as_json()
    rows.append({"call": "reference: Python loop calling int()", **ref})
    for x in (w, wp):
        x.release()
    mem.close()
    return rows


# -- 2. ping-pong ------------------------------------------------------------------------------


def py_pingpong(cfg: Config, cpu: int | None, timeout: float | None) -> Stat:
    """Round trips between this process and a forked child over two shared words; each
    wait has ``timeout`` (never reached), or none."""
    mem = mmap.mmap(-1, mmap.PAGESIZE)
    ping, pong = Word(mem, 0), Word(mem, 64)
    total = cfg.warmup_rounds + cfg.rounds * cfg.repeats
    saved = os.sched_getaffinity(0)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    gc_was = gc.isenabled()
    gc.disable()
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 1
            try:
                for i in range(1, total + 1):
                    while ping.load() != i:
                        ping.wait(i - 1, timeout)
                    pong.store(i)
                    pong.wake()
                code = 0
            finally:
                os._exit(code)
        stat = Stat()
        done = 0
        for r in range(-1, cfg.repeats):
            k = cfg.warmup_rounds if r < 0 else cfg.rounds
            t0 = time.perf_counter_ns()
            for i in range(done + 1, done + k + 1):
                ping.store(i)
                ping.wake()
                while pong.load() != i:
                    pong.wait(i - 1, timeout)
            t1 = time.perf_counter_ns()
            done += k
            if r >= 0:
                stat.samples.append((t1 - t0) / k)
        _, status = os.waitpid(pid, 0)
        expect(os.waitstatus_to_exitcode(status), 0, "ping-pong child")
    finally:
        if gc_was:
            gc.enable()
        os.sched_setaffinity(0, saved)
    ping.release()
    pong.release()
    mem.close()
    return stat


def bench_pingpong(cfg: Config, exe: str | None) -> list[dict[str, Any]]:
    """Python and C ping-pongs alternate in blocks, so that drift hits both alike."""
    log("2. two-process wait/wake ping-pong, pinned and unpinned")
    cpus = sorted(os.sched_getaffinity(0))
    blocks = 3
    per_block = max(1, cfg.repeats // blocks)
    part = Config(**{**cfg.__dict__, "repeats": per_block})
    rows: list[dict[str, Any]] = []
    # The GIL-handed-over row comes last: once a thread has run, this process (and every
    # child it forks) releases the GIL in each sleep for good.
    variants = [  # (pinned, timeout of each wait, GIL handed over)
        (True, None, False),
        (True, TIMED_S, False),
        (False, None, False),
        (True, None, True),
    ]
    for pinned, timeout, handover in variants:
        cpu = cpus[0] if pinned else None
        if not pinned and len(cpus) < 2:
            continue
        if handover:
            started = threading.Thread(target=lambda: None)
            started.start()
            started.join()
            expect(sleeps_release_gil(), True, "sleeps release the GIL after a thread ran")
        else:
            expect(sleeps_release_gil(), False, "a single-threaded process keeps the GIL")
        where = f"pinned to CPU {cpu}" if pinned else f"unpinned ({len(cpus)} CPUs)"
        where += ", GIL handed over" if handover else ""
        where += f", waits with a {TIMED_S} s timeout" if timeout else ""
        log(f"   {where}")
        py, c = Stat(), Stat()
        for _ in range(blocks):
            py.samples += py_pingpong(part, cpu, timeout).samples
            if exe is not None:
                c_cpu = -1 if cpu is None else cpu
                args = (cfg.rounds, per_block, cfg.warmup_rounds, c_cpu, timeout or 0)
                c.samples += run_c(exe, "pingpong", *args)["pingpong"].samples
        have_c = bool(c.samples)
        rows.append(
            {
                "placement": where,
                "pinned": pinned,
                "gil_handed_over": handover,
                "timeout_s": timeout,
                "python": py.as_json(),
                "c_floor": c.as_json() if have_c else None,
                "ratio": py.median / c.median if have_c else None,
                "ratio_of_mins": py.min / c.min if have_c else None,
            }
        )
    return rows


# -- report ------------------------------------------------------------------------------------


def med(d: dict[str, Any] | None) -> float | None:
    return None if d is None else float(d["median_ns"])


def build_tables(res: dict[str, Any], cfg: Config) -> list[Table]:
    t1 = Table(
        "1. Cost per call from Python (median per call)",
        [
            "call",
            "Word",
            "syscall_futex",
            "ctypes",
            "C loop",
            "Word / ctypes",
            "Word / C",
            "raw / C",
        ],
        note=(
            f"{cfg.call_n:,} calls per sample, {cfg.repeats} samples; the word is in a "
            "MAP_SHARED anonymous page. Word: futex.native.Word methods; Word.wait "
            "compares the value first, so its mismatch rows make no syscall. "
            "syscall_futex: the raw entry (6 int args). ctypes: libc.syscall with argtypes "
            "(a plain c_uint32 read for the load; ctypes has no CAS). C loop: the same "
            "call in a compiled loop (no Python). Word / ctypes: median of per-round "
            "ratios; ratios against C: ratio of medians."
        ),
    )
    for r in res["calls"]:
        if "native" not in r:
            t1.rows.append([r["call"], ns(r["median_ns"]), "-", "-", "-", "-", "-", "-"])
            continue
        t1.rows.append(
            [
                r["call"],
                ns(med(r["native"])),
                ns(med(r["raw"])),
                ns(med(r["ctypes"])),
                ns(med(r["c_loop"])),
                ratio(r["native_over_ctypes"]),
                ratio(r["native_over_c"]),
                ratio(r["raw_over_c"]),
            ]
        )
    t2 = Table(
        "2. Two-process FUTEX_WAIT/FUTEX_WAKE ping-pong (per round trip)",
        ["placement", "Python (Word)", "min", "C floor", "min", "Python / C", "of mins"],
        note=(
            f"{cfg.rounds:,} round trips per sample, {cfg.repeats // 3 * 3} samples in 3 "
            "blocks alternating Python and C, each block after "
            f"{cfg.warmup_rounds:,} warm-up round trips; os.fork, two shared words 64 bytes "
            "apart; round i: one side stores i in ping, wakes (always), and waits until pong "
            "holds i; the other waits until ping holds i, then stores i in pong and wakes. "
            "Both processes are single-threaded, so Word.wait keeps the GIL while it sleeps "
            "(nobody could take it); the 'GIL handed over' row runs after a thread has "
            "started, as in any threaded program, and drops and retakes it in every wait. "
            f"Timed rows: every wait has a {TIMED_S} s timeout on both sides "
            "(FUTEX_WAIT_BITSET with an absolute CLOCK_MONOTONIC deadline)."
        ),
    )
    for r in res["pingpong"]:
        t2.rows.append(
            [
                r["placement"],
                ns(med(r["python"])),
                ns(r["python"]["min_ns"]),
                ns(med(r["c_floor"])),
                ns(r["c_floor"]["min_ns"]) if r["c_floor"] else "-",
                ratio(r["ratio"]),
                ratio(r["ratio_of_mins"]),
            ]
        )
    return [t1, t2]


def verdict(v: float | None, limit: float) -> str:
    if v is None:
        return "-"
    return f"{ratio(v)} (target <= {limit}x: {'ok' if v <= limit else 'MISSED'})"


def raw_over(row: dict[str, Any], col: str) -> float | None:
    raw, other = med(row["raw"]), med(row[col])
    return None if raw is None or other is None else raw / other


def key_ratios(res: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    by = {r["call"]: r for r in res["calls"]}
    wake = by.get("FUTEX_WAKE, no waiters (shared)")
    if wake:
        out.append(("Word.wake (no waiters) / ctypes", verdict(wake["native_over_ctypes"], 0.5)))
        out.append(("Word.wake (no waiters) / C loop", verdict(wake["native_over_c"], 1.3)))
        out.append(("syscall_futex WAKE / ctypes", ratio(raw_over(wake, "ctypes"))))
    wakep = by.get("FUTEX_WAKE_PRIVATE, no waiters")
    if wakep:
        out.append(("Word.wake private / C loop", ratio(wakep["native_over_c"])))
    waitm = by.get("FUTEX_WAIT, value mismatch (shared)")
    if waitm:
        out.append(("syscall_futex WAIT (EAGAIN) / C loop", ratio(waitm["raw_over_c"])))
        out.append(("syscall_futex WAIT (EAGAIN) / ctypes", ratio(raw_over(waitm, "ctypes"))))
    for r in res["pingpong"]:
        label = f"ping-pong {r['placement']}: Python / C floor"
        pinned_alone = r["pinned"] and not r["gil_handed_over"] and not r["timeout_s"]
        out.append((label, verdict(r["ratio"], 1.3) if pinned_alone else ratio(r["ratio"])))
    return out


# -- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__, 10, argv)
    SAMPLING.gc_off = not args.gc
    cfg = QUICK if args.quick else FULL
    if args.repeats:
        cfg = Config(**{**cfg.__dict__, "repeats": min(args.repeats, 1000)})

    meta = start_meta(cfg.quick, cfg.repeats)
    log(f"futex.native benchmark ({meta['mode']}), Python {meta['python']}")
    res: dict[str, Any] = {"meta": meta}
    with tempfile.TemporaryDirectory(prefix="bench_native_") as tmp:
        exe, why = compile_c(tmp)
        meta["c_baseline"] = "compiled" if exe else why
        if exe is None:
            log(f"no C baselines: {why}")
        res["calls"] = bench_calls(cfg, exe)
        gc.collect()
        res["pingpong"] = bench_pingpong(cfg, exe)
    ratios = key_ratios(res)
    res["key_ratios"] = dict(ratios)
    end_meta(meta)

    header = (
        f"futex.native — Python {meta['python']} on {meta['platform']}, {meta['cpus']} CPUs, "
        f"{meta['mode']} run, {cfg.repeats} samples per figure, "
        f"GC {'off' if SAMPLING.gc_off else 'on'} while timing; C baselines: "
        f"{meta['c_baseline']}"
    )
    emit(args, [header, status_line(meta)], build_tables(res, cfg), ratios, res)
    if args.json:
        log(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
