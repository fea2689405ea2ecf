"""Section 6a of ``bench_emulated.py``: PI futexes, uncontended, and cooperative hand-offs.

Uncontended FUTEX_LOCK_PI / TRYLOCK_PI / UNLOCK_PI (alone and in pairs, and TRYLOCK_PI
on a word another thread holds) through ``Task.syscall_futex`` and through the host
kernel, where the word carries the calling thread's own tid.  The single-call batches
use distinct words, one call each, so every timed call finds the word in the state its
label says; :meth:`PiSide.restore` checks what the batch did and resets the words
between samples (untimed).  Emulated only: UNLOCK_PI handing the lock to a waiter parked
cooperatively in LOCK_PI (``syscall_futex_nb``), with and without the old holder
re-parking behind it (:class:`_HandOff`).  The two-thread ping-pong (6b) is in
``_emulated_pingpong``.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from _emulated_common import (
    EWOULDBLOCK,
    FUTEX_WAITERS,
    JOIN_TIMEOUT_S,
    LOCK_PI_PRIVATE,
    PAGE,
    PROT_RW,
    TRYLOCK_PI_PRIVATE,
    UNLOCK_PI_PRIVATE,
    Config,
    FutexCall,
    new_process,
)
from _host import hostfutex as _hostfutex
from _timing import BenchError, Runner, call_loop, expect, interleaved, log, paired_ratio

from futex.linux import PendingWait, Task, abi
from tests.support.hostfutex import (
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    gettid,
    host_futex,
    host_mmap,
    host_munmap,
)

# -- 6. PI futexes ---------------------------------------------------------------------------


def host_u32(addr: int) -> int:
    return ctypes.c_uint32.from_address(addr).value


def pi_batch(f: FutexCall, addrs: Sequence[int], op: int) -> Runner:
    """A runner making one ``op`` call on each word of ``addrs``."""
    words = list(addrs)

    def run() -> None:
        for a in words:
            f(a, op, 0, 0, 0, 0)

    return run


def pi_pair_loop(f: FutexCall, uaddr: int, lock_op: int, n: int) -> Runner:
    """A runner making ``n`` (``lock_op``, UNLOCK_PI) pairs on one word."""
    rng = range(n)

    def run() -> None:
        for _ in rng:
            f(uaddr, lock_op, 0, 0, 0, 0)
            f(uaddr, UNLOCK_PI_PRIVATE, 0, 0, 0, 0)

    return run


def park_pi(task: Task, uaddr: int) -> PendingWait:
    """Block ``task`` cooperatively in FUTEX_LOCK_PI_PRIVATE on ``uaddr`` (held by another)."""
    r = task.syscall_futex_nb(uaddr, LOCK_PI_PRIVATE, 0, 0, 0, 0)
    if not isinstance(r, PendingWait):
        raise BenchError(f"LOCK_PI on {uaddr:#x} returned {r} instead of blocking")
    return r


@dataclass
class PiSide:
    """The words of one side (emulated or real) of the uncontended PI measurements."""

    f: FutexCall
    load: Callable[[int], int]  # read a word
    tid: int  # the caller's tid, as the kernel writes it
    lock_words: list[int]  # LOCK_PI batch: 0 before a sample
    unlock_words: list[int]  # UNLOCK_PI batch: held before a sample
    try_words: list[int]  # TRYLOCK_PI batch: 0 before a sample
    pair_word: int  # LOCK_PI + UNLOCK_PI pairs
    try_pair_word: int  # TRYLOCK_PI + UNLOCK_PI pairs
    held_word: int  # held by another live thread / task: TRYLOCK_PI -> EWOULDBLOCK

    def each(self, words: Sequence[int], op: int, want: int, what: str) -> None:
        f = self.f
        for a in words:
            r = f(a, op, 0, 0, 0, 0)
            if r != want:
                raise BenchError(f"{what} on {a:#x}: got {r}, expected {want}")

    def check_words(self, words: Sequence[int], want: int, what: str) -> None:
        for a in words:
            got = self.load(a)
            if got != want:
                raise BenchError(f"{what}: word {a:#x} is {got:#x}, expected {want:#x}")

    def restore(self, kind: str) -> None:
        """After a sample: check what the timed calls did and reset the words (untimed)."""
        if kind == "LOCK_PI":
            self.check_words(self.lock_words, self.tid, "after LOCK_PI")
            self.each(self.lock_words, UNLOCK_PI_PRIVATE, 0, "UNLOCK_PI (restore)")
        elif kind == "TRYLOCK_PI":
            self.check_words(self.try_words, self.tid, "after TRYLOCK_PI")
            self.each(self.try_words, UNLOCK_PI_PRIVATE, 0, "UNLOCK_PI (restore)")
        elif kind == "UNLOCK_PI":
            self.check_words(self.unlock_words, 0, "after UNLOCK_PI")
            self.each(self.unlock_words, LOCK_PI_PRIVATE, 0, "LOCK_PI (restore)")
        elif kind == "pair":
            self.check_words([self.pair_word], 0, "after LOCK_PI + UNLOCK_PI")
        elif kind == "try pair":
            self.check_words([self.try_pair_word], 0, "after TRYLOCK_PI + UNLOCK_PI")
        elif kind == "held":
            got = self.load(self.held_word) & abi.FUTEX_TID_MASK
            if got == self.tid or got == 0:
                raise BenchError(f"the held word's owner changed to {got}")


def _pi_words(base: int, n: int) -> tuple[list[int], list[int], list[int], int, int, int]:
    """Three batches of ``n`` words, then three single words, from ``base``."""
    words = [base + 4 * i for i in range(3 * n + 3)]
    return words[:n], words[n : 2 * n], words[2 * n : 3 * n], words[-3], words[-2], words[-1]


def _pi_span(n: int) -> int:
    return -(-(4 * (3 * n + 3)) // PAGE) * PAGE


#: Uncontended PI figures: (label, runner kind).
PI_CASES = (
    ("LOCK_PI_PRIVATE, 0 word -> 0 (takes it)", "LOCK_PI"),
    ("UNLOCK_PI_PRIVATE, no waiters -> 0 (word 0)", "UNLOCK_PI"),
    ("TRYLOCK_PI_PRIVATE, 0 word -> 0 (takes it)", "TRYLOCK_PI"),
    ("LOCK_PI + UNLOCK_PI pair, uncontended", "pair"),
    ("TRYLOCK_PI + UNLOCK_PI pair, uncontended", "try pair"),
    ("TRYLOCK_PI_PRIVATE, word held by another thread -> EWOULDBLOCK", "held"),
)


class _HandOff:
    """Cooperative hand-offs on the emulated kernel: word ``i`` is held by ``holders[i]``
    while ``waiters[i]`` is parked in LOCK_PI on it (``syscall_futex_nb``); an UNLOCK_PI by
    the holder hands the word to the waiter, and the old holder re-parks behind it, so the
    two swap roles."""

    def __init__(self, n: int) -> None:
        _, p, _ = new_process()
        self.process = p
        base = p.mmap(-(-(4 * n) // PAGE) * PAGE)
        self.addrs = [base + 4 * i for i in range(n)]
        self.holders = [p.new_task() for _ in range(n)]
        self.waiters = [p.new_task() for _ in range(n)]
        for h, w, a in zip(self.holders, self.waiters, self.addrs, strict=True):
            expect(h.syscall_futex(a, LOCK_PI_PRIVATE, 0, 0, 0, 0), 0, "holder LOCK_PI")
            park_pi(w, a)
        self._bind()

    def _bind(self) -> None:
        self.unlock_fns: list[FutexCall] = [t.syscall_futex for t in self.holders]
        self.park_fns = [t.syscall_futex_nb for t in self.holders]

    def handoff_runner(self) -> Runner:
        def run() -> None:
            for f, a in zip(self.unlock_fns, self.addrs, strict=True):
                f(a, UNLOCK_PI_PRIVATE, 0, 0, 0, 0)

        return run

    def handoff_repark_runner(self) -> Runner:
        def run() -> None:
            for f, nb, a in zip(self.unlock_fns, self.park_fns, self.addrs, strict=True):
                f(a, UNLOCK_PI_PRIVATE, 0, 0, 0, 0)
                nb(a, LOCK_PI_PRIVATE, 0, 0, 0, 0)

        return run

    def after(self, reparked: bool) -> None:
        """Check every word went to its waiter; re-park the old holders unless the
        sample did; swap the roles (untimed)."""
        load = self.process.load_u32
        for h, w, a in zip(self.holders, self.waiters, self.addrs, strict=True):
            if w.blocked is not None:
                raise BenchError(f"task {w.tid} was not handed the lock at {a:#x}")
            expect(load(a), FUTEX_WAITERS | w.tid, "word after the hand-off")
            if not reparked:
                park_pi(h, a)
            elif h.blocked is None:
                raise BenchError(f"task {h.tid} did not re-park on {a:#x}")
        self.holders, self.waiters = self.waiters, self.holders
        self._bind()

    def close(self) -> None:
        for h, w, a in zip(self.holders, self.waiters, self.addrs, strict=True):
            expect(h.syscall_futex(a, UNLOCK_PI_PRIVATE, 0, 0, 0, 0), 0, "final hand-off")
            expect(w.syscall_futex(a, UNLOCK_PI_PRIVATE, 0, 0, 0, 0), 0, "final unlock")
        self.process.futex.check_invariants()


def bench_pi_uncontended(cfg: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    log("6a. PI futexes, uncontended: emulated vs host kernel; cooperative hand-off")
    n = cfg.call_n
    span = _pi_span(n)
    _, p, t = new_process()
    other = p.new_task()  # holds the emulated held_word
    e_base = p.mmap(span)
    sides: dict[str, PiSide] = {}
    e_words = _pi_words(e_base, n)
    sides["emu"] = PiSide(t.syscall_futex, p.load_u32, t.tid, *e_words)
    host = _hostfutex.available()
    r_base = 0
    holder: threading.Thread | None = None
    release = threading.Event()
    took: list[int] = []  # the host holder thread's results
    if host:
        r_base = host_mmap(0, span, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS)
        ctypes.memset(r_base, 0, span)  # fault the pages in
        sides["real"] = PiSide(host_futex, host_u32, gettid(), *_pi_words(r_base, n))
    try:
        # The held words: another task (emulated) / a live thread (host) owns them.
        emu_held = sides["emu"].held_word
        expect(other.syscall_futex(emu_held, LOCK_PI_PRIVATE, 0, 0, 0, 0), 0, "other LOCK_PI")
        if host:
            held = sides["real"].held_word
            got = threading.Event()

            def hold() -> None:
                took.append(host_futex(held, LOCK_PI_PRIVATE, 0, 0, 0, 0))
                got.set()
                release.wait(600)
                took.append(host_futex(held, UNLOCK_PI_PRIVATE, 0, 0, 0, 0))

            holder = threading.Thread(target=hold, name="pi-holder", daemon=True)
            holder.start()
            if not got.wait(JOIN_TIMEOUT_S) or took != [0]:
                raise BenchError(f"host holder thread: LOCK_PI gave {took}")

        runners: dict[str, tuple[Runner, int]] = {}
        for tag, sd in sides.items():
            who = f"{tag} "
            # Check each call once, as the timed loops will make it.
            sd.each(sd.lock_words[:1], LOCK_PI_PRIVATE, 0, who + "LOCK_PI")
            sd.check_words(sd.lock_words[:1], sd.tid, who + "LOCK_PI wrote the tid")
            sd.each(sd.lock_words[:1], UNLOCK_PI_PRIVATE, 0, who + "UNLOCK_PI")
            sd.check_words(sd.lock_words[:1], 0, who + "UNLOCK_PI cleared the word")
            sd.each(sd.try_words[:1], TRYLOCK_PI_PRIVATE, 0, who + "TRYLOCK_PI")
            sd.each(sd.try_words[:1], UNLOCK_PI_PRIVATE, 0, who + "UNLOCK_PI")
            sd.each([sd.held_word], TRYLOCK_PI_PRIVATE, EWOULDBLOCK, who + "TRYLOCK_PI held")
            sd.each(sd.unlock_words, LOCK_PI_PRIVATE, 0, who + "LOCK_PI (setup)")
            f = sd.f
            runners[who + "LOCK_PI"] = (pi_batch(f, sd.lock_words, LOCK_PI_PRIVATE), n)
            runners[who + "UNLOCK_PI"] = (pi_batch(f, sd.unlock_words, UNLOCK_PI_PRIVATE), n)
            runners[who + "TRYLOCK_PI"] = (pi_batch(f, sd.try_words, TRYLOCK_PI_PRIVATE), n)
            runners[who + "pair"] = (pi_pair_loop(f, sd.pair_word, LOCK_PI_PRIVATE, n), n)
            runners[who + "try pair"] = (
                pi_pair_loop(f, sd.try_pair_word, TRYLOCK_PI_PRIVATE, n),
                n,
            )
            runners[who + "held"] = (
                call_loop(f, (sd.held_word, TRYLOCK_PI_PRIVATE, 0, 0, 0, 0), n),
                n,
            )
        # Emulated only: UNLOCK_PI handing the lock to a cooperatively parked waiter.
        hn = cfg.pi_handoffs
        ho = _HandOff(hn)
        runners["coop handoff"] = (ho.handoff_runner(), hn)
        runners["coop handoff+repark"] = (ho.handoff_repark_runner(), hn)

        def between(name: str) -> None:
            if name == "coop handoff":
                ho.after(reparked=False)
            elif name == "coop handoff+repark":
                ho.after(reparked=True)
            else:
                tag, kind = name.split(" ", 1)
                sides[tag].restore(kind)

        stats = interleaved(runners, cfg.repeats, between)
        ho.close()
        for sd in sides.values():
            sd.each(sd.unlock_words, UNLOCK_PI_PRIVATE, 0, "UNLOCK_PI (teardown)")
        expect(other.syscall_futex(emu_held, UNLOCK_PI_PRIVATE, 0, 0, 0, 0), 0, "other UNLOCK")
    finally:
        release.set()
        if holder is not None:
            holder.join(JOIN_TIMEOUT_S)
            if holder.is_alive():
                raise BenchError("the host PI holder thread did not finish")
        if r_base:
            host_munmap(r_base, span)
    if holder is not None:
        expect(took, [0, 0], "host holder thread: LOCK_PI, UNLOCK_PI")
    p.futex.check_invariants()

    rows: list[dict[str, Any]] = []
    for label, kind in PI_CASES:
        e = stats["emu " + kind]
        r = stats.get("real " + kind)
        rows.append(
            {
                "call": label,
                "kind": kind,
                "ops_per_sample": n,
                "emulated": e.as_json(),
                "real": r.as_json() if r else None,
                "ratio": paired_ratio(e, r) if r else None,
                "ratio_of_medians": e.median / r.median if r else None,
                "ratio_of_mins": e.min / r.min if r else None,
            }
        )
    h1, h2 = stats["coop handoff"], stats["coop handoff+repark"]
    coop = [
        {
            "case": "UNLOCK_PI hands off to a parked LOCK_PI waiter",
            "kind": "handoff",
            "ops_per_sample": hn,
            "emulated": h1.as_json(),
        },
        {
            "case": "UNLOCK_PI hand-off + re-park (LOCK_PI -> PendingWait)",
            "kind": "handoff+repark",
            "ops_per_sample": hn,
            "emulated": h2.as_json(),
        },
        {
            "case": "re-park alone (difference of the two medians)",
            "kind": "repark",
            "ops_per_sample": hn,
            "emulated": {"median_ns": round(h2.median - h1.median, 2), "min_ns": None},
        },
    ]
    return rows, coop
