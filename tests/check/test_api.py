"""futex.check's public names are the functions and classes, never a submodule of the same
name (a lazy export once handed back the module ``futex.check.explore`` for ``explore``
after the submodule had been imported: ``TypeError: 'module' object is not callable``)."""

from __future__ import annotations

import importlib
import inspect

import futex.check


def test_every_public_name_is_what_it_says_after_every_submodule_is_imported() -> None:
    for sub in ("cli", "exploring", "minimize", "replaying", "report", "runtime",
                "strategies", "testing", "words"):  # fmt: skip
        importlib.import_module(f"futex.check.{sub}")
    for name in futex.check.__all__:
        value = getattr(futex.check, name)
        assert not inspect.ismodule(value), f"futex.check.{name} is a module"
    from futex.check import explore, replay

    assert inspect.isfunction(explore) and inspect.isfunction(replay)
