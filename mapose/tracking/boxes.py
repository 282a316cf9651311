"""Bounding boxes from keypoints (DLC's ``trackingutils.calc_bboxes_from_keypoints``)."""
from __future__ import annotations

import numpy as np

__all__ = ["calc_bboxes_from_keypoints"]


def calc_bboxes_from_keypoints(data, slack=0, offset=0):
    """Axis-aligned box around each animal's keypoints, with its mean likelihood.

    Parameters
    ----------
    data : array_like of shape (n_animals, n_bodyparts, >=3) or (n_bodyparts, >=3)
        ``x, y, likelihood[, ...]`` per keypoint; NaN keypoints are ignored.  A 2-D array
        is one animal.
    slack : float, default 0
        Margin added on every side, in pixels.
    offset : float, default 0
        Added to both x coordinates (e.g. a crop offset).

    Returns
    -------
    ndarray of shape (n_animals, 5), float64
        ``[x1, y1, x2, y2, mean likelihood]``; all-NaN for an animal without any finite
        keypoint.

    Raises
    ------
    ValueError
        If ``data`` has fewer than 3 channels (no likelihood) or is not 2-D/3-D.
    """
    data = np.asarray(data)
    if data.ndim not in (2, 3) or data.shape[-1] < 3:
        raise ValueError(
            f"data must have shape (n_animals, n_bodyparts, 3+) with x, y, likelihood "
            f"channels; got shape {data.shape}. Data should include likelihood."
        )
    if not np.issubdtype(data.dtype, np.number):
        raise TypeError(f"data must be numeric; got dtype {data.dtype}.")
    if data.ndim == 2:
        data = data[None]
    data = data.astype(np.float64, copy=False)
    n = data.shape[0]
    bboxes = np.full((n, 5), np.nan)
    if n == 0 or data.shape[1] == 0:
        return bboxes
    xy = data[..., :2]
    finite = ~np.isnan(xy)
    # Same values as nanmin/nanmax/nanmean, without their all-NaN RuntimeWarnings.
    any_x = finite[..., 0].any(axis=1)
    any_y = finite[..., 1].any(axis=1)
    bboxes[any_x, 0] = np.where(finite[..., 0], xy[..., 0], np.inf).min(axis=1)[any_x] - slack
    bboxes[any_y, 1] = np.where(finite[..., 1], xy[..., 1], np.inf).min(axis=1)[any_y] - slack
    bboxes[any_x, 2] = np.where(finite[..., 0], xy[..., 0], -np.inf).max(axis=1)[any_x] + slack
    bboxes[any_y, 3] = np.where(finite[..., 1], xy[..., 1], -np.inf).max(axis=1)[any_y] + slack
    lik = data[..., 2]
    ok = ~np.isnan(lik)
    cnt = ok.sum(axis=1)
    has = cnt > 0
    bboxes[has, 4] = np.where(ok, lik, 0.0).sum(axis=1)[has] / cnt[has]
    bboxes[:, 0] += offset
    bboxes[:, 2] += offset
    return bboxes
