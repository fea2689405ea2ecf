"""The single-task futex(2) calls and chunks: PI calls, the peer's calls that end a blocked
wait, requeue-PI calls and chunks (a PI target stored, then calls to it), "plausible" calls
of every command (each argument a good one more often than not), PI chunks, stores.
Drawn from ``strategies``' values.
"""

from __future__ import annotations

from futex.linux import abi
from tests.differential.harness import gen as g
from tests.differential.harness.layout import PAGE, U32, TidWord
from tests.differential.harness.steps import (
    PEER_SIGNAL,
    PI_COMMANDS,
    SYS_FUTEX,
    SYS_WAKE,
    At,
    Call,
    Current,
    PeerCall,
    Step,
    Store,
    ts,
)
from tests.differential.harness.strategies import (
    ALIGNED_OFFSETS,
    ANY,
    BITSET_CMDS,
    CMD_OPS,
    CMP_REQUEUE_PI,
    F2_PRIVATE,
    F2_U32,
    INT_MAX,
    LOCK_PI,
    LOCK_PI2,
    OTHER_COMMANDS,
    PI_CMDS,
    PI_OFFSETS,
    PI_STORE_PAGES,
    PRIVATE,
    STRADDLE_PAGES,
    TRYLOCK_PI,
    UNLOCK_PI,
    WAIT_REQUEUE_PI,
    WAKE,
    WAKE_BITSET,
    P,
    addrs,
    bitset_val3s,
    choice_3_1,
    count_utimes,
    count_vals,
    good_addrs,
    ops,
    pi_addrs,
    pi_bits,
    pi_lock_utimes,
    pi_other_utimes,
    pi_store_addrs,
    pi_stores,
    pi_uaddr2_kinds,
    pi_values,
    registers,
    requeue_val3s,
    small_counts,
    some_addrs,
    u32s,
    utimes,
    val3s,
    wait_utimes,
    wake_op_val3s,
    weighted,
)


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
            (LOCK_PI | f, ts("zero"), False),
            (LOCK_PI2 | f, ts("mono_past"), False),
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
