"""DLC-compatible SORT trackers, ellipse model and tracklet filling (``core/trackingutils``).

``SORTEllipse``, ``SORTBox`` and ``SORTSkeleton`` take DLC's constructor arguments and
return DLC's per-frame arrays; the per-frame work (Kalman filters with filterpy 1.4.x
semantics, ellipse fits, similarity / IoU / Hausdorff costs, optimal assignment) runs in
``mapose._cy.tracking``.  See ``dlc-tracking-spec.md`` §3.

Deviations from DLC, all where DLC crashes or is non-deterministic:

* ``SORTBox``: a NaN IoU (two zero-area boxes) counts as no overlap instead of making
  SciPy raise.
* ``SORTSkeleton`` checks that poses have ``n_bodyparts`` keypoints (DLC fails deep in
  NumPy with a broadcasting error).
* Tracker ids count per SORT instance; DLC shares one class-level counter between all
  instances of a tracker class (reset by each constructor), which only differs when two
  instances are used alternately.
"""
from __future__ import annotations

import numpy as np

from mapose.kernels import tracking as _k
from mapose.kernels.iou import calc_iou
from mapose.tracking.boxes import calc_bboxes_from_keypoints

__all__ = [
    "TRACK_METHODS", "Ellipse", "EllipseFitter", "BaseTracker", "EllipseTracker", "BoxTracker",
    "SkeletonTracker", "SORTEllipse", "SORTBox", "SORTSkeleton", "fill_tracklets",
    "calc_iou", "calc_bboxes_from_keypoints", "reconstruct_all_ellipses", "weighted_hausdorff",
]

TRACK_METHODS = {"box": "_bx", "ctd": "_ctd", "skeleton": "_sk", "ellipse": "_el", "transformer": "_tr"}

_trk = _k._trk
weighted_hausdorff = _k.weighted_hausdorff


