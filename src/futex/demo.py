"""The demo workload: a producer/consumer queue built on nothing but emulated futex(2).

Several real Python threads act as tasks of **one** emulated process.  Everything they
share lives in that process's emulated memory (one ``mmap``'d page), and every time a
thread has to sleep or wake another it does so through :meth:`Task.syscall_futex
<futex.linux.Task.syscall_futex>`, exactly as a C program on Linux would call futex(2):

- :class:`FutexMutex` — Drepper's three-state mutex ("Futexes Are Tricky", mutex #2);
- :class:`FutexCondvar` — a sequence-counter condition variable whose ``notify_all``
  requeues the waiters onto the mutex word with ``FUTEX_CMP_REQUEUE`` (the pre-2.25 glibc
  design), and whose ``notify_one`` is a ``FUTEX_WAKE``;
- :class:`Ring` — a bounded ring buffer guarded by one mutex and two condition variables
  (``not_empty`` for consumers, ``not_full`` for producers).

:func:`run_demo` runs producers and consumers over a :class:`Ring`, then checks the result
(every item consumed exactly once, in FIFO order per producer; no task left blocked; the
kernel's invariants hold; no waiter left queued) and reports what the kernel did.
(The robust-futex scenario that ``python -m futex demo`` runs after this workload, owner
tasks exiting while they hold robust mutexes, is in :mod:`futex.demo_robust`.)

Memory layout of a :class:`Ring` (one page; all words little-endian u32)
--------------------------------------------------------------------------

======  ======================  ===================================================
offset  word                    meaning
======  ======================  ===================================================
0       ``mutex``               :class:`FutexMutex` word (0 / 1 / 2, below)
4       ``not_empty.seq``       :class:`FutexCondvar` sequence counter (futex word)
8       ``not_empty.waiters``   tasks inside ``not_empty.wait`` (under the mutex)
12      ``not_full.seq``        sequence counter (futex word)
16      ``not_full.waiters``    tasks inside ``not_full.wait`` (under the mutex)
20      ``head``                items taken so far (under the mutex)
24      ``tail``                items put so far (under the mutex)
28      ``producers``           producers still running (under the mutex)
32...   ``slot[i]``             ``capacity`` item slots; item ``n`` is at
                                ``slot[n % capacity]``; items in the ring:
                                ``tail - head``
======  ======================  ===================================================

Why no wakeup can be lost
-------------------------
The kernel half (see :mod:`futex.kernel.waitwake`): ``FUTEX_WAIT(addr, v)`` compares the
word with ``v`` and queues the caller under the same bucket lock that ``FUTEX_WAKE`` and
``FUTEX_CMP_REQUEUE`` take to find waiters.  So a waker that *changes the word first* and
then calls the kernel either finds the waiter queued, or the waiter's compare sees the new
value and returns ``-EAGAIN`` instead of sleeping.  Both user-space halves below are built
so that every wake is preceded by such a change of the word the sleeper compared:

- mutex: a task sleeps only on the value 2, and stores 2 itself (atomic exchange) before
  it sleeps; an unlock exchanges the word to 0 and wakes whenever it took 2 away;
- condvar: a waiter reads ``seq`` while it holds the mutex; a notifier holds the mutex too
  (so it comes after that read) and increments ``seq`` before it calls the kernel.

The details are in the docstrings of :class:`FutexMutex` and :class:`FutexCondvar`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from futex.kernel import FutexStats
from futex.linux import LinuxKernel, Process, Task, abi

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_ITEMS",
    "DEFAULT_THREADS",
    "FUTEX_CMP_REQUEUE_PRIVATE",
    "FUTEX_WAIT_PRIVATE",
    "FUTEX_WAKE_PRIVATE",
    "INT_MAX",
    "Check",
    "DemoConfig",
    "DemoReport",
    "FutexCallError",
    "FutexCondvar",
    "FutexMutex",
    "Progress",
    "Ring",
    "check_items",
    "run_demo",
]

DEFAULT_THREADS = 4
DEFAULT_ITEMS = 20_000
DEFAULT_CAPACITY = 8

FUTEX_WAIT_PRIVATE = abi.FUTEX_WAIT | abi.FUTEX_PRIVATE_FLAG
FUTEX_WAKE_PRIVATE = abi.FUTEX_WAKE | abi.FUTEX_PRIVATE_FLAG
FUTEX_CMP_REQUEUE_PRIVATE = abi.FUTEX_CMP_REQUEUE | abi.FUTEX_PRIVATE_FLAG
#: "All of them", as a futex count (C's ``INT_MAX``).
INT_MAX = 0x7FFFFFFF

_U32 = 0xFFFFFFFF


class FutexCallError(RuntimeError):
    """A futex call returned something the algorithm cannot get from a correct kernel."""


def _expect(result: int, what: str, *allowed_errnos: int) -> int:
    """``result`` if it is >= 0 or one of ``-allowed_errnos``; else raise."""
    if result >= 0 or -result in allowed_errnos:
        return result
    raise FutexCallError(f"{what} returned {result}")


# -- the mutex --------------------------------------------------------------------------


class FutexMutex:
    """Drepper's three-state futex mutex on the u32 word at ``addr`` of ``process``.

    =====  ===============================================================
    word   meaning
    =====  ===============================================================
    0      unlocked
    1      locked, and no task is (or is about to be) asleep on the word
    2      locked, and tasks may be asleep on the word (contended)
    =====  ===============================================================

    ``lock``: compare-and-swap 0 -> 1 (the uncontended fast path, no system call).  If that
    fails the caller exchanges the word with 2 and, while the old value was not 0 (someone
    else holds the lock), sleeps with ``FUTEX_WAIT_PRIVATE(word, 2)`` and exchanges again.
    ``unlock``: exchange the word with 0; if the old value was 2, ``FUTEX_WAKE_PRIVATE(word,
    1)``.

    No lost wakeup: a task only sleeps on the value 2, which it stored itself with the
    exchange, and the kernel queues it only if the word still holds 2 (under the bucket
    lock).  Any unlock after that exchange finds 2 (only unlock stores anything else), so
    it calls ``FUTEX_WAKE``, which finds the task queued, or the task's compare sees the
    word changed and it does not sleep.  A woken task exchanges 2 in again before it can
    own the lock or sleep, so the word is marked contended for the tasks still queued; its
    own unlock then sees 2 and wakes the next one.  The cost: a lock taken through the
    slow path always unlocks with a (possibly needless) wake.

    The lock is not recursive and has no owner: unlocking from another task is allowed,
    as with the C original.
    """

    def __init__(self, process: Process, addr: int) -> None:
        self.process = process
        self.addr = addr

    def __repr__(self) -> str:
        return f"<FutexMutex {self.addr:#x} word={self.word}>"

    @property
    def word(self) -> int:
        """The current value of the mutex word (0, 1 or 2)."""
        return self.process.load_u32(self.addr)

    def try_lock(self) -> bool:
        """Take the lock if it is free (0 -> 1); never blocks, never calls the kernel."""
        return self.process.cas_u32(self.addr, 0, 1) == 0

    def lock(self, task: Task) -> None:
        """Take the lock, sleeping in the kernel while another task holds it."""
        p = self.process
        c = p.cas_u32(self.addr, 0, 1)
        if c == 0:
            return
        if c != 2:
            c = p.update_u32(self.addr, _set_contended)
        while c != 0:
            self._sleep(task)
            c = p.update_u32(self.addr, _set_contended)

    def lock_contended(self, task: Task) -> None:
        """Take the lock leaving the word at 2 — the path for a task that was woken or
        requeued by a condition variable: other tasks may have been requeued onto this
        word with it, so its unlock must wake (see :class:`FutexCondvar`)."""
        p = self.process
        while p.update_u32(self.addr, _set_contended) != 0:
            self._sleep(task)

    def unlock(self, task: Task) -> None:
        """Release the lock; wake one sleeper if the word said there might be one."""
        prev = self.process.update_u32(self.addr, _set_unlocked)
        if prev == 2:
            r = task.syscall_futex(self.addr, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0)
            _expect(r, "FUTEX_WAKE(mutex)")
        elif prev != 1:
            raise RuntimeError(f"unlock of {self!r} that was not locked (word was {prev})")

    def _sleep(self, task: Task) -> None:
        r = task.syscall_futex(self.addr, FUTEX_WAIT_PRIVATE, 2, 0, 0, 0)
        _expect(r, "FUTEX_WAIT(mutex)", abi.EAGAIN, abi.EINTR)


def _set_contended(_old: int) -> int:
    return 2


def _set_unlocked(_old: int) -> int:
    return 0


def _increment(old: int) -> int:
    return (old + 1) & _U32


def _decrement(old: int) -> int:
    return (old - 1) & _U32


# -- the condition variable -------------------------------------------------------------


class FutexCondvar:
    """A sequence-counter condition variable at ``addr`` (two u32 words), tied to
    ``mutex``.

    ======  ===========  =========================================================
    offset  word         meaning
    ======  ===========  =========================================================
    0       ``seq``      the futex word: incremented (mod 2**32) by every notify
                         that finds waiters
    4       ``waiters``  tasks between the start and the end of :meth:`wait`;
                         read and written only with the mutex held
    ======  ===========  =========================================================

    ``wait`` (mutex held): read ``seq``, count itself in ``waiters``, unlock, then
    ``FUTEX_WAIT_PRIVATE(seq, value read)``; on return (0, or ``-EAGAIN`` when ``seq``
    moved before the task was queued) re-take the mutex with
    :meth:`FutexMutex.lock_contended` and uncount itself.  Like every condition variable
    it may return without a notify; callers re-check their predicate in a loop.

    ``notify_one`` / ``notify_all`` must be called **with the mutex held**.  They do
    nothing (no system call) when ``waiters`` is 0; otherwise they increment ``seq`` and
    then call the kernel: ``notify_one`` is ``FUTEX_WAKE_PRIVATE(seq, 1)``, ``notify_all``
    is ``FUTEX_CMP_REQUEUE_PRIVATE(seq, 1, INT_MAX, mutex, new seq)``: wake one waiter and
    move all others onto the mutex word, where they are woken one per unlock instead of
    all at once only to fight over the mutex (the thundering herd).
    A task stays counted in ``waiters`` until it has re-taken the mutex, so a notify may
    call the kernel for waiters that were already woken (a wasted ``FUTEX_WAKE`` that
    finds nobody, never a missed one).

    No lost wakeup:

    - *Notify before the waiter sleeps.*  The waiter read ``seq`` and counted itself in
      ``waiters`` while holding the mutex; the notifier holds the mutex as well, so it sees
      the count and increments ``seq`` after the read.  If the waiter is not yet queued,
      the kernel's compare (under the bucket lock) sees the new ``seq`` and returns
      ``-EAGAIN``; if it is queued, the wake or requeue (same bucket lock) finds it.  (Only
      exactly 2**32 notifies between the read and the compare could fool it.)
    - *Requeued waiters.*  They sleep on the mutex word, and only a mutex unlock that takes
      a 2 away wakes them.  The requeue always wakes one waiter as well (``nr_wake`` = 1,
      and it moves waiters only after waking one), and that woken task re-takes the mutex
      with :meth:`FutexMutex.lock_contended`, which stores 2 before it can own the mutex or
      sleep.  From then on the usual mutex argument holds: the word says 2 while anyone is
      queued on it, each unlock wakes one, and each woken task stores 2 again.  (Had the
      woken task taken the fast path 0 -> 1, its unlock would not wake, and the requeued
      tasks would sleep forever.)
    - *The compare of CMP_REQUEUE.*  It cannot fail while notifiers hold the mutex (``seq``
      changes only under it); if it does (``-EAGAIN``, a notify without the mutex), the
      fallback is ``FUTEX_WAKE_PRIVATE(seq, INT_MAX)``, which is always correct.
    """

    def __init__(self, process: Process, addr: int, mutex: FutexMutex) -> None:
        self.process = process
        self.addr = addr
        self.mutex = mutex

    def __repr__(self) -> str:
        p = self.process
        return f"<FutexCondvar {self.addr:#x} seq={p.load_u32(self.addr)} waiters={self.waiters}>"

    @property
    def waiters(self) -> int:
        """Tasks currently inside :meth:`wait` (meaningful with the mutex held)."""
        return self.process.load_u32(self.addr + 4)

    def wait(self, task: Task) -> None:
        """Release the mutex, sleep until notified (or spuriously), re-take the mutex."""
        p = self.process
        seq = p.load_u32(self.addr)
        p.update_u32(self.addr + 4, _increment)
        self.mutex.unlock(task)
        r = task.syscall_futex(self.addr, FUTEX_WAIT_PRIVATE, seq, 0, 0, 0)
        _expect(r, "FUTEX_WAIT(condvar)", abi.EAGAIN, abi.EINTR)
        self.mutex.lock_contended(task)
        p.update_u32(self.addr + 4, _decrement)

    def notify_one(self, task: Task) -> int:
        """Wake one waiter (mutex held).  Returns how many the kernel woke (0 or 1)."""
        self._check_locked()
        if not self.waiters:
            return 0
        self.process.update_u32(self.addr, _increment)
        r = task.syscall_futex(self.addr, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0)
        return _expect(r, "FUTEX_WAKE(condvar)")

    def notify_all(self, task: Task) -> int:
        """Wake every waiter (mutex held): one now, the others requeued onto the mutex.
        Returns what the kernel returned: woken + requeued."""
        self._check_locked()
        if not self.waiters:
            return 0
        seq = (self.process.update_u32(self.addr, _increment) + 1) & _U32
        r = task.syscall_futex(
            self.addr, FUTEX_CMP_REQUEUE_PRIVATE, 1, INT_MAX, self.mutex.addr, seq
        )
        if r == -abi.EAGAIN:  # seq moved under us: only if someone notified unlocked
            r = task.syscall_futex(self.addr, FUTEX_WAKE_PRIVATE, INT_MAX, 0, 0, 0)
            return _expect(r, "FUTEX_WAKE(condvar, all)")
        return _expect(r, "FUTEX_CMP_REQUEUE(condvar -> mutex)")

    def _check_locked(self) -> None:
        if self.mutex.word == 0:
            raise RuntimeError(f"notify on {self!r} without holding its mutex")


# -- the ring buffer --------------------------------------------------------------------

_MUTEX, _NOT_EMPTY, _NOT_FULL, _HEAD, _TAIL, _PRODUCERS, _SLOTS = 0, 4, 12, 20, 24, 28, 32
_PAGE = 4096


class Ring:
    """A bounded FIFO of u32 items in ``process``'s memory (layout: module docstring),
    guarded by a :class:`FutexMutex` with two :class:`FutexCondvar` s.

    ``producers`` is how many producers will call :meth:`producer_done`; once all have,
    :meth:`take` on an empty ring returns ``None`` instead of waiting.

    Nobody waits for a change that already happened: each predicate is checked with the
    mutex held, and each change that can make one true is followed, under the same
    mutex, by a notify that wakes as many of the tasks waiting for it as it can satisfy:

    ==========================  ==========================  ==============================
    waiter waits for            change                      notify
    ==========================  ==========================  ==============================
    consumer: ring not empty    :meth:`put`                 ``not_empty.notify_one`` (one
                                                            item satisfies one consumer)
    consumer: producers done    last :meth:`producer_done`  ``not_empty.notify_all``
    producer: ring not full     :meth:`take` from a full    ``not_full.notify_all`` (only
                                ring                        a take changes a full ring)
    ==========================  ==========================  ==============================
    """

    def __init__(self, process: Process, capacity: int, producers: int = 1) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.process = process
        self.capacity = capacity
        size = _SLOTS + 4 * capacity
        self.base = process.mmap((size + _PAGE - 1) // _PAGE * _PAGE)
        self.mutex = FutexMutex(process, self.base + _MUTEX)
        self.not_empty = FutexCondvar(process, self.base + _NOT_EMPTY, self.mutex)
        self.not_full = FutexCondvar(process, self.base + _NOT_FULL, self.mutex)
        process.store_u32(self.base + _PRODUCERS, producers)

    @property
    def produced(self) -> int:
        """Items put so far (an unlocked read: exact once the workers have finished)."""
        return self.process.load_u32(self.base + _TAIL)

    @property
    def consumed(self) -> int:
        """Items taken so far (an unlocked read: exact once the workers have finished)."""
        return self.process.load_u32(self.base + _HEAD)

    def _count(self) -> int:
        p = self.process
        return (p.load_u32(self.base + _TAIL) - p.load_u32(self.base + _HEAD)) & _U32

    def put(self, task: Task, item: int) -> None:
        """Append ``item``, waiting while the ring is full."""
        p, base = self.process, self.base
        self.mutex.lock(task)
        while self._count() == self.capacity:
            self.not_full.wait(task)
        tail = p.load_u32(base + _TAIL)
        p.store_u32(base + _SLOTS + 4 * (tail % self.capacity), item)
        p.store_u32(base + _TAIL, tail + 1)
        self.not_empty.notify_one(task)
        self.mutex.unlock(task)

    def take(self, task: Task) -> int | None:
        """Remove the oldest item, waiting while the ring is empty; ``None`` when it is
        empty and every producer is done.

        Taking from a full ring notifies *all* producers (a ``CMP_REQUEUE``): any of them
        may be waiting for the slot.
        """
        p, base = self.process, self.base
        self.mutex.lock(task)
        while (count := self._count()) == 0:
            if p.load_u32(base + _PRODUCERS) == 0:
                self.mutex.unlock(task)
                return None
            self.not_empty.wait(task)
        head = p.load_u32(base + _HEAD)
        item = p.load_u32(base + _SLOTS + 4 * (head % self.capacity))
        p.store_u32(base + _HEAD, head + 1)
        if count == self.capacity:
            self.not_full.notify_all(task)
        self.mutex.unlock(task)
        return item

    def producer_done(self, task: Task) -> None:
        """A producer has put its last item; the last one wakes every waiting consumer."""
        self.mutex.lock(task)
        if self.process.update_u32(self.base + _PRODUCERS, _decrement) == 1:
            self.not_empty.notify_all(task)
        self.mutex.unlock(task)

    def words(self) -> dict[str, int]:
        """The control words by name (for reports and tests)."""
        p, base = self.process, self.base
        return {
            "mutex": p.load_u32(base + _MUTEX),
            "not_empty.seq": p.load_u32(base + _NOT_EMPTY),
            "not_empty.waiters": p.load_u32(base + _NOT_EMPTY + 4),
            "not_full.seq": p.load_u32(base + _NOT_FULL),
            "not_full.waiters": p.load_u32(base + _NOT_FULL + 4),
            "head": p.load_u32(base + _HEAD),
            "tail": p.load_u32(base + _TAIL),
            "producers": p.load_u32(base + _PRODUCERS),
        }


# -- the workload -----------------------------------------------------------------------


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


@dataclass(frozen=True)
class Check:
    """One verdict of the final check."""

    name: str
    ok: bool
    detail: str


@dataclass
class DemoReport:
    """The outcome of :func:`run_demo`."""

    config: DemoConfig
    elapsed: float
    """Seconds from starting the workers until the last one finished (or the stall)."""
    checks: list[Check]
    calls: Counter[str]
    """futex calls by command name (:meth:`LinuxKernel.calls`)."""
    stats: FutexStats
    """The process's futex statistics at the end."""
    peak_buckets_used: int
    """The most buckets seen holding waiters at once (sampled while running)."""
    peak_busiest_bucket: int
    """The most waiters seen in one bucket at once (sampled while running)."""
    samples: int
    """How many times the statistics were sampled while the workers ran."""
    word_buckets: dict[str, int] = field(default_factory=dict)
    """The private-table bucket each futex word of the ring hashes to."""

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


