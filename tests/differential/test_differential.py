"""Differential tests: the emulated futex(2) and futex2 calls against the host kernel (Linux,
x86-64), reached through ``futex.native``'s raw entries.

Single task.  The same call sequences run on both, over the same mappings at the same
addresses (see ``differential_layout``), and every return value and every readable page
must agree after every step.  The sequences come from ``differential_strategies``, valid
and invalid arguments alike: the bulk (``test_generated_sequences``, over 10,000
sequences) straight from seeded ``random.Random`` s, cheap and the same on every run; a
smaller share through Hypothesis, derandomized (``test_hypothesis_*``), which shrinks what
it finds.  Explicit tests walk every command x PRIVATE x CLOCK_REALTIME combination.

PI commands (LOCK_PI, UNLOCK_PI, TRYLOCK_PI, LOCK_PI2) are in: their words name the caller
(EDEADLK, UNLOCK_PI's 0), nobody (0: the lock is taken), the peer thread (TRYLOCK_PI's
EWOULDBLOCK, LOCK_PI's timeout) or tids no task can have (ESRCH), with FUTEX_WAITERS and
FUTEX_OWNER_DIED in any combination; the harness skips a PI lock whose word could name any
other task of the host's.  Requeue-PI (WAIT_REQUEUE_PI, CMP_REQUEUE_PI) is in: condition
words to PI targets (free, the caller's, the peer's, no task's, read-only, unmapped, the
same word or the same key through another address), valid and invalid counts and values;
the peer ends some WAIT_REQUEUE_PI waits with its CMP_REQUEUE_PI (taking the target for
the waiter, or requeueing it onto the peer's lock) and UNLOCK_PI.

futex_waitv and the futex2 futex_wake / futex_wait / futex_requeue are interleaved with
the futex(2) calls and stores: flags (sizes, FUTEX2_PRIVATE, FUTEX2_NUMA with its node
word, FUTEX2_MPOL, bad bits), nr 0 / 1..128 / 129, clockids, reserved fields, vectors on
various pages (straddling, unwritable, unmapped); blocked waits are ended by the clock, a
signal or the peer's wakes (futex_waitv then returns a woken entry's index).

Several tasks (``differential_tasks``): real threads parked on the layout's words beside
emulated tasks parked on the same words; the same wakes (with bitsets, futex2), requeues,
wake_ops, PI unlocks, requeue-PI and signals on both; results, who woke (one at a time
where the order is the point: FIFO among equals, priority order with SCHED_FIFO threads,
priority inheritance through a chain), and the words must agree.  Named scenarios, then
seeded random scripts (``test_tasks_random_scripts``).  Across fork: a real ``os.fork()``
child and an emulated ``Process.fork()`` child, shared words meeting, private ones not.

``python -m tests.differential.test_differential N [--seed S]``: a fresh random search of
N sequences (every disagreement, shrunk, with what the calls returned); ``--replay KIND:INDEX``
re-runs one sequence of ``test_generated_sequences``; ``--scripts``: N fresh random
multi-task scripts instead.
"""

from __future__ import annotations

import collections
import os
import random
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import host_has
from tests.support import hostfutex as _hostfutex

if not _hostfutex.available():  # pragma: no cover - other hosts
    pytest.skip("needs the host kernel: Linux on x86-64", allow_module_level=True)

from tests.differential.differential_diff import Differ
from tests.differential.differential_host import NATIVE_MISSING
from tests.differential.differential_host_layout import host_layout
from tests.differential.differential_layout import (
    LAST_SLOT_OFFSET,
    NO_TASK_TIDS,
    PAGE,
    PAGE_INDEX,
    PALETTE,
    SLOT,
    TASKLESS_TID_MIN,
    U32,
    U64,
    TidWord,
)
from tests.differential.differential_steps import (
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
    Mismatch,
    PeerCall,
    Step,
    Store,
)

if NATIVE_MISSING:  # pragma: no cover - the extension is built in CI
    pytest.skip(NATIVE_MISSING, allow_module_level=True)

from hypothesis import HealthCheck, given, settings

from futex.linux import abi
from futex.linux.host import probe
from tests.differential import differential_gen as g
from tests.differential.differential_strategies import (
    ANY,
    CLOCK_RT,
    COMMANDS,
    F2_PRIVATE,
    F2_U32,
    INT_MAX,
    OWNER_DIED,
    PI_RO_OFFSETS,
    PRIVATE,
    USER_MAX,
    WAITERS,
    futex2_sequences,
    pi_sequences,
    sequences,
)
from tests.differential.differential_tasks import (
    BLOCKS,
    MAIN,
    SCRIPT_PI,
    ForkCase,
    ForkSide,
    Outcome,
    Ptr,
    RandomScript,
    ScenarioMismatch,
    Set,
    Signal,
    TaskCall,
    TaskDiffer,
    Tid,
    run_fork_case,
    sched_fifo_unavailable,
)

P = PAGE_INDEX
LOCK_PI, UNLOCK_PI = abi.FUTEX_LOCK_PI, abi.FUTEX_UNLOCK_PI
TRYLOCK_PI, LOCK_PI2 = abi.FUTEX_TRYLOCK_PI, abi.FUTEX_LOCK_PI2
WAIT_REQUEUE_PI, CMP_REQUEUE_PI = abi.FUTEX_WAIT_REQUEUE_PI, abi.FUTEX_CMP_REQUEUE_PI
WAKE, WAKE_BITSET = abi.FUTEX_WAKE, abi.FUTEX_WAKE_BITSET

# -- the harness, once per module ---------------------------------------------------------


@pytest.fixture(scope="module")
def differ() -> Iterator[Differ]:
    with host_layout() as (layout, watchdog):
        yield Differ(layout, watchdog)


def check(differ: Differ, steps: list[Step]) -> None:
    bad = differ.run(steps)
    if bad is not None:
        pytest.fail(f"host and emulator disagree:\n{bad}", pytrace=False)


def shrink(differ: Differ, bad: Mismatch, budget: int = 200) -> Mismatch:
    """The shortest sub-sequence (steps dropped one at a time, greedily) that still shows
    the same disagreement (``Mismatch.signature``)."""
    sig, steps = bad.signature(), list(bad.steps)
    best = bad
    progress = True
    while progress and budget > 0:
        progress = False
        for i in range(len(steps)):
            budget -= 1
            if len(steps) == 1 or budget < 0:
                break
            candidate = steps[:i] + steps[i + 1 :]
            got = differ.run(candidate)
            if got is not None and got.signature() == sig:
                steps, best, progress = candidate, got, True
                break
    return best


# -- generated sequences --------------------------------------------------------------------

#: The generated runs: kind -> (generator, sequences in CI).  Each sequence of a kind has
#: its own seed (``sequence_rng``), so any one can be re-run alone (``--replay``).
BULK: dict[str, tuple[g.Gen[list[Step]], int]] = {
    "mixed": (sequences(COMMANDS, futex2=True), 4000),
    "waits": (sequences([abi.FUTEX_WAIT, abi.FUTEX_WAIT_BITSET], max_size=6), 800),
    "wake_op_cmp_requeue": (sequences([abi.FUTEX_WAKE_OP, abi.FUTEX_CMP_REQUEUE], max_size=6), 800),
    "pi": (pi_sequences(), 4000),
    "futex2": (futex2_sequences(), 4000),
}
#: CI's seed (fixed: the coverage assertions below must not flake).
CI_SEED = 0x5EED
#: Sequences run per test, by test (the coverage test checks they all ran, in full).
GENERATED: collections.Counter[str] = collections.Counter()


