"""What the single-task sequences draw their registers and words from: layout addresses
(good ones, any, special ones), register values, futex ops, timeout pointers, commands
with their flags, PI word values and the places they are stored; the argument generators
each command's calls are drawn with (``CMD_OPS`` and the rest).

Written once with ``gen``: each is a Hypothesis strategy (``.strategy()``, for the
shrinking runs) and a seeded-``random`` generator (``.example(rng)``, for the bulk runs).
Weights go through ``weighted`` (a repeated branch counts once in Hypothesis's
``one_of``); ``sampled_from`` keeps repeats, so a repeated value weighs more.  The calls
and chunks built from them are ``strategies_calls`` and ``strategies_futex2``; the
sequences, ``sequences``.
"""

from __future__ import annotations

from futex.linux import abi
from tests.differential.harness import gen as g
from tests.differential.harness.layout import (
    LAST_SLOT_OFFSET,
    LAYOUT,
    NO_TASK_TIDS,
    NSLOTS,
    PAGE,
    PAGE_INDEX,
    PALETTE,
    PI_UNALIGNED,
    PI_WORDS,
    TASKLESS_TID_MIN,
    U32,
    U64,
    TidWord,
)
from tests.differential.harness.steps import PI_COMMANDS, At, Current, Store

P = PAGE_INDEX
PRIVATE = abi.FUTEX_PRIVATE_FLAG
CLOCK_RT = abi.FUTEX_CLOCK_REALTIME
WAITERS = abi.FUTEX_WAITERS
OWNER_DIED = abi.FUTEX_OWNER_DIED
LOCK_PI, UNLOCK_PI = abi.FUTEX_LOCK_PI, abi.FUTEX_UNLOCK_PI
TRYLOCK_PI, LOCK_PI2 = abi.FUTEX_TRYLOCK_PI, abi.FUTEX_LOCK_PI2
WAIT_REQUEUE_PI, CMP_REQUEUE_PI = abi.FUTEX_WAIT_REQUEUE_PI, abi.FUTEX_CMP_REQUEUE_PI
WAKE, WAKE_BITSET = abi.FUTEX_WAKE, abi.FUTEX_WAKE_BITSET
ANY = abi.FUTEX_BITSET_MATCH_ANY
INT_MAX = 0x7FFFFFFF
#: futex2 flags
F2_U32 = abi.FUTEX2_SIZE_U32
F2_PRIVATE = abi.FUTEX2_PRIVATE
NUMA = abi.FUTEX2_NUMA
MPOL = abi.FUTEX2_MPOL
FUTEX_NO_NODE = 0xFFFFFFFF

weighted = g.weighted

#: Pages futex words are taken from, weighted by repetition (sampled_from keeps repeats).
WORD_PAGES = (
    ["PRIV_RW"] * 4
    + ["SHARED_RW"] * 3
    + ["FILE_SHARED_RW"] * 2
    + ["FILE_PRIV_RW", "FILE_PRIV_ALIAS_RW", "FILE_PRIV_ALIAS_RO", "EOF_SHARED"] * 2
    + [spec.name for spec in LAYOUT]
)
#: Futex words that usually work: readable pages, mostly writable ones.
GOOD_PAGES = (
    ["PRIV_RW"] * 3
    + ["SHARED_RW"] * 3
    + ["FILE_SHARED_RW", "FILE_PRIV_RW", "FILE_PRIV_ALIAS_RW", "EOF_SHARED"] * 2
    + ["PRIV_RO", "SHARED_RO", "FILE_SHARED_RO", "FILE_PRIV_RO", "FILE_PRIV_ALIAS_RO"]
    + ["FILE_PRIV_COWED_RO", "TIMESPEC", "PRIV_RO_ZERO", "SHARED_RO_ZERO"]
    + ["EXEC_SHARED", "EXEC_FILE_SHARED", "EXEC_FILE_PRIV", "WRITE_ONLY_PRIV"]
    + ["WRITE_ONLY_SHARED"]
)
ALIGNED_OFFSETS = (0, 4, 8, 12, 16, 20, 24, 28, 32, 36, PAGE - 4)
MISALIGNED_OFFSETS = (1, 2, 3, 6, PAGE - 2, PAGE - 1, -2)

