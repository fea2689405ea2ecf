"""The single-task futex2 calls: futex_waitv (one to three entries mostly, sometimes more,
or 128), futex_wait, futex_wake, futex_requeue, with flags (sizes, FUTEX2_PRIVATE,
FUTEX2_NUMA with its node word, FUTEX2_MPOL, bad bits), clockids, reserved fields and
vectors on various pages (straddling, unwritable, unmapped); futex2 chunks (a call, then
maybe futex(2) calls at its word); the peer's wakes that end a blocked futex2 wait.
"""

from __future__ import annotations

from tests.differential.harness import gen as g
from tests.differential.harness.layout import PAGE, U32, U64
from tests.differential.harness.steps import (
    CLOCK_MONOTONIC_ID,
    CLOCK_REALTIME_ID,
    SYS_REQUEUE,
    SYS_WAIT,
    SYS_WAITV,
    SYS_WAKE,
    At,
    Current,
    PeerCall,
    Step,
    Store,
    Sys2,
    WaitvEntry,
    ts,
)
from tests.differential.harness.strategies import (
    ANY,
    COMMANDS,
    F2_PRIVATE,
    F2_U32,
    FUTEX_NO_NODE,
    GOOD_PAGES,
    INT_MAX,
    MPOL,
    NUMA,
    USER_MAX,
    P,
    addrs,
    choice_3_1,
    good_addrs,
    weighted,
)
from tests.differential.harness.strategies_calls import (
    peer_counts,
    plausible_call,
    wake_peer_calls,
    with_peer,
)

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


f2_timeouts = weighted(
    (3, g.just(0)),
    (3, g.sampled_from(["zero", "one_sec", "mono_past", "rt_past"]).map(ts)),
    (
        3,
        g.sampled_from(
            ["mono_future", "rt_future", "mono_year", "rt_year", "ktime_sec_max", "s64_max_sec"]
        ).map(ts),
    ),
    (1, g.sampled_from(["neg_sec", "neg_nsec", "nsec_1e9", "nsec_hi_bits", "min_sec"]).map(ts)),
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
