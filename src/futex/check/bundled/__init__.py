"""The bundled futex algorithms: classic broken ones the checker must find, and their
correct twins it must pass (checker_design §6).

``ALL`` maps each name to an :class:`Entry` (``entry.scenario`` is a
:class:`futex.check.Scenario`; ``entry.kind`` the failure its designated strategy
``entry.strategy()`` must find, or None for a twin that must pass ``DFS(preemptions=
entry.preemptions)`` completely plus ``entry.pct`` PCT schedules).  ``python -m futex check
bundled:<name>`` checks one, ``--bundled`` all of them.

======================================  =====================================================
module                                  algorithms
======================================  =====================================================
:mod:`~futex.check.bundled.mutexes`     Drepper's takes 1-3, unlock without a wake, a two-state
                                        lock, fastipc's owner field, a PI word stored 0
:mod:`~futex.check.bundled.waits`       fastipc's semaphore, event (EAGAIN) and timed wait;
                                        musl's pthread_once (swap vs cas)
:mod:`~futex.check.bundled.condvars`    sequence read after unlocking, musl's flag ABA, a
                                        requeue onto an uncontended mutex, glibc's
                                        pre-2.25 signal stealing
:mod:`~futex.check.bundled.sync`        every futex.sync primitive (``SYNC``, not in ``ALL``)
======================================  =====================================================
"""

from __future__ import annotations

from futex.check.bundled._base import Entry
from futex.check.bundled.condvars import ENTRIES as _CONDVARS
from futex.check.bundled.mutexes import ENTRIES as _MUTEXES
from futex.check.bundled.waits import ENTRIES as _WAITS

__all__ = ["ALL", "BROKEN", "TWINS", "Entry", "get"]

#: Every bundled entry by name, broken ones first in checker_design §6's order.
ALL: dict[str, Entry] = {}

_ORDER = (
    "semaphore_no_waiter_count", "mutex_unlock_no_wake", "mutex_two_state", "drepper_take1",
    "condvar_seq_after_unlock", "condvar_flag_aba", "condvar_requeue_uncontended",
    "owner_field_race", "pi_unlock_store0", "timed_wait_rearm", "event_eagain_false",
    "once_swap_reverts", "condvar_signal_steal",
)


def _register() -> None:
    entries = {e.name: e for e in (*_MUTEXES, *_WAITS, *_CONDVARS)}
    for name in _ORDER:
        ALL[name] = entries.pop(name)
    for name, entry in entries.items():
        if entry.broken:
            ALL[name] = entry
    for name, entry in entries.items():
        if not entry.broken:
            ALL[name] = entry
    for entry in ALL.values():
        if entry.twin is not None and entry.twin not in ALL:
            raise RuntimeError(f"bundled {entry.name!r} names a twin {entry.twin!r} that is "
                               "not bundled")


_register()

#: The broken algorithms (each must be found by its designated strategy).
BROKEN: tuple[str, ...] = tuple(n for n, e in ALL.items() if e.broken)
#: The correct twins (each must pass its bound).
TWINS: tuple[str, ...] = tuple(n for n, e in ALL.items() if not e.broken)


def get(name: str) -> Entry:
    """The entry ``name`` of :data:`ALL`, or of the futex.sync scenarios
    (:data:`futex.check.bundled.sync.SYNC`); KeyError listing the names otherwise."""
    entry = ALL.get(name)
    if entry is not None:
        return entry
    from futex.check.bundled.sync import SYNC

    entry = SYNC.get(name)
    if entry is None:
        raise KeyError(f"no bundled scenario {name!r}; bundled: {', '.join((*ALL, *SYNC))}")
    return entry
