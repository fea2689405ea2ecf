"""The generators of the differential tests' single-task call sequences (see
``test_differential``): futex(2) calls of every command, valid and invalid arguments
alike, stores, PI and requeue-PI chunks, futex2 calls, the peer's calls that end a
blocked wait.

Written once with ``differential_gen``: each is a Hypothesis strategy (``.strategy()``,
for the shrinking runs) and a seeded-``random`` generator (``.example(rng)``, for the
bulk runs).  Weights go through ``weighted`` (a repeated branch counts once in
Hypothesis's ``one_of``); ``sampled_from`` keeps repeats, so a repeated value weighs more.
"""

from __future__ import annotations

from typing import Any

from futex.linux import abi
from tests.differential import differential_gen as g
from tests.differential.differential_layout import (
    LAST_SLOT_OFFSET,
    LAYOUT,
    NO_TASK_TIDS,
    NSLOTS,
    PAGE,
    PAGE_INDEX,
    PALETTE,
    PI_UNALIGNED,
    PI_WORDS,
    SLOT,
    TASKLESS_TID_MIN,
    U32,
    U64,
    TidWord,
)
from tests.differential.differential_steps import (
    CLOCK_MONOTONIC_ID,
    CLOCK_REALTIME_ID,
    PEER_SIGNAL,
    PI_COMMANDS,
    SYS_FUTEX,
    SYS_REQUEUE,
    SYS_WAIT,
    SYS_WAITV,
    SYS_WAKE,
    At,
    Call,
    Current,
    PeerCall,
    Step,
    Store,
    Sys2,
    WaitvEntry,
)

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


