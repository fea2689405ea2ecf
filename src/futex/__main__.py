"""``python -m futex``: the command line of :mod:`futex.cli`."""

from futex.cli import main

raise SystemExit(main())
