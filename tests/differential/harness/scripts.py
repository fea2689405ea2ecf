"""Seeded random multi-task scripts (:class:`RandomScript`): each step chosen by what is
blocked now (a ``tasks.View``), over a few words and one PI word, then an ending that
wakes and unlocks until no call is blocked; run by ``tasks.TaskDiffer``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from futex.linux import abi
from tests.differential.harness.steps import (
    SYS_FUTEX,
    SYS_REQUEUE,
    SYS_WAIT,
    SYS_WAITV,
    SYS_WAKE,
    At,
    Current,
)
from tests.differential.harness.tasks import (
    MAIN,
    TID_MASK,
    Arg,
    Ptr,
    Set,
    Signal,
    Step,
    TaskCall,
    Tid,
    View,
)

__all__ = [
    "SCRIPT_PI",
    "SCRIPT_PRIORITIES",
    "RandomScript",
]

#: Workers' classes for the scripts run with several priorities (where SCHED_FIFO is
#: allowed): SCHED_FIFO 10, SCHED_OTHER, SCHED_FIFO 20, SCHED_FIFO 10.
FIFO = abi.SCHED_FIFO
SCRIPT_PRIORITIES: list[Any] = [(FIFO, 10), None, (FIFO, 20), (FIFO, 10)]


@dataclass(frozen=True)
class RandomScript:
    """A seeded random multi-task script: ``steps`` choices among waits (FUTEX_WAIT,
    WAIT_BITSET, futex_wait, futex_waitv, LOCK_PI, WAIT_REQUEUE_PI) by idle workers and
    wakes, requeues, wake_ops, PI unlocks and trylocks, stores, by the main thread or an
    idle worker, and signals to blocked workers, over a few words (a shared anonymous
    page, a private one, a shared file page and its read-only alias; PRIVATE or not) and
    one PI word (its flag fixed per script); then an ending that wakes and unlocks until
    no call is blocked."""

    seed: int
    workers: int = 4
    steps: int = 24

    @property
    def pi_flag(self) -> int:
        return abi.FUTEX_PRIVATE_FLAG if self.seed & 1 else 0

    def __call__(self, view: View) -> Iterator[Step]:
        return _random_script(random.Random(self.seed), self, view)


#: The random scripts' plain words (the last one: the file page again, read-only alias).
SCRIPT_WORDS = (
    At(5, 0x300),  # SHARED_RW
    At(5, 0x304),
    At(0, 0x300),  # PRIV_RW
    At(7, 0x300),  # FILE_SHARED_RW
)
SCRIPT_ALIAS = {At(7, 0x300): At(8, 0x300)}  # FILE_SHARED_RO
SCRIPT_PI = At(5, 0x380)


#: Main's futex_requeue vector (PRIV_RW); worker k's futex_waitv vector is ``_vector(k)``.
MAIN_VECTOR = At(0, 0x3C0)


def _vector(k: int) -> At:
    return At(0, 0x400 + 0x40 * k)


_F = abi.FUTEX_PRIVATE_FLAG
_ANY = abi.FUTEX_BITSET_MATCH_ANY
_INT_MAX = 0x7FFFFFFF


def _random_script(rng: random.Random, spec: RandomScript, view: View) -> Iterator[Step]:
    pif = spec.pi_flag
    words = SCRIPT_WORDS

    def fx(
        who: int, uaddr: At, op: int, val: Arg = 0, t: Arg = 0, u2: Arg = 0, v3: Arg = 0
    ) -> TaskCall:
        return TaskCall(who, SYS_FUTEX, (uaddr, op, val, t, u2, v3))

    def flag() -> int:
        return _F if rng.random() < 0.5 else 0

    def f2(f: int) -> int:
        return abi.FUTEX2_SIZE_U32 | (abi.FUTEX2_PRIVATE if f else 0)

    def some_word(waker: bool = False) -> At:
        w = rng.choice(words)
        return SCRIPT_ALIAS.get(w, w) if waker and w in SCRIPT_ALIAS and rng.random() < 0.5 else w

    def vector(vec: At, entries: list[tuple[At, int]]) -> Iterator[Step]:
        """``struct futex_waitv`` entries {val = the word now, uaddr, flags} at ``vec``."""
        for i, (a, fl) in enumerate(entries):
            base = At(vec.page, vec.off + 24 * i)
            yield Set(base, view.word(a))
            yield Set(At(base.page, base.off + 4), 0)
            yield Set(At(base.page, base.off + 8), Ptr(a))
            yield Set(At(base.page, base.off + 12), Ptr(a, True))
            yield Set(At(base.page, base.off + 16), fl)
            yield Set(At(base.page, base.off + 20), 0)

    def owner() -> int | None:
        tid = view.word(SCRIPT_PI) & TID_MASK
        if tid == view.tid(MAIN):
            return MAIN
        for k in range(spec.workers):
            if tid == view.tid(k):
                return k
        return None

    def wait(k: int) -> Iterator[Step]:
        a, f = some_word(), flag()
        kind = rng.choice("wwwbbfvlllqqs")
        if kind == "w":
            yield fx(k, a, abi.FUTEX_WAIT | f, Current(a))
        elif kind == "s":  # a stale value: EAGAIN
            yield fx(k, a, abi.FUTEX_WAIT | f, Current(a, 1))
        elif kind == "b":
            yield fx(k, a, abi.FUTEX_WAIT_BITSET | f, Current(a), 0, 0, rng.choice([1, 2, 3, _ANY]))
        elif kind == "f":
            yield TaskCall(k, SYS_WAIT, (a, Current(a), rng.choice([1, 2, _ANY]), f2(f), 0, 0))
        elif kind == "v":
            b, g = some_word(), flag()
            yield from vector(_vector(k), [(a, f2(f)), (b, f2(g))])
            yield TaskCall(k, SYS_WAITV, (_vector(k), 2, 0, 0, 0))
        elif kind == "l":
            yield fx(k, SCRIPT_PI, rng.choice([abi.FUTEX_LOCK_PI, abi.FUTEX_LOCK_PI2]) | pif)
        elif owner() != k:  # a requeue-PI waiter never owns the target (it could not end)
            yield fx(k, a, abi.FUTEX_WAIT_REQUEUE_PI | pif, Current(a), 0, SCRIPT_PI)

    def act(who: int) -> Iterator[Step]:
        a, b, f = some_word(True), some_word(True), flag()
        n = rng.choice([1, 1, 1, 2, _INT_MAX, 0])
        kind = rng.choice("wwwbrrccoopqQuuttsS")
        if kind == "w":
            yield fx(who, a, abi.FUTEX_WAKE | f, n)
        elif kind == "b":
            yield fx(who, a, abi.FUTEX_WAKE_BITSET | f, n, 0, 0, rng.choice([1, 2, 4, _ANY]))
        elif kind == "r":
            yield fx(
                who, a, abi.FUTEX_REQUEUE | f, rng.choice([0, 1]), rng.choice([1, 2, _INT_MAX]), b
            )
        elif kind == "c":
            v3 = Current(a) if rng.random() < 0.8 else Current(a, 1)
            yield fx(
                who,
                a,
                abi.FUTEX_CMP_REQUEUE | f,
                rng.choice([0, 1]),
                rng.choice([1, _INT_MAX]),
                b,
                v3,
            )
        elif kind == "o":
            op = abi.FUTEX_OP(
                rng.choice([abi.FUTEX_OP_SET, abi.FUTEX_OP_ADD, abi.FUTEX_OP_XOR]),
                rng.choice([0, 1, 2]),
                rng.choice([abi.FUTEX_OP_CMP_EQ, abi.FUTEX_OP_CMP_NE, abi.FUTEX_OP_CMP_GT]),
                rng.choice([0, 1]),
            )
            yield fx(who, a, abi.FUTEX_WAKE_OP | f, n, rng.choice([0, 1, 2]), b, op)
        elif kind == "p":
            yield TaskCall(who, SYS_WAKE, (a, rng.choice([1, 2, _ANY]), n, f2(f)))
        elif kind == "q":
            yield from vector(MAIN_VECTOR, [(a, f2(f)), (b, f2(f))])
            yield TaskCall(who, SYS_REQUEUE, (MAIN_VECTOR, 0, rng.choice([0, 1]), 1))
        elif kind == "Q":
            v3 = Current(a) if rng.random() < 0.9 else Current(a, 1)
            yield fx(
                who,
                a,
                abi.FUTEX_CMP_REQUEUE_PI | pif,
                1,
                rng.choice([0, 1, _INT_MAX]),
                SCRIPT_PI,
                v3,
            )
        elif kind == "u":
            holder = owner()
            if holder is not None and holder not in view.blocked():
                yield fx(holder, SCRIPT_PI, abi.FUTEX_UNLOCK_PI | pif)
            else:
                yield fx(who, SCRIPT_PI, abi.FUTEX_UNLOCK_PI | pif)
        elif kind == "t":
            yield fx(who, SCRIPT_PI, abi.FUTEX_TRYLOCK_PI | pif)
        elif kind == "S" and view.blocked():
            yield Signal(rng.choice(sorted(view.blocked())))
        else:
            yield Set(rng.choice(words), rng.choice([0, 1, 2]))

    yield Set(SCRIPT_PI, Tid(MAIN) if rng.random() < 0.5 else 0)
    for w in words:
        yield Set(w, 0)
    for _ in range(spec.steps):
        idle = [k for k in range(spec.workers) if k not in view.blocked()]
        if idle and rng.random() < 0.5:
            yield from wait(rng.choice(idle))
        else:
            yield from act(rng.choice([MAIN, MAIN, *idle]))
    # the ending: wake every word (both key kinds), move requeue-PI waiters onto the PI
    # word, hand the PI word on, until nobody waits
    for _ in range(4 * spec.workers + 4):
        if not view.blocked():
            return
        for w in (*words, *SCRIPT_ALIAS.values()):  # (a PRIVATE requeue to the alias
            for f in (0, _F):  # makes a key of its own)
                yield fx(MAIN, w, abi.FUTEX_WAKE | f, _INT_MAX)
            yield fx(MAIN, w, abi.FUTEX_CMP_REQUEUE_PI | pif, 1, _INT_MAX, SCRIPT_PI, Current(w))
        holder = owner()
        if holder is not None and holder not in view.blocked():
            yield fx(holder, SCRIPT_PI, abi.FUTEX_UNLOCK_PI | pif)
