"""The demo workload: producers and consumers on real Python threads, synchronized by
nothing but emulated futexes — on Linux, Zircon or LiteOS-A.

Several real Python threads act as tasks of **one** emulated process of the chosen kernel.
Everything they share lives in that process's emulated memory (one ``mmap``'d page), and
every time a thread has to sleep or wake another it makes the kernel's futex call, exactly
as a C program would.  The algorithms (:mod:`futex.demo.sync`: a futex mutex, a
sequence-counter condition variable whose ``notify_all`` requeues onto the mutex, a ring
buffer) are written once; a :class:`~futex.demo.kernels.FutexOps` adapter per kernel
makes the calls (:data:`KERNELS`):

==========  =================================  ===========================================
kernel      adapter                            what the report shows besides the checks
==========  =================================  ===========================================
linux       :class:`~futex.demo.kernels.       futex(2) calls by command, bucket
            LinuxOps`                          statistics
zircon      :class:`~futex.demo.zircon.        who owns the mutex futex, at which base and
            ZirconOps`                         inherited priority, as it changes
liteos      :class:`~futex.demo.liteos.        the 80-bucket ``g_futexHash``: which
            LiteosOps`                         buckets hold which keys, the queues in wake
                                               order
==========  =================================  ===========================================

:func:`run_demo` runs producers and consumers over a :class:`~futex.demo.sync.Ring`,
then checks the result (every item consumed exactly once, in FIFO order per producer; no
task left blocked; the kernel's invariants hold; no waiter left queued; plus the adapter's
own checks) and reports what the kernel did.  (The robust-futex scenario that
``python -m futex demo`` runs after the Linux workload is in :mod:`futex.demo.robust`.)

The calling thread only watches: every ``interval`` it samples progress, the core's
bucket statistics and the adapter's view of its kernel, and it declares the run stuck
when nothing moves for ``stall_timeout`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from futex.demo.kernels import Check, FutexOps, LinuxOps, TaskT
from futex.demo.liteos import LiteosOps
from futex.demo.sync import Ring
from futex.demo.zircon import ZirconOps
from futex.kernel import FutexStats

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_ITEMS",
    "DEFAULT_KERNEL",
    "DEFAULT_THREADS",
    "KERNELS",
    "MAX_THREADS",
    "DemoConfig",
    "DemoReport",
    "Progress",
    "check_items",
    "new_ops",
    "run_demo",
]

DEFAULT_THREADS = 4
#: The most worker threads ``python -m futex demo --threads`` accepts: one real thread per
#: task, and the demo is a demo (a million threads would only exhaust the machine).
MAX_THREADS = 1024
DEFAULT_ITEMS = 20_000
DEFAULT_CAPACITY = 8
DEFAULT_KERNEL = "linux"

#: The kernels the workload runs on, by ``--kernel`` name: each makes a fresh kernel with
#: one process.
KERNELS: dict[str, Callable[[], FutexOps[Any]]] = {
    "linux": LinuxOps,
    "zircon": ZirconOps,
    "liteos": LiteosOps,
}

_U32 = 0xFFFFFFFF


def new_ops(kernel: str) -> FutexOps[Any]:
    """A fresh kernel of the named personality, one process, and its adapter."""
    try:
        factory = KERNELS[kernel]
    except KeyError:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}") from None
    return factory()


@dataclass(frozen=True)
class DemoConfig:
    """What to run: ``threads`` workers (half producers, rounded down, at least one of
    each), ``items`` numbered 1..items, a ring of ``capacity`` slots."""

    threads: int = DEFAULT_THREADS
    items: int = DEFAULT_ITEMS
    capacity: int = DEFAULT_CAPACITY

    def __post_init__(self) -> None:
        if self.threads < 2:
            raise ValueError(
                f"threads must be at least 2 (a producer and a consumer), got {self.threads}"
            )
        if not 0 <= self.items <= _U32:
            raise ValueError(f"items must be in 0..{_U32}, got {self.items}")
        if not 1 <= self.capacity <= 1 << 20:
            raise ValueError(f"capacity must be in 1..{1 << 20}, got {self.capacity}")

    @property
    def producers(self) -> int:
        """How many of the threads produce."""
        return self.threads // 2

    @property
    def consumers(self) -> int:
        """How many of the threads consume."""
        return self.threads - self.producers


@dataclass(frozen=True)
class Progress:
    """A snapshot taken while the workload runs."""

    produced: int
    consumed: int
    calls: int
    """futex calls so far, all commands."""
    elapsed: float
    """Seconds since the workers started."""
    status: str = ""
    """The adapter's one-line view of its kernel now ("" for Linux)."""
    detail: tuple[str, ...] = ()
    """The adapter's longer view (the live display shows it)."""


