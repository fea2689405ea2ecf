"""futex.sync.Once: run a function once across threads and processes, robustly.

The design is sync_design §1.8 (Rust std ``library/std/src/sys/sync/once/futex.rs`` with
its POISONED state detected by the kernel: the word is a robust lock word whose holder is
the runner, COMPLETE = 0x3FFFFFFF).  The cases are §5's "Once / header" row: N racers run
the function once; a killed initialiser reruns it (``poisoned``); plus Rust's
"a panicking closure lets the next caller run" (here: an exception).
"""

from __future__ import annotations

from typing import Any

import pytest

from futex.sync.once import COMPLETE, Once
from tests.support import wait_until
from tests.sync.harness import Env

WORD = 16


def test_racers_run_the_function_once(env: Env) -> None:
    """Four callers race (threads, or forked processes): the function runs once; the
    one that ran it gets True, the others False after it completed (Rust Once::call_once:
    "guaranteed that any memory writes performed by the executed closure can be reliably
    observed by other threads at this point")."""
    once = env.make(Once)
    runs, gate = env.shared(), env.shared()

    def caller(once: Any) -> tuple[bool, int]:
        gate.wait_for(1)
        ran = once.call_once(lambda: runs.add(1))
        return ran, runs.load()

    handles = [env.start(caller, once) for _ in range(4)]
    gate.set(1)
    results = [h.result() for h in handles]
    assert sorted(ran for ran, _ in results) == [False, False, False, True]
    assert all(seen == 1 for _, seen in results)
    assert once.done and runs.load() == 1
    assert int.from_bytes(env.read(once.offset + WORD, 4), "little") == COMPLETE
    assert once.call_once(lambda: runs.add(1)) is False


def test_an_exception_lets_the_next_caller_run(kernel_env: Env) -> None:
    """A function that raises leaves the Once not done: the exception propagates, and the
    next caller runs the function (not poisoned: nobody died)."""
    env = kernel_env
    once = env.make(Once)

    def boom() -> None:
        raise KeyError("first")

    with pytest.raises(KeyError):
        once.call_once(boom)
    assert not once.done
    seen: list[bool] = []
    assert once.call_once_force(seen.append) is True
    assert seen == [False] and once.done


def test_a_waiter_sleeps_until_the_runner_completes(kernel_env: Env) -> None:
    """A caller that finds the function running sleeps (as on a held Mutex) and returns
    False once it completed; it never runs the function itself."""
    env = kernel_env
    once = env.make(Once)
    gate, runs = env.shared(), env.shared()

    def slow() -> None:
        runs.add(1)
        gate.wait_for(1)

    runner = env.start(lambda o: o.call_once(slow), once)
    wait_until(lambda: runs.load() == 1, "the runner is inside the function")
    waiter = env.start(lambda o: o.call_once(lambda: runs.add(1)), once)
    env.wait_blocked(waiter, "the second caller sleeps on the running Once")
    gate.set(1)
    assert runner.result() is True
    assert waiter.result() is False
    assert runs.load() == 1


def test_a_killed_runner_makes_the_next_caller_rerun_poisoned(env: Env) -> None:
    """The runner dies inside the function (a thread that ends, a process that exits, an
    emulated task that exits: the kernel's robust-list walk marks the word OWNER_DIED and
    wakes a waiter); the waiter runs the function again with poisoned=True (sync_design
    §1.8; Rust's OnceState::is_poisoned)."""
    once = env.make(Once)
    inside = env.shared()

    def dies_inside(once: Any) -> str:
        lock = once._lock
        from futex.sync import drive

        drive.run(lock._acquire_steps(None))  # took the word: the runner, then it dies
        inside.set(1)
        return "died running"

    seen: list[bool] = []

    def waiter(once: Any) -> tuple[bool, list[bool]]:
        ran = once.call_once_force(seen.append)
        return ran, seen

    dying = env.start(dies_inside, once)
    assert dying.result() == "died running"
    w = env.start(waiter, once)
    if dying.task is not None:
        env.wait_blocked(w, "the caller sleeps on the dead runner's word")
        dying.task.exit()
    ran, poisoned = w.result()
    assert ran is True and poisoned == [True]
    assert once.done
