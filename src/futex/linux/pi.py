"""PI futexes: FUTEX_LOCK_PI / LOCK_PI2 / TRYLOCK_PI / UNLOCK_PI and requeue-PI.

(Placeholder: implemented by the PI work of the PI/robust issue.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from futex.linux.kernel import Task

__all__ = ["exit_pi_state_list"]


def exit_pi_state_list(task: Task) -> None:
    """Hand on every PI futex the exiting ``task`` still owns (Linux
    ``exit_pi_state_list``): the top waiter gets the lock; OWNER_DIED is set."""
