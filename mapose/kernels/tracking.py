"""Tracking gateway: validated entry points to the compiled SORT kernels.

The classes here are the per-frame engines behind :mod:`mapose.tracking.sort`: subclasses
of the compiled cores in ``mapose._cy.tracking`` that read float64 ndarrays in place (a
few C-level checks per frame) and send every other input through ``_coerce``, which
validates shapes and dtypes with clear errors and converts to float64.
:mod:`mapose.kernels.tracking_ref` holds the slow NumPy reference with the same API.
"""
from __future__ import annotations

import numpy as np

from mapose._cy import load
from mapose.kernels.iou import iou_matrix

_trk = load("tracking")

KalmanTracker = _trk.KalmanTracker

__all__ = [
    "KalmanTracker", "fit_ellipses", "ellipse_similarity", "weighted_hausdorff",
    "iou_matrix", "clean_assemblies", "box_corners", "EllipseSORT", "BoxSORT", "SkeletonSORT",
]


def _poses(poses, name="poses", n_bodyparts=None) -> np.ndarray:
    arr = np.asarray(poses)
    if arr.ndim == 2 and arr.shape[0] == 0:
        arr = arr.reshape(0, 0 if n_bodyparts is None else n_bodyparts, 2)
    if arr.ndim != 3 or arr.shape[2] < 2:
        raise ValueError(
            f"{name} must have shape (n_animals, n_bodyparts, 2+) with x, y first; got shape "
            f"{arr.shape}. Stack one frame's assemblies, e.g. np.stack([a.data for a in assemblies])."
        )
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers; got dtype {arr.dtype}.")
    if n_bodyparts is not None and arr.shape[1] != n_bodyparts and arr.shape[0]:
        raise ValueError(
            f"{name} has {arr.shape[1]} bodyparts per animal but the tracker was built for "
            f"n_bodyparts={n_bodyparts}. Build it with the number of keypoints you pass."
        )
    return np.ascontiguousarray(arr[..., :2], dtype=np.float64)


def fit_ellipses(poses, sd: float = 2.0) -> np.ndarray:
    """Covariance error ellipse of each pose.

    Parameters
    ----------
    poses : array_like of shape (n_animals, n_bodyparts, 2+)
    sd : float, default 2
        Semi-axes span ``sd`` standard deviations.

    Returns
    -------
    ndarray of shape (n_animals, 5)
        ``[x, y, width, height, theta]`` (theta in radians, in [0, pi]); an all-NaN row
        where fewer than 3 keypoints are finite.
    """
    return _trk.fit_ellipses(_poses(poses), float(sd))


def ellipse_similarity(ellipses1, ellipses2) -> np.ndarray:
    """Pairwise similarity in [0, 1] of ``[x, y, w, h, theta]`` ellipses, shape (n, m)."""
    a = np.ascontiguousarray(np.asarray(ellipses1, dtype=np.float64).reshape(-1, 5))
    b = np.ascontiguousarray(np.asarray(ellipses2, dtype=np.float64).reshape(-1, 5))
    return _trk.ellipse_similarity_matrix(a, b)


def weighted_hausdorff(x, y) -> float:
    """Directed Hausdorff distance from keypoints ``x`` (n, 2) to ``y`` (m, 2); NaN ignored."""
    a = _poses(np.asarray(x)[None], "x")
    b = _poses(np.asarray(y)[None], "y")
    return float(_trk.hausdorff_matrix(a, b)[0, 0])


def clean_assemblies(animals: np.ndarray, pcutoff=None) -> np.ndarray:
    """Hide padding and low-score keypoints in place; indices of animals still visible.

    Parameters
    ----------
    animals : ndarray of shape (n_animals, n_bodyparts, 3+), float64, C-contiguous
        x, y, score[, identity]; keypoints with a negative x, y or score, or a score
        below ``pcutoff``, get NaN x and y (modified in place).
    pcutoff : float, optional

    Returns
    -------
    ndarray of shape (n_visible,), intp
        Animals with at least one x or y left.
    """
    if not (isinstance(animals, np.ndarray) and animals.dtype == np.float64 and animals.ndim == 3
            and animals.flags.c_contiguous and animals.flags.writeable):
        raise TypeError(
            "animals must be a writeable C-contiguous float64 array of shape (n_animals, "
            f"n_bodyparts, 3+); got {type(animals).__name__} {getattr(animals, 'shape', '')}."
        )
    return _trk.clean_assemblies(animals, None if pcutoff is None else float(pcutoff))


