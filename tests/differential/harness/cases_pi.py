"""The explicit PI cases (``pi_argument_sets``): every PI word value (the caller, nobody,
the peer, tids of no task, with FUTEX_WAITERS and FUTEX_OWNER_DIED) in every kind of
writable word, the read-only PI pages' words, timeouts of every kind on a word naming the
peer, unaligned and straddling words, lock / trylock / unlock cycles.
"""

from __future__ import annotations

from futex.linux import abi
from tests.differential.harness.cases_plain import PRIV0, SET_WAITERS_OP
from tests.differential.harness.layout import (
    LAST_SLOT_OFFSET,
    NO_TASK_TIDS,
    PAGE,
    PAGE_INDEX,
    SLOT,
    TASKLESS_TID_MIN,
    TidWord,
)
from tests.differential.harness.steps import At, Call, Current, Step, Store, ts, word
from tests.differential.harness.strategies import (
    CLOCK_RT,
    LOCK_PI,
    LOCK_PI2,
    OWNER_DIED,
    PI_RO_OFFSETS,
    PRIVATE,
    TRYLOCK_PI,
    UNLOCK_PI,
    WAITERS,
)

__all__ = [
    "PEER",
    "PI_CASE_VALUES",
    "PI_CASE_WORDS",
    "PI_TIMEOUT_SLOTS",
    "SELF",
    "pi_argument_sets",
]

P = PAGE_INDEX

SELF, PEER = TidWord("self"), TidWord("peer")
#: PI word values for the explicit cases.
PI_CASE_VALUES: tuple[tuple[str, int | TidWord], ...] = (
    ("zero", 0),
    ("waiters", WAITERS),
    ("owner-died", OWNER_DIED),
    ("waiters-owner-died", WAITERS | OWNER_DIED),
    ("self", SELF),
    ("self-waiters", TidWord("self", WAITERS)),
    ("self-owner-died", TidWord("self", OWNER_DIED)),
    ("self-all", TidWord("self", WAITERS | OWNER_DIED)),
    ("no-task", NO_TASK_TIDS[0]),
    ("no-task-waiters", NO_TASK_TIDS[0] | WAITERS),
    ("no-task-max-all", abi.FUTEX_TID_MASK | WAITERS | OWNER_DIED),
    ("no-task-min-owner-died", TASKLESS_TID_MIN | OWNER_DIED),
    ("peer", PEER),
    ("peer-waiters", TidWord("peer", WAITERS)),
    ("peer-all", TidWord("peer", WAITERS | OWNER_DIED)),
)
#: Writable words for the explicit PI cases (private and shared keys alike).
PI_CASE_WORDS = (
    ("priv-anon", word("PRIV_RW", 0x20)),
    ("shared-anon", word("SHARED_RW", 0x20)),
    ("file-shared", word("FILE_SHARED_RW", 0x24)),
    ("file-priv-cow", word("FILE_PRIV_RW", 0x28)),
    ("past-eof-in-page", word("EOF_SHARED", 0x900)),
    ("write-only", word("WRITE_ONLY_SHARED", 0x2C)),
)
PI_TIMEOUT_SLOTS = (
    "zero",
    "one_ns",
    "mono_past",
    "mono_future",
    "rt_past",
    "rt_future",
    "rt_year",
    "ktime_sec_max",
    "s64_max_sec",
    "neg_sec",
    "neg_nsec",
    "nsec_1e9",
    "nsec_hi_bits",
    "min_sec",
)


