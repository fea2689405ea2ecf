"""What the differ's parts share: :class:`Context` (the host layout, the symbols resolved
against it, the host's answers and the tally) and :class:`Tally`, what a differ's runs did.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from tests.differential.harness.host_layout import HostLayout
from tests.differential.harness.oracle import HostOracle
from tests.differential.harness.steps import Symbols

__all__ = [
    "Context",
    "Tally",
]


@dataclass
class Tally:
    """What a differ's runs did: counts for the tests' coverage assertions and the search's
    report, and the outcomes each call saw."""

    calls: int = 0
    sequences: int = 0
    skipped: int = 0
    #: PI calls skipped because the word might name a task of the host's
    pi_unsafe: int = 0
    #: PI locks naming the peer skipped because the host would block for good
    pi_blocking: int = 0
    #: sequences in which at least one PI lock call (LOCK_PI, UNLOCK_PI, TRYLOCK_PI,
    #: LOCK_PI2), requeue-PI call, futex2 call ran on both sides
    pi_sequences: int = 0
    requeue_pi_sequences: int = 0
    futex2_sequences: int = 0
    #: blocked calls ended by the peer's calls, and why the others were not
    peer_ended: int = 0
    peer_refused: collections.Counter[str] = field(default_factory=collections.Counter)
    #: calls made on the host with an expired timeout instead of their own, whose
    #: deadline had passed on the emulated clock (advanced by the harness) only
    expired_instead: int = 0
    #: (command, result) -> count, for a look at what the sequences exercised
    outcomes: collections.Counter[tuple[str, object]] = field(default_factory=collections.Counter)
    #: the kinds of calls ("pi", "requeue_pi", "futex2") the current sequence ran on both
    #: sides
    ran: set[str] = field(default_factory=set)

    def start_sequence(self) -> None:
        self.sequences += 1
        self.ran = set()

    def end_sequence(self) -> None:
        self.pi_sequences += "pi" in self.ran
        self.requeue_pi_sequences += "requeue_pi" in self.ran
        self.futex2_sequences += "futex2" in self.ran


@dataclass(frozen=True)
class Context:
    """What the differ's parts share."""

    layout: HostLayout
    symbols: Symbols
    host: HostOracle
    tally: Tally
