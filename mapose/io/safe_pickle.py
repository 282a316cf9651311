"""Restricted unpickling for DeepLabCut's pickle files.

DLC's pickles (``_full``, ``_meta``, ``_assemblies``, tracklets) hold only builtins,
NumPy arrays and scalars, and the pandas index types used in tracklet headers.  Loading
one must never execute code from the file, so :class:`SafeUnpickler` resolves only an
allow-list of globals and refuses anything else with :class:`UnsafePickleError`.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

from mapose.io.atomic import atomic_open

# (module, name) pairs a DLC pickle may reference.  Module prefixes cover the internal
# reconstructors NumPy and pandas use, which moved between versions.
_ALLOWED_EXACT = {
    ("builtins", n)
    for n in (
        "dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool",
        "str", "bytes", "bytearray", "slice", "range", "object", "NoneType", "getattr",
    )
} | {
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("copyreg", "_reconstructor"),
    ("datetime", "datetime"),
    ("datetime", "date"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("_codecs", "encode"),
}
_ALLOWED_MODULE_PREFIXES = (
    "numpy",  # ndarray reconstruct, dtype, scalar, numpy._core.multiarray...
    "pandas.core.indexes",
    "pandas.core.arrays",
    "pandas.core.frame",
    "pandas.core.series",
    "pandas.core.internals",
    "pandas._libs",
    "pandas.core.dtypes",
    "ruamel.yaml.comments",  # TF-era _meta.pickle stores the pose config as ruamel objects
    "ruamel.yaml.scalarstring",
    "ruamel.yaml.scalarfloat",
    "ruamel.yaml.scalarint",
    "ruamel.yaml.scalarbool",
    "ruamel.yaml.tokens",
    "ruamel.yaml.error",
    "ruamel.yaml.anchor",
)
# callables inside allowed modules that can still run arbitrary code
_DENIED_NAMES = {"eval", "exec", "system", "load", "loads", "__import__", "open", "fromfile",
                 "memmap", "save", "savez", "savetxt", "frompyfunc", "vectorize", "piecewise"}


class UnsafePickleError(pickle.UnpicklingError):
    """Raised when a pickle references a global that DLC files never contain."""


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler that only resolves the globals DLC's file formats use."""

    def find_class(self, module: str, name: str):
        allowed = (module, name) in _ALLOWED_EXACT or (
            module.startswith(_ALLOWED_MODULE_PREFIXES) and name not in _DENIED_NAMES
        )
        if module in ("numpy", "numpy.lib.npyio", "numpy.testing") and name not in (
            "ndarray", "dtype", "float64", "float32", "float16", "int64", "int32",
            "int16", "int8", "uint8", "uint16", "uint32", "uint64", "bool_", "str_",
            "bytes_", "object_", "core", "_core", "intc", "longlong",
        ):
            allowed = False
        if not allowed:
            raise UnsafePickleError(
                f"Refusing to load global '{module}.{name}' from a pickle: DeepLabCut files "
                "contain only builtins, NumPy arrays and pandas indexes. The file is not a DLC "
                "file or was crafted; if you trust it, load it with pickle yourself."
            )
        return super().find_class(module, name)


def loads(data: bytes):
    """Unpickle bytes with :class:`SafeUnpickler`."""
    return SafeUnpickler(io.BytesIO(data)).load()


def read_pickle(path, *, what: str = "pickle"):
    """Read a pickle file safely, turning every failure into a clear error.

    Parameters
    ----------
    path : str or os.PathLike
        File to read.
    what : str
        Human name of the expected file kind, used in messages (e.g. ``"_full.pickle"``).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is empty, truncated or corrupt.
    UnsafePickleError
        If it references anything outside the allow-list.
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"{what} file not found: '{path}'. Check the path and file name.")
    if path.is_dir():
        raise IsADirectoryError(f"{what} path '{path}' is a directory, not a file.")
    if path.stat().st_size == 0:
        raise ValueError(f"{what} file '{path}' is empty (0 bytes): it was probably "
                         "interrupted while being written. Delete it and re-run the step.")
    with open(path, "rb") as fh:
        try:
            return SafeUnpickler(fh).load()
        except UnsafePickleError:
            raise
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
                IndexError, KeyError, MemoryError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"{what} file '{path}' is truncated or corrupt and cannot be read "
                f"({type(exc).__name__}: {exc}). Delete it and re-run the step that wrote it."
            ) from exc


def write_pickle(path, obj) -> None:
    """Pickle ``obj`` to ``path`` with the highest protocol, atomically (temp + rename)."""
    with atomic_open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
