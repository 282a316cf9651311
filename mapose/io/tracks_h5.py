"""Pose tables: tracks ``.h5`` (``stitch_tracklets``), untracked ``.h5`` (``save_as_df``),
``CollectedData_*.h5`` labels, and their ``.csv`` twins.

Format (``dlc-tracking-spec.md`` §1.5, ``dlc-inference-spec.md`` §6.4)
--------------------------------------------------------------------
A :class:`pandas.DataFrame` with column ``MultiIndex`` levels
``(scorer, individuals, bodyparts, coords)`` (multi-animal) or
``(scorer, bodyparts, coords)`` (single animal), ``coords`` in ``x, y, likelihood``
(labels: ``x, y``).  Unique bodyparts appear under individual ``"single"``.

HDF keys DLC uses, each written with ``mode="w"``:

================================  =====================  ========
writer                            key                    format
================================  =====================  ========
``stitch_tracklets`` (tracks)     ``"tracks"``           table
``save_as_df``/refine/filter      ``"df_with_missing"``  table
``CollectedData_<scorer>.h5``     ``"df_with_missing"``  fixed
DLC test fixture                  ``"df"``               fixed
``Assembler.to_h5``               ``"ass"``              fixed
================================  =====================  ========

Column levels are written with object dtype: pandas 3 reads them back as ``str`` dtype,
pandas 2 as object; the values are equal either way.  pandas 3 no longer stamps the
``pandas_version`` attribute that pandas 2 needs to read a table; the writer adds it, so
DLC (pandas < 3) reads files mapose writes under pandas 3.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from mapose.io.atomic import atomic_open, atomic_path

__all__ = ["TRACK_KEYS", "read_tracks", "read_tracks_csv", "write_tracks_csv",
           "write_tracks_h5", "h5_keys", "csv_header_rows"]

_PANDAS_MAJOR = int(pd.__version__.split(".")[0])

# keys DLC writes, most specific first; read_tracks picks the first present
TRACK_KEYS = ("tracks", "df_with_missing", "df", "ass", "calib")
LEVEL_NAMES = ("scorer", "individuals", "bodyparts", "coords")


def _check_exists(path: Path, what: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{what} file not found: '{path}'. Check the path and file name.")
    if path.is_dir():
        raise IsADirectoryError(f"{what} path '{path}' is a directory, not a file.")
    if path.stat().st_size == 0:
        raise ValueError(f"{what} file '{path}' is empty (0 bytes): it was probably interrupted "
                         "while being written. Delete it and re-run the step.")


def h5_keys(path) -> list[str]:
    """HDF5 keys (without the leading ``/``) of a pandas HDF file."""
    path = Path(os.fspath(path))
    _check_exists(path, ".h5")
    try:
        with pd.HDFStore(path, mode="r") as store:
            return [k.lstrip("/") for k in store.keys()]
    except Exception as exc:  # tables raises HDF5ExtError, OSError, ...
        raise ValueError(f".h5 file '{path}' is not a readable HDF5 file (truncated or "
                         f"corrupt: {type(exc).__name__}: {exc}).") from exc


def read_tracks(path, key: str | None = None) -> pd.DataFrame:
    """Read a DLC pose table from ``.h5`` (any key DLC uses) or ``.csv``.

    Parameters
    ----------
    path : str or os.PathLike
        ``.h5`` or ``.csv`` file.
    key : str, optional
        HDF key; default: the only key, else the first of :data:`TRACK_KEYS` present.

    Returns
    -------
    pandas.DataFrame
        Exactly what ``pandas.read_hdf(path, key)`` returns.
    """
    path = Path(os.fspath(path))
    if path.suffix.lower() == ".csv":
        return read_tracks_csv(path)
    keys = h5_keys(path)
    if key is None:
        if not keys:
            raise ValueError(f".h5 file '{path}' holds no pandas table (no keys).")
        key = keys[0] if len(keys) == 1 else next((k for k in TRACK_KEYS if k in keys), keys[0])
    elif key.lstrip("/") not in keys:
        raise ValueError(f".h5 file '{path}' has no key {key!r}; it has {keys}.")
    try:
        df = pd.read_hdf(path, key=key)
    except Exception as exc:
        raise ValueError(f".h5 file '{path}' key {key!r} cannot be read as a pandas table "
                         f"({type(exc).__name__}: {exc}).") from exc
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f".h5 file '{path}' key {key!r} holds a {type(df).__name__}, not a "
                         "DLC pose DataFrame.")
    return df


def _object_columns(df: pd.DataFrame) -> pd.DataFrame:
    cols = df.columns
    if isinstance(cols, pd.MultiIndex):
        levels = [pd.Index(np.asarray(lev, dtype=object), dtype=object, name=lev.name)
                  for lev in cols.levels]
        new = pd.MultiIndex(levels=levels, codes=cols.codes, names=cols.names,
                            verify_integrity=False)
    else:
        new = pd.Index(np.asarray(cols, dtype=object), dtype=object, name=cols.name)
    if new.equals(cols) and all(getattr(lv, "dtype", None) == object for lv in getattr(new, "levels", [new])) \
            and cols.dtype == object and all(lv.dtype == object for lv in getattr(cols, "levels", [cols])):
        return df
    out = df.copy(deep=False)
    out.columns = new
    return out


def _check_df(df) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}.")


def write_tracks_h5(path, df: pd.DataFrame, key: str = "tracks", format: str = "table") -> None:
    """Write ``df`` like DLC (``df.to_hdf(path, key=key, format=format, mode="w")``), atomically.

    Parameters
    ----------
    key : str, default "tracks"
        ``"tracks"`` for stitched tracks, ``"df_with_missing"`` for untracked/refined data.
    format : {"table", "fixed"}, default "table"
    """
    _check_df(df)
    if format not in ("table", "fixed"):
        raise ValueError(f"format must be 'table' or 'fixed', got {format!r}.")
    if not isinstance(key, str) or not key.strip("/"):
        raise ValueError(f"key must be a non-empty string such as 'tracks', got {key!r}.")
    df = _object_columns(df)
    with atomic_path(path) as tmp:
        with warnings.catch_warnings():
            # object column levels trigger PyTables' pickling notice; DLC files are the same
            warnings.simplefilter("ignore", category=pd.errors.PerformanceWarning)
            df.to_hdf(tmp, key=key, format=format, mode="w")
        _stamp_pandas_version(tmp, key)


# pandas < 3 derives the table layout version from this attribute; pandas 3 stopped
# writing it, and pandas 2 (DLC's pin) then fails to read the table
# ("'NoneType' object has no attribute 'startswith'").  pandas 2 writes "0.15.2".
_PANDAS_TABLE_VERSION = "0.15.2"


def _stamp_pandas_version(path, key: str) -> None:
    import tables

    with tables.open_file(str(path), mode="a") as h5:
        node = h5.get_node("/" + key.strip("/"))
        if "pandas_version" not in node._v_attrs._v_attrnames:
            node._v_attrs.pandas_version = _PANDAS_TABLE_VERSION


def csv_header_rows(path) -> tuple[int, int]:
    """``(n_header_rows, n_index_columns)`` of a DLC CSV, from its first lines.

    Header rows start with a level name (``scorer``, ``individuals``, ``bodyparts``,
    ``coords``); index columns are the empty cells after the level name
    (``CollectedData`` CSVs have 3: ``labeled-data, <video>, <image>``).
    """
    import csv

    n_rows, n_index = 0, 1
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        for row in reader:
            if not row or row[0] not in LEVEL_NAMES:
                break
            if n_rows == 0:
                n_index = 1
                while n_index < len(row) and row[n_index] == "":
                    n_index += 1
            n_rows += 1
    return n_rows, n_index


def read_tracks_csv(path) -> pd.DataFrame:
    """Read a DLC CSV (header rows ``scorer``/``individuals``/``bodyparts``/``coords``)."""
    path = Path(os.fspath(path))
    _check_exists(path, ".csv")
    try:
        n_rows, n_index = csv_header_rows(path)
    except UnicodeDecodeError as exc:
        raise ValueError(f".csv file '{path}' is not text ({exc}).") from exc
    if n_rows < 2:
        raise ValueError(f".csv file '{path}' does not start with DLC's header rows "
                         "(scorer, [individuals,] bodyparts, coords).")
    try:
        # round_trip: pandas 2's default parser is off by 1 ulp on some values; pandas 3
        # parses exactly.  Exact parsing makes both versions give the same frame.
        extra = {"float_precision": "round_trip"} if _PANDAS_MAJOR < 3 else {}
        df = pd.read_csv(path, header=list(range(n_rows)), index_col=list(range(n_index)), **extra)
    except Exception as exc:
        raise ValueError(f".csv file '{path}' cannot be parsed as a DLC table "
                         f"({type(exc).__name__}: {exc}).") from exc
    if n_index == 1:
        df.index.name = None
    return df


def write_tracks_csv(path, df: pd.DataFrame) -> None:
    """Write ``df`` as DLC does (``df.to_csv(path)``: header rows, then index, values), atomically."""
    _check_df(df)
    with atomic_open(path, "w", newline="") as fh:
        df.to_csv(fh)