def sequence_rng(kind: str, index: int, seed: int = CI_SEED) -> random.Random:
    return random.Random((seed << 40) | (list(BULK).index(kind) << 32) | index)


def generated(kind: str, index: int, seed: int = CI_SEED) -> list[Step]:
    """Sequence ``index`` of ``kind`` for ``seed``."""
    steps: list[Step] = BULK[kind][0].example(sequence_rng(kind, index, seed))
    return steps


@pytest.mark.parametrize("kind", list(BULK))
def test_generated_sequences(differ: Differ, kind: str) -> None:
    """The bulk: thousands of seeded sequences per kind; every distinct disagreement is
    reported, shrunk, with the index that replays it."""
    n = BULK[kind][1]
    found: dict[tuple[object, ...], tuple[int, Mismatch]] = {}
    for i in range(n):
        bad = differ.run(generated(kind, i))
        if bad is not None:
            found.setdefault(bad.signature(), (i, bad))
    GENERATED[f"generated[{kind}]"] = n
    if found:
        report = "\n".join(
            f"[--replay {kind}:{i}]\n{shrink(differ, bad)}" for i, bad in list(found.values())[:5]
        )
        pytest.fail(f"{len(found)} distinct disagreement(s):\n{report}", pytrace=False)


# Hypothesis, derandomized: CI sees the same sequences every run, so the coverage assertions
# below cannot flake; what it finds comes shrunk.
FUZZ = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
HYPOTHESIS_EXAMPLES = 150


@settings(FUZZ, max_examples=HYPOTHESIS_EXAMPLES)
@given(steps=sequences(COMMANDS, futex2=True).strategy())
def test_hypothesis_sequences(differ: Differ, steps: list[Step]) -> None:
    GENERATED["hypothesis[mixed]"] += 1
    check(differ, steps)


@settings(FUZZ, max_examples=HYPOTHESIS_EXAMPLES)
@given(steps=sequences([abi.FUTEX_WAIT, abi.FUTEX_WAIT_BITSET], max_size=6).strategy())
def test_hypothesis_waits(differ: Differ, steps: list[Step]) -> None:
    GENERATED["hypothesis[waits]"] += 1
    check(differ, steps)


@settings(FUZZ, max_examples=HYPOTHESIS_EXAMPLES)
@given(steps=sequences([abi.FUTEX_WAKE_OP, abi.FUTEX_CMP_REQUEUE], max_size=6).strategy())
def test_hypothesis_wake_op_and_cmp_requeue(differ: Differ, steps: list[Step]) -> None:
    GENERATED["hypothesis[wake_op_cmp_requeue]"] += 1
    check(differ, steps)


@settings(FUZZ, max_examples=HYPOTHESIS_EXAMPLES)
@given(steps=pi_sequences().strategy())
def test_hypothesis_pi_sequences(differ: Differ, steps: list[Step]) -> None:
    GENERATED["hypothesis[pi]"] += 1
    check(differ, steps)


@settings(FUZZ, max_examples=HYPOTHESIS_EXAMPLES)
@given(steps=futex2_sequences().strategy())
def test_hypothesis_futex2_sequences(differ: Differ, steps: list[Step]) -> None:
    GENERATED["hypothesis[futex2]"] += 1
    check(differ, steps)


#: At least this many single-task generated sequences run in CI (bulk and Hypothesis).
MIN_GENERATED = 10_000


def test_generated_sequences_reached_deep_paths(differ: Differ) -> None:
    """The generated calls got past the argument checks often enough: every outcome a
    single task can see showed up (runs after the tests above, on the same harness)."""
    bulk = {f"generated[{kind}]" for kind in BULK}
    if not bulk <= set(GENERATED) or len(GENERATED) < len(bulk) + 5:
        pytest.skip("the generated sequence tests did not run (or not all of them)")
    total = sum(GENERATED.values())
    print(f"\n{total} generated single-task sequences: {dict(GENERATED)}")
    assert total >= MIN_GENERATED, GENERATED
    seen: dict[str, set[object]] = {}
    if os.environ.get("FUTEX_DIFF_COUNTS"):  # how often each outcome showed up
        counts: dict[tuple[str, object], int] = {}
        for (name, result), n in differ.outcomes.items():
            base = (name.split("|")[0], result)
            counts[base] = counts.get(base, 0) + n
        for (name, result), n in sorted(counts.items(), key=lambda kv: kv[1]):
            print(f"{n:6} {name} {result}")
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
    # a host without a call answers ENOSYS, and so does its twin: nothing else to see
    facts = probe().facts
    enosys = {-abi.ENOSYS}
    assert locks <= seen["LOCK_PI2"] if facts.lock_pi2 else seen["LOCK_PI2"] == enosys
    trylock = pi_common | {-abi.EDEADLK, -abi.ESRCH, -abi.EWOULDBLOCK, -abi.ENOSYS}
    assert trylock <= seen["TRYLOCK_PI"], seen["TRYLOCK_PI"]
    unlock = pi_common | {-abi.EPERM, -abi.ENOSYS}
    assert unlock <= seen["UNLOCK_PI"], seen["UNLOCK_PI"]
    pi_seen = set().union(*(seen[n] for n in ("LOCK_PI", "LOCK_PI2", "TRYLOCK_PI", "UNLOCK_PI")))
    every = {0, -abi.EDEADLK, -abi.ESRCH, -abi.EPERM, -abi.EAGAIN, -abi.EINVAL, -abi.EFAULT}
    assert every <= pi_seen, pi_seen
    # requeue-PI: at least 2,000 sequences ran requeue-PI calls on both sides, valid and
    # invalid; WAIT_REQUEUE_PI blocked, and the peer's CMP_REQUEUE_PI took the target
    # for it (0), or requeued it onto the peer's lock (then UNLOCK_PI: 0; a signal:
    # EWOULDBLOCK)
    assert differ.requeue_pi_sequences >= 2000, differ.requeue_pi_sequences
    wait_rq = {"blocks", 0, -abi.EAGAIN, -abi.EINVAL, -abi.EFAULT, -abi.ETIMEDOUT}
    wait_rq |= {"peer-ended 0", f"peer-ended {-abi.EWOULDBLOCK}"}
    assert wait_rq - {0} <= seen["WAIT_REQUEUE_PI"], seen["WAIT_REQUEUE_PI"]
    cmp_rq = {0, -abi.EAGAIN, -abi.EINVAL, -abi.EFAULT, -abi.ENOSYS}
    assert cmp_rq <= seen["CMP_REQUEUE_PI"], seen["CMP_REQUEUE_PI"]
    peer_cmp_rq = seen["peer CMP_REQUEUE_PI"]
    # (0, the peer finding nobody, is too rare in a random run to demand)
    assert {1, -abi.EAGAIN, -abi.EINVAL} <= peer_cmp_rq, peer_cmp_rq
    assert 0 in seen["peer UNLOCK_PI"], seen["peer UNLOCK_PI"]  # the lock handed over
    assert {1, 0, -abi.EINVAL} <= seen["peer WAKE"], seen["peer WAKE"]
    # futex2: at least 2,000 sequences ran futex2 calls on both sides; each call saw its
    # outcomes: futex_waitv and futex_wait blocked, timed out, were woken by the peer
    # (futex_waitv: the index of a later entry too) or ended by a signal
    assert differ.futex2_sequences >= 2000, differ.futex2_sequences
    f2_errors = {-abi.EINVAL, -abi.EFAULT}
    # (whether the peer's wake was missed and a signal ended the wait, EINTR, depends on
    # timing on the host: not demanded)
    waits = f2_errors | {-abi.EAGAIN, -abi.ETIMEDOUT, "blocks", "peer-ended 0"}
    if facts.futex_waitv:
        assert waits <= seen["futex_waitv"], seen["futex_waitv"]
        assert any(
            isinstance(r, str) and r.startswith("peer-ended ") and int(r.split()[1]) > 0
            for r in seen["futex_waitv"]
        ), seen["futex_waitv"]
    else:
        assert seen["futex_waitv"] == enosys, seen["futex_waitv"]
    if facts.futex2:
        assert waits <= seen["futex_wait"], seen["futex_wait"]
        assert f2_errors | {0} <= seen["futex_wake"], seen["futex_wake"]
        assert f2_errors | {0, -abi.EAGAIN} <= seen["futex_requeue"], seen["futex_requeue"]
        assert {0, 1, -abi.EINVAL} <= seen["peer futex_wake"], seen["peer futex_wake"]
    else:
        for name in ("futex_wait", "futex_wake", "futex_requeue"):
            assert seen[name] == enosys, (name, seen[name])
    # PI operations of the peer meeting a plain waiter: EINVAL
    peer_pi = set().union(
        *(seen.get(f"peer {n}", set()) for n in ("LOCK_PI", "LOCK_PI2", "TRYLOCK_PI", "UNLOCK_PI"))
    )
    assert -abi.EINVAL in peer_pi, peer_pi
    # plain waits ended by the peer: woken (0) (or, the wake missed, signalled: timing)
    for name in ("WAIT", "WAIT_BITSET"):
        assert "peer-ended 0" in seen[name], seen[name]


