"""Gateway to the compiled tracklet-pickle readers (``csrc/stitch_pickle.pyx``).

:func:`scan_tracklets` parses a whole tracklet pickle byte by byte (the default reader
of :func:`mapose.io.tracklets_pickle.read_tracklets_compact`).  For files outside its
grammar:

:func:`compact_frames` turns one tracklet's ``{frame_key: array}`` dict, as loaded by
:class:`mapose.io.tracklets_pickle.CompactTrackletUnpickler` (arrays still as
placeholders), into ``(inds, data)`` with one copy; :func:`materialize` gives any
placeholder (also inside lists, tuples and dicts) its real ndarray.
"""
from __future__ import annotations

import numpy as np
from numpy._core.multiarray import _reconstruct, scalar
from numpy._core.numeric import _frombuffer

from mapose._cy import load

_sp = load("stitch_pickle")
_sp.set_reconstructors(_frombuffer, _reconstruct)
_sp.set_globals(_reconstruct, np.ndarray, np.dtype, _frombuffer, scalar)

FromBuffer = _sp.FromBuffer
Reconstructed = _sp.Reconstructed
PLACEHOLDERS = (FromBuffer, Reconstructed)

__all__ = ["FromBuffer", "Reconstructed", "PLACEHOLDERS", "compact_frames", "materialize",
           "scan_tracklets"]


def scan_tracklets(data, pack=False):
    """Parse a tracklet pickle's bytes without unpickling its arrays (compiled).

    The opcodes are run symbolically: no global is resolved and nothing is executed.
    Tracklet dicts (``"frameNNN"``/int keys, strictly increasing, -> float64 C-ordered
    arrays of one shape, as NumPy pickles them in protocols 3-5) are copied straight
    into one block each; other top-level values (the header index) come back as opcode
    spans for the restricted unpickler.

    Parameters
    ----------
    data : bytes, bytearray or memoryview, shape (n_bytes,)
        The whole file's contents.

    pack : bool, default False
        Copy all tracklets (every dict but ``"single"``) into one ``(inds, data)`` buffer
        pair when their frames share one shape; their blocks are then views of it, in
        file order.

    Returns
    -------
    None or (proto, entries) or, with ``pack``, (proto, entries, packed)
        None when any part of the file is outside the recognised grammar, including
        truncated or corrupt files: the caller must then use the general reader.
        ``entries`` is a list of ``(key, kind, payload)`` in file order, ``kind`` one
        of ``"block"`` (payload ``(inds int64 (n,), data float64 (n, *frame_shape))``),
        ``"empty"`` (payload ``{}``) or ``"span"`` (payload ``(body bytes, memo dict)``).
        ``packed`` is ``(inds, data)``, the buffers the tracklet blocks are views of, or
        None when they could not share one.

    Raises
    ------
    TypeError
        If ``data`` is not a bytes-like object.
    """
    if isinstance(data, str) or not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, bytearray or memoryview (the file's contents); "
                        f"got {type(data).__name__}.")
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1 or not view.c_contiguous:
        view = memoryview(view.tobytes())
    return _sp.scan_tracklets(view.cast("B"), bool(pack))


def compact_frames(frames: dict):
    """One tracklet's frames as ``(inds, data)``, or None if they do not fit one block.

    Parameters
    ----------
    frames : dict
        ``{"frameNNN" or int: array or placeholder}`` (one tracklet of a tracklet pickle).

    Returns
    -------
    inds : ndarray of int64, shape (n_frames,)
        Frame numbers, in dict order.
    data : ndarray of float64, shape (n_frames, *frame_shape)
        The frames stacked, bit for bit.

    None is returned (nothing is raised) when a key is not ``"frame<digits>"``/int, or a
    value is not a C-ordered float64 placeholder of the common shape; callers then use
    the general path on the :func:`materialize`-d values.

    Raises
    ------
    TypeError
        If ``frames`` is not a dict.
    """
    if not isinstance(frames, dict):
        raise TypeError(f"frames must be a dict {{frame_key: array}}; got {type(frames).__name__}.")
    if type(frames) is not dict:
        frames = dict(frames)
    return _sp.compact_frames(frames)


def materialize(obj, _depth: int = 0):
    """Replace array placeholders by real ndarrays, in place in dicts and lists.

    Tuples are rebuilt (they are immutable); other objects are returned unchanged.
    """
    t = type(obj)
    if t is Reconstructed and obj.state is not None and _depth <= 100:
        obj.state = materialize(obj.state, _depth + 1)  # e.g. object arrays of arrays
    if t is FromBuffer or t is Reconstructed:
        return _sp.materialize(obj)
    if _depth > 100:
        return obj
    if t is dict:
        for k, v in obj.items():
            if type(v) in (FromBuffer, Reconstructed, dict, list, tuple):
                obj[k] = materialize(v, _depth + 1)
        return obj
    if t is list:
        for i, v in enumerate(obj):
            if type(v) in (FromBuffer, Reconstructed, dict, list, tuple):
                obj[i] = materialize(v, _depth + 1)
        return obj
    if t is tuple:
        if any(type(v) in (FromBuffer, Reconstructed, dict, list, tuple) for v in obj):
            return tuple(materialize(v, _depth + 1) for v in obj)
        return obj
    return obj