# ----------------------------------------------------------------------------- ellipses
class Ellipse:
    """An ellipse centred at ``(x, y)`` with full axes ``width``/``height`` and angle ``theta`` (rad)."""

    def __init__(self, x, y, width, height, theta):
        self.x = x
        self.y = y
        self.width = width
        self.height = height
        self.theta = theta
        self._geometry = None

    @property
    def parameters(self) -> tuple:
        return self.x, self.y, self.width, self.height, self.theta

    @property
    def aspect_ratio(self) -> float:
        return max(self.width, self.height) / min(self.width, self.height)

    def calc_similarity_with(self, other_ellipse: "Ellipse") -> float:
        """Similarity in [0, 1] (centre distance relative to the largest axis, and angle)."""
        a = np.array(self.parameters, dtype=np.float64)[None]
        b = np.array(other_ellipse.parameters, dtype=np.float64)[None]
        return float(_trk.ellipse_similarity_matrix(a, b)[0, 0])

    def contains_points(self, xy, tol: float = 0.1) -> np.ndarray:
        """Whether each point of ``xy`` (n, 2) lies inside the ellipse (scaled by ``1 + tol``)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        ca, sa = np.cos(self.theta), np.sin(self.theta)
        dx = xy[:, 0] - self.x
        dy = xy[:, 1] - self.y
        return ((ca * dx + sa * dy) ** 2 / (0.5 * self.width) ** 2) + (
            (sa * dx - ca * dy) ** 2 / (0.5 * self.height) ** 2
        ) <= 1 + tol

    def __repr__(self) -> str:
        return "Ellipse(x={:.2f}, y={:.2f}, width={:.2f}, height={:.2f}, theta={:.4f})".format(*self.parameters)


class EllipseFitter:
    """Fit an :class:`Ellipse` to keypoints.

    Parameters
    ----------
    sd : float, default 2
        Non-zero: covariance error ellipse whose semi-axes span ``sd`` standard deviations
        (compiled).  ``0``: algebraic least-squares conic fit (Halir & Flusser).
    """

    def __init__(self, sd: float = 2):
        self.sd = sd
        self.x = None
        self.y = None
        self.params = None

    def fit(self, xy) -> Ellipse | None:
        """Ellipse through the finite rows of ``xy`` (n, 2+), or None with fewer than 3."""
        xy = np.asarray(xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] < 2:
            raise ValueError(f"xy must have shape (n_points, 2); got shape {xy.shape}.")
        if self.sd:
            params = _k.fit_ellipses(xy[None], self.sd)[0]
            if np.isnan(params).any():
                return None
            self.params = params
            return Ellipse(*params.tolist())
        xy = xy[np.isfinite(xy[:, :2]).all(axis=1), :2]
        if len(xy) < 3:
            return None
        self.x, self.y = xy[:, 0], xy[:, 1]
        params = _least_squares_ellipse(self.x, self.y)
        if params is None or np.isnan(params).any():
            return None
        self.params = params
        return Ellipse(*params.tolist())


def _least_squares_ellipse(x, y):
    """Direct least-squares ellipse fit -> ``[x0, y0, width, height, theta]`` or None."""
    d1 = np.c_[x * x, x * y, y * y]
    d2 = np.c_[x, y, np.ones_like(x)]
    s1, s2, s3 = d1.T @ d1, d1.T @ d2, d2.T @ d2
    try:
        t = -np.linalg.solve(s3, s2.T)
        m = s1 + s2 @ t
        m = np.array([m[2] / 2, -m[1], m[0] / 2])
        evals, evecs = np.linalg.eig(m)
    except np.linalg.LinAlgError:
        return None
    evecs = np.real(evecs)
    cond = 4 * evecs[0] * evecs[2] - evecs[1] ** 2
    sel = evecs[:, cond > 0]
    if sel.shape[1] == 0:
        return None
    a1 = sel[:, 0]
    a, b, c = a1
    d, e, f = t @ a1
    # conic a x^2 + b xy + c y^2 + d x + e y + f = 0 -> centre, full axes, angle
    den = b * b - 4 * a * c
    if den == 0:
        return None
    x0 = (2 * c * d - b * e) / den
    y0 = (2 * a * e - b * d) / den
    num = 2 * (a * e * e + c * d * d - b * d * e + den * f)
    root = np.sqrt((a - c) ** 2 + b * b)
    with np.errstate(invalid="ignore"):
        ax1 = -np.sqrt(num * (a + c + root)) / den
        ax2 = -np.sqrt(num * (a + c - root)) / den
    if b == 0:
        theta = 0.0 if a < c else np.pi / 2
    else:
        theta = np.arctan((c - a - root) / b)
    # make width the major axis along theta
    if ax2 > ax1:
        ax1, ax2 = ax2, ax1
        theta += np.pi / 2
    return np.array([x0, y0, 2 * ax1, 2 * ax2, theta % np.pi])


# ----------------------------------------------------------------------------- trackers
class BaseTracker(_trk.KalmanTracker):
    """Common counters of DLC's trackers: ``id``, ``hits``, ``hit_streak``, ``age``...

    ``id`` comes from a class-level counter (``n_trackers``), as in DLC.
    """

    n_trackers = 0

    def _next_id(self) -> int:
        cls = type(self)
        tid = cls.n_trackers
        cls.n_trackers += 1
        return tid


class EllipseTracker(BaseTracker):
    """Kalman tracker of ellipse parameters ``[x, y, width, height, theta]``."""

    n_trackers = 0

    def __init__(self, params):
        p = np.ascontiguousarray(params, dtype=np.float64).ravel()
        if p.size != 5:
            raise ValueError(f"params must be [x, y, width, height, theta]; got {p.size} values.")
        self._setup_ellipse(p, self._next_id())


class BoxTracker(BaseTracker):
    """Kalman tracker of a box (state: centre, area, aspect ratio and their velocities)."""

    n_trackers = 0

    def __init__(self, bbox):
        b = np.ascontiguousarray(bbox, dtype=np.float64).ravel()
        if b.size < 4:
            raise ValueError(f"bbox must hold [x1, y1, x2, y2]; got {b.size} values.")
        self._setup_box(b, self._next_id())


class SkeletonTracker(BaseTracker):
    """Kalman tracker of all keypoints of one animal (flattened ``[x0, y0, x1, y1, ...]``)."""

    n_trackers = 0

    def __init__(self, n_bodyparts):
        n = int(n_bodyparts)
        if n < 1:
            raise ValueError(f"n_bodyparts must be >= 1; got {n_bodyparts!r}.")
        self.n_bodyparts = n
        self._setup_skeleton(n, self._next_id())


# ----------------------------------------------------------------------------- SORT
# ``track`` is the compiled method itself (no Python layer per frame): see
# :mod:`mapose.kernels.tracking`.
class SORTEllipse(_k.EllipseSORT):
    """SORT over covariance error ellipses of the keypoints (DLC's default tracker).

    Parameters
    ----------
    max_age : int
        Frames a tracker survives without a match.
    min_hits : int
        Consecutive matches before a tracker is reported (except in the first
        ``min_hits`` calls).
    iou_threshold : float
        Minimum ellipse similarity for a match.
    sd : float, default 2
        Error-ellipse size in standard deviations.

    Notes
    -----
    ``track(poses (n_animals, n_bodyparts, 2), identities=None)`` returns rows
    ``[x, y, width, height, theta, tracker id, index]`` (k, 7), newest first; ``index``
    counts only the poses an ellipse could be fitted to (at least 3 finite keypoints), as
    in DLC.  ``identities`` (n_animals, n_bodyparts): a tracker whose identity equals the
    pose's most frequent one gets double similarity.
    """

    def __init__(self, max_age, min_hits, iou_threshold, sd=2):
        super().__init__(max_age, min_hits, iou_threshold, sd)
        self.fitter = EllipseFitter(sd)


class SORTBox(_k.BoxSORT):
    """Classic SORT over keypoint bounding boxes (see :func:`calc_bboxes_from_keypoints`).

    ``track(bboxes (n, 5))`` returns rows ``[x1, y1, x2, y2, tracker id, box index]``.
    """

    def __init__(self, max_age, min_hits, iou_threshold):
        super().__init__(max_age, min_hits, iou_threshold)


class SORTSkeleton(_k.SkeletonSORT):
    """Skeleton tracker: Hausdorff cost between poses and Kalman-predicted skeletons.

    ``oks_threshold`` and ``min_hits`` are accepted for DLC compatibility and unused, as in
    DLC.  ``track(poses (n, n_bodyparts, 2))`` returns rows ``[x0, y0, ..., id, index]``
    of the predicted skeletons (index -1 for trackers without a detection).
    """

    def __init__(self, n_bodyparts, max_age=20, min_hits=3, oks_threshold=0.5):
        super().__init__(n_bodyparts, max_age, min_hits, oks_threshold)


# ----------------------------------------------------------------------------- helpers
def fill_tracklets(tracklets: dict, trackers, animals, imname) -> None:
    """Store each reported tracker's assembly in ``tracklets[tracker id][imname]``.

    Parameters
    ----------
    tracklets : dict
        Updated in place: ``{numpy.int64 id: {imname: array}}``.
    trackers : ndarray of shape (k, m)
        A SORT ``track`` output (last two columns: tracker id, animal index).
    animals : array_like of shape (n_animals, n_bodyparts, 4)
        The frame's assemblies; row ``index`` is stored.  Index -1 (skeleton tracker
        without a detection) stores the prediction as ``[x0, y0, 1, x1, y1, 1, ...]``.
    imname : hashable
        Frame key.
    """
    trackers = np.asarray(trackers)
    if not trackers.size:
        return
    # one conversion per frame; iterating yields numpy.int64 keys, as DLC's astype(int)
    for content, (tracklet_id, pred_id) in zip(trackers, trackers[:, -2:].astype(np.int64)):
        frames = tracklets.get(tracklet_id)
        if frames is None:
            frames = tracklets[tracklet_id] = {}
        if pred_id != -1:
            frames[imname] = np.asarray(animals[pred_id])
        else:
            xy = np.asarray(content[:-2], dtype=np.float64).reshape(-1, 2)
            frames[imname] = np.c_[xy, np.ones(len(xy))].ravel()


def reconstruct_all_ellipses(data, sd):
    """Error ellipses of every individual in every frame of a tracks DataFrame.

    Parameters
    ----------
    data : pandas.DataFrame
        Tracks with column levels ``(scorer, individuals, bodyparts, coords)``; the
        ``"single"`` individual is ignored.
    sd : float
        Ellipse size in standard deviations.

    Returns
    -------
    ndarray of shape (n_individuals, n_frames, 5)
        NaN where fewer than 3 keypoints are visible.
    """
    xy = data.droplevel("scorer", axis=1).drop("likelihood", axis=1, level=-1)
    if "single" in xy.columns.get_level_values("individuals"):
        xy = xy.drop("single", axis=1, level="individuals")
    animals = xy.columns.get_level_values("individuals").unique()
    nrows = xy.shape[0]
    ellipses = np.full((len(animals), nrows, 5), np.nan)
    for n, animal in enumerate(animals):
        coords = xy.xs(animal, axis=1, level="individuals").to_numpy(dtype=np.float64)
        ellipses[n] = _k.fit_ellipses(coords.reshape(nrows, -1, 2), sd)
    return ellipses
