"""Whether the differential tests can run on this host: ``UNAVAILABLE`` says why not, or is
"" when they can (the host kernel is Linux on x86-64 and ``futex.native`` is built).

Checked before anything else of the harness is imported: each test module starts with::

    if UNAVAILABLE:
        pytest.skip(UNAVAILABLE, allow_module_level=True)
"""

from __future__ import annotations

from tests.support import hostfutex

__all__ = [
    "UNAVAILABLE",
]

UNAVAILABLE = "" if hostfutex.available() else "needs the host kernel: Linux on x86-64"
if not UNAVAILABLE:
    from tests.differential.harness.host import NATIVE_MISSING

    UNAVAILABLE = NATIVE_MISSING
