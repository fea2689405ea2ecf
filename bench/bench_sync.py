#!/usr/bin/env python3
"""Benchmark of ``futex.sync`` against multiprocessing, posix_ipc and a C floor.

The same as ``python -m futex bench`` (the body is :mod:`futex.benchcli`, so that an
installed package has it too).  Run from the repository root::

    python bench/bench_sync.py                 # full run, about half a minute
    python bench/bench_sync.py --quick         # ~10 s
    python bench/bench_sync.py --quick --json figures.json --plot ratios.png
    # --scale F: every count times F (0.01: a smoke run)

posix_ipc and matplotlib are optional (``pip install posix_ipc matplotlib``): without them
the posix_ipc rows say "not installed" and ``--plot`` is refused.  See futex.benchcli's
docstring for what each section measures and the targets printed beside the ratios.
"""

from __future__ import annotations

import sys

from futex.benchcli import main

if __name__ == "__main__":
    sys.exit(main())
