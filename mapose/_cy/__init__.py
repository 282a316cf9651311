"""Private compiled kernels, built from ``csrc/<family>.pyx``.

Never import these modules directly: use the typed gateways in :mod:`mapose.kernels`,
which validate shapes and dtypes first.  :func:`load` turns a missing build into a
readable error.
"""
from __future__ import annotations

import importlib
from types import ModuleType

_BUILD_HINT = (
    "mapose's compiled extensions are not built. From a source checkout run\n"
    "    pip install -e .            (or: python setup.py build_ext --inplace)\n"
    "which needs a C++ compiler, Cython>=3 and numpy>=2. Installed from a wheel, "
    "reinstall mapose: the wheel looks incomplete."
)


def load(family: str) -> ModuleType:
    """Import ``mapose._cy.<family>`` or raise an ImportError saying how to build it."""
    try:
        return importlib.import_module(f"mapose._cy.{family}")
    except ImportError as exc:
        raise ImportError(
            f"Compiled kernel 'mapose._cy.{family}' could not be imported ({exc}).\n{_BUILD_HINT}"
        ) from exc
