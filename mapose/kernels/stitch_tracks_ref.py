"""Slow, obviously-correct references for :mod:`mapose.kernels.stitch_tracks` (same
signatures): NumPy expressions and Python loops written after DLC 3.0.2's stitcher."""
from __future__ import annotations

import numpy as np


def row_centroids(data, return_has_xy: bool = False):
    """``Tracklet.centroid``'s NumPy expression, on every row at once."""
    data = np.asarray(data, dtype=np.float64)
    like = data[..., 2:3] + 1e-10
    with np.errstate(invalid="ignore", divide="ignore"):
        cen = np.nansum(data[..., :2] * like, axis=-2) / np.nansum(like, axis=-2)
    if return_has_xy:
        return cen, ~np.isnan(data[..., :2]).all(axis=(1, 2))
    return cen


def place_residuals(src, cen, frames, offsets, first_row):
    """DLC's ``_finalize_tracks`` residual loop on an occupancy table (Python lists)."""
    src = np.array(src, dtype=np.int64, copy=True)
    cen = np.asarray(cen, dtype=np.float64)
    frames = np.asarray(frames, dtype=np.int64)
    n_res = len(first_row)
    res = [frames[offsets[r]:offsets[r + 1]] for r in range(n_res)]
    assign = np.full(n_res, -1, dtype=np.int64)
    order = []

    def free(r):
        return np.flatnonzero((src[:, res[r]] < 0).all(axis=1))

    def join(k, r):
        src[k, res[r]] = first_row[r] + np.arange(len(res[r]))
        assign[r] = k
        order.append(r)

    left = list(range(n_res))
    changed = True
    while changed and left:
        changed = False
        for r in list(left):
            fits = free(r)
            if fits.size == 1:
                join(int(fits[0]), r)
                left.remove(r)
                changed = True
    for r in left:
        cand = free(r)
        if not cand.size:
            continue
        costs = np.full(cand.size, np.inf)
        c_first = cen[first_row[r]]
        c_last = cen[first_row[r] + len(res[r]) - 1]
        start, end = res[r][0], res[r][-1]
        for k, ti in enumerate(cand.tolist()):
            before = np.flatnonzero(src[ti, :start] >= 0)
            after = np.flatnonzero(src[ti, end:] >= 0)
            if not before.size or not after.size:
                continue
            fl, fr = int(before[-1]), int(after[0]) + end
            d_left = np.sqrt(np.sum((cen[src[ti, fl]] - c_first) ** 2))
            d_right = np.sqrt(np.sum((cen[src[ti, fr]] - c_last) ** 2))
            if start - fl <= 3:
                costs[k] = d_left
            elif fr - end <= 3:
                costs[k] = d_right
            else:
                costs[k] = d_left + d_right
        if np.all(np.isinf(costs)):
            continue
        valid = np.flatnonzero(~np.isinf(costs))
        join(int(cand[valid[0]]) if valid.size == 1 else int(np.argmin(costs)), r)
    return assign, np.array(order, dtype=np.int64), src


def fill_columns(table_t, data, rows, col0: int) -> None:
    """NumPy fancy assignment of x/y/likelihood per body part, in place."""
    data = np.asarray(data, dtype=np.float64)
    n, nb = data.shape[:2]
    table_t[col0:col0 + 3 * nb, np.asarray(rows)] = data[..., :3].reshape(n, 3 * nb).T
