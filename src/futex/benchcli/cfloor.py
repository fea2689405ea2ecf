"""The C floor: the same operations in a compiled C program, no Python.

The source below is written into a temporary directory and compiled with the C compiler
(``$CC``, else ``cc`` / ``gcc``) when the run starts; without one the C rows say so.  What it
measures (each mode prints one line per figure: a name, then one number per sample):

- ``pair N REPEATS``: an uncontended lock+unlock pair, ns — a process-shared robust
  ``pthread_mutex_t`` (glibc's robust cross-process lock: the same robust-list protocol as
  futex.sync.Mutex) and Drepper's three-state futex mutex ("Futexes Are Tricky", mutex 3:
  one CAS and one atomic decrement, no owner tracking);
- ``counter N TRIALS CPU``: two forked processes each lock, increment a shared counter,
  unlock, N times; ops/s of both together, robust pthread mutex and Drepper's mutex (the
  counter is checked);
- ``pingpong ROUNDS TRIALS WARMUP CPU``: a FUTEX_WAIT/FUTEX_WAKE round trip between two
  processes over two shared words, ns — the floor under any futex-based semaphore or event;
- ``recover K``: a holder process locks a robust pthread mutex and is SIGKILLed; a waiter
  already blocked in ``pthread_mutex_lock`` in another process gets EOWNERDEAD: ns from
  the kill to that return (CLOCK_MONOTONIC on both sides).

CPU = -1: not pinned; else both processes are pinned to that CPU.  Every process of the
program arms ``alarm(60)``, and the Python side bounds the whole run, so nothing waits for
ever.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from typing import Any

from futex.benchcli.harness import Row

__all__ = ["C_SOURCE", "CFloor", "compile_floor", "floor_rows"]

C_SOURCE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}
static void *shared(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    memset(p, 0, n);
    return p;
}
static long futex(uint32_t *a, int op, uint32_t v)
{
    return syscall(SYS_futex, a, op, v, NULL, NULL, 0);
}
static void pin(int cpu)
{
    cpu_set_t s;
    if (cpu < 0) return;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    if (sched_setaffinity(0, sizeof s, &s)) { perror("sched_setaffinity"); exit(1); }
}
static void robust_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pthread_mutex_init(m, &a)) { fprintf(stderr, "pthread_mutex_init\n"); exit(1); }
    pthread_mutexattr_destroy(&a);
}
/* Drepper, "Futexes Are Tricky", mutex 3: 0 free, 1 locked, 2 locked with waiters. */
static void fx_lock(uint32_t *w)
{
    uint32_t c = 0;
    if (__atomic_compare_exchange_n(w, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
    if (c != 2) c = __atomic_exchange_n(w, 2, __ATOMIC_ACQUIRE);
    while (c != 0) {
        futex(w, FUTEX_WAIT, 2);
        c = __atomic_exchange_n(w, 2, __ATOMIC_ACQUIRE);
    }
}
static void fx_unlock(uint32_t *w)
{
    if (__atomic_fetch_sub(w, 1, __ATOMIC_RELEASE) != 1) {
        __atomic_store_n(w, 0, __ATOMIC_RELEASE);
        futex(w, FUTEX_WAKE, 1);
    }
}

struct shm {
    pthread_mutex_t m;
    uint32_t fw, ready, go, rc;
    uint32_t ping, pad1[15], pong, pad2[15];
    long long t0[2], t1[2], t_acq;
    long counter;
};
static struct shm *s;

static void lock(int kind) { if (kind) fx_lock(&s->fw); else pthread_mutex_lock(&s->m); }
static void unlock(int kind) { if (kind) fx_unlock(&s->fw); else pthread_mutex_unlock(&s->m); }

static int pair(long n, int repeats)
{
    static const char *names[2] = {"robust_pthread", "drepper"};
    double out[2][200];
    if (repeats > 200) repeats = 200;
    robust_init(&s->m);
    for (int r = -1; r < repeats; r++)
        for (int j = 0; j < 2; j++) {
            int kind = (j + (r < 0 ? 0 : r)) % 2;
            double best = 0, best_share = -1;
            for (int attempt = 0; attempt < 5; attempt++) {
                long long c0 = now(CLOCK_THREAD_CPUTIME_ID), t0 = now(CLOCK_MONOTONIC);
                for (long i = 0; i < n; i++) { lock(kind); unlock(kind); }
                long long t1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_THREAD_CPUTIME_ID);
                double share = (double)(c1 - c0) / (double)(t1 - t0 + 1);
                if (share > best_share) { best_share = share; best = (double)(t1 - t0) / n; }
                if (share >= 0.9) break;
            }
            if (r >= 0) out[kind][r] = best;
        }
    for (int k = 0; k < 2; k++) {
        printf("%s", names[k]);
        for (int r = 0; r < repeats; r++) printf(" %.3f", out[k][r]);
        printf("\n");
    }
    return 0;
}

static int counter(long n, int trials, int cpu)
{
    static const char *names[2] = {"robust_pthread", "drepper"};
    for (int kind = 0; kind < 2; kind++) {
        printf("%s", names[kind]);
        for (int t = 0; t < trials; t++) {
            pid_t pid[2];
            robust_init(&s->m);
            s->fw = s->ready = s->go = 0;
            s->counter = 0;
            for (int w = 0; w < 2; w++) {
                pid[w] = fork();
                if (pid[w] == 0) {
                    alarm(60);
                    pin(cpu);
                    __atomic_fetch_add(&s->ready, 1, __ATOMIC_SEQ_CST);
                    while (!__atomic_load_n(&s->go, __ATOMIC_SEQ_CST)) sched_yield();
                    s->t0[w] = now(CLOCK_MONOTONIC);
                    for (long i = 0; i < n; i++) { lock(kind); s->counter++; unlock(kind); }
                    s->t1[w] = now(CLOCK_MONOTONIC);
                    _exit(0);
                }
            }
            while (__atomic_load_n(&s->ready, __ATOMIC_SEQ_CST) < 2) sched_yield();
            __atomic_store_n(&s->go, 1, __ATOMIC_SEQ_CST);
            for (int w = 0; w < 2; w++) {
                int st;
                if (waitpid(pid[w], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) return 1;
            }
            if (s->counter != 2 * n) { fprintf(stderr, "counter %ld\n", s->counter); return 1; }
            long long a = s->t0[0] < s->t0[1] ? s->t0[0] : s->t0[1];
            long long b = s->t1[0] > s->t1[1] ? s->t1[0] : s->t1[1];
            printf(" %.1f", 2e9 * n / (double)(b - a));
        }
        printf("\n");
    }
    return 0;
}

static int pingpong(long rounds, int trials, long warmup, int cpu)
{
    pin(cpu);
    uint32_t total = (uint32_t)(warmup + rounds * trials);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(60);
        for (uint32_t i = 1; i <= total; i++) {
            while (__atomic_load_n(&s->ping, __ATOMIC_SEQ_CST) != i)
                futex(&s->ping, FUTEX_WAIT, i - 1);
            __atomic_store_n(&s->pong, i, __ATOMIC_SEQ_CST);
            futex(&s->pong, FUTEX_WAKE, 1);
        }
        _exit(0);
    }
    uint32_t i = 0;
    printf("futex");
    for (int t = -1; t < trials; t++) {
        long k = t < 0 ? warmup : rounds;
        long long t0 = now(CLOCK_MONOTONIC);
        for (long j = 0; j < k; j++) {
            i++;
            __atomic_store_n(&s->ping, i, __ATOMIC_SEQ_CST);
            futex(&s->ping, FUTEX_WAKE, 1);
            while (__atomic_load_n(&s->pong, __ATOMIC_SEQ_CST) != i)
                futex(&s->pong, FUTEX_WAIT, i - 1);
        }
        if (t >= 0 && k > 0) printf(" %.3f", (double)(now(CLOCK_MONOTONIC) - t0) / k);
    }
    printf("\n");
    int st;
    return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static int asleep(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'S';
}

static int recover(int k)
{
    printf("robust_pthread");
    for (int r = 0; r < k; r++) {
        robust_init(&s->m);
        s->ready = s->go = 0;
        s->rc = 12345;
        pid_t holder = fork();
        if (holder == 0) {
            alarm(60);
            pthread_mutex_lock(&s->m);
            __atomic_store_n(&s->ready, 1, __ATOMIC_SEQ_CST);
            for (;;) pause();
        }
        while (!__atomic_load_n(&s->ready, __ATOMIC_SEQ_CST)) sched_yield();
        pid_t waiter = fork();
        if (waiter == 0) {
            alarm(60);
            __atomic_store_n(&s->go, 1, __ATOMIC_SEQ_CST);
            int rc = pthread_mutex_lock(&s->m);
            s->t_acq = now(CLOCK_MONOTONIC);
            s->rc = (uint32_t)rc;
            if (rc == EOWNERDEAD) pthread_mutex_consistent(&s->m);
            if (rc == 0 || rc == EOWNERDEAD) pthread_mutex_unlock(&s->m);
            _exit(0);
        }
        while (!__atomic_load_n(&s->go, __ATOMIC_SEQ_CST)) sched_yield();
        for (int i = 0; i < 5000 && asleep(waiter) == 0; i++) usleep(200);
        long long t_kill = now(CLOCK_MONOTONIC);
        kill(holder, SIGKILL);
        int st;
        waitpid(holder, &st, 0);
        if (waitpid(waiter, &st, 0) != waiter || !WIFEXITED(st) || s->rc != EOWNERDEAD) {
            fprintf(stderr, "waiter: rc %u\n", s->rc);
            return 1;
        }
        printf(" %lld", s->t_acq - t_kill);
    }
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    alarm(120);
    s = shared(sizeof *s);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (argc == 4 && !strcmp(argv[1], "pair")) return pair(atol(argv[2]), atoi(argv[3]));
    if (argc == 5 && !strcmp(argv[1], "counter"))
        return counter(atol(argv[2]), atoi(argv[3]), atoi(argv[4]));
    if (argc == 6 && !strcmp(argv[1], "pingpong"))
        return pingpong(atol(argv[2]), atoi(argv[3]), atol(argv[4]), atoi(argv[5]));
    if (argc == 3 && !strcmp(argv[1], "recover")) return recover(atoi(argv[2]));
    fprintf(stderr, "usage: pair N R | counter N T CPU | pingpong R T W CPU | recover K\n");
    return 2;
}
"""


