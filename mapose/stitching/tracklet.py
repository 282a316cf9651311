"""Tracklets: a piece of one animal's trajectory, as DeepLabCut's stitcher sees it.

:class:`Tracklet` mirrors ``deeplabcut.refine_training_dataset.stitch.Tracklet`` (3.0.2):
same constructor, operators, properties and affinity helpers, with the same numbers
(checked against DLC on random data in ``tests/test_stitch_tracklet.py``).
"""
from __future__ import annotations

import warnings

import numpy as np

__all__ = ["Tracklet", "calc_iou"]


def calc_iou(bbox1, bbox2) -> float:
    """Intersection over union of two ``[x1, y1, x2, y2]`` boxes (0 when disjoint)."""
    x1 = max(bbox1[0], bbox2[0])
    y1 = max(bbox1[1], bbox2[1])
    x2 = min(bbox1[2], bbox2[2])
    y2 = min(bbox1[3], bbox2[3])
    w = max(0.0, x2 - x1)
    h = max(0.0, y2 - y1)
    inter = w * h
    union = (bbox1[2] - bbox1[0]) * (bbox1[3] - bbox1[1]) + (bbox2[2] - bbox2[0]) * (bbox2[3] - bbox2[1]) - inter
    return float(inter / union) if union > 0 else 0.0


