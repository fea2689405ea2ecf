"""The explicit requeue-PI cases (``requeue_pi_argument_sets``): WAIT_REQUEUE_PI and
CMP_REQUEUE_PI from condition words to PI targets (free, the caller's, the peer's, no
task's, read-only, unmapped, the same word or the same key through another address),
valid and invalid counts, values and timeouts; WAIT_REQUEUE_PI waits ended by the peer's
CMP_REQUEUE_PI (taking the target for the waiter, or requeueing it onto the peer's lock),
UNLOCK_PI and signals.
"""

from __future__ import annotations

from futex.linux import abi
from tests.differential.harness.cases_pi import PEER, PI_CASE_VALUES, PI_TIMEOUT_SLOTS
from tests.differential.harness.layout import PAGE, PAGE_INDEX, SLOT, U32, TidWord
from tests.differential.harness.steps import (
    PEER_SIGNAL,
    SYS_FUTEX,
    SYS_WAKE,
    At,
    Call,
    Current,
    PeerCall,
    Step,
    Store,
    ts,
    word,
)
from tests.differential.harness.strategies import (
    ANY,
    CLOCK_RT,
    CMP_REQUEUE_PI,
    F2_PRIVATE,
    F2_U32,
    INT_MAX,
    OWNER_DIED,
    PRIVATE,
    UNLOCK_PI,
    USER_MAX,
    WAIT_REQUEUE_PI,
    WAITERS,
    WAKE,
    WAKE_BITSET,
)

__all__ = [
    "requeue_pi_argument_sets",
]

P = PAGE_INDEX


