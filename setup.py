"""The optional C accelerator (rawws/sansio/_speedups.c: masking only). Everything else about
the package is in pyproject.toml.

The extension is ``optional``: without a compiler (or Python headers) the build goes on and
rawws runs in pure Python. ``RAWWS_PURE_PYTHON=1`` at build time leaves it out on purpose, for
a pure-Python wheel (``RAWWS_PURE_PYTHON=1 pip wheel .``); at run time it keeps a built one
unused.
"""

import os

from setuptools import Extension, setup

PURE = os.environ.get("RAWWS_PURE_PYTHON", "") not in ("", "0")

setup(ext_modules=[] if PURE else [
    Extension("rawws.sansio._speedups", ["rawws/sansio/_speedups.c"], optional=True),
])