# -- every command x flag combination, explicitly ------------------------------------------

UNKNOWN_COMMANDS = (16, 0x7F, 0x200, 0x7FFFFE7F, 0xFFFFFE7F)
ALL_COMMANDS = list(range(16)) + list(UNKNOWN_COMMANDS)


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


def _combo_id(combo: tuple[int, int]) -> str:
    cmd, flags = combo
    name = abi.COMMAND_NAMES.get(cmd, f"cmd{cmd:#x}")
    return f"{name}-{'private' if flags & PRIVATE else 'shared'}" + (
        "-realtime" if flags & CLOCK_RT else ""
    )


def special_argument_sets(op: int) -> list[tuple[str, list[Step]]]:
    """The PI and requeue-PI cases of ``op`` (none for other commands)."""
    cmd = op & abi.FUTEX_CMD_MASK
    if cmd in PI_COMMANDS:
        return pi_argument_sets(op)
    if cmd in (WAIT_REQUEUE_PI, CMP_REQUEUE_PI):
        return requeue_pi_argument_sets(op)
    return []


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
    special = special_argument_sets(op)
    for label, steps in special:
        skipped, refused = differ.skipped, sum(differ.peer_refused.values())
        bad = differ.run(steps)
        if bad is not None:
            failures.append((label, bad))
        elif differ.skipped != skipped:
            failures.append((label, f"harness: a call was skipped\n  {steps}"))
        elif sum(differ.peer_refused.values()) != refused:
            failures.append((label, f"harness: the peer's calls were refused\n  {steps}"))
    if failures:
        report = "\n".join(f"[{label}] {bad}" for label, bad in failures)
        pytest.fail(f"{len(failures)} disagreement(s):\n{report}", pytrace=False)


# -- several tasks: real threads beside emulated tasks ------------------------------------------


@pytest.fixture(scope="module")
def tasks(differ: Differ) -> TaskDiffer:
    return TaskDiffer(differ)


#: Where the scenarios' words live, by key kind: (page, op flags).
KEY_KINDS = {
    "private": ("PRIV_RW", PRIVATE),
    "shared-anon": ("SHARED_RW", 0),
    "shared-file": ("FILE_SHARED_RW", 0),
}
FIFO = abi.SCHED_FIFO


class Words:
    """A scenario's words (A, B: plain; PI, PI2: PI words) on one key kind's page, and
    helpers that make its calls with that kind's flag."""

    def __init__(self, kind: str) -> None:
        page, self.f = KEY_KINDS[kind]
        self.a, self.b = word(page, 0x100), word(page, 0x104)
        self.pi, self.pi2 = word(page, 0x180), word(page, 0x184)

    def fx(
        self,
        who: int,
        uaddr: At,
        op: int,
        val: Any = 0,
        utime: Any = 0,
        uaddr2: Any = 0,
        val3: Any = 0,
    ) -> TaskCall:
        return TaskCall(who, SYS_FUTEX, (uaddr, op | self.f, val, utime, uaddr2, val3))

    def wait(self, who: int, uaddr: At) -> TaskCall:
        return self.fx(who, uaddr, abi.FUTEX_WAIT, Current(uaddr))

    def wake(self, uaddr: At, n: int = 1, who: int = MAIN) -> TaskCall:
        return self.fx(who, uaddr, WAKE, n)

    def lock(self, who: int, uaddr: At) -> TaskCall:
        return self.fx(who, uaddr, LOCK_PI)

    def unlock(self, who: int, uaddr: At) -> TaskCall:
        return self.fx(who, uaddr, UNLOCK_PI)

    def zero(self) -> list[Set]:
        return [Set(self.a, 0), Set(self.b, 0)]


def woke(outcomes: list[Outcome | None]) -> list[list[int]]:
    """Who each call woke (per call, in the order of the calls)."""
    return [sorted(k for k, _ in o.woken) for o in outcomes if o is not None]


def results(outcomes: list[Outcome | None]) -> list[object]:
    return [o.result for o in outcomes if o is not None]


def run_scenario(
    tasks: TaskDiffer,
    workers: list[Any],
    steps: list[Any],
    pi_words: tuple[tuple[At, int], ...] = (),
) -> list[Outcome | None]:
    try:
        return tasks.run(workers, steps, pi_words)
    except ScenarioMismatch as exc:
        pytest.fail(f"host and emulator disagree:\n{exc}", pytrace=False)


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_wake_one_at_a_time_is_fifo(tasks: TaskDiffer, kind: str) -> None:
    """Four threads park on one word in turn; single wakes take them in that order (equal
    priorities: FIFO), the fifth wake finds nobody."""
    w = Words(kind)
    steps = [*w.zero(), *(w.wait(k, w.a) for k in range(4)), *(w.wake(w.a) for _ in range(5))]
    out = run_scenario(tasks, [None] * 4, steps)
    assert woke(out)[4:] == [[0], [1], [2], [3], []]
    assert results(out)[4:] == [1, 1, 1, 1, 0]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_wake_several_takes_the_oldest(tasks: TaskDiffer, kind: str) -> None:
    """A wake of 2 takes the two oldest of five waiters; of another word, nobody; of 0,
    one (legacy FUTEX_WAKE wakes at least one); of INT_MAX, the rest."""
    w = Words(kind)
    steps = [
        *w.zero(),
        *(w.wait(k, w.a) for k in range(5)),
        w.wake(w.a, 2),
        w.wake(w.b, INT_MAX),  # another word: nobody
        w.wake(w.a, 0),  # a count <= 0 wakes one
        w.wake(w.a, INT_MAX),
    ]
    out = run_scenario(tasks, [None] * 5, steps)
    assert woke(out)[5:] == [[0, 1], [], [2], [3, 4]]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_wake_bitset_picks_matching_waiters(tasks: TaskDiffer, kind: str) -> None:
    """WAIT_BITSET waiters with bitsets 1, 2, 3, 4 and a plain WAIT (all bits); wakes by
    bitset take the matching ones, oldest first."""
    w = Words(kind)
    bitsets = [1, 2, 3, 4]
    waits = [
        w.fx(k, w.a, abi.FUTEX_WAIT_BITSET, Current(w.a), 0, 0, b) for k, b in enumerate(bitsets)
    ]
    steps = [
        *w.zero(),
        *waits,
        w.wait(4, w.a),
        w.fx(MAIN, w.a, WAKE_BITSET, INT_MAX, 0, 0, 2),  # 2 & {1,2,3,4,ANY}: w1 w2 w4
        w.fx(MAIN, w.a, WAKE_BITSET, 1, 0, 0, 8),  # nobody
        w.fx(MAIN, w.a, WAKE_BITSET, 1, 0, 0, 4),  # w3
        w.fx(MAIN, w.a, WAKE, 1),  # plain wake: ANY, the rest
    ]
    out = run_scenario(tasks, [None] * 5, steps)
    assert woke(out)[5:] == [[1, 2, 4], [], [3], [0]]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
