"""Restricted unpickling (and DLC-compatible pickling) for DeepLabCut's pickle files.

DLC's pickles (``_full``, ``_meta``, ``_assemblies``, tracklets, shelve values) hold only
builtins, NumPy arrays and scalars, the pandas index types used in tracklet headers,
``pathlib`` paths and, in DLC 3's ``_meta.pickle``, a few DeepLabCut enums
(``deeplabcut.pose_estimation_pytorch.config.enums.NetType`` / ``MethodType``).
Loading one must never execute code from the file, so :class:`SafeUnpickler` resolves
only an allow-list of globals and refuses anything else with :class:`UnsafePickleError`.

Rules of the allow-list
-----------------------
* builtins containers and scalars, ``collections.OrderedDict``/``defaultdict``,
  ``datetime`` types, ``pathlib`` path classes;
* NumPy: ``ndarray``, ``dtype``, scalar types and the private array/scalar
  reconstructors (``numpy[._]core.multiarray._reconstruct``/``scalar``,
  ``numpy[._]core.numeric._frombuffer``), nothing else (``numpy.memmap`` or
  ``numpy.testing`` helpers would open files or run code);
* pandas: only *classes* from ``pandas.core`` / ``pandas._libs`` plus the reconstructor
  functions pandas uses to pickle indexes, series and frames;
* ruamel.yaml: only *classes* of the round-trip types (TF-era ``_meta.pickle``);
* ``deeplabcut.*`` names: never imported.  They resolve to :class:`DLCEnum` stand-ins
  (``str`` subclasses keeping the value) so files load without DeepLabCut installed, and
  :func:`dumps`/:func:`write_pickle` write them back under DLC's original global name so
  DeepLabCut reads the file as if it had written it.

``builtins.getattr`` is deliberately not allowed: with it, a pickle can walk from any
allowed module object to ``os.system``.
"""
from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
from pathlib import Path

from mapose.io.atomic import atomic_open

__all__ = [
    "DLCEnum", "SafeUnpickler", "UnsafePickleError", "dumps", "loads", "read_pickle",
    "write_pickle",
]

