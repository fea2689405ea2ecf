"""The runner and the process-level behaviour of install(ql): what a guest's end looks
like (exit status, Qiling's deadlock report, exit_group from any thread), the report, and
uninstall giving stock Qiling back -- on guests compiled here (skipped as the corpus is)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from futex.integrations.qiling.run import DEADLOCK
from tests.integrations.qiling.conftest import C_FLAGS, Corpus, _compile

TIMEOUT = 120

#: A self-deadlock: the main thread holds a normal mutex and joins a thread that wants it
#: (every thread waits for good; no timer).
DEADLOCKED = r"""
#include <pthread.h>
#include <stdio.h>
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static void *take(void *a) { (void)a; pthread_mutex_lock(&m); return 0; }
int main(void) {
    pthread_t t;
    pthread_mutex_lock(&m);
    pthread_create(&t, 0, take, 0);
    pthread_join(t, 0);
    puts("unreachable");
    return 0;
}
"""

#: exit(7) from a second thread while the main thread waits in pthread_join: exit_group(2)
#: ends the whole process with 7 (Linux ``do_group_exit``); stock Qiling ends only the
#: calling thread, and main returns 3.
EXIT_FROM_THREAD = r"""
#include <pthread.h>
#include <stdlib.h>
static void *quit(void *a) { (void)a; exit(7); }
int main(void) {
    pthread_t t;
    pthread_create(&t, 0, quit, 0);
    pthread_join(t, 0);
    return 3;
}
"""

#: A timed condvar wait nobody signals, then status 5: the exit status passes through.
TIMED_THEN_5 = r"""
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
int main(void) {
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += 20000000;
    if (t.tv_nsec >= 1000000000) { t.tv_sec++; t.tv_nsec -= 1000000000; }
    pthread_mutex_lock(&m);
    int r = pthread_cond_timedwait(&c, &m, &t);
    pthread_mutex_unlock(&m);
    printf("%s\n", r == ETIMEDOUT ? "ETIMEDOUT" : "other");
    return 5;
}
"""


@pytest.fixture(scope="module")
def guests(corpus: Corpus) -> dict[str, Path]:
    """The three programs above, built like the corpus's C guests (skipped as they are)."""
    corpus.binary("mutex_counter")  # skips with the corpus's reason where C does not build
    out: dict[str, Path] = {}
    for name, source in (("deadlocked", DEADLOCKED), ("exit_from_thread", EXIT_FROM_THREAD),
                         ("timed_then_5", TIMED_THEN_5)):  # fmt: skip
        src = corpus.rootfs / f"{name}.c"
        src.write_text(source)
        err = _compile(["gcc", *C_FLAGS], src, corpus.rootfs / name)
        assert err is None, f"{name} does not compile: {err}"
        out[name] = corpus.rootfs / name
    return out


def run(rootfs: Path, binary: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "futex.integrations.qiling.run", *flags, str(rootfs), str(binary)],
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip


def test_a_guest_deadlock_ends_the_run_as_qiling_reports_one(
    corpus: Corpus, guests: dict[str, Path]
) -> None:
    """Untimed waits stay gevent waits: when every guest thread waits for good, ql.run()
    ends in gevent's LoopExit (Qiling's deadlock report), under install as under stock."""
    for flags in ((), ("--stock",)):
        r = run(corpus.rootfs, guests["deadlocked"], *flags)
        assert r.returncode == DEADLOCK, (flags, r.stdout, r.stderr)
        assert "deadlock" in r.stderr and "unreachable" not in r.stdout


def test_exit_group_from_a_thread_ends_the_process_with_its_code(
    corpus: Corpus, guests: dict[str, Path]
) -> None:
    """exit(3) -> exit_group: Linux ends every thread with the caller's code (7), which the
    native run shows; stock Qiling ends only the calling thread (main returns 3)."""
    native = subprocess.run([str(guests["exit_from_thread"])], timeout=TIMEOUT)
    assert native.returncode == 7
    assert run(corpus.rootfs, guests["exit_from_thread"]).returncode == 7
    assert run(corpus.rootfs, guests["exit_from_thread"], "--stock").returncode == 3


def test_the_exit_status_passes_through_and_report_says_what_the_guest_did(
    corpus: Corpus, guests: dict[str, Path]
) -> None:
    """The runner's status is the guest's; --report prints the futex report on stderr:
    the timed wait counted as waited and timed out (-ETIMEDOUT), nothing left queued."""
    r = run(corpus.rootfs, guests["timed_then_5"], "--report")
    assert (r.returncode, r.stdout) == (5, "ETIMEDOUT\n"), r.stderr
    report = [line for line in r.stderr.splitlines() if line.startswith("futex: ")]
    assert any("WAIT_BITSET 1" in line for line in report), report
    assert any("1 calls waited, 1 of them timed out" in line for line in report), report
    assert any("0 still queued" in line for line in report), report


def test_uninstall_gives_the_guest_stock_qiling_again(
    corpus: Corpus, guests: dict[str, Path]
) -> None:
    """After uninstall(ql) Qiling's own futex answers again: the timed wait that
    install(ql) times out never does (qiling.md: stock hangs every timed wait)."""
    from qiling import Qiling
    from qiling.const import QL_VERBOSE

    from futex.integrations.qiling import install, uninstall

    binary = str(guests["timed_then_5"])
    ql = Qiling([binary], str(corpus.rootfs), multithread=True, verbose=QL_VERBOSE.DISABLED)
    integ = install(ql)
    uninstall(ql)
    for name in ("clone3", "rseq"):  # else no thread runs at all on stock Qiling
        ql.os.set_syscall(name, lambda ql, *a: -38)
    import gevent

    with pytest.raises(gevent.exceptions.LoopExit):
        ql.run()  # Qiling's futex never reads the timeout: the only thread waits for good
    assert integ.parked == 0 and integ.kernel.calls().total() == 0