@pytest.mark.parametrize("cmp", [False, True], ids=["requeue", "cmp_requeue"])
def test_tasks_requeue_queues_behind_the_targets_waiters(
    tasks: TaskDiffer, kind: str, cmp: bool
) -> None:
    """w4 waits on B; w0..w3 on A.  Requeue A -> B: wake 1 (w0), move 2 (w1, w2) behind
    w4; then single wakes of B give w4, w1, w2 and of A w3.  CMP_REQUEUE with a stale
    value first: EAGAIN, nothing moves."""
    w = Words(kind)
    if cmp:
        cmd, val3 = abi.FUTEX_CMP_REQUEUE, Current(w.a)
        stale = [w.fx(MAIN, w.a, cmd, 1, 2, w.b, Current(w.a, 1))]
    else:
        cmd, val3, stale = abi.FUTEX_REQUEUE, 0, []
    steps = [
        *w.zero(),
        w.wait(4, w.b),
        *(w.wait(k, w.a) for k in range(4)),
        *stale,
        w.fx(MAIN, w.a, cmd, 1, 2, w.b, val3),
        *(w.wake(w.b) for _ in range(3)),
        w.wake(w.b),
        w.wake(w.a),
    ]
    out = run_scenario(tasks, [None] * 5, steps)
    got = results(out)[5:]
    assert got == [-abi.EAGAIN] * cmp + [3, 1, 1, 1, 0, 1]
    assert woke(out)[5 + cmp :] == [[0], [4], [1], [2], [], [3]]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_requeue_everyone_then_wake_all(tasks: TaskDiffer, kind: str) -> None:
    """nr_wake 0: all three waiters move to B, none wake; a requeue of the now empty A
    moves nobody; a worker (not main) then wakes B's waiters."""
    w = Words(kind)
    steps = [
        *w.zero(),
        *(w.wait(k, w.a) for k in range(3)),
        w.fx(MAIN, w.a, abi.FUTEX_CMP_REQUEUE, 0, INT_MAX, w.b, Current(w.a)),
        w.fx(MAIN, w.a, abi.FUTEX_CMP_REQUEUE, 0, INT_MAX, w.b, Current(w.a)),
        w.wake(w.a, INT_MAX),
        w.wake(w.b, INT_MAX, who=3),
    ]
    out = run_scenario(tasks, [None] * 4, steps)
    assert results(out)[3:] == [3, 0, 0, 3]
    assert woke(out)[3:] == [[], [], [], [0, 1, 2]]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_wake_op_wakes_on_both_words(tasks: TaskDiffer, kind: str) -> None:
    """w0, w1 wait on A, w2, w3 on B (B holds 5).  WAKE_OP(A, 1, B: B += 1, if old == 5)
    wakes w0 and w2 (B is 6 after); again with "if old == 5" wakes only w1; a WAKE_OP
    that sets B = 0 if old > 3 wakes w3."""
    w = Words(kind)
    add_if_5 = abi.FUTEX_OP(abi.FUTEX_OP_ADD, 1, abi.FUTEX_OP_CMP_EQ, 5)
    set0_if_gt3 = abi.FUTEX_OP(abi.FUTEX_OP_SET, 0, abi.FUTEX_OP_CMP_GT, 3)
    steps = [
        Set(w.a, 0),
        Set(w.b, 5),
        w.wait(0, w.a),
        w.wait(1, w.a),
        w.wait(2, w.b),
        w.wait(3, w.b),
        w.fx(MAIN, w.a, abi.FUTEX_WAKE_OP, 1, 1, w.b, add_if_5),
        w.fx(MAIN, w.a, abi.FUTEX_WAKE_OP, 1, 1, w.b, add_if_5),
        w.fx(MAIN, w.a, abi.FUTEX_WAKE_OP, 1, 1, w.b, set0_if_gt3),
    ]
    out = run_scenario(tasks, [None] * 4, steps)
    assert results(out) == [BLOCKS] * 4 + [2, 1, 1]
    assert woke(out)[4:] == [[0, 2], [1], [3]]


