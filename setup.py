"""Build script for the optional C extension ``futex.native._native``.

Metadata lives in pyproject.toml; this file only declares the extension.  The extension
is Linux-only and optional: where it cannot be built (no compiler, not Linux) the
install still succeeds, and ``import futex.native`` raises ImportError saying why.
"""

import sys

from setuptools import Extension, setup

ext_modules = []
if sys.platform.startswith("linux"):
    ext_modules.append(
        Extension(
            "futex.native._native",
            sources=[
                "src/futex/native/_native.c",
                "src/futex/native/_word.c",
                "src/futex/native/_wordcalls.c",
            ],
            depends=["src/futex/native/_native.h"],
            extra_compile_args=["-Wall", "-Wextra"],
            optional=True,
        )
    )

setup(ext_modules=ext_modules)
