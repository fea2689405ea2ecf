"""The demo workload on Zircon: libsync's mutex word, futex ownership, priority
inheritance, and a timeline of who owns the mutex futex at which priority.

The mutex word (Fuchsia's ``sync_mutex_t``, ``zircon/system/ulib/sync/mutex.c``)
---------------------------------------------------------------------------------

========================  ===========================================================
word                      meaning
========================  ===========================================================
0                         unlocked
the owner's handle        locked, uncontested (a thread handle always has bits 0 and 1
                          set: ``ZX_HANDLE_FIXED_BITS_MASK``)
handle with bit 0 clear   locked, contested: unlock must ``zx_futex_wake_single_owner``
========================  ===========================================================

So the word itself says who holds the lock, and a waiter tells the kernel
(``zx_futex_wait(word, contested value, owner handle, ZX_TIME_INFINITE)``): the kernel
records that thread as the futex's owner and lends it the priority of every waiter.  The
unlock hands the futex on with ``zx_futex_wake_single_owner``: the woken thread owns it
(while others still wait) and takes the word marked contested, so the kernel's owner and
the word agree again.  This is the algorithm of :class:`futex.demo.sync.FutexMutex` with
this adapter's word protocol.

The condition variable's ``notify_all`` is ``zx_futex_requeue(seq, 1, seq, mutex,
UINT32_MAX, owner)`` where ``owner`` is read from the mutex word, as libsync's
``MutexOps<sync_mutex_t>::signal_requeue`` does (``libsync_mutex_make_owner_from_state``:
the word's handle, or ``ZX_HANDLE_INVALID`` when it is unlocked).  The notifier holds the
mutex, so it names itself: the moved waiters lend it their priority at once.  Naming
nobody would be correct too, but a requeue *resets* the target futex's owner first
(``WakeAndRequeue``), so the waiters already queued on the mutex would stop boosting the
holder until the next wait named it again.

Priorities (0 lowest .. 31 highest): producers :data:`PRODUCER_PRIORITY`, consumers
:data:`CONSUMER_PRIORITY`.  A consumer that takes from a full ring requeues the producers
waiting for a slot onto the mutex it holds, naming itself owner: it inherits their 24
until its unlock hands the futex to one of them.  (A producer blocked on the mutex while a
consumer holds it does the same.)  The timeline shows both.

Observation: after every wait that queued on a watched word, every unlock handoff, every
requeue, once when the ring is primed and whenever the watcher samples its view for a
display, the adapter reads (under the kernel's thread lock) the owner of each watched
futex and its base and effective priority; a change is an event of the
:class:`OwnershipTimeline`.  The counts are of these observations, so a boost that begins
and ends between two of them is not seen: the figures are a lower bound, never an
invention.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from futex.demo.kernels import CallCounter, Check, FutexCallError, FutexOps, View
from futex.kernel import FutexManager
from futex.zircon import Process, Thread, ZirconKernel, abi

__all__ = [
    "CONSUMER_PRIORITY",
    "PRODUCER_PRIORITY",
    "OwnerEvent",
    "OwnershipTimeline",
    "ZirconOps",
]

PRODUCER_PRIORITY = 24
CONSUMER_PRIORITY = 8
#: Cleared in a locked word when the mutex is contested (libsync's CONTESTED_BIT).
CONTESTED_BIT = 1
_U32 = 0xFFFFFFFF


@dataclass(frozen=True)
class OwnerEvent:
    """The owner of a watched futex changed (or its effective priority did)."""

    time: float
    """Seconds since the workload started."""
    word: str
    owner: str | None
    """The owner thread's name; None when the futex has no owner."""
    base: int = 0
    effective: int = 0

    @property
    def boosted(self) -> bool:
        return self.owner is not None and self.effective > self.base

    def line(self) -> str:
        at = f"{self.time * 1000:9.2f} ms  {self.word}: "
        if self.owner is None:
            return at + "no owner"
        tail = " (boosted by a waiter)" if self.boosted else ""
        return f"{at}{self.owner} owns it, base {self.base}, effective {self.effective}{tail}"


@dataclass
class OwnerRecord:
    """One thread's history as an owner."""

    base: int
    owned: int = 0
    """Events that made it the owner."""
    boosted: int = 0
    """Events that found it boosted."""
    peak: int = 0
    """The highest effective priority seen while it owned a watched futex."""