_ALLOWED_EXACT = {
    ("builtins", n)
    for n in (
        "dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool",
        "str", "bytes", "bytearray", "slice", "range", "object",
    )
} | {
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("copyreg", "_reconstructor"),
    ("datetime", "datetime"),
    ("datetime", "date"),
    ("datetime", "time"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("_codecs", "encode"),
}
_PATH_CLASSES = {"Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath",
                 "PureWindowsPath"}
_ALLOWED_EXACT |= {(m, n) for m in ("pathlib", "pathlib._local") for n in _PATH_CLASSES}

_NUMPY_SCALARS = {
    "ndarray", "dtype", "float64", "float32", "float16", "longdouble", "int64", "int32",
    "int16", "int8", "uint8", "uint16", "uint32", "uint64", "intc", "uintc", "longlong",
    "ulonglong", "intp", "uintp", "bool_", "bool", "str_", "bytes_", "object_",
    "complex64", "complex128", "datetime64", "timedelta64", "void",
}
_ALLOWED_EXACT |= {("numpy", n) for n in _NUMPY_SCALARS}
for _core in ("numpy.core", "numpy._core"):
    _ALLOWED_EXACT |= {
        (f"{_core}.multiarray", "_reconstruct"),
        (f"{_core}.multiarray", "scalar"),
        (f"{_core}.numeric", "_frombuffer"),
    }
# numpy.dtypes.Float64DType & co. (NumPy 2 pickles some dtypes by their class)
_NUMPY_CLASS_MODULES = ("numpy.dtypes",)

_PANDAS_PREFIXES = ("pandas.core.", "pandas._libs.", "pandas.arrays")
# pandas 3 pickles by the public names; only data-holding classes (never HDFStore,
# ExcelWriter & co., whose constructors open files).
_PANDAS_TOP = {
    "Index", "MultiIndex", "RangeIndex", "CategoricalIndex", "DatetimeIndex",
    "TimedeltaIndex", "PeriodIndex", "IntervalIndex", "Series", "DataFrame", "Categorical",
    "CategoricalDtype", "StringDtype", "Int64Dtype", "Int32Dtype", "Float64Dtype",
    "Float32Dtype", "BooleanDtype", "Timestamp", "Timedelta", "Period", "Interval",
    "DatetimeTZDtype", "PeriodDtype", "IntervalDtype", "SparseDtype", "NaT", "NA",
}
_PANDAS_FUNCTIONS = {
    "_new_Index", "_new_PeriodIndex", "_new_DatetimeIndex", "_unpickle_block", "new_block",
    "_unpickle_series_compat", "_unpickle_frame_compat", "__pyx_unpickle_NDArrayBacked",
    "_reconstruct_object", "_new_IntervalIndex",
}
_RUAMEL_PREFIXES = ("ruamel.yaml.comments", "ruamel.yaml.scalarstring",
                    "ruamel.yaml.scalarfloat", "ruamel.yaml.scalarint",
                    "ruamel.yaml.scalarbool", "ruamel.yaml.tokens", "ruamel.yaml.error",
                    "ruamel.yaml.anchor")


class UnsafePickleError(pickle.UnpicklingError):
    """Raised when a pickle references a global that DLC files never contain."""


class DLCEnum(str):
    """Stand-in for a DeepLabCut enum member found in a pickle (e.g. ``NetType``).

    Behaves as its string value (DLC's enums are ``str`` enums, so ``member == "bu"``
    holds there too) and remembers DLC's class so that writing the object back produces
    the same global reference DeepLabCut pickled.  Subclasses are created per DLC class
    by :func:`dlc_enum_class`.
    """

    __slots__ = ()
    _dlc_module: str = "deeplabcut"
    _dlc_name: str = "Enum"

    @property
    def value(self):
        return str(self)

    @property
    def name(self) -> str:
        return str(self).upper()

    def __repr__(self) -> str:
        return f"<{self._dlc_name}: {str(self)!r}>"

    def __reduce__(self):
        return (type(self), (str(self),))


_DLC_ENUM_CLASSES: dict[tuple[str, str], type] = {}


def dlc_enum_class(module: str, name: str) -> type:
    """Return the (cached) :class:`DLCEnum` subclass standing in for ``module.name``."""
    key = (module, name)
    cls = _DLC_ENUM_CLASSES.get(key)
    if cls is None:
        cls = type(name, (DLCEnum,), {"__slots__": (), "_dlc_module": module,
                                      "_dlc_name": name, "__module__": __name__})
        _DLC_ENUM_CLASSES[key] = cls
    return cls


def _refuse(module: str, name: str):
    raise UnsafePickleError(
        f"Refusing to load global '{module}.{name}' from a pickle: DeepLabCut files "
        "contain only builtins, NumPy arrays and pandas indexes, and loading this name "
        "could run code. The file is not a DLC file or was crafted; if you trust it, "
        "load it with pickle yourself."
    )


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler that only resolves the globals DLC's file formats use."""

    def find_class(self, module: str, name: str):
        # Python 2 names (protocol 0-2 pickles), mapped as pickle.Unpickler does; the
        # result still goes through the allow-list below
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if module == "deeplabcut" or module.startswith("deeplabcut."):
            # DLC's enums (NetType, MethodType, ...): never import DLC, keep the value.
            if not name.isidentifier():
                _refuse(module, name)
            return dlc_enum_class(module, name)
        if (module, name) in _ALLOWED_EXACT:
            return super().find_class(module, name)
        if "." in name or name.startswith("__") and not name.startswith("__pyx_unpickle"):
            _refuse(module, name)  # dotted names walk attributes; dunders reach internals
        if module == "pandas" and name in _PANDAS_TOP:
            return super().find_class(module, name)
        if module in _NUMPY_CLASS_MODULES:
            return self._class_only(module, name)
        if module.startswith(_PANDAS_PREFIXES):
            if name in _PANDAS_FUNCTIONS:
                return super().find_class(module, name)
            return self._class_only(module, name)
        if module.startswith(_RUAMEL_PREFIXES):
            return self._class_only(module, name)
        _refuse(module, name)

    def _class_only(self, module: str, name: str):
        try:
            obj = super().find_class(module, name)
        except (ImportError, AttributeError):
            _refuse(module, name)
        if not isinstance(obj, type):
            _refuse(module, name)
        return obj


def loads(data: bytes):
    """Unpickle bytes with :class:`SafeUnpickler`."""
    return SafeUnpickler(io.BytesIO(data)).load()


class _DLCPickler(pickle._Pickler):
    """Pure-Python pickler that writes :class:`DLCEnum` stand-ins under DLC's class name.

    The C pickler insists on importing the class it references; DLC is not installed,
    so the stand-in's class is emitted by hand as ``STACK_GLOBAL(module, name)``.
    """

    def save_global(self, obj, name=None):
        if isinstance(obj, type) and issubclass(obj, DLCEnum) and obj is not DLCEnum:
            if self.proto >= 4:
                self.save(obj._dlc_module)
                self.save(obj._dlc_name)
                self.write(pickle.STACK_GLOBAL)
            else:
                self.write(pickle.GLOBAL + f"{obj._dlc_module}\n{obj._dlc_name}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)


def _contains_dlc_enum(obj, depth: int = 0) -> bool:
    if isinstance(obj, DLCEnum):
        return True
    if depth > 50:
        return False
    if isinstance(obj, dict):
        return any(_contains_dlc_enum(k, depth + 1) or _contains_dlc_enum(v, depth + 1)
                   for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return any(_contains_dlc_enum(v, depth + 1) for v in obj)
    return False


def dumps(obj, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
    """Pickle ``obj`` like DLC does (``HIGHEST_PROTOCOL``), restoring DLC enum names."""
    if not _contains_dlc_enum(obj):
        return pickle.dumps(obj, protocol=protocol)
    buf = io.BytesIO()
    _DLCPickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


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
                IndexError, KeyError, MemoryError, UnicodeDecodeError, ImportError,
                OverflowError) as exc:
            raise ValueError(
                f"{what} file '{path}' is truncated or corrupt and cannot be read "
                f"({type(exc).__name__}: {exc}). Delete it and re-run the step that wrote it."
            ) from exc


def write_pickle(path, obj) -> None:
    """Pickle ``obj`` to ``path`` with the highest protocol, atomically (temp + rename).

    DLC enum stand-ins (:class:`DLCEnum`) are written under DeepLabCut's class names.
    """
    with atomic_open(path, "wb") as fh:
        if _contains_dlc_enum(obj):
            _DLCPickler(fh, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
        else:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
