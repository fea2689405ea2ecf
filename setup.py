"""Build script for the optional C extension ``futex.native._native``.

Metadata lives in pyproject.toml; this file only declares the extension.  The extension
is Linux-only and optional: where it cannot be built (no compiler, not Linux) the
install still succeeds, and ``import futex.native`` raises ImportError saying why.
"""

import os
import sys

from setuptools import Extension, setup

# Recent setuptools let a CFLAGS environment variable replace Python's own flags, -O3
# included (CI sets CFLAGS=-Werror): keep the extension optimized unless CFLAGS names a
# level itself.
OPT = [] if any(f.startswith("-O") for f in os.environ.get("CFLAGS", "").split()) else ["-O3"]

ext_modules = []
if sys.platform.startswith("linux"):
    ext_modules.append(
        Extension(
            "futex.native._native",
            sources=[
                "src/futex/native/_native.c",
                "src/futex/native/_word.c",
                "src/futex/native/_wordcalls.c",
                "src/futex/native/_synclock.c",
                "src/futex/native/_syncsem.c",
            ],
            depends=["src/futex/native/_native.h", "src/futex/native/_syncrobust.h"],
            extra_compile_args=["-Wall", "-Wextra", *OPT],
            optional=True,
        )
    )

setup(ext_modules=ext_modules)
