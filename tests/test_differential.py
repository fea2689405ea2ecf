"""Differential tests: the emulated futex(2) against the host kernel (Linux, x86-64).

The same single-task call sequences run on both, over the same mappings at the same
addresses (see ``differential_support``), and every return value and every readable page
must agree after every step.  Hypothesis generates the sequences, valid and invalid
arguments alike; explicit tests walk every command x PRIVATE x CLOCK_REALTIME combination.

PI commands (LOCK_PI, UNLOCK_PI, TRYLOCK_PI, LOCK_PI2) are in: their words name the caller
(EDEADLK, UNLOCK_PI's 0), nobody (0: the lock is taken), the peer thread (TRYLOCK_PI's
EWOULDBLOCK, LOCK_PI's timeout) or tids no task can have (ESRCH), with FUTEX_WAITERS and
FUTEX_OWNER_DIED in any combination; the harness skips a PI lock whose word could name any
other task of the host's.  Requeue-PI (WAIT_REQUEUE_PI, CMP_REQUEUE_PI) is still out: the
emulator answers ENOSYS for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from futex import _hostfutex

if not _hostfutex.available():  # pragma: no cover - other hosts
    pytest.skip("needs the host kernel: Linux on x86-64", allow_module_level=True)

from differential_support import (
    LAST_SLOT_OFFSET,
    LAYOUT,
    NO_TASK_TIDS,
    NSLOTS,
    PAGE,
    PAGE_INDEX,
    PALETTE,
    PI_COMMANDS,
    PI_UNALIGNED,
    PI_WORDS,
    SLOT,
    TASKLESS_TID_MIN,
    U32,
    U64,
    At,
    Call,
    Current,
    Differ,
    Mismatch,
    Step,
    Store,
    TidWord,
    host_layout,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from futex.linux import abi

P = PAGE_INDEX
PRIVATE = abi.FUTEX_PRIVATE_FLAG
CLOCK_RT = abi.FUTEX_CLOCK_REALTIME
WAITERS = abi.FUTEX_WAITERS
OWNER_DIED = abi.FUTEX_OWNER_DIED
LOCK_PI, UNLOCK_PI = abi.FUTEX_LOCK_PI, abi.FUTEX_UNLOCK_PI
TRYLOCK_PI, LOCK_PI2 = abi.FUTEX_TRYLOCK_PI, abi.FUTEX_LOCK_PI2

# -- the harness, once per module ---------------------------------------------------------


@pytest.fixture(scope="module")
def differ() -> Iterator[Differ]:
    with host_layout() as (layout, watchdog):
        yield Differ(layout, watchdog)


def check(differ: Differ, steps: list[Step]) -> None:
    bad = differ.run(steps)
    if bad is not None:
        pytest.fail(f"host and emulator disagree:\n{bad}", pytrace=False)


# -- strategies ---------------------------------------------------------------------------
#
# Weights go through ``weighted``: Hypothesis flattens nested ``one_of`` and merges equal
# branches, so repeating a branch does not weight it.


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, picked with the given integer weights."""
    index = [i for i, (w, _) in enumerate(choices) for _ in range(w)]
    return st.sampled_from(index).flatmap(lambda i: choices[i][1])


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
    (6, st.sampled_from(ALIGNED_OFFSETS)),
    (2, st.sampled_from(MISALIGNED_OFFSETS)),
    (1, st.integers(0, PAGE // 4 - 1).map(lambda i: 4 * i)),
    (1, st.integers(0, PAGE - 1)),
)
layout_addrs = st.builds(At, st.sampled_from(WORD_PAGES).map(P.__getitem__), offsets)
good_addrs = st.builds(
    At, st.sampled_from(GOOD_PAGES).map(P.__getitem__), st.sampled_from(ALIGNED_OFFSETS)
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
    (4, st.sampled_from(SPECIAL_ADDRS)),
    (1, st.integers(1 << 47, U64)),  # kernel half / non-canonical
    (1, st.integers(0, 0xFFFF)),  # below mmap_min_addr
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
    (3, st.sampled_from(PALETTE)),
    (1, st.integers(-3, 40).map(lambda v: v & U32)),
    (1, st.sampled_from(BOUNDARY_VALUES).map(lambda v: v & U32)),
    (1, st.integers(0, U32)),
)
#: Register values: u32s, sometimes with garbage in the upper half, or anything.
registers = weighted(
    (4, u32s),
    (1, st.tuples(u32s, st.integers(1, U32)).map(lambda t: t[0] | t[1] << 32)),
    (1, st.sampled_from(BOUNDARY_VALUES)),
    (1, st.integers(-3, 3).map(lambda v: v & U64)),
    (1, st.integers(0, U64)),
)
futex_ops = st.builds(
    lambda kind, shift, oparg, cmp, cmparg: abi.FUTEX_OP(
        kind | (abi.FUTEX_OP_OPARG_SHIFT if shift else 0), oparg, cmp, cmparg
    ),
    weighted((4, st.integers(0, 4)), (1, st.integers(5, 7))),
    st.booleans(),
    weighted(
        (1, st.sampled_from([0, 1, 2, 31, 32, 33, 40, -1, -2, -31, -32, 2047, -2048])),
        (1, st.integers(-2048, 2047)),
    ),
    weighted((4, st.integers(0, 5)), (1, st.integers(6, 15))),
    weighted(
        (1, st.sampled_from([0, 1, 2, 3, 42, -1, -2, 2047, -2048])),
        (1, st.integers(-2048, 2047)),
    ),
)
#: val3: bitsets (including 0), FUTEX_WAKE_OP encodings, compare values, anything.
val3s = weighted(
    (1, st.just(abi.FUTEX_BITSET_MATCH_ANY)),
    (1, st.just(0)),
    (2, futex_ops),
    (2, registers),
)
slot_ptrs = weighted(
    (5, st.integers(0, NSLOTS - 1).map(lambda i: At(P["TIMESPEC"], 16 * i))),
    (
        1,
        st.sampled_from(
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
utimes = weighted((2, st.just(0)), (3, slot_ptrs), (1, addrs), (1, registers))
small_counts = weighted((3, st.integers(0, 3)), (1, st.sampled_from([U32, 0x7FFFFFFF, 0x80000000])))

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
#: PI commands (requeue-PI is not implemented yet: it stays out).
PI_CMDS = [LOCK_PI] * 3 + [LOCK_PI2] * 3 + [TRYLOCK_PI] * 2 + [UNLOCK_PI] * 3
#: Every command.
COMMANDS = OTHER_COMMANDS + [LOCK_PI, UNLOCK_PI, TRYLOCK_PI, LOCK_PI2] * 2
BITSET_CMDS = (abi.FUTEX_WAIT_BITSET, abi.FUTEX_WAKE_BITSET)
flag_sets = st.sampled_from([0, PRIVATE, CLOCK_RT, PRIVATE | CLOCK_RT])
#: Bits above the command and flags: any of them makes the command unknown (never PI).
high_bits = st.integers(0, U32).map(lambda v: v & ~0x18F & U32)
upper_halves = st.integers(1, U32)


def ops(
    commands: list[int], *, odd: int = 1, flags: st.SearchStrategy[int] = flag_sets
) -> st.SearchStrategy[int]:
    """Command | flags | (sometimes, weight ``odd`` in 10) high bits | (sometimes) garbage
    in the register's upper half."""
    return st.builds(
        lambda cmd, flags, hi, upper: cmd | flags | hi | upper << 32,
        st.sampled_from(commands),
        flags,
        weighted((10 - odd, st.just(0)), (odd, high_bits)),
        weighted((10 - odd, st.just(0)), (odd, upper_halves)),
    )


def wild_calls(commands: list[int]) -> st.SearchStrategy[Call]:
    """Calls with every argument drawn independently, from anything."""
    return st.builds(
        Call,
        uaddr=addrs,
        op=ops(commands, odd=3),
        val=registers,
        utime=utimes,
        uaddr2=addrs,
        val3=val3s,
        interrupt=st.booleans(),
    )


# -- PI words and calls ----------------------------------------------------------------------

pi_bits = st.sampled_from([0, WAITERS, OWNER_DIED, WAITERS | OWNER_DIED])
no_task_tids = weighted(
    (3, st.sampled_from(NO_TASK_TIDS)),
    (1, st.integers(TASKLESS_TID_MIN, abi.FUTEX_TID_MASK)),
)
#: PI word values: the caller, the peer, a tid of no task, or nobody (0), with any bits
#: above the tid; sometimes anything (the harness skips a lock whose word might name a
#: task of the host's).
pi_values = weighted(
    (3, st.builds(TidWord, st.just("self"), pi_bits)),
    (2, st.builds(TidWord, st.just("peer"), pi_bits)),
    (2, st.tuples(no_task_tids, pi_bits).map(lambda t: t[0] | t[1])),
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
pi_ro_addrs = st.builds(
    At,
    st.sampled_from(["PI_PRIV_RO", "PI_SHARED_RO"]).map(P.__getitem__),
    st.sampled_from(PI_RO_OFFSETS),
)
pi_store_addrs = st.builds(
    At, st.sampled_from(PI_STORE_PAGES).map(P.__getitem__), st.sampled_from(PI_OFFSETS)
)
pi_stores = st.builds(Store, pi_store_addrs, pi_values)
#: Where PI calls go when not at a word just stored.
pi_addrs = weighted((4, pi_store_addrs), (2, pi_ro_addrs), (1, some_addrs), (1, addrs))


def _cmd_flags(cmd: int) -> st.SearchStrategy[int]:
    """FUTEX_CLOCK_REALTIME mostly where it is valid (the others answer ENOSYS)."""
    if cmd in BITSET_CMDS or cmd == LOCK_PI2:
        return flag_sets
    if cmd in PI_COMMANDS:
        return weighted((5, st.sampled_from([0, PRIVATE])), (1, flag_sets))
    return weighted((4, st.sampled_from([0, PRIVATE])), (1, flag_sets))


#: Strategies built once (drawing from a fresh strategy costs a validation each time).
CMD_OPS = {cmd: ops([cmd], odd=1, flags=_cmd_flags(cmd)) for cmd in set(COMMANDS)}
choice_3_1 = st.sampled_from([True, True, True, False])
wait_utimes = weighted((2, st.just(0)), (4, slot_ptrs), (1, addrs))
count_utimes = weighted((3, small_counts), (1, registers), (1, addrs))
count_vals = weighted((3, small_counts), (1, registers))
wake_op_val3s = weighted((3, futex_ops), (1, val3s))
requeue_val3s = weighted((1, st.builds(Current, some_addrs)), (1, val3s))
bitset_val3s = weighted(
    (3, st.just(abi.FUTEX_BITSET_MATCH_ANY)),
    (1, st.sampled_from([1, 2, 0x80000000])),
    (1, st.just(0)),
    (1, val3s),
)
pi_lock_utimes = weighted((1, st.just(0)), (5, slot_ptrs), (1, addrs), (1, registers))
pi_other_utimes = weighted((2, small_counts), (1, slot_ptrs), (1, registers))
#: uaddr2: 0, the word itself, or another
pi_uaddr2_kinds = st.sampled_from([0, 0, 1, 2])


def pi_call(draw: st.DrawFn, cmd: int, uaddr: At | int) -> Call:
    """A PI call at ``uaddr``: timeouts for the locks (absolute: mostly slots, valid or
    not), garbage in the arguments PI commands ignore."""
    op = draw(CMD_OPS[cmd])
    utime = draw(pi_lock_utimes if cmd in (LOCK_PI, LOCK_PI2) else pi_other_utimes)
    val = draw(count_vals)
    kind = draw(pi_uaddr2_kinds)
    uaddr2 = uaddr if kind == 1 else draw(some_addrs) if kind == 2 else 0
    val3 = draw(val3s)
    return Call(uaddr, op, val, utime, uaddr2, val3, interrupt=draw(st.booleans()))


def plausible_call(draw: st.DrawFn, cmd: int, uaddr: At | int | None = None) -> Call:
    """A call that mostly gets far: the command decides what each argument is drawn from,
    and each is a good one more often than not (never always).  ``uaddr``: the word."""
    if cmd in PI_COMMANDS:
        return pi_call(draw, cmd, draw(pi_addrs) if uaddr is None else uaddr)
    op = draw(CMD_OPS[cmd])
    if uaddr is None:
        uaddr = draw(some_addrs)
    if cmd in (abi.FUTEX_WAIT, abi.FUTEX_WAIT_BITSET):
        val: int | Current = Current(uaddr) if draw(choice_3_1) else draw(registers)
        utime: At | int = draw(wait_utimes)
    else:
        val = draw(count_vals)
        utime = draw(count_utimes)
    uaddr2 = uaddr if not draw(choice_3_1) else draw(some_addrs)
    if cmd == abi.FUTEX_WAKE_OP:
        val3: int | Current = draw(wake_op_val3s)
    elif cmd == abi.FUTEX_CMP_REQUEUE:
        val3 = (
            Current(uaddr)
            if draw(st.sampled_from([True] * 3 + [False] * 2))
            else draw(requeue_val3s)
        )
    elif cmd in BITSET_CMDS:
        val3 = draw(bitset_val3s)
    else:
        val3 = draw(val3s)
    return Call(uaddr, op, val, utime, uaddr2, val3, interrupt=draw(st.booleans()))


@st.composite
def plausible_calls(draw: st.DrawFn, commands: list[int]) -> Call:
    return plausible_call(draw, draw(st.sampled_from(commands)))


@st.composite
def pi_calls(draw: st.DrawFn) -> Call:
    return pi_call(draw, draw(st.sampled_from(PI_CMDS)), draw(pi_addrs))


@st.composite
def pi_chunks(draw: st.DrawFn) -> list[Step]:
    """A PI word stored (sometimes unaligned, or straddling two pages), then one to three
    calls at it or at the aligned word around it: PI calls mostly, other commands too."""
    page = draw(st.sampled_from(PI_STORE_PAGES))
    off = draw(st.sampled_from(PI_OFFSETS))
    if draw(st.sampled_from([False] * 5 + [True])):
        if page in STRADDLE_PAGES and draw(st.booleans()):
            off = PAGE - 4
        off += draw(st.sampled_from([1, 2, 3]))
    addr = At(P[page], off)
    steps: list[Step] = [Store(addr, draw(pi_values))]
    aligned = At(addr.page, addr.off & ~3)
    for _ in range(draw(st.integers(1, 3))):
        target = aligned if draw(st.booleans()) else addr
        if draw(st.sampled_from([True] * 4 + [False])):
            steps.append(pi_call(draw, draw(st.sampled_from(PI_CMDS)), target))
        else:
            steps.append(plausible_call(draw, draw(st.sampled_from(OTHER_COMMANDS)), target))
    return steps


def calls(commands: list[int]) -> st.SearchStrategy[Call]:
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
plain_stores = st.builds(
    Store,
    st.builds(
        At,
        st.sampled_from(STORE_PAGES).map(P.__getitem__),
        weighted(
            (3, st.sampled_from(ALIGNED_OFFSETS)),
            (1, st.integers(0, PAGE // 4 - 1).map(lambda i: 4 * i)),
        ),
    ),
    u32s,
)
stores = weighted((3, plain_stores), (1, pi_stores))


def sequences(commands: list[int], max_size: int = 12) -> st.SearchStrategy[list[Step]]:
    return st.lists(weighted((3, calls(commands)), (1, stores)), min_size=2, max_size=max_size)


def pi_sequences(max_chunks: int = 4) -> st.SearchStrategy[list[Step]]:
    """A PI chunk, then up to ``max_chunks`` more chunks, PI calls, stores, any calls."""
    more = weighted(
        (4, pi_chunks()),
        (2, pi_calls().map(lambda c: [c])),
        (1, stores.map(lambda s: [s])),
        (2, calls(COMMANDS).map(lambda c: [c])),
    )
    return st.tuples(pi_chunks(), st.lists(more, max_size=max_chunks)).map(
        lambda t: [step for chunk in (t[0], *t[1]) for step in chunk]
    )


FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(FUZZ, max_examples=2000)
@given(steps=sequences(COMMANDS))
def test_random_sequences(differ: Differ, steps: list[Step]) -> None:
    check(differ, steps)


@settings(FUZZ, max_examples=400)
@given(steps=sequences([abi.FUTEX_WAIT, abi.FUTEX_WAIT_BITSET], max_size=6))
def test_random_waits(differ: Differ, steps: list[Step]) -> None:
    check(differ, steps)


@settings(FUZZ, max_examples=400)
@given(steps=sequences([abi.FUTEX_WAKE_OP, abi.FUTEX_CMP_REQUEUE], max_size=6))
def test_random_wake_op_and_cmp_requeue(differ: Differ, steps: list[Step]) -> None:
    check(differ, steps)


#: Sequences of test_random_pi_sequences; each has a PI call (unless the harness skipped
#: them all, which the coverage test below bounds).
PI_EXAMPLES = 2200


@settings(FUZZ, max_examples=PI_EXAMPLES)
@given(steps=pi_sequences())
def test_random_pi_sequences(differ: Differ, steps: list[Step]) -> None:
    check(differ, steps)


def test_random_sequences_reached_deep_paths(differ: Differ) -> None:
    """The generated calls got past the argument checks often enough: every outcome a
    single task can see showed up (runs after the tests above, on the same harness)."""
    if differ.calls < 5000 or differ.sequences < (2800 + PI_EXAMPLES) * 9 // 10:
        pytest.skip("the random sequence tests did not run (or not all of them)")
    seen: dict[str, set[object]] = {}
    for (name, result), _ in differ.outcomes.items():
        seen.setdefault(name.split("|")[0], set()).add(result)
    blocking = {"blocks", -abi.ETIMEDOUT, -abi.EAGAIN, -abi.EFAULT, -abi.EINVAL}
    assert blocking <= seen["WAIT"] and blocking <= seen["WAIT_BITSET"], seen
    for name in ("WAKE", "WAKE_BITSET", "REQUEUE", "CMP_REQUEUE", "WAKE_OP"):
        assert {0, -abi.EFAULT, -abi.EINVAL, -abi.ENOSYS} <= seen[name], (name, seen[name])
    assert -abi.EAGAIN in seen["CMP_REQUEUE"], seen["CMP_REQUEUE"]
    assert seen["FD"] == {-abi.ENOSYS}, seen["FD"]
    # PI: at least 2,000 sequences ran PI calls on both sides, and every outcome a
    # single task (and the idle peer) can see showed up
    assert differ.pi_sequences >= 2000, (differ.pi_sequences, differ.pi_unsafe)
    pi_common = {0, -abi.EINVAL, -abi.EFAULT}
    locks = pi_common | {-abi.EDEADLK, -abi.ESRCH, -abi.ETIMEDOUT, "blocks"}
    assert locks <= seen["LOCK_PI"], seen["LOCK_PI"]
    assert -abi.ENOSYS in seen["LOCK_PI"], seen["LOCK_PI"]  # with CLOCK_REALTIME
    assert locks <= seen["LOCK_PI2"], seen["LOCK_PI2"]
    trylock = pi_common | {-abi.EDEADLK, -abi.ESRCH, -abi.EWOULDBLOCK, -abi.ENOSYS}
    assert trylock <= seen["TRYLOCK_PI"], seen["TRYLOCK_PI"]
    unlock = pi_common | {-abi.EPERM, -abi.ENOSYS}
    assert unlock <= seen["UNLOCK_PI"], seen["UNLOCK_PI"]
    pi_seen = set().union(*(seen[n] for n in ("LOCK_PI", "LOCK_PI2", "TRYLOCK_PI", "UNLOCK_PI")))
    every = {0, -abi.EDEADLK, -abi.ESRCH, -abi.EPERM, -abi.EAGAIN, -abi.EINVAL, -abi.EFAULT}
    assert every <= pi_seen, pi_seen


# -- every command x flag combination, explicitly ------------------------------------------

REQUEUE_PI = (abi.FUTEX_WAIT_REQUEUE_PI, abi.FUTEX_CMP_REQUEUE_PI)  # not implemented yet
UNKNOWN_COMMANDS = (16, 0x7F, 0x200, 0x7FFFFE7F, 0xFFFFFE7F)
ALL_COMMANDS = [c for c in range(16) if c not in REQUEUE_PI] + list(UNKNOWN_COMMANDS)


def ts(name: str) -> At:
    return At(P["TIMESPEC"], 16 * SLOT[name])


def word(page: str, off: int = 0) -> At:
    return At(P[page], off)


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

    def call(uaddr: At | int, utime: At | int = 0, op_: int = op, **kw: bool) -> Call:
        return Call(uaddr, op_, 0, utime, 0, 0, **kw)

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


def _combo_id(combo: tuple[int, int]) -> str:
    cmd, flags = combo
    name = abi.COMMAND_NAMES.get(cmd, f"cmd{cmd:#x}")
    return f"{name}-{'private' if flags & PRIVATE else 'shared'}" + (
        "-realtime" if flags & CLOCK_RT else ""
    )


COMBOS = [(c, f) for c in ALL_COMMANDS for f in (0, PRIVATE, CLOCK_RT, PRIVATE | CLOCK_RT)]


@pytest.mark.parametrize("combo", COMBOS, ids=_combo_id)
def test_every_command_and_flag(differ: Differ, combo: tuple[int, int]) -> None:
    cmd, flags = combo
    op = cmd | flags
    failures: list[tuple[str, Mismatch | str]] = []
    for label, steps in argument_sets(op):
        bad = differ.run(steps)
        if bad is not None:
            failures.append((label, bad))
    if cmd in PI_COMMANDS:
        for label, steps in pi_argument_sets(op):
            skipped = differ.skipped
            bad = differ.run(steps)
            if bad is not None:
                failures.append((label, bad))
            elif differ.skipped != skipped:
                failures.append((label, f"harness: a call was skipped\n  {steps}"))
    if failures:
        report = "\n".join(f"[{label}] {bad}" for label, bad in failures)
        pytest.fail(f"{len(failures)} disagreement(s):\n{report}", pytrace=False)


# -- failure-collecting mode ----------------------------------------------------------------


def collect(n: int) -> int:
    """Run ``n`` generated sequences without stopping or shrinking; print every distinct
    disagreement (the shortest sequence seen for each) and what the calls returned.
    ``python tests/test_differential.py [N]``."""
    from hypothesis import Phase

    found: dict[tuple[object, ...], Mismatch] = {}
    hits: dict[tuple[object, ...], int] = {}
    with host_layout() as (layout, watchdog):
        differ = Differ(layout, watchdog)

        @settings(FUZZ, max_examples=n, database=None, phases=[Phase.generate], print_blob=False)
        @given(steps=weighted((1, sequences(COMMANDS)), (1, pi_sequences())))
        def run(steps: list[Step]) -> None:
            bad = differ.run(steps)
            if bad is not None:
                sig = bad.signature()
                hits[sig] = hits.get(sig, 0) + 1
                if sig not in found or len(bad.steps) < len(found[sig].steps):
                    found[sig] = bad

        run()
        for cmd, flags in COMBOS:
            cases = argument_sets(cmd | flags)
            if cmd in PI_COMMANDS:
                cases += pi_argument_sets(cmd | flags)
            for label, steps in cases:
                bad = differ.run(steps)
                if bad is not None:
                    bad.detail += f" [explicit case {_combo_id((cmd, flags))}/{label}]"
                    sig = bad.signature()
                    hits[sig] = hits.get(sig, 0) + 1
                    found.setdefault(sig, bad)
    print(f"{differ.sequences} sequences, {differ.calls} calls, {differ.skipped} skipped")
    table: dict[str, dict[object, int]] = {}
    for (name, result), count in differ.outcomes.items():
        base = name.split("|")[0]
        row = table.setdefault("unknown" if base.startswith("cmd") else base, {})
        row[result] = row.get(result, 0) + count
    for name, row in sorted(table.items()):
        print(f"  {name:12s} " + "  ".join(f"{r}: {c}" for r, c in sorted(row.items(), key=str)))
    for sig, bad in found.items():
        print("=" * 78)
        print(f"{hits[sig]} hit(s): {sig}")
        print(bad)
    print(f"{len(found)} distinct disagreement(s)")
    return 1 if found else 0


if __name__ == "__main__":
    import sys

    sys.exit(collect(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