def box_corners(animals, bodyparts=None, slack: float = 0.0) -> np.ndarray:
    """``[x1, y1, x2, y2]`` boxes (n_animals, 4) around the finite keypoints of ``bodyparts``.

    The first four columns of :func:`mapose.calc_bboxes_from_keypoints` (what the box
    tracker reads), computed in one compiled pass.  ``bodyparts``: indices along axis 1
    (default: all).
    """
    a = animals
    if not (isinstance(a, np.ndarray) and a.dtype == np.float64 and a.ndim == 3 and a.shape[2] >= 2
            and a.flags.c_contiguous):
        a = _poses(animals, "animals")
    idx = np.arange(a.shape[1]) if bodyparts is None else np.asarray(bodyparts, dtype=np.intp)
    return _trk.box_corners(a, np.ascontiguousarray(idx, dtype=np.intp), float(slack))


class EllipseSORT(_trk.EllipseSORT):
    """Per-frame SORT over error ellipses (engine of :class:`mapose.SORTEllipse`).

    ``track(poses (n, n_bodyparts, 2+), identities=None)`` returns rows
    ``[x, y, w, h, theta, tracker id, pose index]`` of shape (k, 7); ``identities`` is
    one identity per keypoint (n, n_bodyparts) or per pose (n,).  float64 ndarrays go
    straight to the kernel; anything else is validated and converted by :meth:`_coerce`.
    """

    def __init__(self, max_age=1, min_hits=1, iou_threshold=0.6, sd=2.0):
        super().__init__(int(max_age), int(min_hits), float(iou_threshold), float(sd))

    def _coerce(self, poses):
        return _poses(poses)


class BoxSORT(_trk.BoxSORT):
    """Per-frame SORT over boxes (engine of :class:`mapose.SORTBox`).

    ``track(dets (n, 4+))`` returns rows ``[x1, y1, x2, y2, tracker id, box index]``.
    """

    def __init__(self, max_age=1, min_hits=1, iou_threshold=0.3):
        super().__init__(int(max_age), int(min_hits), float(iou_threshold))

    def _coerce(self, dets):
        d = np.asarray(dets)
        if d.ndim == 1 and d.size == 0:
            d = d.reshape(0, 5)
        if d.ndim != 2 or d.shape[1] < 4:
            raise ValueError(
                f"dets must have shape (n_boxes, 4+) holding [x1, y1, x2, y2, ...]; got shape "
                f"{d.shape}. Use calc_bboxes_from_keypoints(poses) to build boxes."
            )
        if d.dtype.kind not in "fiub":
            raise TypeError(f"dets must hold real numbers; got dtype {d.dtype}.")
        return np.ascontiguousarray(d, dtype=np.float64)


class SkeletonSORT(_trk.SkeletonSORT):
    """Per-frame skeleton tracker (engine of :class:`mapose.SORTSkeleton`).

    ``track(poses (n, n_bodyparts, 2+))`` returns rows ``[x0, y0, ..., tracker id, pose
    index]`` of shape (k, 2 n_bodyparts + 2).
    """

    def __init__(self, n_bodyparts, max_age=20, min_hits=3, oks_threshold=0.5):
        n = int(n_bodyparts)
        if n < 1:
            raise ValueError(f"n_bodyparts must be >= 1; got {n_bodyparts!r}.")
        super().__init__(n, int(max_age), int(min_hits), float(oks_threshold))

    def _coerce(self, poses):
        return _poses(poses, n_bodyparts=self.n_bodyparts)
