"""Section 7: the holder of a lock is SIGKILLed; how long until a waiter has it.

Each run forks a holder, which acquires the lock and sleeps, then a waiter, which says it
is about to acquire and calls ``acquire``.  Once the waiter is asleep (``/proc/PID/stat``
state S), the parent reads CLOCK_MONOTONIC and SIGKILLs the holder; the waiter reads
CLOCK_MONOTONIC as soon as its acquire returns.  futex.sync.Mutex's acquire raises
``OwnerDied`` with the lock held; the waiter then calls ``make_consistent()`` and
``release()``.  The figure is the median (p90 beside it) of ``cfg.recover_k`` runs, in ms.

multiprocessing.Lock and posix_ipc.Semaphore have no owner: nothing tells their waiter that
the holder died.  Their waiter gives up after ``cfg.never_after`` seconds; one run each
shows it ("never").  The C floor is glibc's robust process-shared pthread_mutex
(EOWNERDEAD), the same robust-list protocol.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

from futex.benchcli import peers
from futex.benchcli.cfloor import CFloor
from futex.benchcli.harness import (
    BenchFailure,
    Config,
    Ctl,
    Procs,
    Row,
    Target,
    log,
    median,
    percentile,
    wait_sleeping,
)

__all__ = ["SECTION", "bench_recovery"]

SECTION = "7. holder SIGKILLed -> a waiter acquires (ms from the kill)"
C_ROW = "C floor: robust process-shared pthread_mutex (EOWNERDEAD)"
#: How long futex.sync's waiter may wait for the lock before the run fails.
SYNC_WAIT_S = 5.0


def _run_once(cfg: Config, lock: Any, waiter: Callable[[Ctl], list[int]]) -> tuple[int, int]:
    """One holder-killed run: (ns from the kill to the waiter's return, acquired 0/1)."""

    def holder(ctl: Ctl) -> list[int]:
        lock.acquire()
        ctl.say("held")
        time.sleep(cfg.trial_timeout)  # SIGKILLed long before
        return []

    with Procs(cfg.trial_timeout) as ps:
        h = ps.spawn(holder)
        h.expect("held")
        w = ps.spawn(waiter)
        w.expect("waiting")
        wait_sleeping(w.pid)
        t_kill = time.monotonic_ns()
        os.kill(h.pid, signal.SIGKILL)
        t_back, acquired = w.result()
    return t_back - t_kill, acquired


def _sync_row(cfg: Config) -> Row:
    row = Row(
        SECTION,
        "futex.sync.Mutex (OwnerDied)",
        "ms",
        baseline=C_ROW,
        target=Target("<", 1.0, on="value", text="< 1 ms median"),
    )
    try:
        mutex = peers.sync_attr("Mutex")()
        owner_died = peers.sync_attr("OwnerDied")
    except peers.Unavailable as exc:
        row.status = str(exc)
        return row
    mode = getattr(peers.sync()[0], "robust_mode", None)
    if callable(mode):
        row.extra["robust_mode"] = mode()

    def waiter(ctl: Ctl) -> list[int]:
        ctl.say("waiting")
        try:
            got = mutex.acquire(timeout=SYNC_WAIT_S)
        except owner_died:
            t = time.monotonic_ns()
            mutex.make_consistent()
            mutex.release()
            return [t, 1]
        if got:
            mutex.release()
            raise BenchFailure("acquired without OwnerDied")
        raise BenchFailure(f"not acquired within {SYNC_WAIT_S:g} s of the kill")

    try:
        for _ in range(cfg.recover_k):
            ns, _ = _run_once(cfg, mutex, waiter)
            row.samples.append(ns / 1e6)
    except Exception as exc:
        row.status = f"failed: {exc}"
        row.samples.clear()
    finally:
        close = getattr(mutex, "close", None)
        if callable(close):
            close()
    if row.samples:
        row.extra["p90_ms"] = round(percentile(row.samples, 0.9), 4)
        row.extra["max_ms"] = round(max(row.samples), 4)
    return row


def _peer_row(
    cfg: Config, name: str, make: Callable[[], Any], timed_acquire: Callable[[Any, float], bool]
) -> Row:
    row = Row(SECTION, name, "ms", baseline=C_ROW)
    try:
        lock = make()
    except peers.Unavailable as exc:
        row.status = str(exc)
        return row

    def waiter(ctl: Ctl) -> list[int]:
        ctl.say("waiting")
        got = timed_acquire(lock, cfg.never_after)
        return [time.monotonic_ns(), int(got)]

    try:
        ns, acquired = _run_once(cfg, lock, waiter)
    except Exception as exc:
        row.status = f"failed: {exc}"
        return row
    if acquired:
        row.value = ns / 1e6
        row.samples = [row.value]
    else:
        row.status = f"never (still not acquired {ns / 1e9:.2f} s after the kill)"
    return row


def _mp_acquire(lock: Any, timeout: float) -> bool:
    return bool(lock.acquire(timeout=timeout))


def _posix_acquire(sem: Any, timeout: float) -> bool:
    mod = peers.posix_ipc()
    try:
        sem.acquire(timeout)
    except mod.BusyError:
        return False
    return True


def bench_recovery(cfg: Config, floor: CFloor) -> list[Row]:
    log("7. holder SIGKILLed -> waiter acquires")
    c_row = Row(SECTION, C_ROW, "ms")
    try:
        c_row.samples = [v / 1e6 for v in floor.run("recover", cfg.recover_k)["robust_pthread"]]
        c_row.extra["p90_ms"] = round(percentile(c_row.samples, 0.9), 4)
    except (RuntimeError, KeyError, ValueError) as exc:
        c_row.status = str(exc)
    rows = [
        _sync_row(cfg),
        c_row,
        _peer_row(cfg, "multiprocessing.Lock", peers.mp().Lock, _mp_acquire),
        _peer_row(cfg, "posix_ipc.Semaphore", lambda: peers.posix_semaphore(1), _posix_acquire),
    ]
    for r in rows:
        if r.samples and r.value is None:
            r.value = median(r.samples)
    return rows
