"""argparse value types shared by the command lines (``python -m futex check``, ``bench``)."""

from __future__ import annotations

import argparse

__all__ = ["positive_float"]


def positive_float(text: str) -> float:
    """A number of seconds (or any quantity) that must be > 0: argparse's ``type=``, so a
    bad value is a usage error naming it, not a traceback."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value
