"""Slow, obviously-correct NumPy reference for :mod:`mapose.kernels.tracking`.

Used only by the tests (and as a readable statement of what the compiled trackers
compute).  The Kalman filter here is the textbook full-matrix filter with filterpy 1.4.x
semantics (``kinematic_kf(dim, 1, order_by_dim=False)``: ``dim_z`` ignored, ``H = [I | 0]``,
Joseph-form covariance update); the compiled kernel exploits the block structure of those
matrices instead.  Same classes and signatures as the gateway.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "KalmanFilter", "fit_ellipses", "ellipse_similarity", "weighted_hausdorff",
    "iou_matrix", "EllipseSORT", "BoxSORT", "SkeletonSORT",
]


class KalmanFilter:
    """Constant-velocity filter over ``dim`` positions (state = positions, then velocities)."""

    def __init__(self, dim: int, dim_x: int | None = None, dim_z: int | None = None):
        dim_x = 2 * dim if dim_x is None else dim_x
        dim_z = dim if dim_z is None else dim_z
        self.dim_z = dim_z
        self.x = np.zeros((dim_x, 1))
        self.P = np.eye(dim_x)
        self.Q = np.eye(dim_x)
        self.R = np.eye(dim_z)
        self.F = np.eye(dim_x)
        if dim_x == 2 * dim:
            self.F[:dim, dim:] = np.eye(dim)
        self.H = np.zeros((dim_z, dim_x))
        self.H[:dim_z, :dim_z] = np.eye(dim_z)

    def predict(self):
        self.x = self.F @ self.x
        self.P = (self.F @ self.P) @ self.F.T + self.Q

    def update(self, z, H=None):
        H = self.H if H is None else H
        z = np.asarray(z, dtype=float).reshape(-1, 1)
        y = z - H @ self.x
        PHT = self.P @ H.T
        S = H @ PHT + self.R
        K = PHT @ np.linalg.inv(S)
        self.x = self.x + K @ y
        I_KH = np.eye(len(self.x)) - K @ H
        self.P = (I_KH @ self.P) @ I_KH.T + (K @ self.R) @ K.T


class _Track:
    def __init__(self, kf, tid, ident=np.nan):
        self.kf = kf
        self.id = tid
        self.ident = ident
        self.time_since_update = 0
        self.age = 0
        self.hits = 0
        self.hit_streak = 0

    def update(self, z):
        self.time_since_update = 0
        self.hits += 1
        self.hit_streak += 1
        self.kf.update(z)

    def predict(self):
        self.kf.predict()
        self.age += 1
        if self.time_since_update > 0:
            self.hit_streak = 0
        self.time_since_update += 1


def _ellipse_kf(params):
    kf = KalmanFilter(5)
    kf.R[2:, 2:] *= 10.0
    kf.P[5:, 5:] *= 1000.0
    kf.P *= 10.0
    kf.Q[5:, 5:] *= 0.01
    kf.x[:5, 0] = params
    return kf


def _box_to_z(b):
    w = b[2] - b[0]
    h = b[3] - b[1]
    return np.array([b[0] + w / 2.0, b[1] + h / 2.0, w * h, w / h])


def _x_to_box(x):
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.sqrt(x[2] * x[3])
        h = x[2] / w
    return np.array([x[0] - w / 2.0, x[1] - h / 2.0, x[0] + w / 2.0, x[1] + h / 2.0])


def _box_kf(bbox):
    kf = KalmanFilter(4, dim_x=7, dim_z=4)
    kf.F = np.eye(7)
    kf.F[0, 4] = kf.F[1, 5] = kf.F[2, 6] = 1.0
    kf.R[2:, 2:] *= 10.0
    kf.P[4:, 4:] *= 1000.0
    kf.P *= 10.0
    kf.Q[-1, -1] *= 0.01
    kf.Q[4:, 4:] *= 0.01
    kf.x[:4, 0] = _box_to_z(bbox)
    return kf


def _skeleton_kf(pose):
    n = pose.shape[0]
    kf = KalmanFilter(2 * n)
    kf.Q[2 * n:, 2 * n:] *= 10.0
    kf.P[2 * n:, 2 * n:] *= 1000.0
    pose = np.array(pose[:, :2], dtype=float)
    empty = np.isnan(pose).all(axis=1)
    if empty.any():
        with np.errstate(invalid="ignore"), _quiet():
            pose[empty] = np.nanmean(pose, axis=0)
    kf.x[: 2 * n, 0] = pose.ravel()
    return kf


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def fit_ellipses(poses, sd: float = 2.0):
    """Error ellipse ``[x, y, width, height, theta]`` per pose; NaN row if < 3 finite points.

    Parameters
    ----------
    poses : ndarray of shape (n_animals, n_bodyparts, >=2)
    sd : float
        Number of standard deviations spanned by each semi-axis.
    """
    poses = np.asarray(poses, dtype=float)
    out = np.full((len(poses), 5), np.nan)
    for i, pose in enumerate(poses):
        xy = pose[:, :2]
        xy = xy[np.isfinite(xy).all(axis=1)]
        if len(xy) < 3:
            continue
        cov = np.cov(xy[:, 0], xy[:, 1])
        e, v = np.linalg.eigh(cov)
        h, w = 2 * sd * np.sqrt(e)
        theta = np.arctan2(v[1, 1], v[0, 1]) % np.pi
        params = np.array([xy[:, 0].mean(), xy[:, 1].mean(), w, h, theta])
        if np.isfinite(params).all():
            out[i] = params
    return out


def ellipse_similarity(a, b):
    """Similarity in [0, 1] of two ellipses given as ``[x, y, width, height, theta]``."""
    m = max(a[3], a[2], b[3], b[2]) or 1.0
    dist = np.hypot(a[0] - b[0], a[1] - b[1])
    c1 = 1 - min(dist / m, 1)
    c2 = abs(np.cos(a[4] - b[4]))
    return 0.8 * c1 + 0.2 * c2 * c1


def iou_matrix(boxes1, boxes2):
    """Pairwise IoU (float32) of ``[x1, y1, x2, y2, ...]`` boxes; NaN where undefined."""
    out = np.zeros((len(boxes1), len(boxes2)), dtype=np.float32)
    for i, a in enumerate(boxes1):
        for j, b in enumerate(boxes2):
            w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            inter = w * h
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
            with np.errstate(invalid="ignore", divide="ignore"):
                out[i, j] = np.float64(inter) / np.float64(union)
    return out


def weighted_hausdorff(x, y):
    """Directed Hausdorff distance from ``x`` to ``y`` (early-break scan; NaN rows ignored)."""
    cmax = 0.0
    for i in range(x.shape[0]):
        no_break = True
        cmin = np.inf
        for j in range(y.shape[0]):
            d = (x[i, 0] - y[j, 0]) ** 2 + (x[i, 1] - y[j, 1]) ** 2
            if d < cmax:
                no_break = False
                break
            if d < cmin:
                cmin = d
        if cmin != np.inf and cmin > cmax and no_break:
            cmax = cmin
    return np.sqrt(cmax)


def _split_matches(cost, rows, cols, threshold, n_det, n_trk, below):
    unmatched_det = [d for d in range(n_det) if d not in rows]
    unmatched_trk = [t for t in range(n_trk) if t not in cols]
    matches = []
    for r, c in zip(rows, cols):
        if below(cost[r, c], threshold):
            unmatched_det.append(r)
            unmatched_trk.append(c)
        else:
            matches.append((r, c))
    return matches, unmatched_det, unmatched_trk


class _SortBase:
    def __init__(self, max_age, min_hits, threshold):
        self.max_age = max_age
        self.min_hits = min_hits
        self.threshold = threshold
        self.trackers: list[_Track] = []
        self.n_frames = 0
        self.n_created = 0

    def _emit(self, animalindex, state_fn):
        ret = []
        i = len(self.trackers)
        for trk in reversed(list(self.trackers)):
            if trk.time_since_update < 1 and (
                trk.hit_streak >= self.min_hits or self.n_frames <= self.min_hits
            ):
                ret.append(np.r_[state_fn(trk), trk.id, animalindex[i - 1]])
            i -= 1
            if trk.time_since_update > self.max_age:
                self.trackers.pop(i)
        return ret

    def _new(self, kf, ident=np.nan):
        t = _Track(kf, self.n_created, ident)
        self.n_created += 1
        return t


class EllipseSORT(_SortBase):
    """Reference SORT over error ellipses (see :class:`mapose.kernels.tracking.EllipseSORT`)."""

    def __init__(self, max_age=1, min_hits=1, iou_threshold=0.6, sd=2.0):
        super().__init__(max_age, min_hits, iou_threshold)
        self.sd = sd

    def track(self, poses, pose_ids=None):
        self.n_frames += 1
        preds = []
        keep = []
        for trk in self.trackers:
            trk.predict()
            p = trk.kf.x[:5, 0].copy()
            if not np.isnan(p).any():
                keep.append(trk)
                preds.append(p)
        self.trackers = keep
        fits = fit_ellipses(poses, self.sd)
        ok = np.flatnonzero(~np.isnan(fits).any(axis=1))
        ellipses = fits[ok]
        ids = None if pose_ids is None else np.asarray(pose_ids, dtype=float)[ok]
        cost = np.zeros((len(ellipses), len(preds)))
        for i, el in enumerate(ellipses):
            for j, pr in enumerate(preds):
                c = ellipse_similarity(el, pr)
                if ids is not None:
                    c *= 2 if ids[i] == self.trackers[j].ident else 1
                cost[i, j] = c
        if len(preds):
            rows, cols = linear_sum_assignment(cost, maximize=True)
        else:
            rows = cols = np.empty(0, int)
        matches, un_det, un_trk = _split_matches(
            cost, rows, cols, self.threshold, len(ellipses), len(preds), lambda v, t: v < t
        )
        animalindex = []
        for t, trk in enumerate(self.trackers):
            if t in un_trk:
                animalindex.append(-1)
            else:
                ind = next(r for r, c in matches if c == t)
                animalindex.append(ind)
                trk.update(ellipses[ind])
        for i in un_det:
            self.trackers.append(
                self._new(_ellipse_kf(ellipses[i]), np.nan if ids is None else ids[i])
            )
            animalindex.append(i)
        ret = self._emit(animalindex, lambda trk: trk.kf.x[:5, 0])
        return np.array(ret) if ret else np.empty((0, 7))


class BoxSORT(_SortBase):
    """Reference SORT over boxes (see :class:`mapose.kernels.tracking.BoxSORT`)."""

    def __init__(self, max_age=1, min_hits=1, iou_threshold=0.3):
        super().__init__(max_age, min_hits, iou_threshold)

    def track(self, dets):
        self.n_frames += 1
        preds = []
        keep = []
        for trk in self.trackers:
            if trk.kf.x[6, 0] + trk.kf.x[2, 0] <= 0:
                trk.kf.x[6, 0] *= 0.0
            trk.predict()
            p = _x_to_box(trk.kf.x[:, 0])
            if not np.isnan(p).any():
                keep.append(trk)
                preds.append(p)
        self.trackers = keep
        dets = np.asarray(dets, dtype=float)
        iou = iou_matrix(dets, preds)
        iou = np.where(np.isnan(iou), np.float32(0), iou)
        if len(preds) and len(dets):
            rows, cols = linear_sum_assignment(-iou)
        else:
            rows = cols = np.empty(0, int)
        matches, un_det, un_trk = _split_matches(
            iou, rows, cols, self.threshold, len(dets), len(preds), lambda v, t: v < t
        )
        animalindex = []
        for t, trk in enumerate(self.trackers):
            if t in un_trk:
                animalindex.append(-1)
            else:
                ind = next(r for r, c in matches if c == t)
                animalindex.append(ind)
                trk.update(_box_to_z(dets[ind]))
        for i in un_det:
            self.trackers.append(self._new(_box_kf(dets[i])))
            animalindex.append(i)
        ret = self._emit(animalindex, lambda trk: _x_to_box(trk.kf.x[:, 0]))
        return np.array(ret) if ret else np.empty((0, 5))


class SkeletonSORT(_SortBase):
    """Reference skeleton tracker (see :class:`mapose.kernels.tracking.SkeletonSORT`)."""

    def __init__(self, n_bodyparts, max_age=20, min_hits=3, oks_threshold=0.5):
        super().__init__(max_age, min_hits, oks_threshold)
        self.n_bodyparts = n_bodyparts

    def _update(self, trk, pose):
        flat = np.asarray(pose[:, :2], dtype=float).ravel()
        empty = np.isnan(flat)
        if empty.any():
            H = trk.kf.H.copy()
            H[empty] = 0
            z = flat.copy()
            z[empty] = 0
            trk.kf.update(z, H=H)
        else:
            trk.update(flat)

    def track(self, poses):
        poses = np.asarray(poses, dtype=float)
        self.n_frames += 1
        if not self.trackers:
            for pose in poses:
                self.trackers.append(self._new(_skeleton_kf(pose)))
        preds = []
        for trk in self.trackers:
            trk.predict()
            preds.append(trk.kf.x[: 2 * self.n_bodyparts, 0].reshape(-1, 2))
        cost = np.zeros((len(poses), len(preds)))
        for i, pose in enumerate(poses):
            for j, pr in enumerate(preds):
                cost[i, j] = weighted_hausdorff(pose[:, :2], pr)
        rows, cols = linear_sum_assignment(cost)
        un_det = [d for d in range(len(poses)) if d not in rows]
        animalindex = []
        for t, trk in enumerate(self.trackers):
            hit = np.flatnonzero(cols == t)
            if hit.size:
                ind = rows[hit[0]]
                animalindex.append(ind)
                self._update(trk, poses[ind])
            else:
                animalindex.append(-1)
        for i in un_det:
            self.trackers.append(self._new(_skeleton_kf(poses[i])))
            animalindex.append(i)
        ret = []
        for i in range(len(self.trackers) - 1, -1, -1):
            trk = self.trackers[i]
            if trk.time_since_update > self.max_age:
                self.trackers.pop(i)
                continue
            trk.predict()
            ret.append(np.r_[trk.kf.x[: 2 * self.n_bodyparts, 0], trk.id, animalindex[i]])
        n = 2 * self.n_bodyparts + 2
        return np.array(ret) if ret else np.empty((0, n))
