"""Gateway to the stitcher's per-frame kernels (``csrc/stitch_tracks.pyx``).

:func:`row_centroids` gives DLC's tracklet centroid of every row of a keypoint array;
:func:`place_residuals` decides where DLC's ``_finalize_tracks`` puts each residual.
Both are exact: the same bits / the same decisions as the NumPy references in
:mod:`mapose.kernels.stitch_tracks_ref`.
"""
from __future__ import annotations

import numpy as np

from mapose._cy import load

_st = load("stitch_tracks")

__all__ = ["row_centroids", "place_residuals", "fill_columns"]


def row_centroids(data, return_has_xy: bool = False):
    """Likelihood-weighted centroid of each row (``Tracklet.centroid``'s formula).

    Parameters
    ----------
    data : array_like of float, shape (n_rows, n_bodyparts, 3 or more)
        ``x, y, likelihood[, ...]`` per body part.  Any strides; float64 is read in place.

    return_has_xy : bool, default False
        Also return which rows have any x or y that is not NaN.

    Returns
    -------
    ndarray of float64, shape (n_rows, 2)
        ``nansum(xy * w) / nansum(w)`` over body parts with ``w = likelihood + 1e-10``
        (NaN terms skipped, as ``numpy.nansum``); NaN where every weight is NaN.
    has_xy : ndarray of bool, shape (n_rows,)
        Only with ``return_has_xy``: ``~isnan(data[..., :2]).all(axis=(1, 2))``.

    Raises
    ------
    ValueError
        If ``data`` is not 3-D with at least 3 values per body part.
    """
    data = np.asarray(data)
    if data.ndim != 3 or data.shape[-1] < 3:
        raise ValueError(
            f"data must have shape (n_rows, n_bodyparts, 3 or 4) (x, y, likelihood[, identity]); "
            f"got shape {data.shape}."
        )
    if data.dtype != np.float64:
        if data.dtype.kind not in "fiub":
            raise ValueError(f"data must be numeric; got dtype {data.dtype}.")
        data = data.astype(np.float64)
    out = np.empty((data.shape[0], 2), dtype=np.float64)
    has_xy = np.zeros(data.shape[0], dtype=np.uint8)
    if data.shape[0]:
        _st.row_centroids(data, out, has_xy)
    return (out, has_xy.view(bool)) if return_has_xy else out


