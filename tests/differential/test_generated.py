"""Differential tests, single task, generated: the same call sequences on the emulated
futex(2) and futex2 calls and on the host kernel (Linux, x86-64, reached through
``futex.native``'s raw entries), over the same mappings at the same addresses (see
``harness.layout``); every return value and every readable page must agree after every
step.

The sequences come from ``harness.strategies`` (and ``strategies_calls``,
``strategies_futex2``, ``sequences``), valid and invalid arguments alike: the bulk
(``test_generated_sequences``, over 10,000 sequences) straight from seeded
``random.Random`` s, cheap and the same on every run; a smaller share through Hypothesis,
derandomized (``test_hypothesis_*``), which shrinks what it finds.  Then a check that they
reached every outcome a single task can see.

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

A fresh random search outside the suite: ``python -m tests.differential.harness.search N
[--seed S]``; ``--replay KIND:INDEX`` re-runs one sequence of ``test_generated_sequences``.
"""

from __future__ import annotations

import collections
import os

import pytest

from tests.differential.harness.availability import UNAVAILABLE

if UNAVAILABLE:  # pragma: no cover - other hosts, or the extension not built
    pytest.skip(UNAVAILABLE, allow_module_level=True)

from hypothesis import HealthCheck, given, settings

from futex.linux import abi
from futex.linux.host import probe
from tests.differential.harness.differ import Differ
from tests.differential.harness.mismatch import Mismatch, shrink
from tests.differential.harness.sequences import (
    BULK,
    futex2_sequences,
    generated,
    pi_sequences,
    sequences,
)
from tests.differential.harness.steps import Step
from tests.differential.harness.strategies import COMMANDS


def check(differ: Differ, steps: list[Step]) -> None:
    bad = differ.run(steps)
    if bad is not None:
        pytest.fail(f"host and emulator disagree:\n{bad}", pytrace=False)


#: Sequences run per test, by test (the coverage test checks they all ran, in full).
GENERATED: collections.Counter[str] = collections.Counter()


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
        for (name, result), n in differ.tally.outcomes.items():
            base = (name.split("|")[0], result)
            counts[base] = counts.get(base, 0) + n
        for (name, result), n in sorted(counts.items(), key=lambda kv: kv[1]):
            print(f"{n:6} {name} {result}")
    for (name, result), _ in differ.tally.outcomes.items():
        seen.setdefault(name.split("|")[0], set()).add(result)
    blocking = {"blocks", -abi.ETIMEDOUT, -abi.EAGAIN, -abi.EFAULT, -abi.EINVAL}
    assert blocking <= seen["WAIT"] and blocking <= seen["WAIT_BITSET"], seen
    for name in ("WAKE", "WAKE_BITSET", "REQUEUE", "CMP_REQUEUE", "WAKE_OP"):
        assert {0, -abi.EFAULT, -abi.EINVAL, -abi.ENOSYS} <= seen[name], (name, seen[name])
    assert -abi.EAGAIN in seen["CMP_REQUEUE"], seen["CMP_REQUEUE"]
    assert seen["FD"] == {-abi.ENOSYS}, seen["FD"]
    # PI: at least 2,000 sequences ran PI calls on both sides, and every outcome a
    # single task (and the idle peer) can see showed up
    assert differ.tally.pi_sequences >= 2000, (differ.tally.pi_sequences, differ.tally.pi_unsafe)
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
    assert differ.tally.requeue_pi_sequences >= 2000, differ.tally.requeue_pi_sequences
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
    assert differ.tally.futex2_sequences >= 2000, differ.tally.futex2_sequences
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
