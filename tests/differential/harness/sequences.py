"""The single-task sequences: mixed calls and stores, PI sequences (a PI chunk and a
requeue-PI chunk, then more), futex2 sequences; and the generated runs (``BULK``: kind ->
generator and count in CI, each sequence with a seed of its own, so that any one can be
re-run alone).
"""

from __future__ import annotations

import random
from typing import Any

from futex.linux import abi
from tests.differential.harness import gen as g
from tests.differential.harness.steps import Step
from tests.differential.harness.strategies import COMMANDS, weighted
from tests.differential.harness.strategies_calls import (
    calls,
    pi_calls,
    pi_chunks,
    requeue_pi_chunks,
    stores,
)
from tests.differential.harness.strategies_futex2 import futex2_calls, futex2_chunks

__all__ = [
    "BULK",
    "CI_SEED",
    "flatten",
    "futex2_sequences",
    "generated",
    "one",
    "pi_sequences",
    "sequence_rng",
    "sequences",
]


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


#: The generated runs: kind -> (generator, sequences in CI).  Each sequence of a kind has
#: its own seed (``sequence_rng``), so any one can be re-run alone (``--replay``).
BULK: dict[str, tuple[g.Gen[list[Step]], int]] = {
    "mixed": (sequences(COMMANDS, futex2=True), 4000),
    "waits": (sequences([abi.FUTEX_WAIT, abi.FUTEX_WAIT_BITSET], max_size=6), 800),
    "wake_op_cmp_requeue": (sequences([abi.FUTEX_WAKE_OP, abi.FUTEX_CMP_REQUEUE], max_size=6), 800),
    "pi": (pi_sequences(), 4000),
    "futex2": (futex2_sequences(), 4000),
}
#: CI's seed (fixed: the coverage assertions of ``test_generated`` must not flake).
CI_SEED = 0x5EED


def sequence_rng(kind: str, index: int, seed: int = CI_SEED) -> random.Random:
    return random.Random((seed << 40) | (list(BULK).index(kind) << 32) | index)


def generated(kind: str, index: int, seed: int = CI_SEED) -> list[Step]:
    """Sequence ``index`` of ``kind`` for ``seed``."""
    steps: list[Step] = BULK[kind][0].example(sequence_rng(kind, index, seed))
    return steps
