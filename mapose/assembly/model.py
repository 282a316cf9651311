"""Data model of assembled animals: :class:`Joint`, :class:`Link`, :class:`Assembly`.

These mirror ``deeplabcut.core.inferenceutils`` attribute for attribute so that DLC
scripts (and pickles of DLC objects' *data*) work unchanged:

* a :class:`Joint` is one detection: position, confidence, bodypart ``label``, per-frame
  running ``idx`` and identity ``group`` (argmax of the identity scores, or -1);
* a :class:`Link` joins two detections of a graph edge with a PAF ``affinity``;
* an :class:`Assembly` is one animal: ``data`` of shape ``(n_bodyparts, 4)`` holding
  ``x, y, confidence, group`` per bodypart.  Rows that never receive a joint hold
  ``(NaN, NaN, 0.0, NaN)`` (DLC sets the confidence column to 0 in the constructor).

The compiled assembler does not create these objects while it works; they are built
afterwards, only for the frames a caller looks at.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Joint", "Link", "Assembly"]


@dataclass(frozen=True)
class Joint:
    """One body-part detection (hashable by value, like DLC's)."""

    pos: tuple
    confidence: float = 1.0
    label: int | None = None
    idx: int | None = None
    group: int = -1


class Link:
    """A candidate limb between two joints (equality is identity, as in DLC).

    Parameters
    ----------
    j1, j2 : Joint
        Source and target detections (``j1`` belongs to the graph edge's source bodypart).
    affinity : float, default 1
        PAF affinity of the pair.
    """

    def __init__(self, j1: Joint, j2: Joint, affinity: float = 1):
        self.j1 = j1
        self.j2 = j2
        self.affinity = affinity
        self._length = None  # computed on first use (only calibration reads it)

    def __repr__(self) -> str:
        return f"Link {self.idx}, affinity={self.affinity:.2f}, length={self.length:.2f}"

    @property
    def confidence(self) -> float:
        return self.j1.confidence * self.j2.confidence

    @property
    def idx(self) -> tuple:
        return self.j1.idx, self.j2.idx

    @property
    def length(self) -> float:
        if self._length is None:
            j1, j2 = self.j1, self.j2
            # arithmetic in the coordinates' own dtype (float16 in some DLC files), as
            # DLC does: long float16 links overflow to inf there, silently here
            with np.errstate(over="ignore", invalid="ignore"):
                self._length = math.sqrt((j1.pos[0] - j2.pos[0]) ** 2 + (j1.pos[1] - j2.pos[1]) ** 2)
        return self._length

    @length.setter
    def length(self, length: float) -> None:
        self._length = length

    def to_vector(self) -> list:
        return [*self.j1.pos, *self.j2.pos]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x))
    return e / e.sum()