@host_has("lock_pi2")  # w2 waits in LOCK_PI2
@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_unlock_pi_hands_the_lock_on_in_fifo_order(tasks: TaskDiffer, kind: str) -> None:
    """The main thread owns a PI word; three workers block in LOCK_PI (w2 in LOCK_PI2):
    FUTEX_WAITERS set.  Each UNLOCK_PI by the owner hands the lock to the oldest waiter
    (the word then names it, FUTEX_WAITERS kept while others wait); a non-owner's unlock
    is EPERM, a TRYLOCK_PI meanwhile EWOULDBLOCK (EDEADLK for the owner)."""
    w = Words(kind)
    steps = [
        Set(w.pi, Tid(MAIN)),
        w.lock(0, w.pi),
        w.lock(1, w.pi),
        w.fx(2, w.pi, LOCK_PI2),
        w.unlock(3, w.pi),  # w3 does not own it: EPERM
        w.fx(3, w.pi, TRYLOCK_PI),  # held: EWOULDBLOCK
        w.fx(MAIN, w.pi, TRYLOCK_PI),  # the owner: EDEADLK
        w.unlock(MAIN, w.pi),  # -> w0
        w.unlock(MAIN, w.pi),  # main no longer owns it: EPERM
        w.fx(0, w.pi, TRYLOCK_PI),  # the new owner: EDEADLK
        w.unlock(0, w.pi),  # -> w1
        w.unlock(1, w.pi),  # -> w2
        w.unlock(2, w.pi),  # nobody waits: 0
        w.fx(3, w.pi, TRYLOCK_PI),  # free: taken
        w.unlock(3, w.pi),
    ]
    out = run_scenario(tasks, [None] * 4, steps, ((w.pi, w.f),))
    assert results(out) == [BLOCKS] * 3 + [
        -abi.EPERM,
        -abi.EWOULDBLOCK,
        -abi.EDEADLK,
        0,
        -abi.EPERM,
        -abi.EDEADLK,
        0,
        0,
        0,
        0,
        0,
    ]
    assert woke(out)[3:] == [[], [], [], [0], [], [], [1], [2], [], [], []]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_requeue_pi_onto_an_owned_lock(tasks: TaskDiffer, kind: str) -> None:
    """Three workers wait in WAIT_REQUEUE_PI on A for PI word P, which the main thread
    owns.  CMP_REQUEUE_PI moves all three onto P's lock (nobody can take it: 3, none
    woken); a plain wake of A finds nobody; then UNLOCK_PI hands P on: main -> w0 -> w1
    -> w2, each returning 0 from its WAIT_REQUEUE_PI owning P."""
    w = Words(kind)

    def wrq(k: int) -> TaskCall:
        return w.fx(k, w.a, WAIT_REQUEUE_PI, Current(w.a), 0, w.pi)

    steps = [
        Set(w.a, 0),
        Set(w.pi, Tid(MAIN)),
        *(wrq(k) for k in range(3)),
        w.fx(MAIN, w.a, CMP_REQUEUE_PI, 1, INT_MAX, w.pi, Current(w.a)),
        w.wake(w.a),
        w.unlock(MAIN, w.pi),
        w.unlock(0, w.pi),
        w.unlock(1, w.pi),
        w.unlock(2, w.pi),
    ]
    out = run_scenario(tasks, [None] * 3, steps, ((w.pi, w.f),))
    assert results(out) == [BLOCKS] * 3 + [3, 0, 0, 0, 0, 0]
    assert woke(out)[3:] == [[], [], [0], [1], [2], []]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_requeue_pi_takes_a_free_lock(tasks: TaskDiffer, kind: str) -> None:
    """P is free: CMP_REQUEUE_PI(nr_wake 1, nr_requeue 1) makes the oldest waiter (w0) take
    P and return, requeues w1 onto P, leaves w2 on A (2); a plain wake of A meets w2, a
    requeue-PI waiter: EINVAL.  w0's unlock hands P to w1; another CMP_REQUEUE_PI moves
    w2 onto P; w1's unlock hands it to w2."""
    w = Words(kind)

    def wrq(k: int) -> TaskCall:
        return w.fx(k, w.a, WAIT_REQUEUE_PI, Current(w.a), 0, w.pi)

    def take(nr_requeue: int) -> TaskCall:
        return w.fx(MAIN, w.a, CMP_REQUEUE_PI, 1, nr_requeue, w.pi, Current(w.a))

    steps = [
        Set(w.a, 0),
        Set(w.pi, 0),
        *(wrq(k) for k in range(3)),
        take(1),
        w.wake(w.a),
        w.unlock(0, w.pi),
        take(INT_MAX),
        w.unlock(1, w.pi),
        w.unlock(2, w.pi),
    ]
    out = run_scenario(tasks, [None] * 3, steps, ((w.pi, w.f),))
    assert results(out) == [BLOCKS] * 3 + [2, -abi.EINVAL, 0, 1, 0, 0]
    assert woke(out)[3:] == [[0], [], [1], [], [2], []]


#: Workers' classes: SCHED_FIFO 10, 30, SCHED_OTHER, SCHED_FIFO 30, 20 (RT waiters queue
#: by priority, the others behind them at MAX_RT_PRIO; equal priorities in FIFO order).
PRIORITIES: list[Any] = [(FIFO, 10), (FIFO, 30), None, (FIFO, 30), (FIFO, 20)]
SCHED_FIFO_UNAVAILABLE = sched_fifo_unavailable(max(p for _, p in filter(None, PRIORITIES)))
needs_sched_fifo = pytest.mark.skipif(
    bool(SCHED_FIFO_UNAVAILABLE),
    reason=f"priority-ordered waking needs SCHED_FIFO threads: {SCHED_FIFO_UNAVAILABLE}",
)
PRIORITY_ORDER = [[1], [3], [4], [0], [2]]


@needs_sched_fifo
@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_wake_in_priority_order(tasks: TaskDiffer, kind: str) -> None:
    w = Words(kind)
    steps = [*w.zero(), *(w.wait(k, w.a) for k in range(5)), *(w.wake(w.a) for _ in range(5))]
    out = run_scenario(tasks, PRIORITIES, steps)
    assert woke(out)[5:] == PRIORITY_ORDER


@needs_sched_fifo
@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_requeue_keeps_priority_order(tasks: TaskDiffer, kind: str) -> None:
    """Requeued waiters keep their priorities in the target's queue: all five move A -> B
    (behind nobody), then single wakes of B go by priority."""
    w = Words(kind)
    steps = [
        *w.zero(),
        *(w.wait(k, w.a) for k in range(5)),
        w.fx(MAIN, w.a, abi.FUTEX_CMP_REQUEUE, 0, INT_MAX, w.b, Current(w.a)),
        *(w.wake(w.b) for _ in range(5)),
    ]
    out = run_scenario(tasks, PRIORITIES, steps)
    assert woke(out)[6:] == PRIORITY_ORDER


@needs_sched_fifo
@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_unlock_pi_hands_the_lock_in_priority_order(tasks: TaskDiffer, kind: str) -> None:
    """PI waiters queue on the lock by priority: the owner's unlock goes to the most urgent
    one (w1, then w3, w4, w0, w2, each unlocking in turn)."""
    w = Words(kind)
    order = [k for [k] in PRIORITY_ORDER]
    steps = [Set(w.pi, Tid(MAIN)), *(w.lock(k, w.pi) for k in range(5)), w.unlock(MAIN, w.pi)]
    steps += [w.unlock(k, w.pi) for k in order]
    out = run_scenario(tasks, PRIORITIES, steps, ((w.pi, w.f),))
    assert woke(out)[5:] == [*PRIORITY_ORDER, []]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_requeue_onto_the_same_word_keeps_the_order(tasks: TaskDiffer, kind: str) -> None:
    """REQUEUE A -> A (the same key): w0 woken, w1 "requeued" where it is (counted: 2);
    single wakes then take w1 before w2 (a requeue that moved w1 to the tail would give
    w2 first).  WAKE_OP with both words A wakes on A twice (once per half)."""
    w = Words(kind)
    always = abi.FUTEX_OP(abi.FUTEX_OP_ADD, 0, abi.FUTEX_OP_CMP_EQ, 0)
    steps = [
        *w.zero(),
        *(w.wait(k, w.a) for k in range(5)),
        w.fx(MAIN, w.a, abi.FUTEX_REQUEUE, 1, 1, w.a),
        w.wake(w.a),
        w.fx(MAIN, w.a, abi.FUTEX_WAKE_OP, 1, 1, w.a, always),
        w.wake(w.a),
    ]
    out = run_scenario(tasks, [None] * 5, steps)
    assert results(out)[5:] == [2, 1, 2, 1]
    assert woke(out)[5:] == [[0], [1], [2, 3], [4]]


def test_tasks_private_and_shared_waiters_on_one_word(tasks: TaskDiffer) -> None:
    """On a MAP_SHARED word, w0 waits PRIVATE and w1 shared: a shared wake takes w1 only,
    a private wake w0 only (two keys for one address)."""
    a = word("SHARED_RW", 0x100)
    steps = [
        Set(a, 0),
        TaskCall(0, SYS_FUTEX, (a, abi.FUTEX_WAIT | PRIVATE, 0, 0, 0, 0)),
        TaskCall(1, SYS_FUTEX, (a, abi.FUTEX_WAIT, 0, 0, 0, 0)),
        TaskCall(MAIN, SYS_FUTEX, (a, WAKE, INT_MAX, 0, 0, 0)),
        TaskCall(MAIN, SYS_FUTEX, (a, WAKE | PRIVATE, INT_MAX, 0, 0, 0)),
    ]
    out = run_scenario(tasks, [None] * 2, steps)
    assert woke(out)[2:] == [[1], [0]]


