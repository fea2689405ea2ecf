"""The process's futex reactor: threads that sleep in futex_waitv on behalf of event loops.

A futex cannot signal a file descriptor (FUTEX_FD was removed in Linux 2.6.26), so some
thread has to sleep in the kernel for the coroutines of :mod:`futex.sync.aio`.  This
module keeps that to one thread per 127 distinct words, for the whole process:

Entries
    A waiting coroutine registers a :class:`Waiter` under the key (word address, private
    flag, expected value).  Every coroutine of any loop waiting on the same key shares one
    *entry*, so the kernel sees one sleeper per entry however many coroutines wait.

Shards
    A shard is one daemon thread plus a control word of its own (a private futex word on
    an anonymous private mmap) and up to :data:`SLOTS` = 127 entries: its thread calls
    ``futex.native.waitv`` on the control word (index 0) and every entry (index 1..).
    Adding an entry bumps and wakes the shard's control word, so the thread leaves the
    kernel and re-arms with the new set; so does removing the last waiter of an entry
    (the shard drops its reference to the Word, which keeps the buffer exported).  A new
    key goes to the first shard with a free slot; when all are full a new shard (thread)
    starts — shards are never retired, so their number is the process's peak of distinct
    waited words / 127, rounded up.  The first shard starts with the first wait.

Completion
    When ``waitv`` returns index ``i``, every waiter of entry ``i`` is completed (its
    future gets True: "re-check the word") — all of them, since the kernel cannot say
    whether it was woken by FUTEX_WAKE(1) or by a wake-all.  futex_waitv reports *one*
    woken index even when several words were woken at once, and returns -1 when a word
    did not hold its expected value; so after every return the shard also completes each
    entry whose word no longer holds the expected value.  A wake without a value change
    is only ever needed by a waiter whose expected value is already stale (the futex
    protocol: a waiter sleeping on the current value is woken by whoever changes it next),
    so this scan finds every wake the single index hides.  Completions are posted to each
    loop with one ``call_soon_threadsafe`` per loop and round, guarded against futures
    that are already done (cancelled, timed out).

Hand-offs are never swallowed
    A coroutine that leaves (cancelled, timed out) removes its waiter before the
    algorithm's leaving step runs (which passes a consumed wake on with ``wake(1)``); if
    that was the entry's last waiter, it also waits — one round, the GIL released,
    bounded by :data:`REARM_BOUND` — until the shard has re-armed without the entry, so
    its own pass-on wake cannot land there.  If a wake does land on an entry that has no
    waiters left (the shard was still armed with it), the shard passes that wake on
    itself with ``wake(1)`` before re-arming.

Words
    The reactor holds a Word (and so its buffer export: ``mmap.close()`` and
    ``SharedMemory.close()`` raise BufferError meanwhile; ``Word.release()`` is refused
    while the kernel sleeps on it) only while a coroutine waits on it: a completed wait
    drops it before the coroutine resumes, a cancelled or timed-out one before the
    cancellation reaches the algorithm.

Fallback: polling
    Where futex_waitv is missing (ENOSYS: Linux before 5.16; or refused, e.g. EPERM from
    a seccomp filter) — probed once per process with a zero-timeout call — each shard
    instead sleeps on its control word for at most :data:`POLL_INTERVAL` (1 ms) while it
    has entries (forever while it has none) and completes the entries whose value
    changed.  Bounded cost: one thread wake-up per shard per millisecond while anything
    waits; a waiter then notices a change of value, not a wake, so a value that changes
    and changes back within one interval is missed until it changes again (an ABA the
    futex algorithms turn into a later wake-up, never a lost state).  Setting
    :data:`FORCE_POLLING` selects the fallback on purpose (tests); it is read at each
    round, so it takes effect at the next registration.

Fork
    ``os.register_at_fork`` forgets the reactor in the child (its threads do not exist
    there); the child's first wait starts a new one.  Waits that were in flight in the
    parent do not continue in the child (nor can the parent's event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import os
import sys
import threading
from dataclasses import dataclass
from typing import Final

from futex.native import Word, waitv

__all__ = [
    "FORCE_POLLING",
    "POLL_INTERVAL",
    "REARM_BOUND",
    "SLOTS",
    "Reactor",
    "ReactorStatistics",
    "Waiter",
    "reactor",
    "waitv_unavailable",
]

#: Entries per shard: futex_waitv takes at most 128 words, one is the control word.
SLOTS: Final = 127

#: Longest sleep of a polling shard that has entries (seconds).
POLL_INTERVAL: Final = 0.001

#: Longest wait of :meth:`Reactor.unregister` for its shard to re-arm (seconds).
REARM_BOUND: Final = 1.0

#: Poll (the fallback) even where futex_waitv works: read at every round (tests set it).
FORCE_POLLING = False

_Key = tuple[int, bool, int]


class Waiter:
    """One coroutine's registration: completed with True when its word may have changed."""

    __slots__ = ("entry", "future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[bool]) -> None:
        self.loop = loop
        self.future = future
        self.entry: _Entry | None = None  # None once completed or removed


class _Entry:
    """The waiters of one (word, expected) key, armed by one shard."""

    __slots__ = ("expected", "key", "shard", "waiters", "word")

    def __init__(self, key: _Key, word: Word, expected: int, shard: _Shard) -> None:
        self.key = key
        self.word = word
        self.expected = expected
        self.shard = shard
        self.waiters: dict[Waiter, None] = {}


@dataclass(frozen=True)
class ReactorStatistics:
    """A snapshot of the reactor (for tests and diagnostics)."""

    mode: str  #: "waitv" or "polling" (the mode of the next round)
    shards: int  #: reactor threads started (each up to SLOTS entries)
    entries: int  #: distinct (word, expected) keys waited on
    waiters: int  #: registered coroutine waits
    rounds: int  #: returns from the kernel, all shards together
    passed_on: int  #: wakes that landed on an abandoned entry and were passed on
    thread_ids: tuple[int, ...]  #: the shards' native thread ids (0: not started yet)


_probe: list[str | None] = []  # [reason] once probed: None = futex_waitv works


def waitv_unavailable() -> str | None:
    """Why futex_waitv cannot be used in this process (None: it can); probed once."""
    if not _probe:
        m = mmap.mmap(-1, 4, flags=mmap.MAP_PRIVATE)
        word = Word(m, private=True)
        try:
            waitv([(word, 0)], 0)  # the value matches: the kernel sleeps 0 s -> None
            reason: str | None = None
        except OSError as exc:
            reason = f"futex_waitv failed: {exc}"
        finally:
            word.release()
            m.close()
        _probe.append(reason)
    return _probe[0]


def _polling() -> bool:
    return FORCE_POLLING or waitv_unavailable() is not None


class _Shard:
    """One reactor thread, its control word and its (at most SLOTS) entries."""

    def __init__(self, owner: Reactor, index: int) -> None:
        self.owner = owner
        self.entries: dict[_Key, _Entry] = {}
        self._map = mmap.mmap(-1, 4, flags=mmap.MAP_PRIVATE)
        self.control = Word(self._map, private=True)
        self.armed: list[_Entry] = []  # what the current round sleeps on (thread only)
        self.generation = 0  # rounds armed so far (under the reactor's lock)
        self.thread = threading.Thread(
            target=self._run, name=f"futex-reactor-{index}", daemon=True
        )

    def kick(self) -> None:
        """Make the thread leave the kernel and re-arm (call after changing entries)."""
        self.control.fetch_add(1)
        self.control.wake(1)

    def _run(self) -> None:
        while True:
            try:
                self._round()
            except Exception:  # a bug: report it, let every waiter re-check, go on
                sys.excepthook(*sys.exc_info())
                self.owner.settle(self, None, scan=True, everything=True)
                self.control.wait(self.control.load(), POLL_INTERVAL)  # no busy loop

    def _round(self) -> None:
        owner = self.owner
        with owner.lock:
            seen = self.control.load()
            self.armed = list(self.entries.values())
            self.generation += 1  # the previous round's words are no longer referenced
            owner.rearmed.notify_all()
        polling = _polling()
        outcome: int | None = None
        try:
            outcome = self._sleep(seen, polling)
        except OSError as exc:  # futex_waitv refused after all: poll from now on
            _probe[:] = [f"futex_waitv failed: {exc}"]
            outcome = -1
        except ValueError:  # a Word was released under its waiters: let them see it
            outcome = -1
        owner.settle(self, outcome, scan=polling or outcome == -1 or len(self.armed) > 1)

    def _sleep(self, seen: int, polling: bool) -> int | None:
        """One sleep in the kernel: futex_waitv's outcome (None: the poll interval)."""
        if polling:
            self.control.wait(seen, POLL_INTERVAL if self.armed else None)
            return None
        pairs = [(self.control, seen)]
        pairs.extend((e.word, e.expected) for e in self.armed)
        return waitv(pairs)


class Reactor:
    """The shards of this process and the key -> entry table (one per process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rearmed = threading.Condition(self.lock)  # a shard took a new snapshot
        self.entries: dict[_Key, _Entry] = {}
        self.shards: list[_Shard] = []
        self.rounds = 0
        self.passed_on = 0

    # -- coroutine side -------------------------------------------------------------------

    def register(self, word: Word, expected: int, waiter: Waiter) -> None:
        """Add ``waiter`` for ``word`` holding ``expected`` (an unsigned 32-bit value)."""
        key: _Key = (word.address, word.private, expected)
        kick: _Shard | None = None
        start: _Shard | None = None
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                shard = next((s for s in self.shards if len(s.entries) < SLOTS), None)
                if shard is None:
                    shard = start = _Shard(self, len(self.shards))
                    self.shards.append(shard)
                entry = _Entry(key, word, expected, shard)
                self.entries[key] = shard.entries[key] = entry
                kick = shard
            entry.waiters[waiter] = None
            waiter.entry = entry
        if start is not None:
            start.thread.start()
        elif kick is not None:
            kick.kick()

    def unregister(self, waiter: Waiter) -> None:
        """Remove ``waiter`` if it is still registered (it left before being completed).

        If its entry goes, the shard re-arms without it, and this returns once it has
        (one reactor round, the GIL released meanwhile): the reactor then no longer
        holds the Word, so the caller may release it or close its buffer at once.
        """
        shard = self.remove(waiter)
        if shard is None:
            return
        with self.lock:
            generation = shard.generation
        shard.kick()
        with self.lock:
            self.rearmed.wait_for(
                lambda: shard.generation != generation or not shard.thread.is_alive(),
                REARM_BOUND,
            )

    def remove(self, waiter: Waiter) -> _Shard | None:
        """The table half of :meth:`unregister`: the shard to kick if an entry went away."""
        with self.lock:
            entry = waiter.entry
            if entry is None:
                return None
            waiter.entry = None
            del entry.waiters[waiter]
            if entry.waiters:
                return None
            del self.entries[entry.key]
            del entry.shard.entries[entry.key]
            return entry.shard

    def statistics(self) -> ReactorStatistics:
        with self.lock:
            return ReactorStatistics(
                mode="polling" if _polling() else "waitv",
                shards=len(self.shards),
                entries=len(self.entries),
                waiters=sum(len(e.waiters) for e in self.entries.values()),
                rounds=self.rounds,
                passed_on=self.passed_on,
                thread_ids=tuple(s.thread.native_id or 0 for s in self.shards),
            )

    # -- shard side -------------------------------------------------------------------------

    def settle(
        self, shard: _Shard, outcome: int | None, scan: bool, everything: bool = False
    ) -> None:
        """After one return of ``shard``'s sleep: complete what may have changed
        (``everything``: all of the shard's entries)."""
        pass_on, futures = self._collect(shard, outcome, scan, everything)
        for word in pass_on:
            word.wake(1)
        # No completed entry nor its Word is referenced here any more: the coroutines may
        # release the Word or close its buffer as soon as they run.
        del pass_on
        for loop, futs in futures.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody awaits these
                loop.call_soon_threadsafe(_complete, futs)

    def _collect(
        self, shard: _Shard, outcome: int | None, scan: bool, everything: bool
    ) -> tuple[list[Word], dict[asyncio.AbstractEventLoop, list[asyncio.Future[bool]]]]:
        """Take the completed entries out of the tables: the words to pass a wake on to,
        and the futures to complete per loop."""
        pass_on: list[Word] = []
        futures: dict[asyncio.AbstractEventLoop, list[asyncio.Future[bool]]] = {}
        with self.lock:
            self.rounds += 1
            done: list[_Entry] = []
            if outcome is not None and outcome > 0:
                woken = shard.armed[outcome - 1]
                if shard.entries.get(woken.key) is woken:
                    done.append(woken)
                else:  # abandoned after arming: the wake was meant for someone else
                    pass_on.append(woken.word)
                    self.passed_on += 1
            if scan:
                done.extend(
                    e
                    for e in shard.entries.values()
                    if e not in done and (everything or _changed(e))
                )
            for entry in done:
                del self.entries[entry.key]
                del shard.entries[entry.key]
                for waiter in entry.waiters:
                    waiter.entry = None
                    futures.setdefault(waiter.loop, []).append(waiter.future)
            shard.armed = []
        return pass_on, futures


def _changed(entry: _Entry) -> bool:
    try:
        return entry.word.load() != entry.expected
    except ValueError:  # released: complete it, the waiter's next load raises
        return True


def _complete(futures: list[asyncio.Future[bool]]) -> None:
    for fut in futures:
        if not fut.done():
            fut.set_result(True)


_instance: list[Reactor] = []
_instance_lock = threading.Lock()


def reactor() -> Reactor:
    """This process's reactor (created on first use; afresh in a fork child)."""
    if not _instance:
        with _instance_lock:
            if not _instance:
                _instance.append(Reactor())
    return _instance[0]


def _forget_in_child() -> None:
    global _instance_lock
    _instance.clear()
    _instance_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
