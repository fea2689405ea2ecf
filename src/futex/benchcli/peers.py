"""What the benchmark compares: futex.sync, posix_ipc and multiprocessing.

Neither futex.sync nor posix_ipc has to be there: :func:`sync` and :func:`posix_ipc` return
the module or the reason it is missing, and every row that needs one says that reason
instead of a figure, so the other rows still run.
"""

from __future__ import annotations

import importlib
import multiprocessing
from collections.abc import Callable
from functools import cache
from typing import Any

__all__ = [
    "NOT_INSTALLED",
    "Factory",
    "Unavailable",
    "mp",
    "posix_ipc",
    "posix_semaphore",
    "sync",
    "sync_attr",
    "unavailable",
]

NOT_INSTALLED = "not installed"

#: Makes one primitive (called in the parent; the object is shared with forked workers).
Factory = Callable[[], Any]


class Unavailable(Exception):
    """A peer that cannot run here; ``str()`` is the row's status."""


def unavailable(reason: str) -> Unavailable:
    return Unavailable(reason)


@cache
def sync() -> tuple[Any, str]:
    """(``futex.sync``, "") or (None, "not available: <reason>")."""
    try:
        return importlib.import_module("futex.sync"), ""
    except Exception as exc:
        return None, f"not available: {type(exc).__name__}: {exc}"


def sync_attr(name: str) -> Any:
    """``futex.sync.<name>``, or raise :class:`Unavailable` with the reason."""
    mod, why = sync()
    if mod is None:
        raise Unavailable(why)
    try:
        return getattr(mod, name)
    except AttributeError:
        raise Unavailable(f"not available: futex.sync has no {name}") from None


@cache
def posix_ipc() -> Any:
    """The ``posix_ipc`` module, or None."""
    try:
        return importlib.import_module("posix_ipc")
    except ImportError:
        return None


def posix_semaphore(value: int) -> Any:
    """An anonymous posix_ipc.Semaphore (its name unlinked at once: nothing leaks; it lives
    on while open, and forked workers share it)."""
    mod = posix_ipc()
    if mod is None:
        raise Unavailable(NOT_INSTALLED)
    sem = mod.Semaphore(None, mod.O_CREX, initial_value=value)
    sem.unlink()
    return sem


@cache
def mp() -> Any:
    """The multiprocessing context the peers are made in: ``fork`` (the workers are forked;
    no resource tracker process for their semaphores)."""
    try:
        return multiprocessing.get_context("fork")
    except ValueError:  # pragma: no cover - no fork
        return multiprocessing.get_context()