def requeue_pi_argument_sets(op: int) -> list[tuple[str, list[Step]]]:
    """Cases for requeue-PI command ``op`` (WAIT_REQUEUE_PI or CMP_REQUEUE_PI); each is
    compared in full (none may be skipped, nor the peer's calls refused)."""
    cmd = op & abi.FUTEX_CMD_MASK
    f = op & PRIVATE
    cond = word("PRIV_RW", 0x40)
    tgt = word("SHARED_RW", 0x80)
    ptgt = word("PRIV_RW", 0x88)
    ro_alias, rw_alias = word("FILE_SHARED_RO", 0x10), word("FILE_SHARED_RW", 0x10)
    wait = cmd == WAIT_REQUEUE_PI

    def call(
        uaddr: At | int = cond,
        uaddr2: At | int = tgt,
        val: int | Current | None = None,
        utime: At | int = 0,
        val3: int | Current | None = None,
        peer: tuple[PeerCall, ...] = (),
        interrupt: bool = False,
    ) -> Call:
        """WAIT_REQUEUE_PI: ``val`` the word's value by default, ``utime`` a timeout;
        CMP_REQUEUE_PI: ``val`` nr_wake (1), ``utime`` nr_requeue (0), ``val3`` the
        compare value (the word's)."""
        if wait:
            v: int | Current = Current(uaddr) if val is None else val
            return Call(
                uaddr, op, v, utime, uaddr2, 0xDEAD if val3 is None else val3, interrupt, peer
            )
        c3 = Current(uaddr) if val3 is None else val3
        return Call(uaddr, op, 1 if val is None else val, utime, uaddr2, c3)

    out: list[tuple[str, list[Step]]] = [
        ("free-target", [Store(tgt, 0), call()]),
        ("private-page-target", [Store(ptgt, 0), call(uaddr2=ptgt)]),
        ("shared-cond", [call(uaddr=word("SHARED_RW", 0x44))]),
        ("file-cond", [call(uaddr=word("FILE_SHARED_RW", 0x48))]),
        ("same-address", [call(uaddr2=cond)]),
        ("same-key-two-addresses", [call(uaddr=ro_alias, uaddr2=rw_alias)]),
        ("same-key-two-addresses-ro-target", [call(uaddr=rw_alias, uaddr2=ro_alias)]),
        ("same-key-exec-alias", [call(uaddr=word("EXEC_FILE_SHARED", 0x10), uaddr2=rw_alias)]),
        ("private-file-copy", [call(uaddr=word("FILE_PRIV_ALIAS_RO", 0x10), uaddr2=rw_alias)]),
        ("misaligned", [call(uaddr=word("PRIV_RW", 0x42))]),
        ("misaligned-target", [call(uaddr2=word("SHARED_RW", 0x82))]),
        ("misaligned-both-same", [call(uaddr=word("PRIV_RW", 0x42), uaddr2=word("PRIV_RW", 0x42))]),
        ("null", [call(uaddr=0)]),
        ("hole", [call(uaddr=word("HOLE"))]),
        ("prot-none", [call(uaddr=word("PROT_NONE"))]),
        ("kernel", [call(uaddr=0xFFFF800000000000)]),
        ("user-max", [call(uaddr=USER_MAX)]),
        ("cond-ro-anon", [call(uaddr=word("PRIV_RO", 8))]),
        ("cond-ro-file", [call(uaddr=word("FILE_SHARED_RO", 0x20))]),
        ("cond-exec", [call(uaddr=word("EXEC_SHARED", 8))]),
        ("cond-write-only", [call(uaddr=word("WRITE_ONLY_PRIV", 8))]),
        ("target-null", [call(uaddr2=0)]),
        ("target-hole", [call(uaddr2=word("HOLE"))]),
        ("target-prot-none", [call(uaddr2=word("PROT_NONE"))]),
        ("target-kernel", [call(uaddr2=0xFFFFFFFFFF600000)]),
        ("target-ro-anon", [call(uaddr2=word("PRIV_RO", 8))]),
        ("target-ro-shared-anon", [call(uaddr2=word("SHARED_RO", 8))]),
        ("target-ro-file", [call(uaddr2=word("FILE_SHARED_RO", 0x20))]),
        ("target-ro-zero", [call(uaddr2=word("PRIV_RO_ZERO", 8))]),
        ("target-ro-pi-self", [call(uaddr2=At(P["PI_PRIV_RO"], 4))]),
        ("target-past-eof", [call(uaddr2=word("EOF_SHARED_PAST"))]),
        (
            "target-past-eof-in-page",
            [Store(word("EOF_SHARED", 0x900), 0), call(uaddr2=word("EOF_SHARED", 0x900))],
        ),
        ("target-exec", [call(uaddr2=word("EXEC_SHARED", 8))]),
        (
            "target-write-only",
            [Store(word("WRITE_ONLY_SHARED", 8), 0), call(uaddr2=word("WRITE_ONLY_SHARED", 8))],
        ),
        ("target-cow", [call(uaddr2=word("FILE_PRIV_RW", 8))]),
        ("op-upper-half", [Call(cond, op | 0xBEEF << 32, 1, 0, tgt, Current(cond))]),
    ]
    for vname, v in PI_CASE_VALUES:
        out.append((f"target-{vname}", [Store(tgt, v), call()]))
    if wait:
        far = ts("rt_future") if op & CLOCK_RT else ts("mono_future")
        out += [
            ("mismatch", [call(val=Current(cond, 1))]),
            ("val-upper-garbage", [call(val=Current(cond, 0xABCD << 32))]),
            (
                "mismatch-same-key-two-addresses",
                [call(uaddr=ro_alias, uaddr2=rw_alias, val=Current(ro_alias, 1))],
            ),
            ("mismatch-target-hole", [call(uaddr2=word("HOLE"), val=Current(cond, 1))]),
            ("mismatch-target-ro", [call(uaddr2=word("PRIV_RO", 8), val=Current(cond, 1))]),
            ("mismatch-same-address", [call(uaddr2=cond, val=Current(cond, 1))]),
            ("timeout-hole", [call(utime=word("HOLE"))]),
            ("timeout-hole-same-address", [call(uaddr2=cond, utime=word("HOLE"))]),
            ("timeout-bad-same-address", [call(uaddr2=cond, utime=ts("neg_nsec"))]),
            ("timeout-straddle-fault", [call(utime=At(P["PRIV_RO"], PAGE - 8))]),
            ("timeout-straddle", [call(utime=At(P["TIMESPEC"], PAGE - 8))]),
            ("timeout-null-ish", [call(utime=0x10)]),
            ("timeout-bad-target-hole", [call(uaddr2=word("HOLE"), utime=ts("nsec_1e9"))]),
            ("interrupted", [call(utime=far, interrupt=True)]),
            (
                "word-in-timespec",
                [call(uaddr=word("TIMESPEC", 16 * SLOT["one_sec"]), utime=ts("one_sec"))],
            ),
        ]
        for slot in (*PI_TIMEOUT_SLOTS, "one_sec", "max_nsec", "mono_year"):
            out.append((f"timeout-{slot}", [call(utime=ts(slot))]))

        def take(nr_requeue: int = 0, to: At = tgt) -> PeerCall:
            return PeerCall(SYS_FUTEX, (cond, CMP_REQUEUE_PI | f, 1, nr_requeue, to, Current(cond)))

        unlock = PeerCall(SYS_FUTEX, (tgt, UNLOCK_PI | f, 0, 0, 0, 0))
        signal = PeerCall(PEER_SIGNAL, ())
        f2 = F2_U32 | (F2_PRIVATE if f else 0)
        plain = (
            PeerCall(SYS_FUTEX, (cond, WAKE | f, 1, 0, 0, 0)),
            PeerCall(SYS_FUTEX, (cond, abi.FUTEX_CMP_REQUEUE | f, 1, 1, ptgt, Current(cond))),
            PeerCall(SYS_FUTEX, (cond, abi.FUTEX_REQUEUE | f, 0, 1, ptgt, 0)),
            PeerCall(SYS_FUTEX, (cond, WAKE_BITSET | f, 1, 0, 0, ANY)),
            PeerCall(SYS_WAKE, (cond, ANY, 1, f2)),
        )
        wrong = (
            PeerCall(SYS_FUTEX, (cond, CMP_REQUEUE_PI | f, 1, 0, tgt, Current(cond, 1))),
            PeerCall(SYS_FUTEX, (cond, CMP_REQUEUE_PI | f, 2, 0, tgt, Current(cond))),
            PeerCall(SYS_FUTEX, (cond, CMP_REQUEUE_PI | f, 0, 1, tgt, Current(cond))),
            PeerCall(SYS_FUTEX, (cond, CMP_REQUEUE_PI | f, 1, 0, ptgt, Current(cond))),
            PeerCall(SYS_FUTEX, (cond, CMP_REQUEUE_PI | f ^ PRIVATE, 1, 0, tgt, Current(cond))),
            PeerCall(SYS_FUTEX, (cond, CMP_REQUEUE_PI | f, 1, U32, tgt, Current(cond))),
        )
        peer_cases: list[tuple[str, int | TidWord, tuple[PeerCall, ...]]] = [
            ("free", 0, (take(),)),
            ("free-more", 0, (take(1),)),
            ("free-max", 0, (take(INT_MAX),)),
            ("free-waiters-bit", WAITERS, (take(),)),
            ("free-owner-died", OWNER_DIED, (take(1),)),
            ("free-then-unlock-by-peer", 0, (take(), unlock)),
            ("peer", PEER, (take(),)),
            ("peer-more", PEER, (take(1),)),
            ("peer-unlocks", PEER, (take(), unlock)),
            ("peer-waiters-unlocks", TidWord("peer", WAITERS), (take(1), unlock)),
            ("peer-owner-died-unlocks", TidWord("peer", OWNER_DIED), (take(), unlock)),
            ("plain-ops-first", 0, (*plain, take())),
            ("wrong-ones-first", 0, (*wrong, take())),
            ("wrong-ones-first-peer", PEER, (*wrong[:3], take(), unlock)),
            ("signal-restarts", 0, (signal, take())),
            ("signal-restarts-twice", PEER, (signal, signal, take(), unlock)),
            ("requeued-then-signal", PEER, (take(), signal)),
        ]
        for label, v, peer in peer_cases:
            out.append((f"peer-{label}", [Store(tgt, v), Store(ptgt, 0), call(peer=peer)]))
            if label in ("free", "peer-unlocks"):
                out.append((f"peer-{label}-timed", [Store(tgt, v), call(utime=far, peer=peer)]))
        out.append(
            (
                "peer-free-then-owner-unlocks",
                [
                    Store(tgt, 0),
                    call(peer=(take(),)),
                    Call(tgt, UNLOCK_PI | f, 0, 0, 0, 0),
                    Call(tgt, UNLOCK_PI | f, 0, 0, 0, 0),
                ],
            )
        )
        out.append(
            (
                "peer-private-page-target",
                [Store(ptgt, 0), call(uaddr2=ptgt, peer=(take(to=ptgt),))],
            )
        )
    else:
        out += [
            ("nr-wake-0", [call(val=0)]),
            ("nr-wake-2", [call(val=2)]),
            ("nr-wake-neg", [call(val=U32)]),
            ("nr-wake-upper-garbage", [call(val=0x100000001)]),
            ("nr-requeue-neg", [call(utime=U32)]),
            ("nr-requeue-max", [call(utime=INT_MAX)]),
            ("nr-requeue-upper-garbage", [call(utime=0x500000001)]),
            ("cmpval-mismatch", [call(val3=Current(cond, 1))]),
            ("cmpval-upper-garbage", [call(val3=Current(cond, 0xABCD << 32))]),
            ("neg-and-same-address", [call(utime=U32, uaddr2=cond)]),
            ("nr-wake-2-and-hole", [call(val=2, uaddr=word("HOLE"), uaddr2=word("HOLE", 8))]),
            ("same-address-hole", [call(uaddr=word("HOLE"), uaddr2=word("HOLE"))]),
            ("mismatch-target-hole", [call(uaddr2=word("HOLE"), val3=Current(cond, 1))]),
            ("mismatch-same-key-two-addresses", [call(uaddr=ro_alias, uaddr2=rw_alias, val3=1)]),
            ("mismatch-target-ro", [call(uaddr2=word("PRIV_RO", 8), val3=Current(cond, 1))]),
            ("target-misaligned-mismatch", [call(uaddr2=word("SHARED_RW", 0x81), val3=1)]),
        ]
    return out