def test_tasks_file_page_keys_through_several_mappings(tasks: TaskDiffer) -> None:
    """File A's page 0 is mapped shared (FILE_SHARED_RW, FILE_SHARED_RO) and private
    (FILE_PRIV_ALIAS_RW, FILE_PRIV_ALIAS_RO).  Shared waits at the same file offset: w0
    through the shared mapping, w1 through the private read-only one (the page cache page:
    the same inode key), w2 through the private writable one (get_futex_key's write fault
    copies the page: a key of this address space).  A wake through the read-only shared
    mapping takes w0 and w1; w2 only answers a wake at its own address."""
    off = 0x140
    shared, shared_ro = word("FILE_SHARED_RW", off), word("FILE_SHARED_RO", off)
    priv_rw, priv_ro = word("FILE_PRIV_ALIAS_RW", off), word("FILE_PRIV_ALIAS_RO", off)

    def wait(k: int, a: At) -> TaskCall:
        return TaskCall(k, SYS_FUTEX, (a, abi.FUTEX_WAIT, Current(a), 0, 0, 0))

    def wake(a: At) -> TaskCall:
        return TaskCall(MAIN, SYS_FUTEX, (a, WAKE, INT_MAX, 0, 0, 0))

    steps = [wait(0, shared), wait(1, priv_ro), wait(2, priv_rw), wake(shared_ro), wake(priv_ro)]
    steps += [wake(priv_rw)]
    out = run_scenario(tasks, [None] * 3, steps)
    assert woke(out)[3:] == [[0, 1], [], [2]]


@host_has("futex_waitv", "futex2")
@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_futex2_waitv_returns_the_woken_index(tasks: TaskDiffer, kind: str) -> None:
    """w0 sleeps in futex_waitv on (A, B); w1 in futex_wait on B (mask 1), w2 in FUTEX_WAIT
    on B.  futex_wake(B, mask 2) meets w0 (any mask: index 1) and w2 (a futex(2) waiter's
    bitset is all bits), not w1; futex_requeue moves w1 from B to A; FUTEX_WAKE of A
    takes it."""
    w = Words(kind)
    f2 = F2_U32 | (F2_PRIVATE if w.f else 0)
    vec = word("PRIV_RW", 0x400)

    def entry(i: int, a: At) -> list[Set]:
        base = 0x400 + 24 * i
        return [
            Set(word("PRIV_RW", base), 0),
            Set(word("PRIV_RW", base + 4), 0),
            Set(word("PRIV_RW", base + 8), Ptr(a)),
            Set(word("PRIV_RW", base + 12), Ptr(a, high=True)),
            Set(word("PRIV_RW", base + 16), f2),
            Set(word("PRIV_RW", base + 20), 0),
        ]

    steps = [
        *w.zero(),
        *entry(0, w.a),
        *entry(1, w.b),
        TaskCall(0, SYS_WAITV, (vec, 2, 0, 0, 0)),
        TaskCall(1, SYS_WAIT, (w.b, 0, 1, f2, 0, 0)),
        w.wait(2, w.b),
        TaskCall(MAIN, SYS_WAKE, (w.b, 2, INT_MAX, f2)),
        # futex_requeue's vector is (from, to): B, then A; wake 0, move 1
        *entry(0, w.b),
        *entry(1, w.a),
        TaskCall(MAIN, SYS_REQUEUE, (vec, 0, 0, 1)),
        w.wake(w.a),
    ]
    out = run_scenario(tasks, [None] * 3, steps)
    calls = [o for o in out if o is not None]
    assert results(out) == [BLOCKS] * 3 + [2, 1, 1]
    assert woke(out)[3:] == [[0, 2], [], [1]]
    assert sorted(calls[3].woken) == [(0, 1), (2, 0)]  # futex_waitv: index 1


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_plain_wake_of_pi_waiters_is_einval(tasks: TaskDiffer, kind: str) -> None:
    """FUTEX_WAKE (and REQUEUE) meeting a LOCK_PI waiter: EINVAL, nobody woken; the lock
    still goes to it on unlock."""
    w = Words(kind)
    steps = [
        Set(w.pi, Tid(MAIN)),
        w.lock(0, w.pi),
        w.wake(w.pi),
        w.fx(MAIN, w.pi, abi.FUTEX_REQUEUE, 0, 1, w.b),
        w.unlock(MAIN, w.pi),
        w.unlock(0, w.pi),
    ]
    out = run_scenario(tasks, [None], steps, ((w.pi, w.f),))
    assert results(out) == [BLOCKS, -abi.EINVAL, -abi.EINVAL, 0, 0]
    assert woke(out) == [[], [], [], [0], []]


@needs_sched_fifo
@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_requeue_pi_keeps_priority_order(tasks: TaskDiffer, kind: str) -> None:
    """Requeue-PI waiters of several priorities moved onto an owned PI lock: the lock goes
    to them by priority."""
    w = Words(kind)
    steps = [Set(w.a, 0), Set(w.pi, Tid(MAIN))]
    steps += [w.fx(k, w.a, WAIT_REQUEUE_PI, Current(w.a), 0, w.pi) for k in range(5)]
    steps += [w.fx(MAIN, w.a, CMP_REQUEUE_PI, 1, INT_MAX, w.pi, Current(w.a))]
    steps += [w.unlock(MAIN, w.pi), *(w.unlock(k, w.pi) for [k] in PRIORITY_ORDER)]
    out = run_scenario(tasks, PRIORITIES, steps, ((w.pi, w.f),))
    assert woke(out)[5:] == [[], *PRIORITY_ORDER, []]


@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_mixed_plain_and_requeue_pi_waiters(tasks: TaskDiffer, kind: str) -> None:
    """A holds plain waiters and requeue-PI waiters in turn: w0 WAIT, w1 WAIT_REQUEUE_PI,
    w2 WAIT, w3 WAIT_REQUEUE_PI.  A wake stops at the first requeue-PI waiter with EINVAL,
    the plain waiters before it woken all the same; a REQUEUE likewise; CMP_REQUEUE_PI
    stops at a plain waiter (EINVAL) after taking P for the requeue-PI ones before it."""
    w = Words(kind)

    def wrq(k: int) -> TaskCall:
        return w.fx(k, w.a, WAIT_REQUEUE_PI, Current(w.a), 0, w.pi)

    def take(nr_requeue: int) -> TaskCall:
        return w.fx(MAIN, w.a, CMP_REQUEUE_PI, 1, nr_requeue, w.pi, Current(w.a))

    steps = [
        Set(w.a, 0),
        Set(w.pi, 0),
        w.wait(0, w.a),
        wrq(1),
        w.wait(2, w.a),
        wrq(3),
        w.wake(w.a, INT_MAX),  # w0 woken, then w1: EINVAL
        w.fx(MAIN, w.a, abi.FUTEX_REQUEUE, 1, INT_MAX, w.b),  # w1 first: EINVAL
        take(INT_MAX),  # w1 takes P, then w2: EINVAL
        w.wake(w.a, 1),  # w2
        take(INT_MAX),  # w3 requeued onto P (w1 owns it): 1
        w.unlock(1, w.pi),  # -> w3
        w.unlock(3, w.pi),
    ]
    out = run_scenario(tasks, [None] * 4, steps, ((w.pi, w.f),))
    assert results(out)[4:] == [-abi.EINVAL, -abi.EINVAL, -abi.EINVAL, 1, 1, 0, 0]
    assert woke(out)[4:] == [[0], [], [1], [2], [], [3], []]