@dataclass
class DemoReport:
    """The outcome of :func:`run_demo`."""

    config: DemoConfig
    elapsed: float
    """Seconds from starting the workers until the last one finished (or the stall)."""
    checks: list[Check]
    calls: Counter[str]
    """Futex calls by name (command, or Zircon system call)."""
    stats: FutexStats
    """The futex statistics of the process's manager at the end."""
    peak_buckets_used: int
    """The most buckets seen holding waiters at once (sampled while running)."""
    peak_busiest_bucket: int
    """The most waiters seen in one bucket at once (sampled while running)."""
    samples: int
    """How many times the statistics were sampled while the workers ran."""
    word_buckets: dict[str, int] = field(default_factory=dict)
    """The bucket each futex word of the ring hashes to."""
    kernel: str = DEFAULT_KERNEL
    """The personality (:data:`KERNELS`)."""
    kernel_lines: list[str] = field(default_factory=list)
    """The adapter's closing report (Zircon's ownership timeline, LiteOS's table)."""
    facts: dict[str, int] = field(default_factory=dict)
    """Counts the adapter recorded (ownership changes, boosts, table snapshots...)."""

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(c.ok for c in self.checks)

    @property
    def items_per_second(self) -> float:
        """Items consumed per second of :attr:`elapsed`."""
        return self.config.items / self.elapsed if self.elapsed > 0 else 0.0


def check_items(consumed: list[list[int]], items: int, producers: int) -> list[Check]:
    """Check what the consumers got: ``consumed[c]`` is consumer ``c``'s items in the
    order it took them; producer ``i`` made the items ``n`` with ``(n - 1) % producers ==
    i``, in increasing order.

    Verdicts: the count; every item 1..items exactly once (with the checksum); and FIFO:
    each consumer saw each producer's items in increasing order (a FIFO ring guarantees
    that, whatever the interleaving).
    """
    total = sum(len(c) for c in consumed)
    want_sum = items * (items + 1) // 2
    got_sum = sum(sum(c) for c in consumed)
    checks = [Check("count", total == items, f"{total} consumed of {items}")]
    seen: Counter[int] = Counter()
    for c in consumed:
        seen.update(c)
    dupes = sorted(n for n, k in seen.items() if k > 1)
    strays = sorted(n for n in seen if not 1 <= n <= items)
    missing = items - sum(1 for n in seen if 1 <= n <= items)
    problems = []
    if dupes:
        problems.append(f"{len(dupes)} consumed twice or more (first {dupes[0]})")
    if strays:
        problems.append(f"{len(strays)} never produced (first {strays[0]})")
    if missing:
        problems.append(f"{missing} never consumed")
    checks.append(
        Check(
            "exactly once",
            not problems and got_sum == want_sum,
            "; ".join(problems) or f"checksum {got_sum} == {want_sum}",
        )
    )
    fifo_breaks = 0
    for c in consumed:
        last = [0] * producers
        for n in c:
            i = (n - 1) % producers
            if n <= last[i]:
                fifo_breaks += 1
            last[i] = n
    checks.append(
        Check(
            "fifo",
            fifo_breaks == 0,
            "each producer's items in order"
            if not fifo_breaks
            else f"{fifo_breaks} items out of order",
        )
    )
    return checks