def place_residuals(src, cen, frames, offsets, first_row):
    """Which track each residual joins (DLC 3.0.2's ``_finalize_tracks``).

    Residuals are visited in the given order (DLC: longest first).  (1) Sweeps over the
    residuals not placed yet put every residual that shares no frame with exactly one
    track into that track, until a sweep places none.  (2) Each remaining residual, in
    order, goes to the candidate track (sharing no frame with it) whose poses just before
    and after it are closest: the distance on the side whose gap is at most 3 frames
    (the left side first), else the sum of both; tracks without a pose on both sides are
    not eligible.  With one eligible track it is taken; with several, DLC indexes the
    track list with the position of the best candidate (kept for identical output).

    Parameters
    ----------
    src : array_like of int, shape (n_tracks, n_frames)
        Row of ``cen`` holding the pose each track has at each frame (frame 0 = the
        first frame of the table), -1 where the track has none.  Not modified.
    cen : array_like of float64, shape (n_rows, 2)
        Pose centroids.
    frames : array_like of int, shape (n_residual_rows,)
        Every residual's frames (table positions, ascending within a residual), residuals
        one after the other.
    offsets : array_like of int, shape (n_residuals + 1,)
        Residual ``r`` is ``frames[offsets[r]:offsets[r + 1]]`` (at least one frame).
    first_row : array_like of int, shape (n_residuals,)
        ``cen`` row of residual ``r``'s first pose; its others follow in frame order.

    Returns
    -------
    assign : ndarray of int64, shape (n_residuals,)
        Track of each residual, -1 where it stays a residual.
    order : ndarray of int64, shape (n_placed,)
        Placed residuals in placement order (the order tracks append them).
    src : ndarray of int64, shape (n_tracks, n_frames)
        ``src`` after the placements.

    Raises
    ------
    ValueError
        On inconsistent shapes or indices out of range.
    """
    src = np.array(src, dtype=np.int64, order="C", copy=True)
    cen = np.ascontiguousarray(cen, dtype=np.float64)
    frames = np.ascontiguousarray(frames, dtype=np.int64)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    first_row = np.ascontiguousarray(first_row, dtype=np.int64)
    if src.ndim != 2:
        raise ValueError(f"src must be 2-D (n_tracks, n_frames); got shape {src.shape}.")
    if cen.ndim != 2 or cen.shape[1] != 2:
        raise ValueError(f"cen must have shape (n_rows, 2); got {cen.shape}.")
    n_res = first_row.shape[0]
    if frames.ndim != 1 or offsets.shape != (n_res + 1,) or first_row.ndim != 1:
        raise ValueError(
            f"offsets must have n_residuals + 1 = {n_res + 1} entries and frames must be 1-D; "
            f"got offsets {offsets.shape}, frames {frames.shape}."
        )
    if n_res:
        lengths = np.diff(offsets)
        if offsets[0] != 0 or offsets[-1] != frames.size or np.any(lengths < 1):
            raise ValueError("offsets must start at 0, end at len(frames) and give every residual a frame.")
        if frames.min() < 0 or frames.max() >= src.shape[1]:
            raise ValueError(f"frames must lie in [0, {src.shape[1]}); got [{frames.min()}, {frames.max()}].")
        if first_row.min() < 0 or np.any(first_row + lengths > cen.shape[0]):
            raise ValueError(f"first_row + residual length must not exceed the {cen.shape[0]} rows of cen.")
    if src.size and (src.min() < -1 or src.max() >= cen.shape[0]):
        raise ValueError(f"src must hold -1 or rows of cen in [0, {cen.shape[0]}).")
    assign = np.empty(n_res, dtype=np.int64)
    order = np.empty(n_res, dtype=np.int64)
    count = _st.place_residuals(src, cen, frames, offsets, first_row, assign, order) if n_res else 0
    return assign, order[:count].copy(), src


def fill_columns(table_t, data, rows, col0: int) -> None:
    """Write one track's poses into a transposed track table, in place.

    Parameters
    ----------
    table_t : ndarray of float64, shape (n_columns, n_rows), C-contiguous
        The track table transposed (what a Fortran-ordered DataFrame block is); modified.
    data : array_like of float, shape (n, n_bodyparts, 3 or 4)
        The track's poses (x, y, likelihood[, identity]; the identity is not written).
    rows : array_like of int, shape (n,)
        Table row of each pose; a repeated row keeps the last pose (NumPy's rule).
    col0 : int
        First column of the track: columns ``col0 .. col0 + 3 * n_bodyparts - 1``.

    Raises
    ------
    ValueError
        On a shape, dtype or index mismatch.
    """
    if not (isinstance(table_t, np.ndarray) and table_t.dtype == np.float64 and table_t.ndim == 2
            and table_t.flags.c_contiguous and table_t.flags.writeable):
        raise ValueError("table_t must be a writeable C-contiguous 2-D float64 array (the transposed table).")
    data = np.asarray(data)
    if data.ndim != 3 or data.shape[-1] < 3:
        raise ValueError(f"data must have shape (n, n_bodyparts, 3 or 4); got {data.shape}.")
    data = data.astype(np.float64, copy=False)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if rows.shape != (data.shape[0],):
        raise ValueError(f"rows must have one entry per pose ({data.shape[0]}); got shape {rows.shape}.")
    if not 0 <= col0 <= table_t.shape[0] - 3 * data.shape[1]:
        raise ValueError(f"columns {col0}..{col0 + 3 * data.shape[1] - 1} do not fit the table's {table_t.shape[0]}.")
    if rows.size and (rows.min() < 0 or rows.max() >= table_t.shape[1]):
        raise ValueError(f"rows must lie in [0, {table_t.shape[1]}); got [{rows.min()}, {rows.max()}].")
    if rows.size:
        _st.fill_columns(table_t, data, rows, int(col0))
