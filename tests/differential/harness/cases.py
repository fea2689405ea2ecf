"""The explicit single-task cases, every command x flag combination (``COMBOS``): the
cases every command gets (``argument_sets``) and the PI and requeue-PI ones
(``special_argument_sets``), each compared in full.
"""

from __future__ import annotations

from futex.linux import abi
from tests.differential.harness.cases_pi import pi_argument_sets
from tests.differential.harness.cases_plain import argument_sets
from tests.differential.harness.cases_requeue_pi import requeue_pi_argument_sets
from tests.differential.harness.steps import PI_COMMANDS, Step
from tests.differential.harness.strategies import CLOCK_RT, CMP_REQUEUE_PI, PRIVATE, WAIT_REQUEUE_PI

__all__ = [
    "ALL_COMMANDS",
    "COMBOS",
    "UNKNOWN_COMMANDS",
    "argument_sets",
    "combo_id",
    "special_argument_sets",
]

UNKNOWN_COMMANDS = (16, 0x7F, 0x200, 0x7FFFFE7F, 0xFFFFFE7F)
ALL_COMMANDS = list(range(16)) + list(UNKNOWN_COMMANDS)


def combo_id(combo: tuple[int, int]) -> str:
    """A combination's test id: the command's name, the key kind, the clock."""
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