def _producer(ring: Ring[TaskT], task: TaskT, index: int, items: int, producers: int) -> None:
    for n in range(index + 1, items + 1, producers):
        ring.put(task, n)
    ring.producer_done(task)


def _consumer(ring: Ring[TaskT], task: TaskT, out: list[int]) -> None:
    while (item := ring.take(task)) is not None:
        out.append(item)


def _guarded(errors: list[str], name: str, fn: Callable[..., None], *args: object) -> None:
    try:
        fn(*args)
    except Exception as exc:  # becomes a failed check, not a dead thread's traceback
        errors.append(f"{name}: {type(exc).__name__}: {exc}")


def run_demo(
    config: DemoConfig,
    *,
    kernel: str | FutexOps[Any] = DEFAULT_KERNEL,
    on_progress: Callable[[Progress], None] | None = None,
    interval: float = 0.05,
    stall_timeout: float = 30.0,
) -> DemoReport:
    """Run the producer/consumer workload on a fresh kernel (``kernel``: a name of
    :data:`KERNELS`, or an adapter to run on) and check it.

    One process; one task per worker thread.  The calling thread only watches: every
    ``interval`` seconds it samples the progress and the adapter's view (passed to
    ``on_progress``) and the bucket statistics.  If neither count moves for
    ``stall_timeout`` seconds the run is declared stuck (a lost wakeup or a deadlock), and
    the report says which tasks are blocked where; the stuck threads are daemons and are
    left behind.
    """
    ops = new_ops(kernel) if isinstance(kernel, str) else kernel
    return _run(ops, config, on_progress, interval, stall_timeout)


def _run(
    ops: FutexOps[TaskT],
    config: DemoConfig,
    on_progress: Callable[[Progress], None] | None,
    interval: float,
    stall_timeout: float,
) -> DemoReport:
    ring = Ring(ops, config.capacity, config.producers)
    ops.watch(ring.futex_words)
    errors: list[str] = []
    consumed: list[list[int]] = [[] for _ in range(config.consumers)]

    tasks: list[TaskT] = []
    threads: list[threading.Thread] = []
    for i in range(config.producers):
        t = ops.new_task(f"producer-{i}", "producer")
        tasks.append(t)
        args: tuple[object, ...] = (
            errors,
            ops.describe(t),
            _producer,
            ring,
            t,
            i,
            config.items,
            config.producers,
        )
        threads.append(
            threading.Thread(target=_guarded, args=args, name=f"producer-{i}", daemon=True)
        )
    for i in range(config.consumers):
        t = ops.new_task(f"consumer-{i}", "consumer")
        tasks.append(t)
        args = (errors, ops.describe(t), _consumer, ring, t, consumed[i])
        threads.append(
            threading.Thread(target=_guarded, args=args, name=f"consumer-{i}", daemon=True)
        )

    def progress(elapsed: float) -> Progress:
        view = ops.view()
        return Progress(
            ring.produced, ring.consumed, ops.total_calls(), elapsed, view.status, view.detail
        )

    peak_used = peak_busiest = samples = 0
    ops.started()
    start = time.perf_counter()
    stalled = not _start_primed(ops, threads, tasks, config.producers, stall_timeout)
    now = last_move = time.perf_counter()
    last_counts = (-1, -1)
    while not stalled:
        for th in threads:
            th.join(interval)
            if th.is_alive():
                break
        now = time.perf_counter()
        if not any(th.is_alive() for th in threads):
            break
        samples += 1
        s = ops.stats()
        peak_used = max(peak_used, s.buckets_used)
        peak_busiest = max(peak_busiest, s.busiest_bucket)
        counts = (ring.produced, ring.consumed)
        if on_progress is not None:
            on_progress(progress(now - start))
        if counts != last_counts:
            last_counts, last_move = counts, now
        elif now - last_move > stall_timeout:
            stalled = True
            break
    elapsed = now - start
    if on_progress is not None:
        on_progress(progress(elapsed))

    checks = _final_checks(
        ops, config, ring, threads, tasks, errors, consumed, stalled, stall_timeout
    )
    return DemoReport(
        config=config,
        elapsed=elapsed,
        checks=checks,
        calls=ops.calls(),
        stats=ops.stats(),
        peak_buckets_used=peak_used,
        peak_busiest_bucket=peak_busiest,
        samples=samples,
        word_buckets={name: ops.bucket_index(a) for name, a in ring.futex_words.items()},
        kernel=ops.kernel,
        kernel_lines=ops.report_lines(),
        facts=ops.facts(),
    )