@host_has("futex2")  # a worker waits in futex_wait
@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_signals_end_or_restart_blocked_calls(tasks: TaskDiffer, kind: str) -> None:
    """SIGUSR1 (a handler without SA_RESTART) to each kind of blocked worker: FUTEX_WAIT,
    WAIT_BITSET and futex_wait end with EINTR; LOCK_PI restarts (still blocked, its lock
    handed over later); WAIT_REQUEUE_PI restarts while on its condition word (again
    blocked; after its word changed, EAGAIN), and once requeued onto the PI lock ends with
    EWOULDBLOCK."""
    w = Words(kind)
    f2 = F2_U32 | (F2_PRIVATE if w.f else 0)

    def wrq(k: int) -> TaskCall:
        return w.fx(k, w.a, WAIT_REQUEUE_PI, Current(w.a), 0, w.pi)

    steps = [
        Set(w.a, 0),
        Set(w.b, 0),
        Set(w.pi, Tid(MAIN)),
        w.wait(0, w.b),
        w.fx(1, w.b, abi.FUTEX_WAIT_BITSET, Current(w.b), 0, 0, 6),
        TaskCall(2, SYS_WAIT, (w.b, 0, ANY, f2, 0, 0)),
        w.lock(3, w.pi),
        wrq(4),
        wrq(5),
        *(Signal(k) for k in range(6)),  # EINTR x3, restart x3
        Set(w.a, 1),
        Signal(5),  # restarts: the word changed, EAGAIN
        w.fx(MAIN, w.a, CMP_REQUEUE_PI, 1, 1, w.pi, Current(w.a)),  # w4 onto P: 1
        Signal(4),  # requeued: EWOULDBLOCK
        w.unlock(MAIN, w.pi),  # -> w3
        w.unlock(3, w.pi),
    ]
    out = run_scenario(tasks, [None] * 6, steps, ((w.pi, w.f),))
    eintr, again, wouldblock = -abi.EINTR, -abi.EAGAIN, -abi.EWOULDBLOCK
    got = results(out)[6:]
    assert got == [eintr, eintr, eintr, BLOCKS, BLOCKS, BLOCKS, again, 1, wouldblock, 0, 0]
    assert woke(out)[-2:] == [[3], []]


@needs_sched_fifo
@pytest.mark.parametrize("kind", list(KEY_KINDS))
def test_tasks_priority_inheritance_reorders_the_lock_waiters(tasks: TaskDiffer, kind: str) -> None:
    """A chain: w0 (FIFO 10) owns P1 and waits for P2 (the main thread's) behind nobody,
    w1 (FIFO 20) queues for P2 ahead of it; w2 (FIFO 30) waits for P1 and lends w0 its
    priority, which moves w0 ahead of w1 on P2's lock: main's unlock of P2 goes to w0."""
    w = Words(kind)
    p1, p2 = w.pi, w.pi2
    steps = [
        Set(p1, 0),
        Set(p2, Tid(MAIN)),
        w.lock(0, p1),
        w.lock(0, p2),
        w.lock(1, p2),
        w.lock(2, p1),
        w.unlock(MAIN, p2),  # -> w0 (boosted to 30), not w1 (20)
        w.unlock(0, p1),  # -> w2
        w.unlock(0, p2),  # -> w1
        w.unlock(2, p1),
        w.unlock(1, p2),
    ]
    workers: list[Any] = [(FIFO, 10), (FIFO, 20), (FIFO, 30)]
    out = run_scenario(tasks, workers, steps, ((p1, w.f), (p2, w.f)))
    assert results(out) == [0, BLOCKS, BLOCKS, BLOCKS, 0, 0, 0, 0, 0]
    assert woke(out)[4:] == [[0], [2], [1], [], []]


#: Seeded random multi-task scripts run in CI (``RandomScript``); half of them with
#: workers of several priorities where SCHED_FIFO is allowed.
RANDOM_SCRIPTS = 60
SCRIPT_PRIORITIES: list[Any] = [(FIFO, 10), None, (FIFO, 20), (FIFO, 10)]


def test_tasks_random_scripts(tasks: TaskDiffer) -> None:
    """Random scripts: idle workers wait (FUTEX_WAIT, WAIT_BITSET, futex_wait,
    futex_waitv, LOCK_PI, WAIT_REQUEUE_PI), the main thread or an idle worker wakes,
    requeues, wake_ops, unlocks; every step compared as in the scripted scenarios."""
    before = tasks.steps
    for seed in range(RANDOM_SCRIPTS):
        script = RandomScript(seed)
        workers = [None] * script.workers
        if seed % 2 and not SCHED_FIFO_UNAVAILABLE:
            workers = SCRIPT_PRIORITIES
        try:
            tasks.run(workers, script, ((SCRIPT_PI, script.pi_flag),))
        except ScenarioMismatch as exc:
            pytest.fail(f"RandomScript({seed}): host and emulator disagree:\n{exc}", pytrace=False)
    assert tasks.steps - before >= RANDOM_SCRIPTS * 20


def test_tasks_scenarios_ran(tasks: TaskDiffer) -> None:
    """The scenarios above made their calls and woke workers (a count for the notes)."""
    if tasks.steps == 0:
        pytest.skip("the scenarios did not run")
    print(f"\n{tasks.steps} calls in multi-task scenarios, {tasks.wakeups} workers woken")
    assert tasks.wakeups >= 50


# -- across fork: a real child beside an emulated one ---------------------------------------------


def fs(uaddr: At, op: int, **kw: Any) -> ForkSide:
    return ForkSide(uaddr, op, **kw)


