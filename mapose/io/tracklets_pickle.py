"""Tracklet pickles ``<video><scorer>_{el,bx,sk}.pickle`` (``convert_detections2tracklets``).

Format (``dlc-tracking-spec.md`` §1.4)
------------------------------------
A dict with

``"header"``
    ``pd.MultiIndex.from_arrays([[scorer] * 3n, bodyparts repeated 3x,
    ["x", "y", "likelihood"] * n], names=["scorer", "bodyparts", "coords"])`` over all
    joints (multi-animal then unique bodyparts).  Levels have *object* dtype (DLC runs
    pandas < 3; pandas 3's ``str`` dtype would pickle objects pandas 2 cannot load, so
    the writer converts levels to object).
tracklet ids : ``numpy.int64``
    ``{frame_key: ndarray (n_multibodyparts, 4)}`` (x, y, likelihood, identity) where
    ``frame_key`` is ``"frame%0Nd"`` (TF and PyTorch) or an int (legacy files).  The
    skeleton tracker may store a 1-D ``(3n,)`` predicted state instead.
``"single"`` (only with unique bodyparts)
    ``{int frame index: ndarray (n_unique, 3)}``.

Insertion order matters to DLC's tests and is preserved: PyTorch writes ``"header"``
first then ``"single"``, TF writes ``"single"`` first and ``"header"`` last.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from mapose.io.safe_pickle import SafeUnpickler, UnsafePickleError, read_pickle, write_pickle

__all__ = ["make_tracklet_header", "read_tracklets_pickle", "write_tracklets_pickle",
           "tracklet_ids", "object_multiindex", "FrameBlock", "read_tracklets_compact",
           "read_tracklets_packed"]

_WHAT = "tracklet pickle"
COORDS = ("x", "y", "likelihood")


def object_multiindex(index: pd.MultiIndex) -> pd.MultiIndex:
    """Same MultiIndex with every level as object dtype (pandas 2 and 3 pickle alike)."""
    levels = [pd.Index(np.asarray(lev, dtype=object), dtype=object, name=lev.name)
              for lev in index.levels]
    return pd.MultiIndex(levels=levels, codes=index.codes, names=index.names,
                         verify_integrity=False)


def make_tracklet_header(scorer: str, bodyparts) -> pd.MultiIndex:
    """DLC's tracklet header: ``(scorer, bodyparts, coords)`` over ``bodyparts`` × x/y/likelihood.

    Parameters
    ----------
    scorer : str
        Scorer name (e.g. ``"DLC_Resnet50_projANov23shuffle1_snapshot_best-50"``).
    bodyparts : sequence of str
        All joints: multi-animal bodyparts then unique bodyparts.
    """
    if not isinstance(scorer, str) or not scorer:
        raise ValueError(f"scorer must be a non-empty string, got {scorer!r}.")
    bodyparts = [str(b) for b in bodyparts]
    n = len(bodyparts)
    arrays = [
        np.array([scorer] * 3 * n, dtype=object),
        np.array([b for b in bodyparts for _ in range(3)], dtype=object),
        np.array(list(COORDS) * n, dtype=object),
    ]
    idx = pd.MultiIndex.from_arrays(arrays, names=["scorer", "bodyparts", "coords"])
    return object_multiindex(idx)


def tracklet_ids(tracklets: dict) -> list:
    """Tracklet ids (every key except ``"header"`` and ``"single"``), in file order."""
    return [k for k in tracklets if not (isinstance(k, str) and k in ("header", "single"))]


def read_tracklets_pickle(path) -> dict:
    """Read a tracklet pickle; returns DLC's dict unchanged (order and key types kept).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing, empty, truncated, or not a tracklet pickle.
    """
    obj = read_pickle(path, what=_WHAT)
    if not isinstance(obj, dict):
        raise ValueError(f"{_WHAT} '{path}' holds a {type(obj).__name__}, not DLC's dict of tracklets.")
    if "header" not in obj:
        hint = ""
        if "metadata" in obj:
            hint = " It looks like a _full.pickle."
        elif "data" in obj:
            hint = " It looks like a _meta.pickle."
        elif obj and all(isinstance(k, (int, np.integer)) or k == "single" for k in obj):
            if any(isinstance(v, (list, np.ndarray)) for k, v in obj.items() if k != "single"):
                hint = " It looks like an _assemblies.pickle."
        raise ValueError(f"{_WHAT} '{path}' has no 'header' entry, so it is not a DLC "
                         f"_el/_bx/_sk.pickle.{hint}")
    if not isinstance(obj["header"], pd.MultiIndex):
        raise ValueError(f"{_WHAT} '{path}': 'header' is a {type(obj['header']).__name__}, "
                         "expected a pandas MultiIndex (scorer, bodyparts, coords).")
    for k in tracklet_ids(obj):
        if not isinstance(k, (int, np.integer)):
            raise ValueError(f"{_WHAT} '{path}': unexpected key {k!r}; tracklet ids are integers.")
        if not isinstance(obj[k], dict):
            raise ValueError(f"{_WHAT} '{path}': tracklet {k} holds a {type(obj[k]).__name__}, "
                             "expected a dict frame -> (n_bodyparts, 4) array.")
    return obj


def write_tracklets_pickle(path, tracklets: dict) -> None:
    """Write a tracklet dict atomically, keeping key order, ids as ``numpy.int64``.

    The header's levels are stored with object dtype so DLC (pandas < 3) can read files
    written under pandas 3.
    """
    if not isinstance(tracklets, dict):
        raise TypeError(f"tracklets must be a dict, got {type(tracklets).__name__}.")
    if "header" not in tracklets:
        raise ValueError("tracklets has no 'header'; build one with make_tracklet_header(scorer, bodyparts).")
    header = tracklets["header"]
    if not isinstance(header, pd.MultiIndex):
        raise TypeError(f"tracklets['header'] must be a pandas MultiIndex, got {type(header).__name__}.")
    out = {}
    for k, v in tracklets.items():
        if isinstance(k, str) and k == "header":
            out[k] = object_multiindex(header)
        elif isinstance(k, str) and k == "single":
            out[k] = v
        elif isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            out[np.int64(k)] = v
        else:
            raise ValueError(f"tracklets key {k!r} is not 'header', 'single' or an integer id.")
    write_pickle(path, out)


class FrameBlock(NamedTuple):
    """One tracklet's frames in one block (what :func:`read_tracklets_compact` returns).

    ``inds``: int64 (n_frames,) frame numbers in file order; ``data``: float64
    (n_frames, *frame_shape), usually (n_frames, n_bodyparts, 4).
    """

    inds: np.ndarray
    data: np.ndarray


class CompactTrackletUnpickler(SafeUnpickler):
    """:class:`~mapose.io.safe_pickle.SafeUnpickler` that defers NumPy arrays.

    The allow-list decides first; only then are NumPy's array reconstructors swapped for
    inert placeholders (:mod:`mapose.kernels.stitch_pickle`), and every other allowed
    *function* is wrapped so that it receives real arrays.  Nothing outside the
    allow-list is ever resolved.
    """

    def find_class(self, module: str, name: str):
        from numpy._core.multiarray import _reconstruct
        from numpy._core.numeric import _frombuffer

        from mapose.kernels.stitch_pickle import FromBuffer, Reconstructed

        obj = super().find_class(module, name)
        if obj is _frombuffer:
            return FromBuffer
        if obj is _reconstruct:
            return Reconstructed
        if not isinstance(obj, type) and callable(obj):
            return _with_real_arrays(obj)
        return obj


def _with_real_arrays(func):
    from mapose.kernels.stitch_pickle import materialize

    def call(*args):
        return func(*materialize(args))

    call.__wrapped__ = func
    return call


class _SpanUnpickler(SafeUnpickler):
    """Reads one value's opcodes cut out of a file.  Its prelude restores the memo
    entries the value borrows from earlier in the file through persistent ids (spans
    themselves never hold persistent ids: the byte reader declines files that do)."""

    def __init__(self, file, seeds):
        super().__init__(file)
        self._seeds = seeds

    def persistent_load(self, pid):
        return self._seeds[pid]


def _span_pickle(proto: int, body: bytes, seeds: dict) -> bytes:
    # Unpickler.memo = {...} cannot be used: CPython's setter drops a dict's entries.
    # Per borrowed entry: BININT idx, BINPERSID, LONG_BINPUT idx, POP.  The body's
    # MEMOIZE opcodes were already turned into LONG_BINPUT with their original indices.
    parts = [b"\x80", bytes([proto])]
    for idx in seeds:
        i4 = int(idx).to_bytes(4, "little")
        parts.append(b"J" + i4 + b"Qr" + i4 + b"0")
    parts.append(body)
    parts.append(b".")
    return b"".join(parts)


def _read_spans_and_blocks(data: bytes, pack: bool = False):
    """The compiled byte-level reader (:func:`mapose.kernels.stitch_pickle.scan_tracklets`).

    Tracklets come back as :class:`FrameBlock` without any per-frame Python object; the
    header's opcodes are unpickled alone by :class:`SafeUnpickler` (the allow-list
    decides), with the memo entries they borrow.  None when the file is outside the
    reader's grammar.  With ``pack``, returns ``(dict, packed)`` (see
    :func:`read_tracklets_packed`), or None.
    """
    from mapose.kernels.stitch_pickle import scan_tracklets

    scanned = scan_tracklets(data, pack=pack)
    if scanned is None:
        return None
    proto, entries = scanned[:2]
    out = {}
    for key, kind, payload in entries:
        if kind == "block":
            out[key] = FrameBlock(*payload)
        elif kind == "empty":
            out[key] = {}
        else:
            body, memo = payload
            unpickler = _SpanUnpickler(io.BytesIO(_span_pickle(proto, body, memo)), memo)
            try:
                value = unpickler.load()
            except UnsafePickleError:
                raise
            except Exception:  # e.g. a span this reader cut differently: general path
                return None
            if not isinstance(value, pd.Index):
                return None
            out[key] = value
    return (out, scanned[2]) if pack else out


def read_tracklets_packed(path, *, what: str = _WHAT):
    """:func:`read_tracklets_compact`, with the tracklets' rows in one buffer when possible.

    Returns
    -------
    tracklets : dict
        As :func:`read_tracklets_compact` returns it.
    packed : tuple (inds, data) or None
        When the compiled reader took the file and every tracklet (each non-empty dict
        but ``"single"``) has frames of one shape: ``inds`` int64 (n_rows,) and ``data``
        float64 (n_rows, *frame_shape) hold all their frames, tracklet after tracklet in
        file order, and each tracklet's :class:`FrameBlock` is a view of its rows.
        None otherwise.

    Raises
    ------
    FileNotFoundError, ValueError, UnsafePickleError
        As :func:`read_tracklets_compact`.
    """
    path = Path(os.fspath(path))
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as fh:
            data = fh.read()
        fast = _read_spans_and_blocks(data, pack=True)
        if fast is not None:
            return fast
    return read_tracklets_compact(path, what=what), None


def read_tracklets_compact(path, *, what: str = _WHAT) -> dict:
    """Read a tracklet pickle with every tracklet as one :class:`FrameBlock`.

    Same file, same keys in the same order as :func:`read_pickle` gives, but each
    tracklet's ``{frame_key: (n_bodyparts, c) array}`` dict (and ``"single"``) comes back
    as ``FrameBlock(inds, data)`` built in one copy, without creating one ndarray per
    frame.  Dicts that do not fit one block (mixed frame shapes, unusual keys) are
    returned as read, with real arrays.  Files holding anything besides dicts and the
    header index are read by the general restricted unpickler instead.

    The file is first parsed byte by byte by a compiled reader
    (:func:`mapose.kernels.stitch_pickle.scan_tracklets`, no Python object per frame);
    files outside its grammar (protocol 2's latin-1 bytes, float32 or Fortran frames,
    unsorted frames, anything unusual) go through the restricted unpickler with
    deferred arrays, and truncated or corrupt ones through :func:`read_pickle`.

    Raises
    ------
    FileNotFoundError, ValueError, UnsafePickleError
        As :func:`mapose.io.safe_pickle.read_pickle`.
    """
    from mapose.kernels.stitch_pickle import PLACEHOLDERS, compact_frames, materialize

    path = Path(os.fspath(path))
    obj = None
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as fh:
            data = fh.read()
        fast = _read_spans_and_blocks(data)
        if fast is not None:
            return fast
        try:
            obj = CompactTrackletUnpickler(io.BytesIO(data)).load()
        except UnsafePickleError:
            raise
        except Exception:  # truncated, corrupt, or a layout this path does not cover
            obj = None
        if obj is not None and not (isinstance(obj, dict) and all(
                isinstance(v, (dict, pd.Index)) for v in obj.values())):
            obj = None
    if obj is None:
        return read_pickle(path, what=what)  # the general path (and its error messages)
    try:
        for key, val in obj.items():
            if type(val) is dict:
                block = compact_frames(val)
                if block is None:
                    materialize(val)
                else:
                    obj[key] = FrameBlock(*block)
            elif isinstance(val, dict):
                materialize(val)
    except Exception:  # a corrupt array (NumPy refuses its arguments): the general error
        return read_pickle(path, what=what)
    if any(isinstance(k, PLACEHOLDERS) for k in obj):
        return read_pickle(path, what=what)
    return obj