class Tracklet:
    """A run of poses of one animal over (not necessarily contiguous) frames.

    Parameters
    ----------
    data : array_like of shape (n_frames, n_bodyparts, 3 or 4)
        ``x, y, likelihood`` and optionally the identity (``group``) column.
    inds : array_like of int, shape (n_frames,)
        Frame index of each row.  Unsorted input is stable-sorted.

    Raises
    ------
    ValueError
        If ``data`` is not 3-D, its last axis is not 3 or 4, or ``len(data) != len(inds)``.
    """

    def __init__(self, data, inds):
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 3:
            raise ValueError(
                f"Tracklet data must be 3-D (n_frames, n_bodyparts, 3|4); got shape {data.shape}."
            )
        if data.shape[-1] not in (3, 4):
            raise ValueError(
                f"Tracklet data must end with 3 (x, y, likelihood) or 4 (+ identity) columns; "
                f"got {data.shape[-1]}."
            )
        inds = np.asarray(inds)
        if inds.ndim == 0:
            inds = inds.reshape(1)
        if len(data) != len(inds):
            raise ValueError(
                f"Tracklet data and inds must have the same length; got {len(data)} rows "
                f"and {len(inds)} frame indices."
            )
        if inds.size and inds.dtype.kind not in "iu":
            if inds.dtype.kind == "f" and np.all(np.isfinite(inds)) and np.array_equal(inds, np.round(inds)):
                inds = inds.astype(np.int64)
            else:
                raise TypeError(f"Tracklet inds must be integer frame indices; got dtype {inds.dtype}.")
        if inds.size > 1 and np.any(np.diff(inds) <= 0):
            order = np.argsort(inds, kind="stable")
            inds = inds[order]
            data = data[order]
        self.data = data
        self.inds = inds
        self._centroid = None

    @classmethod
    def _from_sorted(cls, data, inds):
        """Wrap already validated arrays (float64 (n, nb, 3|4), int64 non-decreasing
        ``inds``) without copying or re-checking them (the stitcher's hot path)."""
        self = cls.__new__(cls)
        self.data = data
        self.inds = inds
        self._centroid = None
        return self

    # -- container protocol ------------------------------------------------------------
    def __len__(self) -> int:
        return self.inds.size

    def __add__(self, other):
        if other == 0:
            return self
        if not isinstance(other, Tracklet):
            return NotImplemented
        data = np.concatenate((self.data, other.data))
        inds = np.concatenate((self.inds, other.inds))
        return Tracklet(data, inds)

    def __radd__(self, other):
        if other == 0:
            return self
        return self.__add__(other)

    def __sub__(self, other):
        mask = np.isin(self.inds, other.inds, assume_unique=True)
        if mask.all():
            return None
        return Tracklet(self.data[~mask], self.inds[~mask])

    def __lt__(self, other) -> bool:
        return bool(self.end < other.start)

    def __gt__(self, other) -> bool:
        return bool(self.start > other.end)

    def __contains__(self, other) -> bool:
        if not isinstance(other, Tracklet):
            raise TypeError(f"Only a Tracklet can be tested for membership; got {type(other).__name__}.")
        return self.shares_frame_with(other)

    def __repr__(self) -> str:
        return f"Tracklet of length {len(self)} from {self.start} to {self.end} with reliability {self.likelihood:.3f}"

    # -- properties ----------------------------------------------------------------------
    @property
    def xy(self) -> np.ndarray:
        """ndarray of shape (n_frames, n_bodyparts, 2)."""
        return self.data[..., :2]

    @property
    def centroid(self) -> np.ndarray:
        """Likelihood-weighted mean keypoint per frame, ndarray of shape (n_frames, 2)."""
        if self._centroid is None:
            self._update_centroid()
        return self._centroid

    def _update_centroid(self) -> None:
        self._centroid = self.centroid_at(slice(None))

    def centroid_at(self, rows) -> np.ndarray:
        """Centroid of the given rows only (same numbers as ``centroid[rows]``, cheaper)."""
        if self._centroid is not None:
            return self._centroid[rows]
        data = self.data[rows]
        like = data[..., 2:3] + 1e-10
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nansum(data[..., :2] * like, axis=-2) / np.nansum(like, axis=-2)

    def shares_frame_with(self, other) -> bool:
        """``other in self`` for sorted tracklets, by binary search (no set operations)."""
        if other.end < self.start or other.start > self.end or not len(self) or not len(other):
            return False
        if len(other) > len(self):
            self, other = other, self
        pos = np.searchsorted(self.inds, other.inds)
        pos[pos >= len(self)] = len(self) - 1
        return bool(np.any(self.inds[pos] == other.inds))

    @staticmethod
    def concatenate(tracklets):
        """``sum(tracklets)`` in one copy (the pairwise sum is quadratic in the pieces)."""
        tracklets = list(tracklets)
        if len(tracklets) == 1:
            return tracklets[0]
        cols = {t.data.shape[-1] for t in tracklets}
        if len(cols) > 1:
            return sum(tracklets)
        return Tracklet(np.concatenate([t.data for t in tracklets]), np.concatenate([t.inds for t in tracklets]))

    @property
    def likelihood(self) -> float:
        """Mean likelihood over all frames and body parts (NaN ignored)."""
        p = self.data[..., 2]
        if p.size == 0 or np.isnan(p).all():
            return float("nan")
        return float(np.nanmean(p))

    @property
    def identity(self):
        """Most frequent identity (smallest on ties); -1 without an identity column."""
        if self.data.shape[-1] < 4:
            return -1
        ids = self.data[..., 3]
        if ids.size and ids.flat[0] == ids.flat[0] and (ids == ids.flat[0]).all():
            return ids.flat[0]  # one identity throughout (e.g. -1: none); np.unique's answer
        ids = ids.ravel()
        ids = ids[~np.isnan(ids)]
        if ids.size == 0:
            return np.float64(np.nan)
        vals, counts = np.unique(ids, return_counts=True)
        return vals[np.argmax(counts)]

    @property
    def start(self) -> int:
        if not len(self):
            raise ValueError("An empty tracklet has no start frame.")
        return int(self.inds[0])

    @property
    def end(self) -> int:
        if not len(self):
            raise ValueError("An empty tracklet has no end frame.")
        return int(self.inds[-1])

    @property
    def flat_data(self) -> np.ndarray:
        """ndarray of shape (n_frames, 3 * n_bodyparts): x, y, likelihood per body part."""
        return self.data[..., :3].reshape((len(self), -1))

    @property
    def is_continuous(self) -> bool:
        return self.end - self.start + 1 == len(self)

    @property
    def maximal_velocity(self) -> float:
        """Largest centroid displacement between consecutive rows."""
        if len(self) < 2:
            return 0.0
        return float(np.nanmax(np.linalg.norm(np.diff(self.centroid, axis=0), axis=1)))

    # -- frame access --------------------------------------------------------------------
    def _row(self, ind) -> int:
        pos = int(np.searchsorted(self.inds, ind))
        if pos >= len(self) or self.inds[pos] != ind:
            raise KeyError(f"frame {ind} is not in this tracklet (frames {self.start}..{self.end}).")
        return pos

    def get_data_at(self, ind) -> np.ndarray:
        return self.data[self._row(ind)]

    def set_data_at(self, ind, data) -> None:
        self.data[self._row(ind)] = data
        self._centroid = None

    def del_data_at(self, ind) -> None:
        pos = self._row(ind)
        self.inds = np.delete(self.inds, pos)
        self.data = np.delete(self.data, pos, axis=0)
        self._centroid = None

    def contains_duplicates(self, return_indices: bool = False):
        """Whether a frame index occurs twice (e.g. after ``a + a``)."""
        has = bool(np.any(np.diff(self.inds) == 0))
        if return_indices:
            return has, np.flatnonzero(np.diff(self.inds) == 0)
        return has

    def interpolate(self, max_gap: int = 1) -> Tracklet:
        """Linearly fill internal gaps of at most ``max_gap`` frames.

        Filled frames get likelihood 0.5 and this tracklet's identity.

        Raises
        ------
        ValueError
            If ``max_gap < 1``.
        """
        if max_gap < 1:
            raise ValueError(f"max_gap must be a positive integer; got {max_gap!r}.")
        if len(self) < 2:
            return Tracklet(self.data.copy(), self.inds.copy())
        steps = np.diff(self.inds)
        fill = np.flatnonzero((steps > 1) & (steps <= max_gap + 1))
        if fill.size == 0:
            return Tracklet(self.data.copy(), self.inds.copy())
        new_inds = np.concatenate([np.arange(self.inds[i] + 1, self.inds[i + 1]) for i in fill])
        all_inds = np.union1d(self.inds, new_inds)
        ncols = self.data.shape[-1]
        data = np.empty((all_inds.size, self.data.shape[1], ncols))
        for b in range(self.data.shape[1]):
            for c in range(2):
                data[:, b, c] = np.interp(all_inds, self.inds, self.data[:, b, c])
        data[:, :, 2] = 0.5
        if ncols == 4:
            data[:, :, 3] = self.identity
        keep = np.searchsorted(all_inds, self.inds)
        data[keep] = self.data
        return Tracklet(data, all_inds)

    # -- kinematics ----------------------------------------------------------------------
    def calc_velocity(self, where: str = "head", norm: bool = True):
        """Mean centroid velocity over the last (``"head"``) or first (``"tail"``) 3 rows."""
        c = self._ends(where)
        vel = np.diff(c, axis=0)
        if norm:
            return float(np.mean(np.linalg.norm(vel, axis=1)))
        return vel.mean(axis=0)

    def calc_rate_of_turn(self, where: str = "head") -> float:
        """Change of heading (radians) over the last / first 3 rows."""
        vel = np.diff(self._ends(where), axis=0)
        theta = np.arctan2(vel[:, 1], vel[:, 0])
        return float(np.mean(np.diff(theta)))

    def _ends(self, where: str) -> np.ndarray:
        if where == "head":
            return self.centroid[-3:]
        if where == "tail":
            return self.centroid[:3]
        raise ValueError(f"where must be 'head' (the end) or 'tail' (the start); got {where!r}.")

    # -- pairwise scores -----------------------------------------------------------------
    def immediately_follows(self, other_tracklet, max_gap: int = 1) -> bool:
        return bool(0 < self.start - other_tracklet.end <= max_gap)

    def time_gap_to(self, other_tracklet) -> int:
        """Frames between the two tracklets; 0 if they share a frame, negative if interleaved."""
        if self in other_tracklet:
            return 0
        if self < other_tracklet:
            return other_tracklet.start - self.end
        return self.start - other_tracklet.end

    def _order(self, other):
        return (self, other) if self < other else (other, self)

    def distance_to(self, other_tracklet) -> float:
        """Mean centroid distance on shared frames, else end-to-start centroid distance."""
        if self in other_tracklet:
            common = np.intersect1d(self.inds, other_tracklet.inds)
            a = self.centroid[np.searchsorted(self.inds, common)]
            b = other_tracklet.centroid[np.searchsorted(other_tracklet.inds, common)]
            return float(np.mean(np.sqrt(np.sum((a - b) ** 2, axis=1))))
        first, second = self._order(other_tracklet)
        return float(np.sqrt(np.sum((first.centroid[-1] - second.centroid[0]) ** 2)))

    def motion_affinity_with(self, other_tracklet) -> float:
        """Mean error of extrapolating each tracklet over the gap with its end velocity."""
        first, second = self._order(other_tracklet)
        gap = second.start - first.end
        p1 = first.centroid[-1] + first.calc_velocity("head", norm=False) * gap
        p2 = second.centroid[0] - second.calc_velocity("tail", norm=False) * gap
        d1 = np.sqrt(np.sum((p1 - second.centroid[0]) ** 2))
        d2 = np.sqrt(np.sum((p2 - first.centroid[-1]) ** 2))
        return float((d1 + d2) / 2)

    @staticmethod
    def undirected_hausdorff(u, v) -> float:
        """Symmetric Hausdorff distance between two point sets (NaN rows ignored)."""
        from scipy.spatial.distance import directed_hausdorff

        u = np.asarray(u, dtype=np.float64)
        v = np.asarray(v, dtype=np.float64)
        u = u[~np.isnan(u).any(axis=1)]
        v = v[~np.isnan(v).any(axis=1)]
        if not len(u) or not len(v):
            return float("nan")
        return float(max(directed_hausdorff(u, v)[0], directed_hausdorff(v, u)[0]))

    def shape_dissimilarity_with(self, other_tracklet) -> float:
        """Hausdorff distance between the earlier tracklet's last and the later's first pose."""
        if self in other_tracklet:
            return float("inf")
        first, second = self._order(other_tracklet)
        return self.undirected_hausdorff(first.xy[-1], second.xy[0])

    def calc_bbox(self, ind) -> np.ndarray:
        """``[x1, y1, x2, y2]`` box around the pose at row ``ind`` (NaN ignored)."""
        xy = self.xy[ind]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.r_[np.nanmin(xy, axis=0), np.nanmax(xy, axis=0)]

    def box_overlap_with(self, other_tracklet) -> float:
        """IoU of the earlier tracklet's last box and the later's first box (0 if they overlap in time)."""
        if self in other_tracklet:
            return 0.0
        first, second = self._order(other_tracklet)
        return calc_iou(first.calc_bbox(-1), second.calc_bbox(0))

    @staticmethod
    def hankelize(xy) -> np.ndarray:
        """Block-Hankel matrix of a trajectory, shape (n_dims * (n // 3 + 1), n - n // 3)."""
        xy = np.asarray(xy, dtype=np.float64)
        n = len(xy)
        if xy.ndim == 1:
            xy = xy[:, None]
        rows = n // 3 + 1
        cols = n - rows + 1
        idx = np.arange(rows)[:, None] + np.arange(cols)[None, :]
        # (rows, cols, dims) -> interleave dims in row blocks: row 2i = x, 2i+1 = y
        return xy[idx].transpose(0, 2, 1).reshape(rows * xy.shape[1], cols)

    def to_hankelet(self) -> np.ndarray:
        return self.hankelize(self.centroid)

    def estimate_rank(self, tol: float) -> int:
        """Rank of the Hankel matrix by DLC 3.0.2's rule: the first position where
        consecutive normalised squared singular values stop dropping by more than ``tol``.

        With ``s`` the (at most 10) largest singular values of :meth:`to_hankelet` and
        ``e = s**2 / s[0]**2``, the rank is the first ``k`` with ``|e[k+1] - e[k]| <= tol``,
        and 0 when every drop exceeds ``tol`` (``numpy.argmin`` of an all-True mask).

        Where DLC fails, the result is defined: a one-frame tracklet (a single singular
        value, DLC: ``argmin`` of an empty sequence) has rank 0; an all-zero matrix has
        rank 0 (DLC: the same, through a 0/0 warning); Hankel columns touching a non-finite
        centroid are left out (DLC: "SVD did not converge"), rank 0 if none remain.
        """
        mat = self.to_hankelet()
        if not np.isfinite(mat).all():
            mat = mat[:, np.isfinite(mat).all(axis=0)]
        if mat.size == 0 or min(mat.shape) < 2 or not np.any(mat):
            return 0
        s = np.linalg.svd(mat, compute_uv=False)[:10]
        eigen = s ** 2
        diff = np.abs(np.diff(eigen / eigen[0]))
        return int(np.argmin(diff > tol))

    def dynamic_dissimilarity_with(self, other_tracklet) -> float:
        """``2 - ||G1 + G2||_F`` where ``Gk = (Hk Hk^T)[:m, :m]`` with each Hankel matrix
        ``Hk`` scaled to unit Frobenius norm and ``m`` the smallest of the four Hankel
        dimensions (DLC 3.0.2; Li et al., 2012)."""
        hk1 = self.to_hankelet()
        hk2 = other_tracklet.to_hankelet()
        with np.errstate(invalid="ignore", divide="ignore"):
            hk1 = hk1 / np.linalg.norm(hk1)
            hk2 = hk2 / np.linalg.norm(hk2)
        m = min(hk1.shape + hk2.shape)
        g = (hk1 @ hk1.T)[:m, :m] + (hk2 @ hk2.T)[:m, :m]
        return float(2 - np.linalg.norm(g))

    def dynamic_similarity_with(self, other_tracklet, tol: float = 0.01) -> float:
        """``(rank1 + rank2) / rank(joint) - 1`` with :meth:`estimate_rank` (DLC 3.0.2;
        Dicle et al., 2013): about 1 when one low-order dynamic explains both tracklets.

        A joint rank of 0 gives ``inf`` (``nan`` if both ranks are 0) without a warning,
        as NumPy's division would; :meth:`TrackletStitcher.build_graph` then warns and uses
        the largest finite weight, where DLC raises on ``int(inf)``.
        """
        joint = self + other_tracklet
        joint_rank = joint.estimate_rank(tol)
        total = self.estimate_rank(tol) + other_tracklet.estimate_rank(tol)
        if joint_rank == 0:
            return float("inf") if total else float("nan")
        return total / joint_rank - 1

    def plot(self, centroid_only: bool = True, color=None, ax=None, interactive: bool = False):
        """Plot x/y against frame index (needs matplotlib)."""
        from mapose._optional import require

        plt = require("matplotlib.pyplot", "plotting tracklets")
        if ax is None:
            _, ax = plt.subplots()
        data = self.centroid if centroid_only else self.xy.reshape(len(self), -1)
        lines = ax.plot(self.inds, data, c=color, lw=2, picker=interactive)
        return lines