SH, SH2 = word("SHARED_RW", 0x200), word("SHARED_RW", 0x204)
FSH, FSH_ALIAS = word("FILE_SHARED_RW", 0x200), word("FILE_SHARED_RO", 0x200)
PRIV = word("PRIV_RW", 0x200)
FPRIV = word("FILE_PRIV_RW", 0x200)
WAIT_SH = fs(SH, abi.FUTEX_WAIT, val=Current(SH))
INC_IF_0 = abi.FUTEX_OP(abi.FUTEX_OP_ADD, 1, abi.FUTEX_OP_CMP_EQ, 0)
EINTR = -abi.EINTR
#: name -> (case, what the host must see: the waker's results, signalled, the sleeper's)
FORK_CASES: dict[str, tuple[ForkCase, tuple[list[int], bool, list[int]]]] = {
    "shared-anon-child-sleeps": (
        ForkCase("child", WAIT_SH, (fs(SH, WAKE, val=1),)),
        ([1], False, [0]),
    ),
    "shared-anon-parent-sleeps": (
        ForkCase("parent", WAIT_SH, (fs(SH, WAKE, val=1),)),
        ([1], False, [0]),
    ),
    "shared-file-alias-child-sleeps": (
        ForkCase("child", fs(FSH, abi.FUTEX_WAIT, val=Current(FSH)), (fs(FSH_ALIAS, WAKE, val=1),)),
        ([1], False, [0]),
    ),
    "shared-file-parent-sleeps": (
        ForkCase("parent", fs(FSH, abi.FUTEX_WAIT, val=Current(FSH)), (fs(FSH, WAKE, val=1),)),
        ([1], False, [0]),
    ),
    "requeue-across-fork": (
        ForkCase(
            "child",
            WAIT_SH,
            (
                fs(SH, abi.FUTEX_CMP_REQUEUE, val=0, utime=1, uaddr2=SH2, val3=Current(SH)),
                fs(SH, WAKE, val=1),
                fs(SH2, WAKE, val=1),
            ),
        ),
        ([1, 0, 1], False, [0]),
    ),
    "wake-op-by-the-child": (
        ForkCase(
            "parent",
            WAIT_SH,
            (fs(SH, abi.FUTEX_WAKE_OP, val=1, utime=1, uaddr2=SH2, val3=INC_IF_0),),
            stores=((SH2, 0),),
        ),
        ([1], False, [0]),
    ),
    "private-op-child-sleeps": (
        ForkCase(
            "child",
            fs(SH, abi.FUTEX_WAIT | PRIVATE, val=Current(SH)),
            (fs(SH, WAKE | PRIVATE, val=1), fs(SH, WAKE, val=1)),
        ),
        ([0, 0], True, [EINTR]),
    ),
    "private-op-parent-sleeps": (
        ForkCase(
            "parent",
            fs(SH, abi.FUTEX_WAIT | PRIVATE, val=Current(SH)),
            (fs(SH, WAKE | PRIVATE, val=1), fs(SH, WAKE, val=1)),
        ),
        ([0, 0], True, [EINTR]),
    ),
    "private-anon-page-child-sleeps": (
        ForkCase("child", fs(PRIV, abi.FUTEX_WAIT, val=Current(PRIV)), (fs(PRIV, WAKE, val=1),)),
        ([0], True, [EINTR]),
    ),
    "private-anon-page-parent-sleeps": (
        ForkCase("parent", fs(PRIV, abi.FUTEX_WAIT, val=Current(PRIV)), (fs(PRIV, WAKE, val=1),)),
        ([0], True, [EINTR]),
    ),
    "private-file-page-child-sleeps": (
        ForkCase("child", fs(FPRIV, abi.FUTEX_WAIT, val=Current(FPRIV)), (fs(FPRIV, WAKE, val=1),)),
        ([0], True, [EINTR]),
    ),
    "pi-lock-across-fork": (
        ForkCase(
            "child",
            fs(SH, LOCK_PI),
            (fs(SH, UNLOCK_PI),),
            after=(fs(SH, UNLOCK_PI),),
            stores=((SH, Tid(MAIN)),),
        ),
        ([0], False, [0, 0]),
    ),
}


@pytest.mark.parametrize("name", list(FORK_CASES))
def test_fork(differ: Differ, name: str) -> None:
    """A real fork and an emulated one: shared futexes on MAP_SHARED memory (anonymous, or
    a file through two mappings) meet across it; private futexes, and shared ones on
    private memory (copied on write: keyed by the address space), do not."""
    case, want = FORK_CASES[name]
    try:
        host, emulated = run_fork_case(differ, case)
    except ScenarioMismatch as exc:
        pytest.fail(f"host and emulator disagree:\n{exc}", pytrace=False)
    assert host == emulated, f"host {host} != emulator {emulated}"
    assert (host.wakes, host.signalled, host.sleeper) == want


# -- failure-collecting mode ----------------------------------------------------------------


def collect(n: int, seed: int) -> int:
    """Run ``n`` fresh sequences (every kind in turn, from ``seed``) without stopping; print
    every distinct disagreement (shrunk) and what the calls returned.  Then the explicit
    command x flag cases."""
    found: dict[tuple[object, ...], Mismatch] = {}
    hits: collections.Counter[tuple[object, ...]] = collections.Counter()
    kinds = ["mixed", "pi", "futex2", "mixed", "pi", "futex2", "waits", "wake_op_cmp_requeue"]
    with host_layout() as (layout, watchdog):
        differ = Differ(layout, watchdog)
        for i in range(n):
            bad = differ.run(generated(kinds[i % len(kinds)], i, seed))
            if bad is not None:
                sig = bad.signature()
                hits[sig] += 1
                if sig not in found:
                    found[sig] = shrink(differ, bad)
        for cmd, flags in COMBOS:
            cases = argument_sets(cmd | flags) + special_argument_sets(cmd | flags)
            for label, steps in cases:
                bad = differ.run(steps)
                if bad is not None:
                    bad.detail += f" [explicit case {_combo_id((cmd, flags))}/{label}]"
                    sig = bad.signature()
                    hits[sig] += 1
                    found.setdefault(sig, bad)
    print(
        f"seed {seed:#x}: {differ.sequences} sequences, {differ.calls} calls, "
        f"{differ.skipped} skipped; sequences with PI calls {differ.pi_sequences}, "
        f"requeue-PI calls {differ.requeue_pi_sequences}, futex2 calls "
        f"{differ.futex2_sequences}; {differ.peer_ended} waits ended by the peer, refused: "
        f"{dict(differ.peer_refused)}"
    )
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


def replay(kind: str, index: int, seed: int) -> int:
    """Re-run sequence ``index`` of ``kind`` (CI's seed unless given); print it and the
    disagreement, if any."""
    steps = generated(kind, index, seed)
    with host_layout() as (layout, watchdog):
        differ = Differ(layout, watchdog)
        bad = differ.run(steps)
        print("\n".join(f"[{i}] {s!r}" for i, s in enumerate(steps)))
        print("agree" if bad is None else f"disagree:\n{shrink(differ, bad)}")
    return 0 if bad is None else 1


def collect_scripts(n: int, seed: int) -> int:
    """Run ``n`` random multi-task scripts (``RandomScript``) from ``seed``; print each
    disagreement."""
    bad = 0
    fifo = not SCHED_FIFO_UNAVAILABLE
    with host_layout() as (layout, watchdog):
        tasks = TaskDiffer(Differ(layout, watchdog))
        for i in range(n):
            script = RandomScript((seed << 20) + i)
            workers = SCRIPT_PRIORITIES if fifo and i % 2 else [None] * script.workers
            try:
                tasks.run(workers, script, ((SCRIPT_PI, script.pi_flag),))
            except ScenarioMismatch as exc:
                bad += 1
                print("=" * 78)
                print(f"RandomScript({script.seed:#x}), workers {workers}:\n{exc}")
    print(f"seed {seed:#x}: {n} scripts, {tasks.steps} calls, {tasks.wakeups} wakeups; {bad} bad")
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=collect.__doc__)
    parser.add_argument("n", nargs="?", type=int, default=5000, help="sequences to run")
    parser.add_argument("--seed", type=lambda s: int(s, 0), help="default: a fresh one")
    parser.add_argument("--replay", metavar="KIND:INDEX", help="re-run one CI sequence")
    parser.add_argument("--scripts", action="store_true", help="N random multi-task scripts")
    args = parser.parse_args(argv)
    if args.replay:
        kind, _, index = args.replay.partition(":")
        return replay(kind, int(index), CI_SEED if args.seed is None else args.seed)
    seed = int.from_bytes(os.urandom(3), "little") if args.seed is None else args.seed
    if args.scripts:
        return collect_scripts(args.n, seed)
    return collect(args.n, seed)


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
