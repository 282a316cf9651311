"""Build the Cython kernels in ``csrc/`` into the private ``mapose._cy`` package.

All metadata lives in ``pyproject.toml``; this file only declares extensions.

Environment switches
--------------------
MAPOSE_CYTHON_DEBUG=1
    Re-enable bounds checks, wraparound and initialized checks (debug builds).
MAPOSE_BUILD_ONLY=name1,name2
    Build only these kernel families (developer convenience).
"""
import os
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent
DEBUG = os.environ.get("MAPOSE_CYTHON_DEBUG", "0") not in ("", "0", "false", "False")
ONLY = {s.strip() for s in os.environ.get("MAPOSE_BUILD_ONLY", "").split(",") if s.strip()}

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "nonecheck": DEBUG,
    "embedsignature": True,
}

# no FMA contraction: fused products would break bit-parity with the NumPy references
compile_args = ["-O0", "-g"] if DEBUG else ["-O3", "-ffp-contract=off"]
macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]

extensions = []
for pyx in sorted((HERE / "csrc").glob("*.pyx")):
    family = pyx.stem
    if ONLY and family not in ONLY:
        continue
    extensions.append(
        Extension(
            f"mapose._cy.{family}",
            [str(pyx.relative_to(HERE))],
            include_dirs=[np.get_include(), "csrc"],
            # headers included from other headers are invisible to the dependency scan
            depends=[str(p.relative_to(HERE)) for p in sorted((HERE / "csrc").glob("*.h"))],
            define_macros=macros,
            extra_compile_args=compile_args,
            language="c++",
        )
    )

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        include_path=["csrc"],
        nthreads=int(os.environ.get("MAPOSE_BUILD_JOBS", "0")) or None,
    ),
)