def _producer(ring: Ring, task: Task, index: int, items: int, producers: int) -> None:
    for n in range(index + 1, items + 1, producers):
        ring.put(task, n)
    ring.producer_done(task)


def _consumer(ring: Ring, task: Task, out: list[int]) -> None:
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
    on_progress: Callable[[Progress], None] | None = None,
    interval: float = 0.05,
    stall_timeout: float = 30.0,
) -> DemoReport:
    """Run the producer/consumer workload on a fresh :class:`LinuxKernel` and check it.

    One process; one task per worker thread.  The calling thread only watches: every
    ``interval`` seconds it samples the progress (passed to ``on_progress``) and the bucket
    statistics.  If neither count moves for ``stall_timeout`` seconds the run is declared
    stuck (a lost wakeup or a deadlock), and the report says which tasks are blocked where;
    the stuck threads are daemons and are left behind.
    """
    kernel = LinuxKernel()
    process = kernel.new_process()
    ring = Ring(process, config.capacity, config.producers)
    errors: list[str] = []
    consumed: list[list[int]] = [[] for _ in range(config.consumers)]

    tasks: list[Task] = []
    threads: list[threading.Thread] = []
    for i in range(config.producers):
        t = process.new_task()
        tasks.append(t)
        args: tuple[object, ...] = (
            errors,
            f"producer {i} (tid {t.tid})",
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
        t = process.new_task()
        tasks.append(t)
        args = (errors, f"consumer {i} (tid {t.tid})", _consumer, ring, t, consumed[i])
        threads.append(
            threading.Thread(target=_guarded, args=args, name=f"consumer-{i}", daemon=True)
        )

    peak_used = peak_busiest = samples = 0
    start = time.perf_counter()
    for th in threads:
        th.start()
    last_move = start
    last_counts = (-1, -1)
    stalled = False
    while True:
        for th in threads:
            th.join(interval)
            if th.is_alive():
                break
        now = time.perf_counter()
        if not any(th.is_alive() for th in threads):
            break
        samples += 1
        s = process.futex.stats()
        peak_used = max(peak_used, s.buckets_used)
        peak_busiest = max(peak_busiest, s.busiest_bucket)
        counts = (ring.produced, ring.consumed)
        if on_progress is not None:
            on_progress(Progress(counts[0], counts[1], sum(kernel.calls().values()), now - start))
        if counts != last_counts:
            last_counts, last_move = counts, now
        elif now - last_move > stall_timeout:
            stalled = True
            break
    elapsed = now - start
    if on_progress is not None:
        calls = sum(kernel.calls().values())
        on_progress(Progress(ring.produced, ring.consumed, calls, elapsed))

    checks: list[Check] = []
    alive = [th.name for th in threads if th.is_alive()]
    checks.append(
        Check(
            "finished",
            not stalled and not alive,
            f"no progress for {stall_timeout:g} s; still running: {', '.join(alive)}"
            if stalled
            else "every worker returned",
        )
    )
    checks.append(Check("errors", not errors, "; ".join(errors) or "no worker raised"))
    checks.extend(check_items(consumed, config.items, config.producers))
    blocked = [t for t in tasks if t.blocked is not None]
    checks.append(
        Check(
            "no task blocked",
            not blocked,
            ", ".join(repr(t.blocked) for t in blocked) or "every task.blocked is None",
        )
    )
    try:
        process.futex.check_invariants()
        checks.append(Check("kernel invariants", True, "check_invariants() passed"))
    except AssertionError as exc:
        checks.append(Check("kernel invariants", False, str(exc)))
    stats = process.futex.stats()
    queues = process.futex.queues()
    checks.append(
        Check(
            "queues empty",
            stats.queued == 0,
            "no waiter left queued"
            if not stats.queued
            else f"{stats.queued} queued: "
            + ", ".join(f"{k!r}: {[w.tid for w in ws]}" for k, ws in queues.items()),
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
    word_buckets = {
        name: process.futex.bucket_of(process.futex.key(process.space, addr, True)).index
        for name, addr in (
            ("mutex", ring.mutex.addr),
            ("not_empty", ring.not_empty.addr),
            ("not_full", ring.not_full.addr),
        )
    }
    return DemoReport(
        config=config,
        elapsed=elapsed,
        checks=checks,
        calls=kernel.calls(),
        stats=stats,
        peak_buckets_used=peak_used,
        peak_busiest_bucket=peak_busiest,
        samples=samples,
        word_buckets=word_buckets,
    )