offsets = weighted(
    (6, g.sampled_from(ALIGNED_OFFSETS)),
    (2, g.sampled_from(MISALIGNED_OFFSETS)),
    (1, g.integers(0, PAGE // 4 - 1).map(lambda i: 4 * i)),
    (1, g.integers(0, PAGE - 1)),
)
layout_addrs = g.builds(At, g.sampled_from(WORD_PAGES).map(P.__getitem__), offsets)
good_addrs = g.builds(
    At, g.sampled_from(GOOD_PAGES).map(P.__getitem__), g.sampled_from(ALIGNED_OFFSETS)
)

USER_MAX = 0x7FFFFFFFF000  # access_ok's limit for a 4-byte access (x86-64, 4-level)
SPECIAL_ADDRS = (
    0,  # NULL
    4,
    1,
    0x1000,
    0xFFFC,  # below mmap_min_addr: never mapped
    USER_MAX,
    USER_MAX - 4,
    USER_MAX + 4,
    USER_MAX + 1,
    USER_MAX + PAGE - 4,
    USER_MAX - 8,
    0x7FFFFFFFEFFC,
    1 << 47,  # non-canonical
    0x0000800000000004,
    0xFFFF800000000000,  # kernel
    0xFFFFFFFFFF600000,  # vsyscall page
    1 << 63,
    U64 - 3,  # 2**64 - 4
    U64,
)
special_addrs = weighted(
    (4, g.sampled_from(SPECIAL_ADDRS)),
    (1, g.integers(1 << 47, U64)),  # kernel half / non-canonical
    (1, g.integers(0, 0xFFFF)),  # below mmap_min_addr
)
#: Any address: layout words (aligned or not, any page) or special ones.
addrs = weighted((3, layout_addrs), (1, special_addrs))
#: Mostly good words, sometimes anything.
some_addrs = weighted((4, good_addrs), (1, addrs))

BOUNDARY_VALUES = (
    0,
    1,
    0x7FFFFFFF,
    0x80000000,
    0x80000001,
    0xFFFFFFFF,
    0xFFFFFFFE,
    0x100000000,
    0x1FFFFFFFF,
    0xFFFFFFFF00000000,
    U64,
    1 << 63,
)
u32s = weighted(
    (3, g.sampled_from(PALETTE)),
    (1, g.integers(-3, 40).map(lambda v: v & U32)),
    (1, g.sampled_from(BOUNDARY_VALUES).map(lambda v: v & U32)),
    (1, g.integers(0, U32)),
)
#: Register values: u32s, sometimes with garbage in the upper half, or anything.
registers = weighted(
    (4, u32s),
    (1, g.tuples(u32s, g.integers(1, U32)).map(lambda t: t[0] | t[1] << 32)),
    (1, g.sampled_from(BOUNDARY_VALUES)),
    (1, g.integers(-3, 3).map(lambda v: v & U64)),
    (1, g.integers(0, U64)),
)
futex_ops = g.builds(
    lambda kind, shift, oparg, cmp, cmparg: abi.FUTEX_OP(
        kind | (abi.FUTEX_OP_OPARG_SHIFT if shift else 0), oparg, cmp, cmparg
    ),
    weighted((4, g.integers(0, 4)), (1, g.integers(5, 7))),
    g.booleans(),
    weighted(
        (1, g.sampled_from([0, 1, 2, 31, 32, 33, 40, -1, -2, -31, -32, 2047, -2048])),
        (1, g.integers(-2048, 2047)),
    ),
    weighted((4, g.integers(0, 5)), (1, g.integers(6, 15))),
    weighted(
        (1, g.sampled_from([0, 1, 2, 3, 42, -1, -2, 2047, -2048])),
        (1, g.integers(-2048, 2047)),
    ),
)
#: val3: bitsets (including 0), FUTEX_WAKE_OP encodings, compare values, anything.
val3s = weighted(
    (1, g.just(abi.FUTEX_BITSET_MATCH_ANY)),
    (1, g.just(0)),
    (2, futex_ops),
    (2, registers),
)
slot_ptrs = weighted(
    (5, g.integers(0, NSLOTS - 1).map(lambda i: At(P["TIMESPEC"], 16 * i))),
    (
        1,
        g.sampled_from(
            [
                At(P["TIMESPEC"], 8),  # {0, 0}'s nsec and {1, 0}'s sec
                At(P["TIMESPEC"], -8),  # straddles PRIV_RW and TIMESPEC
                At(P["TIMESPEC"], LAST_SLOT_OFFSET),  # {2, 0}
                At(P["TIMESPEC"], PAGE - 8),  # straddles TIMESPEC and PRIV_RO
                At(P["PRIV_RO"], PAGE - 8),  # straddles PRIV_RO and PROT_NONE
                At(P["HOLE"], 0),
                At(P["PROT_NONE"], 0),
            ]
        ),
    ),
)
#: utime: a timespec pointer for WAIT / WAIT_BITSET, a count (val2) for the others.
utimes = weighted((2, g.just(0)), (3, slot_ptrs), (1, addrs), (1, registers))
small_counts = weighted((3, g.integers(0, 3)), (1, g.sampled_from([U32, 0x7FFFFFFF, 0x80000000])))

#: Commands but PI ones, weighted towards the ones with most to check.
OTHER_COMMANDS = (
    [abi.FUTEX_WAIT] * 4
    + [abi.FUTEX_WAIT_BITSET] * 4
    + [abi.FUTEX_WAKE] * 2
    + [abi.FUTEX_WAKE_BITSET] * 2
    + [abi.FUTEX_REQUEUE] * 2
    + [abi.FUTEX_CMP_REQUEUE] * 3
    + [abi.FUTEX_WAKE_OP] * 4
    + [abi.FUTEX_FD, 14, 15]
)
#: PI lock commands.
PI_CMDS = [LOCK_PI] * 3 + [LOCK_PI2] * 3 + [TRYLOCK_PI] * 2 + [UNLOCK_PI] * 3
#: Requeue-PI commands.
REQUEUE_PI_CMDS = [WAIT_REQUEUE_PI] * 3 + [CMP_REQUEUE_PI] * 2
#: Every command.
COMMANDS = OTHER_COMMANDS + [LOCK_PI, UNLOCK_PI, TRYLOCK_PI, LOCK_PI2] * 2 + REQUEUE_PI_CMDS
BITSET_CMDS = (abi.FUTEX_WAIT_BITSET, abi.FUTEX_WAKE_BITSET)
flag_sets = g.sampled_from([0, PRIVATE, CLOCK_RT, PRIVATE | CLOCK_RT])
#: Bits above the command and flags: any of them makes the command unknown (never PI).
high_bits = g.integers(0, U32).map(lambda v: v & ~0x18F & U32)
upper_halves = g.integers(1, U32)


def ops(commands: list[int], *, odd: int = 1, flags: g.Gen[int] = flag_sets) -> g.Gen[int]:
    """Command | flags | (sometimes, weight ``odd`` in 10) high bits | (sometimes) garbage
    in the register's upper half."""
    return g.builds(
        lambda cmd, flags, hi, upper: cmd | flags | hi | upper << 32,
        g.sampled_from(commands),
        flags,
        weighted((10 - odd, g.just(0)), (odd, high_bits)),
        weighted((10 - odd, g.just(0)), (odd, upper_halves)),
    )


# -- PI words and calls ----------------------------------------------------------------------

pi_bits = g.sampled_from([0, WAITERS, OWNER_DIED, WAITERS | OWNER_DIED])
no_task_tids = weighted(
    (3, g.sampled_from(NO_TASK_TIDS)),
    (1, g.integers(TASKLESS_TID_MIN, abi.FUTEX_TID_MASK)),
)
#: PI word values: the caller, the peer, a tid of no task, or nobody (0), with any bits
#: above the tid; sometimes anything (the harness skips a lock whose word might name a
#: task of the host's).
pi_values = weighted(
    (3, g.builds(TidWord, g.just("self"), pi_bits)),
    (2, g.builds(TidWord, g.just("peer"), pi_bits)),
    (2, g.tuples(no_task_tids, pi_bits).map(lambda t: t[0] | t[1])),
    (2, pi_bits),
    (1, u32s),
)
#: Writable pages PI words are stored in (sampled_from keeps repeats), and where.
PI_STORE_PAGES = (
    ["PRIV_RW"] * 3
    + ["SHARED_RW"] * 3
    + ["FILE_SHARED_RW", "FILE_PRIV_RW", "FILE_PRIV_ALIAS_RW", "EOF_SHARED"]
    + ["WRITE_ONLY_PRIV", "WRITE_ONLY_SHARED", "TIMESPEC"]
)
#: 0x7FC: file C's last word (in EOF_SHARED); 0x900: past its EOF, in the same page.
PI_OFFSETS = (0, 4, 8, 0x40, 0x7FC, 0x900)
#: Pages followed by a writable page: a word stored at PAGE - 3 .. PAGE - 1 straddles.
STRADDLE_PAGES = ("PRIV_RW", "WRITE_ONLY_PRIV")
#: Words of the read-only PI pages: each of PI_WORDS, the unaligned ones, and a read
#: straddling into the next page (PI_PRIV_RO -> PI_SHARED_RO -> HOLE_END).
PI_RO_OFFSETS = (
    tuple(4 * i for i in range(len(PI_WORDS)))
    + tuple(off for off, _ in PI_UNALIGNED)
    + (0x102, 0x103, PAGE - 2)
)
pi_ro_addrs = g.builds(
    At,
    g.sampled_from(["PI_PRIV_RO", "PI_SHARED_RO"]).map(P.__getitem__),
    g.sampled_from(PI_RO_OFFSETS),
)
pi_store_addrs = g.builds(
    At, g.sampled_from(PI_STORE_PAGES).map(P.__getitem__), g.sampled_from(PI_OFFSETS)
)
pi_stores = g.builds(Store, pi_store_addrs, pi_values)
#: Where PI calls go when not at a word just stored.
pi_addrs = weighted((4, pi_store_addrs), (2, pi_ro_addrs), (1, some_addrs), (1, addrs))


def _cmd_flags(cmd: int) -> g.Gen[int]:
    """FUTEX_CLOCK_REALTIME mostly where it is valid (the others answer ENOSYS)."""
    if cmd in BITSET_CMDS or cmd in (LOCK_PI2, WAIT_REQUEUE_PI):
        return flag_sets
    if cmd in PI_COMMANDS or cmd == CMP_REQUEUE_PI:
        return weighted((5, g.sampled_from([0, PRIVATE])), (1, flag_sets))
    return weighted((4, g.sampled_from([0, PRIVATE])), (1, flag_sets))


#: Strategies built once (drawing from a fresh strategy costs a validation each time).
CMD_OPS = {cmd: ops([cmd], odd=1, flags=_cmd_flags(cmd)) for cmd in set(COMMANDS)}
choice_3_1 = g.sampled_from([True, True, True, False])
wait_utimes = weighted((2, g.just(0)), (4, slot_ptrs), (1, addrs))
count_utimes = weighted((3, small_counts), (1, registers), (1, addrs))
count_vals = weighted((3, small_counts), (1, registers))
wake_op_val3s = weighted((3, futex_ops), (1, val3s))
requeue_val3s = weighted((1, g.builds(Current, some_addrs)), (1, val3s))
bitset_val3s = weighted(
    (3, g.just(abi.FUTEX_BITSET_MATCH_ANY)),
    (1, g.sampled_from([1, 2, 0x80000000])),
    (1, g.just(0)),
    (1, val3s),
)
pi_lock_utimes = weighted((1, g.just(0)), (5, slot_ptrs), (1, addrs), (1, registers))
pi_other_utimes = weighted((2, small_counts), (1, slot_ptrs), (1, registers))
#: uaddr2: 0, the word itself, or another
pi_uaddr2_kinds = g.sampled_from([0, 0, 1, 2])
