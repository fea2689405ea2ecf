"""``python -m futex.integrations.qiling.fuzz``: see the package docstring."""

import sys

from futex.integrations.qiling.fuzz.engine import main

sys.exit(main())