def pi_argument_sets(op: int) -> list[tuple[str, list[Step]]]:
    """Cases for PI command ``op``; each is compared in full (none may be skipped)."""
    cmd = op & abi.FUTEX_CMD_MASK
    flags = op & (PRIVATE | CLOCK_RT)
    lock = cmd in (LOCK_PI, LOCK_PI2)

    def call(uaddr: At | int, utime: At | int = 0, op_: int = op, interrupt: bool = False) -> Call:
        return Call(uaddr, op_, 0, utime, 0, 0, interrupt)

    out: list[tuple[str, list[Step]]] = []
    for wname, w in PI_CASE_WORDS:
        for vname, v in PI_CASE_VALUES:
            # a lock of the peer's word blocks: with an expired timeout it times out
            expire = lock and isinstance(v, TidWord) and v.who == "peer"
            utime = ts("zero") if expire or (lock and w.page >= P["FILE_SHARED_RW"]) else 0
            out.append((f"{wname}-{vname}", [Store(w, v), call(w, utime)]))
    for page in ("PI_PRIV_RO", "PI_SHARED_RO"):
        for off in PI_RO_OFFSETS:
            out.append((f"{page.lower()}+{off:#x}", [call(At(P[page], off))]))
    # timeouts (read before anything else), the word naming the peer
    pw = word("PRIV_RW", 0x30)
    for slot in PI_TIMEOUT_SLOTS:
        out.append((f"peer-timeout-{slot}", [Store(pw, PEER), call(pw, ts(slot))]))
    for label, utime in (
        ("hole", word("HOLE")),
        ("straddle-fault", At(P["PRIV_RO"], PAGE - 8)),
        ("straddle", At(P["TIMESPEC"], PAGE - 8)),
        ("last-slot", At(P["TIMESPEC"], LAST_SLOT_OFFSET)),
        ("null", 0x10),
        ("kernel", 0xFFFF800000000000),
    ):
        out.append((f"peer-timeout-{label}", [Store(pw, PEER), call(pw, utime)]))
    out.append(
        (
            "peer-timeout-rt-future-killed",
            [Store(pw, PEER), call(pw, ts("rt_future"), interrupt=True)],
        )
    )
    out.append(("no-task-timeout-fault", [Store(pw, NO_TASK_TIDS[0]), call(pw, word("HOLE"))]))
    # the word inside the call's own timespec: setting FUTEX_WAITERS changes the timeout,
    # which a restarted lock (after a signal) reads again
    for label, woff in (("sec-high", 4), ("sec-low", 0)):
        tw = word("TIMESPEC", 16 * SLOT["zero"] + woff)
        out.append((f"peer-word-in-timespec-{label}", [Store(tw, PEER), call(tw, ts("zero"))]))
    # unaligned words: UNLOCK_PI reads them (EPERM unless the caller's), then the key
    m = word("PRIV_RW", 0x42)
    for vname, v in (("self", SELF), ("self-waiters", TidWord("self", WAITERS))):
        out.append((f"misaligned-{vname}", [Store(m, v), call(m)]))
    out.append(("misaligned-no-task", [Store(m, NO_TASK_TIDS[0]), call(m)]))
    out.append(("misaligned-peer", [Store(m, PEER), call(m, ts("zero"))]))
    straddle = word("PRIV_RW", PAGE - 2)  # into TIMESPEC
    out.append(("straddle-self", [Store(straddle, SELF), call(straddle)]))
    wo = word("WRITE_ONLY_PRIV", PAGE - 1)  # into WRITE_ONLY_SHARED
    out.append(("straddle-write-only-self", [Store(wo, SELF), call(wo)]))
    out.append(("straddle-into-prot-none", [call(At(P["PRIV_RO"], PAGE - 2))]))
    out.append(("misaligned-ro", [call(At(P["PRIV_RO"], 1))]))
    # sequences: lock, relock, trylock, unlock (with the same flags, and the other key)
    cw = word("SHARED_RW", 0x34)

    def pi(c: int, f: int = flags) -> Call:
        return call(cw, ts("zero") if c in (LOCK_PI, LOCK_PI2) else 0, c | f)

    other = flags ^ PRIVATE
    out.append(
        (
            "cycle",
            [
                Store(cw, 0),
                call(cw, 0),
                pi(LOCK_PI),
                pi(LOCK_PI2),
                pi(TRYLOCK_PI),
                pi(UNLOCK_PI),
                pi(UNLOCK_PI),
                pi(TRYLOCK_PI),
                pi(UNLOCK_PI),
                call(cw, 0),
            ],
        )
    )
    out.append(
        (
            "cycle-other-key",
            [Store(cw, OWNER_DIED), call(cw, 0), pi(UNLOCK_PI, other), pi(LOCK_PI2, other)],
        )
    )
    out.append(
        (
            "locked-then-other-commands",
            [
                Store(cw, WAITERS),
                call(cw, 0),
                Call(cw, abi.FUTEX_WAKE | flags, 1, 0, 0, 0),
                Call(cw, abi.FUTEX_WAIT | flags, Current(cw), ts("one_ns"), 0, 0),
                Call(cw, abi.FUTEX_CMP_REQUEUE | flags, 1, 1, PRIV0, Current(cw)),
                Call(cw, abi.FUTEX_WAKE_OP | flags, 1, 1, cw, SET_WAITERS_OP),
                call(cw, 0),
            ],
        )
    )
    out.append(
        (
            "trylock-peer-then-unlock",
            [Store(cw, PEER), pi(TRYLOCK_PI), pi(UNLOCK_PI), call(cw, ts("zero"))],
        )
    )
    return out