def _start_primed(
    ops: FutexOps[TaskT],
    threads: list[threading.Thread],
    tasks: list[TaskT],
    producers: int,
    timeout: float,
) -> bool:
    """Start the producers, wait until each has finished or sleeps in the kernel (the
    ring full, every producer waiting for a slot), then start the consumers.  False if
    that state does not come within ``timeout`` seconds (the consumers are not started).

    The primed start makes the first take the same on every run and every kernel: a take
    from a full ring with every producer asleep on ``not_full``, so its ``notify_all``
    wakes one producer and requeues the others onto the mutex (with two producers or
    more) — where, on Zircon, they lend their priority to the consumer holding it.
    """
    for th in threads[:producers]:
        th.start()
    deadline = time.monotonic() + timeout
    pairs = list(zip(threads[:producers], tasks[:producers], strict=True))

    def primed() -> bool:  # each live producer queued in the kernel (not only about to be)
        alive = [t for th, t in pairs if th.is_alive()]
        return all(ops.blocked(t) is not None for t in alive) and ops.stats().queued == len(alive)

    while not primed():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0002)
    ops.view()  # sample the primed state: the producers asleep, nothing running
    for th in threads[producers:]:
        th.start()
    return True


def _final_checks(
    ops: FutexOps[TaskT],
    config: DemoConfig,
    ring: Ring[TaskT],
    threads: list[threading.Thread],
    tasks: list[TaskT],
    errors: list[str],
    consumed: list[list[int]],
    stalled: bool,
    stall_timeout: float,
) -> list[Check]:
    checks: list[Check] = []
    alive = [th.name for th in threads if th.is_alive()]
    unstarted = [th.name for th in threads if th.ident is None]
    stuck = f"no progress for {stall_timeout:g} s; still running: {', '.join(alive)}"
    if unstarted:
        stuck += f"; never started: {', '.join(unstarted)}"
    checks.append(
        Check(
            "finished",
            not stalled and not alive,
            stuck if stalled else "every worker returned",
        )
    )
    checks.append(Check("errors", not errors, "; ".join(errors) or "no worker raised"))
    checks.extend(check_items(consumed, config.items, config.producers))
    blocked = [(t, b) for t in tasks if (b := ops.blocked(t)) is not None]
    checks.append(
        Check(
            "no task blocked",
            not blocked,
            ", ".join(f"{ops.describe(t)}: {b!r}" for t, b in blocked)
            or "no task is blocked in a futex wait",
        )
    )
    try:
        ops.check_invariants()
        checks.append(Check("kernel invariants", True, "check_invariants() passed"))
    except AssertionError as exc:
        checks.append(Check("kernel invariants", False, str(exc)))
    stats = ops.stats()
    checks.append(
        Check(
            "queues empty",
            stats.queued == 0,
            "no waiter left queued"
            if not stats.queued
            else f"{stats.queued} queued: "
            + ", ".join(f"{k!r}: {[w.tid for w in ws]}" for k, ws in ops.manager.queues().items()),
        )
    )
    words = ring.words()
    want = {
        "mutex": 0,
        "not_empty.waiters": 0,
        "not_full.waiters": 0,
        "head": config.items,
        "tail": config.items,
        "producers": 0,
    }
    wrong = {k: words[k] for k, v in want.items() if words[k] != v}
    checks.append(
        Check(
            "ring words",
            not wrong,
            f"unexpected: {wrong}" if wrong else "unlocked, no waiters, head == tail == items",
        )
    )
    checks.extend(ops.extra_checks())
    return checks
