"""Differential tests, several tasks, futex keys: which waiters a wake meets through
another key kind (PRIVATE and shared waiters on one word) or another mapping of the same
file page (shared, private read-only, private copied on write).

Multi-task: real threads parked on the layout's words beside emulated tasks parked on the
same words (``harness.tasks``); the same calls on both; results, who woke and the words must
agree.
"""

from __future__ import annotations

import pytest

from tests.differential.harness.availability import UNAVAILABLE

if UNAVAILABLE:  # pragma: no cover - other hosts, or the extension not built
    pytest.skip(UNAVAILABLE, allow_module_level=True)

from futex.linux import abi
from tests.differential.harness.scenarios import run_scenario, woke
from tests.differential.harness.steps import SYS_FUTEX, At, Current, word
from tests.differential.harness.strategies import INT_MAX, PRIVATE, WAKE
from tests.differential.harness.tasks import MAIN, Set, TaskCall, TaskDiffer


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