class Assembly:
    """One assembled individual.

    Parameters
    ----------
    size : int
        Number of (multi-animal) bodyparts; ``data`` has shape ``(size, 4)``.
    """

    def __init__(self, size: int):
        self.data = np.full((size, 4), np.nan)
        self.confidence = 0  # DLC quirk kept on purpose: unfilled rows get confidence 0
        self._affinity = 0.0
        self._links: list[Link] = []
        self._visible: set = set()
        self._idx: set = set()
        self._dict: dict = {}

    def __len__(self) -> int:
        return len(self._visible)

    def __contains__(self, assembly: "Assembly") -> bool:
        """True if both assemblies have a bodypart (label) in common."""
        return bool(self._visible.intersection(assembly._visible))

    def __add__(self, other: "Assembly") -> "Assembly":
        if other in self:
            raise ValueError("Assemblies contain shared joints.")
        assembly = Assembly(self.data.shape[0])
        for link in self._links + other._links:
            assembly.add_link(link)
        return assembly

    def __repr__(self) -> str:
        return f"Assembly({len(self)} keypoints, {self.n_links} links, affinity={self.affinity:.3f})"

    @classmethod
    def from_array(cls, array: np.ndarray) -> "Assembly":
        """Build an assembly from rows ``x, y[, confidence[, group]]``.

        Like DLC, rows containing any NaN are set entirely to NaN *in ``array``*; with
        fewer than three columns, visible rows get confidence 1.
        """
        n_bpts, n_cols = array.shape
        ass = cls(size=n_bpts)
        mask = np.isnan(array).any(axis=1)
        array[mask] = np.nan
        ass.data[:, :n_cols] = array
        visible = np.flatnonzero(~mask)
        if n_cols < 3:
            ass.data[visible, 2] = 1
        ass._visible.update(visible.tolist())
        return ass

    @property
    def xy(self) -> np.ndarray:
        return self.data[:, :2]

    @property
    def extent(self) -> np.ndarray:
        """``[xmin, ymin, xmax, ymax]`` of the visible keypoints."""
        bbox = np.empty(4)
        bbox[:2] = np.nanmin(self.xy, axis=0)
        bbox[2:] = np.nanmax(self.xy, axis=0)
        return bbox

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.extent
        return (x2 - x1) * (y2 - y1)

    @property
    def confidence(self) -> float:
        return np.nanmean(self.data[:, 2])

    @confidence.setter
    def confidence(self, confidence) -> None:
        self.data[:, 2] = confidence

    @property
    def soft_identity(self) -> dict:
        data = self.data[~np.isnan(self.data).any(axis=1)]
        unq, idx, cnt = np.unique(data[:, 3], return_inverse=True, return_counts=True)
        avg = np.bincount(idx, weights=data[:, 2]) / cnt
        soft = _softmax(avg)
        return dict(zip(unq.astype(int).tolist(), soft))

    @property
    def affinity(self) -> float:
        n_links = self.n_links
        if not n_links:
            return 0
        return float(self._affinity / n_links)

    @property
    def n_links(self) -> int:
        return len(self._links)

    def intersection_with(self, other: "Assembly") -> float:
        """Fraction of keypoints inside the intersection of the two bounding boxes.

        The minimum over the two assemblies of (visible points inside) / len; 0 when the
        boxes do not overlap.
        """
        x11, y11, x21, y21 = self.extent
        x12, y12, x22, y22 = other.extent
        x1 = max(x11, x12)
        y1 = max(y11, y12)
        x2 = min(x21, x22)
        y2 = min(y21, y22)
        if x2 < x1 or y2 < y1:
            return 0
        ll = np.array([x1, y1])
        ur = np.array([x2, y2])
        xy1 = self.xy[~np.isnan(self.xy).any(axis=1)]
        xy2 = other.xy[~np.isnan(other.xy).any(axis=1)]
        in1 = np.all((xy1 >= ll) & (xy1 <= ur), axis=1).sum()
        in2 = np.all((xy2 >= ll) & (xy2 <= ur), axis=1).sum()
        n1 = len(self)
        n2 = len(other)
        if not n1 or not n2:  # DLC divides by zero here; an empty assembly overlaps nothing
            return 0
        return min(in1 / n1, in2 / n2)

    def add_joint(self, joint: Joint) -> bool:
        if joint.label in self._visible or joint.label is None:
            return False
        self.data[joint.label] = *joint.pos, joint.confidence, joint.group
        self._visible.add(joint.label)
        self._idx.add(joint.idx)
        return True

    def remove_joint(self, joint: Joint) -> bool:
        if joint.label not in self._visible:
            return False
        self.data[joint.label] = np.nan
        self._visible.remove(joint.label)
        self._idx.remove(joint.idx)
        return True

    def add_link(self, link: Link, store_dict: bool = False) -> bool:
        """Add both joints of ``link``; False if they were already in or clash by label."""
        if store_dict:
            # Snapshot so that the caller can undo the addition
            self._dict = {
                "data": self.data.copy(),
                "_affinity": self._affinity,
                "_links": self._links.copy(),
                "_visible": self._visible.copy(),
                "_idx": self._idx.copy(),
            }
        i1, i2 = link.idx
        if i1 in self._idx and i2 in self._idx:
            self._affinity = _acc(self._affinity, link.affinity)
            self._links.append(link)
            return False
        if link.j1.label in self._visible and link.j2.label in self._visible:
            return False
        self.add_joint(link.j1)
        self.add_joint(link.j2)
        self._affinity = _acc(self._affinity, link.affinity)
        self._links.append(link)
        return True

    def calc_pairwise_distances(self) -> np.ndarray:
        """Condensed squared distances between keypoints (NaN where one is missing)."""
        from scipy.spatial.distance import pdist

        return pdist(self.xy, metric="sqeuclidean")


def _acc(total, affinity) -> float:
    # DeepLabCut accumulated in float64 under NumPy 1 (its pinned version); NumPy 2 would
    # keep float32/float16 and flip an NMS tie on DLC's own montblanc test.
    return float(total) + float(affinity)

