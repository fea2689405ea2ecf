"""Assertions for a project's tests: a scenario explores clean, or the checker finds a bug.

    from futex.check.testing import assert_explores, assert_finds

    def test_my_lock_is_correct():
        assert_explores(MY_SCENARIO, strategy=DFS(preemptions=2), require_complete=True)

    def test_the_old_lock_loses_a_wakeup():
        assert_finds(OLD_SCENARIO, "lost-wakeup", strategy=DFS(preemptions=1))

On a wrong verdict they raise AssertionError whose message is the checker's full report
(the minimal trace, the deviations, the replay string), so pytest shows it as is.
(The module is called ``testing``, not ``pytest``, so that it never shadows pytest.)
"""

from __future__ import annotations

from typing import Any

__all__ = ["assert_explores", "assert_finds"]


def _explore(scenario: Any, strategy: Any, budget: Any, seed: int, backend: str | None) -> Any:
    from futex.check.exploring import explore

    return explore(scenario, strategy, budget, seed=seed, backend=backend)


def assert_explores(
    scenario: Any,
    strategy: Any = None,
    budget: Any = None,
    *,
    seed: int = 0,
    backend: str | None = None,
    require_complete: bool = False,
) -> Any:
    """Explore ``scenario`` (default ``DFS(preemptions=2)``, ``Budget()``); AssertionError
    with the failure report if any schedule fails, or — ``require_complete`` — if the
    budget ran out before the strategy's bound was exhausted.  Returns the explore
    ``Result`` (``result.certificate`` says what was proved)."""
    from futex.check import report

    result = _explore(scenario, strategy, budget, seed, backend)
    if result.failure is not None:
        raise AssertionError("the checker found a failing schedule:\n" + report.text(result))
    if require_complete and not result.complete:
        raise AssertionError(
            "the budget ran out before the bound was exhausted (require_complete):\n"
            + report.text(result)
        )
    return result


def assert_finds(
    scenario: Any,
    kind: str | None = None,
    strategy: Any = None,
    budget: Any = None,
    *,
    seed: int = 0,
    backend: str | None = None,
    preemptions: int | None = None,
    replays: bool = True,
) -> Any:
    """Explore ``scenario`` and require a failure: of ``kind`` if given ("deadlock",
    "lost-wakeup", "livelock", "assertion", "invariant", "final", "exception"), with at
    most ``preemptions`` preemptions in its minimal schedule if given, and — ``replays``
    — whose replay string reproduces it in one run.  Returns the explore ``Result``."""
    from futex.check import report
    from futex.check.replaying import replay

    result = _explore(scenario, strategy, budget, seed, backend)
    f = result.failure
    if f is None:
        raise AssertionError(
            f"expected the checker to find {kind or 'a failure'}, but every schedule "
            f"passed:\n{report.text(result)}"
        )
    if kind is not None and f.kind != kind:
        raise AssertionError(f"expected {kind}, found {f.kind}:\n{report.text(result)}")
    if preemptions is not None and f.preemptions > preemptions:
        raise AssertionError(
            f"the minimal schedule needs {f.preemptions} preemptions, more than "
            f"{preemptions}:\n{report.text(result)}"
        )
    if replays:
        again = replay(scenario, result.replay, backend=backend)
        if again.kind != f.kind:
            raise AssertionError(
                f"the replay string {result.replay} gave {again.kind} "
                f"({again.message}), not {f.kind}:\n{report.text(result)}"
            )
    return result