class CFloor:
    """The compiled program (``exe``), or why there is none (``why``)."""

    def __init__(self, exe: str | None, why: str) -> None:
        self.exe = exe
        self.why = why

    def run(self, *args: object, timeout: float = 120.0) -> dict[str, list[float]]:
        """Run one mode; its figures by name.  Raises RuntimeError when there is no
        program or the run failed (the caller turns that into the rows' status)."""
        if self.exe is None:
            raise RuntimeError(self.why)
        # Its own process group: on a timeout or an interrupt the program and the
        # processes it forked are killed together.
        proc = subprocess.Popen(
            [self.exe, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            if isinstance(exc, subprocess.TimeoutExpired):
                raise RuntimeError(f"C floor timed out after {timeout:g} s") from None
            raise
        if proc.returncode != 0:
            raise RuntimeError(f"C floor failed ({proc.returncode}): {stderr.strip()[:200]}")
        out: dict[str, list[float]] = {}
        for line in stdout.splitlines():
            name, *vals = line.split()
            out[name] = [float(v) for v in vals]
        return out


def compile_floor(tmpdir: str) -> CFloor:
    """Write :data:`C_SOURCE` into ``tmpdir`` and compile it."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        return CFloor(None, "not available: no C compiler (cc/gcc) found")
    src = os.path.join(tmpdir, "sync_floor.c")
    exe = os.path.join(tmpdir, "sync_floor")
    with open(src, "w") as fh:
        fh.write(C_SOURCE)
    try:
        r = subprocess.run(
            [cc, "-O2", "-pthread", "-o", exe, src], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CFloor(None, f"not available: the C compiler failed: {exc}")
    if r.returncode != 0:
        return CFloor(None, f"not available: the C floor did not compile: {r.stderr[:200]}")
    return CFloor(exe, "")


def floor_rows(
    section: str, names: dict[str, str], run: Callable[[], dict[str, list[float]]], **kw: Any
) -> list[Row]:
    """One row per figure of a C floor run: ``names`` maps the program's figure names to
    row names, ``run`` runs the mode, ``kw`` are the rows' other fields.  A failed run
    (RuntimeError: no compiler, a timeout) becomes every row's status."""
    rows = [Row(section, label, **kw) for label in names.values()]
    try:
        got = run()
    except RuntimeError as exc:
        for r in rows:
            r.status = str(exc)
        return rows
    for key, row in zip(names, rows, strict=True):
        row.samples = got.get(key, [])
    return rows
