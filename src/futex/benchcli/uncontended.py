"""Section 1: an uncontended acquire+release pair and ``with lock: pass``, in one process.

Every Python figure is sampled round-robin with the others (``harness.interleaved``), so
drift hits them alike; the C floor samples itself the same way in its own process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from futex.benchcli import peers
from futex.benchcli.cfloor import CFloor, floor_rows
from futex.benchcli.harness import (
    Config,
    Row,
    Runner,
    Target,
    close_quietly,
    interleaved,
    log,
    pair_loop,
    with_loop,
)

__all__ = ["SECTION", "bench_uncontended"]

SECTION = "1. uncontended, one process (ns per operation)"

MP_LOCK = "multiprocessing.Lock acquire()+release()"
MP_WITH = "with multiprocessing.Lock(): pass"
MP_RLOCK = "multiprocessing.RLock acquire()+release()"
MP_RWITH = "with multiprocessing.RLock(): pass"

#: (row name, baseline row, target, how to make the object, "pair" | "with" | "read")
_Case = tuple[str, str | None, Target | None, Callable[[], Any], str]


def _cases() -> list[_Case]:
    ctx = peers.mp()
    sync = peers.sync_attr
    psem: Callable[[], Any] = lambda: peers.posix_semaphore(1)  # noqa: E731
    return [
        (MP_LOCK, None, None, ctx.Lock, "pair"),
        (
            "futex.sync.Mutex acquire()+release()",
            MP_LOCK,
            Target("<=", 1.0),
            lambda: sync("Mutex")(),
            "pair",
        ),
        ("threading.Lock acquire()+release()", MP_LOCK, None, threading.Lock, "pair"),
        ("posix_ipc.Semaphore acquire()+release()", MP_LOCK, None, psem, "pair"),
        (MP_WITH, None, None, ctx.Lock, "with"),
        (
            "with futex.sync.Mutex(): pass",
            MP_WITH,
            Target("<=", 0.6),
            lambda: sync("Mutex")(),
            "with",
        ),
        ("with threading.Lock(): pass", MP_WITH, None, threading.Lock, "with"),
        ("with posix_ipc.Semaphore: pass", MP_WITH, None, psem, "with"),
        (
            "with futex.sync.RWLock().read_lock(): pass",
            MP_WITH,
            None,
            lambda: sync("RWLock")(),
            "read",
        ),
        (MP_RLOCK, None, None, ctx.RLock, "pair"),
        ("futex.sync.RLock acquire()+release()", MP_RLOCK, None, lambda: sync("RLock")(), "pair"),
        ("threading.RLock acquire()+release()", MP_RLOCK, None, threading.RLock, "pair"),
        (MP_RWITH, None, None, ctx.RLock, "with"),
        ("with futex.sync.RLock(): pass", MP_RWITH, None, lambda: sync("RLock")(), "with"),
    ]


def _runner(obj: Any, how: str, n: int) -> Runner:
    if how == "pair":
        return pair_loop(obj.acquire, obj.release, n)
    if how == "with":
        return with_loop(lambda: obj, n)
    return with_loop(obj.read_lock, n)


def _probe(obj: Any, how: str) -> None:
    """One operation outside the timing, so that a broken primitive fails here."""
    _runner(obj, how, 1)()


def bench_uncontended(cfg: Config, floor: CFloor) -> list[Row]:
    log("1. uncontended acquire+release and `with`, one process")
    rows: list[Row] = []
    runners: dict[str, tuple[Runner, int]] = {}
    keep: list[Any] = []  # the objects, alive until the end of the section
    for name, base, target, make, how in _cases():
        row = Row(SECTION, name, "ns", baseline=base, target=target)
        rows.append(row)
        try:
            obj = make()
            _probe(obj, how)
        except Exception as exc:
            row.status = _why(exc)
            continue
        keep.append(obj)
        runners[name] = (_runner(obj, how, cfg.pair_n), cfg.pair_n)
    empty = "reference: the empty Python loop (per iteration)"
    rng = range(cfg.pair_n)

    def run_empty() -> None:
        for _ in rng:
            pass

    runners[empty] = (run_empty, cfg.pair_n)
    errors: dict[str, Exception] = {}
    guarded = {name: (_guard(name, run, errors), n) for name, (run, n) in runners.items()}
    stats = interleaved(guarded, cfg.repeats)
    for row in rows:
        if row.name in errors:
            err = errors[row.name]
            row.status = f"failed: {type(err).__name__}: {err}"
        elif row.name in stats:
            row.samples = stats[row.name]
    rows.append(Row(SECTION, empty, "ns", samples=stats[empty]))
    rows += _c_rows(cfg, floor)
    for obj in keep:
        close_quietly(obj)
    return rows


def _guard(name: str, run: Runner, errors: dict[str, Exception]) -> Runner:
    """``run``, with its first exception recorded in ``errors`` (then it does nothing): one
    primitive failing mid-way fails its row, not the section."""

    def guarded() -> None:
        if name in errors:
            return
        try:
            run()
        except Exception as exc:
            errors[name] = exc

    return guarded


def _c_rows(cfg: Config, floor: CFloor) -> list[Row]:
    names = {
        "robust_pthread": "C floor: robust process-shared pthread_mutex lock+unlock",
        "drepper": "C floor: Drepper futex mutex (no owner) lock+unlock",
    }
    return floor_rows(
        SECTION,
        names,
        lambda: floor.run("pair", cfg.pair_n * 10, cfg.repeats),
        unit="ns",
        baseline=MP_LOCK,
    )


def _why(exc: Exception) -> str:
    if isinstance(exc, peers.Unavailable):
        return str(exc)
    return f"failed: {type(exc).__name__}: {exc}"