@dataclass
class OwnershipTimeline:
    """The ownership events of the watched futexes: counts, per-thread records, the first
    and the latest events.  ``record`` is called in event order (under ``lock``)."""

    keep: int = 6
    lock: threading.Lock = field(default_factory=threading.Lock)
    observations: int = 0
    changes: int = 0
    """Events whose owner differs from the previous one of the same word."""
    boosts: int = 0
    """Events that found the owner's effective priority above its base."""
    first: list[OwnerEvent] = field(default_factory=list)
    recent: deque[OwnerEvent] = field(default_factory=deque)
    events: int = 0
    threads: dict[str, OwnerRecord] = field(default_factory=dict)
    last: dict[str, OwnerEvent] = field(default_factory=dict)

    def record(self, event: OwnerEvent) -> None:
        """Note ``event`` if it changes its word's owner or priority (``lock`` held)."""
        self.observations += 1
        prev = self.last.get(event.word)
        same = (prev.owner, prev.effective) if prev is not None else (None, 0)
        if (event.owner, event.effective) == same:
            return
        self.last[event.word] = event
        self.events += 1
        if len(self.first) < self.keep:
            self.first.append(event)
        else:
            self.recent.append(event)
            if len(self.recent) > self.keep:
                self.recent.popleft()
        if event.owner is None:
            if prev is not None and prev.owner is not None:
                self.changes += 1
            return
        rec = self.threads.setdefault(event.owner, OwnerRecord(event.base))
        rec.peak = max(rec.peak, event.effective)
        if prev is None or prev.owner != event.owner:
            self.changes += 1
            rec.owned += 1
        if event.boosted:
            self.boosts += 1
            rec.boosted += 1

    def lines(self) -> list[str]:
        if not self.events:
            return ["  no watched futex ever had an owner"]
        out = ["  thread           base  owned  boosted  peak effective"]
        for name in sorted(self.threads):
            r = self.threads[name]
            out.append(f"  {name:<15} {r.base:>5} {r.owned:>6} {r.boosted:>8} {r.peak:>15}")
        shown = len(self.first) + len(self.recent)
        which = (
            f"all {self.events}"
            if shown == self.events
            else f"first {len(self.first)} and last {len(self.recent)} of {self.events}"
        )
        out.append(f"  timeline ({which} events):")
        out.extend("  " + e.line() for e in self.first)
        if shown < self.events:
            out.append("       ...")
        out.extend("  " + e.line() for e in self.recent)
        return out


