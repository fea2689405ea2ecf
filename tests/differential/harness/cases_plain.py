"""The explicit single-task cases every command is compared with (``argument_sets``): a
handful of single calls and a few two-step sequences, valid and invalid arguments alike
(timeouts of every kind, addresses in every page, bad bitsets and ops).  PI and requeue-PI
commands have cases of their own (``cases_pi``, ``cases_requeue_pi``); ``cases`` walks
them all.
"""

from __future__ import annotations

from futex.linux import abi
from tests.differential.harness.layout import PAGE, PAGE_INDEX, PALETTE, U32, U64
from tests.differential.harness.steps import At, Call, Step, Store, ts, word
from tests.differential.harness.strategies import USER_MAX

__all__ = [
    "GOOD_OP",
    "PRIV0",
    "SET_WAITERS_OP",
    "SHARED1",
    "argument_sets",
]

P = PAGE_INDEX

#: PRIV_RW's first words hold PALETTE[0], PALETTE[1], ...
PRIV0 = word("PRIV_RW", 0)  # holds 0
SHARED1 = word("SHARED_RW", 4)  # holds PALETTE[3] = 0xffffffff
GOOD_OP = abi.FUTEX_OP(abi.FUTEX_OP_ADD, 1, abi.FUTEX_OP_CMP_EQ, 0)
#: FUTEX_WAKE_OP: word |= 1 << 31 (FUTEX_WAITERS)
SET_WAITERS_OP = abi.FUTEX_OP(
    abi.FUTEX_OP_OR | abi.FUTEX_OP_OPARG_SHIFT, 31, abi.FUTEX_OP_CMP_EQ, 0
)


def argument_sets(op: int) -> list[tuple[str, list[Step]]]:
    """A handful of single calls (and a few two-step sequences) for command ``op``."""

    def call(
        uaddr: At | int = PRIV0,
        val: int = 0,
        utime: At | int = 0,
        uaddr2: At | int = SHARED1,
        val3: int = abi.FUTEX_BITSET_MATCH_ANY,
        op_: int = op,
    ) -> list[Step]:
        return [Call(uaddr, op_, val, utime, uaddr2, val3)]

    m = abi.FUTEX_BITSET_MATCH_ANY
    return [
        ("match-no-timeout", call()),
        ("mismatch", call(val=1)),
        ("val-upper-garbage", call(val=0xABCD00000000)),
        ("timeout-zero", call(utime=ts("zero"))),
        ("timeout-1s", call(utime=ts("one_sec"), val3=GOOD_OP)),
        ("timeout-mono-future", call(utime=ts("mono_future"))),
        ("timeout-rt-past", call(utime=ts("rt_past"))),
        ("timeout-rt-future", call(utime=ts("rt_future"))),
        ("timeout-mono-past", call(utime=ts("mono_past"))),
        ("timeout-huge", call(utime=ts("s64_max_sec"))),
        ("timeout-bad-nsec", call(utime=ts("nsec_1e9"))),
        ("timeout-neg-sec", call(utime=ts("neg_sec"), val=1)),
        ("timeout-fault", call(utime=word("HOLE"))),
        ("timeout-exec-only", call(utime=word("EXEC_SHARED"))),
        ("timeout-write-only", call(utime=word("WRITE_ONLY_PRIV", 16))),
        ("timeout-straddle-fault", call(utime=At(P["PRIV_RO"], PAGE - 8), uaddr=word("HOLE"))),
        ("utime-as-count-neg", call(utime=U32, val3=GOOD_OP)),
        ("utime-as-count-upper", call(utime=0x500000001, val3=0)),
        ("val-neg", call(val=U32, val3=0)),
        ("misaligned", call(uaddr=word("PRIV_RW", 2))),
        ("null", call(uaddr=0)),
        ("user-max", call(uaddr=USER_MAX)),
        ("user-max+4", call(uaddr=USER_MAX + 4)),
        ("kernel", call(uaddr=0xFFFFFFFFFF600000)),
        ("2**64-4", call(uaddr=U64 - 3, val=0)),
        ("prot-none", call(uaddr=word("PROT_NONE"))),
        ("hole", call(uaddr=word("HOLE"))),
        ("priv-ro-match", call(uaddr=word("PRIV_RO"), val=PALETTE[1])),
        ("shared-ro-match", call(uaddr=word("SHARED_RO"), val=PALETTE[3])),
        ("file-priv-ro-match", call(uaddr=word("FILE_PRIV_RO"), val=PALETTE[5])),
        ("cowed-ro", call(uaddr=word("FILE_PRIV_COWED_RO"), val=PALETTE[7])),
        ("past-eof", call(uaddr=word("EOF_SHARED_PAST"))),
        ("past-eof-private", call(uaddr=word("EOF_PRIV_PAST"))),
        ("priv-ro-zero", call(uaddr=word("PRIV_RO_ZERO"))),
        ("shared-ro-zero", call(uaddr=word("SHARED_RO_ZERO"))),
        ("exec-only-private-anon", call(uaddr=word("EXEC_PRIV"))),
        ("exec-only-shared-anon", call(uaddr=word("EXEC_SHARED"), val=PALETTE[9])),
        ("exec-only-file-shared", call(uaddr=word("EXEC_FILE_SHARED"), val=PALETTE[4])),
        ("exec-only-file-private", call(uaddr=word("EXEC_FILE_PRIV"), val=PALETTE[5])),
        ("write-only-private", call(uaddr=word("WRITE_ONLY_PRIV"), val=PALETTE[2])),
        ("write-only-shared", call(uaddr=word("WRITE_ONLY_SHARED"), val=PALETTE[3])),
        ("bitset-zero", call(val3=0)),
        ("bitset-zero-fault", call(val3=0, uaddr=word("HOLE"), utime=ts("neg_nsec"))),
        ("uaddr2-misaligned", call(uaddr2=word("SHARED_RW", 1), val3=GOOD_OP)),
        ("uaddr2-ro", call(uaddr2=word("FILE_SHARED_RO"), val3=GOOD_OP)),
        ("uaddr2-hole", call(uaddr2=word("HOLE"), val3=GOOD_OP)),
        ("uaddr2-null-unknown-op", call(uaddr2=0, val3=abi.FUTEX_OP(6, 1, 0, 0))),
        ("wake-op-unknown-cmp", call(val3=abi.FUTEX_OP(abi.FUTEX_OP_OR, 4, 9, 0))),
        ("wake-op-shift-40", call(val3=abi.FUTEX_OP(8 | abi.FUTEX_OP_ADD, 40, 2, -1))),
        ("wake-op-neg-args", call(val3=abi.FUTEX_OP(abi.FUTEX_OP_XOR, -5, 5, -2048))),
        ("cmp-requeue-match", call(val3=0, utime=1, val=1)),
        ("op-upper-half", call(op_=op | 0xDEAD << 32)),
        (
            "store-then-match",
            [Store(word("SHARED_RW", 8), 7), *call(uaddr=word("SHARED_RW", 8), val=7, val3=7)],
        ),
        (
            "alias-then-store",
            [
                *call(uaddr=word("FILE_PRIV_ALIAS_RW", 8), val3=m),
                Store(word("FILE_SHARED_RW", 8), 5),
            ],
        ),
    ]