def wild_calls(commands: list[int]) -> g.Gen[Call]:
    """Calls with every argument drawn independently, from anything."""
    return g.builds(
        Call,
        uaddr=addrs,
        op=ops(commands, odd=3),
        val=registers,
        utime=utimes,
        uaddr2=addrs,
        val3=val3s,
        interrupt=g.booleans(),
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


def pi_call(draw: g.Draw, cmd: int, uaddr: At | int) -> Call:
    """A PI call at ``uaddr``: timeouts for the locks (absolute: mostly slots, valid or
    not), garbage in the arguments PI commands ignore."""
    op = draw(CMD_OPS[cmd])
    utime = draw(pi_lock_utimes if cmd in (LOCK_PI, LOCK_PI2) else pi_other_utimes)
    val = draw(count_vals)
    kind = draw(pi_uaddr2_kinds)
    uaddr2 = uaddr if kind == 1 else draw(some_addrs) if kind == 2 else 0
    val3 = draw(val3s)
    return Call(uaddr, op, val, utime, uaddr2, val3, interrupt=draw(g.booleans()))


# -- the peer's calls, ending a blocked wait -------------------------------------------------

#: wake counts for the peer
peer_counts = g.sampled_from([1, 1, 1, 2, INT_MAX, 0, U32])
peer_bitsets = g.sampled_from([ANY, ANY, 1, 2, 0x80000000, 0])


def wake_peer_calls(
    draw: g.Draw, uaddr: At | int, private: bool, f2_flags: int | None = None
) -> tuple[PeerCall, ...]:
    """Calls of the peer that may wake a waiter on ``uaddr`` (futex(2) ``private`` or
    not; a futex2 word's flags ``f2_flags``): FUTEX_WAKE, WAKE_BITSET, futex_wake, a
    CMP_REQUEUE elsewhere and a wake there, or a wake of another word (a miss)."""
    f = PRIVATE if private else 0
    if f2_flags is None:
        f2_flags = F2_U32 | (F2_PRIVATE if private else 0)
    n = draw(peer_counts)
    kinds = ["wake", "wake", "bitset", "futex2", "futex2", "requeue", "miss", "pi"]
    kind = draw(g.sampled_from(kinds))
    if kind == "pi":
        # a PI operation meets the plain waiter (EINVAL once it looks at it), then a wake
        pi_ops: list[tuple[int, At | int, bool]] = [
            (LOCK_PI | f, ts_at("zero"), False),
            (LOCK_PI2 | f, ts_at("mono_past"), False),
            (TRYLOCK_PI | f, 0, False),
            (UNLOCK_PI | f, 0, False),
            (CMP_REQUEUE_PI | f, 0, True),
        ]
        op, utime, requeue = pi_ops[draw(g.integers(0, len(pi_ops) - 1))]
        uaddr2: At | int = draw(pi_store_addrs) if requeue else 0
        val3: int | Current = Current(uaddr) if requeue else 0
        first = PeerCall(SYS_FUTEX, (uaddr, op, 1, utime, uaddr2, val3))
        return (first, PeerCall(SYS_FUTEX, (uaddr, WAKE | f, n, 0, 0, 0)))
    if kind == "wake":
        return (PeerCall(SYS_FUTEX, (uaddr, WAKE | f, n, 0, 0, 0)),)
    if kind == "bitset":
        return (PeerCall(SYS_FUTEX, (uaddr, WAKE_BITSET | f, n, 0, 0, draw(peer_bitsets))),)
    if kind == "futex2":
        return (PeerCall(SYS_WAKE, (uaddr, draw(peer_bitsets), n, f2_flags)),)
    other = draw(good_addrs)
    if kind == "requeue":
        return (
            PeerCall(SYS_FUTEX, (uaddr, abi.FUTEX_CMP_REQUEUE | f, 0, 1, other, Current(uaddr))),
            PeerCall(SYS_FUTEX, (other, WAKE | f, n, 0, 0, 0)),
        )
    return (PeerCall(SYS_FUTEX, (other, WAKE | f, n, 0, 0, 0)),)


#: how often a blocking call comes with the peer's calls
with_peer = g.sampled_from([True, False, False])


# -- requeue-PI ---------------------------------------------------------------------------------

#: Two addresses of one shared key: file A's page 0 is mapped shared at FILE_SHARED_RW,
#: FILE_SHARED_RO and EXEC_FILE_SHARED (without FUTEX_PRIVATE_FLAG their keys are equal).
ALIASES = {
    P["FILE_SHARED_RW"]: P["FILE_SHARED_RO"],
    P["FILE_SHARED_RO"]: P["FILE_SHARED_RW"],
    P["EXEC_FILE_SHARED"]: P["FILE_SHARED_RW"],
}
RO_TARGET_PAGES = (
    "PRIV_RO",
    "SHARED_RO",
    "FILE_SHARED_RO",
    "FILE_PRIV_RO",
    "FILE_PRIV_ALIAS_RO",
    "PI_PRIV_RO",
    "PI_SHARED_RO",
    "PRIV_RO_ZERO",
    "SHARED_RO_ZERO",
    "EXEC_SHARED",
)
ro_targets = g.builds(
    At, g.sampled_from(RO_TARGET_PAGES).map(P.__getitem__), g.sampled_from(ALIGNED_OFFSETS)
)
#: uaddr2 of a requeue-PI call: the chunk's target mostly; the word itself (EINVAL); the
#: same shared key through another address (EINVAL, after the keys); a read-only word
#: (it needs write access: EFAULT unless private); anything.
uaddr2_kinds = g.sampled_from(["target"] * 6 + ["same", "alias", "alias", "ro", "any"])


def requeue_pi_uaddr2(draw: g.Draw, uaddr: At | int, target: At | int | None) -> At | int:
    kind = draw(uaddr2_kinds)
    if kind == "same":
        return uaddr
    if kind == "alias":
        if isinstance(uaddr, At) and uaddr.page in ALIASES:
            return At(ALIASES[uaddr.page], uaddr.off)
        kind = "target"
    got: At | int
    if kind == "ro":
        got = draw(ro_targets)
    elif kind == "target":
        got = draw(pi_store_addrs) if target is None else target
    else:
        got = draw(addrs)
    return got


def requeue_pi_peer_calls(
    draw: g.Draw, uaddr: At | int, uaddr2: At | int, op: int
) -> tuple[PeerCall, ...]:
    """What the peer does to a WAIT_REQUEUE_PI waiter: up to two calls that must not
    move it (plain wakes and requeues: EINVAL; CMP_REQUEUE_PI with a wrong value, count
    or target, or the other key kind), then the CMP_REQUEUE_PI that takes the target for
    it (free) or requeues it onto the target's PI state (the peer's), then maybe the
    peer's UNLOCK_PI of the target."""
    f = op & PRIVATE
    other = draw(some_addrs)
    menu = [
        PeerCall(SYS_FUTEX, (uaddr, WAKE | f, 1, 0, 0, 0)),
        PeerCall(SYS_FUTEX, (uaddr, abi.FUTEX_CMP_REQUEUE | f, 1, 1, other, Current(uaddr))),
        PeerCall(SYS_FUTEX, (uaddr, CMP_REQUEUE_PI | f, 1, 0, uaddr2, Current(uaddr, 1))),
        PeerCall(SYS_FUTEX, (uaddr, CMP_REQUEUE_PI | f, 2, 0, uaddr2, Current(uaddr))),
        PeerCall(SYS_FUTEX, (uaddr, CMP_REQUEUE_PI | f, 1, 0, other, Current(uaddr))),
        PeerCall(SYS_FUTEX, (uaddr, CMP_REQUEUE_PI | f ^ PRIVATE, 1, 0, uaddr2, Current(uaddr))),
        PeerCall(SYS_WAKE, (uaddr, ANY, 1, F2_U32 | (F2_PRIVATE if f else 0))),
        PeerCall(PEER_SIGNAL, ()),  # a restart: the call runs again
    ]
    pre = [draw(g.sampled_from(menu)) for _ in range(draw(g.sampled_from([0, 1, 1, 2])))]
    nr_requeue = draw(g.sampled_from([0, 0, 1, INT_MAX]))
    take = PeerCall(SYS_FUTEX, (uaddr, CMP_REQUEUE_PI | f, 1, nr_requeue, uaddr2, Current(uaddr)))
    post: tuple[PeerCall, ...] = ()
    if draw(g.booleans()):
        post = (PeerCall(SYS_FUTEX, (uaddr2, UNLOCK_PI | f, 0, 0, 0, 0)),)
    return (*pre, take, *post)


def wait_requeue_pi_call(draw: g.Draw, uaddr: At | int, target: At | int | None) -> Call:
    """WAIT_REQUEUE_PI on ``uaddr`` (mostly its current value: it blocks) to ``target``
    (or another uaddr2); sometimes with the peer's calls that end it."""
    op = draw(CMD_OPS[WAIT_REQUEUE_PI])
    uaddr2 = requeue_pi_uaddr2(draw, uaddr, target)
    val: int | Current = Current(uaddr) if draw(choice_3_1) else draw(registers)
    utime = draw(wait_utimes)
    peer = requeue_pi_peer_calls(draw, uaddr, uaddr2, op) if draw(g.booleans()) else ()
    return Call(uaddr, op, val, utime, uaddr2, draw(val3s), draw(g.booleans()), peer)


nr_wakes = weighted(
    (4, g.just(1)), (1, g.sampled_from([0, 2, U32, 0x80000000, 0x100000001])), (1, registers)
)
nr_requeues = weighted((3, small_counts), (1, registers))


def cmp_requeue_pi_call(draw: g.Draw, uaddr: At | int, target: At | int | None) -> Call:
    """CMP_REQUEUE_PI from ``uaddr`` to ``target`` (or another uaddr2): nr_wake 1 mostly,
    the compare value mostly right.  With nobody waiting it answers 0 after its checks
    (and after reading uaddr2)."""
    op = draw(CMD_OPS[CMP_REQUEUE_PI])
    uaddr2 = requeue_pi_uaddr2(draw, uaddr, target)
    kind = draw(g.sampled_from([0, 0, 0, 1, 2]))
    val3: int | Current = (Current(uaddr), Current(uaddr, 1), draw(val3s))[kind]
    return Call(uaddr, op, draw(nr_wakes), draw(nr_requeues), uaddr2, val3)


def requeue_pi_call(draw: g.Draw, cmd: int, uaddr: At | int, target: At | int | None) -> Call:
    if cmd == WAIT_REQUEUE_PI:
        return wait_requeue_pi_call(draw, uaddr, target)
    return cmp_requeue_pi_call(draw, uaddr, target)


#: Target words: free (the peer's CMP_REQUEUE_PI takes it for the waiter) or the peer's
#: (it requeues the waiter onto the peer's lock) more often than other PI words.
requeue_pi_target_values = weighted(
    (2, pi_bits),
    (2, g.builds(TidWord, g.just("peer"), pi_bits)),
    (3, pi_values),
)


@g.composite
def requeue_pi_chunks(draw: g.Draw) -> list[Step]:
    """A PI word stored at a target (free, the caller's, the peer's, no task's, any bits),
    then one to three requeue-PI calls from a condition word to it (or elsewhere), PI
    calls at it and other calls at the condition word."""
    target = draw(pi_store_addrs)
    cond = draw(some_addrs)
    steps: list[Step] = [Store(target, draw(requeue_pi_target_values))]
    for _ in range(draw(g.integers(1, 3))):
        kind = draw(g.sampled_from(["wait"] * 3 + ["cmp"] * 3 + ["pi", "other"]))
        if kind == "wait":
            steps.append(wait_requeue_pi_call(draw, cond, target))
        elif kind == "cmp":
            steps.append(cmp_requeue_pi_call(draw, cond, target))
        elif kind == "pi":
            steps.append(pi_call(draw, draw(g.sampled_from(PI_CMDS)), target))
        else:
            steps.append(plausible_call(draw, draw(g.sampled_from(OTHER_COMMANDS)), cond))
    return steps


def plausible_call(draw: g.Draw, cmd: int, uaddr: At | int | None = None) -> Call:
    """A call that mostly gets far: the command decides what each argument is drawn from,
    and each is a good one more often than not (never always).  ``uaddr``: the word."""
    if cmd in PI_COMMANDS:
        return pi_call(draw, cmd, draw(pi_addrs) if uaddr is None else uaddr)
    if cmd in (WAIT_REQUEUE_PI, CMP_REQUEUE_PI):
        return requeue_pi_call(draw, cmd, draw(some_addrs) if uaddr is None else uaddr, None)
    op = draw(CMD_OPS[cmd])
    if uaddr is None:
        uaddr = draw(some_addrs)
    peer: tuple[PeerCall, ...] = ()
    if cmd in (abi.FUTEX_WAIT, abi.FUTEX_WAIT_BITSET):
        val: int | Current = Current(uaddr) if draw(choice_3_1) else draw(registers)
        utime: At | int = draw(wait_utimes)
        if draw(with_peer):
            peer = wake_peer_calls(draw, uaddr, bool(op & PRIVATE))
    else:
        val = draw(count_vals)
        utime = draw(count_utimes)
    uaddr2 = uaddr if not draw(choice_3_1) else draw(some_addrs)
    if cmd == abi.FUTEX_WAKE_OP:
        val3: int | Current = draw(wake_op_val3s)
    elif cmd == abi.FUTEX_CMP_REQUEUE:
        val3 = (
            Current(uaddr)
            if draw(g.sampled_from([True] * 3 + [False] * 2))
            else draw(requeue_val3s)
        )
    elif cmd in BITSET_CMDS:
        val3 = draw(bitset_val3s)
    else:
        val3 = draw(val3s)
    return Call(uaddr, op, val, utime, uaddr2, val3, draw(g.booleans()), peer)


@g.composite
def plausible_calls(draw: g.Draw, commands: list[int]) -> Call:
    return plausible_call(draw, draw(g.sampled_from(commands)))


@g.composite
def pi_calls(draw: g.Draw) -> Call:
    return pi_call(draw, draw(g.sampled_from(PI_CMDS)), draw(pi_addrs))


@g.composite
def pi_chunks(draw: g.Draw) -> list[Step]:
    """A PI word stored (sometimes unaligned, or straddling two pages), then one to three
    calls at it or at the aligned word around it: PI calls mostly, other commands too."""
    page = draw(g.sampled_from(PI_STORE_PAGES))
    off = draw(g.sampled_from(PI_OFFSETS))
    if draw(g.sampled_from([False] * 5 + [True])):
        if page in STRADDLE_PAGES and draw(g.booleans()):
            off = PAGE - 4
        off += draw(g.sampled_from([1, 2, 3]))
    addr = At(P[page], off)
    steps: list[Step] = [Store(addr, draw(pi_values))]
    aligned = At(addr.page, addr.off & ~3)
    for _ in range(draw(g.integers(1, 3))):
        target = aligned if draw(g.booleans()) else addr
        if draw(g.sampled_from([True] * 4 + [False])):
            steps.append(pi_call(draw, draw(g.sampled_from(PI_CMDS)), target))
        else:
            steps.append(plausible_call(draw, draw(g.sampled_from(OTHER_COMMANDS)), target))
    return steps


def calls(commands: list[int]) -> g.Gen[Call]:
    return weighted((3, plausible_calls(commands)), (1, wild_calls(commands)))


STORE_PAGES = [
    "PRIV_RW",
    "SHARED_RW",
    "FILE_SHARED_RW",
    "FILE_PRIV_RW",
    "EOF_SHARED",
    "FILE_PRIV_ALIAS_RW",
    "TIMESPEC",
    "WRITE_ONLY_PRIV",
    "WRITE_ONLY_SHARED",
]
plain_stores = g.builds(
    Store,
    g.builds(
        At,
        g.sampled_from(STORE_PAGES).map(P.__getitem__),
        weighted(
            (3, g.sampled_from(ALIGNED_OFFSETS)),
            (1, g.integers(0, PAGE // 4 - 1).map(lambda i: 4 * i)),
        ),
    ),
    u32s,
)
stores = weighted((3, plain_stores), (1, pi_stores))


# -- futex2: futex_waitv, futex_wake, futex_wait, futex_requeue --------------------------------

f2_good_flags = g.builds(
    lambda p, n, m: F2_U32 | p | n | m,
    g.sampled_from([0, F2_PRIVATE]),
    weighted((3, g.just(0)), (1, g.just(NUMA))),
    weighted((5, g.just(0)), (1, g.just(MPOL))),
)
f2_bad_flags = weighted(
    (2, g.sampled_from([0, 1, 3, F2_PRIVATE, F2_PRIVATE | 1, F2_PRIVATE | 3])),
    (1, g.sampled_from([0x10, 0x40, 0x100, 0x80000000, 0xFFFFFFFF]).map(lambda b: b | F2_U32)),
    (1, g.integers(0, U32)),
    (1, g.sampled_from([1 << 32 | F2_U32, F2_U32 | NUMA | 1])),
)
#: futex2 flags: mostly valid (32-bit, PRIVATE, NUMA, MPOL in any combination)
f2_flags = weighted((10, f2_good_flags), (1, f2_bad_flags))
#: NUMA futexes are u32[2], 8-byte aligned; PAGE - 8: the node word ends the page
EIGHT_OFFSETS = (0, 8, 16, 24, 32, 40, 0x48, 0x100, PAGE - 8)
f2_good_addrs = g.builds(
    At, g.sampled_from(GOOD_PAGES).map(P.__getitem__), g.sampled_from(EIGHT_OFFSETS)
)
f2_addrs = weighted((6, f2_good_addrs), (2, good_addrs), (2, addrs))
#: node words (FUTEX_NO_NODE is written back as node 0; nodes but 0 do not exist)
NODE_PAGES = ("PRIV_RW", "SHARED_RW", "FILE_SHARED_RW", "FILE_PRIV_RW", "WRITE_ONLY_PRIV")
node_stores = g.builds(
    Store,
    g.builds(
        At,
        g.sampled_from(NODE_PAGES).map(P.__getitem__),
        g.sampled_from(EIGHT_OFFSETS).map(lambda o: o + 4),
    ),
    weighted((4, g.sampled_from([FUTEX_NO_NODE, 0])), (1, g.sampled_from([1, 0xFFFFFFFE, 64]))),
)
f2_reserved = weighted((15, g.just(0)), (1, g.sampled_from([1, 0x80000000])))
f2_masks = weighted(
    (6, g.just(ANY)),
    (2, g.sampled_from([1, 0x80000000])),
    (1, g.sampled_from([0, 1 << 32, U64])),
)
f2_counts = weighted(
    (6, g.sampled_from([0, 1, 2, INT_MAX])),
    (1, g.sampled_from([U32, 1 << 32, 1 << 31, (1 << 32) | 1])),
)
#: futex_waitv / futex_requeue's own flags (must be 0)
f2_call_flags = weighted((12, g.just(0)), (1, g.sampled_from([1, 1 << 32, 0x80, U32])))


def ts_at(name: str) -> At:
    return At(P["TIMESPEC"], 16 * SLOT[name])


f2_timeouts = weighted(
    (3, g.just(0)),
    (3, g.sampled_from(["zero", "one_sec", "mono_past", "rt_past"]).map(ts_at)),
    (
        3,
        g.sampled_from(
            ["mono_future", "rt_future", "mono_year", "rt_year", "ktime_sec_max", "s64_max_sec"]
        ).map(ts_at),
    ),
    (1, g.sampled_from(["neg_sec", "neg_nsec", "nsec_1e9", "nsec_hi_bits", "min_sec"]).map(ts_at)),
    (
        1,
        g.sampled_from(
            [
                At(P["HOLE"], 0),
                At(P["TIMESPEC"], PAGE - 8),  # {2, 0}'s nsec and PRIV_RO's first word
                At(P["PRIV_RO"], PAGE - 8),  # straddles into PROT_NONE
                At(P["EXEC_SHARED"], 0),
                8,
                1 << 63,
            ]
        ),
    ),
)
#: clockids: CLOCK_REALTIME, CLOCK_MONOTONIC (the int register: high bits ignored), others
f2_clocks = weighted(
    (8, g.sampled_from([CLOCK_REALTIME_ID, CLOCK_MONOTONIC_ID])),
    (1, g.sampled_from([2, 3, 5, 11, U64, (1 << 32) | 1, 1 << 32])),
)
#: Where vectors go: PRIV_RW + 0x400 has room for 128 entries; others straddle into the
#: next page (readable or not, writable or not: what lies beyond is read as it is), or
#: lie in unwritable or unmapped memory.
VECTOR_HOME = At(P["PRIV_RW"], 0x400)
BIG_VECTOR_SPOTS = (VECTOR_HOME, At(P["SHARED_RW"], 0x400), At(P["WRITE_ONLY_PRIV"], 0x400))
vectors = weighted(
    (10, g.just(VECTOR_HOME)),
    (
        3,
        g.sampled_from(
            [
                At(P["SHARED_RW"], 0x200),
                At(P["FILE_SHARED_RW"], 0x300),
                At(P["FILE_PRIV_RW"], 0x80),
                At(P["WRITE_ONLY_PRIV"], 0x100),
                At(P["TIMESPEC"], 0x400),  # after the timespec slots
                At(P["EOF_SHARED"], 0x7F0),  # across file C's EOF, in its page
                At(P["PRIV_RW"], 0x404),  # 4-byte aligned only
                At(P["PRIV_RW"], 0x401),  # unaligned
            ]
        ),
    ),
    (
        2,
        g.sampled_from(
            [
                At(P["PRIV_RW"], PAGE - 24),  # into TIMESPEC (writable)
                At(P["WRITE_ONLY_PRIV"], PAGE - 20),  # into WRITE_ONLY_SHARED
                At(P["SHARED_RW"], PAGE - 12),  # into SHARED_RO: its words are read
                At(P["EOF_SHARED"], PAGE - 12),  # into a page past EOF: EFAULT
                At(P["PRIV_RO"], PAGE - 12),  # unwritable, then PROT_NONE
                At(P["PRIV_RO"], 0x40),  # unwritable: garbage entries
            ]
        ),
    ),
    (
        1,
        g.sampled_from(
            [At(P["HOLE"], 0), At(P["PROT_NONE"], 8), At(P["EXEC_PRIV"], 0), 0, 8, USER_MAX - 8]
        ),
    ),
)


def f2_value(draw: g.Draw, uaddr: At | int) -> int | Current:
    """An entry's / futex_wait's value: the word's (it blocks) mostly; another; too wide."""
    kind = draw(g.sampled_from([0] * 8 + [1, 1, 2, 3]))
    if kind == 0:
        return Current(uaddr)
    if kind == 1:
        return Current(uaddr, 1)
    if kind == 2:
        return draw(g.sampled_from([0, 1, U32, 1 << 32, U64]))
    return Current(uaddr, 1 << 32)


def waitv_entry(draw: g.Draw, uaddr: At | int | None = None) -> WaitvEntry:
    if uaddr is None:
        uaddr = draw(f2_addrs)
    return WaitvEntry(uaddr, f2_value(draw, uaddr), draw(f2_flags), draw(f2_reserved))


def f2_peer_calls(
    draw: g.Draw, words: list[tuple[At | int, int]], mask: int = ANY
) -> tuple[PeerCall, ...]:
    """The peer's calls for a blocked futex2 wait on ``words`` ((uaddr, futex2 flags)):
    wakes of one of them (futex_wake with its flags, or FUTEX_WAKE / WAKE_BITSET / a
    CMP_REQUEUE and a wake, of the futex(2) kind of key), or of two."""
    if not draw(with_peer):
        return ()
    k = draw(g.integers(0, len(words) - 1))
    uaddr, flags = words[k]
    private = bool(flags & F2_PRIVATE)
    kind = draw(g.sampled_from(["futex2"] * 3 + ["futex(2)", "two", "miss"]))
    if kind == "miss":
        return (PeerCall(SYS_WAKE, (draw(f2_good_addrs), ANY, draw(peer_counts), flags)),)
    if kind == "futex2":
        n = draw(peer_counts)
        wake_mask = draw(g.sampled_from([ANY, ANY, mask, 1, 0x80000000]))
        return (PeerCall(SYS_WAKE, (uaddr, wake_mask, n, flags)),)
    if kind == "two" and len(words) > 1:
        j = draw(g.integers(0, len(words) - 1))
        u2, f2 = words[j]
        return (
            PeerCall(SYS_WAKE, (uaddr, ANY, 1, flags)),
            PeerCall(SYS_WAKE, (u2, ANY, draw(peer_counts), f2)),
        )
    return wake_peer_calls(draw, uaddr, private, flags)


@g.composite
def waitv_calls(draw: g.Draw) -> Sys2:
    """futex_waitv: one to three entries mostly, sometimes more, or 128 (one word's
    neighbours, 8 bytes apart); nr mostly right (else 0, 128, 129, one more than
    written, high bits)."""
    size = draw(weighted((12, g.integers(1, 3)), (3, g.integers(4, 10)), (1, g.just(128))))
    if size == 128:
        first = waitv_entry(draw, draw(f2_good_addrs))
        assert isinstance(first.uaddr, At)
        base = first.uaddr
        entries = []
        for j in range(128):
            a = At(base.page, (base.off + 8 * j) % (PAGE - 8))
            entries.append(WaitvEntry(a, Current(a), first.flags, first.reserved))
        vector = draw(g.sampled_from(BIG_VECTOR_SPOTS))
    else:
        entries = [waitv_entry(draw) for _ in range(size)]
        if size > 1 and draw(g.sampled_from([False, False, True])):
            # one word twice (two waiters on one key, or on two keys: other flags)
            i, j = draw(g.permutations(range(size)))[:2]
            e = entries[j]
            entries[i] = WaitvEntry(
                e.uaddr,
                e.val,
                draw(g.sampled_from([e.flags, e.flags, F2_U32 | F2_PRIVATE, F2_U32])),
                0,
            )
        vector = draw(vectors)
    nr = draw(
        weighted(
            (12, g.just(size)),
            (1, g.sampled_from([0, 128, 129, size + 1, (1 << 32) | size, U32])),
        )
    )
    timeout = draw(f2_timeouts)
    peer = f2_peer_calls(draw, [(e.uaddr, e.flags) for e in entries])
    return Sys2(
        SYS_WAITV,
        (vector, nr, draw(f2_call_flags), timeout, draw(f2_clocks)),
        tuple(entries),
        vector,
        draw(g.booleans()),
        peer,
    )


@g.composite
def futex_wait_calls(draw: g.Draw) -> Sys2:
    uaddr = draw(f2_addrs)
    flags = draw(f2_flags)
    mask = draw(f2_masks)
    args = (uaddr, f2_value(draw, uaddr), mask, flags, draw(f2_timeouts), draw(f2_clocks))
    peer = f2_peer_calls(draw, [(uaddr, flags)], mask)
    return Sys2(SYS_WAIT, args, (), 0, draw(g.booleans()), peer)


futex_wake_calls = g.builds(
    lambda a, m, n, f: Sys2(SYS_WAKE, (a, m, n, f)), f2_addrs, f2_masks, f2_counts, f2_flags
)


@g.composite
def futex_requeue_calls(draw: g.Draw) -> Sys2:
    """futex_requeue: two entries, mostly with the same flags (else EINVAL)."""
    e1, e2 = waitv_entry(draw), waitv_entry(draw)
    if draw(choice_3_1):
        e2 = WaitvEntry(e2.uaddr, e2.val, e1.flags, e2.reserved)
    vector = draw(vectors)
    args = (vector, draw(f2_call_flags), draw(f2_counts), draw(f2_counts))
    return Sys2(SYS_REQUEUE, args, (e1, e2), vector)


futex2_calls = weighted(
    (4, waitv_calls()), (2, futex_wake_calls), (3, futex_wait_calls()), (2, futex_requeue_calls())
)


@g.composite
def futex2_chunks(draw: g.Draw) -> list[Step]:
    """Maybe node words stored, a futex2 call, then maybe futex(2) calls at its word."""
    steps: list[Step] = list(draw(g.lists(node_stores, max_size=2)))
    call = draw(futex2_calls)
    steps.append(call)
    word = call.entries[0].uaddr if call.entries else call.args[0]
    if isinstance(word, At) and draw(g.sampled_from([False, False, True])):
        steps.append(plausible_call(draw, draw(g.sampled_from(COMMANDS)), word))
    return steps


def one(strategy: g.Gen[Any]) -> g.Gen[list[Step]]:
    return strategy.map(lambda step: [step])


def sequences(commands: list[int], max_size: int = 12, futex2: bool = False) -> g.Gen[list[Step]]:
    """Calls of ``commands`` and stores; with ``futex2``, futex2 calls too."""
    if futex2:
        step = weighted((6, calls(commands)), (2, stores), (1, futex2_calls))
    else:
        step = weighted((3, calls(commands)), (1, stores))
    return g.lists(step, min_size=2, max_size=max_size)


def flatten(chunks: tuple[Any, ...]) -> list[Step]:
    return [step for chunk in chunks for step in (chunk if isinstance(chunk, list) else [chunk])]


def pi_sequences(max_chunks: int = 3) -> g.Gen[list[Step]]:
    """A PI chunk and a requeue-PI chunk (in either order), then up to ``max_chunks`` more
    chunks, PI calls, stores, any calls."""
    more = weighted(
        (4, pi_chunks()),
        (3, requeue_pi_chunks()),
        (2, pi_calls().map(lambda c: [c])),
        (1, stores.map(lambda s: [s])),
        (2, calls(COMMANDS).map(lambda c: [c])),
    )
    return g.tuples(
        pi_chunks(), requeue_pi_chunks(), g.booleans(), g.lists(more, max_size=max_chunks)
    ).map(lambda t: flatten((t[0], t[1]) if t[2] else (t[1], t[0])) + flatten(tuple(t[3])))


def futex2_sequences(max_chunks: int = 4) -> g.Gen[list[Step]]:
    """A futex2 chunk, then up to ``max_chunks`` more: futex2 chunks, futex(2) calls
    (PI and requeue-PI chunks too), stores."""
    more = weighted(
        (4, futex2_chunks()),
        (3, one(calls(COMMANDS))),
        (2, one(stores)),
        (1, pi_chunks()),
        (1, requeue_pi_chunks()),
    )
    return g.tuples(futex2_chunks(), g.lists(more, max_size=max_chunks)).map(
        lambda t: flatten((t[0], *t[1]))
    )
