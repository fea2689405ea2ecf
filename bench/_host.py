"""The host baseline the benchmarks compare with: ``tests/support/hostfutex.py`` (support
code of the repository, not of the installed package), importable from ``bench/``."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.support import hostfutex  # noqa: E402

__all__ = ["hostfutex"]