class ZirconOps(FutexOps[Thread]):
    """``zx_futex_*`` of :mod:`futex.zircon` with libsync's owner-handle mutex word
    (module docstring) and an :class:`OwnershipTimeline` of the watched futexes."""

    kernel = "zircon"
    title = "Zircon zx_futex_* (ownership, priority inheritance)"
    id_label = "koid"

    def __init__(self, process: Process | None = None) -> None:
        self.process = process if process is not None else ZirconKernel().new_process()
        self.zircon = self.process.kernel
        super().__init__(self.process.space)
        self._handles: dict[int, int] = {}
        self._calls = CallCounter()
        self.timeline = OwnershipTimeline()

    def mmap(self, length: int) -> int:
        return self.process.mmap(length)

    def new_task(self, name: str, role: str = "") -> Thread:
        priority = {"producer": PRODUCER_PRIORITY, "consumer": CONSUMER_PRIORITY}.get(
            role, abi.ZX_PRIORITY_DEFAULT
        )
        t = self.process.new_thread(name, priority=priority)
        t.start()
        # The thread's own handle (zx_thread_self()), valid process-wide.
        self._handles[t.koid] = self.process.handle(t)
        return self._named(t, name)

    def task_id(self, task: Thread) -> int:
        return task.koid

    def blocked(self, task: Thread) -> object | None:
        return task.blocked

    # -- the word protocol -------------------------------------------------------------

    def locked_value(self, task: Thread) -> int:
        return self._handles[task.koid]

    def contested(self, value: int) -> int:
        return value & ~CONTESTED_BIT & _U32

    def owner_of_word(self, value: int) -> int:
        """``libsync_mutex_make_owner_from_state``."""
        return value | CONTESTED_BIT if value else abi.ZX_HANDLE_INVALID

    # -- calls -------------------------------------------------------------------------

    def wait(self, task: Thread, addr: int, expected: int, owner: int = 0) -> bool:
        self._calls.add("zx_futex_wait")
        r = task.futex_wait_nb(addr, expected, owner, abi.ZX_TIME_INFINITE)
        if isinstance(r, int):
            status = r
        else:
            self._observe(addr)  # queued: the owner has its waiters' priority now
            try:
                status = r.wait()
            except BaseException:
                r.kill()  # the Python thread is leaving: leave no waiter behind
                raise
        if status == abi.ZX_ERR_BAD_STATE:
            return False
        if status != abi.ZX_OK:
            raise FutexCallError(f"zx_futex_wait returned {abi.STATUS_NAMES.get(status, status)}")
        return True

    def wake(self, task: Thread, addr: int, n: int) -> None:
        self._calls.add("zx_futex_wake")
        self._ok(task.futex_wake(addr, min(n, _U32)), "zx_futex_wake")
        return None

    def wake_owner(self, task: Thread, addr: int) -> None:
        self._calls.add("zx_futex_wake_single_owner")
        self._ok(task.futex_wake_single_owner(addr), "zx_futex_wake_single_owner")
        self._observe(addr)

    def requeue(
        self, task: Thread, addr: int, expected: int, target: int, owner: int
    ) -> tuple[bool, int | None]:
        self._calls.add("zx_futex_requeue")
        r = task.futex_requeue(addr, 1, expected, target, _U32, owner)
        if r == abi.ZX_ERR_BAD_STATE:
            return False, None
        self._ok(r, "zx_futex_requeue")
        self._observe(target)
        return True, None

    @staticmethod
    def _ok(status: int, what: str) -> None:
        if status != abi.ZX_OK:
            raise FutexCallError(f"{what} returned {abi.STATUS_NAMES.get(status, status)}")

    # -- observation -------------------------------------------------------------------

    def _observe(self, addr: int) -> None:
        for name, a in self.words.items():
            if a == addr:
                self._observe_word(name, addr)

    def _observe_word(self, name: str, addr: int) -> None:
        tl = self.timeline
        with tl.lock:
            with self.zircon.lock:
                state = self.process.states.get(addr)
                owner = None if state is None else state.owner
                if isinstance(owner, Thread):
                    event = OwnerEvent(
                        time.perf_counter() - self.t0,
                        name,
                        owner.name,
                        owner.priority,
                        owner.effective_priority,
                    )
                else:
                    event = OwnerEvent(time.perf_counter() - self.t0, name, None)
            tl.record(event)

    @property
    def manager(self) -> FutexManager:
        return self.process.futex

    def calls(self) -> Counter[str]:
        return self._calls.snapshot()

    def check_invariants(self) -> None:
        self.zircon.check_invariants()

    def bucket_index(self, addr: int) -> int:
        return self.process.futex.bucket_index(addr)

    def view(self) -> View:
        for name, addr in self.words.items():
            self._observe_word(name, addr)
        tl = self.timeline
        with tl.lock:
            last = tl.last.get("mutex")
            counts = f"{tl.changes} ownership changes, {tl.boosts} boosts so far"
            recent = [e.line() for e in [*tl.first, *tl.recent][-4:]]
        if last is None or last.owner is None:
            now = "mutex futex: no owner"
        else:
            boost = ", inherited from a waiter" if last.boosted else ""
            now = (
                f"mutex futex owner: {last.owner} (base {last.base}, effective "
                f"{last.effective}{boost})"
            )
        return View(f"{now}; {counts}", (now, counts, *recent))

    def extra_checks(self) -> list[Check]:
        with self.zircon.lock:
            active = {f"{k:#x}": s.owner for k, s in self.process.states.items()}
            raised = [
                f"{t.name} {t.priority} -> {t.effective_priority}"
                for t in self.process.threads.values()
                if t.effective_priority != t.priority
            ]
        return [
            Check(
                "owners released",
                not active,
                "no futex active or owned" if not active else f"still active: {active}",
            ),
            Check(
                "priorities restored",
                not raised,
                "every thread back at its base priority"
                if not raised
                else "still boosted: " + ", ".join(raised),
            ),
        ]

    def report_lines(self) -> list[str]:
        tl = self.timeline
        with tl.lock:
            return [
                f"zircon: producers at priority {PRODUCER_PRIORITY}, consumers at "
                f"{CONSUMER_PRIORITY} (0 lowest .. 31 highest); the mutex word is libsync's "
                "(the owner's handle, bit 0 cleared when contested)",
                f"ownership of the mutex futex ({tl.observations} observations): "
                f"{tl.changes} ownership changes, {tl.boosts} priority boosts seen",
                *tl.lines(),
            ]

    def facts(self) -> dict[str, int]:
        tl = self.timeline
        with tl.lock:
            return {
                "observations": tl.observations,
                "ownership changes": tl.changes,
                "boosts": tl.boosts,
                "owners": len(tl.threads),
            }
